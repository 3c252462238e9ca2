"""The NumPy production Adam and its backend: API, state, errors, kernels, agreement with the spec.

Agreement with the mpmath reference here is a float64 sanity check with a plain relative
tolerance; the conformance verdict with derived bounds lives in the conformance tests.
"""

from __future__ import annotations

import re
import tracemalloc

import numpy as np
import pytest

from adamconf.adapters import numpy_adam
from adamconf.adapters.base import OptimizerState, UnsupportedFeature, Variant
from adamconf.adapters.numpy_adam import Adam, numba_available, one_minus_power
from adamconf.adapters.numpy_backend import NumpyBackend
from adamconf.reference.config import DOCUMENTED_ERRORS, GroupConfig
from adamconf.reference.engine import run_reference
from adamconf.reference.problem import Group, InitialState, Problem

KERNELS = ["numpy"] + (["numba"] if numba_available() else [])
needs_numba = pytest.mark.skipif(not numba_available(), reason="numba is not installed")

# float64 sanity tolerance: 64 ulps of the value, plus 64 ulps of the quantity's scale
# (a recurrence like β1·m + (1 − β1)·g may cancel, so a small m carries its operands' error)
ULPS64 = 64 * 2.0 ** -52


def assert_close64(got, want, what: str) -> None:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    finite = np.isfinite(want)
    assert np.array_equal(np.isnan(got), np.isnan(want)), f"{what}: NaN where expected\n" \
        f"got  {got!r}\nwant {want!r}"
    assert np.array_equal(got[np.isinf(want)], want[np.isinf(want)]), f"{what}: infinities"
    scale = float(np.max(np.abs(want[finite]), initial=0.0))
    np.testing.assert_allclose(got[finite], want[finite], rtol=ULPS64, atol=ULPS64 * scale,
                               err_msg=what)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def make_problem(configs, shapes, steps, *, seed=0, lrs=None, grad_fn=None, state=None):
    rng = np.random.default_rng(seed)
    groups = []
    for gi, (config, group_shapes) in enumerate(zip(configs, shapes, strict=True)):
        params = tuple(rng.standard_normal(shape) for shape in group_shapes)
        schedule = None if lrs is None else lrs[gi]
        groups.append(Group(config, params, lrs=schedule))
    params = [p for g in groups for p in g.params]
    if grad_fn is None:
        grads = tuple(rng.standard_normal((steps,) + p.shape) for p in params)
    else:
        grads = tuple(grad_fn(rng, (steps,) + p.shape) for p in params)
    return Problem(tuple(groups), grads, initial_state=state)


def run_numpy_adam(problem: Problem, kernel: str, dtype=np.float64):
    """Step our Adam through ``problem``; per param, per step: θ, m, v, v̂max (float64)."""
    params = [p.astype(dtype) for p in problem.params]
    groups, index = [], 0
    for group in problem.groups:
        c = group.config
        arrays = params[index:index + len(group.params)]
        index += len(group.params)
        groups.append({"params": arrays, "lr": c.lr, "betas": c.betas, "eps": c.eps,
                       "weight_decay": c.weight_decay, "amsgrad": c.amsgrad,
                       "maximize": c.maximize})
    opt = Adam(groups, kernel=kernel)
    out = {name: [np.empty((problem.steps,) + p.shape) for p in params]
           for name in ("theta", "m", "v", "vmax")}
    for k in range(problem.steps):
        for group, pg in zip(problem.groups, opt.param_groups, strict=True):
            pg["lr"] = group.lr_at(k)
        opt.step([g[k].astype(dtype) for g in problem.grads])
        for i, p in enumerate(params):
            out["theta"][i][k] = p
            out["m"][i][k] = opt.state_arrays("m")[i]
            out["v"][i][k] = opt.state_arrays("v")[i]
            vmax = opt.state_arrays("vmax")[i]
            out["vmax"][i][k] = 0.0 if vmax is None else vmax
    return out


# --------------------------------------------------------------------------------------
# agreement with the reference (float64 sanity)

CASES = {
    "plain": ([GroupConfig(lr=0.01)], [[(5,), (2, 3)]]),
    "amsgrad": ([GroupConfig(lr=0.01, amsgrad=True)], [[(7,)]]),
    "maximize": ([GroupConfig(lr=0.02, maximize=True)], [[(6,)]]),
    "weight-decay": ([GroupConfig(lr=0.01, weight_decay=0.3)], [[(6,)]]),
    "all-options": ([GroupConfig(lr=0.05, betas=(0.5, 0.75), eps=1e-3, weight_decay=0.1,
                                 amsgrad=True, maximize=True)], [[(4,), ()]]),
    "beta1-zero": ([GroupConfig(lr=0.01, betas=(0.0, 0.999))], [[(5,)]]),
    "several-groups": ([GroupConfig(lr=0.01, amsgrad=True),
                        GroupConfig(lr=0.03, betas=(0.8, 0.99), weight_decay=0.01,
                                    maximize=True),
                        GroupConfig(lr=0.0)],
                       [[(3,), (2, 2)], [(4,)], [(2,)]]),
    "empty-param": ([GroupConfig(lr=0.01)], [[(0,), (3,)]]),
}


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_agrees_with_reference_float64(case, kernel):
    configs, shapes = CASES[case]
    problem = make_problem(configs, shapes, steps=12)
    ref = run_reference(problem, certify=False)
    ours = run_numpy_adam(problem, kernel)
    for name in ("theta", "m", "v", "vmax"):
        for i, (got, want) in enumerate(zip(ours[name], ref.quantity(name), strict=True)):
            assert_close64(got, want, f"{case}/{kernel}: {name} of param {i}")


