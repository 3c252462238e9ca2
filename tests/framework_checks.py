"""Shared by the framework adapter tests (tests/adapters/test_torch_backend.py,
test_mindspore_backend.py, test_jax_backend.py): small problems, the comparison with a
dialect's float64 shadow, and the documented invalid hyperparameters.

A smoke test of the plumbing, not the suite's judgement: each supported variant runs a few
small problems (groups, weight decay, maximize, an lr schedule, a resume at step 10^7,
amsgrad) and must agree with the float64 shadow of the dialect that framework is known to
implement, within a loose tolerance per dtype. The derived error bounds live in
``adamconf.conformance``.

Also: the documented invalid hyperparameters must make ``construct`` raise ``ValueError``.
A backend that does not is a finding, kept as ``xfail(strict=True)`` with what it does.
"""

from __future__ import annotations

import numpy as np
import pytest

from adamconf.adapters.base import (
    Backend,
    BackendInfo,
    OptimizerState,
    Session,
    UnsupportedFeature,
    Variant,
)
from adamconf.conformance.harness.lanes import case_setup
from adamconf.reference.config import DEFAULTS, DOCUMENTED_ERRORS, GroupConfig
from adamconf.reference.dialects import DIALECTS
from adamconf.reference.engine import run_float64
from adamconf.reference.problem import Group, InitialState, Problem

# --- problems -------------------------------------------------------------------------------
# Every value is exactly representable in float32. ε is large next to √v̂ so that the dialects
# (ε inside or outside the bias correction, max of raw or of corrected v) differ by far more
# than the tolerance: a match names the dialect.

RESUME_STEP = 10_000_000
BETA2_NEAR_ONE = 1.0 - 2.0**-23  # exact in float32; β2^(10^7) ≈ 0.30, so t still matters


def f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def random_grads(rng, shape, steps, scale=0.3) -> np.ndarray:
    return f32(rng.normal(size=(steps,) + shape) * scale)


def _problems() -> dict[str, Problem]:
    rng = np.random.default_rng(20240611)
    steps = 5
    p3, p22, p2 = f32(rng.normal(size=3)), f32(rng.normal(size=(2, 2))), f32([0.5, -1.5])
    fading = f32([[1.0, -1.0, 0.5], [1.0, -1.0, 0.5], [0.01, 0.02, -0.01],
                   [0.01, 0.01, 0.01], [0.02, -0.01, 0.01]])  # v̂ falls: amsgrad matters
    ams_config = GroupConfig(lr=0.01, betas=(0.5, 0.875), eps=0.01, amsgrad=True)
    resume_config = GroupConfig(lr=0.01, betas=(0.875, BETA2_NEAR_ONE), eps=0.01)

    def resumed(params, vmax_scale=0.0):
        return InitialState(step=RESUME_STEP,
                            m=tuple(f32(rng.normal(size=p.shape) * 0.1) for p in params),
                            v=tuple(f32(rng.uniform(0.01, 0.05, size=p.shape)) for p in params),
                            vmax=tuple(f32(np.full(p.shape, vmax_scale)) for p in params))

    return {
        "plain": Problem(
            groups=(Group(GroupConfig(lr=0.01, eps=0.01), (p3, p22)),),
            grads=(random_grads(rng, (3,), steps), random_grads(rng, (2, 2), steps))),
        "groups": Problem(
            groups=(Group(GroupConfig(lr=0.01, eps=0.01, weight_decay=0.25), (p3,)),
                    Group(GroupConfig(lr=0.005, betas=(0.75, 0.875), eps=0.03125), (p2,))),
            grads=(random_grads(rng, (3,), steps), random_grads(rng, (2,), steps))),
        "groups-lr-wd": Problem(  # what nn.Adam's groups can express: lr and weight decay
            groups=(Group(GroupConfig(lr=0.01, eps=0.01, weight_decay=0.25), (p3,)),
                    Group(GroupConfig(lr=0.02, eps=0.01), (p2,))),
            grads=(random_grads(rng, (3,), steps), random_grads(rng, (2,), steps))),
        "maximize": Problem(
            groups=(Group(GroupConfig(lr=0.01, eps=0.01, weight_decay=0.5, maximize=True),
                          (p3,)),),
            grads=(random_grads(rng, (3,), steps),)),
        "schedule": Problem(
            groups=(Group(GroupConfig(lr=0.01, eps=0.01), (p3,),
                          lrs=f32([0.01, 0.02, 0.005, 0.04, 0.0])),
                    Group(GroupConfig(lr=0.03, eps=0.01, weight_decay=0.125), (p2,),
                          lrs=f32([0.03, 0.015, 0.0078125, 0.03, 0.06]))),
            grads=(random_grads(rng, (3,), steps), random_grads(rng, (2,), steps))),
        "resume": Problem(
            groups=(Group(resume_config, (p3, p2)),),
            grads=(random_grads(rng, (3,), steps), random_grads(rng, (2,), steps)),
            initial_state=resumed((p3, p2))),
        "amsgrad": Problem(groups=(Group(ams_config, (f32([1.0, -2.0, 0.5]),)),),
                           grads=(fading,)),
        "amsgrad-resume": Problem(
            groups=(Group(GroupConfig(lr=0.01, betas=(0.875, BETA2_NEAR_ONE), eps=0.01,
                                      amsgrad=True), (p3,)),),
            grads=(fading * 0.1,), initial_state=resumed((p3,), vmax_scale=0.5)),
    }


