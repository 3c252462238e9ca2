"""adamconf's own fuzzing processes (``adamconf fuzz -j N --engine jobs``): each job
(:func:`.fuzz.fuzz_job`) has its own backend worker and seed (the campaign's + job), a share
of every variant's examples and the one example database; the parent shows the sum of their
progress and merges what they found (one finding per variant and kind: the smallest case).
Ctrl-C sets a flag every job reads before its next example.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from adamconf.conformance.harness.fuzz_engine import CtrlC, FuzzResults
from adamconf.conformance.harness.fuzz_property import UNLIMITED, Finding, FuzzStats
from adamconf.conformance.harness.fuzz_report import ProgressLine
from adamconf.conformance.harness.fuzz_settings import FuzzSettings

__all__ = ["job_count", "start_jobs", "gather_jobs", "Relay"]


def job_count(args: FuzzSettings, max_examples: int) -> int:
    """How many fuzzing processes: as asked, else one per core (one when derandomized: the
    same examples every run), never more than there are examples to share."""
    if args.jobs is not None:
        jobs = args.jobs
    elif args.derandomize:
        jobs = 1
    else:
        from adamconf.conformance.harness.lanes import default_jobs

        jobs = default_jobs()
    return max(1, min(jobs, max_examples))


def _shares(total: int, jobs: int) -> list[int]:
    """``total`` examples split over ``jobs`` as evenly as can be (the first get the rest)."""
    if total >= UNLIMITED:
        return [UNLIMITED] * jobs
    return [total // jobs + (1 if j < total % jobs else 0) for j in range(jobs)]


class Relay:
    """A job's progress, sent to the parent (at most every ``period`` seconds), which shows
    the sum of all jobs: a :class:`.fuzz_property.Progress`, as the progress line is."""

    def __init__(self, conn, job: int, period: float = 0.25) -> None:
        self.conn, self.job, self.period, self._last = conn, job, period, 0.0

    def update(self, stats: FuzzStats, started: float, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < self.period:
            return
        self._last = now
        try:
            self.conn.send(("progress", self.job, stats.variant.id, dict(stats.counts),
                            stats.shrink_runs))
        except (OSError, ValueError):
            pass  # the parent is gone or closing: the job ends with it

    def done(self) -> None:
        pass


def _merge_stats(per_job: list[list[FuzzStats]], variants: list) -> list[FuzzStats]:
    """One FuzzStats per variant over all jobs: counts added, the wall time from the first
    job's start to the last one's end (they ran at once), stopped if any job stopped."""
    merged = []
    for n, variant in enumerate(variants):
        parts = [stats[n] for stats in per_job if n < len(stats)]
        if not parts:
            continue
        total = FuzzStats(variant, began=min(part.began for part in parts))
        total.seconds = max(part.began + part.seconds for part in parts) - total.began
        for part in parts:
            total.counts.update(part.counts)
            total.shrink_runs += part.shrink_runs
            total.inconclusive_reasons.update(part.inconclusive_reasons)
            total.unsupported_reasons.update(part.unsupported_reasons)
            total.stopped = total.stopped or part.stopped
        merged.append(total)
    return merged


def _smallest_findings(findings: list[Finding]) -> list[Finding]:
    """One finding per variant and kind, as one job reports (several jobs may each find and
    shrink the same bug): the smallest case — fewest parameters, elements, steps."""
    def size(f: Finding) -> tuple:
        if f.case is None:
            return (math.inf,)
        problem = f.case.problem
        return (len(problem.params), sum(p.size for p in problem.params), problem.steps,
                len(problem.groups), f.case.id)

    best: dict[tuple, Finding] = {}
    for f in findings:
        key = (f.variant.id if f.variant is not None else "", f.kind)
        if key not in best or size(f) < size(best[key]):
            best[key] = f
    return list(best.values())


def start_jobs(target: Callable, args: FuzzSettings, variants: list, jobs: int,
               max_examples: int, seed: int | None, deadline: float | None) -> list:
    """Start the fuzzing processes, each running ``target`` (:func:`.fuzz.fuzz_job`):
    ([(process, connection)], the stop event); the work starts at once."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    shares = _shares(max_examples, jobs)  # of each variant's examples
    stop = context.Event()
    started = []
    for job in range(jobs):
        here, there = context.Pipe(duplex=False)
        proc = context.Process(
            target=target, name=f"adamconf-fuzz-{job}", daemon=True,
            args=(args, job, [v.id for v in variants], shares[job], seed, deadline,
                  os.getpid(), there, stop))
        _start_without_main(proc)
        there.close()
        started.append((proc, here))
    return started, stop