@pytest.mark.parametrize("kernel", KERNELS)
def test_lr_schedule_agrees_with_reference(kernel):
    steps = 8
    problem = make_problem([GroupConfig(lr=0.1), GroupConfig(lr=0.01, amsgrad=True)],
                           [[(4,)], [(3,)]], steps,
                           lrs=[np.linspace(0.1, 0.001, steps), np.full(steps, 0.01)])
    ref = run_reference(problem, certify=False)
    ours = run_numpy_adam(problem, kernel)
    for i, (got, want) in enumerate(zip(ours["theta"], ref.theta, strict=True)):
        assert_close64(got, want, f"theta of param {i}")


@pytest.mark.parametrize("kernel", KERNELS)
def test_eps_zero_with_zero_gradient_is_nan(kernel):
    # v̂ = 0 and m̂ = 0, so m̂ / (√v̂ + 0) = 0/0 = NaN, as IEEE says
    problem = make_problem([GroupConfig(lr=0.01, eps=0.0)], [[(3,)]], 2,
                           grad_fn=lambda rng, shape: np.zeros(shape))
    ref = run_reference(problem, certify=False)
    ours = run_numpy_adam(problem, kernel)
    assert np.isnan(ref.theta[0]).all()
    assert np.isnan(ours["theta"][0]).all()
    assert (ours["m"][0] == 0).all() and (ours["v"][0] == 0).all()


@pytest.mark.parametrize("kernel", KERNELS)
def test_non_finite_gradients_propagate_as_ieee(kernel):
    def grads(rng, shape):
        g = rng.standard_normal(shape)
        g[1, 0], g[2, 1], g[3, 2] = np.inf, -np.inf, np.nan
        return g

    problem = make_problem([GroupConfig(lr=0.01, amsgrad=True)], [[(4,)]], 5, grad_fn=grads)
    ref = run_reference(problem, certify=False)
    ours = run_numpy_adam(problem, kernel)
    for name in ("theta", "m", "v", "vmax"):
        assert_close64(ours[name][0], ref.quantity(name)[0], f"{name}")
    assert np.isnan(ours["theta"][0][-1, :3]).all() and np.isfinite(ours["theta"][0][-1, 3])


def test_bias_correction_is_accurate_at_every_step():
    import mpmath

    ctx = mpmath.MPContext()
    ctx.prec = 200
    for beta in (0.0, 0.3, 0.9, 0.999, 0.999999, 1 - 2.0 ** -40):
        for t in (1, 2, 3, 10, 1000, 10 ** 6, 10 ** 9):
            exact = 1 - ctx.mpf(beta) ** t
            got = one_minus_power(beta, t)
            assert abs(ctx.mpf(got) - exact) <= 1.5 * ctx.mpf(np.spacing(float(exact))), \
                (beta, t, got, exact)


# --------------------------------------------------------------------------------------
# the two kernels

def _random_state_run(kernel, dtype, n, seed, **options):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(n).astype(dtype)
    opt = Adam([p], lr=0.01, kernel=kernel, **options)
    for _ in range(4):
        opt.step([rng.standard_normal(n).astype(dtype)])
    return [p] + [opt.state_arrays(name)[0] for name in ("m", "v", "vmax")]


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", [
    {}, {"amsgrad": True}, {"maximize": True, "weight_decay": 0.1},
    {"amsgrad": True, "maximize": True, "weight_decay": 0.5, "eps": 0.0},
])
@pytest.mark.parametrize("numba_threads", [1, 2])
def test_kernels_give_identical_bits(dtype, options, numba_threads, monkeypatch):
    n = 40_000 + 3  # several numba blocks and NumPy chunks, with a ragged end
    # one thread: the serial compilation; two: the parallel one, whatever the layer
    monkeypatch.setattr(numpy_adam, "_numba_elements_per_thread", lambda: 1024)
    numpy_run = _random_state_run("numpy", dtype, n, 7, **options)
    numba_run = _random_state_run("numba", dtype, n, 7, threads=numba_threads, **options)
    for a, b in zip(numpy_run, numba_run, strict=True):
        if a is None or b is None:
            assert a is None and b is None
        else:
            assert a.dtype == b.dtype == np.dtype(dtype)
            assert same_bits(a, b)


