"""The generic torch-optimizer backend, judged with no adapter code of its own.

Two ``torch.optim.Optimizer`` classes written here: ``PlainAdam``, the documented algorithm
written plainly in torch, and ``EpsHatAdam``, the same with ε outside the bias correction.
They are judged through ``torch-optimizer:test_generic_backends:Class`` as a user's would
be: the correct one conforms, the wrong one fails and the report names ``eps-hat``. Also:
what the driver reads from a signature, options, and what it refuses and why.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from adamconf.adapters.base import (  # noqa: E402
    CaseSetup,
    GroupSetup,
    Hyperparameters,
    ResumeState,
    UnsupportedFeature,
    Variant,
)
from adamconf.conformance.cli import main  # noqa: E402
from adamconf.conformance.harness.registry import UnknownBackend, load_backend  # noqa: E402

pytestmark = pytest.mark.framework

MODULE = __name__.rpartition(".")[2]  # as pytest imports this file: from the tests folder


class PlainAdam(torch.optim.Optimizer):
    """The documented Adam: g (+λθ, negated for maximize), m, v, m̂, v̂, v̂max of v̂."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False, eps_hat=False):
        if isinstance(lr, bool) or not isinstance(lr, (int, float, torch.Tensor)):
            raise ValueError(f"lr must be an int, a float or a tensor, not {lr!r}")
        if not 0.0 <= lr:
            raise ValueError(f"invalid lr {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"invalid eps {eps}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"invalid betas {betas}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"invalid weight_decay {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))
        self.eps_hat = eps_hat

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    if group["amsgrad"]:  # the documented v̂max, so not under torch's name
                        state["max_exp_avg_sq_hat"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                g = -p.grad if group["maximize"] else p.grad
                if group["weight_decay"] != 0:
                    g = g + group["weight_decay"] * p
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(g, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                bc1, bc2 = 1 - beta1 ** t, 1 - beta2 ** t
                if self.eps_hat:  # the wrong one: θ − γ·√bc2/bc1 · m/(√v + ε)
                    p.sub_(group["lr"] * math.sqrt(bc2) / bc1 * m / (v.sqrt() + group["eps"]))
                    continue
                v_hat = v / bc2
                if group["amsgrad"]:
                    vmax = state["max_exp_avg_sq_hat"]
                    torch.maximum(vmax, v_hat, out=vmax)
                    v_hat = vmax
                p.sub_(group["lr"] * (m / bc1) / (v_hat.sqrt() + group["eps"]))


class EpsHatAdam(PlainAdam):
    """ε outside the bias correction (the eps-hat dialect)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr, betas, eps, weight_decay, eps_hat=True)


class SplitBetasAdam(torch.optim.Optimizer):
    """Keeps β1, β2 as group keys beta1, beta2 (not torch's betas), as optimi does."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, dict(lr=lr, beta1=betas[0], beta2=betas[1], eps=eps))

    def step(self):
        pass


class NoBetas(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3):
        super().__init__(params, dict(lr=lr))


def _spec(name: str) -> str:
    return f"torch-optimizer:{MODULE}:{name}"


def _run(capsys, tmp_path, name: str, *patterns: str) -> tuple[int, dict]:
    out = tmp_path / f"{name}.json"
    argv = ["run", "--backend", _spec(name), "--quiet", "--json", str(out)]
    for pattern in patterns:
        argv += ["-k", pattern]
    code = main(argv)
    capsys.readouterr()
    return code, json.loads(out.read_text())["runs"][0]


def test_a_correct_adam_conforms_with_no_adapter_code(capsys, tmp_path):
    code, run = _run(capsys, tmp_path, "PlainAdam", "t1/", "resumed/plain")
    assert code == 0, run["counts"]
    assert run["counts"]["fail"] == 0 and run["counts"]["error"] == 0
    assert run["counts"]["pass"] >= 8 * 3  # every t1 case in float64, float32, bfloat16 at least
    assert all(v["ok"] for v in run["validation"])


def test_eps_outside_the_bias_correction_fails_and_is_named(capsys, tmp_path):
    code, run = _run(capsys, tmp_path, "EpsHatAdam", "t1/")
    assert code == 1
    assert run["counts"]["fail"] > 0
    float32 = [v for v in run["variants"] if v["variant"].endswith("/float32")]
    assert float32 and "eps-hat" in float32[0]["dialects"]
    # its signature has no amsgrad and no maximize: those cases are unsupported, saying why
    reasons = {r["message"] for r in run["results"] if r["status"] == "unsupported"}
    assert any("no 'maximize' keyword" in r for r in reasons), reasons


def test_the_signature_says_what_is_supported():
    backend = load_backend(_spec("EpsHatAdam"))
    info = backend.probe()
    assert info.installed and info.name == _spec("EpsHatAdam")
    assert {v.dtype for v in info.variants} == {"float64", "float32", "float16", "bfloat16"}
    refused = {u.what: u.reason for u in info.unsupported}
    assert "no 'amsgrad' keyword" in refused["amsgrad"]
    assert "no 'maximize' keyword" in refused["maximize"]
    # its state has no max_exp_avg_sq and an int step: torch's names otherwise, so it resumes
    assert "resume" not in refused
    variant = info.variants[0]
    problem = _problem(amsgrad=True)
    with pytest.raises(UnsupportedFeature, match="amsgrad"):
        backend.open(problem, variant)


def test_a_class_without_betas_cannot_be_judged():
    info = load_backend(_spec("NoBetas")).probe()
    assert info.installed and not info.variants
    assert any("no 'betas' keyword" in u.reason for u in info.unsupported)


def _problem(amsgrad=False, lrs=None, groups=1) -> CaseSetup:
    configs = [Hyperparameters(0.01, (0.9, 0.999), 1e-8, 0.0, amsgrad),
               Hyperparameters(0.01, (0.5, 0.75), 1e-8, 0.0, amsgrad)][:groups]
    return CaseSetup(groups=tuple(GroupSetup(c, (np.array([1.0, -0.5]),), lrs) for c in configs),
                     grads=tuple(np.array([[0.5, 0.25], [0.25, 0.5]]) for _ in configs))


def test_state_follows_torch_names_where_it_does():
    backend = load_backend(_spec("PlainAdam"))
    variant = Variant(backend.name, "PlainAdam", "cpu", "float64")
    problem = _problem(amsgrad=True, lrs=np.array([0.01, 0.02]))
    session = backend.open(problem, variant)
    assert session.state() is None  # nothing before the first step
    session.step([np.array([0.5, 0.25])], [0.01])
    state = session.state()
    assert state.step == 1
    np.testing.assert_allclose(state.m[0], [0.05, 0.025])
    np.testing.assert_allclose(state.v[0], [0.00025, 0.0000625])
    assert state.vmax is None  # its max is not under torch's name: reported absent
    resumed = CaseSetup(problem.groups, problem.grads,
                        ResumeState(7, (np.zeros(2),), (np.zeros(2),), (np.zeros(2),)))
    with pytest.raises(UnsupportedFeature, match="max_exp_avg_sq_hat"):
        backend.open(resumed, variant)  # a key the driver cannot fill from m, v, v̂max


def test_options_are_constructor_keywords_parsed_as_literals():
    backend = load_backend(_spec("PlainAdam"), {"eps_hat": "True"})
    assert backend.options == {"eps_hat": True}
    assert load_backend("torch-optimizer:torch.optim:Adam",
                        {"foreach": "False", "name": "x y"}).options == {"foreach": False,
                                                                         "name": "x y"}
    with pytest.raises(UnknownBackend, match="hyperparameter"):
        load_backend(_spec("PlainAdam"), {"lr": "0.1"})
    with pytest.raises(UnknownBackend, match="takes no options"):
        load_backend("numpy", {"x": "1"})


@pytest.mark.parametrize(("spec", "message"), [
    ("torch-optimizer:no_such_package.optim:Adam", "cannot find package 'no_such_package'"),
    ("torch-optimizer:torch.optim", "must look like 'torch-optimizer:package.module:Class'"),
])
def test_a_bad_spec_is_one_clear_message(spec, message):
    with pytest.raises(UnknownBackend, match=message):
        load_backend(spec)


def test_a_missing_class_is_not_installed_with_the_reason():
    info = load_backend("torch-optimizer:torch.optim:NoSuchAdam").probe()
    assert not info.installed and "has no attribute 'NoSuchAdam'" in info.description


def test_groups_that_differ_where_the_library_keeps_no_group_value_are_unsupported():
    backend = load_backend(_spec("SplitBetasAdam"))
    variant = next(v for v in backend.probe().variants if v.dtype == "float32")
    backend.open(_problem(groups=1), variant).step([np.array([0.5, 0.25])])
    with pytest.raises(UnsupportedFeature, match="'betas', which .* does not keep per param"):
        backend.open(_problem(groups=2), variant)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_adamw_with_amsgrad_is_named_raw_max_with_decoupled_decay(dtype):
    """torch.optim.AdamW, never seen by the catalogue as a pair: the model names both
    switches, and nothing else (no ε-hat: its plain cases pass the documented ε)."""
    from adamconf import check
    from adamconf.conformance.judge.identify import variant_dialects

    result = check("torch-optimizer:torch.optim:AdamW", dtypes=[dtype], validate=False,
                   cases=["t1/", "short/", "decreasing/"])
    results = result.runs[0].results
    assert variant_dialects(results) == ["ams-rawmax+wd-decoupled"]
    assert not any(r.contradicted for r in results if r.status == "fail")
    assert any(r.status == "pass" for r in results)  # its plain cases conform
