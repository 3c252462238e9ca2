"""Generic drivers never guess: what a torch-style optimizer's state holds, which keywords it
takes and what they do, and which features it fixes are found by probes or declared — and a
backend that refuses everything is a verdict, not a usage error.

Small ``torch.optim.Optimizer`` classes written here, each an Adam with one of the habits the
issue found in real libraries, are judged through ``torch-optimizer:test_generic_probes:Class``
as a user's would be:

- ``HatStateAdam`` keeps m̂ and v̂ under ``exp_avg`` and ``exp_avg_sq`` (as QHAdam and optimi
  do): its state is not compared, θ is judged, and every report says so;
- ``StrictKeywordsAdam`` raises TypeError on a keyword it does not know (as heavyball does);
- ``SwallowsAmsgradAdam`` takes ``**kwargs`` and ignores ``amsgrad`` (as pytorch_optimizer's
  QHAdam does): accepted and ignored, its amsgrad cases unsupported, never judged as amsgrad;
- ``AlwaysAmsgradAdam`` always keeps the documented max and has no keyword for it (as
  ``optax.amsgrad``): declared ``--feature amsgrad=always``;
- ``RefusesEverythingAdam`` raises at its first step whatever the dtype.

Each is judged with no false failure; what a probe cannot tell is said, not assumed.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

torch = pytest.importorskip("torch")

from adamconf.conformance.cli import main  # noqa: E402
from adamconf.conformance.harness.registry import load_backend  # noqa: E402

pytestmark = pytest.mark.framework

MODULE = __name__.rpartition(".")[2]  # as pytest imports this file: from the tests folder
CASES = ("t1/", "short/")


def _validated(lr, betas, eps, weight_decay) -> None:
    if isinstance(lr, bool) or not isinstance(lr, (int, float, torch.Tensor)):
        raise ValueError(f"lr must be an int, a float or a tensor, not {lr!r}")
    if not 0.0 <= lr or not 0.0 <= eps or not 0.0 <= weight_decay:
        raise ValueError("lr, eps and weight_decay must be >= 0")
    if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
        raise ValueError(f"invalid betas {betas}")


class _Adam(torch.optim.Optimizer):
    """The documented Adam, written plainly; each subclass changes one habit."""

    keep_hat = False  # exp_avg, exp_avg_sq hold m̂ and v̂ (a debiased average), not m and v
    always_amsgrad = False  # the documented max of v̂, whatever the group says
    has = ("amsgrad", "maximize")  # the flags it keeps per group (the others, it never reads)

    def _setup(self, params, lr, betas, eps, weight_decay, amsgrad, maximize) -> None:
        _validated(lr, betas, eps, weight_decay)
        flags = {k: v for k, v in (("amsgrad", amsgrad), ("maximize", maximize)) if k in self.has}
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      **flags))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            amsgrad = self.always_amsgrad or ("amsgrad" in self.has and group["amsgrad"])
            maximize = "maximize" in self.has and group["maximize"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state.update(step=0, exp_avg=torch.zeros_like(p),
                                 exp_avg_sq=torch.zeros_like(p))
                    if amsgrad:  # the documented max of v̂ (torch keeps that of raw v)
                        state["max_exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                g = -p.grad if maximize else p.grad
                if group["weight_decay"] != 0:
                    g = g + group["weight_decay"] * p
                m, v = state["exp_avg"], state["exp_avg_sq"]
                if self.keep_hat:  # m̂_t = m̂_{t-1} + (g − m̂_{t-1})/(1 + β1 + … + β1^(t-1))
                    m.lerp_(g, (1 - beta1) / (1 - beta1 ** t))
                    v.lerp_(g * g, (1 - beta2) / (1 - beta2 ** t))
                    m_hat, v_hat = m, v
                else:
                    m.mul_(beta1).add_(g, alpha=1 - beta1)
                    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
                if amsgrad:
                    vmax = state["max_exp_avg_sq"]
                    torch.maximum(vmax, v_hat, out=vmax)
                    v_hat = vmax
                p.sub_(group["lr"] * m_hat / (v_hat.sqrt() + group["eps"]))


class HatStateAdam(_Adam):
    keep_hat = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False):
        self._setup(params, lr, betas, eps, weight_decay, amsgrad, maximize)


class StrictKeywordsAdam(_Adam):
    """Takes ``**kwargs`` for options of its own, and rejects any it does not know."""

    has = ()

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 **kwargs):
        if kwargs:
            raise TypeError(f"unknown keyword arguments: {sorted(kwargs)}")
        self._setup(params, lr, betas, eps, weight_decay, False, False)


class SwallowsAmsgradAdam(_Adam):
    """Names maximize; anything else in ``**kwargs`` (amsgrad) is silently dropped."""

    has = ("maximize",)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 maximize=False, **kwargs):
        self._setup(params, lr, betas, eps, weight_decay, False, maximize)


class AlwaysAmsgradAdam(_Adam):
    """The documented amsgrad, fixed on: no keyword for it."""

    always_amsgrad = True
    has = ("maximize",)

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 maximize=False):
        self._setup(params, lr, betas, eps, weight_decay, True, maximize)


class RefusesEverythingAdam(_Adam):
    has = ()

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self._setup(params, lr, betas, eps, weight_decay, False, False)

    def step(self):
        raise RuntimeError("no kernel for this dtype on this machine")


class NamedOptionAdam(_Adam):
    """An option of each kind: a flag and a string."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, maximize=False, fast: bool = False, label: str = "x"):
        self._setup(params, lr, betas, eps, weight_decay, amsgrad, maximize)


