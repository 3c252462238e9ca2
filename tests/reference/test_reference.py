"""The reference verified without a second implementation: hand-checked numbers, closed forms,
metamorphic laws, IEEE outcomes, the precision certificate, and each dialect's formula."""

from __future__ import annotations

import math
import re

import mpmath
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adamconf.reference import engine
from adamconf.reference.config import DEFAULTS, DOCUMENTED_ERRORS, GroupConfig
from adamconf.reference.dialects import DIALECTS, SEMANTIC_DIALECTS, SPEC, get_dialect
from adamconf.reference.engine import run_float64, run_reference
from adamconf.reference.floats import mpf_to_float64
from adamconf.reference.problem import Group, InitialState, Problem


def problem(grads, theta0=1.0, **config):
    grads = np.asarray(grads, dtype=np.float64)
    theta0 = np.asarray(theta0, dtype=np.float64)
    if grads.ndim == 1 and theta0.ndim == 0:
        grads = grads.reshape(-1)
    return Problem((Group(GroupConfig(**config), (theta0,)),), (grads,))


def final_theta(p, dialect=SPEC, **kw):
    return run_reference(p, dialect, **kw).theta[0][-1]


# --- hand-checked numbers (issue 2; also in the README) ------------------------------------

@pytest.mark.parametrize("dialect, expected", [
    ("spec", 0.821514859039),
    ("ams-rawmax", 0.779325904539),
    ("ams-ignored", 0.779247709127),
])
def test_amsgrad_hand_checked(dialect, expected):
    p = problem([1.0, 0.01, 0.01], lr=0.1, amsgrad=True)
    assert final_theta(p, DIALECTS[dialect]) == pytest.approx(expected, abs=1e-12)


def test_eps_hat_hand_checked():
    f32 = lambda a: np.asarray(a, dtype=np.float32).astype(np.float64)  # noqa: E731
    grads = np.stack([f32([1e-3, -1e-3, 5e-4]), f32([-3e-3, 1e-4, 5e-4])])
    p = Problem((Group(GroupConfig(lr=0.1, eps=1e-3), (np.array([1.0, -2.0, 3.0]),)),), (grads,))
    np.testing.assert_allclose(final_theta(p), [0.98414979, -1.92538365, 2.93333333], atol=5e-9)
    np.testing.assert_allclose(final_theta(p, DIALECTS["eps-hat"]),
                               [1.0014271, -1.9951101, 2.9962568], atol=5e-8)


# --- closed forms ----------------------------------------------------------------------------

finite_grad = st.floats(min_value=1e-6, max_value=1e3).flatmap(
    lambda m: st.sampled_from([m, -m]))


def midpoint_neighbours(ctx, exact) -> tuple[float, float] | None:
    """The two float64s around ``exact`` where it is exactly their midpoint, else None."""
    nearest = mpf_to_float64(exact)
    for other in (math.nextafter(nearest, math.inf), math.nextafter(nearest, -math.inf)):
        if ctx.mpf(nearest) + ctx.mpf(other) == 2 * exact:
            return nearest, other
    return None


@settings(max_examples=25, deadline=None)
@given(g=finite_grad, lr=st.floats(1e-5, 1.0), eps=st.sampled_from([0.0, 1e-8, 1e-3]),
       steps=st.integers(1, 30), theta0=st.floats(-10, 10))
