"""Verdicts: one backend trajectory against the reference and the derived bound.

:func:`judge` compares every value the backend exposes (θ always; m, v, v̂max where it
exposes them) with the reference, element by element and step by step:

- a finite reference value must be within its bound (:mod:`.tolerance`);
- a non-finite reference value is compared by class: NaN, +∞, −∞ (a number where NaN is
  expected fails, and so does −∞ where +∞ is);
- a value in an inconclusive region (the linearisation breaks there) is not judged, and
  makes the verdict ``inconclusive`` unless something else fails — it never counts as pass.

By default the bound is judged twice: first the one that also covers devices that flush
subnormals to zero (it decides pass and fail), then — only where that one is inconclusive —
the tighter gradual-underflow bound, which may still show a pass; where that is inconclusive
too, the bound of the evaluations that keep the second moment (no positive v lost to
underflow where the denominator reads it), a subset of the faithful ones, which may show a
pass as well.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from adamconf.conformance.judge.bounds import (
    BIAS_CORRECTION,
    RANGE,
    REASONS,
    NONFINITE_POSSIBLE,
    Bounds,
    cached_kept_bounds,
    describe_reasons,
    error_bounds,
    scalar_format_of,
)
from adamconf.reference.dialects import SPEC, Dialect, get_dialect
from adamconf.reference.floats import FloatFormat, as_format, to_hex, ulp_distance
from adamconf.reference.problem import Problem, Trajectory

__all__ = ["Verdict", "judge", "STATUSES", "short_hex"]

STATUSES = ("pass", "fail", "inconclusive")
QUANTITIES = Trajectory.QUANTITIES
_NUMERIC_STRINGS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _enc(x: Any) -> Any:
    """Plain JSON: non-finite floats as the strings 'nan', 'inf', '-inf'."""
    if isinstance(x, dict):
        return {str(k): _enc(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_enc(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x
    return x


def _num(x: Any) -> float:
    return _NUMERIC_STRINGS[x] if isinstance(x, str) else float(x)


def _class(x: np.ndarray) -> np.ndarray:
    """0 finite, 1 NaN, 2 +∞, 3 −∞."""
    return np.select([np.isnan(x), x == np.inf, x == -np.inf], [1, 2, 3], 0)


def _ulp_bin_label(j: int) -> str:
    if j == 0:
        return "0"
    lo, hi = 1 << (j - 1), (1 << j) - 1
    return str(lo) if lo == hi else f"{lo}-{hi}"


@dataclass
class Verdict:
    """The judgement of one trajectory; ``to_json`` gives plain JSON types."""

    status: str
    dtype: str
    dialect: str
    underflow: str
    max_ratio: float
    max_ulp: int
    quantities: dict[str, dict]
    first_failure: dict | None
    inconclusive_reasons: list[str]
    ratio_by_step: dict[str, list[float]]
    ulp_histogram: dict[str, int]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return _enc(asdict(self))

    @classmethod
    def from_json(cls, data: dict) -> Verdict:
        data = json.loads(json.dumps(data))  # a private copy
        data["max_ratio"] = _num(data["max_ratio"])
        data["ratio_by_step"] = {q: [_num(x) for x in xs]
                                 for q, xs in data["ratio_by_step"].items()}
        for summary in data["quantities"].values():
            if "max_ratio" in summary:
                summary["max_ratio"] = _num(summary["max_ratio"])
        failure = data.get("first_failure")
        if failure:
            for key in ("bound", "error", "ratio"):
                failure[key] = _num(failure[key])
        return cls(**data)

    def describe(self, case_id: str, variant_id: str) -> str:
        """One line for a person: the first failure, or the overall outcome."""
        head = f"case {case_id} [{variant_id}]"
        f = self.first_failure
        if self.status == "fail" and f:
            where = f"step {f['step']} {f['quantity']} param {f['param']}"
            if f["index"]:
                where += "[" + ", ".join(str(i) for i in f["index"]) + "]"
            got = short_hex(f["got"])
            if f["kind"] == "nonfinite":
                detail = f"non-finite where the exact value is finite: {f.get('why', '')}"
            elif f["kind"] == "class":
                detail = "expected a value of that class"
            else:
                detail = f"{f['ulps']} ULP, {_times(f['ratio'])} bound"
            if f.get("decided_by") == "enclosure" and f["kind"] == "bound":
                detail += ("; the first-order bound is not resolved here: outside the "
                           "non-linear enclosure of every faithful evaluation")
            elif f.get("decided_by") == "enclosure":
                detail += ("; the first-order bound is not resolved here, and the non-linear "
                           "enclosure shows every faithful evaluation finite")
            return f"{head} {where}: got {got}, want {f['want']} ({detail})"
        if self.status == "pass":
            return (f"{head}: pass (max {_times(self.max_ratio)} bound, "
                    f"{self.max_ulp} ULP)")
        return f"{head}: inconclusive — " + "; ".join(self.inconclusive_reasons or self.notes)


def _times(r: float) -> str:
    if not math.isfinite(r):
        return f"{r}×"
    return f"{r:.2g}×" if r < 10 else f"{r:.3g}×"


def short_hex(h: str) -> str:
    """0x1.fffffe0000000p-3 → 0x1.fffffep-3 (a narrow dtype's value, without padding)."""
    if "p" not in h or "." not in h:
        return h
    mantissa, exponent = h.split("p")
    mantissa = mantissa.rstrip("0")
    if mantissa.endswith("."):
        mantissa = mantissa[:-1]
    return f"{mantissa}p{exponent}"


def _get_observed(observed: Any, name: str) -> list | None:
    return getattr(observed, name, None)


def _check_shapes(problem: Problem, observed: Any) -> None:
    theta = _get_observed(observed, "theta")
    if theta is None:
        raise ValueError("the observed trajectory has no theta")
    for name in QUANTITIES:
        arrays = _get_observed(observed, name)
        if arrays is None:
            continue
        if len(arrays) != len(problem.params):
            raise ValueError(f"observed {name}: {len(arrays)} arrays for "
                             f"{len(problem.params)} parameters")
        for i, (a, p) in enumerate(zip(arrays, problem.params, strict=True)):
            if a is None:
                continue
            shape = np.shape(a)
            want = (problem.steps,) + p.shape
            if shape != want:
                raise ValueError(f"observed {name} of param {i} has shape {shape}; "
                                 f"expected {want} (steps, *param.shape)")


BoundsArg = Bounds | tuple[Bounds, Bounds | Callable[[], Bounds] | None] | None


@dataclass(frozen=True)
class _Formats:
    """The formats a verdict reads, resolved once where :func:`judge` begins."""

    dtype: FloatFormat  # D, the values' format (its name is the verdict's dtype)
    held: FloatFormat  # where the scalars are held (:func:`.bounds.scalar_format`): ε kept?

    @classmethod
    def of(cls, dtype: FloatFormat) -> _Formats:
        return cls(dtype, scalar_format_of(dtype))


def judge(problem: Problem, reference: Trajectory, observed: Any, dtype: str | FloatFormat,
          *, dialect: Dialect = SPEC, bounds: BoundsArg = None) -> Verdict:
    """Judge ``observed`` (``theta`` and optional ``m``, ``v``, ``vmax`` lists of float64
    arrays shaped (steps, *shape), and ``vmax_kind``) against ``reference`` in ``dtype`` (a
    name, or the format itself: it is resolved here, once, for everything below).

    ``reference`` is ``dialect``'s trajectory (the spec's unless said). ``bounds``: a
    :class:`Bounds` decides alone; a pair (flush-mode bounds, gradual-mode bounds or a
    function that computes them) is used as in the module docstring without recomputing;
    ``None`` computes what is needed.
    """
    _check_shapes(problem, observed)
    formats = _Formats.of(as_format(dtype))
    fmt = formats.dtype
    if isinstance(bounds, Bounds):
        return _judge_with(problem, reference, observed, formats, bounds)
    flush, gradual = bounds if bounds is not None else (None, None)
    if flush is None:
        flush = error_bounds(problem, reference, fmt, dialect, underflow="flush")
    verdict = _judge_with(problem, reference, observed, formats, flush)
    if verdict.status != "inconclusive":
        return verdict
    if callable(gradual):
        gradual = gradual()
    if gradual is None:
        gradual = error_bounds(problem, reference, fmt, dialect, underflow="gradual")
    tighter = _judge_with(problem, reference, observed, formats, gradual)
    if tighter.status == "pass":
        tighter.notes.append("passes the gradual-underflow bound; where values come near "
                             f"{fmt.name}'s smallest normal, flushing subnormals to zero could "
                             "not be judged")
        return tighter
    if tighter.status == "fail" and tighter.first_failure:
        f = tighter.first_failure
        verdict.notes.append(
            f"step {f['step']} {f['quantity']} param {f['param']} exceeds the gradual-"
            "underflow bound, but is within what flushing subnormals to zero allows")
        return verdict
    # the evaluations that do not lose the second moment to underflow: a subset, consulted
    # for a pass only where nothing failed above
    kept = cached_kept_bounds(problem, reference, fmt, get_dialect(flush.dialect))
    keeping = _judge_with(problem, reference, observed, formats, kept)
    if keeping.status == "pass":
        keeping.notes.append(
            "passes the bound of the evaluations that keep the second moment (no positive v "
            "rounded or flushed to 0 where the denominator reads it, gradual underflow); one "
            f"that loses it — (1 − β2)·g² computed as 0 in {fmt.name}, a denominator of ε alone "
            "— could not be judged")
        return keeping
    return verdict


def _nonfinite_why(eps: float, fmt: FloatFormat, quantity: str) -> str:
    """Why a non-finite value where the exact one is finite is a failure, in words."""
    if 0 < eps < fmt.smallest_subnormal / 2:
        return (f"ε = {eps:g} is below half of {fmt.name}'s smallest subnormal "
                f"({fmt.smallest_subnormal:.3g}): an implementation that adds it in "
                f"{fmt.name} adds 0, and where v̂ is 0 in {fmt.name} (v underflows, or the "
                "gradient is 0) it divides by √v̂ + ε = 0 (0/0 is NaN, m̂/0 is ±∞); the "
                "documented ε keeps the denominator from 0 — computing the step in float32, "
                f"as torch's fused kernel does, keeps {quantity} finite")
    return (f"the exact {quantity} is finite and within {fmt.name}'s range, and so is every "
            "intermediate; the documented ε > 0 keeps the denominator from 0, so a "
            "non-finite value is the implementation's (ε lost or an intermediate overflowed)")


@dataclass(frozen=True)
class _Comparison:
    """One quantity of one parameter against the reference and its bound, element by element
    (arrays shaped (steps, n))."""

    failing: np.ndarray
    judged: np.ndarray  # both finite and conclusive: the ratio to the bound counts
    inconclusive: np.ndarray
    both_finite: np.ndarray
    reasons: np.ndarray  # the bounds' reason bits
    ratio: np.ndarray  # error/bound where judged, NaN elsewhere
    ulps: np.ndarray  # ULPs apart where both are finite, 0 elsewhere
    compared: int
    nonfinite: int  # reference values that are not finite
    first_failure: tuple | None  # (step index, param, element, the failure record)
    enclosed: int = 0  # judged values whose bound the non-linear enclosure gave


def _eps_kept(eps: np.ndarray, held: FloatFormat, underflow: str) -> np.ndarray:
    """Whether ε > 0 survives where the scalars are held (``held``; per column's ε): it is
    subnormal there (1e-40 in float32) and a device that flushes subnormals reads it as 0,
    faithfully."""
    if underflow == "flush":
        return eps >= held.smallest_normal
    return (eps >= held.smallest_subnormal / 2) & (eps > 0)


def _stored_zero(reference: Trajectory, index: int, steps: int, fmt: FloatFormat,
                 underflow: str) -> np.ndarray:
    """Steps (and all after them) where the exact v or v̂max of an element is nonzero but
    below the dtype's range, so an implementation that keeps its state in the dtype stores
    0 there, faithfully: a denominator of ε then follows, and may overflow the step."""
    tiny = fmt.smallest_normal if underflow == "flush" else fmt.smallest_subnormal / 2
    below = np.zeros((steps, reference.v[index].size // max(steps, 1)), dtype=bool)
    for name in ("v", "vmax"):
        x = np.asarray(reference.quantity(name)[index], dtype=np.float64).reshape(steps, -1)
        with np.errstate(invalid="ignore"):
            below |= (x != 0) & (np.abs(x) < tiny)
    return np.logical_or.accumulate(below, axis=0) if below.size else below


@dataclass(frozen=True)
class _Columns:
    """Parameters side by side, flattened to (steps, n) each: column j is element
    ``element[j]`` of parameter ``param[j]``, whose group's ε is ``eps[j]``."""

    param: np.ndarray
    element: np.ndarray
    eps: np.ndarray


def _compare(problem: Problem, columns: _Columns, name: str, got: np.ndarray,
             want: np.ndarray, bound: np.ndarray, reasons: np.ndarray, nan_ok: np.ndarray,
             formats: _Formats, underflow: str = "gradual", ties: np.ndarray | None = None,
             stored_zero: np.ndarray | None = None, enclosed: np.ndarray | None = None,
             finite_only: np.ndarray | None = None) -> _Comparison:
    """Within the bound where both are finite; by class (NaN, +∞, −∞) where the reference is
    not; never judged where inconclusive — except a non-finite value where the exact one is
    finite and in range, which fails. At an exact tie (the exact value is a float64
    midpoint) either neighbour of it is the reference.

    Where the non-linear enclosure gave the bound (``enclosed``) it bounds the finite
    outcomes: where it shows every faithful evaluation finite, a non-finite value fails (ε
    was lost: its non-finite rule applies though v is below the dtype's range); where a
    faithful one may be non-finite too (``finite_only``), a non-finite value is not judged."""
    fmt = formats.dtype
    kept = _eps_kept(columns.eps, formats.held, underflow)
    exempt = stored_zero if stored_zero is not None else np.zeros(got.shape, dtype=bool)
    if enclosed is not None:
        nonfinite = ~np.isfinite(got) & np.isfinite(want)
        exempt = exempt & ~(enclosed & ~finite_only & (reasons == 0))
        reasons = reasons | np.where(finite_only & nonfinite & ~(kept & ~exempt),
                                     NONFINITE_POSSIBLE, 0).astype(reasons.dtype)
    bad = reasons != 0
    both_finite = np.isfinite(got) & np.isfinite(want)
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.where(both_finite, np.abs(got - want), 0.0)
        if ties is not None and ties.any():
            other = np.nextafter(want, got)  # the midpoint's other neighbour, toward got
            error = np.where(ties & both_finite, np.minimum(error, np.abs(got - other)),
                             error)
    class_mismatch = (_class(got) != _class(want)) & ~(nan_ok & np.isnan(got))
    over = both_finite & (error > bound)
    # A rule the linearisation does not soften: NaN or ±∞ where the exact value is finite
    # and in the dtype's range, every intermediate in range (v below the dtype's range is
    # faithfully stored as 0: ``stored_zero``) and ε > 0 kept where the scalars are held —
    # the documented ε keeps the denominator from 0 — fails.
    # (nor where 1 − β^t is unresolved where it is held: rounded to 0 there, x/0 follows)
    lost = (~np.isfinite(got) & np.isfinite(want) & (np.abs(want) <= fmt.max)
            & ((reasons & (RANGE | BIAS_CORRECTION)) == 0) & kept)
    lost &= ~exempt
    failing = ((over | class_mismatch) & ~bad) | lost
    judged = both_finite & ~bad
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.where(judged, error / bound, np.nan)
        ratio = np.where(judged & (error == 0), 0.0, ratio)
    ulps = np.zeros(got.shape, dtype=np.int64)
    if both_finite.any():
        ulps[both_finite] = ulp_distance(got[both_finite], want[both_finite], fmt)
    first = None
    if failing.any():
        k, j = np.argwhere(failing)[0]  # row-major: earliest step, then parameter, element
        kind = "nonfinite" if lost[k, j] else ("class" if class_mismatch[k, j] else "bound")
        index, e = int(columns.param[j]), int(columns.element[j])
        record = _failure_record(problem, index, name, int(k), int(j), e, kind, got, want,
                                 bound, error, ulps, float(columns.eps[j]), fmt)
        record["decided_by"] = ("enclosure" if enclosed is not None and enclosed[k, j]
                                else "bound")
        first = (int(k), index, e, record)
    return _Comparison(failing=failing, judged=judged, inconclusive=bad,
                       both_finite=both_finite, reasons=reasons, ratio=ratio, ulps=ulps,
                       compared=got.size, nonfinite=int((~np.isfinite(want)).sum()),
                       first_failure=first,
                       enclosed=0 if enclosed is None else int((enclosed & judged).sum()))


def _failure_record(problem: Problem, index: int, name: str, k: int, j: int, e: int,
                    kind: str, got: np.ndarray, want: np.ndarray, bound: np.ndarray,
                    error: np.ndarray, ulps: np.ndarray, eps: float, fmt: FloatFormat) -> dict:
    """The failure at step index k, column j (element e of parameter ``index``), as
    :attr:`Verdict.first_failure` shows it."""
    shape = problem.params[index].shape
    where = np.unravel_index(e, shape) if problem.params[index].ndim else ()
    with np.errstate(divide="ignore", over="ignore"):  # a zero bound: ratio ∞
        ratio = float(error[k, j] / bound[k, j]) if kind == "bound" else math.inf
    return {
        "quantity": name, "step": k + 1,
        "t": problem.initial_step + k + 1, "param": index,
        "index": [int(x) for x in where], "kind": kind,
        "got": to_hex(got[k, j]), "want": to_hex(want[k, j]),
        "bound": float(bound[k, j]), "error": float(error[k, j]) if kind == "bound"
        else math.nan,
        "ulps": int(ulps[k, j]) if kind == "bound" else None,
        "ratio": ratio,
        "why": _nonfinite_why(eps, fmt, name) if kind == "nonfinite" else "",
    }


def _ulp_bins(ulps: np.ndarray) -> np.ndarray:
    """How many ULP distances fall in each bin: 0, 1, 2–3, 4–7, … (66 bins)."""
    bins = np.where(ulps == 0, 0, np.floor(np.log2(np.maximum(ulps, 1))).astype(np.int64) + 1)
    return np.bincount(np.minimum(bins, 65), minlength=66)


@dataclass
class _QuantityJudgement:
    """One quantity over all parameters: its summary and what the verdict aggregates."""

    summary: dict
    ratio_by_step: list[float]
    ulp_bins: np.ndarray
    reason_counts: dict[int, int]
    failures: list[tuple]  # (step index, quantity index, param, element, record)
    any_fail: bool = False
    any_inconclusive: bool = False


def _judge_quantity(problem: Problem, reference: Trajectory, arrays: list,
                    formats: _Formats, bounds: Bounds, q_index: int) -> _QuantityJudgement:
    """Compare one quantity's arrays, every parameter side by side in one comparison."""
    name = QUANTITIES[q_index]
    fmt = formats.dtype
    steps = problem.steps
    owner = problem.group_of_param()
    summary = {"compared": 0, "failed": 0, "inconclusive": 0, "nonfinite": 0,
               "max_ratio": 0.0, "max_ulp": 0, "first_failed_step": None, "enclosed": 0}
    result = _QuantityJudgement(summary=summary, ratio_by_step=[float("nan")] * steps,
                                ulp_bins=np.zeros(66, dtype=np.int64), reason_counts={},
                                failures=[])
    pieces: dict[str, list] = {key: [] for key in (
        "got", "want", "bound", "reasons", "nan_ok", "ties", "stored_zero", "param",
        "element", "eps", "enclosed", "finite_only")}
    for i in range(len(problem.params)):
        if arrays[i] is None:
            continue
        if name == "vmax" and not problem.groups[owner[i]].config.amsgrad:
            continue  # no v̂max without amsgrad (torch keeps none)
        got = np.asarray(arrays[i], dtype=np.float64).reshape(steps, -1)
        if got.size == 0:
            continue
        n = got.shape[1]
        pieces["got"].append(got)
        pieces["want"].append(
            np.asarray(reference.quantity(name)[i], dtype=np.float64).reshape(steps, -1))
        pieces["bound"].append(bounds.quantity(name)[i].reshape(steps, -1))
        pieces["reasons"].append(bounds.reasons[name][i].reshape(steps, -1))
        pieces["nan_ok"].append(bounds.nan_ok[name][i].reshape(steps, -1))
        pieces["enclosed"].append(bounds.enclosed[name][i].reshape(steps, -1))
        pieces["finite_only"].append(bounds.finite_only[name][i].reshape(steps, -1))
        if reference.ties:
            pieces["ties"].append(reference.ties[name][i].reshape(steps, -1))
        pieces["stored_zero"].append(_stored_zero(reference, i, steps, fmt, bounds.underflow))
        pieces["param"].append(np.full(n, i))
        pieces["element"].append(np.arange(n))
        pieces["eps"].append(np.full(n, problem.groups[owner[i]].config.eps))
    if not pieces["got"]:
        return result
    joined = {key: np.concatenate(value, axis=-1) if value else None
              for key, value in pieces.items()}
    columns = _Columns(joined["param"], joined["element"], joined["eps"])
    c = _compare(problem, columns, name, joined["got"], joined["want"], joined["bound"],
                 joined["reasons"], joined["nan_ok"], formats, bounds.underflow,
                 joined["ties"], joined["stored_zero"], joined["enclosed"],
                 joined["finite_only"])
    summary["compared"] = c.compared
    summary["nonfinite"] = c.nonfinite
    summary["failed"] = int(c.failing.sum())
    if summary["failed"]:
        summary["first_failed_step"] = int(np.argmax(c.failing.any(axis=1))) + 1
    summary["inconclusive"] = int(c.inconclusive.sum())
    summary["enclosed"] = c.enclosed
    if c.judged.any():
        summary["max_ratio"] = float(np.nanmax(c.ratio))
        with np.errstate(all="ignore"):
            per_step = np.nanmax(np.where(c.judged, c.ratio, -np.inf), axis=1)
        per_step = np.where(per_step == -np.inf, np.nan, per_step)
        result.ratio_by_step = [float(x) for x in per_step]
    if c.both_finite.any():
        summary["max_ulp"] = int(c.ulps[c.both_finite].max())
        result.ulp_bins = _ulp_bins(c.ulps[c.both_finite])
    if c.inconclusive.any():
        result.any_inconclusive = True
        for bit in REASONS:
            count = int(((c.reasons & bit) != 0).sum())
            if count:
                result.reason_counts[bit] = count
    if c.first_failure is not None:
        result.any_fail = True
        k, i, e, record = c.first_failure
        result.failures.append((k, q_index, i, e, record))
    return result


def _judge_with(problem: Problem, reference: Trajectory, observed: Any, formats: _Formats,
                bounds: Bounds) -> Verdict:
    """One verdict from one set of bounds: each exposed quantity judged, then combined."""
    notes: list[str] = []
    judged: dict[str, _QuantityJudgement] = {}
    for q_index, name in enumerate(QUANTITIES):
        arrays = _get_observed(observed, name)
        if arrays is None:
            if name != "theta":
                notes.append(f"{name} not compared: the backend does not expose it")
            continue
        observed_kind = getattr(observed, "vmax_kind", "hat")
        if name == "vmax" and observed_kind != reference.vmax_kind:
            notes.append(f"vmax not compared: the backend keeps the max of {observed_kind} v, "
                         f"the reference the max of {reference.vmax_kind} v")
            continue
        judged[name] = _judge_quantity(problem, reference, arrays, formats, bounds, q_index)
    return _combine(judged, formats.dtype.name, bounds, notes)


def _combine(judged: dict[str, _QuantityJudgement], dtype: str, bounds: Bounds,
             notes: list[str]) -> Verdict:
    """The verdict over all quantities: fail if any fails, else inconclusive if any is."""
    overall_ratio, overall_ulp = 0.0, 0
    ulp_bins = np.zeros(66, dtype=np.int64)
    reason_counts: dict[int, int] = {}
    failures: list[tuple] = []
    for j in judged.values():
        overall_ratio = max(overall_ratio, j.summary["max_ratio"])
        overall_ulp = max(overall_ulp, j.summary["max_ulp"])
        ulp_bins += j.ulp_bins
        for bit, count in j.reason_counts.items():
            reason_counts[bit] = reason_counts.get(bit, 0) + count
        failures.extend(j.failures)
    any_fail = any(j.any_fail for j in judged.values())
    any_inconclusive = any(j.any_inconclusive for j in judged.values())
    first = min(failures, key=lambda f: f[:4])[4] if failures else None
    status = "fail" if any_fail else ("inconclusive" if any_inconclusive else "pass")
    enclosed = sum(j.summary["enclosed"] for j in judged.values())
    if enclosed:
        notes = notes + [f"{enclosed} values judged by the non-linear enclosure, where the "
                         "first-order bound is not resolved (its intervals are wider)"]
    reasons_text = [f"{describe_reasons(bit, dtype)[0]} ({count} values)"
                    for bit, count in sorted(reason_counts.items())]
    last = int(np.max(np.nonzero(ulp_bins)[0])) if ulp_bins.any() else -1
    histogram = {_ulp_bin_label(j): int(ulp_bins[j]) for j in range(last + 1)}
    return Verdict(status=status, dtype=dtype, dialect=bounds.dialect,
                   underflow=bounds.underflow, max_ratio=float(overall_ratio),
                   max_ulp=int(overall_ulp), quantities={n: j.summary for n, j in judged.items()},
                   first_failure=first, inconclusive_reasons=reasons_text,
                   ratio_by_step={n: j.ratio_by_step for n, j in judged.items()},
                   ulp_histogram=histogram, notes=notes)