def _half(values) -> np.ndarray:
    """Rounded to 8 significant bits: exact in float16 and bfloat16 (moderate exponents)."""
    mantissa, exponent = np.frexp(np.asarray(values, dtype=np.float64))
    return np.ldexp(np.round(mantissa * 256) / 256, exponent)


def _half_problems() -> dict[str, Problem]:
    """Small |θ| so that the half-precision ulp is small next to the lr; hyperparameters exact."""
    rng = np.random.default_rng(7)
    theta = _half([0.0625, -0.09375, 0.03125])
    fading = _half([[1.0, -1.0, 0.5], [1.0, -1.0, 0.5], [2**-7, 2**-6, -2**-7],
                    [2**-7, 2**-7, 2**-7], [2**-6, -2**-7, 2**-7]])
    return {
        "half": Problem(groups=(Group(GroupConfig(lr=2**-6, betas=(0.875, 0.9375), eps=2**-4,
                                                  weight_decay=0.125), (theta,)),),
                        grads=(_half(rng.normal(size=(5, 3)) * 0.5),)),
        "half-amsgrad": Problem(groups=(Group(GroupConfig(lr=2**-6, betas=(0.5, 0.875),
                                                          eps=2**-4, amsgrad=True), (theta,)),),
                                grads=(fading,)),
    }


PROBLEMS = _problems()
HALF_PROBLEMS = _half_problems()
HALF_DTYPES = ("float16", "bfloat16")
# loose: plumbing, not the derived bound (bfloat16 keeps 8 bits)
RTOL = {"float64": 1e-6, "float32": 1e-4, "float16": 5e-3, "bfloat16": 3e-2}


# --- comparison -----------------------------------------------------------------------------

def relative_error(got: list[np.ndarray], want: list[np.ndarray],
                    origin: list[np.ndarray] | None = None) -> float:
    """max |got − want| over max |want − origin| (origin: θ0 for θ, 0 for the moments)."""
    origin = origin or [np.zeros_like(w[0]) for w in want]
    num = max(float(np.max(np.abs(g - w), initial=0.0)) for g, w in zip(got, want, strict=True))
    den = max(float(np.max(np.abs(w - o), initial=0.0)) for w, o in zip(want, origin, strict=True))
    return num / den if den else num


def open_case(backend: Backend, problem: Problem, variant: Variant) -> Session:
    """The backend's session for the problem, handed over as the runner hands it (plain
    data: ``case_setup(problem)``, whose group ranges and resumed raw v̂max the adapters'
    middle layer reads)."""
    return backend.open(case_setup(problem), variant)


def drive(backend: Backend, problem: Problem, variant: Variant):
    """Step through the problem as the runner does; θ and state per step, stacked."""
    session = open_case(backend, problem, variant)
    assert isinstance(session, Session)
    steps = problem.steps
    theta = [np.empty((steps,) + p.shape) for p in problem.params]
    states: list[OptimizerState | None] = []
    for k in range(steps):
        session.step([g[k] for g in problem.grads], [g.lr_at(k) for g in problem.groups])
        for out, value in zip(theta, session.params(), strict=True):
            assert value.dtype == np.float64 and value.shape == out.shape[1:]
            out[k] = value
        states.append(session.state())
    return theta, states


