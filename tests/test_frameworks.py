"""The framework adapters against the real frameworks (no mocks).

A smoke test of the plumbing, not the suite's judgement: each supported variant runs a few
small problems (groups, weight decay, maximize, an lr schedule, a resume at step 10^7,
amsgrad) and must agree with the float64 shadow of the dialect that framework is known to
implement, within a loose tolerance per dtype. The derived error bounds live in
``adamconf.conformance``. Each framework's section is skipped when it is not installed.

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

pytestmark = pytest.mark.framework

# --- problems -------------------------------------------------------------------------------
# Every value is exactly representable in float32. ε is large next to √v̂ so that the dialects
# (ε inside or outside the bias correction, max of raw or of corrected v) differ by far more
# than the tolerance: a match names the dialect.

RESUME_STEP = 10_000_000
BETA2_NEAR_ONE = 1.0 - 2.0**-23  # exact in float32; β2^(10^7) ≈ 0.30, so t still matters


def _f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def _grads(rng, shape, steps, scale=0.3) -> np.ndarray:
    return _f32(rng.normal(size=(steps,) + shape) * scale)


def _problems() -> dict[str, Problem]:
    rng = np.random.default_rng(20240611)
    steps = 5
    p3, p22, p2 = _f32(rng.normal(size=3)), _f32(rng.normal(size=(2, 2))), _f32([0.5, -1.5])
    fading = _f32([[1.0, -1.0, 0.5], [1.0, -1.0, 0.5], [0.01, 0.02, -0.01],
                   [0.01, 0.01, 0.01], [0.02, -0.01, 0.01]])  # v̂ falls: amsgrad matters
    ams_config = GroupConfig(lr=0.01, betas=(0.5, 0.875), eps=0.01, amsgrad=True)
    resume_config = GroupConfig(lr=0.01, betas=(0.875, BETA2_NEAR_ONE), eps=0.01)

    def resumed(params, vmax_scale=0.0):
        return InitialState(step=RESUME_STEP,
                            m=tuple(_f32(rng.normal(size=p.shape) * 0.1) for p in params),
                            v=tuple(_f32(rng.uniform(0.01, 0.05, size=p.shape)) for p in params),
                            vmax=tuple(_f32(np.full(p.shape, vmax_scale)) for p in params))

    return {
        "plain": Problem(
            groups=(Group(GroupConfig(lr=0.01, eps=0.01), (p3, p22)),),
            grads=(_grads(rng, (3,), steps), _grads(rng, (2, 2), steps))),
        "groups": Problem(
            groups=(Group(GroupConfig(lr=0.01, eps=0.01, weight_decay=0.25), (p3,)),
                    Group(GroupConfig(lr=0.005, betas=(0.75, 0.875), eps=0.03125), (p2,))),
            grads=(_grads(rng, (3,), steps), _grads(rng, (2,), steps))),
        "groups-lr-wd": Problem(  # what nn.Adam's groups can express: lr and weight decay
            groups=(Group(GroupConfig(lr=0.01, eps=0.01, weight_decay=0.25), (p3,)),
                    Group(GroupConfig(lr=0.02, eps=0.01), (p2,))),
            grads=(_grads(rng, (3,), steps), _grads(rng, (2,), steps))),
        "maximize": Problem(
            groups=(Group(GroupConfig(lr=0.01, eps=0.01, weight_decay=0.5, maximize=True),
                          (p3,)),),
            grads=(_grads(rng, (3,), steps),)),
        "schedule": Problem(
            groups=(Group(GroupConfig(lr=0.01, eps=0.01), (p3,),
                          lrs=_f32([0.01, 0.02, 0.005, 0.04, 0.0])),
                    Group(GroupConfig(lr=0.03, eps=0.01, weight_decay=0.125), (p2,),
                          lrs=_f32([0.03, 0.015, 0.0078125, 0.03, 0.06]))),
            grads=(_grads(rng, (3,), steps), _grads(rng, (2,), steps))),
        "resume": Problem(
            groups=(Group(resume_config, (p3, p2)),),
            grads=(_grads(rng, (3,), steps), _grads(rng, (2,), steps)),
            initial_state=resumed((p3, p2))),
        "amsgrad": Problem(groups=(Group(ams_config, (_f32([1.0, -2.0, 0.5]),)),),
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

def _relative_error(got: list[np.ndarray], want: list[np.ndarray],
                    origin: list[np.ndarray] | None = None) -> float:
    """max |got − want| over max |want − origin| (origin: θ0 for θ, 0 for the moments)."""
    origin = origin or [np.zeros_like(w[0]) for w in want]
    num = max(float(np.max(np.abs(g - w), initial=0.0)) for g, w in zip(got, want, strict=True))
    den = max(float(np.max(np.abs(w - o), initial=0.0)) for w, o in zip(want, origin, strict=True))
    return num / den if den else num


def _open(backend: Backend, problem: Problem, variant: Variant) -> Session:
    """The backend's session for the problem, handed over as the runner hands it (plain data)."""
    return backend.open(case_setup(problem), variant)


