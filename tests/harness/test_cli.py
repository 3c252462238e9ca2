"""The CLI and runner end to end: exit codes, reports, third-party backends, crashes, hangs,
bad input, the pytest plugin."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from adamconf.conformance.cli import main
from adamconf.conformance.corpus import golden

TESTS = Path(__file__).resolve().parents[1]  # tests/: example_backends.py
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_run_numpy_whole_corpus_conforms(capsys, tmp_path):
    code, out, err = run_cli(capsys, "run", "--quiet", "--json", str(tmp_path / "r.json"),
                             "--junit", str(tmp_path / "r.xml"))
    assert code == 0, out
    assert "numpy: CONFORMS" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["schema_version"] == 2
    run = report["runs"][0]
    assert run["conforms"] and run["counts"]["fail"] == 0 and run["counts"]["error"] == 0
    assert run["conformance"] == "conforms"
    for variant in run["variants"]:
        assert variant["conformance"] == "conforms"
        assert 0 < variant["judged"] <= variant["selected"]
    assert run["counts"]["pass"] >= 300
    assert all(v["ok"] for v in run["validation"])
    suites = ET.parse(tmp_path / "r.xml").getroot()
    assert sum(int(s.get("tests")) for s in suites) >= len(run["results"])


def test_third_party_wrong_backend_fails_and_is_named(capsys, tmp_path):
    code, out, err = run_cli(capsys, "run", "--quiet", "--backend",
                             "example_backends:EpsHatBackend", "-k", "eps-large/", "-k",
                             "hand/eps-hat", "--json", str(tmp_path / "r.json"))
    assert code == 1, out
    assert "DOES NOT CONFORM" in out and "eps-hat" in out
    assert "reproduce: adamconf run --backend example_backends:EpsHatBackend" in out
    run = json.loads((tmp_path / "r.json").read_text())["runs"][0]
    failing = [r for r in run["results"] if r["status"] == "fail"]
    assert failing and all("eps-hat" in r["dialects"] for r in failing)
    assert run["counts"]["unsupported"] > 0  # amsgrad cases: said, not passed


def test_correct_third_party_backend_conforms(capsys):
    code, out, _ = run_cli(capsys, "run", "--quiet", "--backend",
                           "example_backends:CorrectBackend", "-k", "short/", "-k", "schedule/")
    assert code == 0, out


def test_a_crashing_backend_is_an_error_and_the_run_goes_on(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "run", "--quiet", "--backend",
                           "example_backends:AbortingBackend", "-k", "empty-0d/plain",
                           "-k", "short/plain", "--json", str(tmp_path / "r.json"))
    assert code == 1
    results = json.loads((tmp_path / "r.json").read_text())["runs"][0]["results"]
    by_case = {r["case"]: r for r in results}
    assert by_case["empty-0d/plain"]["status"] == "error"
    assert "died" in by_case["empty-0d/plain"]["message"]
    assert "SIGABRT" in by_case["empty-0d/plain"]["message"]
    assert by_case["short/plain"]["status"] == "pass"


def test_a_hanging_backend_times_out(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "run", "--quiet", "--backend",
                           "example_backends:HangingBackend", "-k", "t1/plain", "-k",
                           "short/plain", "--timeout", "4", "--no-validate",
                           "--json", str(tmp_path / "r.json"))
    assert code == 1
    results = json.loads((tmp_path / "r.json").read_text())["runs"][0]["results"]
    by_case = {r["case"]: r for r in results}
    assert by_case["t1/plain"]["status"] == "error"
    assert "timed out after 4 s" in by_case["t1/plain"]["message"]
    assert by_case["short/plain"]["status"] == "pass"


def test_a_backend_that_accepts_invalid_hyperparameters_is_reported(capsys):
    code, out, _ = run_cli(capsys, "run", "--quiet", "--backend",
                           "example_backends:AcceptsEverythingBackend", "-k", "short/plain")
    assert code == 1
    assert "Documented ValueErrors: 0/8 raised as documented" in out
    assert "lr=-0.001 → accepted silently" in out


@pytest.mark.parametrize("argv, message", [
    (["run", "--backend", "nosuch"], "unknown backend 'nosuch'; known: autograd, bitsandbytes"),
    (["run", "--backend", "nosuch_module_xyz:factory"], "cannot import module"),
    (["run", "--backend", "example_backends:NoSuchThing"], "has no attribute 'NoSuchThing'"),
    (["run", "--dtype", "float8"], "unknown dtype 'float8' for backend numpy; valid: "),
    (["run", "--device", "tpu"], "unknown device 'tpu' for backend numpy; valid: cpu"),
    (["run", "--variant", "turbo"], "unknown variant 'turbo' for backend numpy"),
    (["run", "-k", "no-such-case-anywhere"], "no case matches -k no-such-case-anywhere"),
    (["run", "--case", "t1/nope"], "no case with id 't1/nope'"),
    (["run", "--backend", "example_backends:NotInstalledBackend"],
     "is not installed here: pip install absent-framework"),
    (["golden", "check", "--golden", "/nonexistent/golden"], "does not exist"),
])
def test_bad_input_is_one_clear_message(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_shard_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--shard", "3/2"])
    assert exc.value.code == 2
    assert "need 1 <= i <= n" in capsys.readouterr().err


def test_shards_partition_the_work(capsys, tmp_path):
    ids = []
    for i in (1, 2):
        code, _, _ = run_cli(capsys, "run", "--quiet", "--no-validate", "-k", "short/",
                             "--dtype", "float32", "--shard", f"{i}/2",
                             "--json", str(tmp_path / f"{i}.json"))
        assert code == 0
        results = json.loads((tmp_path / f"{i}.json").read_text())["runs"][0]["results"]
        ids.append({r["case"] for r in results})
    assert ids[0] and ids[1] and not ids[0] & ids[1]
    assert len(ids[0] | ids[1]) == 8


def test_unreadable_golden_folder(capsys, tmp_path):
    folder = tmp_path / "golden"
    shutil.copytree(golden.GOLDEN_DIR, folder)
    (folder / "manifest.json").write_text('{"format": "something-else"}')
    code, _, err = run_cli(capsys, "run", "--golden", str(folder))
    assert code == 2 and "not an adamconf golden manifest" in err


def test_golden_check_names_a_changed_file(capsys, tmp_path):
    folder = tmp_path / "golden"
    shutil.copytree(golden.GOLDEN_DIR, folder)
    victim = sorted(folder.glob("*.npz"))[5]
    data = bytearray(victim.read_bytes())
    data[-100] ^= 0xFF
    victim.write_bytes(bytes(data))
    code, out, _ = run_cli(capsys, "golden", "check", "--golden", str(folder))
    assert code == 1 and victim.name in out


def test_cases_shows_a_full_matrix(capsys):
    code, out, _ = run_cli(capsys, "cases")
    assert code == 0
    from adamconf.conformance.corpus.cases import catalogue

    assert "0 empty cells" in out and "ams+max+wd" in out
    assert f"{len(catalogue())} cases" in out


def test_backends_lists_numpy(capsys):
    code, out, _ = run_cli(capsys, "backends", "--backend", "numpy")
    assert code == 0 and "numpy:" in out and "variant production" in out


def test_dialects_lists_every_setting_and_known_combination(capsys):
    from adamconf.reference.dialects import DIALECTS, LABELS

    code, out, _ = run_cli(capsys, "dialects")
    assert code == 0 and all(label in out for label in LABELS)
    assert all(name in out for name, d in DIALECTS.items() if d.size > 1)


def test_help_explains(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "--shard" in out and "--min-judged" in out and "bound" in out


def test_console_script_exit_code():
    proc = subprocess.run([sys.executable, "-m", "adamconf.conformance.cli", "run", "--quiet",
                           "--case", "hand/amsgrad-decreasing", "--dtype", "float64"],
                          capture_output=True, text=True, env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pytest_plugin_runs_the_corpus_as_items(tmp_path):
    xfail = tmp_path / "xfail.txt"
    xfail.write_text("hand/eps-hat[plain/cpu/float64]  # eps-hat by design\n"
                     "no-such-case[*]  # stale\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path), str(tmp_path), "--adamconf-backend", "example_backends:EpsHatBackend",
         "--adamconf-xfail", str(xfail), "-k", "hand/eps-hat", "-W",
         "default"], capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "adamconf backend: example_backends:EpsHatBackend" in out
    assert "1 xfailed" in out and "matches no test item" in out


def test_pytest_plugin_reports_a_failure_with_dialect_and_repro(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir",
         str(tmp_path), str(tmp_path), "--adamconf-backend", "example_backends:EpsHatBackend",
         "-k", "hand/eps-hat"], capture_output=True, text=True, env=ENV, cwd=tmp_path,
        timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "conforms instead to: eps-hat" in out and "reproduce: adamconf run" in out


def test_fuzz_without_hypothesis_names_the_extra():
    code = ("import sys; sys.modules['hypothesis'] = None\n"
            "from adamconf.conformance.cli import main\n"
            "sys.exit(main(['fuzz', '--no-database', '--no-save']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=ENV, timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "pip install 'adamconf[fuzz]'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
