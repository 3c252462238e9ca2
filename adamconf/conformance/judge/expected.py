"""What each backend is expected to implement: one file per backend, shipped and checked.

``adamconf/conformance/expected/<backend>.json`` says, per variant (an fnmatch glob over
``name/device/dtype``; the first that matches), which point of the model it implements —
``spec`` where it conforms — and why, as read from the framework's source; and, for the
few failures the model cannot express, a reason per (variant, case) glob, each checked to
still match a failure. A run compares every variant with it: *as expected*, *changed*
(now another model: a framework release that changes its Adam is a finding), *new
failure* (expected to conform, fails) or *now conforms*. The pytest plugin marks an item
xfail only where its trajectory conforms to the variant's expected model, or a reason
names it; findings.md prints the comparison.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from adamconf.conformance.errors import UsageError
from adamconf.conformance.judge.identify import variant_dialects
from adamconf.conformance.judge.outcome import CaseResult
from adamconf.reference.dialects import get_dialect

__all__ = ["EXPECTED_DIR", "Expectation", "Expected", "load_expected", "compare"]

EXPECTED_DIR = Path(__file__).resolve().parent.parent / "expected"

AS_EXPECTED = "as expected"
CHANGED = "changed"
NEW_FAILURE = "new failure"
NOW_CONFORMS = "now conforms"


@dataclass(frozen=True)
class Expectation:
    """What a variant is expected to implement: a model name (``spec`` where it conforms)."""

    pattern: str
    implements: str
    why: str = ""


@dataclass(frozen=True)
class Unexplained:
    """A failure the model cannot express, with the reason found for it."""

    variant: str
    case: str
    why: str


@dataclass
class Expected:
    backend: str
    seen_with: str
    variants: list[Expectation]
    unexplained: list[Unexplained] = field(default_factory=list)
    path: Path | None = None
    validation: list[tuple[str, str]] = field(default_factory=list)  # (item glob, why)

    def for_variant(self, variant_id: str) -> Expectation:
        for e in self.variants:
            if fnmatch.fnmatchcase(variant_id, e.pattern):
                return e
        return Expectation("*", "spec", "no entry: expected to conform")

    def validation_reason(self, item: str) -> str | None:
        """Why a documented ValueError item is known not to be raised, or None."""
        for pattern, why in self.validation:
            # only * and ? are wildcards: the brackets of valueerror[...] are literal
            if fnmatch.fnmatchcase(item, pattern.replace("[", "[[]")):
                return why
        return None

    def reason_for(self, variant_id: str, case_id: str) -> str | None:
        for u in self.unexplained:
            if fnmatch.fnmatchcase(variant_id, u.variant) and fnmatch.fnmatchcase(case_id,
                                                                                   u.case):
                return u.why
        return None


def _read(path: Path) -> Expected:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        expected = Expected(
            data["backend"], data.get("seen_with", ""),
            [Expectation(v["variants"], v["implements"], v.get("why", ""))
             for v in data["variants"]],
            [Unexplained(u["variant"], u["case"], u["why"]) for u in data.get("unexplained", ())],
            path, [(x["item"], x["why"]) for x in data.get("validation", ())])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"expected-dialects file {path} is not readable: {exc}; it holds "
                         "{'backend', 'variants': [{'variants', 'implements', 'why'}], "
                         "'unexplained': [{'variant', 'case', 'why'}]}") from None
    for e in expected.variants:
        if e.implements != "spec":
            try:
                get_dialect(e.implements)
            except ValueError as exc:
                raise UsageError(f"{path}: {e.pattern}: {exc}") from None
    return expected


def load_expected(backend: str, path: Path | str | None = None) -> Expected | None:
    """The expected dialects of a backend (the shipped file, or ``path``); None if none."""
    p = Path(path) if path else EXPECTED_DIR / f"{backend}.json"
    if not p.is_file():
        if path:
            raise UsageError(f"expected-dialects file {p} does not exist")
        return None
    return _read(p)


def _implemented(results: Sequence[CaseResult]) -> str | None:
    """The model a variant's results show: 'spec' (nothing failed), the one model its
    explained failures name, or None (none explained, or several models)."""
    failing = [r for r in results if r.status == "fail"]
    if not failing:
        return "spec"
    names = {n for r in failing for n in (r.dialects or ())}
    return names.pop() if len(names) == 1 else None


def compare(expected: Expected | None, variant_id: str, results: Sequence[CaseResult]
            ) -> tuple[str, str]:
    """(status, words): the variant against what its backend is expected to implement.
    Failures the model does not explain are counted in the words: with the reason the file
    states for them, or without one (a finding to look at)."""
    if expected is None:
        return "", ""
    want = expected.for_variant(variant_id).implements
    failing = [r for r in results if r.status == "fail"]
    unexplained = [r for r in failing if not r.dialects]
    reasoned = [r for r in unexplained if expected.reason_for(variant_id, r.case_id)]
    got = _implemented(results)
    # every failure is one the file states a reason for (none is the model's to name)
    only_reasoned = bool(failing) and len(reasoned) == len(failing)
    if want != "spec" and not failing:
        return NOW_CONFORMS, f"now conforms (expected {want})"
    if want == "spec" and failing and not only_reasoned:
        return NEW_FAILURE, f"new failure (expected to conform): {got or 'no one model'}"
    if got == want or only_reasoned:
        notes = []
        if reasoned:
            notes.append(f"{len(reasoned)} failure{'s' if len(reasoned) != 1 else ''} with a "
                         "stated reason")
        if len(unexplained) > len(reasoned):
            n = len(unexplained) - len(reasoned)
            notes.append(f"{n} failure{'s' if n != 1 else ''} it does not explain, no reason "
                         "stated")
        return AS_EXPECTED, f"as expected: {want}" + (f" ({'; '.join(notes)})" if notes
                                                      else "")
    return CHANGED, f"changed: now {got or 'no one model'} (expected {want})"
