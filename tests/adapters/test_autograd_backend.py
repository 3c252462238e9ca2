"""The autograd backend against the real autograd (skipped when it is not installed).

What was found: ``autograd.misc.optimizers.adam`` computes the documented update in
float64 and passes every case it can express; it has one step_size per run (no schedule),
no weight decay, amsgrad, maximize or resume, and checks none of its arguments.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("autograd")

from adamconf.adapters.base import CaseSetup, GroupSetup, Hyperparameters, Variant  # noqa: E402
from adamconf.conformance.cli import main  # noqa: E402
from adamconf.conformance.harness.registry import load_backend  # noqa: E402
from adamconf.reference.config import DEFAULTS  # noqa: E402

pytestmark = pytest.mark.framework

VARIANT = Variant("autograd", "misc.optimizers.adam", "cpu", "float64")


def _run(tmp_path, *args: str) -> dict[str, dict]:
    """case → result, from the CLI's JSON report."""
    out = tmp_path / "run.json"
    main(["run", "--backend", "autograd", "--quiet", "--no-validate", "--json", str(out), *args])
    return {r["case"]: r for r in json.loads(out.read_text())["runs"][0]["results"]}


def test_probe():
    info = load_backend("autograd").probe()
    assert info.installed and [v.id for v in info.variants] == [
        "misc.optimizers.adam/cpu/float64"]
    assert {"lr schedules", "resume", "weight_decay"} <= {u.what for u in info.unsupported}


def test_documented_update_passes(tmp_path):
    cases = ["t1/plain", "short/plain", "long/plain", "empty-0d/plain", "eps0/plain"]
    results = _run(tmp_path, *[a for c in cases for a in ("--case", c)])
    assert {c: r["status"] for c, r in results.items()} == dict.fromkeys(cases, "pass")


@pytest.mark.parametrize("case, reason", [("schedule/plain", "one step_size"),
                                          ("resumed/plain", "no argument to resume"),
                                          ("t1/wd", "weight decay"), ("t1/ams", "amsgrad"),
                                          ("t1/max", "maximize")])
def test_what_adam_cannot_express_is_unsupported(tmp_path, case, reason):
    result = _run(tmp_path, "--case", case)[case]
    assert result["status"] == "unsupported" and reason in result["message"]


def test_steps_are_driven_one_at_a_time():
    """params() after each step is the loop's x after that iteration, not the final one."""
    setup = CaseSetup(groups=(GroupSetup(Hyperparameters(0.5, (0.0, 0.0), 0.0, 0.0),
                                         (np.array([1.0, -1.0]),)),),
                      grads=(np.array([[2.0, -4.0], [1.0, 1.0], [-1.0, 3.0]]),))
    session = load_backend("autograd").open(setup, VARIANT)
    seen = []
    for k in range(3):
        session.step([setup.grads[0][k]], [0.5])
        seen.append(session.params()[0])
    # β1 = β2 = ε = 0: every step moves each element by lr·sign(g)
    np.testing.assert_array_equal(seen, [[0.5, -0.5], [0.0, -1.0], [0.5, -1.5]])
    assert session.state() is None


@pytest.mark.parametrize("override", [{"lr": -1e-3}, {"eps": -1e-8}, {"betas": (1.0, 0.999)},
                                      {"betas": (0.9, -0.5)}])
def test_construct_accepts_invalid_values(override):
    # a finding: adam checks none of its arguments
    load_backend("autograd").construct(VARIANT, **{**DEFAULTS, **override})


def test_construct_with_a_str_lr_fails_in_numpy_not_with_value_error():
    with pytest.raises(TypeError):
        load_backend("autograd").construct(VARIANT, **{**DEFAULTS, "lr": "0.01"})
