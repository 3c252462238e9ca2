"""A backend's worker on another interpreter: a second virtual environment that has numpy
and nothing of the spec's (no mpmath), driven from this one, which judges."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

from adamconf import check

TESTS = Path(__file__).resolve().parents[1]  # tests/: example_backends.py


@pytest.fixture(scope="module")
def second_python(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("venv") / "second"
    venv.EnvBuilder(with_pip=True).create(folder)
    python = str(folder / "bin" / "python")
    numpy = f"numpy=={__import__('numpy').__version__}"
    proc = subprocess.run([python, "-m", "pip", "install", "-q", numpy], capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        pytest.skip(f"cannot install numpy into a fresh venv here: {proc.stderr[-300:]}")
    return python


@pytest.mark.slow
def test_a_backend_runs_on_another_interpreter(second_python, monkeypatch):
    monkeypatch.chdir(TESTS.parent)  # the worker finds this checkout's adamconf from here
    monkeypatch.syspath_prepend(str(TESTS))
    result = check("example_backends:WhereAmIBackend", python=second_python,
                   cases="t1/", validate=True)
    run = result.runs[0]
    assert run.info.versions["python"] == second_python  # the worker's interpreter
    assert run.info.versions["mpmath"] == "absent"  # it needs nothing of the spec
    assert result.conforms, result.verdict
    assert all(v.ok for v in run.validation) and run.validation


@pytest.mark.slow
def test_a_missing_interpreter_is_one_clear_error(tmp_path):
    from adamconf.conformance.errors import UsageError

    with pytest.raises(UsageError, match="could not start with .*nowhere/python"):
        check("numpy", python=str(tmp_path / "nowhere" / "python"), cases="t1/plain")


def test_the_python_comes_from_the_users_config_file(tmp_path, monkeypatch):
    from adamconf.conformance.api import python_for

    monkeypatch.chdir(tmp_path)
    assert python_for("tensorflow", None) is None
    (tmp_path / "adamconf.toml").write_text('[python]\ntensorflow = "/opt/tf/bin/python"\n')
    assert python_for("tensorflow", None) == "/opt/tf/bin/python"
    assert python_for("tensorflow", sys.executable) == sys.executable  # --python wins
    assert python_for("numpy", None) is None
