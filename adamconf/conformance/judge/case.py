"""Judging one case on one variant: the verdict against the spec, then, for a failure, the
dialects that the trajectory conforms to instead."""

from __future__ import annotations

from adamconf.adapters.base import Variant
from adamconf.conformance.corpus.golden import GoldenCase
from adamconf.conformance.judge.bounds import cached_bounds
from adamconf.conformance.judge.identify import describe_departure, identify_dialects
from adamconf.conformance.judge.outcome import CaseResult, Observed, Status
from adamconf.conformance.judge.verdict import judge
from adamconf.reference.dialects import SPEC
from adamconf.reference.floats import as_format

__all__ = ["judge_case"]


def judge_case(golden: GoldenCase, variant: Variant, observed: Observed, *, repro: str = "",
               identify: bool | str = True) -> CaseResult:
    """The verdict against the spec. ``identify``: True searches the smallest model this
    failing case alone conforms to; ``"keep"`` keeps the trajectory of a passing or failing
    case on the result instead, for the variant's search over all its cases
    (:func:`adamconf.conformance.judge.identify.identify_variants`); False neither."""
    problem, reference = golden.case.problem, golden.reference
    fmt = as_format(variant.dtype)  # the variant's dtype, resolved once for all below
    bounds = cached_bounds(problem, reference, fmt, SPEC)
    verdict = judge(problem, reference, observed, fmt, bounds=bounds)
    result = CaseResult(golden.id, variant, Status(verdict.status), verdict=verdict,
                        tags=golden.case.tags, repro=repro)
    if result.status is Status.FAIL:
        result.message = verdict.describe(golden.id, variant.id)
        if identify is True:
            result.dialects = identify_dialects(golden.case, observed, fmt, verdict)
            if not result.dialects:
                result.departure = describe_departure(golden.case, observed, verdict,
                                                      reference)
    elif result.status is Status.INCONCLUSIVE:
        result.message = "; ".join(verdict.inconclusive_reasons)
    if identify == "keep" and result.status in (Status.FAIL, Status.PASS):
        result.observed = observed
        if result.status is Status.PASS and verdict.underflow == "flush":
            result.spec_bounds = bounds[0]  # for the variant's search, without a recompute
    return result