@needs_numba
def test_numba_runs_a_one_thread_step_without_a_parallel_region(monkeypatch):
    """A parallel region costs ~0.3 ms to start in the workqueue layer: a small parameter
    (or threads=1) runs the serial compilation."""
    calls = []
    real = numpy_adam._numba_kernel
    monkeypatch.setattr(numpy_adam, "_numba_kernel",
                        lambda parallel=True: calls.append(parallel) or real(parallel))
    small = Adam([np.zeros(1000)], kernel="numba", threads=2)
    calls.clear()
    small.step([np.ones(1000)])
    assert calls == [False]
    monkeypatch.setattr(numpy_adam, "_numba_elements_per_thread", lambda: 1024)
    large = Adam([np.zeros(4096)], kernel="numba", threads=2)
    calls.clear()
    large.step([np.ones(4096)])
    assert calls == [True]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_threaded_numpy_kernel_gives_identical_bits(dtype):
    # large enough for the NumPy kernel to share it among threads, with a ragged last chunk
    n = numpy_adam._NUMPY_PARALLEL_MIN_BYTES // np.dtype(dtype).itemsize * 3 + 5
    one = _random_state_run("numpy", dtype, n, 3, threads=1, amsgrad=True)
    for threads in (2, 3):
        many = _random_state_run("numpy", dtype, n, 3, threads=threads, amsgrad=True)
        for a, b in zip(one, many, strict=True):
            assert same_bits(a, b)


