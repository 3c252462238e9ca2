"""The named torch libraries on the generic driver: torch-optimi, bitsandbytes, DeepSpeed.

Against the real libraries (each section skipped where it is not installed): the probe
lists versions, variants and unsupported features with reasons; a few float32 cases through
the CLI give each variant's verdict and the dialect it is named; the documented invalid
hyperparameters raise ``ValueError`` where the library checks them (where it does not, that
is a finding, kept as ``xfail(strict=True)`` with what it does instead).
"""

from __future__ import annotations

import json

import pytest

from adamconf.conformance.cli import main
from adamconf.conformance.harness.registry import load_backend
from adamconf.reference.config import DEFAULTS, DOCUMENTED_ERRORS

pytestmark = pytest.mark.framework

# backend → (module to import, version key, variant names)
LIBRARIES = {
    "optimi": ("optimi", "torch-optimi",
               {"default", "kahan-sum", "no-kahan-sum", "decouple-wd", "decouple-lr"}),
    "bitsandbytes": ("bitsandbytes", "bitsandbytes", {"32bit"}),
    "deepspeed": ("deepspeed", "deepspeed", {"adam", "adamw"}),
}

# (backend, variant) → the dialects named for its failing float32 t1/ and short/ cases, ()
# where every judged case passes
EXPECTED = {
    ("optimi", "default"): (),
    ("optimi", "kahan-sum"): (),
    ("optimi", "decouple-wd"): ("wd-decoupled",),
    # optim/adam.py's CPU path (bitsandbytes 0.50) decays the weights decoupled, and drops
    # the documented amsgrad flag before it reaches the optimizer
    ("bitsandbytes", "32bit"): ("wd-decoupled", "ams-ignored"),
    ("deepspeed", "adam"): (),
    ("deepspeed", "adamw"): ("wd-decoupled",),
}

INVALID = {error.label: error.override for error in DOCUMENTED_ERRORS}
STR_LR = "compares the lr with a float first: a str lr raises TypeError, not ValueError"
DEEPSPEED = ("DeepSpeedCPUAdam checks no hyperparameter: it builds with this value (a str lr "
             "is a TypeError from its C++ binding)")
NOT_RAISED = {
    "optimi": {"lr='0.01'": STR_LR},
    "bitsandbytes": {"lr='0.01'": STR_LR},
    "deepspeed": dict.fromkeys(INVALID, DEEPSPEED),
}


@pytest.fixture(scope="module")
def library(request):
    name = request.param
    pytest.importorskip("torch")
    pytest.importorskip(LIBRARIES[name][0])
    backend = load_backend(name)
    return name, backend, backend.probe()


@pytest.mark.parametrize("library", list(LIBRARIES), indirect=True)
def test_probe_lists_versions_variants_and_reasons(library):
    name, backend, info = library
    _, version_key, variants = LIBRARIES[name]
    assert info.installed and info.name == name
    assert info.versions.get(version_key) and info.versions.get("torch")
    assert {v.name for v in info.variants} == variants
    assert all(v.device == "cpu" or v.device == "cuda" for v in info.variants)
    assert all(u.reason for u in info.unsupported)
    refused = {u.what: u.reason for u in info.unsupported}
    assert "no 'maximize' keyword" in refused["maximize"]
    if name == "deepspeed":
        assert "does not support the AMSGrad variant" in refused["amsgrad"]
        assert "Double" in refused["adam/cpu/float64"]  # its kernel has no float64 params
    if name == "optimi":
        assert "no 'amsgrad' keyword" in refused["amsgrad"]
        assert "debiased" in refused["resume"]


def _run(capsys, tmp_path, name: str, variants) -> dict:
    out = tmp_path / f"{name}.json"
    argv = ["run", "--backend", name, "--dtype", "float32", "-k", "t1/", "-k", "short/",
            "--quiet", "--no-validate", "--json", str(out)]
    for variant in variants:
        argv += ["--variant", variant]
    main(argv)
    capsys.readouterr()
    return json.loads(out.read_text())["runs"][0]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LIBRARIES))
def test_verdict_and_dialect(capsys, tmp_path, name):
    pytest.importorskip("torch")
    pytest.importorskip(LIBRARIES[name][0])
    expected = {variant: dialects for (lib, variant), dialects in EXPECTED.items()
                if lib == name}
    run = _run(capsys, tmp_path, name, expected)  # one worker for all of a library's variants
    summaries = {s["variant"].partition("/")[0]: s for s in run["variants"]}
    assert set(summaries) == set(expected)
    for variant, dialects in expected.items():
        summary = summaries[variant]
        counts = summary["counts"]
        assert counts["error"] == 0 and counts["pass"] > 0, summary
        if not dialects:
            assert counts["fail"] == 0, summary
            continue
        # "implements" also names dialects that explain only some failures (an ams+wd case
        # is both of bitsandbytes' deltas at once, a combination the catalogue has not)
        assert counts["fail"] > 0, summary
        assert all(d in summary["implements"] for d in dialects), summary


INVALID_CASES = [
    pytest.param(name, label, id=f"{name}-{label}",
                 marks=[pytest.mark.xfail(strict=True, reason=NOT_RAISED[name][label])]
                 if label in NOT_RAISED[name] else [])
    for name in LIBRARIES for label in INVALID]


@pytest.mark.parametrize(("library", "label"), INVALID_CASES, indirect=["library"])
def test_documented_invalid_hyperparameters_raise_value_error(library, label):
    name, backend, info = library
    variant = next(v for v in info.variants if v.dtype == "float32")
    backend.construct(variant, **DEFAULTS)  # the valid defaults build
    with pytest.raises(ValueError):
        backend.construct(variant, **dict(DEFAULTS, **INVALID[label]))
