"""The ball engine: enclosures, the proof of each rounding, ties, and agreement with mpmath
on every dialect, option and IEEE outcome."""

from __future__ import annotations

import math
import subprocess
import sys

import flint
import mpmath
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adamconf.reference import balls, engine
from adamconf.reference.balls import (
    _round_exact,
    _Special,
    ball_run,
    disproven,
    find_disproofs,
    outside_ball,
    round_ball,
    run_balls,
    stored_verdict,
)
from adamconf.reference.config import GroupConfig
from adamconf.reference.dialects import DIALECTS, SPEC
from adamconf.reference.engine import PrecisionError, run_reference
from adamconf.reference.floats import mpf_to_float64
from adamconf.reference.problem import Group, InitialState, Problem, Trajectory


def problem(grads, theta0=1.0, **config):
    grads = np.asarray(grads, dtype=np.float64)
    return Problem((Group(GroupConfig(**config), (np.asarray(theta0, dtype=np.float64),)),),
                   (grads,))


def bits(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).view(np.int64)


def assert_same_values(a: Trajectory, b: Trajectory, ties: Trajectory | None = None) -> None:
    """Bit for bit (NaN as NaN), except at ties, where either neighbour may be stored."""
    for name in Trajectory.QUANTITIES:
        for i, (x, y) in enumerate(zip(a.quantity(name), b.quantity(name))):
            same = (bits(x) == bits(y)) | (np.isnan(x) & np.isnan(y))
            if ties is not None and ties.ties is not None:
                tie = ties.ties[name][i]
                with np.errstate(all="ignore"):
                    same |= tie & (np.abs(np.nextafter(x, y) - y) == 0)
            assert same.all(), (name, i, x[~same], y[~same])


# --- rounding a ball -------------------------------------------------------------------------

ratio = st.tuples(st.integers(-(2 ** 70), 2 ** 70), st.integers(-1200, 1000))


@settings(max_examples=400, deadline=None)
@given(ratio)
@example((3, -1076))          # 1.5 quanta below the smallest subnormal: a tie to even (2)
@example((1, -1075))          # half the smallest subnormal: a tie to 0
@example((2 ** 54 - 1, 970))  # the overflow threshold, a midpoint: a tie, to ∞
@example((2 ** 54 - 3, 970))  # the midpoint below the largest float64: a tie, to even
@example((-(2 ** 54) + 1, 970))
def test_exact_rounding_matches_mpmath(pair):
    man, exp = pair
    got, other = _round_exact(man, exp)
    with mpmath.workprec(3000):  # scoped: exact for every pair drawn
        exact = mpmath.mpf(man) * mpmath.mpf(2) ** exp
        want = mpf_to_float64(exact)
        assert bits(got) == bits(want) or (got == want == 0)
        if other is not None and math.isfinite(got):  # exactly the midpoint of the two
            assert mpmath.mpf(got) + mpmath.mpf(other) == 2 * exact


@pytest.fixture
def prec170():
    saved = flint.ctx.prec
    flint.ctx.prec = 170
    yield
    flint.ctx.prec = saved


def test_round_ball_statuses(prec170):
    arb = flint.arb
    third = arb(1) / 3
    assert round_ball(third) == (1 / 3, "proven")
    midpoint = arb(1) + arb(2) ** -53  # exactly between 1 and its successor
    assert round_ball(midpoint) == (1.0, "tie")
    assert round_ball(arb(1) + arb(2) ** -53 + arb(0, 2.0 ** -80)) == (1.0, "tie")
    assert round_ball(arb(1, 1e-10))[1] == "undecided"
    assert round_ball(_Special(math.inf)) == (math.inf, "proven")