@example(g=1.0, lr=0.8137600228485427, eps=0.0, steps=12, theta0=1.0)  # a midpoint
@example(g=0.001, lr=0.001, eps=0.001, steps=8, theta0=0.0625)  # a midpoint, ε ≠ 0
@example(g=-1.0, lr=0.5021516644895444, eps=0.0, steps=3, theta0=7.428437364191284e-303)
def test_constant_gradient_closed_form(g, lr, eps, steps, theta0):
    """m̂ = g and v̂ = g² at every t, so θ_T = θ0 − T·γ·g/(|g| + ε), exactly.

    Where that is exactly a float64 midpoint (ε = 0 makes θ_T = θ0 ∓ T·γ, a short binary
    fraction; so does g/(|g| + ε) = 1/2 for ε = |g|), the value is marked a tie and either
    neighbour is accepted — only there.
    """
    p = problem(np.full(steps, g), theta0, lr=lr, eps=eps)
    traj = run_reference(p)
    ctx = mpmath.MPContext()
    ctx.prec = 2400  # θ0 down to 2^-1074 next to T·γ: exact for ε = 0
    mg = ctx.mpf(g)
    want = ctx.mpf(theta0) - steps * ctx.mpf(lr) * mg / (abs(mg) + ctx.mpf(eps))
    tie = midpoint_neighbours(ctx, want)
    assert bool(traj.ties["theta"][0][-1]) == (tie is not None)
    if tie is None:
        assert traj.theta[0][-1] == mpf_to_float64(want)
    else:
        assert traj.theta[0][-1] in tie
        assert traj.theta[0][-1] == mpf_to_float64(want)  # stored ties-to-even
    # m̂ = g, v̂ = g²: recovered from the stored m, v through the bias corrections
    t = np.arange(1, steps + 1)
    np.testing.assert_allclose(traj.m[0] / (1 - 0.9 ** t), g, rtol=1e-12)
    np.testing.assert_allclose(traj.v[0] / (1 - 0.999 ** t), g * g, rtol=1e-9)


@settings(max_examples=20, deadline=None)
@given(grads=st.lists(st.floats(-100, 100).filter(lambda x: abs(x) > 1e-3), min_size=1,
                      max_size=12),
       lr=st.floats(1e-4, 1.0), eps=st.sampled_from([1e-8, 1e-2]))
def test_zero_betas_closed_form(grads, lr, eps):
    """β1 = β2 = 0: m̂ = g, v̂ = g², each step moves γ·g/(|g| + ε)."""
    p = problem(grads, 0.5, lr=lr, eps=eps, betas=(0.0, 0.0))
    traj = run_reference(p, certify=False)
    ctx = mpmath.MPContext()
    ctx.dps = 60
    theta = ctx.mpf(0.5)
    for k, g in enumerate(grads):
        mg = ctx.mpf(g)
        theta = theta - ctx.mpf(lr) * mg / (abs(mg) + ctx.mpf(eps))
        assert traj.theta[0][k] == mpf_to_float64(theta)
        assert traj.m[0][k] == g and traj.v[0][k] == mpf_to_float64(mg * mg)


# --- metamorphic laws ------------------------------------------------------------------------

grad_lists = st.lists(st.floats(-10, 10, allow_subnormal=False), min_size=1, max_size=10)


@settings(max_examples=20, deadline=None)
@given(grads=grad_lists, wd=st.sampled_from([0.0, 0.1]), amsgrad=st.booleans())
def test_maximize_is_negated_gradients(grads, wd, amsgrad):
    g = np.array(grads)
    a = run_reference(problem(g, 0.7, lr=0.05, weight_decay=wd, amsgrad=amsgrad,
                              maximize=True), certify=False)
    b = run_reference(problem(-g, 0.7, lr=0.05, weight_decay=wd, amsgrad=amsgrad),
                      certify=False)
    for name in ("theta", "m", "v", "vmax"):
        np.testing.assert_array_equal(getattr(a, name)[0], getattr(b, name)[0])


@settings(max_examples=20, deadline=None)
@given(grads=grad_lists.filter(lambda gs: all(g != 0 for g in gs)),
       power=st.integers(-30, 30), amsgrad=st.booleans())
def test_gradient_scaling_invariance(grads, power, amsgrad):
    """ε = 0, λ = 0: θ is unchanged when every gradient is scaled by c > 0 (exact for c = 2^k)."""
    g = np.array(grads)
    a = run_reference(problem(g, 0.3, lr=0.01, eps=0.0, amsgrad=amsgrad), certify=False)
    b = run_reference(problem(g * 2.0 ** power, 0.3, lr=0.01, eps=0.0, amsgrad=amsgrad),
                      certify=False)
    np.testing.assert_array_equal(a.theta[0], b.theta[0])
    c = run_reference(problem(g * 3.7, 0.3, lr=0.01, eps=0.0, amsgrad=amsgrad), certify=False)
    np.testing.assert_allclose(a.theta[0], c.theta[0], rtol=1e-15)


