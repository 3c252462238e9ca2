"""Naming what a failing backend implements: the dialects whose own reference and bound
its trajectory passes, and the fewest dialects that explain a variant's failures."""

from __future__ import annotations

from collections.abc import Sequence

from adamconf.conformance.corpus.cases import Case
from adamconf.conformance.judge.bounds import cached_bounds
from adamconf.conformance.judge.outcome import CaseResult, Observed
from adamconf.conformance.judge.verdict import judge
from adamconf.reference.balls import run_balls
from adamconf.reference.dialects import DIALECTS, PRECISION_DIALECTS, SPEC, Dialect
from adamconf.reference.problem import Problem, Trajectory
from adamconf.reference.step import run_float64

__all__ = ["dialect_reference", "candidate_dialects", "identify_dialects", "variant_dialects",
           "dialect_label"]


_dialect_cache: dict[tuple[str, str, str], Trajectory] = {}


def dialect_reference(case: Case, dialect: Dialect, dtype: str = "float64") -> Trajectory:
    """The dialect's trajectory, accurate enough to judge an implementation in ``dtype``.

    For float64 that is the ball engine's (every value proven correctly rounded, faster
    than mpmath). For narrower dtypes the float64 evaluation
    of the same formula is used: its own error is about 2^-29 of float32's bound (and less
    of float16's), so it cannot move a verdict, and it is a hundred times faster — which is
    what makes naming the dialect of every failing case affordable.
    """
    kind = "exact" if dtype == "float64" else "float64"
    key = (case.id, dialect.name, kind)
    if key not in _dialect_cache:
        _dialect_cache[key] = (run_balls(case.problem, dialect)
                               if kind == "exact" else run_float64(case.problem, dialect))
    return _dialect_cache[key]


def candidate_dialects(problem: Problem) -> list[Dialect]:
    return [d for d in DIALECTS.values() if d is not SPEC and any(
        d.can_differ(g.config.amsgrad, g.config.maximize, g.config.weight_decay)
        for g in problem.groups)]


def identify_dialects(case: Case, observed: Observed, dtype: str) -> list[str]:
    """The dialects whose own reference and bound this trajectory passes."""
    amsgrad = any(g.config.amsgrad for g in case.problem.groups)
    matches = []
    for dialect in candidate_dialects(case.problem):
        if amsgrad and observed.vmax is not None and dialect.vmax_kind != observed.vmax_kind:
            # the backend's v̂max state means something else than this dialect's: it cannot
            # confirm the dialect, and passing on θ alone would name it on half the evidence
            continue
        reference = dialect_reference(case, dialect, dtype)
        verdict = judge(case.problem, reference, observed, dtype, dialect=dialect,
                        bounds=cached_bounds(case.problem, reference, dtype, dialect))
        if verdict.status == "pass":
            matches.append(dialect.name)
    return matches or _precision_matches(case, observed, dtype)


_precision_cache: dict[tuple, tuple] = {}


def _precision_matches(case: Case, observed: Observed, dtype: str) -> list[str]:
    """Where no semantic dialect explains a failure: the precision dialects (hyperparameters
    rounded to a narrower format), alone and combined with each semantic one."""
    amsgrad = any(g.config.amsgrad for g in case.problem.groups)
    matches = []
    for precision in PRECISION_DIALECTS.values():
        for dialect in [SPEC, *candidate_dialects(case.problem)]:
            if amsgrad and observed.vmax is not None and dialect.vmax_kind != observed.vmax_kind:
                continue
            key = (case.id, precision.name, dialect.name, dtype)
            if key not in _precision_cache:
                problem = precision.apply(case.problem, dtype)
                reference = None
                if problem is not None:
                    reference = (run_balls(problem, dialect)
                                 if dtype == "float64" else run_float64(problem, dialect))
                _precision_cache[key] = (problem, reference)
            problem, reference = _precision_cache[key]
            if problem is None:
                break  # this precision dialect changes nothing here (or leaves the range)
            verdict = judge(problem, reference, observed, dtype, dialect=dialect,
                            bounds=cached_bounds(problem, reference, dtype, dialect))
            if verdict.status == "pass":
                matches.append(precision.name if dialect is SPEC
                               else f"{precision.name}+{dialect.name}")
    return matches


def variant_dialects(results: Sequence[CaseResult]) -> list[str] | None:
    """The fewest dialects that explain every failure: each failing case conforms to one.

    None when nothing failed; [] when some failing case conforms to no known dialect.
    Chosen greedily (the dialect explaining most unexplained failures first; ties by the
    catalogue's order),
    so MindSpore's mix of plain and amsgrad cases reads "eps-hat, ams-ignored+eps-hat".
    """
    failing = [set(r.dialects or ()) for r in results if r.status == "fail"]
    if not failing:
        return None
    if any(not names for names in failing):
        return []
    chosen: list[str] = []
    left = failing
    while left:
        counts: dict[str, int] = {}
        for names in left:
            for name in names:
                counts[name] = counts.get(name, 0) + 1
        order = list(DIALECTS)  # ties go to the catalogue's order: the simplest dialect first
        best = min(counts, key=lambda name: (-counts[name], order.index(name)
                                             if name in order else len(order), name))
        chosen.append(best)
        left = [names for names in left if best not in names]
    return chosen


def dialect_label(results: Sequence[CaseResult]) -> str:
    """What a variant implements, in words: '' (nothing failed), the dialects that explain
    every failure, or those that explain some and how many failures match none."""
    if variant_dialects(results) is None:
        return ""
    failing = [r for r in results if r.status == "fail"]
    unexplained = [r for r in failing if not r.dialects]
    cover = variant_dialects([r for r in failing if r.dialects]) or []
    if not unexplained:
        return ", ".join(cover)
    n = len(unexplained)
    tail = f"{n} failing case{'s match' if n > 1 else ' matches'} no known dialect"
    return f"{', '.join(cover)}; {tail}" if cover else tail