def test_one_ulp_off_is_disproven(prec170):
    arb = flint.arb
    third = arb(1) / 3
    assert stored_verdict(1 / 3, third) == "proven" and not disproven(1 / 3, third)
    for wrong in (math.nextafter(1 / 3, 1), math.nextafter(1 / 3, 0)):
        assert disproven(wrong, third)
    midpoint = arb(1) + arb(2) ** -53
    assert stored_verdict(1.0, midpoint) == "tie"
    assert stored_verdict(math.nextafter(1.0, 2), midpoint) == "tie"  # the other neighbour
    assert disproven(math.nextafter(1.0, 0), midpoint)
    assert stored_verdict(1.0, arb(1, 1e-10)) == "undecided"
    assert disproven(1.5, arb(1, 1e-10))
    assert disproven(math.nan, third) and not disproven(math.nan, _Special(math.nan))


def test_a_stored_value_one_ulp_off_is_found():
    rng = np.random.default_rng(3)
    p = Problem((Group(GroupConfig(lr=0.01, amsgrad=True), (rng.normal(size=3),)),),
                (rng.normal(size=(5, 3)),))
    traj = run_reference(p)
    assert find_disproofs(p, traj) == []
    traj.v[0][2, 1] = np.nextafter(traj.v[0][2, 1], np.inf)
    (found,) = find_disproofs(p, traj)
    assert (found.param, found.quantity, found.step, found.element) == (0, "v", 2, 1)
    assert "stored" in str(found) and "the ball proves" in str(found)


# --- enclosures ----------------------------------------------------------------------------------

def test_balls_enclose_a_much_more_precise_mpmath_value():
    """mpmath at 150 digits is within ~1e-150 of the exact value: inside every 170-bit ball."""
    rng = np.random.default_rng(4)
    p = Problem((Group(GroupConfig(lr=0.05, amsgrad=True, weight_decay=0.1),
                       (rng.normal(size=4),)),), (rng.normal(size=(20, 4)),))
    run = ball_run(p, keep_balls=True)
    _, _, _, raw = engine._run_mp(p, SPEC, 150, keep=True)
    saved = flint.ctx.prec
    try:
        flint.ctx.prec = 600
        for q in range(4):
            for (k, e), y in np.ndenumerate(raw[q][0]):
                sign, man, exp, _ = y._mpf_
                exact = flint.arb((-int(man) if sign else int(man), int(exp))) if man else \
                    flint.arb(0)
                assert run.balls[q][0][k, e].contains(exact)
    finally:
        flint.ctx.prec = saved


def test_outside_ball_sees_a_small_drift():
    saved = flint.ctx.prec
    try:
        flint.ctx.prec = 169
        ball = flint.arb(2).sqrt()
        ctx = mpmath.MPContext()
        ctx.prec = 169
        y = ctx.sqrt(2)
        assert not outside_ball(y, ball, 169, 169)
        ctx.prec = 300
        assert outside_ball(y * (1 + ctx.mpf(2) ** -140), ball, 169, 169)
        assert outside_ball(ctx.nan, ball, 169, 169)
        assert not outside_ball(ctx.nan, _Special(math.nan), 169, 169)
        assert outside_ball(ctx.inf, _Special(-math.inf), 169, 169)
    finally:
        flint.ctx.prec = saved


def test_run_reference_refuses_a_value_outside_the_ball(monkeypatch):
    real = engine._run_mp

    def drifted(problem, dialect, dps, keep=False):
        out = real(problem, dialect, dps, keep)
        if keep:
            with mpmath.workdps(80):
                out[3][1][0][0, 0] = out[3][1][0][0, 0] * (1 + mpmath.mpf(10) ** -45)
        return out

    monkeypatch.setattr(engine, "_run_mp", drifted)
    with pytest.raises(engine.CertificateError,
                       match=r"param 0 m step 0 element 0: mpmath at 50 digits gives .* "
                             r"outside the Arb ball .*two libraries"):
        run_reference(problem([0.3, -0.2], 1.0))


# --- ties --------------------------------------------------------------------------------------