def _drive(backend: Backend, problem: Problem, variant: Variant):
    """Step through the problem as the runner does; θ and state per step, stacked."""
    session = _open(backend, problem, variant)
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


def _stack(states: list[OptimizerState], name: str) -> list[np.ndarray] | None:
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
    theta, states = _drive(backend, problem, variant)
    error = _relative_error(theta, want.theta, list(problem.params))
    assert error <= rtol, (f"{variant.id}: θ differs from dialect {dialect_name} by {error:.3g} "
                           f"of its movement (tolerance {rtol:g})")
    if dialect_name != "spec":
        spec = run_float64(problem, DIALECTS["spec"])
        gap = _relative_error(spec.theta, want.theta, list(problem.params))
        if gap > 10 * rtol:
            spec_error = _relative_error(theta, spec.theta, list(problem.params))
            assert spec_error > rtol, f"{variant.id} matches the spec too: the claim is vacuous"

    assert all(s is not None for s in states), f"{variant.id} exposes no state"
    steps = [s.step for s in states]
    assert steps == [problem.initial_step + k + 1 for k in range(problem.steps)]
    for name in ("m", "v"):
        got = _stack(states, name)
        assert got is not None, f"{variant.id} exposes no {name}"
        error = _relative_error(got, getattr(want, name))
        assert error <= rtol, f"{variant.id}: {name} differs from {dialect_name} by {error:.3g}"
    vmax = _stack(states, "vmax")
    if any(g.config.amsgrad for g in problem.groups):
        assert vmax is not None, f"{variant.id} exposes no v̂max state for an amsgrad problem"
        assert states[-1].vmax_kind == dialect.vmax_kind, (
            f"{variant.id} declares vmax_kind={states[-1].vmax_kind!r}; dialect "
            f"{dialect_name} keeps {dialect.vmax_kind!r}")
        error = _relative_error(vmax, want.vmax)
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


# === torch ======================================================================================

TORCH_VARIANTS = ("for-loop", "foreach", "fused", "for-loop-tensor-lr", "fused-tensor-lr")


@pytest.fixture(scope="module")
def torch_backend():
    pytest.importorskip("torch")
    from adamconf.adapters.torch_backend import TorchBackend

    backend = TorchBackend()
    return backend, backend.probe()


def test_torch_probe(torch_backend):
    backend, info = torch_backend
    check_probe(info, "torch", "torch")
    assert "cpu" in info.devices
    assert set(info.dtypes) == {"float64", "float32", "float16", "bfloat16"}
    names = {v.name for v in info.variants}
    assert {"for-loop", "foreach", "fused", "fused-tensor-lr", "differentiable"} <= names
    from adamconf.adapters.torch_optimizer import TorchOptimizerBackend

    assert isinstance(backend, TorchOptimizerBackend)  # one torch driver, a fixed class
    refused = {u.what: u.reason for u in info.unsupported}
    if "cuda" not in info.devices:  # torch asserts capturable needs an accelerator
        assert "capturable/cpu" in refused and "supported devices" in refused["capturable/cpu"]
        with pytest.raises(UnsupportedFeature, match="supported devices"):
            _open(backend, PROBLEMS["plain"], Variant("torch", "capturable", "cpu", "float32"))
    assert "lr as a Tensor is not supported" in refused["foreach-tensor-lr/cpu"]


