"""TensorFlow's raw Adam kernels against golden cases (no mocks): the verdicts and dialects
found, and which documented invalid values the kernels refuse (none raise ValueError)."""

from __future__ import annotations

import pytest

from framework_runs import require, run_cli

pytestmark = [pytest.mark.framework, pytest.mark.slow]

ADAM, AMSGRAD = "ResourceApplyAdam", "ResourceApplyAdamWithAmsgrad"
CASES = ["t1/plain", "t1/ams", "t1/max", "empty-0d/wd", "resumed/ams", "schedule/plain",
         "schedule/ams+wd", "short/plain"]


@pytest.fixture(scope="module")
def tf_run(tmp_path_factory):
    require("tensorflow")
    return run_cli(tmp_path_factory.mktemp("tf"), "tensorflow", CASES,
                   ["float64", "float32", "bfloat16"])


def test_probe_lists_both_kernels_in_every_dtype(tf_run):
    ids = tf_run.variant_ids()
    for name in (ADAM, AMSGRAD):
        for dtype in ("float64", "float32", "float16", "bfloat16"):
            assert f"{name}/cpu/{dtype}" in ids
    assert "maximize" in tf_run.unsupported()


@pytest.mark.parametrize(("case", "variant", "dialect"), [
    # training_ops.cc: θ ← θ − m·lr·√(1−β2^t)/(1−β1^t)/(√v + ε): ε not bias-corrected
    ("t1/plain", f"{ADAM}/cpu/float64", "eps-hat"),
    ("schedule/plain", f"{ADAM}/cpu/float64", "eps-hat"),  # lr fed per step as an input
    ("empty-0d/wd", f"{ADAM}/cpu/float64", "eps-hat"),  # L2 as λ·tf.nn.l2_loss in the loss
    # vhat ← max(vhat, v) on raw v
    ("t1/ams", f"{AMSGRAD}/cpu/float64", "ams-rawmax+eps-hat"),
    ("schedule/ams+wd", f"{AMSGRAD}/cpu/float64", "ams-rawmax+eps-hat"),
])
def test_kernels_fail_the_spec_as_their_dialect(tf_run, case, variant, dialect):
    result = tf_run.result(case, variant)
    assert result["status"] == "fail", result["message"]
    assert dialect in result["dialects"]


def test_a_resumed_run_passes(tf_run):
    # at step 10^7, 1 − β^t ≈ 1: ε's placement and the raw max no longer show, while a wrong
    # resume (t, m, v or the raw vhat = v̂max·(1 − β2^step)) would
    assert tf_run.result("resumed/ams", f"{AMSGRAD}/cpu/float64")["status"] == "pass"


def test_kernel_choice_and_maximize_are_refused_with_reasons(tf_run):
    assert tf_run.result("t1/ams", f"{ADAM}/cpu/float64")["status"] == "unsupported"
    assert tf_run.result("t1/plain", f"{AMSGRAD}/cpu/float64")["status"] == "unsupported"
    refused = tf_run.result("t1/max", f"{ADAM}/cpu/float64")
    assert refused["status"] == "unsupported" and "maximize" in refused["message"]


def test_bfloat16_hyperparameters_are_rounded_by_the_kernel_signature(tf_run):
    # every hyperparameter is a bfloat16 input, β^t too (from the β2 passed): β2 = 0.999 is
    # 1.0, so 1 − β2 = 0 and v never grows, while β2^t is not 1 from t = 2 on and θ moves by
    # m·α/ε; the model names that (hyper-dtype-inputs), not Keras's held β (hyper-in-dtype,
    # whose 1 − β comes from the β passed)
    for case in ("t1/plain", "schedule/plain", "short/plain"):
        result = tf_run.result(case, f"{ADAM}/cpu/bfloat16")
        assert result["status"] == "fail", result
        assert result["dialects"] == ["eps-hat+hyper-dtype-inputs"], result


def test_the_kernels_validate_no_hyperparameter(tf_run):
    # a finding, not a bug of the adapter: the kernels take any value; only a str lr fails,
    # with TypeError, when it is converted to a tensor
    for variant in (ADAM, AMSGRAD):
        found = tf_run.validation(variant)
        assert found.pop("lr='0.01' (a str)") == "TypeError"
        assert found and all(raised is None for raised in found.values()), found
