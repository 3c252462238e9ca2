"""The tinygrad backend against the real tinygrad on its CPU device (skipped when tinygrad
is not installed, or its CPU device cannot start: it needs clang on PATH).

What was found: ``tinygrad.nn.optim.Adam`` computes the documented update (β^t as a float32
running product) and passes the plain cases in float32 and float16. Its moments and lr are
float32 whatever the parameters' dtype, so float64 parameters fail, and the model names a
float32 precision choice (``compute-float32`` over the whole corpus). A 0-d parameter makes the unfused step fail (the fused one handles it). Only
lr < 0 raises ValueError.
"""

from __future__ import annotations

import json

import pytest

from adamconf.reference.config import DEFAULTS
from adamconf.reference.dialects import get_dialect

pytest.importorskip("tinygrad")

from adamconf.adapters.base import UnsupportedFeature, Variant  # noqa: E402
from adamconf.conformance.cli import main  # noqa: E402
from adamconf.conformance.harness.registry import load_backend  # noqa: E402

pytestmark = pytest.mark.framework

F32 = Variant("tinygrad", "Adam", "cpu", "float32")


@pytest.fixture(scope="module")
def info():
    info = load_backend("tinygrad").probe()
    if not info.variants:
        pytest.skip("tinygrad's CPU device cannot start here: "
                    + "; ".join(u.reason for u in info.unsupported[:1]))
    return info


def _run(tmp_path, *args: str, variant: str = "Adam") -> dict[tuple[str, str], dict]:
    """(case, dtype) → result, from the CLI's JSON report."""
    out = tmp_path / "run.json"
    main(["run", "--backend", "tinygrad", "--quiet", "--no-validate", "--json", str(out),
          "--variant", variant, *args])
    run = json.loads(out.read_text())["runs"][0]
    return {(r["case"], r["variant"]["dtype"]): r for r in run["results"]}


def test_probe(info):
    assert info.installed and info.devices == ["cpu"]
    ids = {v.id for v in info.variants}
    assert {f"{name}/cpu/{dtype}" for name in ("Adam", "Adam-fused")
            for dtype in ("float32", "float16", "float64")} <= ids
    refused = {u.what for u in info.unsupported}
    # bfloat16 needs a clang that knows __bf16: a variant or a reason, never silence
    assert ("Adam/cpu/bfloat16" in ids) != ("cpu/bfloat16" in refused)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_plain_cases_pass(info, tmp_path, dtype):
    cases = ["t1/plain", "short/plain", "schedule/plain", "resumed/plain"]
    results = _run(tmp_path, "--dtype", dtype, *[a for c in cases for a in ("--case", c)])
    assert {c: r["status"] for (c, _), r in results.items()} == dict.fromkeys(cases, "pass")


def test_fused_passes_plain_cases_and_handles_a_0d_parameter(info, tmp_path):
    cases = ["t1/plain", "resumed/plain", "empty-0d/plain"]
    results = _run(tmp_path, "--dtype", "float32", *[a for c in cases for a in ("--case", c)],
                   variant="Adam-fused")
    assert {c: r["status"] for (c, _), r in results.items()} == dict.fromkeys(cases, "pass")


def test_float64_parameters_get_float32_scalars(info, tmp_path):
    # lr, b1_t and b2_t are float32 (and m, v: OPTIM_DTYPE); 1 − β2 alone is then off by 1e-5
    result = _run(tmp_path, "--dtype", "float64", "--case", "t1/plain")[("t1/plain", "float64")]
    # β^t and the scalars in float32: the model names a float32 precision switch
    assert result["status"] == "fail" and result["dialects"]
    assert all(set(get_dialect(n).labels) <= {"betapow-float32", "hyper-float32", "lr-float32",
                                              "state-float32", "theta-via-float32"}
               for n in result["dialects"]), result["dialects"]


def test_a_0d_parameter_is_unsupported(info, tmp_path):
    result = _run(tmp_path, "--dtype", "float32", "--case", "empty-0d/plain")
    result = result[("empty-0d/plain", "float32")]
    assert result["status"] == "unsupported" and "0-d" in result["message"]


def test_construct_checks_only_the_lr(info):
    backend = load_backend("tinygrad")
    with pytest.raises(ValueError):
        backend.construct(F32, **{**DEFAULTS, "lr": -1e-3})
    with pytest.raises(TypeError):  # `lr < 0` on a str
        backend.construct(F32, **{**DEFAULTS, "lr": "0.01"})
    for override in ({"eps": -1e-8}, {"betas": (1.0, 0.999)}, {"betas": (0.9, -0.5)}):
        backend.construct(F32, **{**DEFAULTS, **override})  # accepted: a finding
    with pytest.raises(UnsupportedFeature, match="AdamW"):
        backend.construct(F32, **{**DEFAULTS, "weight_decay": 0.01})