@settings(max_examples=20, deadline=None)
@given(magnitudes=st.lists(st.floats(1e-3, 10), min_size=1, max_size=12),
       signs=st.lists(st.booleans(), min_size=12, max_size=12))
def test_amsgrad_equals_plain_while_vhat_never_decreases(magnitudes, signs):
    """With |g| non-decreasing, v̂_t is a convex mix of v̂_{t-1} and g_t² ≥ v̂_{t-1}."""
    g = np.sort(np.array(magnitudes)) * np.where(signs[: len(magnitudes)], 1.0, -1.0)
    a = run_reference(problem(g, 1.0, lr=0.1, amsgrad=True), certify=False)
    b = run_reference(problem(g, 1.0, lr=0.1), certify=False)
    np.testing.assert_array_equal(a.theta[0], b.theta[0])


def test_param_groups_are_independent():
    rng = np.random.default_rng(0)
    configs = [GroupConfig(lr=0.01), GroupConfig(lr=0.1, amsgrad=True, maximize=True,
                                                 weight_decay=0.1, betas=(0.5, 0.9))]
    params = [rng.normal(size=3), rng.normal(size=(2, 2))]
    grads = [rng.normal(size=(6, 3)), rng.normal(size=(6, 2, 2))]
    lrs = [None, np.linspace(0.1, 0.01, 6)]
    both = run_reference(Problem(tuple(Group(c, (p,), s) for c, p, s in zip(configs, params, lrs)),
                                 tuple(grads)), certify=False)
    for i in range(2):
        alone = run_reference(Problem((Group(configs[i], (params[i],), lrs[i]),), (grads[i],)),
                              certify=False)
        for name in ("theta", "m", "v", "vmax"):
            np.testing.assert_array_equal(getattr(both, name)[i], getattr(alone, name)[0])


def test_schedule_equals_changing_config():
    """An lr schedule is the same as a group whose lr is that value at that step."""
    g = np.array([0.3, -0.2, 0.5])
    lrs = np.array([0.1, 0.0, 0.05])
    scheduled = run_reference(Problem((Group(GroupConfig(lr=0.1), (np.array(1.0),), lrs),),
                                      (g,)), certify=False)
    # step 2 with lr = 0: θ stays; m and v move on
    assert scheduled.theta[0][1] == scheduled.theta[0][0]
    assert scheduled.m[0][1] != scheduled.m[0][0]


def test_resume_equals_uninterrupted_run():
    rng = np.random.default_rng(1)
    grads = rng.normal(size=(10, 4))
    p0 = rng.normal(size=4)
    cfg = GroupConfig(lr=0.01, amsgrad=True)
    full = run_reference(Problem((Group(cfg, (p0,)),), (grads,)))
    state = InitialState(6, (full.m[0][5],), (full.v[0][5],), (full.vmax[0][5],))
    resumed = run_reference(Problem((Group(cfg, (full.theta[0][5],)),), (grads[6:],), state))
    # float64-rounded state at the seam: agreement to float64 rounding, not bits
    np.testing.assert_allclose(resumed.theta[0], full.theta[0][6:], rtol=1e-14)


def test_huge_step_counts():
    state = InitialState(10_000_000, (np.array([0.01]),), (np.array([1e-4]),), (np.zeros(1),))
    p = Problem((Group(GroupConfig(lr=0.1), (np.array([1.0]),)),), (np.array([[0.01]]),), state)
    traj = run_reference(p)
    # β^t underflows to 0 there: the bias corrections are 1, so the step is plain m/(√v + ε)
    m = 0.9 * 0.01 + 0.1 * 0.01
    v = 0.999 * 1e-4 + 0.001 * 1e-4
    assert traj.theta[0][0] == pytest.approx(1.0 - 0.1 * m / (math.sqrt(v) + 1e-8), rel=1e-14)


