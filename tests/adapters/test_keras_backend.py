"""keras.optimizers.Adam on each Keras backend against golden cases (no mocks).

Each Keras backend is its own adamconf backend (keras-tensorflow, keras-jax, keras-torch),
run by the CLI in a worker process of its own: Keras picks its backend once per process.
"""

from __future__ import annotations

import pytest

from adamconf.reference.dialects import get_dialect
from framework_runs import require, run_cli

pytestmark = [pytest.mark.framework, pytest.mark.slow]

KERAS_BACKENDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
CASES = ["t1/plain", "t1/wd", "t1/max", "t1/ams", "schedule/plain", "schedule/ams+wd",
         "eps-large/plain",  # where ε-hat shows in float64 beside β^t held as float32
         "resumed/ams"]
VARIANTS = ["Adam", "Adam-schedule", "Adam-l2-regularizer"]


@pytest.fixture(scope="module", params=list(KERAS_BACKENDS))
def keras_run(request, tmp_path_factory):
    require("keras", KERAS_BACKENDS[request.param])
    backend = f"keras-{request.param}"
    return request.param, run_cli(tmp_path_factory.mktemp(backend), backend, CASES,
                                  ["float64", "float32"])


def test_probe_lists_every_variant_and_dtype(keras_run):
    _, run = keras_run
    ids = run.variant_ids()
    for name in VARIANTS:
        for dtype in ("float64", "float32", "float16", "bfloat16"):
            assert f"{name}/cpu/{dtype}" in ids
    assert "maximize" in run.unsupported()


@pytest.mark.parametrize(("case", "variant", "dialect"), [
    # adam.py: α = lr·√(1−β2^t)/(1−β1^t); θ ← θ − m·α/(√v + ε)
    ("t1/plain", "Adam", "eps-hat"),
    ("schedule/plain", "Adam", "eps-hat"),  # learning_rate.assign before each step
    ("schedule/plain", "Adam-schedule", "eps-hat"),  # PiecewiseConstantDecay
    ("t1/ams", "Adam", "ams-rawmax+eps-hat"),  # v̂ ← max(v̂, v) on raw v
    ("t1/wd", "Adam-l2-regularizer", "eps-hat"),  # L2(λ/2) in the loss: g + λθ
    ("schedule/ams+wd", "Adam-l2-regularizer", "ams-rawmax+eps-hat"),
])
def test_float64_fails_the_spec_as_its_dialect(keras_run, case, variant, dialect):
    keras_backend, run = keras_run
    result = run.result(case, f"{variant}/cpu/float64")
    assert result["status"] == "fail", result["message"]
    _names_the_variant_model(keras_backend, result, dialect)


def _names_the_variant_model(keras_backend: str, result: dict, dialect: str) -> None:
    """The case names its variant's one model, which holds the dialect's switches (and
    more where the variant's other cases show more: amsgrad, decoupled decay)."""
    names = result["dialects"]
    assert names and len(names) == 1, result
    labels = set(get_dialect(names[0]).labels)
    assert set(get_dialect(dialect).labels) <= labels, names
    if keras_backend == "tensorflow":
        # keras.ops.cast(0.999, "float64") on TensorFlow converts the Python float to a
        # float32 tensor first: β1, β2 are float32 values in a float64 run
        assert "hyper-float32" in labels, names


@pytest.mark.parametrize("case, dialect", [
    ("t1/wd", "eps-hat+wd-decoupled"),
    ("schedule/ams+wd", "ams-rawmax+eps-hat+wd-decoupled"),
])
def test_keras_weight_decay_is_decoupled_with_eps_hat(keras_run, case, dialect):
    # θ ← θ − θ·λ·γ before the update (torch: θ·(1 − λγ)), with ε as in eps-hat: the two
    # dialects that the catalogue has for Keras 3
    keras_backend, run = keras_run
    result = run.result(case, "Adam/cpu/float64")
    assert result["status"] == "fail"
    _names_the_variant_model(keras_backend, result, dialect)


def test_a_resumed_run_passes(keras_run):
    _, run = keras_run
    assert run.result("resumed/ams", "Adam/cpu/float32")["status"] == "pass"


def test_maximize_is_refused(keras_run):
    _, run = keras_run
    result = run.result("t1/max", "Adam/cpu/float64")
    assert result["status"] == "unsupported" and "maximize" in result["message"]


def test_which_documented_values_raise(keras_run):
    # findings: Keras checks only the lr's type (a str raises ValueError) and, in the
    # l2-regularizer variant, L2's factor; betas, ε and a negative lr are accepted silently
    _, run = keras_run
    for variant in VARIANTS:
        found = run.validation(variant)
        assert found.pop("lr='0.01' (a str)") == "ValueError"
        wd = found.pop("weight_decay=-0.01")
        assert all(raised is None for raised in found.values()), (variant, found)
        assert wd == ("ValueError" if variant == "Adam-l2-regularizer" else None), (variant, wd)