class IntKeyAdam(torch.optim.Adam):
    """torch's Adam, keeping one more counter under an integer key (as heavyball does)."""

    def step(self, closure=None):
        super().step(closure)
        for p in self.state:
            self.state[p][0] = 1


def _spec(name: str) -> str:
    return f"torch-optimizer:{MODULE}:{name}"


def _run(capsys, tmp_path, name: str, *extra: str, cases=CASES) -> tuple[int, dict, str]:
    """The CLI on a class: (exit code, the JSON run, what it printed)."""
    out = tmp_path / f"{name}.json"
    argv = ["run", "--backend", _spec(name), "--quiet", "-j", "1", "--json", str(out), *extra]
    for pattern in cases:
        argv += ["-k", pattern]
    code = main(argv)
    printed = capsys.readouterr()
    return code, json.loads(out.read_text())["runs"][0], printed.out + printed.err


def _reasons(run: dict) -> set[str]:
    return {r["message"] for r in run["results"] if r["status"] == "unsupported"}


def test_state_that_holds_m_hat_is_not_compared_and_every_report_says_so(capsys, tmp_path):
    junit, page = tmp_path / "hat.xml", tmp_path / "hat.html"
    code, run, printed = _run(capsys, tmp_path, "HatStateAdam", "--junit", str(junit),
                              "--html", str(page))
    assert code == 0, run["counts"]  # no false failure: θ is the documented one
    assert run["counts"]["fail"] == 0 and run["counts"]["pass"] >= 3 * 16
    note = next(n for n in run["info"]["notes"] if n.startswith("state not compared"))
    assert "exp_avg holds m̂" in note and "exp_avg_sq holds v̂" in note, note
    # its max is the documented one (of v̂): a probe found that, so the max is still judged
    assert "the max (of v̂) are judged" in note, note
    assert note in printed  # the terminal report
    properties = {p.get("value") for p in ET.parse(junit).iter("property")
                  if p.get("name") == "note"}
    assert note in properties  # JUnit
    assert "exp_avg holds m̂" in page.read_text(encoding="utf-8")  # HTML


def test_state_compare_and_ignore_are_the_users_to_choose(capsys, tmp_path):
    # compare: the names are taken at their word, and m̂ is judged as m — the false failure
    # that auto avoids
    code, run, _ = _run(capsys, tmp_path, "HatStateAdam", "--state", "compare",
                        cases=("t1/plain",))
    assert code == 1 and run["counts"]["fail"] > 0
    first = next(r for r in run["results"] if r["status"] == "fail")
    assert first["verdict"]["first_failure"]["quantity"] == "m"
    assert "--state compare" in first["repro"]
    code, run, _ = _run(capsys, tmp_path, "HatStateAdam", "--state", "ignore",
                        cases=("t1/plain",))
    assert code == 0 and any("state='ignore'" in n for n in run["info"]["notes"])