def test_constant_gradient_midpoint_is_a_tie():
    """g = 1, ε = 0: θ_12 = θ0 − 12·γ exactly, a float64 midpoint for this γ. Two mpmath runs
    at 50 and 100 digits both land a hair above it; the ball proves it is the midpoint."""
    lr = 0.8137600228485427
    p = problem(np.ones(12), 1.0, lr=lr, eps=0.0)
    traj = run_balls(p)
    lo, hi = float.fromhex("-0x1.187bdd8363dabp+3"), float.fromhex("-0x1.187bdd8363daap+3")
    with mpmath.workprec(200):  # scoped; the global context is restored
        exact = mpmath.mpf(1) - 12 * mpmath.mpf(lr)
        assert mpmath.mpf(lo) + mpmath.mpf(hi) == 2 * exact
    assert traj.ties["theta"][0][-1]
    assert traj.theta[0][-1] == hi  # ties to even: ...daa
    assert traj.precision["ties"] >= 1
    old = run_reference(p, certify=False)
    assert old.theta[0][-1] == lo  # the agreement certificate stored the wrong neighbour
    assert run_reference(p).theta[0][-1] == hi


# --- the engine agrees with mpmath everywhere ---------------------------------------------------

def _problems() -> dict[str, Problem]:
    rng = np.random.default_rng(7)
    mixed = [GroupConfig(lr=0.01), GroupConfig(lr=0.1, amsgrad=True, maximize=True,
                                               weight_decay=0.1, betas=(0.5, 0.9))]
    params = [rng.normal(size=3), rng.normal(size=(2, 2))]
    grads = [rng.normal(size=(6, 3)), rng.normal(size=(6, 2, 2))]
    groups = Problem(tuple(Group(c, (p,), s) for c, p, s in
                           zip(mixed, params, [None, np.linspace(0.1, 0.01, 6)])), tuple(grads))
    state = InitialState(9, (np.array([0.01, -0.02]),), (np.array([1e-4, 4e-4]),),
                         (np.array([2e-4, 3e-4]),))
    resumed = Problem((Group(GroupConfig(lr=0.05, amsgrad=True, weight_decay=0.01),
                             (np.array([0.5, -1.5]),)),), (rng.normal(size=(4, 2)),), state)
    huge_t = InitialState(10_000_000, (np.array([0.01]),), (np.array([1e-4]),),
                          (np.array([1e-4]),))
    return {
        "groups+schedule": groups,
        "resumed": resumed,
        "huge-t": Problem((Group(GroupConfig(lr=0.1, amsgrad=True), (np.array([1.0]),)),),
                          (np.array([[0.01], [-0.02]]),), huge_t),
        "amsgrad+maximize+wd": problem(rng.normal(size=(5, 2)), [0.3, -0.7], lr=0.1,
                                       amsgrad=True, maximize=True, weight_decay=0.2),
        "zero-grads": problem(np.zeros((3, 2)), [0.0, -0.0], lr=0.1),
        "eps0-zero-grads": problem(np.zeros((3, 2)), [1.0, -0.0], eps=0.0),
        "non-finite": Problem((Group(GroupConfig(lr=0.1, amsgrad=True),
                                     (np.array([0.0, 0.0, 0.0, np.inf, -np.inf]),)),),
                              (np.array([[np.nan, np.inf, -np.inf, 1.0, 0.0],
                                         [1.0, 1.0, 1.0, 1.0, -2.0],
                                         [0.5, -0.5, 0.0, 0.0, 1.0]]),)),
        "beta1-0": problem(rng.normal(size=(4, 2)), [0.1, 0.2], betas=(0.0, 0.99),
                           amsgrad=True),
        "overflow": problem(np.array([-1.6326705228730018e307, 0.0]), 0.0, betas=(0.9, 0.0)),
        "subnormal": problem(np.array([5e-324, -1e-310, 2e-320]), 1e-310, lr=1e-300,
                             eps=0.0),
    }


PROBLEMS = _problems()


