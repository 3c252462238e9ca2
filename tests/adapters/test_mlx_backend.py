"""The MLX backend against the real MLX on the CPU (skipped when it is not installed).

What was found: ``Adam`` (MLX's default, ``bias_correction=False``) is the
``no-bias-correction`` dialect; ``Adam-bias-correction`` passes the plain cases in float32
and float16. In float64 both fail: MLX holds the lr (and β^t, 1/√(1 − β2^t)) in float32,
which the model names (``lr-float32``, ``betapow-float32``). lr < 0 is accepted.
"""

from __future__ import annotations

import json

import pytest

from adamconf.reference.config import DEFAULTS
from adamconf.reference.dialects import get_dialect

pytest.importorskip("mlx.core")

from adamconf.adapters.base import UnsupportedFeature, Variant  # noqa: E402
from adamconf.conformance.cli import main  # noqa: E402
from adamconf.conformance.harness.registry import load_backend  # noqa: E402

pytestmark = pytest.mark.framework

NAMES = ("Adam", "Adam-bias-correction")


def _run(tmp_path, *args: str) -> dict[tuple[str, str], dict]:
    """(case, variant id) → result, from the CLI's JSON report."""
    out = tmp_path / "run.json"
    main(["run", "--backend", "mlx", "--quiet", "--no-validate", "--json", str(out), *args])
    run = json.loads(out.read_text())["runs"][0]
    return {(r["case"], r["variant"]["id"]): r for r in run["results"]}


def test_probe():
    info = load_backend("mlx").probe()
    assert info.installed and "mlx" in info.versions and info.devices == ["cpu"]
    assert {v.id for v in info.variants} == {f"{n}/cpu/{d}" for n in NAMES
                                            for d in ("float32", "float16", "bfloat16",
                                                      "float64")}


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_bias_correction_on_passes_plain_cases(tmp_path, dtype):
    cases = ["t1/plain", "short/plain", "schedule/plain", "resumed/plain", "empty-0d/plain"]
    results = _run(tmp_path, "--variant", "Adam-bias-correction", "--dtype", dtype,
                   *[a for c in cases for a in ("--case", c)])
    assert {c: r["status"] for (c, _), r in results.items()} == dict.fromkeys(cases, "pass")


@pytest.mark.parametrize("case", ["t1/plain", "short/plain", "schedule/plain"])
def test_default_is_no_bias_correction(tmp_path, case):
    result = _run(tmp_path, "--variant", "Adam", "--dtype", "float32", "--case", case)
    result = result[(case, "Adam/cpu/float32")]
    assert result["status"] == "fail" and "no-bias-correction" in result["dialects"]


@pytest.mark.parametrize("name", NAMES)
def test_float64_fails_with_float32_scalars(tmp_path, name):
    result = _run(tmp_path, "--variant", name, "--dtype", "float64", "--case", "t1/plain")
    result = result[("t1/plain", f"{name}/cpu/float64")]
    # β^t and the scalars in float32: the model names a float32 precision switch
    assert result["status"] == "fail" and result["dialects"]
    # (and the Adam variant's bias_correction=False)
    assert all(set(get_dialect(n).labels) - {"no-bias-correction"} <= {
        "betapow-float32", "hyper-float32", "lr-float32"}
               for n in result["dialects"]), result["dialects"]


def test_lr_is_float32_even_for_float64_parameters():
    import mlx.optimizers

    assert str(mlx.optimizers.Adam(learning_rate=1e-3).learning_rate.dtype) == "mlx.core.float32"


@pytest.mark.parametrize("override", [{"lr": "0.01"}, {"eps": -1e-8}, {"betas": (-0.1, 0.999)},
                                      {"betas": (1.0, 0.999)}, {"betas": (0.9, 1.0)},
                                      {"betas": (0.9, -0.5)}])
@pytest.mark.parametrize("name", NAMES)
def test_construct_raises_value_error(name, override):
    with pytest.raises(ValueError):
        load_backend("mlx").construct(Variant("mlx", name, "cpu", "float32"),
                                      **{**DEFAULTS, **override})


def test_construct_accepts_a_negative_lr():
    # a finding: MLX checks β and ε, not the lr
    load_backend("mlx").construct(Variant("mlx", "Adam", "cpu", "float32"),
                                  **{**DEFAULTS, "lr": -1e-3})


def test_weight_decay_is_refused():
    with pytest.raises(UnsupportedFeature, match="AdamW"):
        load_backend("mlx").construct(Variant("mlx", "Adam", "cpu", "float32"),
                                      **{**DEFAULTS, "weight_decay": 0.01})
