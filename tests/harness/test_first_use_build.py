"""First-use builds (DeepSpeed compiles its CPU Adam kernel at first use, 2–4 minutes): a phase
of their own with a progress line and a budget apart from the per-case timeout; a build that
is stopped leaves no lock behind, and a stale lock whose owner is gone is named with the
command that clears it instead of being waited on forever.

The build is simulated by ``example_backends.FirstUseBuildBackend``, which locks its build
folder as torch's extension builder does (a file created exclusively and held open while it
compiles; any other build waits for it to go, without end).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adamconf.conformance.cli import main
from adamconf.conformance.harness.worker import BackendProcess, ReplyKind

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(),
                                reason="who holds a lock open is read from Linux's /proc")

SPEC = "example_backends:FirstUseBuildBackend"


@pytest.fixture
def build_dir(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "torch_extensions" / "kernel"
    monkeypatch.setenv("ADAMCONF_TEST_BUILD_DIR", str(folder))
    return folder


def _run(capsys, tmp_path, *extra: str) -> tuple[int, dict, float]:
    out = tmp_path / "run.json"
    started = time.monotonic()
    code = main(["run", "--backend", SPEC, "-k", "t1/plain", "--quiet", "-j", "1",
                 "--no-validate", "--json", str(out), *extra])
    capsys.readouterr()
    return code, json.loads(out.read_text())["runs"][0], time.monotonic() - started


@pytest.mark.parametrize(("deaf", "tool"), [(False, False), (True, False), (False, True)],
                         ids=["unwinds", "deaf-to-sigterm", "through-a-build-tool"])
def test_a_build_stopped_at_its_budget_leaves_no_lock_and_the_next_run_is_not_stalled(
        capsys, tmp_path, monkeypatch, build_dir, deaf, tool):
    monkeypatch.setenv("ADAMCONF_TEST_BUILD_SECONDS", "120")
    if deaf:  # its own clean-up cannot run: the parent clears the lock it left
        monkeypatch.setenv("ADAMCONF_TEST_BUILD_IGNORES_SIGTERM", "1")
    if tool:  # as torch compiles: ninja, and the compiler in a process group of its own
        monkeypatch.setenv("ADAMCONF_TEST_BUILD_TOOL", "1")
    lines: list[str] = []
    process = BackendProcess(SPEC, timeout=60, build_timeout=3, notify=lines.append)
    process.build_stop_grace = 1.0
    started = time.monotonic()
    try:
        reply = process.request("probe")
    finally:
        process.close()
    assert reply.kind is ReplyKind.ERROR and "did not finish within 3 s" in reply.message
    assert time.monotonic() - started < 30  # the build's budget, not the case timeout
    assert any("building a simulated kernel at first use (up to 3 s" in line
               for line in lines), lines
    assert not (build_dir / "lock").exists(), "the stopped build left its lock"
    assert deaf == any("removed the lock" in line for line in lines), lines
    if tool:  # the tool was stopped, not killed, so it stopped its compiler: none is left
        compiler = int((build_dir / "compiler.pid").read_text())
        assert not _running(compiler), "the stopped build left its compiler running"
        monkeypatch.delenv("ADAMCONF_TEST_BUILD_TOOL")
    # the next run builds (the lock is gone) and runs: it is not stalled
    monkeypatch.setenv("ADAMCONF_TEST_BUILD_SECONDS", "0.5")
    monkeypatch.delenv("ADAMCONF_TEST_BUILD_IGNORES_SIGTERM", raising=False)
    code, run, seconds = _run(capsys, tmp_path)
    assert code == 0 and run["counts"]["pass"] == 1, run["counts"]
    assert seconds < 60 and (build_dir / "kernel.so").exists()


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _hold_lock(lock: Path) -> subprocess.Popen:
    """A process that creates the lock as torch's builder does and holds it open."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import os, sys, time\n"
        f"fd = os.open({str(lock)!r}, os.O_CREAT | os.O_EXCL)\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n")], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_stale_lock_is_named_with_the_command_that_clears_it(capsys, tmp_path, build_dir):
    lock = build_dir / "lock"
    holder = _hold_lock(lock)
    holder.kill()  # killed mid-build: nothing could clean up
    holder.wait()
    assert lock.exists()
    code, run, seconds = _run(capsys, tmp_path)
    assert code == 3 and seconds < 60  # a verdict at once, never a wait on the lock
    reasons = [r["reason"] for r in run["info"]["refused"]] + [
        r["message"] for r in run["results"]]
    assert reasons and all(f"rm -f {lock}" in r and "its owner is gone" in r for r in reasons)
    assert lock.exists()  # named, not removed: clearing a lock is the user's to do


def test_a_lock_held_by_a_live_build_is_waited_for_and_never_removed(tmp_path, build_dir):
    lock = build_dir / "lock"
    holder = _hold_lock(lock)
    try:
        process = BackendProcess(SPEC, timeout=60, build_timeout=2)
        try:
            reply = process.request("probe")
        finally:
            process.close()
        assert reply.kind is ReplyKind.ERROR and "did not finish within 2 s" in reply.message
        assert lock.exists()  # another process's build, still running: not ours to clear
    finally:
        holder.kill()
        holder.wait()


def test_deepspeed_names_a_stale_lock_of_its_kernel_build(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("deepspeed")
    from adamconf.adapters.deepspeed_backend import DeepSpeedCPUAdamBackend

    folder = tmp_path / "cpu_adam"
    lock = folder / "lock"
    holder = _hold_lock(lock)
    holder.kill()
    holder.wait()
    backend = DeepSpeedCPUAdamBackend()
    monkeypatch.setattr(backend, "_build_folder", lambda builder: str(folder))
    pending = backend.first_use_build()
    assert pending is not None and pending.locks == (str(lock),)
    with pytest.raises(RuntimeError, match="stale lock"):
        backend.build()
    info = backend.probe()
    assert info.installed and not info.variants
    assert info.refused and all(f"rm -f {lock}" in r.reason for r in info.refused)
