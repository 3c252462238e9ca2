"""MindSpore's Adams (experimental.optim.Adam, with and without jit, and nn.Adam) against
the real MindSpore (no mocks; skipped when MindSpore is not installed).

Each runs the small problems of ``framework_checks`` and must agree with the dialect it is
known to implement or refuse what it cannot express; a built optimizer reused for the next
case starts fresh; the documented invalid hyperparameters must raise ``ValueError``.
"""

from __future__ import annotations

import numpy as np
import pytest

from adamconf.adapters.base import BackendInfo, UnsupportedFeature, Variant
from adamconf.reference.config import GroupConfig
from adamconf.reference.problem import Group, Problem
from framework_checks import (
    open_case,
    HALF_PROBLEMS,
    PROBLEMS,
    check_against_dialect,
    check_invalid,
    check_or_listed_refusal,
    check_probe,
    drive,
    f32,
    invalid_cases,
    random_grads,
    stack_states,
    variant_or_skip,
)

pytestmark = pytest.mark.framework

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
            open_case(backend, PROBLEMS["plain"], Variant("mindspore", "mint.optim.Adam", "CPU",
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
            open_case(backend, problem, variant)
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
        session = open_case(backend, problem, variant)  # built, never stepped: a new optimizer
        engines.append(session.engine)
        del session
    runs: list[list] = [[], []]
    for _ in range(2):  # the second time round, each optimizer has run its case once
        for problem, trajectories in zip(problems, runs, strict=True):
            trajectories.append(drive(backend, problem, variant))
    for problem, engine, ((theta_a, states_a), (theta_b, states_b)) in zip(
            problems, engines, runs, strict=True):
        session = open_case(backend, problem, variant)
        assert session.engine is engine, "a free optimizer of the same key was not reused"
        del session
        for got, want in zip(theta_b, theta_a, strict=True):
            np.testing.assert_array_equal(got, want)
        assert [s.step for s in states_b] == [s.step for s in states_a]
        for what in ("m", "v"):
            for got, want in zip(stack_states(states_b, what), stack_states(states_a, what), strict=True):
                np.testing.assert_array_equal(got, want)


def test_mindspore_live_sessions_do_not_share_an_optimizer(mindspore_backend):
    backend, info = mindspore_backend
    variant = variant_or_skip(info, EXPERIMENTAL, _ms_device(info), "float32")
    problem = PROBLEMS["plain"]
    one, two = open_case(backend, problem, variant), open_case(backend, problem, variant)
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
                                    (f32(rng.normal(size=7)),)),),
                      grads=(random_grads(rng, (7,), 21),))
    session = open_case(backend, problem, variant)
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
        open_case(backend, PROBLEMS["maximize"], variant)
    with pytest.raises(UnsupportedFeature, match="one betas"):
        open_case(backend, PROBLEMS["groups"], variant)
    zero_beta = Problem(groups=(Group(GroupConfig(lr=0.01, betas=(0.0, 0.9)), (f32([1.0]),)),),
                        grads=(f32([[0.5]]),))
    with pytest.raises(UnsupportedFeature, match="beta1"):  # its own range is (0, 1)
        open_case(backend, zero_beta, variant)


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
