"""Parallel lanes: slices of a run's plan in processes of their own, each with its worker.

Judging is CPU work in Python (bounds, verdicts, dialects), so parallel judging needs
processes. A lane gets whole (case, dtype) groups, so the bounds it computes for a case
serve every variant of that dtype; the parent puts the results back in the plan's order.
A lane ends within a second of the parent's death, and its worker with it.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Callable, Sequence

from adamconf.adapters.base import Variant
from adamconf.conformance.corpus.golden import GoldenCase
from adamconf.conformance.judge.outcome import CaseResult

__all__ = ["run_parallel", "default_jobs"]

_LANE: dict = {}


def default_jobs() -> int:
    """The machine's cores (those this process may run on)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:
        return max(os.cpu_count() or 1, 1)


def _lane_init(spec: str, timeout: float, python: str, options: dict, parent: int) -> None:
    from adamconf.conformance.harness.worker import BackendProcess, watch_parent

    watch_parent(parent)
    _LANE["process"] = BackendProcess(spec, timeout, python=python, options=options)
    _LANE["spec"] = spec


def _lane_run(tasks: list[tuple[GoldenCase, Variant]], identify: bool) -> list[CaseResult]:
    from adamconf.conformance.harness.runner import run_lane

    return run_lane(_LANE["process"], _LANE["spec"], tasks, identify=identify)


def _groups(tasks: Sequence[tuple[GoldenCase, Variant]]) -> list[list[int]]:
    """Task indices grouped by (case, dtype), in the order the groups first appear."""
    groups: dict[tuple[str, str], list[int]] = {}
    for index, (golden, variant) in enumerate(tasks):
        groups.setdefault((golden.id, variant.dtype), []).append(index)
    return list(groups.values())


def _chunks(groups: list[list[int]], jobs: int) -> list[list[int]]:
    """About eight chunks a lane (so the lanes finish together), each of whole groups."""
    size = max(1, sum(map(len, groups)) // (jobs * 8))
    chunks, current = [], []
    for group in groups:
        current.extend(group)
        if len(current) >= size:
            chunks.append(current)
            current = []
    if current:
        chunks.append(current)
    return chunks


def run_parallel(spec: str, tasks: Sequence[tuple[GoldenCase, Variant]], *, jobs: int,
                 timeout: float, identify: bool, python: str, options: dict | None = None,
                 on_result: Callable[[int, int, CaseResult], None] | None = None
                 ) -> list[CaseResult]:
    chunks = _chunks(_groups(tasks), jobs)
    results: list[CaseResult | None] = [None] * len(tasks)
    done = 0
    context = multiprocessing.get_context("spawn")
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=min(jobs, len(chunks)), mp_context=context, initializer=_lane_init,
        initargs=(spec, timeout, python, dict(options or {}), os.getpid()))
    try:
        futures = {pool.submit(_lane_run, [tasks[i] for i in chunk], identify): chunk
                   for chunk in chunks}
        for future in concurrent.futures.as_completed(futures):
            for index, result in zip(futures[future], future.result()):
                results[index] = result
                done += 1
                if on_result is not None:
                    on_result(done, len(tasks), result)
    except BaseException:
        # Ctrl-C or a lane that died: queued slices are dropped; a running lane ends within
        # a second of this process (its parent) exiting, and its worker with it
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results  # type: ignore[return-value]