def test_documented_state_is_compared_with_no_note(capsys, tmp_path):
    backend = load_backend(_spec("AlwaysAmsgradAdam"), features={"amsgrad": "always"})
    info = backend.probe()
    assert not any(n.startswith("state not") for n in info.notes), info.notes
    plan = backend.state_plan(info.variants[0])
    assert plan.m and plan.v and plan.vmax and plan.vmax_kind == "hat"
    torch_adam = load_backend("torch")
    torch_info = torch_adam.probe()
    assert not any(n.startswith("state not") for n in torch_info.notes), torch_info.notes
    amsgrad_plans = {torch_adam.state_plan(v).vmax_kind for v in torch_info.variants}
    assert amsgrad_plans == {"raw"}  # torch's max_exp_avg_sq: the max of raw v, found so


def test_a_keyword_the_constructor_rejects_is_unsupported_with_its_error(capsys, tmp_path):
    code, run, _ = _run(capsys, tmp_path, "StrictKeywordsAdam")
    assert code == 0, run["counts"]  # before: every variant refused, exit 2
    assert run["counts"]["pass"] > 0 and run["counts"]["fail"] == 0
    reasons = _reasons(run)
    assert any("rejects amsgrad=True: TypeError: unknown keyword arguments: ['amsgrad']" in r
               for r in reasons), reasons
    assert any("rejects maximize=True: TypeError" in r for r in reasons), reasons


def test_a_keyword_accepted_and_ignored_is_never_judged_as_the_feature(capsys, tmp_path):
    code, run, _ = _run(capsys, tmp_path, "SwallowsAmsgradAdam")
    assert code == 0, run["counts"]  # no false failure on its amsgrad cases
    ams = [r for r in run["results"] if "option:amsgrad" in r["tags"]]
    assert ams and all(r["status"] == "unsupported" for r in ams)
    assert all("accepted and ignored" in r["message"] for r in ams), ams[0]["message"]
    # maximize, which it names and does, is judged (float16 leaves some inconclusive)
    maximize = [r["status"] for r in run["results"]
                if "option:maximize" in r["tags"] and "option:amsgrad" not in r["tags"]]
    assert "pass" in maximize and set(maximize) <= {"pass", "inconclusive"}, maximize


def test_a_keyword_declared_as_the_feature_is_judged_as_it_even_when_ignored(capsys,
                                                                           tmp_path):
    # what bitsandbytes' adapter declares for its documented amsgrad: judged, and failing
    code, run, _ = _run(capsys, tmp_path, "SwallowsAmsgradAdam", "--feature",
                        "amsgrad=keyword", "--dtype", "float32", cases=("t1/ams", "short/ams"))
    assert code == 1
    failing = [r for r in run["results"] if r["status"] == "fail"]
    assert failing and all("ams-ignored" in r["dialects"] for r in failing)
    assert any("accepts amsgrad=True and ignores it" in n for n in run["info"]["notes"])


def test_a_factory_that_fixes_amsgrad_is_declared(capsys, tmp_path):
    # undeclared, its plain cases run with the max kept and fail: amsgrad is not a keyword
    code, run, _ = _run(capsys, tmp_path, "AlwaysAmsgradAdam", "--no-validate",
                        cases=("short/plain", "short/ams"))
    assert code == 1 and run["counts"]["fail"] > 0
    code, run, printed = _run(capsys, tmp_path, "AlwaysAmsgradAdam", "--feature",
                              "amsgrad=always")
    assert code == 0, run["counts"]
    ams = [r for r in run["results"] if "option:amsgrad" in r["tags"]]
    plain = [r for r in run["results"] if "option:amsgrad" not in r["tags"]]
    statuses = [r["status"] for r in ams]  # float16 leaves some inconclusive
    assert "pass" in statuses and set(statuses) <= {"pass", "inconclusive"}, statuses
    assert plain and all(r["status"] == "unsupported" and "always has it" in r["message"]
                         for r in plain)
    assert "amsgrad always on" in printed and "--feature amsgrad=always" in printed


