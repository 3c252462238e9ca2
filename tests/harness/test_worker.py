"""The worker process: typed replies, crash isolation, and it never outlives its parent."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from processes import children, survivors_of_sigterm

from adamconf.conformance.harness.inprocess import InProcessBackend
from adamconf.conformance.harness.worker import BackendProcess, ReplyKind

TESTS = Path(__file__).resolve().parents[1]  # tests/: example_backends.py
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


def test_replies_are_typed_and_a_crash_is_an_error_reply():
    with BackendProcess("example_backends:AbortingBackend", timeout=60) as process:
        probe = process.request("probe")
        assert probe.kind is ReplyKind.OK and probe.value.name == "aborting-example"
        bad = process.request("construct", probe.value.variants[0],
                              {"lr": -1.0, "betas": (0.9, 0.999), "eps": 1e-8,
                               "weight_decay": 0.0})
        assert bad.kind is ReplyKind.RAISED and bad.value_error
        from adamconf.conformance.corpus.golden import load_corpus
        from adamconf.conformance.harness.runner import case_setup

        case = next(g for g in load_corpus() if g.id == "empty-0d/plain")
        died = process.request("run", case_setup(case.case.problem), probe.value.variants[0])
        assert died.kind is ReplyKind.ERROR and "SIGABRT" in died.message
        assert process.request("probe").ok  # a fresh worker took over


def test_in_process_backend_answers_the_same_requests():
    from example_backends import CorrectBackend

    process = InProcessBackend(CorrectBackend())
    assert process.request("probe").ok
    process.send("probe")
    assert process.receive().value.name == "correct-example"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_a_worker_never_outlives_its_parent():
    """SIGTERM to the parent alone (as a killed terminal): its worker stops within seconds."""
    parent = subprocess.Popen(
        [sys.executable, "-m", "adamconf.conformance.cli", "run", "--quiet", "-j", "1",
         "--backend", "example_backends:HangingBackend", "--no-validate", "--case",
         "t1/plain"], env=ENV, cwd=TESTS, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while time.monotonic() < deadline and not workers:
            time.sleep(0.5)
            workers = children(parent.pid)
        assert workers, "the run started no worker"
        time.sleep(2)  # the worker is in the hanging case now
        assert not survivors_of_sigterm(parent, workers, 10), "a worker outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_worker_is_recycled_by_its_memory_not_by_count(monkeypatch):
    from adamconf.conformance.harness import worker

    with BackendProcess("numpy", timeout=60) as process:
        first = process.request("probe")
        assert first.rss and first.rss_ready and first.rss >= first.rss_ready // 2
        pid = process.pid
        process.request("probe")
        assert process.pid == pid  # well within the limits: the same worker goes on
        monkeypatch.setattr(worker, "RECYCLE_GROWTH", -1)  # any growth is too much now
        process.request("probe")
        process.request("probe")
        assert process.pid != pid  # replaced after the reply that was over the limit