def stack_states(states: list[OptimizerState], name: str) -> list[np.ndarray] | None:
    per_step = [getattr(s, name) for s in states]
    if any(values is None for values in per_step):
        return None
    return [np.stack([values[i] for values in per_step]) for i in range(len(per_step[0]))]


def check_against_dialect(backend: Backend, problem: Problem, variant: Variant,
                          dialect_name: str) -> None:
    """θ, m, v, v̂max and the step count agree with ``dialect_name``; the spec does not
    where the two differ by more than the tolerance (the match is evidence, not luck)."""
    rtol = RTOL[variant.dtype]
    dialect = DIALECTS[dialect_name]
    want = run_float64(problem, dialect)
    theta, states = drive(backend, problem, variant)
    error = relative_error(theta, want.theta, list(problem.params))
    assert error <= rtol, (f"{variant.id}: θ differs from dialect {dialect_name} by {error:.3g} "
                           f"of its movement (tolerance {rtol:g})")
    if dialect_name != "spec":
        spec = run_float64(problem, DIALECTS["spec"])
        gap = relative_error(spec.theta, want.theta, list(problem.params))
        if gap > 10 * rtol:
            spec_error = relative_error(theta, spec.theta, list(problem.params))
            assert spec_error > rtol, f"{variant.id} matches the spec too: the claim is vacuous"

    assert all(s is not None for s in states), f"{variant.id} exposes no state"
    steps = [s.step for s in states]
    assert steps == [problem.initial_step + k + 1 for k in range(problem.steps)]
    for name in ("m", "v"):
        got = stack_states(states, name)
        assert got is not None, f"{variant.id} exposes no {name}"
        error = relative_error(got, getattr(want, name))
        assert error <= rtol, f"{variant.id}: {name} differs from {dialect_name} by {error:.3g}"
    vmax = stack_states(states, "vmax")
    if any(g.config.amsgrad for g in problem.groups):
        assert vmax is not None, f"{variant.id} exposes no v̂max state for an amsgrad problem"
        assert states[-1].vmax_kind == dialect.vmax_kind, (
            f"{variant.id} declares vmax_kind={states[-1].vmax_kind!r}; dialect "
            f"{dialect_name} keeps {dialect.vmax_kind!r}")
        error = relative_error(vmax, want.vmax)
        assert error <= rtol, f"{variant.id}: vmax differs from {dialect_name} by {error:.3g}"


def check_probe(info: BackendInfo, name: str, version_key: str) -> None:
    assert info.name == name and info.installed
    assert info.versions.get(version_key), info.versions
    assert info.devices and info.dtypes and info.variants
    assert all(v.backend == name for v in info.variants)
    assert all(u.reason for u in info.unsupported)


def check_or_listed_refusal(backend: Backend, info: BackendInfo, problem: Problem,
                            variant: Variant, dialect_name: str) -> None:
    """As check_against_dialect, except that a refusal the probe listed is accepted."""
    try:
        check_against_dialect(backend, problem, variant, dialect_name)
    except UnsupportedFeature as exc:
        listed = [u for u in info.unsupported if u.what.startswith(variant.id)]
        assert listed, f"open refused {variant.id} but probe did not list it: {exc}"


def variant_or_skip(info: BackendInfo, name: str, device: str, dtype: str) -> Variant:
    variant = Variant(info.name, name, device, dtype)
    if variant not in info.variants:
        reasons = [f"{u.what}: {u.reason}" for u in info.unsupported if u.what.startswith(name)]
        pytest.skip(f"{variant.id} is not supported here: {'; '.join(reasons) or 'not listed'}")
    return variant


# --- the documented invalid hyperparameters ----------------------------------------------------

INVALID = {error.label: error.override for error in DOCUMENTED_ERRORS}


def invalid_cases(known: dict[str, str]):
    """One param per invalid value; ``known`` maps a value to what the backend does instead."""
    return [pytest.param(label, marks=pytest.mark.xfail(strict=True, reason=known[label]))
            if label in known else label for label in INVALID]


def check_invalid(backend: Backend, variant: Variant, label: str, amsgrad: bool = False) -> None:
    backend.construct(variant, **DEFAULTS, amsgrad=amsgrad)  # the valid defaults build
    kwargs = dict(DEFAULTS, **INVALID[label])
    with pytest.raises(ValueError):
        backend.construct(variant, **kwargs, amsgrad=amsgrad)