# --- IEEE outcomes ---------------------------------------------------------------------------

def test_zero_over_zero_is_nan():
    p = problem(np.zeros(3), 1.0, eps=0.0)
    assert np.isnan(run_reference(p).theta[0]).all()


def test_non_finite_inputs_propagate_like_ieee():
    grads = np.array([[np.nan, np.inf, -np.inf, 1.0], [1.0, 1.0, 1.0, 1.0]])
    theta0 = np.array([0.0, 0.0, 0.0, np.inf])
    p = Problem((Group(GroupConfig(lr=0.1), (theta0,)),), (grads,))
    exact, shadow = run_reference(p), run_float64(p)
    for name in ("theta", "m", "v"):
        a, b = getattr(exact, name)[0], getattr(shadow, name)[0]
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_array_equal(np.isposinf(a), np.isposinf(b))
        np.testing.assert_array_equal(np.isneginf(a), np.isneginf(b))
    assert np.isnan(exact.theta[0][-1, :3]).all() and np.isposinf(exact.theta[0][-1, 3])


def test_exact_values_beyond_float64_are_marked():
    """v = g² ≈ 2.7e614 is finite but stored as inf: marked, so no verdict trusts the inf."""
    p = problem(np.array([-1.6326705228730018e307, 0.0]), 0.0, betas=(0.9, 0.0))
    traj = run_reference(p)
    assert np.isposinf(traj.v[0][0]) and traj.overflow["v"][0][0]
    assert not traj.overflow["theta"][0][0]
    assert run_reference(problem([0.5, 0.25], 1.0)).overflow is None


def test_sign_of_zero_is_kept():
    p = problem(np.zeros(2), -0.0)
    theta = run_reference(p).theta[0]
    assert (theta == 0).all() and np.signbit(theta).all()
    p = problem(np.array([-0.0, -0.0]), 0.0, betas=(0.0, 0.0))
    m = run_reference(p).m[0]
    assert (m == 0).all() and not np.signbit(m).any()  # IEEE: (+0) + (−0) = +0


# --- the precision certificate ---------------------------------------------------------------

def test_certificate_is_a_proof():
    p = problem(np.linspace(-1, 1, 7), 0.25, lr=0.1, amsgrad=True)
    traj = run_reference(p)
    precision = traj.precision
    assert precision["engine"] == "arb" and precision["prec_bits"][0] == 169  # mpmath's bits
    values = 4 * 7
    assert precision["proven_first"] + precision["proven_raised"] + precision["ties"] == values
    assert precision["ties"] == 0 and not any(m.any() for m in traj.ties.values() for m in m)
    again = run_reference(p, dps=100, certify=False)
    np.testing.assert_array_equal(traj.theta[0], again.theta[0])


def test_certificate_refuses_an_mpmath_value_outside_the_ball(monkeypatch):
    real = engine._run_mp

    def nudged(problem, dialect, dps, keep=False):
        out = real(problem, dialect, dps, keep)
        if keep:  # mpmath's θ after step 1, moved by 1e-30: far outside its ball
            raw = out[3][0][0]
            with mpmath.workdps(60):  # scoped: the global context is restored on exit
                raw[1, 0] = raw[1, 0] * (1 + mpmath.mpf(10) ** -30)
        return out

    monkeypatch.setattr(engine, "_run_mp", nudged)
    with pytest.raises(engine.CertificateError,
                       match=r"param 0 theta step 1 element 0: mpmath at 50 digits gives "
                             r".*outside the Arb ball"):
        run_reference(problem([0.5, 0.25], 1.0))


def test_certificate_refuses_an_mpmath_rounding_the_ball_disproves(monkeypatch):
    real = engine._run_mp
    calls = []

    def off_by_one_ulp(problem, dialect, dps, keep=False):
        calls.append(dps)
        out = real(problem, dialect, dps, keep)
        values = out[0][0][0]  # θ's float64s
        values[0] = np.nextafter(values[0], np.inf)
        return out

    monkeypatch.setattr(engine, "_run_mp", off_by_one_ulp)
    with pytest.raises(engine.CertificateError,
                       match=r"param 0 theta step 0 element 0: mpmath at 800 digits rounds to "
                             r".*the Arb ball proves .*still rounds otherwise at 800 digits"):
        run_reference(problem([0.5, 0.25], 1.0))
    assert calls == [50, 100, 200, 400, 800]


