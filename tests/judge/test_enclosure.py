"""The non-linear enclosure against evaluations written out, and the judge where it decides.

- Its pieces hold every rounding they claim: an operation rounded to D, float32 or not at
  all at each end of an interval, flushed or not; a divisor's smallest positive outcome; the
  update γ·m/((1−β1^t)·d) in every association of its factors, each operation rounded
  exactly (rational arithmetic) to D or to float32.
- Where the first-order bound is unresolved, it decides: lr = 0 and a large ε in float16,
  zero gradients; a value outside it fails and says so; a non-finite value fails where every
  faithful evaluation is finite, and is not judged where one may not be.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from correct_impls import FAMILY
from hypothesis import given, settings
from hypothesis import strategies as st

from adamconf import Adam
from adamconf.conformance.judge.bounds import NONFINITE_POSSIBLE, error_bounds
from adamconf.conformance.judge.enclosure import Rounding, chain_roundings
from adamconf.conformance.judge.verdict import judge
from adamconf.conformance.tools.sharpness import Recipe, Trace, emulate
from adamconf.reference.config import GroupConfig
from adamconf.reference.engine import run_reference
from adamconf.reference.floats import FORMATS, round_to
from adamconf.reference.problem import Group, Problem

F16, F32 = FORMATS["float16"], FORMATS["float32"]


def _exact_round(x: Fraction, fmt, flush: bool) -> Fraction:
    """x rounded to nearest in ``fmt``, ties to even, from its exact value; flushed below
    the smallest normal where ``flush``."""
    if x == 0:
        return Fraction(0)
    sign = -1 if x < 0 else 1
    a = abs(x)
    exponent = math.floor(math.log2(a.numerator) - math.log2(a.denominator))
    while Fraction(2) ** exponent > a:
        exponent -= 1
    while Fraction(2) ** (exponent + 1) <= a:
        exponent += 1
    quantum = Fraction(2) ** max(exponent - fmt.precision + 1, fmt.emin - fmt.precision + 1)
    n = a / quantum
    floor = n.numerator // n.denominator
    rest = n - floor
    n = floor + (1 if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2) else 0)
    r = sign * n * quantum
    if flush and abs(r) < Fraction(fmt.smallest_normal):
        return Fraction(0)
    return r


def _associations(leaves, denominator, scalar, formats, flush):
    """Every value the product ∏ numerators / ∏ denominators takes over its associations:
    each intermediate a product or quotient of some factors (a reciprocal 1/b, a product of
    denominators used as a divisor), each operation rounded to one of ``formats`` (chosen per
    operation), a scalar-only intermediate held in float32 and then, where it meets an
    array, kept or rounded to the first format. No numerator sits in a divisor, and a
    reciprocal is of one denominator."""
    count = len(leaves)
    D = formats[0]
    memo: dict = {}

    def rounded(x, is_scalar):
        fmts = [F32] if is_scalar else formats
        return {_exact_round(x, f, flush) for f in fmts}

    def values(members: frozenset, inverted: bool):
        """Values of ∏ over ``members`` (of its reciprocal where ``inverted``)."""
        key = (members, inverted)
        if key in memo:
            return memo[key]
        out = set()
        pure = all(denominator[i] for i in members)
        if (inverted and not pure) or (pure and not inverted and len(members) > 1):
            # a numerator inside a divisor, or the reciprocal of a product of divisors:
            # not an association chain_roundings covers
            memo[key] = out
            return out
        if len(members) == 1:
            (i,) = members
            if inverted == denominator[i]:  # a factor as it is
                out = {leaves[i]}
            elif denominator[i]:  # a reciprocal, rounded
                out = rounded(1 / leaves[i], scalar[i])
        else:
            only_scalars = all(scalar[i] for i in members)
            items = sorted(members)
            for size in range(1, len(items)):
                for part in itertools.combinations(items, size):
                    a, b = frozenset(part), members - frozenset(part)
                    # ∏(S) = ∏(a)·∏(b) = ∏(a)/(1/∏(b)); 1/∏(S) likewise
                    for x, y, divide in ((values(a, inverted), values(b, inverted), False),
                                         (values(a, inverted), values(b, not inverted), True)):
                        for u in x:
                            for w in y:
                                if divide and w == 0:
                                    continue
                                u2 = _at_boundary(u, a, only_scalars)
                                w2 = _at_boundary(w, b, only_scalars)
                                for uu in u2:
                                    for ww in w2:
                                        if divide and ww == 0:
                                            continue
                                        exact = uu / ww if divide else uu * ww
                                        out |= rounded(exact, only_scalars)
        memo[key] = out
        return out

    def _at_boundary(value, members, joined_only_scalars):
        """A scalar-only operand meeting an array: kept in float32, or rounded to D."""
        if joined_only_scalars or not all(scalar[i] for i in members) or len(members) == 1:
            return {value}
        return {value, _exact_round(value, D, flush)}

    return values(frozenset(range(count)), False)


def _leaf(draw, fmt, low, high):
    exponent = draw(st.integers(low, high))
    k = draw(st.integers(2 ** (fmt.precision - 1), 2 ** fmt.precision - 1))
    return Fraction(k) * Fraction(2) ** (exponent - fmt.precision + 1)


@settings(deadline=None)
@given(data=st.data(), flush=st.booleans(), folded=st.booleans())
def test_chain_roundings_hold_every_association(data, flush, folded):
    """γ·m/(bc1·d) (and γ·m·√bc2/(bc1·d)) in float16 with subnormal intermediates likely:
    every association, each operation rounded exactly to float16 or float32, lies within
    the relative factor and absolute term of chain_roundings."""
    draw = data.draw
    gamma = _leaf(draw, F32, -14, 0)
    m = _leaf(draw, F16, -24, -2) * draw(st.sampled_from([1, -1]))
    bc1 = _leaf(draw, F32, -10, -1)
    d = _leaf(draw, F16, -20, 0)
    leaves = [gamma, m, bc1, d] + ([_leaf(draw, F32, -12, -1)] if folded else [])
    denominator = [False, False, True, True] + [False] * folded
    scalar = [True, False, True, False] + [True] * folded
    exact = gamma * m / (bc1 * d) * (leaves[4] if folded else 1)
    mags = [(np.array(float(abs(x))), np.array(float(abs(x)))) for x in leaves]
    rel_lo, rel_hi, absolute, _ = chain_roundings(mags, denominator, scalar, F16, F32, flush,
                                                  np.array(abs(float(exact))))
    q = float(exact)
    lo = (q * rel_lo if q >= 0 else q * rel_hi) - absolute
    hi = (q * rel_hi if q >= 0 else q * rel_lo) + absolute
    # the sum of the largest terms is not exact in float64: a relative 1e-12 of slack
    slack = 1e-12 * (abs(q) + absolute)
    for value in _associations(leaves, denominator, scalar, [F16, F32], flush):
        assert lo - slack <= float(value) <= hi + slack, (
            [float(x) for x in leaves], float(value), q, lo, hi)


@settings(deadline=None)
@given(lo=st.floats(-1e5, 1e5), width=st.floats(0, 1e3), flush=st.booleans(),
       dtype=st.sampled_from(["float16", "bfloat16", "float32"]),
       scale=st.sampled_from([1.0, 2.0**-20, 2.0**-120, 2.0**-140]))
def test_an_operation_rounded_anywhere_lies_in_its_interval(lo, width, flush, dtype, scale):
    fmt = FORMATS[dtype]
    R = Rounding(fmt, flush, F32)
    a, b = np.array(lo * scale), np.array((lo + width) * scale)
    out_lo, out_hi = R.op(a, b)
    for x in np.linspace(a, b, 17):
        for name in {dtype, "float32", "float64"}:
            r = round_to(x, name)
            # the flush model: flushed or not (a device that flushes, one that does not)
            outcomes = [r, 0.0 * r] if flush and abs(r) < FORMATS[name].smallest_normal else [r]
            for value in outcomes:
                assert out_lo <= value <= out_hi, (x, name, value, out_lo, out_hi)


def test_a_divisor_starts_at_its_smallest_positive_outcome():
    R = Rounding(F16, False, F32)
    # 1e-8 is 0 in float16 but not in float32: the positive outcomes start at about 1e-8
    (low, high), zero = R.divisor(np.array([1e-8, 0.0, 0.5]), np.array([1e-3, 0.0, 0.75]))
    assert zero.tolist() == [True, True, False]
    assert 0.99e-8 < low[0] <= 1e-8 and low[1] > 0 and low[2] == 0.5
    assert high[0] >= 1e-3 and high[2] >= 0.75
    flushing = Rounding(F32, True, F32)
    (low, _), zero = flushing.divisor(np.array([1e-40]), np.array([1e-30]))
    assert zero[0] and 0 < low[0] <= 1e-40


def test_held_scalar_stays_positive_where_the_dtype_would_lose_it():
    R = Rounding(F16, False, F32)
    lo, hi = R.held(np.array([1e-8]), np.array([1e-8]))
    assert 0.99e-8 < lo[0] <= 1e-8 <= hi[0]
    lo, hi = R.held(np.array([1e-3]), np.array([1e-3]))  # rounded to float16 too
    assert lo[0] <= 1e-3 and hi[0] >= float(round_to(1e-3, "float16"))


# --- the enclosure deciding, in the judge --------------------------------------------------

def problem_of(params, grads, lrs=None, **config):
    cfg = GroupConfig(**config)
    return Problem((Group(cfg, (np.asarray(params, float),),
                          None if lrs is None else np.asarray(lrs, float)),),
                   (np.asarray(grads, float),))


def _decided(problem, dtype):
    """(flush, gradual) bounds, and whether any θ value was enclosed."""
    reference = run_reference(problem)
    bounds = [error_bounds(problem, reference, dtype, underflow=mode)
              for mode in ("flush", "gradual")]
    return reference, bounds


def test_lr_zero_in_float16_is_decided_whatever_the_denominator():
    # γ = 0 with v underflowing in float16 and ε = 1e-8 lost there: θ cannot move
    p = problem_of([0.5, -0.25, 0.125], [[0.0, 0.003, -0.002]] * 3, lrs=[0.0, 0.0, 0.0],
                   lr=0.0)
    reference, bounds = _decided(p, "float16")
    for recipe in FAMILY["float16"]:
        verdict = judge(p, reference, emulate(p, recipe), "float16", bounds=tuple(bounds))
        assert verdict.status == "pass", verdict.describe("lr0", recipe.name)
    moved = emulate(p, Recipe("d", "float16"))
    moved.theta[0][1, 1] = float(round_to(-0.25 + 2.0**-10, "float16"))
    verdict = judge(p, reference, moved, "float16", bounds=tuple(bounds))
    assert verdict.status == "fail"


def test_large_eps_in_float16_is_decided_and_a_departure_says_the_enclosure_decided():
    """ε = 1e-3 against gradients near 1e-3: v = (1 − β2)·g² underflows in float16, the
    denominator's first-order bound reaches half its value, and d ≥ ε decides."""
    grads = [[0.00098, -0.0031, 0.0021, 0.0]] * 4
    p = problem_of([0.5, -1.0, 0.25, 2.0], grads, lr=0.1, eps=1e-3)
    reference, bounds = _decided(p, "float16")
    flush = bounds[0]
    assert flush.enclosed["theta"][0].any()
    assert not flush.inconclusive["theta"][0].any()
    for recipe in FAMILY["float16"]:
        verdict = judge(p, reference, emulate(p, recipe), "float16", bounds=tuple(bounds))
        assert verdict.status == "pass", verdict.describe("eps-large", recipe.name)
        assert any("non-linear enclosure" in note for note in verdict.notes)
    k, j = np.argwhere(flush.enclosed["theta"][0])[0]
    wrong = emulate(p, Recipe("d", "float16"))
    wrong.theta[0][k, j] = reference.theta[0][k, j] + 2 * flush.theta[0][k, j]
    verdict = judge(p, reference, wrong, "float16", bounds=tuple(bounds))
    assert verdict.status == "fail"
    assert verdict.first_failure["decided_by"] == "enclosure"
    assert "outside the non-linear enclosure" in verdict.describe("eps-large", "wrong")
    # a NaN where every faithful evaluation is finite (d ≥ ε) fails
    nan = emulate(p, Recipe("d", "float16"))
    nan.theta[0][k:, j] = np.nan
    verdict = judge(p, reference, nan, "float16", bounds=tuple(bounds))
    assert verdict.status == "fail" and verdict.first_failure["kind"] in ("nonfinite", "class")


