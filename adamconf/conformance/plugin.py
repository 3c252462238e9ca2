"""pytest plugin: ``pytest --adamconf-backend NAME`` runs the golden corpus as test items.

Inert unless a backend is named (by the option or ``ADAMCONF_BACKEND``). Items are named
``case[variant]``; a failure prints the verdict line, the dialect that matches instead and
a reproduce command. What each backend is expected to implement lives in its
expected-dialects file (``adamconf/conformance/expected/<backend>.json``, or
``--adamconf-expected FILE``): a failing item is xfail where its trajectory conforms to the
variant's expected model instead, or where the file states a reason for it; any other
failure fails. A user's own list of known failures can be given as ``--adamconf-xfail
FILE``: one item id or glob per line, a reason after ``#``; entries that match no item warn.
"""

from __future__ import annotations

import fnmatch
import os
import warnings
from pathlib import Path

import pytest



def pytest_addoption(parser) -> None:
    group = parser.getgroup("adamconf", "adamconf conformance")
    group.addoption("--adamconf-backend", default=os.environ.get("ADAMCONF_BACKEND"),
                    help="run the golden corpus against this backend (env ADAMCONF_BACKEND)")
    group.addoption("--adamconf-variant", action="append", default=[],
                    help="only this variant (repeatable)")
    group.addoption("--adamconf-device", action="append", default=[],
                    help="only this device (repeatable)")
    group.addoption("--adamconf-dtype", action="append", default=[],
                    help="only this dtype (repeatable)")
    group.addoption("--adamconf-xfail", default=None,
                    help="a file of known failures of yours: item ids or globs, a reason after #")
    group.addoption("--adamconf-expected", default=None,
                    help="expected-dialects file (default: the one shipped for the backend)")
    group.addoption("--adamconf-golden", default=None, help="golden folder to read")
    group.addoption("--adamconf-timeout", type=float, default=300.0,
                    help="seconds per case before it is an error")
    group.addoption("--adamconf-state", choices=("auto", "compare", "ignore"), default=None,
                    help="a generic backend's state: compared where a probe shows it holds m "
                         "and v (auto), by its names (compare), or not at all (ignore)")
    group.addoption("--adamconf-feature", action="append", default=[],
                    help="a feature a generic backend's class or factory fixes, e.g. "
                         "amsgrad=always (repeatable)")


class _State:
    def __init__(self, config) -> None:
        from adamconf.conformance.corpus.golden import GOLDEN_DIR, load_corpus
        from adamconf.conformance.errors import UsageError
        from adamconf.conformance.harness.runner import choose_variants, probe_backend

        from adamconf.conformance.api import declared_for, features_from_items

        self.spec = config.getoption("adamconf_backend")
        loaded = []
        try:  # the corpus loads while the backend's worker starts
            declared = declared_for(self.spec, config.getoption("adamconf_state"),
                                    features_from_items(config.getoption("adamconf_feature")))
            self.info, self.process = probe_backend(
                self.spec, config.getoption("adamconf_timeout"), declared=declared,
                meanwhile=lambda: loaded.append(
                    load_corpus(config.getoption("adamconf_golden") or GOLDEN_DIR)))
        except UsageError as exc:
            raise pytest.UsageError(f"adamconf: {exc}") from None
        self.corpus = loaded[0]
        from adamconf.conformance.judge.expected import load_expected

        try:
            self.expected = load_expected(self.spec, config.getoption("adamconf_expected"))
        except UsageError as exc:
            self.process.close()
            raise pytest.UsageError(f"adamconf: {exc}") from None
        try:
            self.variants = choose_variants(
                self.info, self.spec, config.getoption("adamconf_variant"),
                config.getoption("adamconf_device"), config.getoption("adamconf_dtype"))
        except UsageError as exc:
            self.process.close()
            raise pytest.UsageError(f"adamconf: {exc}") from None


_STATE_KEY = pytest.StashKey[_State]()


def pytest_configure(config) -> None:
    if config.getoption("adamconf_backend"):
        config.stash[_STATE_KEY] = _State(config)


def pytest_unconfigure(config) -> None:
    state = config.stash.get(_STATE_KEY, None)
    if state is not None:
        state.process.close()


def pytest_report_header(config) -> list[str] | None:
    state = config.stash.get(_STATE_KEY, None)
    if state is None:
        return None
    from adamconf.reference.engine import describe_reference

    versions = ", ".join(f"{k} {v}" for k, v in state.info.versions.items())
    return [f"adamconf backend: {state.spec} ({versions}); devices: "
            f"{', '.join(state.info.devices)}; variants: "
            f"{', '.join(sorted({v.id for v in state.variants}))}",
            f"adamconf reference: {describe_reference()}; {len(state.corpus)} golden cases",
            *(f"adamconf note: {note}" for note in state.info.notes)]


class ConformanceFailure(Exception):
    """A variant departs from the documented Adam by more than the derived bound."""