def test_more_mpmath_digits_where_they_are_too_few_to_round():
    """θ0 = 7.4e-303 is lost in θ0 − 3γ at 50 digits, where 3γ is a float64 midpoint: mpmath
    rounds the midpoint to even, the ball proves the neighbour; 400 digits resolve it."""
    p = problem(np.ones(3), 7.428437364191284e-303, lr=0.5021516644895444, eps=0.0)
    traj = run_reference(p)
    assert traj.precision["mpmath_dps"] == 400 and not traj.ties["theta"][0][-1]
    assert traj.theta[0][-1].hex() == "-0x1.81a708d1d7fafp+0"
    assert run_reference(p, certify=False).theta[0][-1].hex() == "-0x1.81a708d1d7fb0p+0"


def test_too_few_digits_refused():
    with pytest.raises(ValueError, match="too few digits"):
        run_reference(problem([1.0]), dps=10)


def test_global_precision_untouched():
    before = mpmath.mp.dps
    run_reference(problem([1.0, 2.0]), dps=80)
    assert mpmath.mp.dps == before


# --- each dialect against its published formula, written out independently -----------------

def _by_hand(dialect: str, grads, theta, lr=0.1, b1=0.9, b2=0.999, eps=1e-3, wd=0.0,
             amsgrad=False, maximize=False):
    """Two scalar steps of each published formula, straight from the papers and sources,
    one switch setting at a time (read off the dialect's settings, computed here)."""
    d = get_dialect(dialect)
    ctx = mpmath.MPContext()
    ctx.dps = 60
    f = ctx.mpf
    theta, m, v, vmax = f(theta), f(0), f(0), f(0)
    lr, b1, b2, eps, wd = f(lr), f(b1), f(b2), f(eps), f(wd)
    decay = d.weight_decay_mode
    for t, grad in enumerate(grads, 1):
        g = -f(grad) if maximize else f(grad)
        if decay == "maximize-after-wd":
            g = -(f(grad) + wd * theta) if maximize else f(grad) + wd * theta
        elif decay == "decoupled":
            theta = theta * (1 - lr * wd)  # AdamW, Keras: decay, then Adam on the plain g
        elif decay == "decoupled-lr0":
            theta = theta * (1 - lr * wd)  # the constructor's lr (constant here)
        elif decay in ("decoupled-nolr", "decoupled-lr-ratio"):  # constant lr: γ_t/γ_0 = 1
            theta = theta * (1 - wd)
        elif decay == "l2":
            g = g + wd * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        tt = t + d.step_offset
        bc1, bc2 = 1 - b1 ** tt, 1 - b2 ** tt
        if not d.bias_correction:
            bc1 = bc2 = f(1)
        ams = d.amsgrad_mode if amsgrad else "off"
        if d.eps_mode == "hat":  # Kingma & Ba §2, last paragraph; TF, Keras with amsgrad
            if ams == "max-raw":
                vmax = max(vmax, v)
            second = vmax if ams == "max-raw" else v
            theta = theta - lr * ctx.sqrt(bc2) / bc1 * m / (ctx.sqrt(second) + eps)
        elif ams == "max-raw":  # torch: max of raw v, corrected afterwards
            vmax = max(vmax, v)
            theta = theta - lr / bc1 * m / (ctx.sqrt(vmax) / ctx.sqrt(bc2) + eps)
        elif ams == "paper":  # Reddi et al., Algorithm 2
            vmax = max(vmax, v)
            theta = theta - lr * m / (ctx.sqrt(vmax) + eps)
        elif d.eps_mode == "inside-sqrt":
            theta = theta - lr * (m / bc1) / ctx.sqrt(v / bc2 + eps)
        elif d.eps_mode == "floor":
            theta = theta - lr * (m / bc1) / max(ctx.sqrt(v / bc2), eps)
        elif ams == "max-hat":
            vmax = max(vmax, v / bc2)
            theta = theta - lr * (m / bc1) / (ctx.sqrt(vmax) + eps)
        else:
            theta = theta - lr * (m / bc1) / (ctx.sqrt(v / bc2) + eps)
        if decay == "after":  # transformers' old AdamW: decay the new θ
            theta = theta * (1 - lr * wd)
    return mpf_to_float64(theta)