def test_a_zero_denominator_a_faithful_evaluation_may_meet_is_not_judged():
    """ε = 0 and lr = 0: θ stays where every outcome is finite, but (1 − β2)·g² underflows
    to 0 in float16 and 0/0 is NaN, faithfully: a NaN there is not judged."""
    p = problem_of([0.5, 1.0], [[0.002, 0.25], [0.003, 0.25]], lrs=[0.0, 0.0], lr=0.0,
                   eps=0.0)
    reference, bounds = _decided(p, "float16")
    assert np.isfinite(reference.theta[0]).all()
    for b in bounds:
        assert b.enclosed["theta"][0][:, 0].all() and b.finite_only["theta"][0][:, 0].all()
        assert (b.theta[0] < 1e-3).all()  # γ = 0: θ may not move
    pure = emulate(p, Recipe("d", "float16"))  # v in float16: 0/0
    assert np.isnan(pure.theta[0][:, 0]).all()
    verdict = judge(p, reference, pure, "float16", bounds=tuple(bounds))
    assert verdict.status == "inconclusive", verdict.describe("eps0-lr0", "pure")
    assert any("may be non-finite" in r for r in verdict.inconclusive_reasons)
    assert (verdict.quantities["theta"]["inconclusive"] == 2
            and verdict.quantities["theta"]["failed"] == 0)
    # d from v in float32 before it is stored (NumPy's float16 Adam): θ stays, finite
    still = Trace([np.array(reference.theta[0])], None, None, None)
    verdict = judge(p, reference, still, "float16", bounds=tuple(bounds))
    assert verdict.status == "pass", verdict.describe("eps0-lr0", "still")
    assert NONFINITE_POSSIBLE & 16


