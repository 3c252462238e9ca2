"""The model of dialects: switches checked when made, names that compose and read back,
and the hyperparameters switch rounding as said."""

from __future__ import annotations

import numpy as np
import pytest

from adamconf.reference.config import GroupConfig
from adamconf.reference.dialects import (
    DIALECTS,
    LABELS,
    SPEC,
    SWITCHES,
    Dialect,
    get_dialect,
    rounded_problem,
)
from adamconf.reference.problem import Group, Problem


@pytest.mark.parametrize("switch", [s.field for s in SWITCHES])
def test_a_misspelt_switch_is_refused(switch):
    with pytest.raises(ValueError, match=switch):
        Dialect(**{switch: "hatt"})


def test_every_setting_says_what_it_is_and_who_implements_it():
    for switch in SWITCHES:
        assert switch.settings[0].label == ""  # the documented setting comes first
        for setting in switch.settings:
            assert setting.formula and setting.known_in
    for d in DIALECTS.values():
        assert d.summary and d.known_in


def test_names_are_the_labels_sorted_and_read_back_in_any_order():
    d = get_dialect("wd-decoupled+ams-rawmax")
    assert d.name == "ams-rawmax+wd-decoupled"
    assert d.amsgrad_mode == "max-raw" and d.weight_decay_mode == "decoupled"
    assert get_dialect(d.name) == d and d.size == 2
    assert get_dialect("spec") is SPEC and SPEC.name == "spec" and SPEC.size == 0
    # every pair of labels of different switches is a point of the model
    labels = sorted(LABELS)
    for a in labels:
        for b in labels:
            if LABELS[a][0] is not LABELS[b][0]:
                assert get_dialect(f"{a}+{b}").labels == tuple(sorted((a, b)))


def test_a_name_that_is_not_a_point_is_refused_with_the_labels():
    with pytest.raises(ValueError, match="unknown dialect label 'eps-hatt'.*eps-hat"):
        get_dialect("eps-hatt")
    with pytest.raises(ValueError, match="twice"):
        get_dialect("eps-hat+eps-floor")


def test_precision_switches_leave_the_semantic_part():
    d = get_dialect("ams-rawmax+state-bfloat16+hyper-float32")
    assert d.semantic == get_dialect("ams-rawmax")
    assert d.vmax_kind == "raw"


def test_effective_switches_follow_the_group_options():
    d = get_dialect("ams-ignored+wd-decoupled+eps-hat")
    assert d.effective_fields(False, False, 0.0) == {"eps_mode"}
    assert d.effective_fields(True, False, 0.01) == {"eps_mode", "amsgrad_mode",
                                                     "weight_decay_mode"}
    assert not get_dialect("maximize-after-wd").can_differ(True, False, 0.01)


def _problem(**config) -> Problem:
    return Problem((Group(GroupConfig(**config), (np.ones(2),)),), (np.ones((1, 2)),))


def test_eps_lost_rounds_eps_to_the_dtype():
    eps_lost = get_dialect("eps-lost")
    rounded = rounded_problem(_problem(eps=1e-8), eps_lost, "float16")
    assert rounded.groups[0].config.eps == 0.0  # below half float16's smallest subnormal
    assert rounded_problem(_problem(eps=1e-8), eps_lost, "float64") is None  # nothing to round
    assert rounded_problem(_problem(eps=2.0 ** -10), eps_lost, "float16") is None  # exact


def test_rounding_that_leaves_the_documented_range_is_held_so():
    """β2 = 0.999 is 1.0 in bfloat16: no longer Adam, but what such an implementation runs
    (Keras's step size is then 0), so the model can name it; a user may still not pass 1."""
    hyper = get_dialect("hyper-in-dtype")
    held = rounded_problem(_problem(betas=(0.9, 0.999)), hyper, "bfloat16").groups[0].config
    assert held.beta2 == 1.0 and held.beta1 == 0.8984375
    with pytest.raises(ValueError, match="beta"):
        GroupConfig(betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="rounded"):
        GroupConfig.held_rounded(lr=0.1, betas=(0.9, 1.5), eps=0.0, weight_decay=0.0,
                                 amsgrad=False, maximize=False)
    f16 = rounded_problem(_problem(betas=(0.9, 0.999)), hyper, "float16").groups[0].config
    assert f16.beta2 == 0.9990234375 and f16.eps == 0.0


def test_float32_scalars_only_in_a_wider_run():
    held = get_dialect("hyper-float32")
    assert rounded_problem(_problem(), held, "float64").groups[0].config.beta2 == float(
        np.float32(0.999))
    assert rounded_problem(_problem(), held, "float32") is None
    problem = _problem()
    assert rounded_problem(problem, SPEC, "float32") is problem