@pytest.mark.parametrize("dialect", list(DIALECTS))
@pytest.mark.parametrize("name", list(PROBLEMS))
def test_every_dialect_agrees_with_mpmath(dialect, name):
    p = PROBLEMS[name]
    ball = run_balls(p, DIALECTS[dialect])
    mp = run_reference(p, DIALECTS[dialect], certify=False)
    assert_same_values(ball, mp, ties=ball)
    assert ball.vmax_kind == mp.vmax_kind
    for q in Trajectory.QUANTITIES:
        want = mp.overflow[q] if mp.overflow else [np.zeros(a.shape, bool) for a in
                                                   mp.quantity(q)]
        got = ball.overflow[q] if ball.overflow else [np.zeros(a.shape, bool) for a in
                                                      ball.quantity(q)]
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
    precision = ball.precision
    total = sum(a.size for a in ball.theta) * 4
    assert precision["proven_first"] + precision["proven_raised"] + precision["ties"] == total


@pytest.mark.parametrize("name", ["groups+schedule", "resumed", "non-finite", "eps0-zero-grads"])
def test_certified_reference_keeps_mpmath_bits(name):
    p = PROBLEMS[name]
    certified = run_reference(p)
    plain = run_reference(p, certify=False)
    assert_same_values(certified, plain, ties=certified)
    assert certified.precision["engine"] == "arb" and certified.precision["dps"] == 50


def test_eps0_zero_grads_is_nan_and_signs_of_zero_are_kept():
    traj = run_balls(PROBLEMS["eps0-zero-grads"])
    assert np.isnan(traj.theta[0]).all()
    m = traj.m[0]
    assert (m == 0).all()
    traj = run_balls(PROBLEMS["zero-grads"])
    np.testing.assert_array_equal(np.signbit(traj.theta[0]), [[False, True]] * 3)


# --- precision: escalation, the limit, scoping -----------------------------------------------

def test_low_first_precision_escalates_and_gives_the_same_values():
    p = PROBLEMS["groups+schedule"]
    low = ball_run(p, first_prec=60)
    assert low.prec_bits[:2] == [60, 120] and low.counts["proven_raised"] > 0
    high = ball_run(p)
    for q in range(4):
        for a, b in zip(low.values[q], high.values[q]):
            np.testing.assert_array_equal(bits(a), bits(b))


def test_a_straddling_ball_raises_precision_then_fails_at_the_limit(monkeypatch):
    """A square root whose argument straddles zero stops the element; precision rises."""
    real = balls._careful_sqrt
    seen = []

    def straddles_below(a, limit):
        seen.append(flint.ctx.prec)
        if flint.ctx.prec < limit:
            raise balls._Unresolved("pretend the argument straddles zero")
        return real(a)

    p = PROBLEMS["eps0-zero-grads"]  # 0/0: the careful path, which takes the square root
    monkeypatch.setattr(balls, "_CAREFUL", balls.Arith(
        balls._careful_div, lambda a: straddles_below(a, 300), balls._careful_maximum))
    run = ball_run(p)
    assert run.prec_bits == [170, 340] and 170 in seen and 340 in seen
    assert run.counts["proven_raised"] > 0
    monkeypatch.setattr(balls, "_CAREFUL", balls.Arith(
        balls._careful_div, lambda a: straddles_below(a, 10 ** 6), balls._careful_maximum))
    before = flint.ctx.prec
    with pytest.raises(PrecisionError, match=r"param 0 theta step 0 element 0: not proven at "
                                             r"2720 bits \(a ball straddled zero"):
        ball_run(p)
    assert flint.ctx.prec == before


def test_precision_is_restored():
    before = flint.ctx.prec
    run_balls(problem([0.5, 0.25], 1.0))
    run_reference(problem([0.5, 0.25], 1.0))
    assert flint.ctx.prec == before


