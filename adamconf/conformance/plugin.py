"""pytest plugin: ``pytest --adamconf-backend NAME`` runs the golden corpus as test items.

Inert unless a backend is named (by the option or ``ADAMCONF_BACKEND``). Items are named
``case[variant]``; a failure prints the verdict line, the dialect that matches instead and
a reproduce command. What each backend is expected to implement lives in its
expected-dialects file (``adamconf/conformance/expected/<backend>.json``, or
``--adamconf-expected FILE``): a failing item is xfail where its trajectory conforms to the
variant's expected model instead, or where the file states a reason for it; any other
failure fails. A user's own list of known failures can be given as ``--adamconf-xfail
FILE``: one item id or glob per line, a reason after ``#``; entries that match no item warn.

With ``--adamconf-fuzz`` the items are, in place of the corpus, each selected variant's fuzz
property as a hypothesis test (``fuzz[<backend>/<variant>]``, :mod:`.harness.fuzz_property`):
pytest runs ``--adamconf-fuzz-examples`` examples of each, and HypoFuzz runs them as a
campaign (``hypothesis fuzz -- --adamconf-backend numpy --adamconf-fuzz``).
``--adamconf-database`` (a folder or ``redis://host:port``) is then the session's example
database, which every process of the campaign, and every machine given it, shares.
"""

from __future__ import annotations

import fnmatch
import os
import time
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
    fuzz = parser.getgroup("adamconf-fuzz", "adamconf fuzz properties (HypoFuzz)")
    fuzz.addoption("--adamconf-fuzz", action="store_true",
                   help="instead of the corpus, each selected variant's fuzz property as a "
                        "hypothesis test, fuzz[backend/variant]; HypoFuzz runs them as a "
                        "campaign: hypothesis fuzz -- --adamconf-backend B --adamconf-fuzz")
    fuzz.addoption("--adamconf-database", default=None, metavar="DIR|redis://HOST:PORT",
                   help="the session's hypothesis example database: a folder or a Redis "
                        "server (pip install 'adamconf[redis]'), shared by every process "
                        "and machine given it (default: hypothesis's own)")
    fuzz.addoption("--adamconf-fuzz-examples", type=int, default=100, metavar="N",
                   help="examples per fuzz item in a pytest run (default 100; HypoFuzz runs "
                        "until it is stopped)")
    fuzz.addoption("--adamconf-variant-id", action="append", default=[], metavar="ID",
                   help="only this variant, by id (name/device/dtype); repeatable")
    fuzz.addoption("--adamconf-max-steps", type=int, default=20, metavar="N",
                   help="steps per fuzzed case at most (default 20)")
    fuzz.addoption("--adamconf-max-elements", type=int, default=16, metavar="N",
                   help="elements over all parameters of a fuzzed case at most (default 16)")
    fuzz.addoption("--adamconf-allow-non-finite", action="store_true",
                   help="also draw NaN and ±inf parameters and gradients")
    fuzz.addoption("--adamconf-fuzz-stats", default=None, metavar="DIR",
                   help="count each fuzz item's outcomes into DIR/<pid>.json (adamconf fuzz "
                        "adds up its HypoFuzz workers this way)")


class _State:
    def __init__(self, config) -> None:
        from adamconf.conformance.api import declared_for, features_from_items
        from adamconf.conformance.corpus.golden import GOLDEN_DIR, load_corpus
        from adamconf.conformance.errors import UsageError
        from adamconf.conformance.harness.runner import choose_variants, probe_backend

        self.spec = config.getoption("adamconf_backend")
        self.fuzz = config.getoption("adamconf_fuzz")
        loaded = []

        def load() -> None:
            if not self.fuzz:
                loaded.append(load_corpus(config.getoption("adamconf_golden") or GOLDEN_DIR))

        try:  # the corpus loads while the backend's worker starts
            declared = declared_for(self.spec, config.getoption("adamconf_state"),
                                    features_from_items(config.getoption("adamconf_feature")))
            self.info, self.process = probe_backend(
                self.spec, config.getoption("adamconf_timeout"), declared=declared,
                meanwhile=load)
        except UsageError as exc:
            raise pytest.UsageError(f"adamconf: {exc}") from None
        self.corpus = loaded[0] if loaded else []
        from adamconf.conformance.judge.expected import load_expected

        try:
            self.expected = (None if self.fuzz else
                             load_expected(self.spec, config.getoption("adamconf_expected")))
            self.variants = choose_variants(
                self.info, self.spec, config.getoption("adamconf_variant"),
                config.getoption("adamconf_device"), config.getoption("adamconf_dtype"))
            ids = config.getoption("adamconf_variant_id")
            if ids:
                known = {v.id for v in self.variants}
                unknown = [i for i in ids if i not in known]
                if unknown:
                    raise UsageError(f"--adamconf-variant-id {', '.join(unknown)}: no such "
                                     f"variant; the selected ones are {', '.join(sorted(known))}")
                self.variants = [v for v in self.variants if v.id in ids]
            self.database = None
            if self.fuzz:
                self._use_database(config.getoption("adamconf_database"))
        except UsageError as exc:
            self.process.close()
            raise pytest.UsageError(f"adamconf: {exc}") from None

    def _use_database(self, where: str | None) -> None:
        """The session's example database, as the default of every hypothesis test (HypoFuzz
        fuzzes only tests whose database is the default one)."""
        from hypothesis import settings

        from adamconf.conformance.harness.campaign import patch_hypothesis_for_hypofuzz
        from adamconf.conformance.harness.exampledb import open_database

        patch_hypothesis_for_hypofuzz()
        if where:
            self.database = open_database(where)
            # never derandomized: a fuzz campaign draws fresh examples (hypothesis loads its
            # derandomized "ci" profile by itself where CI is set, and HypoFuzz then refuses
            # every test)
            settings.register_profile("adamconf-fuzz", parent=settings(),
                                      database=self.database, derandomize=False)
            settings.load_profile("adamconf-fuzz")