def _start_without_main(proc) -> None:
    """Start a spawned process without it importing the caller's ``__main__``: a job needs
    nothing of it, and a script that calls ``adamconf.fuzz`` without an
    ``if __name__ == "__main__"`` guard would otherwise run again in every job."""
    import types

    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        proc.start()
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def gather_jobs(started: list, stop, variants: list, stream: TextIO | None,
                results: FuzzResults) -> None:
    """Wait for every job, showing the sum of their progress; merge what they found. On
    Ctrl-C the jobs are told to stop (before their next example) and send what they did;
    one that has not within 15 s is killed."""
    progress = ProgressLine(stream)
    by_job: dict[int, tuple[list, list]] = {}
    failures: list[str] = []
    with CtrlC(stop, stream):
        _wait_for_jobs(started, stop, variants, progress, by_job, failures)
    progress.done()
    per_job = [by_job[j][0] for j in sorted(by_job)]
    results.stats.extend(_merge_stats(per_job, variants))
    results.findings.extend(_smallest_findings(
        [f for j in sorted(by_job) for f in by_job[j][1]]))
    if not stop.is_set():  # a job stopped by Ctrl-C is not a failure of the backend
        for message in failures:
            results.findings.append(Finding("error", None, f"a fuzzing job failed: {message}",
                                            variant=variants[0]))
    if stop.is_set() or any(s.stopped == "interrupted" for s in results.stats):
        results.interrupted = True


def _wait_for_jobs(started: list, stop, variants: list, progress: ProgressLine,
                   by_job: dict, failures: list[str]) -> None:
    """Read the jobs' messages until every job has ended (or, 15 s after a stop, kill)."""
    from multiprocessing.connection import wait

    begun = time.perf_counter()
    latest: dict[int, tuple[str, dict, int]] = {}
    open_conns = {conn: job for job, (_, conn) in enumerate(started)}
    give_up = math.inf
    while open_conns:
        if stop.is_set() and give_up == math.inf:
            give_up = time.monotonic() + 15
        if time.monotonic() > give_up:
            for job in open_conns.values():
                started[job][0].kill()
                failures.append(f"job {job} did not stop within 15 s of Ctrl-C; killed")
            return
        for conn in wait(list(open_conns), timeout=0.5):
            job = open_conns[conn]
            try:
                message = conn.recv()
            except (EOFError, OSError):
                del open_conns[conn]
                if job not in by_job:
                    failures.append(f"job {job} ended without a result (exit code "
                                    f"{started[job][0].exitcode})")
                continue
            if message[0] == "progress":
                latest[job] = (message[2], message[3], message[4])
                progress.update(_progress_sum(latest, variants), begun)
            elif message[0] == "done":
                by_job[job] = (message[2], message[3])
            else:
                failures.append(f"job {job}: {message[2]}")


def _progress_sum(latest: dict[int, tuple[str, dict, int]], variants: list) -> FuzzStats:
    """What the progress line shows: every job's latest counts added up, under the variant
    the furthest job is on."""
    ids = [v.id for v in variants]
    furthest = max((ids.index(v) for v, _, _ in latest.values() if v in ids), default=0)
    shown = FuzzStats(variants[furthest])
    for _, counts, shrink in latest.values():
        shown.counts.update(counts)
        shown.shrink_runs += shrink
    return shown
