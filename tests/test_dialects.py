"""The dialect catalogue: switches checked when made; precision dialects round as said."""

from __future__ import annotations

import pytest

from adamconf.reference.config import GroupConfig
from adamconf.reference.dialects import DIALECTS, PRECISION_DIALECTS, Dialect
from adamconf.reference.problem import Group, Problem


@pytest.mark.parametrize("switch", ["eps_mode", "amsgrad_mode", "weight_decay_mode"])
def test_a_misspelt_switch_is_refused(switch):
    with pytest.raises(ValueError, match=switch):
        Dialect("typo", "", "", **{switch: "hatt"})


def test_every_dialect_says_what_it_is_and_who_implements_it():
    for d in [*DIALECTS.values(), *PRECISION_DIALECTS.values()]:
        assert d.summary and d.known_in


def _problem(**config) -> Problem:
    import numpy as np

    return Problem((Group(GroupConfig(**config), (np.ones(2),)),), (np.ones((1, 2)),))


def test_eps_lost_rounds_eps_to_the_dtype():
    eps_lost = PRECISION_DIALECTS["eps-lost"]
    rounded = eps_lost.apply(_problem(eps=1e-8), "float16")
    assert rounded.groups[0].config.eps == 0.0  # below half float16's smallest subnormal
    assert eps_lost.apply(_problem(eps=1e-8), "float64") is None  # nothing to round
    assert eps_lost.apply(_problem(eps=2.0 ** -10), "float16") is None  # exact there


def test_rounding_that_leaves_the_documented_range_is_not_applicable():
    hyper = PRECISION_DIALECTS["hyper-in-dtype"]
    assert hyper.apply(_problem(betas=(0.9, 0.999)), "bfloat16") is None  # β2 → 1.0
    f16 = hyper.apply(_problem(betas=(0.9, 0.999)), "float16").groups[0].config
    assert f16.beta2 == 0.9990234375 and f16.eps == 0.0


def test_float32_scalars_only_in_a_wider_run():
    held = PRECISION_DIALECTS["hyper-float32"]
    assert held.apply(_problem(), "float64").groups[0].config.beta2 == float(
        __import__("numpy").float32(0.999))
    assert held.apply(_problem(), "float32") is None