# the semantic points; max-drops-nan differs only with a NaN, wd-decoupled-lr0 only under a
# schedule: each has its own test below
_BY_FORMULA = [d for d in SEMANTIC_DIALECTS if d not in ("step-off-by-one-low",)]


@pytest.mark.parametrize("name", _BY_FORMULA)
def test_dialect_matches_its_formula(name):
    amsgrad = "ams-" in name
    wd = 0.1
    maximize = name == "maximize-after-wd"
    grads = [0.5, 0.002]
    p = problem(grads, 1.5, lr=0.1, eps=1e-3, weight_decay=wd, amsgrad=amsgrad,
                maximize=maximize)
    got = final_theta(p, DIALECTS[name])
    want = _by_hand(name, grads, 1.5, wd=wd, amsgrad=amsgrad, maximize=maximize)
    assert got == pytest.approx(want, rel=1e-15)
    if name not in ("spec", "max-drops-nan", "wd-decoupled-lr0", "wd-decoupled-lr-ratio"):
        # and the dialect really is a different algorithm on this input
        assert got != pytest.approx(final_theta(p), rel=1e-6)


def test_max_drops_nan_keeps_the_finite_max():
    """fmax: a NaN v̂ leaves v̂max as it was, where the documented max turns it NaN."""
    p = problem([0.5, float("nan")], 1.0, amsgrad=True)
    spec, dropped = run_reference(p), run_reference(p, DIALECTS["max-drops-nan"])
    assert np.isnan(spec.vmax[0][1]) and dropped.vmax[0][1] == dropped.vmax[0][0] > 0


def test_decay_with_the_initial_lr_ignores_the_schedule():
    p = Problem((Group(GroupConfig(lr=0.1, weight_decay=0.5), (np.array(2.0),),
                       lrs=np.array([0.1, 0.01])),), (np.array([0.0, 0.0]),))
    lr0 = run_reference(p, DIALECTS["wd-decoupled-lr0"]).theta[0]
    now = run_reference(p, DIALECTS["wd-decoupled"]).theta[0]
    assert lr0[1] == pytest.approx(2.0 * 0.95 * 0.95, rel=1e-15)  # zero gradients: decay only
    assert now[1] == pytest.approx(2.0 * 0.95 * 0.995, rel=1e-15)
    ratio = run_reference(p, DIALECTS["wd-decoupled-lr-ratio"]).theta[0]
    assert ratio[1] == pytest.approx(2.0 * 0.5 * 0.95, rel=1e-15)  # λ·γ_t/γ_0: 0.5, then 0.05


def test_step_off_by_one_low_divides_by_zero_on_the_first_step():
    p = problem([0.5, 0.25], 1.0)
    assert np.isnan(run_reference(p, DIALECTS["step-off-by-one-low"]).theta[0]).all()


