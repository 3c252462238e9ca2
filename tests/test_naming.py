"""Naming Adams the suite has never seen: each switch alone and pairs of switches, built
independently of the engine (``tests/dialect_impls.py``), named from their trajectories.

The names are what the implementations do, read off their code: in float16 every one of
them rounds its hyperparameters to float16 where they meet an array (ε = 1e-8 is 0 there),
so its name holds ``hyper-in-dtype``, or ``eps-lost`` where the cases cannot tell that β
and γ were rounded too (HYPER below: either).
"""

from __future__ import annotations

import pytest

from adamconf import check
from adamconf.conformance.judge.identify import dialect_label, variant_dialects
from adamconf.conformance.tools.deviant import DeviantAdam

NAMED = [
    # (dtype, deviations, the name): each switch alone ...
    ("float32", dict(eps="inside-sqrt"), "eps-inside-sqrt"),
    ("float32", dict(eps="floor"), "eps-floor"),
    ("float32", dict(ams="max-raw"), "ams-rawmax"),
    ("float32", dict(ams="ignored"), "ams-ignored"),
    ("float32", dict(ams="paper"), "ams-paper"),
    ("float32", dict(nan="drop"), "max-drops-nan"),
    ("float32", dict(wd="decoupled"), "wd-decoupled"),
    ("float32", dict(wd="decoupled-nolr"), "wd-decoupled-nolr"),
    ("float32", dict(wd="maximize-after-wd"), "maximize-after-wd"),
    ("float32", dict(bias=False), "no-bias-correction"),
    ("float32", dict(step_offset=1), "step-off-by-one"),
    ("float32", dict(step_offset=-1), "step-off-by-one-low"),
    ("float32", dict(state="bfloat16"), "state-bfloat16"),
    ("float64", dict(hyper="lr"), "lr-float32"),
    ("float64", dict(hyper="all"), "hyper-float32"),
    ("float64", dict(state="float32"), "state-float32"),
    ("float64", dict(theta="float32"), "theta-via-float32"),
    ("float64", dict(compute="float32"), "compute-float32"),
    # ... and pairs, in three dtypes
    ("float32", dict(eps="hat"), "eps-hat"),
    ("float32", dict(ams="ignored", wd="decoupled"), "ams-ignored+wd-decoupled"),
    ("float32", dict(ams="max-raw", wd="decoupled"), "ams-rawmax+wd-decoupled"),
    ("float32", dict(wd="after"), "wd-after"),
    ("float32", dict(eps="floor", wd="decoupled-nolr"), "eps-floor+wd-decoupled-nolr"),
    ("float32", dict(wd="decoupled-lr0"), "wd-decoupled-lr0"),
    ("float32", dict(wd="decoupled-lr-ratio", ams="ignored"),
     "ams-ignored+wd-decoupled-lr-ratio"),
    ("float64", dict(eps="hat", step_offset=1), "eps-hat+step-off-by-one"),
    ("float64", dict(bias=False, wd="decoupled"), "no-bias-correction+wd-decoupled"),
    ("float64", dict(betapow="float32"), "betapow-float32"),
    ("float64", dict(eps="inside-sqrt", ams="max-raw", expose_state=False),
     "ams-rawmax+eps-inside-sqrt"),
    ("float16", dict(eps="inside-sqrt", ams="max-raw"), "ams-rawmax+eps-inside-sqrt+HYPER"),
    ("float16", dict(eps="hat", wd="decoupled"), "eps-hat+HYPER+wd-decoupled"),
]


@pytest.mark.parametrize("dtype, deviations, name", NAMED,
                         ids=[n + "/" + d for d, _, n in NAMED])
def test_an_unseen_implementation_is_named_by_the_model(dtype, deviations, name):
    result = check(DeviantAdam(dtype, **deviations), validate=False)
    results = result.runs[0].results
    failing = [r for r in results if r.status == "fail"]
    assert failing, "the deviation must be detected"
    explained = [r for r in failing if r.dialects]
    named = {n for r in explained for n in r.dialects}
    names = {name.replace("HYPER", h) for h in ("eps-lost", "hyper-in-dtype")}
    assert len(named) == 1 and named <= names, dialect_label(results)
    name = named.pop()
    # nearly every failure explained by that one model; the rest said in words (in
    # float16, where ε is lost, the model's own bound does not resolve some: see #23)
    unresolved = [r for r in failing if not r.dialects and "inconclusive" in r.departure]
    assert len(explained) >= 0.9 * (len(failing) - len(unresolved)), dialect_label(results)
    assert len(explained) >= 0.75 * len(failing), dialect_label(results)
    for r in failing:
        if not r.dialects:
            assert "departs first" in r.departure
    assert not any(r.contradicted for r in failing), "its passing cases agree with it"
    assert variant_dialects(explained) == [name]


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_the_documented_algorithm_written_independently_conforms(dtype):
    # in float16, computed in float32 and stored in float16, as torch's fused kernel does
    result = check(DeviantAdam(dtype, opmath=dtype == "float16"), validate=False)
    results = result.runs[0].results
    assert not [r for r in results if r.status == "fail"], dialect_label(results)
    assert result.conforms


def test_a_failure_no_model_explains_is_said_in_words():
    """A sign error in θ's update: no switch does that (maximize only negates g)."""
    result = check(DeviantAdam("float32", flip_update=True), validate=False, cases="t1/")
    results = result.runs[0].results
    label = dialect_label(results)
    assert "cannot explain" in label and "departs first" in label
    assert "opposite sign" in label
    assert "match no known dialect" not in label


def test_variants_searched_in_processes_name_the_same_as_in_one():
    """With -j 2 each variant's model is searched in a process of its own: the same names,
    departures and contradictions as searched one after another."""
    spec = "adamconf.conformance.tools.deviant:eps_hat_decoupled"
    one = check(spec, validate=False, cases=["t1/", "short/"], jobs=1).runs[0].results
    two = check(spec, validate=False, cases=["t1/", "short/"], jobs=2).runs[0].results
    assert [(r.case_id, r.variant.id, r.dialects, r.departure) for r in one] == \
        [(r.case_id, r.variant.id, r.dialects, r.departure) for r in two]
    names = {r.variant.dtype: r.dialects[0] for r in two if r.dialects}
    assert names["float64"] == "eps-hat+wd-decoupled"
    # on these few cases ε = 1e-8 makes no difference float32 can see: not named there
    assert names["float32"] in ("wd-decoupled", "eps-hat+wd-decoupled")
    assert all(r.observed is None and r.spec_bounds is None for r in two)