@pytest.mark.parametrize("problem_name", list(PROBLEMS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", TORCH_VARIANTS)
def test_torch_matches_its_dialect(torch_backend, name, dtype, problem_name):
    backend, info = torch_backend
    variant = variant_or_skip(info, name, "cpu", dtype)
    problem = PROBLEMS[problem_name]
    amsgrad = any(g.config.amsgrad for g in problem.groups)
    # torch/optim/adam.py: max_exp_avg_sqs = max(max_exp_avg_sqs, exp_avg_sq), raw v
    check_against_dialect(backend, problem, variant, "ams-rawmax" if amsgrad else "spec")


@pytest.mark.parametrize("problem_name", list(PROBLEMS))
def test_torch_differentiable_matches_its_dialect(torch_backend, problem_name):
    backend, info = torch_backend
    variant = variant_or_skip(info, "differentiable", "cpu", "float32")
    problem = PROBLEMS[problem_name]
    amsgrad = any(g.config.amsgrad for g in problem.groups)
    check_against_dialect(backend, problem, variant, "ams-rawmax" if amsgrad else "spec")


def test_torch_differentiable_float64_computes_bias_corrections_in_float32(torch_backend):
    # a finding: with differentiable=True (as with capturable) torch computes 1 − β^t from the
    # step count, a float32 tensor, so β^t is float32 even in a float64 run (adam.py,
    # _single_tensor_adam: bias_correction2 = 1 - beta2**step)
    backend, info = torch_backend
    variant = variant_or_skip(info, "differentiable", "cpu", "float64")
    problem = PROBLEMS["plain"]
    want = run_float64(problem, DIALECTS["spec"])
    theta, _ = _drive(backend, problem, variant)
    error = _relative_error(theta, want.theta, list(problem.params))
    assert 1e-7 < error < 1e-4, error  # float32's ε-sized, far beyond float64 rounding
    for_loop, _ = _drive(backend, problem, variant_or_skip(info, "for-loop", "cpu", "float64"))
    assert _relative_error(for_loop, want.theta, list(problem.params)) < 1e-12


@pytest.mark.parametrize("problem_name", list(HALF_PROBLEMS))
@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("name", ["for-loop", "foreach", "fused", "fused-tensor-lr"])
def test_torch_half_precision_matches_its_dialect(torch_backend, name, dtype, problem_name):
    backend, info = torch_backend
    variant = variant_or_skip(info, name, "cpu", dtype)
    problem = HALF_PROBLEMS[problem_name]
    amsgrad = any(g.config.amsgrad for g in problem.groups)
    check_against_dialect(backend, problem, variant, "ams-rawmax" if amsgrad else "spec")


@pytest.mark.parametrize("label", invalid_cases({
    "lr='0.01'": "torch compares `0.0 <= lr` first: a str lr raises TypeError, not ValueError",
}))
def test_torch_invalid_hyperparameters_raise_value_error(torch_backend, label):
    backend, info = torch_backend
    check_invalid(backend, variant_or_skip(info, "for-loop", "cpu", "float32"), label)


# === MindSpore ==================================================================================

EXPERIMENTAL, EXPERIMENTAL_JIT, NN = ("experimental.optim.Adam", "experimental.optim.Adam-jit",
                                      "nn.Adam")


@pytest.fixture(scope="module")
def mindspore_backend():
    pytest.importorskip("mindspore")
    from adamconf.adapters.mindspore_backend import MindSporeBackend

    backend = MindSporeBackend()
    return backend, backend.probe()


def _ms_device(info: BackendInfo) -> str:
    """The device this process runs MindSpore on (set once per process)."""
    return info.variants[0].device


def test_mindspore_probe(mindspore_backend):
    backend, info = mindspore_backend
    check_probe(info, "mindspore", "mindspore")
    device = _ms_device(info)
    names = {v.name for v in info.variants}
    assert {EXPERIMENTAL, EXPERIMENTAL_JIT, NN} <= names
    refused = {u.what: u.reason for u in info.unsupported}
    if device == "CPU":
        # documented for Ascend; here its step fails (the message is MindSpore's own)
        assert "mint.optim.Adam/CPU" in refused
        assert "Ascend" in refused["mint.optim.Adam/CPU"]
        with pytest.raises(UnsupportedFeature):
            _open(backend, PROBLEMS["plain"], Variant("mindspore", "mint.optim.Adam", "CPU",
                                                    "float32"))
        # ops.Adam has no float64 kernel: "the input argument[grad] must be a type of ..."
        assert "Float64" in refused[f"{EXPERIMENTAL}/CPU/float64"]


def _mindspore_expectation(name: str, problem: Problem) -> str | None:
    """The dialect each MindSpore Adam computes (None: the variant cannot express it)."""
    configs = [g.config for g in problem.groups]
    amsgrad = any(c.amsgrad for c in configs)
    if name == NN:
        if any(c.maximize for c in configs) or len({(c.betas, c.eps) for c in configs}) > 1:
            return None
        # nn/optim/adam.py: ops.Adam, or ApplyAdamWithAmsgradV2 (vhat = max(vhat, v), raw)
        return "ams-rawmax+eps-hat" if amsgrad else "eps-hat"
    # experimental/optim/adam.py: ops.Adam for every group; max_exp_avg_sq never updated
    return "ams-ignored+eps-hat" if amsgrad else "eps-hat"


MINDSPORE_CASES = [(name, "float32", p) for name in (EXPERIMENTAL, NN) for p in PROBLEMS]
MINDSPORE_CASES += [(EXPERIMENTAL_JIT, "float32", p)  # a jit compile each: a few problems
                    for p in ("groups", "schedule", "resume", "amsgrad")]
MINDSPORE_CASES += [(NN, "float64", p) for p in ("amsgrad", "amsgrad-resume")]


@pytest.mark.parametrize(("name", "dtype", "problem_name"), MINDSPORE_CASES)
def test_mindspore_matches_its_dialect(mindspore_backend, name, dtype, problem_name):
    backend, info = mindspore_backend
    variant = variant_or_skip(info, name, _ms_device(info), dtype)
    problem = PROBLEMS[problem_name]
    expected = _mindspore_expectation(name, problem)
    if expected is None:
        with pytest.raises(UnsupportedFeature):
            _open(backend, problem, variant)
        return
    check_against_dialect(backend, problem, variant, expected)


@pytest.mark.parametrize("problem_name", list(HALF_PROBLEMS))
@pytest.mark.parametrize("name", [EXPERIMENTAL, NN])
def test_mindspore_float16_matches_its_dialect(mindspore_backend, name, problem_name):
    backend, info = mindspore_backend
    variant = variant_or_skip(info, name, _ms_device(info), "float16")
    problem = HALF_PROBLEMS[problem_name]
    # nn.Adam(use_amsgrad=True) in float16 is refused by MindSpore (listed by the probe)
    check_or_listed_refusal(backend, info, problem, variant,
                            _mindspore_expectation(name, problem))


@pytest.mark.parametrize("name", [EXPERIMENTAL, EXPERIMENTAL_JIT, NN])
def test_mindspore_reused_optimizer_starts_fresh(mindspore_backend, name):
    # the backend hands a built optimizer to the next case with the same shapes and
    # hyperparameters, reset to its state when built: the trajectory is bit for bit a new one's
    backend, info = mindspore_backend
    variant = variant_or_skip(info, name, _ms_device(info), "float32")
    problems = [PROBLEMS["schedule"], PROBLEMS["resume"]]  # an lr schedule; a resumed state
    engines = []
    for problem in problems:
        session = _open(backend, problem, variant)  # built, never stepped: a new optimizer
        engines.append(session.engine)
        del session
    runs: list[list] = [[], []]
    for _ in range(2):  # the second time round, each optimizer has run its case once
        for problem, trajectories in zip(problems, runs, strict=True):
            trajectories.append(_drive(backend, problem, variant))
    for problem, engine, ((theta_a, states_a), (theta_b, states_b)) in zip(
            problems, engines, runs, strict=True):
        session = _open(backend, problem, variant)
        assert session.engine is engine, "a free optimizer of the same key was not reused"
        del session
        for got, want in zip(theta_b, theta_a, strict=True):
            np.testing.assert_array_equal(got, want)
        assert [s.step for s in states_b] == [s.step for s in states_a]
        for what in ("m", "v"):
            for got, want in zip(_stack(states_b, what), _stack(states_a, what), strict=True):
                np.testing.assert_array_equal(got, want)


def test_mindspore_live_sessions_do_not_share_an_optimizer(mindspore_backend):
    backend, info = mindspore_backend
    variant = variant_or_skip(info, EXPERIMENTAL, _ms_device(info), "float32")
    problem = PROBLEMS["plain"]
    one, two = _open(backend, problem, variant), _open(backend, problem, variant)
    assert one.engine is not two.engine
    one.step([g[0] for g in problem.grads])
    np.testing.assert_array_equal(two.params()[0], problem.params[0])


def test_mindspore_jit_step_compiles_once(mindspore_backend):
    # a tuple of Tensors is a constant of a jit graph: fed that way, every step compiled the
    # graph again. The first step compiles; twenty more must cost far less than twenty compiles
    import time

    backend, info = mindspore_backend
    variant = variant_or_skip(info, EXPERIMENTAL_JIT, _ms_device(info), "float32")
    rng = np.random.default_rng(7)
    problem = Problem(groups=(Group(GroupConfig(lr=0.01, betas=(0.75, 0.9375), eps=0.125),
                                    (_f32(rng.normal(size=7)),)),),
                      grads=(_grads(rng, (7,), 21),))
    session = _open(backend, problem, variant)
    started = time.perf_counter()
    session.step([problem.grads[0][0]])
    first = time.perf_counter() - started
    started = time.perf_counter()
    for k in range(1, 21):
        session.step([problem.grads[0][k]])
    later = time.perf_counter() - started
    assert later < 5 * first, (f"20 jit steps took {later:.3f} s after a first step of "
                               f"{first:.3f} s: the graph is compiled again each step")


def test_mindspore_nn_adam_refuses_what_it_cannot_express(mindspore_backend):
    backend, info = mindspore_backend
    variant = variant_or_skip(info, NN, _ms_device(info), "float32")
    with pytest.raises(UnsupportedFeature, match="maximize"):
        _open(backend, PROBLEMS["maximize"], variant)
    with pytest.raises(UnsupportedFeature, match="one betas"):
        _open(backend, PROBLEMS["groups"], variant)
    zero_beta = Problem(groups=(Group(GroupConfig(lr=0.01, betas=(0.0, 0.9)), (_f32([1.0]),)),),
                        grads=(_f32([[0.5]]),))
    with pytest.raises(UnsupportedFeature, match="beta1"):  # its own range is (0, 1)
        _open(backend, zero_beta, variant)


@pytest.mark.parametrize("label", invalid_cases({
    "lr='0.01'": "experimental.optim.Adam compares `lr < 0.0` first: a str lr raises "
                 "TypeError, not the documented ValueError",
}))
def test_mindspore_experimental_invalid_hyperparameters_raise_value_error(mindspore_backend,
                                                                          label):
    backend, info = mindspore_backend
    variant = variant_or_skip(info, EXPERIMENTAL, _ms_device(info), "float32")
    check_invalid(backend, variant, label)


@pytest.mark.parametrize("label", invalid_cases({}))
def test_mindspore_nn_adam_invalid_hyperparameters_raise_value_error(mindspore_backend, label):
    # nn.Adam raises ValueError for all of them; for lr='0.01' only by accident: a str is an
    # Iterable, taken as a per-step lr list, and '.' fails float conversion
    backend, info = mindspore_backend
    check_invalid(backend, variant_or_skip(info, NN, _ms_device(info), "float32"), label)


# === JAX / optax ================================================================================

ADAM, AMSGRAD = "optax.adam", "optax.amsgrad"


@pytest.fixture(scope="module")
def jax_backend():
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    from adamconf.adapters.jax_backend import JaxBackend

    backend = JaxBackend()
    return backend, backend.probe()


def test_jax_probe(jax_backend):
    backend, info = jax_backend
    check_probe(info, "jax", "optax")
    assert "cpu" in info.devices
    assert set(info.dtypes) == {"float64", "float32", "float16", "bfloat16"}
    assert {v.name for v in info.variants} == {ADAM, AMSGRAD}
    import jax

    assert jax.config.jax_enable_x64  # float64 needs it; the adapter turns it on


@pytest.mark.parametrize("problem_name", list(PROBLEMS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", [ADAM, AMSGRAD])
def test_jax_matches_its_dialect(jax_backend, name, dtype, problem_name):
    backend, info = jax_backend
    variant = variant_or_skip(info, name, "cpu", dtype)
    problem = PROBLEMS[problem_name]
    configs = [g.config for g in problem.groups]
    amsgrad = any(c.amsgrad for c in configs)
    if any(c.maximize for c in configs) or amsgrad != (name == AMSGRAD):
        with pytest.raises(UnsupportedFeature):
            _open(backend, problem, variant)
        return
    # transform.py: m̂/(√(v̂ + eps_root) + ε), eps_root = 0; amsgrad: nu_max = max(nu_max, v̂)
    check_against_dialect(backend, problem, variant, "spec")


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("name", [ADAM, AMSGRAD])
def test_jax_half_precision_matches_its_dialect(jax_backend, name, dtype):
    backend, info = jax_backend
    variant = variant_or_skip(info, name, "cpu", dtype)
    problem = HALF_PROBLEMS["half-amsgrad" if name == AMSGRAD else "half"]
    check_against_dialect(backend, problem, variant, "spec")


OPTAX_VALIDATES_NOTHING = ("optax validates no hyperparameter: the optimizer builds and "
                           "initialises with this value")


@pytest.mark.parametrize("label", invalid_cases(dict.fromkeys(INVALID, OPTAX_VALIDATES_NOTHING)))
@pytest.mark.parametrize("name", [ADAM, AMSGRAD])
def test_jax_invalid_hyperparameters_raise_value_error(jax_backend, name, label):
    backend, info = jax_backend
    check_invalid(backend, variant_or_skip(info, name, "cpu", "float32"), label,
                  amsgrad=name == AMSGRAD)