@pytest.mark.parametrize("case_id", ["eps-large/plain", "lr-zero/plain", "zero-grad/plain",
                                     "eps-large/ams+max+wd"])
def test_corpus_regimes_the_first_order_bound_left_open_are_decided_in_float16(corpus, case_id):
    golden = next(g for g in corpus if g.case.id == case_id)
    problem, reference = golden.case.problem, golden.reference
    for recipe in FAMILY["float16"]:
        verdict = judge(problem, reference, emulate(problem, recipe), "float16")
        # a device flushing float16's subnormals loses v = (1 − β2)·g² itself: there the
        # update may be γ·m̂/ε, and θ may leave float16's range within the case
        assert verdict.status == ("pass" if not recipe.ftz else verdict.status) != "fail", (
            verdict.describe(case_id, recipe.name))


@pytest.fixture(scope="module")
def corpus():
    golden = pytest.importorskip("adamconf.conformance.corpus.golden")
    return golden.load_corpus()


def _numpy_adam_float16(problem: Problem) -> Trace:
    """The NumPy production Adam in float16 (its step in float32, v stored in float16) on a
    one-group problem: θ, m, v per step."""
    (group,) = problem.groups
    cfg = group.config
    params = [p.astype(np.float16) for p in group.params]
    adam = Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps,
                weight_decay=cfg.weight_decay, amsgrad=cfg.amsgrad, maximize=cfg.maximize)
    rows = {name: [np.empty((problem.steps,) + p.shape) for p in params]
            for name in ("theta", "m", "v")}
    for k in range(problem.steps):
        if group.lrs is not None:
            adam.param_groups[0]["lr"] = float(group.lrs[k])
        adam.step([g[k].astype(np.float16) for g in problem.grads])
        for i, p in enumerate(params):
            rows["theta"][i][k] = p
            rows["m"][i][k] = adam.state_arrays("m")[i]
            rows["v"][i][k] = adam.state_arrays("v")[i]
    return Trace(rows["theta"], rows["m"], rows["v"], None)


@pytest.mark.parametrize("case_id", ["beta2-near-1/plain", "short/wd"])
def test_an_evaluation_that_keeps_the_second_moment_passes_where_others_diverge(corpus,
                                                                             case_id):
    """(1 − β2)·g² below half of float16's smallest subnormal: an evaluation computing v in
    float16 gets 0 and divides by ε alone (θ may leave float16's range), so neither bound
    decides; NumPy's float16 Adam computes the step in float32 and keeps v, and the bound of
    the evaluations that keep it shows its pass. The evaluation that loses v is not passed."""
    golden = next(g for g in corpus if g.case.id == case_id)
    problem, reference = golden.case.problem, golden.reference
    verdict = judge(problem, reference, _numpy_adam_float16(problem), "float16")
    assert verdict.status == "pass", verdict.describe(case_id, "numpy")
    assert any("keep the second moment" in note for note in verdict.notes)
    losing = judge(problem, reference, emulate(problem, Recipe("d", "float16")), "float16")
    assert losing.status == "inconclusive", losing.describe(case_id, "float16 v")
    kept = error_bounds(problem, reference, "float16", underflow="gradual",
                        keep_second_moment=True)
    assert kept.second_moment_kept and kept.enclosed["theta"][0].any()