def test_chunk_queue_hands_out_every_chunk_once():
    import threading

    queue = numpy_adam._ChunkQueue(100_003, 10)
    taken: list[list[int]] = [[] for _ in range(4)]

    def take(k):
        while (start := queue.take()) is not None:
            taken[k].append(start)

    threads = [threading.Thread(target=take, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s for part in taken for s in part) == list(range(0, 100_003, 10))


def test_step_does_not_wait_for_a_helper_thread_that_never_starts(monkeypatch):
    """A helper the pool cannot start (busy, or lost in a fork) is cancelled, not awaited."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    busy = ThreadPoolExecutor(max_workers=1)
    release = threading.Event()
    busy.submit(release.wait)  # the pool's only worker is taken
    monkeypatch.setattr(numpy_adam, "_thread_pool", lambda workers: busy)
    n = numpy_adam._NUMPY_PARALLEL_MIN_BYTES // 4 * 2 + 3
    p = np.linspace(-1, 1, n, dtype=np.float32)
    reference = p.copy()
    grad = np.cos(np.arange(n, dtype=np.float32))
    opt = Adam([p], kernel="numpy", threads=2)
    Adam([reference], kernel="numpy", threads=1).step([grad])
    stepper = threading.Thread(target=opt.step, args=([grad],))
    stepper.start()
    stepper.join(timeout=60)
    finished = not stepper.is_alive()
    release.set()
    busy.shutdown()
    assert finished, "step() waited for a helper thread that never ran"
    assert same_bits(p, reference)


@needs_numba
def test_numba_kernel_max_keeps_numpy_signed_zero_and_nan():
    # a resumed v̂max of -0 and NaN: both kernels must give numpy.maximum's bits
    results = []
    for kernel in ("numpy", "numba"):
        p = np.array([1.0, 1.0, 1.0])
        opt = Adam([p], lr=0.1, eps=0.0, amsgrad=True, kernel=kernel)
        state = opt.state_dict()
        state["state"][0]["vmax"] = np.array([-0.0, np.nan, 0.0])
        opt.load_state_dict(state)
        opt.step([np.array([0.0, 1.0, 1e-200])])  # 1e-200² underflows: v̂ = 0, m̂ ≠ 0
        results.append(np.concatenate([p, opt.state_arrays("vmax")[0]]))
    assert same_bits(results[0], results[1])


@pytest.mark.parametrize("kernel", KERNELS)
def test_float32_and_float16_compute_in_their_dtype(kernel):
    for dtype in (np.float32, np.float16):
        if kernel == "numba" and dtype == np.float16:
            continue
        problem = make_problem([GroupConfig(lr=0.01, amsgrad=True)], [[(64,)]], 10)
        p = problem.params[0].astype(dtype)
        opt = Adam([p], lr=0.01, amsgrad=True, kernel=kernel)
        for k in range(problem.steps):
            opt.step([problem.grads[0][k].astype(dtype)])
        assert p.dtype == dtype
        assert all(a.dtype == dtype for name in ("m", "v", "vmax")
                   for a in opt.state_arrays(name))
        ref = run_reference(problem, certify=False).theta[0][-1]
        tolerance = 1e-5 if dtype == np.float32 else 2e-2
        np.testing.assert_allclose(p.astype(np.float64), ref, rtol=tolerance,
                                   atol=tolerance * np.max(np.abs(ref)))


def test_float16_uses_numpy_kernel_under_auto():
    opt = Adam([np.zeros(3, np.float16), np.zeros(3, np.float32)])
    assert opt.kernels[0] == "numpy"
    assert opt.kernels[1] == ("numba" if numba_available() else "numpy")


# --------------------------------------------------------------------------------------
# API

def test_updates_in_place_and_param_groups():
    a, b = np.ones(3), np.ones((2, 2), dtype=np.float32)
    opt = Adam([{"params": [a], "lr": 0.1}, {"params": [b], "amsgrad": True}],
               betas=(0.8, 0.9), kernel="numpy")
    assert opt.param_groups[0]["params"][0] is a
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["betas"] == (0.8, 0.9)
    assert opt.param_groups[1]["lr"] == 1e-3 and opt.param_groups[1]["amsgrad"] is True
    assert opt.param_groups[0]["amsgrad"] is False and opt.param_groups[1]["eps"] == 1e-8
    opt.step([np.ones(3), np.ones((2, 2), np.float32)])
    # first step with a constant gradient moves each element by lr·g/(|g| + ε) ≈ lr
    np.testing.assert_allclose(a, 1 - 0.1, rtol=1e-7)
    np.testing.assert_allclose(b, 1 - 1e-3, rtol=1e-6)
    assert b.dtype == np.float32 and opt.step_count == 1


@pytest.mark.parametrize("kernel", KERNELS)
def test_lr_change_between_steps_takes_effect(kernel):
    p, q = np.zeros(4), np.zeros(4)
    g = np.array([1.0, -2.0, 0.5, 3.0])
    changed, fixed = Adam([p], lr=0.1, kernel=kernel), Adam([q], lr=0.1, kernel=kernel)
    changed.step([g]), fixed.step([g])
    assert np.array_equal(p, q)
    changed.param_groups[0]["lr"] = 0.0
    before = p.copy()
    changed.step([g]), fixed.step([g])
    assert np.array_equal(p, before) and not np.array_equal(p, q)
    changed.param_groups[0]["lr"] = np.float32(0.5)  # a tensor-like scalar is accepted
    changed.step([g])
    assert not np.array_equal(p, before)


@pytest.mark.parametrize("kernel", KERNELS)
def test_state_dict_round_trip_continues_identically(kernel):
    rng = np.random.default_rng(5)
    shapes = [(5,), (3, 2), ()]
    params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(6)]
    groups = [{"params": params[:2], "amsgrad": True, "lr": 0.01},
              {"params": params[2:], "weight_decay": 0.1, "maximize": True}]
    opt = Adam(groups, kernel=kernel)
    for g in grads[:3]:
        opt.step(g)
    saved = opt.state_dict()
    assert saved["step"] == 3
    saved["state"][0]["m"][0] = 1234.0  # a copy: changing it leaves the optimizer alone
    assert opt.state_arrays("m")[0][0] != 1234.0
    saved = opt.state_dict()

    copies = [p.copy() for p in params]
    fresh = Adam([{"params": copies[:2]}, {"params": copies[2:]}], kernel=kernel)
    fresh.load_state_dict(saved)
    again = fresh.state_dict()
    assert again["step"] == saved["step"]
    for mine, theirs in zip(again["param_groups"], saved["param_groups"], strict=True):
        assert mine == theirs
    for mine, theirs in zip(again["state"], saved["state"], strict=True):
        for name in ("m", "v", "vmax"):
            if theirs[name] is None:
                assert mine[name] is None
            else:
                assert mine[name].dtype == theirs[name].dtype
                assert same_bits(mine[name], theirs[name])
    assert fresh.param_groups[1]["maximize"] is True and fresh.param_groups[0]["lr"] == 0.01
    for g in grads[3:]:
        opt.step(g)
        fresh.step(g)
    for a, b in zip(params, copies, strict=True):
        assert same_bits(a, b)
    assert fresh.step_count == opt.step_count == 6


def _two_param_opt():
    return Adam([np.zeros(3), np.zeros((2, 2))], kernel="numpy")


@pytest.mark.parametrize("mutate, message", [
    (lambda s: s.update(step=-1), "step must be an integer >= 0"),
    (lambda s: s.update(step=2.5), "step must be an integer >= 0"),
    (lambda s: s.pop("state"), "lacks"),
    (lambda s: s.update(format="torch"), "format"),
    (lambda s: s["param_groups"].append(dict(s["param_groups"][0])), "2 param groups"),
    (lambda s: s["param_groups"][0].update(params=[0]), r"holds params \[0\]"),
    (lambda s: s["param_groups"][0].update(lr=-1.0), "Invalid learning rate"),
    (lambda s: s["param_groups"][0].update(betas=(0.9, 1.0)), "beta parameter at index 1"),
    (lambda s: s["state"].pop(), "state for 1 params"),
    (lambda s: s["state"][1].update(m=np.zeros(4)), r"m of param 1 has shape \(4,\)"),
    (lambda s: s["state"][0].update(v=np.zeros(3, np.complex128)), "not a real number"),
])
def test_load_state_dict_refuses_mismatch(mutate, message):
    opt = _two_param_opt()
    opt.step([np.ones(3), np.ones((2, 2))])
    before = opt.state_dict()
    bad = opt.state_dict()
    mutate(bad)
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(bad)
    after = opt.state_dict()  # refused whole: nothing changed
    assert after["step"] == before["step"]
    for x, y in zip(after["state"], before["state"], strict=True):
        assert np.array_equal(x["m"], y["m"]) and np.array_equal(x["v"], y["v"])


def test_load_state_dict_refuses_inexact_dtype_conversion():
    p = np.zeros(2, np.float32)
    opt = Adam([p])
    state = opt.state_dict()
    state["state"][0]["m"] = np.array([1.0, 1.0 + 2.0 ** -40])  # float64 not in float32
    with pytest.raises(ValueError, match="not exactly representable in the param's dtype"):
        opt.load_state_dict(state)
    state["state"][0]["m"] = np.array([1.0, 0.5])  # exact: accepted and converted
    opt.load_state_dict(state)
    assert opt.state_arrays("m")[0].dtype == np.float32


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": -0.1}, "Invalid learning rate: -0.1; lr must be >= 0"),
    ({"lr": "0.1"}, "Invalid learning rate type: str"),
    ({"lr": np.array([0.1, 0.2])}, "a tensor of 2 elements"),
    ({"eps": -1e-8}, "Invalid epsilon value: -1e-08; eps must be >= 0"),
    ({"betas": (1.0, 0.999)}, r"Invalid beta parameter at index 0: 1.0; each beta must be in"),
    ({"betas": (0.9, -0.1)}, r"Invalid beta parameter at index 1: -0.1"),
    ({"betas": 0.9}, "betas must be a pair"),
    ({"weight_decay": -1.0}, "Invalid weight_decay value: -1.0; weight_decay must be >= 0"),
    ({"amsgrad": 1}, "amsgrad must be True or False"),
    ({"maximize": "yes"}, "maximize must be True or False"),
    ({"kernel": "cuda"}, "Invalid kernel: 'cuda'"),
    ({"threads": 0}, "Invalid threads: 0"),
])
def test_invalid_hyperparameters_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Adam([np.zeros(2)], **kwargs)


@pytest.mark.parametrize("error", DOCUMENTED_ERRORS, ids=lambda error: error.label)
def test_each_documented_clause_raises_in_the_production_adam_in_its_words(error):
    with pytest.raises(error.exception, match=f"^{re.escape(error.words)}: "):
        Adam([np.zeros(2)], **error.hyperparameters)


@pytest.mark.parametrize("params, message", [
    ([], "empty parameter list"),
    (np.zeros(3), "not a single array"),
    ([[1.0, 2.0]], "is a list, not a numpy array"),
    ([np.zeros(3, np.int64)], "dtype int64; supported dtypes are float16, float32"),
    ([np.zeros((4, 4))[:, 0]], "C-contiguous"),
    ([{"params": [np.zeros(2)], "lr": -1}], r"Invalid learning rate: -1.0.*param group 0"),
    ([{"params": [np.zeros(2)], "weight_decy": 0.1}], r"unknown keys \['weight_decy'\]"),
    ([{"lr": 0.1}], "has no 'params' key"),
    ([np.zeros(2), {"params": [np.zeros(2)]}], "mixes arrays and group dicts"),
])
def test_invalid_params_raise_value_error(params, message):
    with pytest.raises(ValueError, match=message):
        Adam(params)


def test_same_memory_twice_is_refused():
    p = np.zeros(6)
    with pytest.raises(ValueError, match="param 1 shares memory with param 0"):
        Adam([{"params": [p]}, {"params": [p]}])
    with pytest.raises(ValueError, match="param 2 shares memory with param 0"):
        Adam([p[:4], np.zeros(3), p[3:]])
    Adam([p[:3], p[3:]])  # adjacent views do not overlap


@pytest.mark.parametrize("grads, message", [
    ([np.ones(3)], "got 1 gradients for 2 params"),
    ([np.ones(3), np.ones(3), np.ones(3)], "got 3 gradients for 2 params"),
    ([np.ones(4), np.ones((2, 2), np.float32)], r"gradient 0 has shape \(4,\)"),
    ([np.ones(3), np.ones((2, 2))], "gradient 1 has dtype float64, param 1 has dtype float32"),
    ([[1.0, 1.0, 1.0], np.ones((2, 2), np.float32)], "gradient 0 is a list"),
    (np.ones(3), "sequence of gradient arrays"),
])
def test_bad_gradients_raise_value_error_and_change_nothing(grads, message):
    a, b = np.ones(3), np.ones((2, 2), np.float32)
    opt = Adam([a, b])
    with pytest.raises(ValueError, match=message):
        opt.step(grads)
    assert opt.step_count == 0 and (a == 1).all() and (b == 1).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": float("nan")}, "Invalid learning rate: nan"),
    ({"lr": True}, "not a bool"),
    ({"lr": np.array(True)}, "tensor holds True"),
    ({"lr": None}, "Invalid learning rate type: NoneType"),
    ({"eps": float("nan")}, "Invalid epsilon value: nan"),
    ({"eps": False}, r"Invalid epsilon value: False \(bool\); eps must be a real number"),
    ({"betas": (float("nan"), 0.999)}, "Invalid beta parameter at index 0: nan"),
    ({"betas": (0.9, True)}, "Invalid beta parameter at index 1: True"),
    ({"betas": (0.9, 0.99, 0.999)}, "betas must be a pair"),
    ({"betas": "ab"}, "betas must be a pair"),
    ({"weight_decay": float("nan")}, "Invalid weight_decay value: nan"),
    ({"weight_decay": "0"}, "weight_decay must be a real number"),
])
def test_nan_bool_and_wrong_types_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Adam([np.zeros(2)], **kwargs)


def test_lr_may_be_a_one_element_tensor():
    class Scalar:  # the tensor protocol the documentation allows: one element, .item()
        size = 1

        def item(self):
            return 0.25

    for lr in (np.float32(0.25), np.array(0.25), np.array([0.25]), Scalar(), 1):
        opt = Adam([np.zeros(2)], lr=lr)
        assert opt.param_groups[0]["lr"] is lr
    opt.step([np.ones(2)])


def test_adapters_share_no_code_with_the_reference():
    """The implementation under test imports nothing from the specification or the judge."""
    import ast
    import pathlib
    import subprocess
    import sys

    adapters = pathlib.Path(numpy_adam.__file__).parent
    for name in ("numpy_adam.py", "numpy_backend.py", "base.py"):
        tree = ast.parse((adapters / name).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                assert node.level == 0 or module in (".base", ".numpy_adam"), (name, module)
                assert not module.startswith("adamconf"), (name, module)
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("adamconf") for a in node.names), name
    code = ("import sys, adamconf.adapters.numpy_backend as b; b.NumpyBackend().probe(); "
            "print(sorted(m for m in sys.modules if m.startswith('adamconf.')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout
    assert "reference" not in loaded and "conformance" not in loaded, loaded


class LaxLrNumpyBackend(NumpyBackend):
    """The numpy backend with a wrong validator in its Adam: lr < 0 is let through.

    Loaded as ``test_numpy_adam:LaxLrNumpyBackend`` in the suite's backend subprocess, so
    the patch lives and dies with that process.
    """

    def __init__(self) -> None:
        strict = numpy_adam.validate_hyperparameters

        def lax(lr, betas, eps, weight_decay):
            if isinstance(lr, float) and lr < 0:
                return (lr, *strict(-lr, betas, eps, weight_decay)[1:])
            return strict(lr, betas, eps, weight_decay)

        numpy_adam.validate_hyperparameters = lax


@pytest.mark.parametrize("spec, wrong", [("numpy", set()),
                                         ("test_numpy_adam:LaxLrNumpyBackend", {"lr -0.001"})])
def test_suite_catches_a_wrong_validator_in_the_numpy_adam(spec, wrong):
    from adamconf.conformance.harness.runner import check_validation
    from adamconf.conformance.harness.worker import BackendProcess

    variants = [Variant("numpy", "production", "cpu", "float32")]
    if numba_available():
        variants.append(Variant("numpy", "production-numba", "cpu", "float64"))
    with BackendProcess(spec) as process:
        results = check_validation(process, variants)
    assert len(results) == len(DOCUMENTED_ERRORS) * len(variants)
    failed = {f"{r.parameter} {r.value}" for r in results if not r.ok}
    assert failed == wrong, [r for r in results if not r.ok]
    assert sum(not r.ok for r in results) == len(wrong) * len(variants)


def test_invalid_lr_set_between_steps_raises_at_step():
    p = np.ones(2)
    opt = Adam([p])
    opt.param_groups[0]["lr"] = -1.0
    with pytest.raises(ValueError, match=r"Invalid learning rate: -1.0.*param group 0"):
        opt.step([np.ones(2)])
    assert opt.step_count == 0 and (p == 1).all()


def test_hyperparameters_rechecked_every_step_signed_zeros_included():
    """A step reuses the last check of the same plain values: a changed value is checked
    again, and -0.0 is not 0.0 (a lr of -0.0 gives θ other zeros)."""
    theta = np.array([-0.0, 0.0, 1.0, -0.0], np.float32)
    grad = np.array([1.0, -1.0, 0.5, 1.0], np.float32)
    plain = Adam([theta.copy()])
    boxed = Adam([theta.copy()])  # a 0-d array lr is not a plain number: checked in full
    for lr, beta1 in [(0.0, 0.9), (-0.0, 0.9), (1e-3, 0.9), (-0.0, -0.0), (0.0, 0.0)]:
        plain.param_groups[0].update(lr=lr, betas=(beta1, 0.999))
        boxed.param_groups[0].update(lr=np.array(lr), betas=(beta1, 0.999))
        plain.step([grad])
        boxed.step([grad])
        for name in ("m", "v"):
            assert plain.state_arrays(name)[0].tobytes() == boxed.state_arrays(name)[0].tobytes()
        assert plain._params[0].tobytes() == boxed._params[0].tobytes(), (lr, beta1)
    before = plain._params[0].copy()
    plain.param_groups[0]["betas"] = (1.0, 0.999)
    with pytest.raises(ValueError, match=r"Invalid beta parameter at index 0: 1.0"):
        plain.step([grad])
    assert plain._params[0].tobytes() == before.tobytes() and plain.step_count == 5


@pytest.mark.parametrize("kernel", KERNELS)
def test_step_allocates_no_full_size_temporaries(kernel):
    n = 1 << 20
    p = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    g = np.ones(n, np.float32)
    opt = Adam([p], amsgrad=True, kernel=kernel)
    opt.step([g])  # warm-up: compiles the numba kernel, allocates v̂max
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        opt.step([g])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < p.nbytes / 8, f"peak extra {peak - base} bytes for {p.nbytes}"


# --------------------------------------------------------------------------------------
# the backend

def test_backend_probe_lists_variants():
    info = NumpyBackend().probe()
    assert info.installed and info.name == "numpy" and info.versions["numpy"] == np.__version__
    ids = {v.id for v in info.variants}
    assert {"production/cpu/float64", "production/cpu/float32", "production/cpu/float16"} <= ids
    assert ("production-numba/cpu/float32" in ids) == numba_available()


@pytest.mark.parametrize("name", ["production"] + (["production-numba"] if numba_available()
                                                   else []))
def test_backend_resumes_from_initial_state_like_the_reference(name):
    rng = np.random.default_rng(2)
    shapes = [(4,), (2,)]
    params = [rng.standard_normal(s) for s in shapes]
    state = InitialState(step=10 ** 7, m=tuple(rng.standard_normal(s) * 0.1 for s in shapes),
                         v=tuple(rng.random(s) for s in shapes),
                         vmax=(rng.random(shapes[0]) + 0.5, np.zeros(shapes[1])))
    steps = 4
    problem = Problem(
        (Group(GroupConfig(lr=0.01, amsgrad=True), (params[0],)),
         Group(GroupConfig(lr=0.02, weight_decay=0.1), (params[1],),
               lrs=np.array([0.02, 0.01, 0.005, 0.0]))),
        tuple(rng.standard_normal((steps,) + s) for s in shapes), initial_state=state)
    ref = run_reference(problem, certify=False)
    session = NumpyBackend().open(problem, Variant("numpy", name, "cpu", "float64"))
    for k in range(steps):
        session.step([g[k] for g in problem.grads], [g.lr_at(k) for g in problem.groups])
        got = session.state()
        assert isinstance(got, OptimizerState) and got.vmax_kind == "hat"
        assert got.step == 10 ** 7 + k + 1
        for i, theta in enumerate(session.params()):
            assert theta.dtype == np.float64
            assert_close64(theta, ref.theta[i][k], f"theta {i} step {k}")
            assert_close64(got.m[i], ref.m[i][k], f"m {i} step {k}")
            assert_close64(got.vmax[i], ref.vmax[i][k], f"vmax {i} step {k}")


def test_backend_float32_session_converts_exactly():
    problem = make_problem([GroupConfig(lr=0.01)], [[(3,)]], 2,
                           grad_fn=lambda rng, shape: np.full(shape, 0.5))
    with pytest.raises(UnsupportedFeature, match="not exactly representable in float32"):
        NumpyBackend().open(problem, Variant("numpy", "production", "cpu", "float32"))
    exact = Problem((Group(GroupConfig(lr=0.01), (np.array([1.0, -2.0, 0.25]),)),),
                    (np.full((2, 3), 0.5),))
    session = NumpyBackend().open(exact, Variant("numpy", "production", "cpu", "float32"))
    session.step([np.full(3, 0.5)])
    assert session.optimizer.state_arrays("m")[0].dtype == np.float32
    with pytest.raises(ValueError, match="not exactly representable"):
        session.step([np.full(3, 0.1)])


def test_backend_refuses_unknown_variants_and_devices():
    backend = NumpyBackend()
    problem = make_problem([GroupConfig()], [[(2,)]], 1)
    with pytest.raises(UnsupportedFeature, match="cpu"):
        backend.open(problem, Variant("numpy", "production", "cuda", "float32"))
    with pytest.raises(UnsupportedFeature, match="bfloat16"):
        backend.open(problem, Variant("numpy", "production", "cpu", "bfloat16"))
    with pytest.raises(ValueError, match="unknown numpy variant"):
        backend.open(problem, Variant("numpy", "fused", "cpu", "float32"))


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": -1.0}, "Invalid learning rate"),
    ({"eps": -1.0}, "Invalid epsilon value"),
    ({"betas": (0.9, 1.0)}, "beta parameter at index 1"),
    ({"weight_decay": -0.5}, "Invalid weight_decay value"),
    ({"lr": "fast"}, "Invalid learning rate type"),
])
def test_backend_construct_raises_documented_errors(kwargs, message):
    valid = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}
    variant = Variant("numpy", "production", "cpu", "float32")
    NumpyBackend().construct(variant, **valid)
    with pytest.raises(ValueError, match=message):
        NumpyBackend().construct(variant, **{**valid, **kwargs})


# --------------------------------------------------------------------------------------
# the benchmark's plumbing (timings themselves are not asserted)

def test_bench_times_fuzzing_with_one_job_and_with_several():
    from adamconf.conformance.tools import bench

    r = bench.bench_fuzz(examples=30, jobs=2, hypofuzz=False)
    assert r["jobs"] == 2 and r["rate_one"] > 0 and r["rate_jobs"] > 0
    assert r["ratio"] == pytest.approx(r["rate_jobs"] / r["rate_one"])
    assert r["exit_codes"] == {"one": 0, "jobs": 0}
    assert "one job" in bench.format_fuzz(r) and "-j 2" in bench.format_fuzz(r)
    assert "HypoFuzz" not in bench.format_fuzz(r)


@pytest.mark.slow
def test_bench_times_a_hypofuzz_campaign_against_the_jobs_in_the_same_run():
    pytest.importorskip("hypofuzz", reason="hypofuzz is not installed: "
                                           "pip install 'adamconf[hypofuzz]'")
    from adamconf.conformance.tools import bench

    r = bench.bench_fuzz(examples=40, jobs=2)
    assert r["rate_jobs"] > 0 and r["rate_hypofuzz"] > 0
    assert r["ratio_hypofuzz"] == pytest.approx(r["rate_hypofuzz"] / r["rate_jobs"])
    assert r["exit_codes"] == {"one": 0, "jobs": 0, "hypofuzz": 0}
    shown = bench.format_fuzz(r).splitlines()
    campaign = [line for line in shown if "HypoFuzz campaign" in line]
    assert len(campaign) == 1 and "examples/s" in campaign[0]
    assert "× adamconf's -j 2" in campaign[0]


def test_bench_parses_sizes_and_refuses_bad_ones():
    from adamconf.conformance.tools.bench import UsageError, parse_sizes

    assert parse_sizes("10,12-14,2^20") == [10, 12, 13, 14, 20]
    for bad in ("x", "14-12", "40", ""):
        with pytest.raises(UsageError, match="--sizes"):
            parse_sizes(bad)


def test_bench_runs_and_writes_json(tmp_path, capsys):
    import argparse
    import json

    from adamconf.conformance.tools import bench

    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    path = tmp_path / "bench.json"
    args = parser.parse_args(["--sizes", "10", "--kernels", "numpy", "--no-torch",
                              "--no-reference", "--no-fuzz", "--repeats", "5", "--json",
                              str(path)])
    assert bench.run(args) == 0
    table = capsys.readouterr().out
    assert "torch not timed" in table and "2^10" in table
    report = json.loads(path.read_text())
    assert report["schema"] == bench.SCHEMA
    (row,) = report["step"]["rows"]
    assert row["kernel"] == "numpy" and row["elements"] == 1024 and row["numpy_ms"] > 0
    assert bench.run(parser.parse_args(["--repeats", "3"])) == 2
    # CPU time: only with one thread (more would count threads spinning while they wait)
    assert bench.run(parser.parse_args(["--clock", "cpu", "--threads", "2"])) == 2
    assert "--clock cpu: add --threads 1" in capsys.readouterr().err
    args = parser.parse_args(["--sizes", "10", "--kernels", "numpy", "--no-torch",
                              "--no-reference", "--no-fuzz", "--repeats", "5", "--clock", "cpu",
                              "--threads", "1", "--json", str(path)])
    assert bench.run(args) == 0
    assert "ms per step of CPU time" in capsys.readouterr().out
    step = json.loads(path.read_text())["step"]
    assert step["clock"] == "cpu" and step["rows"][0]["numpy_ms"] > 0
