"""The generic optax-transform backend, judged with no adapter code of its own.

Two optax-style factories written here, ``factory(learning_rate, b1, b2, eps)``:
``correct_adam`` (``optax.chain(scale_by_adam, scale_by_learning_rate)``, the documented
update) and ``eps_hat_adam`` (a GradientTransformation with ε outside the bias correction).
They are judged through ``optax-transform:test_optax_transform_backend:factory``.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np
import pytest

jax = pytest.importorskip("jax")
optax = pytest.importorskip("optax")

import jax.numpy as jnp  # noqa: E402

from adamconf.adapters.base import (  # noqa: E402
    CaseSetup,
    GroupSetup,
    Hyperparameters,
    ResumeState,
    UnsupportedFeature,
    Variant,
)
from adamconf.conformance.cli import main  # noqa: E402
from adamconf.conformance.harness.registry import load_backend  # noqa: E402

pytestmark = pytest.mark.framework

MODULE = __name__.rpartition(".")[2]


def correct_adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8):
    return optax.chain(optax.scale_by_adam(b1=b1, b2=b2, eps=eps),
                       optax.scale_by_learning_rate(learning_rate))


class EpsHatState(NamedTuple):
    count: jnp.ndarray
    mu: optax.Updates
    nu: optax.Updates


def eps_hat_adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8):
    """−γ·√(1−β2^t)/(1−β1^t) · m/(√v + ε): the eps-hat dialect, state under optax's names."""

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return EpsHatState(jnp.zeros([], jnp.int32), zeros, zeros)

    def update(grads, state, params=None):
        count = state.count + 1
        mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, state.mu, grads)
        nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, state.nu, grads)
        t = count.astype(jnp.float64)
        scale = learning_rate * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        updates = jax.tree.map(lambda m, v: (-scale * m / (jnp.sqrt(v) + eps)).astype(m.dtype),
                               mu, nu)
        return updates, EpsHatState(count, mu, nu)

    return optax.GradientTransformation(init, update)


def no_eps(learning_rate, b1=0.9, b2=0.999):
    return optax.adam(learning_rate, b1=b1, b2=b2)


def _spec(name: str) -> str:
    return f"optax-transform:{MODULE}:{name}"


def _run(capsys, tmp_path, name: str, *patterns: str) -> tuple[int, dict]:
    out = tmp_path / f"{name}.json"
    argv = ["run", "--backend", _spec(name), "--quiet", "--json", str(out), "--no-validate"]
    for pattern in patterns:
        argv += ["-k", pattern]
    code = main(argv)
    capsys.readouterr()
    return code, json.loads(out.read_text())["runs"][0]


def test_a_correct_factory_conforms(capsys, tmp_path):
    # --no-validate: optax validates no hyperparameter (a finding of the jax backend's tests)
    code, run = _run(capsys, tmp_path, "correct_adam", "t1/", "resumed/plain", "schedule/plain")
    assert code == 0, run["counts"]
    assert run["counts"]["fail"] == 0 and run["counts"]["error"] == 0
    assert run["counts"]["pass"] >= 4 * 3
    reasons = {r["message"] for r in run["results"] if r["status"] == "unsupported"}
    assert any("no 'amsgrad' keyword" in r for r in reasons), reasons


def test_eps_outside_the_bias_correction_fails_and_is_named(capsys, tmp_path):
    code, run = _run(capsys, tmp_path, "eps_hat_adam", "t1/")
    assert code == 1
    float32 = [v for v in run["variants"] if v["variant"].endswith("/float32")]
    assert float32 and "eps-hat" in float32[0]["dialects"]


def test_a_factory_without_eps_cannot_be_judged():
    info = load_backend(_spec("no_eps")).probe()
    assert info.installed and not info.variants
    assert any("takes no eps keyword" in u.reason for u in info.unsupported)


def test_state_is_read_by_optax_names_and_resumes():
    backend = load_backend(_spec("correct_adam"))
    variant = Variant(backend.name, "correct_adam", "cpu", "float64")
    config = Hyperparameters(0.01, (0.5, 0.75), 0.125, 0.0)
    problem = CaseSetup((GroupSetup(config, (np.array([1.0, -0.5]),)),),
                        (np.array([[0.5, 0.25]]),),
                        ResumeState(9, (np.array([0.25, 0.5]),), (np.array([0.25, 0.0625]),),
                                    (np.zeros(2),)))
    session = backend.open(problem, variant)
    session.step([np.array([0.5, 0.25])], [0.01])
    state = session.state()
    assert state.step == 10
    np.testing.assert_allclose(state.m[0], [0.375, 0.375])
    np.testing.assert_allclose(state.v[0], [0.25, 0.0625])
    assert state.vmax is None


def test_options_are_factory_keywords():
    backend = load_backend("optax-transform:optax:adam", {"nesterov": "True"})
    assert backend.options == {"nesterov": True}
    info = backend.probe()
    assert info.variants, info.unsupported
    variant = next(v for v in info.variants if v.dtype == "float32")
    problem = CaseSetup((GroupSetup(Hyperparameters(0.01, (0.9, 0.999), 1e-8, 0.0, False, True),
                                    (np.zeros(2),)),), (np.zeros((1, 2)),))
    with pytest.raises(UnsupportedFeature, match="maximize"):
        backend.open(problem, variant)


def ignores_amsgrad(learning_rate, b1=0.9, b2=0.999, eps=1e-8, amsgrad=False):
    """Names amsgrad and never uses it."""
    return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)


def test_a_factory_that_fixes_amsgrad_is_declared(capsys, tmp_path):
    """optax.amsgrad always keeps the max and has no keyword for it: declared, its amsgrad
    cases are judged (and conform) and the others are unsupported, saying why."""
    out = tmp_path / "amsgrad.json"
    code = main(["run", "--backend", "optax-transform:optax:amsgrad", "--feature",
                 "amsgrad=always", "--no-validate", "-k", "short/", "--dtype", "float64",
                 "--quiet", "-j", "1", "--json", str(out)])
    capsys.readouterr()
    run = json.loads(out.read_text())["runs"][0]
    assert code == 0, run["counts"]
    ams = [r for r in run["results"] if "option:amsgrad" in r["tags"]]
    assert ams and all(r["status"] in ("pass", "unsupported") for r in ams)
    assert any(r["status"] == "pass" for r in ams)
    plain = [r for r in run["results"] if "option:amsgrad" not in r["tags"]]
    assert plain and all("always has it" in r["message"] for r in plain)


def test_a_keyword_named_and_ignored_is_accepted_and_ignored():
    backend = load_backend(_spec("ignores_amsgrad"))
    refused = {u.what: u.reason for u in backend.probe().unsupported}
    assert refused["amsgrad"].startswith("accepted and ignored"), refused
    variant = next(v for v in backend.probe().variants if v.dtype == "float32")
    problem = CaseSetup((GroupSetup(Hyperparameters(0.01, (0.9, 0.999), 1e-8, 0.0, True),
                                    (np.zeros(2),)),), (np.zeros((1, 2)),))
    with pytest.raises(UnsupportedFeature, match="accepted and ignored"):
        backend.open(problem, variant)
