"""Fuzzing on an existing engine: each variant's fuzz property as a pytest item, HypoFuzz's
campaign behind ``adamconf fuzz -j``, an example database that processes share (a folder or
Redis), a failure kept once as a regression case, and what a missing piece says."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adamconf.conformance.cli import main

TESTS = Path(__file__).resolve().parents[1]  # tests/, where the shared helpers are
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
MUTANT = "adamconf.conformance.tools.deviant:step_off_by_one"  # t + 1 in the bias corrections
HYPOFUZZ_MISSING = "hypofuzz is not installed: pip install 'adamconf[hypofuzz]'"


def _regression_ids(folder: Path) -> list[str]:
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return []
    return [c["id"] for c in json.loads(manifest.read_text())["cases"]]


def _pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(cwd),
         str(cwd), *args], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=600)


def _fuzz(*args: str) -> subprocess.CompletedProcess:
    """``adamconf fuzz`` in a process of its own."""
    return subprocess.run([sys.executable, "-m", "adamconf.conformance.cli", "fuzz", *args],
                          capture_output=True, text=True, env=ENV, timeout=600)


# --- the fuzz property as pytest items -------------------------------------------------------

def test_the_plugin_makes_each_variants_fuzz_property_a_hypothesis_item(tmp_path):
    proc = _pytest(tmp_path, "--collect-only", "-q", "-m", "hypothesis",
                   "--adamconf-backend", "numpy", "--adamconf-fuzz", "--adamconf-variant",
                   "production", "--adamconf-dtype", "float32", "--adamconf-dtype", "float64")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    # what HypoFuzz collects (-m hypothesis): one item per variant, nothing of the corpus
    items = [line for line in proc.stdout.splitlines() if line.startswith("::")]
    assert sorted(items) == ["::fuzz[numpy/production/cpu/float32]",
                             "::fuzz[numpy/production/cpu/float64]"], out


def test_a_fuzz_item_passes_numpy_and_fails_the_mutant_with_its_minimal_case(tmp_path):
    proc = _pytest(tmp_path, "-q", "--adamconf-backend", "numpy", "--adamconf-fuzz",
                   "--adamconf-variant-id", "production/cpu/float32",
                   "--adamconf-fuzz-examples", "15")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout

    database = tmp_path / "db"
    proc = _pytest(tmp_path, "-q", "--adamconf-backend", MUTANT, "--adamconf-fuzz",
                   "--adamconf-database", str(database), "--adamconf-max-steps", "4")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "fail: case fuzz/" in out and "the minimal case:" in out
    keep = f"adamconf fuzz --backend {MUTANT} --replay --database {database}"
    assert keep in out
    assert not (tmp_path / ".hypothesis" / "patches").exists()  # no patch of adamconf's code

    # the command it names finds the item's failure in the database: one key for both
    regressions = tmp_path / "mine"
    assert main(["fuzz", "--backend", MUTANT, "--replay", "--database", str(database),
                 "--max-steps", "4", "--regressions", str(regressions), "-q"]) == 1
    ids = _regression_ids(regressions)
    assert len(ids) == 1 and ids[0].startswith("regression/deviant-step-offset-1-")


# --- HypoFuzz's campaign behind adamconf fuzz -j ------------------------------------------------

@pytest.mark.slow
def test_a_hypofuzz_campaign_finds_the_step_off_by_one_mutant(tmp_path, capsys):
    pytest.importorskip("hypofuzz", reason=HYPOFUZZ_MISSING)
    regressions = tmp_path / "mine"
    code = main(["fuzz", "--backend", MUTANT, "--engine", "hypofuzz", "-j", "2",
                 "--seconds", "90", "--database", str(tmp_path / "db"),
                 "--regressions", str(regressions), "--no-invalid"])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 1, out + captured.err
    assert "HypoFuzz's 2 worker(s) fuzz" in captured.err
    rate = re.search(r": (\d+) examples in ([0-9.]+) s \(([0-9.]+) examples/s\)", out)
    assert rate and int(rate.group(1)) > 0 and float(rate.group(3)) > 0, out
    assert "stopped: time budget spent" not in out  # it stopped when it had found it
    assert "FAILURE (fail)" in out and "conforms to dialect(s) instead: step-off-by-one" in out
    ids = _regression_ids(regressions)
    assert len(ids) == 1 and f"saved as regression case {ids[0]}" in out
    assert "replayed and shrunk here" in captured.err  # found by a worker, kept by the front


@pytest.mark.slow
@pytest.mark.parametrize("ci", [None, "true"], ids=["here", "where-CI-is-set"])
def test_a_hypofuzz_campaign_on_numpy_runs_for_its_time_and_finds_nothing(ci, monkeypatch,
                                                                          capsys):
    """Also where CI is set: hypothesis then loads its derandomized "ci" profile by itself,
    and HypoFuzz refuses a derandomized test (every campaign collected nothing)."""
    pytest.importorskip("hypofuzz", reason=HYPOFUZZ_MISSING)
    if ci is None:  # hypothesis reads a CI variable that is set at all, empty or not
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    started = time.monotonic()
    code = main(["fuzz", "--backend", "numpy", "--engine", "hypofuzz", "-j", "2",
                 "--seconds", "12", "--no-database", "--no-save", "--no-invalid", "-q"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert time.monotonic() - started >= 12
    assert "stopped: time budget spent" in out and "no failure found" in out
    rate = re.search(r": (\d+) examples in [0-9.]+ s \(([0-9.]+) examples/s\)", out)
    assert rate and int(rate.group(1)) > 0, out


# --- two processes share a database -------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    """A Redis server of the test's own, on a free loopback port, stopped after."""
    pytest.importorskip("redis", reason="the redis package is not installed: "
                                        "pip install 'adamconf[redis]'")
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    port = _free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 30
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail(f"redis-server did not start on port {port}")
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(params=["directory", "redis"])
def shared(request, tmp_path):
    """(the database both processes are given, an empty one of the same kind)."""
    if request.param == "directory":
        return str(tmp_path / "shared-db"), str(tmp_path / "empty-db")
    url = request.getfixturevalue("redis_url")
    return f"{url}/0", f"{url}/1"


