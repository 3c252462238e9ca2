"""Expected dialects: one file per backend, read and checked; a run against it reads as
expected, changed, new failure or now conforms; the plugin's xfails come from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from adamconf.adapters.base import Variant
from adamconf.conformance.errors import UsageError
from adamconf.conformance.judge.expected import (
    EXPECTED_DIR,
    Expectation,
    Expected,
    compare,
    load_expected,
)
from adamconf.conformance.judge.outcome import CaseResult
from adamconf.reference.dialects import get_dialect

TESTS = Path(__file__).resolve().parents[1]  # tests/: example_backends.py
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}


def test_every_shipped_file_reads_and_names_points_of_the_model():
    files = sorted(EXPECTED_DIR.glob("*.json"))
    assert files, "the expected dialects of the backends are shipped"
    for path in files:
        expected = load_expected(path.stem)
        assert expected.backend == path.stem and expected.seen_with
        for e in expected.variants:
            assert e.why
            if e.implements != "spec":
                assert get_dialect(e.implements).name == e.implements  # canonical names
        for u in expected.unexplained:
            assert len(u.why) > 30, u  # a reason found, not a placeholder


def test_a_file_that_is_not_an_expected_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"backend": "x", "variants": [{"variants": "*", "implements": "eps-hatt"}]}')
    with pytest.raises(UsageError, match="eps-hatt"):
        load_expected("x", bad)
    bad.write_text("not json")
    with pytest.raises(UsageError, match="not readable"):
        load_expected("x", bad)
    with pytest.raises(UsageError, match="does not exist"):
        load_expected("x", tmp_path / "missing.json")


def _results(*dialects):
    v = Variant("b", "plain", "cpu", "float32")
    out = [CaseResult("ok", v, "pass")]
    for i, d in enumerate(dialects):
        out.append(CaseResult(f"c{i}", v, "fail", dialects=d))
    return out


@pytest.mark.parametrize("want, dialects, status", [
    ("eps-hat", [["eps-hat"], ["eps-hat"]], "as expected"),
    ("spec", [], "as expected"),
    ("eps-hat", [["ams-rawmax+eps-hat"]], "changed"),
    ("eps-hat", [["eps-hat"], []], "as expected"),  # and one the model does not explain
    ("eps-hat", [[]], "changed"),  # no model at all
    ("spec", [["eps-hat"]], "new failure"),
    ("eps-hat", [], "now conforms"),
])
def test_a_variant_is_compared_with_what_is_expected(want, dialects, status):
    expected = Expected("b", "b 1.0", [Expectation("plain/*", want, "why")])
    got, words = compare(expected, "plain/cpu/float32", _results(*dialects))
    assert got == status, words
    if dialects and [] in dialects and status == "as expected":
        assert "1 failure it does not explain, no reason stated" in words
    assert compare(None, "plain/cpu/float32", _results(*dialects)) == ("", "")


def test_a_stated_reason_covers_a_failure_the_model_cannot_express():
    from adamconf.conformance.judge.expected import Unexplained

    expected = Expected("b", "b 1.0", [Expectation("*", "eps-hat", "why")],
                        [Unexplained("plain/*", "c1", "the kernel rounds the update first")])
    status, words = compare(expected, "plain/cpu/float32", _results(["eps-hat"], []))
    assert status == "as expected" and "1 failure with a stated reason" in words


def _plugin(tmp_path, expected: dict):
    path = tmp_path / "expected.json"
    path.write_text(json.dumps(expected))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path), str(tmp_path), "--adamconf-backend", "example_backends:EpsHatBackend",
         "--adamconf-expected", str(path), "-k", "hand/eps-hat or t1/plain"],
        capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=300)


def test_the_plugin_xfails_only_what_the_expected_model_explains(tmp_path):
    proc = _plugin(tmp_path, {"backend": "x", "variants": [
        {"variants": "*", "implements": "eps-hat", "why": "ε outside the correction"}]})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "xfailed" in out and "failed" not in out.replace("xfailed", "")
    # expected to conform: the same failures fail, naming what they conform to instead
    proc = _plugin(tmp_path, {"backend": "x", "variants": [
        {"variants": "*", "implements": "spec", "why": "conforms"}]})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "conforms instead to: eps-hat" in out, out
    # expected another model: the failure is not excused
    proc = _plugin(tmp_path, {"backend": "x", "variants": [
        {"variants": "*", "implements": "eps-inside-sqrt", "why": "a wrong expectation"}]})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "expected eps-inside-sqrt, which does not explain it" in out


def _backend_python(backend: str) -> str | None:
    """The interpreter a backend runs on here, or skip: its own environment's
    ($ADAMCONF_PYTHON_<NAME>, as CI sets for TensorFlow), else this one where it imports."""
    python = os.environ.get(f"ADAMCONF_PYTHON_{backend.upper()}")
    if python:
        return python
    pytest.importorskip({"tensorflow": "tensorflow"}.get(backend, backend))
    return None


@pytest.mark.parametrize("backend", ["torch", "optimi"])
def test_reasons_the_model_cannot_express_still_match(backend):
    """Each reason a backend's file states for a failure the model cannot express still
    names a failure of a run, and that failure is indeed not explained by the model."""
    from adamconf import check

    expected = load_expected(backend)
    assert expected.unexplained, f"{backend}'s file states its reasons"
    python = _backend_python(backend)
    for u in expected.unexplained:
        name, _, dtype = u.variant.partition("/*/")
        run = check(backend, variants=[] if "*" in name else [name],
                    dtypes=[dtype] if dtype and dtype != "*" else [],
                    cases=None if u.case == "*" else u.case.rstrip("*"), validate=False,
                    python=python).runs[0]
        matched = [r for r in run.results if r.status == "fail" and not r.dialects
                   and expected.reason_for(r.variant.id, r.case_id) == u.why]
        assert matched, f"stale reason: {u.variant} {u.case}: {u.why}"


@pytest.mark.parametrize("want", ["spec", "eps-hat"])
def test_failures_that_are_all_stated_reasons_are_as_expected(want):
    """A variant expected to conform (or to implement a model) whose only failures are ones
    its file states a reason for is as expected; one more failure without a reason is not."""
    from adamconf.conformance.judge.expected import Unexplained

    expected = Expected("b", "b 1.0", [Expectation("*", want, "why")],
                        [Unexplained("plain/*", "c0", "Kahan summation turns ∞ into NaN")])
    status, words = compare(expected, "plain/cpu/float32", _results([]))
    assert status == "as expected" and "1 failure with a stated reason" in words, words
    status, words = compare(expected, "plain/cpu/float32", _results([], []))
    assert status == ("new failure" if want == "spec" else "changed"), words
