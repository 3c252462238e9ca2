"""optax.adam and optax.amsgrad against the real JAX (no mocks; skipped when jax or optax
is not installed).

Each runs the small problems of ``framework_checks`` and must agree with the spec;
optax validates no hyperparameter, kept as ``xfail(strict=True)``.
"""

from __future__ import annotations

import pytest

from adamconf.adapters.base import UnsupportedFeature
from framework_checks import (
    open_case,
    HALF_DTYPES,
    HALF_PROBLEMS,
    INVALID,
    PROBLEMS,
    check_against_dialect,
    check_invalid,
    check_probe,
    invalid_cases,
    variant_or_skip,
)

pytestmark = pytest.mark.framework

ADAM, AMSGRAD = "optax.adam", "optax.amsgrad"


@pytest.fixture(scope="module")
def jax_backend():
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    from adamconf.adapters.jax_backend import JaxBackend

    backend = JaxBackend()
    return backend, backend.probe()


def test_jax_probe(jax_backend):
    backend, info = jax_backend
    check_probe(info, "jax", "optax")
    assert "cpu" in info.devices
    assert set(info.dtypes) == {"float64", "float32", "float16", "bfloat16"}
    assert {v.name for v in info.variants} == {ADAM, AMSGRAD}
    import jax

    assert jax.config.jax_enable_x64  # float64 needs it; the adapter turns it on


@pytest.mark.parametrize("problem_name", list(PROBLEMS))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", [ADAM, AMSGRAD])
def test_jax_matches_its_dialect(jax_backend, name, dtype, problem_name):
    backend, info = jax_backend
    variant = variant_or_skip(info, name, "cpu", dtype)
    problem = PROBLEMS[problem_name]
    configs = [g.config for g in problem.groups]
    amsgrad = any(c.amsgrad for c in configs)
    if any(c.maximize for c in configs) or amsgrad != (name == AMSGRAD):
        with pytest.raises(UnsupportedFeature):
            open_case(backend, problem, variant)
        return
    # transform.py: m̂/(√(v̂ + eps_root) + ε), eps_root = 0; amsgrad: nu_max = max(nu_max, v̂)
    check_against_dialect(backend, problem, variant, "spec")


@pytest.mark.parametrize("dtype", HALF_DTYPES)
@pytest.mark.parametrize("name", [ADAM, AMSGRAD])
def test_jax_half_precision_matches_its_dialect(jax_backend, name, dtype):
    backend, info = jax_backend
    variant = variant_or_skip(info, name, "cpu", dtype)
    problem = HALF_PROBLEMS["half-amsgrad" if name == AMSGRAD else "half"]
    check_against_dialect(backend, problem, variant, "spec")


OPTAX_VALIDATES_NOTHING = ("optax validates no hyperparameter: the optimizer builds and "
                           "initialises with this value")


@pytest.mark.parametrize("label", invalid_cases(dict.fromkeys(INVALID, OPTAX_VALIDATES_NOTHING)))
@pytest.mark.parametrize("name", [ADAM, AMSGRAD])
def test_jax_invalid_hyperparameters_raise_value_error(jax_backend, name, label):
    backend, info = jax_backend
    check_invalid(backend, variant_or_skip(info, name, "cpu", "float32"), label,
                  amsgrad=name == AMSGRAD)