# --- configuration -----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"lr": -1e-3}, "Invalid learning rate: -0.001; lr must be >= 0"),
    ({"lr": "0.1"}, "Invalid learning rate type: str"),
    ({"lr": float("nan")}, "Invalid learning rate: nan"),
    ({"lr": True}, "not a bool"),
    ({"eps": -1e-8}, "Invalid epsilon value: -1e-08"),
    ({"betas": (1.0, 0.999)}, "beta parameter at index 0: 1.0"),
    ({"betas": (-0.1, 0.999)}, "beta parameter at index 0: -0.1"),
    ({"betas": (0.9, 1.0)}, "beta parameter at index 1: 1.0"),
    ({"betas": (0.9, float("nan"))}, "beta parameter at index 1: nan"),
    ({"betas": (0.9,)}, "betas must be a pair"),
    ({"weight_decay": -0.1}, "Invalid weight_decay value: -0.1"),
    ({"amsgrad": 1}, "amsgrad must be True or False"),
])
def test_documented_errors(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GroupConfig(**kwargs)


@pytest.mark.parametrize("error", DOCUMENTED_ERRORS, ids=lambda error: error.label)
def test_each_documented_clause_raises_its_exception_with_its_words(error):
    """The documented errors as data: each clause raises what it says, in its words."""
    assert GroupConfig(**DEFAULTS) is not None  # the defaults alone are valid
    with pytest.raises(error.exception, match=f"^{re.escape(error.words)}: "):
        GroupConfig(**error.hyperparameters)
    assert set(error.override) == {error.keyword}
    assert error.hyperparameters == {**DEFAULTS, **error.override}


def test_documented_errors_cover_every_clause_of_the_documentation():
    """lr < 0, eps < 0, a beta outside [0, 1) on either side, weight_decay < 0, lr not a
    number: each at least once, each record once."""
    assert len(set(DOCUMENTED_ERRORS)) == len(DOCUMENTED_ERRORS)
    parameters = [error.parameter for error in DOCUMENTED_ERRORS]
    assert set(parameters) == {"lr", "eps", "betas[0]", "betas[1]", "weight_decay"}
    for beta in ("betas[0]", "betas[1]"):
        values = [e.value for e in DOCUMENTED_ERRORS if e.parameter == beta]
        assert min(values) < 0 and max(values) >= 1, beta
    assert any(not isinstance(e.value, (int, float)) for e in DOCUMENTED_ERRORS
               if e.keyword == "lr")
    assert all(e.shown.startswith(repr(e.value)) for e in DOCUMENTED_ERRORS)


def test_lr_as_tensor_like():
    assert GroupConfig(lr=np.float32(0.5)).lr == 0.5
    assert GroupConfig(lr=np.array([0.25])).lr == 0.25
    assert GroupConfig(lr=3).lr == 3.0
    with pytest.raises(ValueError, match="2 elements"):
        GroupConfig(lr=np.array([0.1, 0.2]))


def test_config_json_round_trip_is_exact():
    c = GroupConfig(lr=0.1, betas=(0.9, 1 - 2**-20), eps=1e-8, weight_decay=0.01, amsgrad=True)
    assert GroupConfig.from_json(c.to_json()) == c


def test_problem_shape_errors():
    with pytest.raises(ValueError, match="gradients of shape"):
        Problem((Group(GroupConfig(), (np.zeros(3),)),), (np.zeros((2, 4)),))
    with pytest.raises(ValueError, match="lr schedule has 3 entries for 2 steps"):
        Problem((Group(GroupConfig(), (np.zeros(3),), np.ones(3)),), (np.zeros((2, 3)),))
    with pytest.raises(ValueError, match="Invalid learning rate"):
        Group(GroupConfig(), (np.zeros(1),), np.array([0.1, -0.1]))


@pytest.mark.parametrize("eps_mode", ["outside", "hat", "inside-sqrt", "floor"])
def test_the_papers_amsgrad_composes_with_every_eps_placement(eps_mode):
    """ams-paper is the max of raw v with no bias correction; ε goes where its own switch
    puts it (the paper's step once wrote ε outside whatever the ε switch said)."""
    g, lr, eps = 0.5, 0.1, 0.01
    p = problem([g], 1.0, lr=lr, eps=eps, amsgrad=True)
    m, v = 0.1 * g, 0.001 * g * g  # one step, no bias correction: vmax = v
    d = {"outside": math.sqrt(v) + eps, "hat": math.sqrt(v) + eps,
         "inside-sqrt": math.sqrt(v + eps), "floor": max(math.sqrt(v), eps)}[eps_mode]
    dialect = SPEC.with_settings(amsgrad_mode="paper", eps_mode=eps_mode)
    assert final_theta(p, dialect) == pytest.approx(1.0 - lr * m / d, rel=1e-14)