_STATE_KEY = pytest.StashKey[_State]()


@pytest.hookimpl(trylast=True)  # after hypothesis's plugin has loaded the profile asked for
def pytest_configure(config) -> None:
    if config.getoption("adamconf_fuzz") and not config.getoption("adamconf_backend"):
        raise pytest.UsageError("adamconf: --adamconf-fuzz needs --adamconf-backend NAME")
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
            f"adamconf reference: {describe_reference()}; "
            + (f"fuzz properties, database {state.database!r}" if state.fuzz
               else f"{len(state.corpus)} golden cases"),
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


class FuzzItem(pytest.Function):
    """One variant's fuzz property, a hypothesis test (HypoFuzz fuzzes pytest Functions).
    A failure shows the minimal case and how to keep it as a regression case."""

    minimal = None  # (kind, message, case) of the minimal failing example, once shrunk

    def runtest(self) -> None:
        try:
            super().runtest()
        finally:
            # hypothesis would write a patch adding the failing case as an @example to the
            # test's source, which is adamconf's own code: the minimal case is shown instead
            self.__dict__.pop("_hypothesis_failing_examples", None)

    def repr_failure(self, excinfo):
        from adamconf.conformance.harness.fuzz_property import RAISES, describe_case

        if self.minimal is None or not isinstance(excinfo.value, tuple(RAISES.values())):
            return super().repr_failure(excinfo)
        kind, message, case = self.minimal
        state = self.config.stash[_STATE_KEY]
        database = self.config.getoption("adamconf_database")
        keep = (f"adamconf fuzz --backend {state.spec} --replay --database {database}"
                if database else "give --adamconf-database DIR, run again, then adamconf fuzz "
                f"--backend {state.spec} --replay --database DIR")
        return "\n".join([f"{kind}: {message}", "the minimal case:", *describe_case(case),
                          f"to keep it as a regression case: {keep}"])


def _fuzz_items(session, state) -> list[FuzzItem]:
    from hypothesis import HealthCheck, settings

    from adamconf.conformance.harness.campaign import StatsFile
    from adamconf.conformance.harness.fuzz_property import (
        FAILING,
        RAISES,
        SearchSpace,
        evaluate,
        fuzz_test,
        is_final_run,
        property_name,
    )

    config = session.config
    space = SearchSpace(allow_non_finite=config.getoption("adamconf_allow_non_finite"),
                        max_steps=config.getoption("adamconf_max_steps"),
                        max_elements=config.getoption("adamconf_max_elements"))
    folder = config.getoption("adamconf_fuzz_stats")
    stats = StatsFile(folder) if folder else None
    examples = config.getoption("adamconf_fuzz_examples")
    items = []
    for variant in state.variants:
        name = property_name(state.info.name, variant, space)
        box: list[FuzzItem] = []

        def check(case, variant=variant, name=name, box=box) -> None:
            # the backend's worker restarts here if it was closed (HypoFuzz runs the items
            # after the pytest session that collected them has ended)
            started = time.time()
            outcome, message, _ = evaluate(case, variant, state.process)
            if stats is not None:
                stats.record(name, outcome, started)
            if outcome in FAILING:
                if is_final_run() and box:
                    box[0].minimal = (outcome, message, case)
                raise RAISES[outcome](message)

        # every health check off but nested_given, whose suppression HypoFuzz refuses
        quiet = [h for h in HealthCheck if h.name != "nested_given"]
        # random, whatever profile is loaded (HypoFuzz refuses a derandomized test)
        test = settings(max_examples=examples, deadline=None, suppress_health_check=quiet,
                        derandomize=False)(
            fuzz_test(name, space.strategy(variant.dtype), check))
        item = FuzzItem.from_parent(session, name=name, callobj=test)
        box.append(item)
        items.append(item)
    return items


def _validation_items(session, state) -> list[ValidationItem]:
    from adamconf.reference.config import DOCUMENTED_ERRORS

    items, seen = [], set()
    for variant in state.variants:
        key = (variant.name, variant.device)
        if key in seen:
            continue
        seen.add(key)
        for error in DOCUMENTED_ERRORS:
            name = f"valueerror[{variant.name}/{variant.device}:{error.parameter}={error.shown}]"
            items.append(ValidationItem.from_parent(session, name=name, variant=variant,
                                                    parameter=error.parameter, shown=error.shown,
                                                    override=error.override))
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

    if state.fuzz:
        items.extend(_fuzz_items(session, state))
        return
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