def test_two_processes_share_a_database_and_keep_a_failure_once(shared, tmp_path):
    """As two machines: the first finds the failure and saves it in the shared database;
    the second, given only that database, shrinks it the same way into the same regression
    case; the same failure again is not saved again; an empty database has nothing."""
    database, empty = shared
    first, second = tmp_path / "first", tmp_path / "second"
    found = _fuzz("--backend", MUTANT, "--engine", "jobs", "-j", "1", "--seed", "1",
                  "--max-examples", "30", "--max-steps", "4", "--database", database,
                  "--regressions", str(first), "--no-invalid", "-q")
    assert found.returncode == 1, found.stdout + found.stderr
    ids = _regression_ids(first)
    assert len(ids) == 1

    kept = _fuzz("--backend", MUTANT, "--replay", "--max-steps", "4", "--database", database,
                 "--regressions", str(second))
    assert kept.returncode == 1, kept.stdout + kept.stderr
    assert re.search(r"deviant/cpu/float32: [1-9]\d* shrunk failing example", kept.stderr)
    assert f"saved as regression case {ids[0]}" in kept.stdout
    assert _regression_ids(second) == ids  # the same minimal case, by its digest

    again = _fuzz("--backend", MUTANT, "--replay", "--max-steps", "4", "--database", database,
                  "--regressions", str(second), "-q")
    assert again.returncode == 1
    assert f"already stored as regression case {ids[0]}" in again.stdout
    assert _regression_ids(second) == ids

    nothing = _fuzz("--backend", MUTANT, "--replay", "--max-steps", "4", "--database", empty,
                    "--regressions", str(tmp_path / "third"))
    assert nothing.returncode == 0, nothing.stdout + nothing.stderr
    assert "0 shrunk failing example(s) saved in the database, 0 not shrunk" in nothing.stderr
    assert _regression_ids(tmp_path / "third") == []


