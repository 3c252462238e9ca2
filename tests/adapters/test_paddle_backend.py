"""paddle.optimizer.Adam against golden cases (no mocks): the documented update without
amsgrad, ams-rawmax with it, and which documented invalid values raise ValueError."""

from __future__ import annotations

import pytest
from framework_runs import require, run_cli

pytestmark = [pytest.mark.framework, pytest.mark.slow]

CASES = ["t1/plain", "t1/wd", "t1/max", "schedule/plain", "resumed/ams", "schedule/ams+wd",
         "empty-0d/ams"]


@pytest.fixture(scope="module")
def paddle_run(tmp_path_factory):
    require("paddle")
    return run_cli(tmp_path_factory.mktemp("paddle"), "paddle", CASES, ["float64", "float32"])


def test_probe_finds_the_cpu_kernel_only_for_float32_and_float64(paddle_run):
    assert {"Adam/cpu/float64", "Adam/cpu/float32"} <= paddle_run.variant_ids()
    refused = paddle_run.unsupported()
    # PD_REGISTER_KERNEL(adam, CPU, ..., float, double): the refusal is Paddle's own message
    for dtype in ("float16", "bfloat16"):
        for name in ("Adam", "Adam-multi_precision"):
            assert "kernel `adam` is not registered" in refused[f"{name}/cpu/{dtype}"]


@pytest.mark.parametrize("case", ["t1/plain", "t1/wd", "schedule/plain", "resumed/ams"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_documented_update_passes(paddle_run, case, dtype):
    # adam_kernel.cc: ε·√(1−β2^t) next to √v puts ε back outside the bias correction
    result = paddle_run.result(case, f"Adam/cpu/{dtype}")
    assert result["status"] == "pass", result["message"]


@pytest.mark.parametrize("case", ["schedule/ams+wd", "empty-0d/ams"])
def test_amsgrad_keeps_the_max_of_raw_v(paddle_run, case):
    result = paddle_run.result(case, "Adam/cpu/float64")
    assert result["status"] == "fail" and "ams-rawmax" in result["dialects"]


def test_maximize_is_refused(paddle_run):
    result = paddle_run.result("t1/max", "Adam/cpu/float64")
    assert result["status"] == "unsupported" and "maximize" in result["message"]


def test_which_documented_values_raise(paddle_run):
    # findings: a negative lr and a negative weight_decay are accepted silently; a str lr
    # raises TypeError ("learning rate should be float or LRScheduler")
    assert paddle_run.validation("Adam") == {
        "lr=-0.001": None, "lr='0.01' (a str)": "TypeError", "eps=-1e-08": "ValueError",
        "betas[0]=-0.1": "ValueError", "betas[0]=1.0": "ValueError",
        "betas[1]=1.0": "ValueError", "betas[1]=-0.5": "ValueError", "weight_decay=-0.01": None}