class ConformanceItem(pytest.Item):
    def __init__(self, *, golden, variant, **kwargs) -> None:
        super().__init__(**kwargs)
        self.golden, self.variant = golden, variant

    def runtest(self) -> None:
        from adamconf.conformance.harness.runner import case_setup, repro_command, result_of
        from adamconf.conformance.judge.outcome import Status

        state = self.config.stash[_STATE_KEY]
        reply = state.process.request("run", case_setup(self.golden.case.problem),
                                      self.variant)
        result = result_of(self.golden, self.variant, reply, identify="keep",
                           repro=repro_command(state.spec, self.golden.id, self.variant,
                                               declared=state.process.declared))
        if result.status is Status.FAIL:
            self._expected_failure(state, result)
        if result.status is Status.UNSUPPORTED:
            pytest.skip(f"unsupported: {result.message}")
        if result.status is Status.INCONCLUSIVE:
            pytest.skip(f"inconclusive (not a pass): {result.message}")
        if result.status is not Status.PASS:
            raise ConformanceFailure(result)

    def _expected_failure(self, state, result) -> None:
        """xfail where the variant's expected model explains the failure (or its file
        states a reason); else name what the case conforms to, for the report."""
        from adamconf.conformance.judge.identify import (
            conforms_to,
            describe_departure,
            identify_dialects,
        )

        golden, variant, observed = self.golden, self.variant, result.observed
        expected = state.expected
        if expected is not None:
            want = expected.for_variant(variant.id)
            if want.implements != "spec" and conforms_to(golden.case, observed, variant.dtype,
                                                         want.implements):
                pytest.xfail(f"as expected: {want.implements}"
                             + (f" — {want.why}" if want.why else ""))
            reason = expected.reason_for(variant.id, golden.id)
            if reason:
                pytest.xfail(f"as expected: {reason}")
            result.message += (f" (expected {want.implements}, which does not explain it)"
                               if want.implements != "spec" else "")
        result.dialects = identify_dialects(golden.case, observed, variant.dtype,
                                            result.verdict)
        if not result.dialects:
            result.departure = describe_departure(golden.case, observed, result.verdict,
                                                  golden.reference)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ConformanceFailure):
            r = excinfo.value.args[0]
            lines = [f"{r.status}: {r.message}"]
            if r.dialects is not None:
                lines.append("conforms instead to: " + (", ".join(r.dialects) or
                                                        f"no model: {r.departure}"))
            lines.append(f"reproduce: {r.repro}")
            return "\n".join(lines)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return "adamconf", None, f"{self.golden.id}[{self.variant.id}]"


class ValidationItem(pytest.Item):
    """A documented ValueError: constructing the optimizer with this value must raise it."""

    def __init__(self, *, variant, parameter: str, shown: str, override: dict,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.variant, self.parameter, self.shown, self.override = (variant, parameter, shown,
                                                                   override)

    def runtest(self) -> None:
        from adamconf.conformance.harness.worker import ReplyKind
        from adamconf.reference.config import DEFAULTS

        state = self.config.stash[_STATE_KEY]
        kwargs = {**DEFAULTS, **self.override, "amsgrad": False, "maximize": False}
        reply = state.process.request("construct", self.variant, kwargs, timeout=120)
        if reply.kind is ReplyKind.UNSUPPORTED:
            pytest.skip(f"unsupported: {reply.message}")
        if reply.kind is ReplyKind.RAISED and reply.value_error:
            return
        got = "accepted silently" if reply.ok else reply.message
        raise ConformanceFailure(f"{self.parameter}={self.shown} must raise ValueError (as "
                                 f"documented); {self.variant.name}/{self.variant.device}: "
                                 f"{got}")

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ConformanceFailure):
            return str(excinfo.value.args[0])
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return "adamconf", None, self.name


def _validation_items(session, state) -> list[ValidationItem]:
    from adamconf.conformance.harness.runner import INVALID_HYPERPARAMETERS

    items, seen = [], set()
    for variant in state.variants:
        key = (variant.name, variant.device)
        if key in seen:
            continue
        seen.add(key)
        for parameter, shown, override in INVALID_HYPERPARAMETERS:
            name = f"valueerror[{variant.name}/{variant.device}:{parameter}={shown}]"
            items.append(ValidationItem.from_parent(session, name=name, variant=variant,
                                                    parameter=parameter, shown=shown,
                                                    override=override))
    return items


def _xfail_entries(config, backend: str) -> list[tuple[str, str]]:
    path = config.getoption("adamconf_xfail")
    if not path:
        return []
    path = Path(path)
    if not path.is_file():
        raise pytest.UsageError(f"adamconf: xfail file {path} does not exist")
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        pattern, _, reason = line.partition("#")
        if pattern.strip():
            entries.append((pattern.strip(), reason.strip() or "known failure"))
    return entries


@pytest.hookimpl(tryfirst=True)  # before -k and -m deselect, so they apply to these items too
def pytest_collection_modifyitems(session, config, items) -> None:
    state = config.stash.get(_STATE_KEY, None)
    if state is None:
        return
    from adamconf.conformance.harness.runner import plan

    new = []
    for golden, variant in plan(state.corpus, state.variants):
        new.append(ConformanceItem.from_parent(session, name=f"{golden.id}[{variant.id}]",
                                               golden=golden, variant=variant))
    new.extend(_validation_items(session, state))
    entries = _xfail_entries(config, state.spec)
    if state.expected is not None:  # documented ValueErrors known not to be raised
        for item in new:
            why = (state.expected.validation_reason(item.name)
                   if isinstance(item, ValidationItem) else None)
            if why:
                item.add_marker(pytest.mark.xfail(reason=f"as expected: {why}", strict=True))
    used = set()
    for item in new:
        for pattern, reason in entries:
            # only * and ? are wildcards: the brackets of case[variant] are literal
            if fnmatch.fnmatchcase(item.name, pattern.replace("[", "[[]")):
                item.add_marker(pytest.mark.xfail(reason=reason, strict=True))
                used.add(pattern)
                break
    for pattern, _ in entries:
        if pattern not in used:
            warnings.warn(pytest.PytestWarning(
                f"adamconf xfail entry {pattern!r} matches no test item (stale? remove it)"),
                stacklevel=2)
    items.extend(new)
