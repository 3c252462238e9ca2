"""The records of a run and the one rule that turns them into conformance.

A case ends as one :class:`Status`. A variant (implementation/device/dtype) *conforms*
only when at least one of its selected cases passed and none failed or erred; a variant
whose selected cases were all unsupported or inconclusive has *no verdict* — nothing was
judged, so nothing is claimed. :func:`decide` is that rule; every report and the exit
code read it, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from adamconf.adapters.base import BackendInfo, Variant

__all__ = ["Status", "STATUSES", "Conformance", "Observed", "CaseResult", "ValidationResult",
           "RunResult", "VariantDecision", "decide", "decide_variants"]


class Status(str, Enum):
    """How one case ended on one variant."""

    PASS = "pass"                  # every value within its bound
    FAIL = "fail"                  # some value outside its bound (or non-finite where finite)
    INCONCLUSIVE = "inconclusive"  # the bound cannot decide here; never counted as a pass
    UNSUPPORTED = "unsupported"    # the variant cannot express the case (with the reason)
    ERROR = "error"                # the backend crashed, hung or returned something unusable

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


STATUSES = tuple(s.value for s in Status)


class Conformance(str, Enum):
    """The verdict on a variant, or on a whole run."""

    CONFORMS = "conforms"
    DOES_NOT_CONFORM = "does not conform"
    NO_VERDICT = "no verdict"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


@dataclass
class Observed:
    """A backend's trajectory: θ per step, and the state where the backend exposes it."""

    theta: list[np.ndarray]
    m: list[np.ndarray] | None = None
    v: list[np.ndarray] | None = None
    vmax: list[np.ndarray] | None = None
    vmax_kind: str = "hat"

    @classmethod
    def from_payload(cls, payload: dict) -> Observed:
        return cls(payload["theta"], payload.get("m"), payload.get("v"), payload.get("vmax"),
                   payload.get("vmax_kind", "hat"))


@dataclass
class CaseResult:
    case_id: str
    variant: Variant
    status: Status
    message: str = ""
    verdict: object | None = None  # adamconf.conformance.judge.verdict.Verdict
    dialects: list[str] | None = None  # the dialects this trajectory conforms to instead
    seconds: float = 0.0
    tags: tuple[str, ...] = ()
    repro: str = ""
    departure: str = ""  # where and how it departs, where no model explains it
    contradicted: list[str] | None = None  # passing cases the variant's model fails
    # the trajectory, kept until the variant's model is searched (never written out)
    observed: Observed | None = field(default=None, repr=False, compare=False)
    spec_bounds: object | None = field(default=None, repr=False, compare=False)  # a passing
    # case's bounds against the spec, kept with its trajectory (never written out)

    def __post_init__(self) -> None:
        self.status = Status(self.status)  # a typo is a ValueError here, not a silent status

    def to_json(self) -> dict:
        return {"case": self.case_id, "variant": self.variant.to_json(),
                "status": self.status.value, "message": self.message, "tags": list(self.tags),
                "verdict": self.verdict.to_json() if self.verdict is not None else None,
                "dialects": self.dialects, "departure": self.departure,
                "seconds": round(self.seconds, 4), "repro": self.repro}


@dataclass
class ValidationResult:
    """Whether constructing the optimizer with a documented-invalid value raised ValueError."""

    variant: str
    device: str
    parameter: str
    value: str
    raised: str | None  # the exception's type and message, or None
    ok: bool

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class VariantDecision:
    """The verdict on one variant and what it rests on."""

    variant: str
    conformance: Conformance
    selected: int  # case × variant pairs selected
    judged: int    # of which ended pass or fail
    counts: dict[str, int]
    reason: str

    @property
    def judged_fraction(self) -> float:
        return self.judged / self.selected if self.selected else 0.0

    def to_json(self) -> dict:
        return {"variant": self.variant, "conformance": self.conformance.value,
                "selected": self.selected, "judged": self.judged, "counts": self.counts,
                "reason": self.reason}


def _counts(results: Sequence[CaseResult]) -> dict[str, int]:
    out = {s: 0 for s in STATUSES}
    for r in results:
        out[Status(r.status).value] += 1
    return out


def decide(variant: str, results: Sequence[CaseResult], *, min_judged: float = 0.0
           ) -> VariantDecision:
    """The rule: conforms ⇔ some case passed, none failed or erred, and at least
    ``min_judged`` of the selected cases were judged (pass or fail)."""
    counts = _counts(results)
    judged = counts["pass"] + counts["fail"]
    selected = len(results)
    bad = counts["fail"] + counts["error"]
    if bad:
        parts = [f"{counts[s]} {s}" for s in ("fail", "error") if counts[s]]
        return VariantDecision(variant, Conformance.DOES_NOT_CONFORM, selected, judged, counts,
                               " and ".join(parts))
    if counts["pass"] == 0:
        why = ("none of the selected cases targets this variant's dtype" if not selected else
               f"none of its {selected} selected cases could be judged "
               f"({counts['unsupported']} unsupported, {counts['inconclusive']} inconclusive)")
        return VariantDecision(variant, Conformance.NO_VERDICT, selected, judged, counts, why)
    if min_judged and judged < min_judged * selected:
        return VariantDecision(variant, Conformance.DOES_NOT_CONFORM, selected, judged, counts,
                               f"only {judged} of {selected} selected cases judged "
                               f"({judged / selected:.0%}), below --min-judged "
                               f"{min_judged:.0%}")
    return VariantDecision(variant, Conformance.CONFORMS, selected, judged, counts,
                           f"{counts['pass']} passed, {judged} of {selected} judged")


def decide_variants(results: Sequence[CaseResult], *, min_judged: float = 0.0
                    ) -> list[VariantDecision]:
    """One decision per variant, in the order the variants first appear."""
    by_variant: dict[str, list[CaseResult]] = {}
    for r in results:
        by_variant.setdefault(r.variant.id, []).append(r)
    return [decide(vid, rs, min_judged=min_judged) for vid, rs in by_variant.items()]


@dataclass
class RunResult:
    """One backend's run: the results per case and variant, the constructor checks."""

    backend: str
    info: BackendInfo | None
    results: list[CaseResult] = field(default_factory=list)
    validation: list[ValidationResult] = field(default_factory=list)
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)
    variants_selected: list[Variant] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return _counts(self.results)

    @property
    def min_judged(self) -> float:
        return float(self.settings.get("min_judged") or 0.0)

    def decisions(self) -> list[VariantDecision]:
        decisions = decide_variants(self.results, min_judged=self.min_judged)
        seen = {d.variant for d in decisions}
        for v in self.variants_selected:  # a selected variant that no case targets
            if v.id not in seen:
                decisions.append(decide(v.id, [], min_judged=self.min_judged))
        return decisions

    @property
    def conformance(self) -> Conformance:
        """does not conform (some variant fails, or a documented ValueError is not raised)
        > no verdict (some variant could not be judged, or nothing was selected) > conforms."""
        decisions = self.decisions()
        if any(d.conformance is Conformance.DOES_NOT_CONFORM for d in decisions) or not all(
                v.ok for v in self.validation):
            return Conformance.DOES_NOT_CONFORM
        if not decisions or any(d.conformance is Conformance.NO_VERDICT for d in decisions):
            return Conformance.NO_VERDICT
        return Conformance.CONFORMS

    @property
    def conforms(self) -> bool:
        return self.conformance is Conformance.CONFORMS

    def no_verdict_variants(self) -> list[str]:
        return [d.variant for d in self.decisions() if d.conformance is Conformance.NO_VERDICT]