# --- what a missing piece says -------------------------------------------------------------------

def _blocked(module: str, argv: list[str]) -> subprocess.CompletedProcess:
    """``adamconf fuzz`` in a process where ``module`` cannot be imported (nor loaded by
    hypothesis as a plugin, as hypofuzz is where installed)."""
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            "from adamconf.conformance.cli import main\n"
            f"sys.exit(main({argv!r}))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**ENV, "HYPOTHESIS_NO_PLUGINS": "1"}, timeout=300)


def test_a_missing_hypofuzz_is_one_message_with_the_install_command():
    asked = _blocked("hypofuzz", ["fuzz", "--engine", "hypofuzz", "--no-database", "--no-save"])
    assert asked.returncode == 2, asked.stdout + asked.stderr
    assert "pip install 'adamconf[hypofuzz]'" in asked.stderr
    assert len(asked.stderr.strip().splitlines()) == 1

    # -j 2 where HypoFuzz would run: adamconf's own jobs run instead, and it says so
    auto = _blocked("hypofuzz", ["fuzz", "-j", "2", "--max-examples", "6", "--no-database",
                                 "--no-save", "--no-invalid", "-q"])
    assert auto.returncode == 0, auto.stdout + auto.stderr
    notes = [line for line in auto.stderr.splitlines() if "HypoFuzz is not installed" in line]
    assert len(notes) == 1 and "pip install 'adamconf[hypofuzz]'" in notes[0]
    assert "own jobs" in notes[0]


def test_a_missing_redis_package_or_server_is_one_message_with_the_fix():
    url = f"redis://127.0.0.1:{_free_port()}"
    package = _blocked("redis", ["fuzz", "--database", url, "--no-save"])
    assert package.returncode == 2, package.stdout + package.stderr
    assert "pip install 'adamconf[redis]'" in package.stderr
    assert len(package.stderr.strip().splitlines()) == 1

    pytest.importorskip("redis", reason="the redis package is not installed: "
                                        "pip install 'adamconf[redis]'")
    server = _fuzz("--database", url, "--no-save")  # nothing listens on that port
    assert server.returncode == 2, server.stdout + server.stderr
    assert "no Redis server answers there" in server.stderr
    assert "apt-get install redis-server" in server.stderr
    assert len(server.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["--engine", "jobs", "--dashboard", "0"], "--dashboard"),
    (["--replay", "--no-database"], "--replay"),
    (["--replay", "--invalid"], "exclude each other"),
])
def test_campaign_usage_errors(argv, message, capsys):
    assert main(["fuzz", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_campaign_that_ran_no_example_is_an_error_not_a_pass(capsys):
    pytest.importorskip("hypofuzz", reason=HYPOFUZZ_MISSING)
    code = main(["fuzz", "--backend", "numpy", "--engine", "hypofuzz", "-j", "1",
                 "--seconds", "1", "--no-database", "--no-save", "--no-invalid", "-q"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "FAILURE (error)" in out and "HypoFuzz's workers ran no example" in out
    assert "no failure found" not in out


@pytest.mark.slow
def test_the_dashboard_is_served_while_the_campaign_runs():
    pytest.importorskip("hypofuzz", reason=HYPOFUZZ_MISSING)
    import urllib.request

    proc = subprocess.Popen(
        [sys.executable, "-m", "adamconf.conformance.cli", "fuzz", "--backend", "numpy",
         "-j", "1", "--dashboard", "0", "--seconds", "20", "--no-database", "--no-save",
         "--no-invalid", "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=ENV)
    try:
        url = None
        for line in proc.stderr:  # the URL is said even with -q: it was asked for
            found = re.search(r"HypoFuzz's dashboard: (\S+)", line)
            if found:
                url = found.group(1)
                break
        assert url is not None, "no dashboard URL was printed"
        with urllib.request.urlopen(url, timeout=30) as page:
            assert page.status == 200
        assert proc.wait(120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
