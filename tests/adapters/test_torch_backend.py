"""torch.optim.Adam against the real torch (no mocks; skipped when torch is not installed).

Each variant (for-loop, foreach, fused, a tensor lr, differentiable) runs the small problems
of ``framework_checks`` and must agree with the dialect torch is known to implement;
the documented invalid hyperparameters must raise ``ValueError``.
"""

from __future__ import annotations

import pytest

from adamconf.adapters.base import UnsupportedFeature, Variant
from adamconf.reference.dialects import DIALECTS
from adamconf.reference.engine import run_float64
from framework_checks import (
    open_case,
    HALF_DTYPES,
    HALF_PROBLEMS,
    PROBLEMS,
    check_against_dialect,
    check_invalid,
    check_probe,
    drive,
    invalid_cases,
    relative_error,
    variant_or_skip,
)

pytestmark = pytest.mark.framework

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
            open_case(backend, PROBLEMS["plain"], Variant("torch", "capturable", "cpu", "float32"))
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
    theta, _ = drive(backend, problem, variant)
    error = relative_error(theta, want.theta, list(problem.params))
    assert 1e-7 < error < 1e-4, error  # float32's ε-sized, far beyond float64 rounding
    for_loop, _ = drive(backend, problem, variant_or_skip(info, "for-loop", "cpu", "float64"))
    assert relative_error(for_loop, want.theta, list(problem.params)) < 1e-12


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