def test_declared_features_come_from_adamconf_toml(tmp_path, monkeypatch):
    from adamconf import check

    (tmp_path / "adamconf.toml").write_text(
        f'[features]\n"{_spec("AlwaysAmsgradAdam")}" = {{ amsgrad = "always" }}\n')
    monkeypatch.chdir(tmp_path)
    result = check(_spec("AlwaysAmsgradAdam"), cases=["short/ams", "short/plain"],
                   dtypes=["float64"], validate=False)
    assert result.conforms, result
    result = check(_spec("AlwaysAmsgradAdam"), cases=["short/ams"], dtypes=["float64"],
                   validate=False, features={"amsgrad": "never"})  # the call over the file
    assert result.conformance.value == "no verdict"


@pytest.mark.parametrize(("extra", "message"), [
    (("--feature", "amsgrad=sometimes"), "say amsgrad=always or amsgrad=never or "
                                         "amsgrad=keyword"),
    (("--feature", "nesterov=always"), "unknown feature 'nesterov'"),
    (("--feature", "amsgrad"), "write it as name=setting"),
    (("--option", "fsat=True"), "has no parameter 'fsat'; its parameters: params, lr, betas, "
                                "eps, weight_decay, amsgrad, maximize, fast, label"),
    (("--option", "fast=maybe"), "'maybe' is not a Python literal and .*'s parameter is fast"),
    (("--option", "amsgrad=True"), "is a hyperparameter.* --feature amsgrad=always"),
])
def test_bad_declarations_and_options_are_usage_errors(capsys, extra, message):
    import re

    code = main(["run", "--backend", _spec("NamedOptionAdam"), "-k", "t1/plain", "--quiet",
                 *extra])
    err = capsys.readouterr().err
    assert code == 2 and re.search(message, err), err


def test_an_option_is_a_string_only_where_the_parameter_takes_one():
    backend = load_backend(_spec("NamedOptionAdam"), {"label": "fast run", "fast": "True"})
    assert backend.probe().variants  # a bare word for a str parameter is that string
    assert backend.options == {"label": "fast run", "fast": True}


def test_a_class_reached_through_a_shim_shows_its_package_version():
    pytest.importorskip("optimi")
    info = load_backend(_spec("OptimiThroughShim")).probe()
    assert info.versions.get("torch-optimi"), info.versions


def test_integer_state_keys_are_named_by_the_resume_probe():
    info = load_backend(_spec("IntKeyAdam")).probe()
    refused = {u.what: u.reason for u in info.unsupported}
    assert "its state holds 0, exp_avg, exp_avg_sq, step per parameter" in refused["resume"]


def test_a_backend_that_refuses_everything_is_a_verdict_with_every_reason(capsys, tmp_path):
    junit, page = tmp_path / "refused.xml", tmp_path / "refused.html"
    code, run, printed = _run(capsys, tmp_path, "RefusesEverythingAdam", "--dtype", "float32",
                              "--junit", str(junit), "--html", str(page), cases=("t1/",))
    assert code == 3, printed  # before: exit 2, "unknown dtype 'float32' … valid: (none)"
    assert run["conformance"] == "no verdict" and run["counts"]["unsupported"] == 8
    assert {r["variant"]["dtype"] for r in run["info"]["refused"]} == {
        "float64", "float32", "float16", "bfloat16"}
    reason = "RuntimeError: no kernel for this dtype on this machine"
    assert all(reason in r["reason"] for r in run["info"]["refused"])
    assert all(reason in r["message"] for r in run["results"])  # each case names it
    assert reason in printed  # and so does the message on exit
    assert junit.is_file() and reason in junit.read_text()
    assert page.is_file() and "NO VERDICT" in page.read_text(encoding="utf-8")


def test_a_misspelt_dtype_is_still_a_usage_error(capsys):
    code = main(["run", "--backend", _spec("RefusesEverythingAdam"), "--dtype", "flaot32",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown dtype 'flaot32'" in err and "valid: bfloat16, float16" in err


try:  # a class reached through a shim: this module, re-exporting optimi's
    from optimi import Adam as OptimiThroughShim  # noqa: F401
except ImportError:
    pass
