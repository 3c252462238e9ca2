"""The sklearn backend against the real scikit-learn (skipped when it is not installed).

What was found: AdamOptimizer adds ε to the raw √v (``eps-hat``); in float64 that is far
outside the bound, in float32 it is within it on these cases. Weight decay, maximize and
amsgrad are not in the optimizer. The optimizer validates nothing; MLP's parameter checks
raise InvalidParameterError, a ValueError.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("sklearn")

from adamconf.adapters.base import UnsupportedFeature, Variant  # noqa: E402
from adamconf.conformance.cli import main  # noqa: E402
from adamconf.conformance.harness.registry import load_backend  # noqa: E402
from adamconf.reference.config import DEFAULTS  # noqa: E402

pytestmark = pytest.mark.framework

F64 = Variant("sklearn", "AdamOptimizer", "cpu", "float64")


def _run(tmp_path, *args: str) -> dict[tuple[str, str], dict]:
    """(case, dtype) → result, from the CLI's JSON report."""
    out = tmp_path / "run.json"
    main(["run", "--backend", "sklearn", "--quiet", "--no-validate", "--json", str(out), *args])
    run = json.loads(out.read_text())["runs"][0]
    return {(r["case"], r["variant"]["dtype"]): r for r in run["results"]}


def test_probe_lists_variants_and_what_is_missing():
    info = load_backend("sklearn").probe()
    assert info.installed and "scikit-learn" in info.versions
    assert [v.id for v in info.variants] == ["AdamOptimizer/cpu/float64",
                                             "AdamOptimizer/cpu/float32"]
    missing = {u.what: u.reason for u in info.unsupported}
    assert "alpha" in missing["weight_decay"] and "maximize" in missing


@pytest.mark.parametrize("case", ["t1/plain", "short/plain", "schedule/plain"])
def test_float64_is_eps_hat(tmp_path, case):
    result = _run(tmp_path, "--case", case, "--dtype", "float64")[(case, "float64")]
    assert result["status"] == "fail"
    assert "eps-hat" in result["dialects"]


def test_resumed_at_a_huge_step_passes(tmp_path):
    # at t ≈ 10^7 the bias corrections are ≈ 1: where ε goes no longer shows
    result = _run(tmp_path, "--case", "resumed/plain", "--dtype", "float64")
    assert result[("resumed/plain", "float64")]["status"] == "pass"


def test_float32_passes_plain_cases(tmp_path):
    results = _run(tmp_path, "--case", "t1/plain", "--case", "short/plain", "--dtype", "float32")
    assert {k: r["status"] for k, r in results.items()} == {
        ("t1/plain", "float32"): "pass", ("short/plain", "float32"): "pass"}


@pytest.mark.parametrize("case, reason", [("t1/wd", "alpha"), ("t1/max", "maximize"),
                                          ("t1/ams", "amsgrad"), ("groups/plain", "alpha")])
def test_what_the_optimizer_lacks_is_unsupported(tmp_path, case, reason):
    result = _run(tmp_path, "--case", case, "--dtype", "float64")[(case, "float64")]
    assert result["status"] == "unsupported" and reason in result["message"]


def test_the_optimizer_itself_accepts_invalid_values():
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer

    # a finding: no check at all in the optimizer; MLP's fit() is where values are checked
    AdamOptimizer([np.zeros(2)], learning_rate_init=-1.0, beta_1=1.5, beta_2=-0.5,
                  epsilon=-1e-8)


@pytest.mark.parametrize("override", [{"lr": -1e-3}, {"lr": "0.01"}, {"eps": -1e-8},
                                      {"betas": (-0.1, 0.999)}, {"betas": (1.0, 0.999)},
                                      {"betas": (0.9, 1.0)}, {"betas": (0.9, -0.5)}])
def test_construct_raises_mlps_value_error(override):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError) as caught:
        load_backend("sklearn").construct(F64, **{**DEFAULTS, **override})
    assert isinstance(caught.value, ValueError)  # InvalidParameterError(ValueError, TypeError)


def test_construct_refuses_weight_decay():
    with pytest.raises(UnsupportedFeature, match="alpha"):
        load_backend("sklearn").construct(F64, **{**DEFAULTS, "weight_decay": -0.01})