def test_import_adamconf_does_not_load_flint():
    code = ("import sys, adamconf, adamconf.reference.engine, adamconf.reference.balls; "
            "sys.exit('flint' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# --- the IEEE arithmetic on balls ------------------------------------------------------------

@pytest.mark.parametrize("a", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("b", [math.nan, math.inf, -math.inf, 0.0, 2.0, -3.0])
def test_specials_follow_ieee(a, b):
    def ball(x):
        return _Special(x) if not math.isfinite(x) else flint.arb(x)

    def value(x):
        return x.value if isinstance(x, _Special) else float(x)

    for got, want in [(ball(a) + ball(b), a + b), (ball(b) + ball(a), b + a),
                      (ball(a) - ball(b), a - b), (ball(b) - ball(a), b - a),
                      (ball(a) * ball(b), a * b), (ball(b) * ball(a), b * a)]:
        w = want
        assert (math.isnan(value(got)) and math.isnan(w)) or value(got) == w
    with np.errstate(all="ignore"):
        want = float(np.float64(a) / np.float64(b) if b != 0 else np.true_divide(a, 0.0))
        got = value(balls._careful_div(ball(a), ball(b)))
        assert (math.isnan(got) and math.isnan(want)) or got == want
        want = float(np.maximum(np.float64(a), np.float64(b)))
        got = value(balls._careful_maximum(ball(a), ball(b)))
        assert (math.isnan(got) and math.isnan(want)) or got == want


def test_division_by_exact_zero_is_ieee_and_straddling_is_unresolved(prec170):
    arb = flint.arb
    assert balls._careful_div(arb(2), arb(0)).value == math.inf
    assert balls._careful_div(arb(-2), arb(0)).value == -math.inf
    assert math.isnan(balls._careful_div(arb(0), arb(0)).value)
    with pytest.raises(balls._Unresolved):
        balls._careful_div(arb(1), arb(0, 1e-30))
    with pytest.raises(balls._Unresolved):
        balls._careful_div(arb(0, 1e-30), arb(0))
    with pytest.raises(balls._Unresolved):
        _Special(math.inf) * arb(0, 1e-30)
    assert math.isnan((_Special(math.inf) * arb(0)).value)
    with pytest.raises(balls._Unresolved):
        balls._careful_sqrt(arb(0, 1e-30))
    assert math.isnan(balls._careful_sqrt(arb(-1)).value)
    # max of overlapping balls: an enclosure of either order, never a wrong one
    both = balls._careful_maximum(arb(1, 0.5), arb(1.2, 0.1))
    assert both.contains(arb(1.5)) and both.contains(arb(1.3))


@settings(max_examples=300, deadline=None)
@given(f=st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False),
       offset=st.floats(-0.75, 0.75), radius=st.integers(50, 160))
@example(f=1.0, offset=0.5, radius=160)     # on the midpoint above 1
@example(f=1.0, offset=-0.25, radius=160)   # the midpoint below a power of two
@example(f=0.0, offset=0.5, radius=160)
def test_float_test_proves_only_what_the_ends_prove(f, offset, radius):
    """The fast float check never calls a ball proven that the exact end roundings do not."""
    arb = flint.arb
    saved = flint.ctx.prec
    try:
        flint.ctx.prec = 170
        ulp = math.ulp(f)
        x = arb(f) + arb(offset) * arb(ulp) + arb(0, ulp * 2.0 ** -radius)
        fl = float(x)
        proven = balls._fast_proven(np.array([fl]), np.array([float(x - fl)]),
                                    np.array([float(x.rel_accuracy_bits())]))[0]
        lo, hi, _ = balls._ends(x)
    finally:
        flint.ctx.prec = saved
    if proven:
        assert lo == hi == fl


def test_float_test_proves_the_plain_cases(prec170):
    arb = flint.arb
    third, midpoint = arb(1) / 3, arb(1) + arb(2) ** -53
    cases = [third, -third * arb(2) ** 600, midpoint, arb(0), arb(2.0 ** -1070) / 3]
    fl = np.array([float(x) for x in cases])
    proven = balls._fast_proven(fl, np.array([float(x - f) for x, f in zip(cases, fl)]),
                                np.array([float(x.rel_accuracy_bits()) for x in cases]))
    # a midpoint, a zero and a near-subnormal are left to the exact end roundings
    np.testing.assert_array_equal(proven, [True, True, False, False, False])
