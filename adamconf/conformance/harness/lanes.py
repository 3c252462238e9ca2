"""Lanes: the plan's tasks through a worker, pipelined (one lane), or slices of the plan in
processes of their own, each with its worker (parallel lanes).

Judging is CPU work in Python (bounds, verdicts, dialects), so parallel judging needs
processes. A lane gets whole (case, dtype) groups, so the bounds it computes for a case
serve every variant of that dtype; the parent puts the results back in the plan's order.
A lane ends within a second of the parent's death, and its worker with it.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import shlex
import time
from collections.abc import Callable, Sequence

from adamconf.adapters.base import (
    CaseSetup,
    GroupSetup,
    Hyperparameters,
    ResumeState,
    Variant,
)
from adamconf.conformance.corpus.golden import GoldenCase
from adamconf.conformance.harness.worker import ReplyKind
from adamconf.conformance.judge.case import judge_case
from adamconf.conformance.judge.outcome import CaseResult, Observed, Status
from adamconf.reference.problem import Problem

__all__ = ["run_lane", "run_parallel", "default_jobs", "case_setup", "result_of",
           "repro_command"]

_LANE: dict = {}


def repro_command(backend: str, case_id: str, variant: Variant,
                  options: dict[str, str] | None = None, declared: dict | None = None) -> str:
    extra = "".join(f" --option {shlex.quote(f'{k}={v}')}" for k, v in (options or {}).items())
    declared = declared or {}
    if declared.get("state") and declared["state"] != "auto":
        extra += f" --state {declared['state']}"
    extra += "".join(f" --feature {k}={v}" for k, v in (declared.get("features") or {}).items())
    return (f"adamconf run --backend {shlex.quote(backend)} --variant {shlex.quote(variant.name)} "
            f"--device {shlex.quote(variant.device)} --dtype {variant.dtype} "
            f"--case {shlex.quote(case_id)}{extra}")


def case_setup(problem: Problem) -> CaseSetup:
    """The plain data a backend is handed for ``problem`` (no spec code crosses the seam)."""
    state = problem.initial_state
    return CaseSetup(
        groups=tuple(GroupSetup(Hyperparameters(g.config.lr, g.config.betas, g.config.eps,
                                                g.config.weight_decay, g.config.amsgrad,
                                                g.config.maximize), g.params, g.lrs)
                     for g in problem.groups),
        grads=problem.grads,
        initial_state=None if state is None else ResumeState(state.step, state.m, state.v,
                                                             state.vmax))


def result_of(golden: GoldenCase, variant: Variant, reply, *, repro: str = "",
              identify: bool = True) -> CaseResult:
    """The CaseResult for the worker's reply to a ``run`` request."""
    if reply.kind is ReplyKind.OK:
        try:
            return judge_case(golden, variant, Observed.from_payload(reply.value), repro=repro,
                              identify=identify)
        except Exception as exc:  # a malformed trajectory is the backend's error
            return CaseResult(golden.id, variant, Status.ERROR, "could not judge the backend's "
                              f"output: {type(exc).__name__}: {exc}", tags=golden.case.tags,
                              repro=repro)
    status = Status.UNSUPPORTED if reply.kind is ReplyKind.UNSUPPORTED else Status.ERROR
    return CaseResult(golden.id, variant, status, reply.message, tags=golden.case.tags,
                      repro=repro)


def run_lane(process, spec: str, tasks: Sequence[tuple[GoldenCase, Variant]], *,
             identify: bool = True, on_result=None, done: int = 0, total: int | None = None,
             pipelined: bool = True) -> list[CaseResult]:
    """The tasks one after another through one worker, pipelined: the next request is in the
    worker while this process judges the last reply (``pipelined=False``: each request
    waits for the last judgement, as the runner of 0.1 did; the benchmark's peer)."""
    results: list[CaseResult] = []
    total = len(tasks) if total is None else total

    def send(k: int):
        golden, variant = tasks[k]
        return process.send("run", case_setup(golden.case.problem), variant), time.perf_counter()

    in_flight = send(0) if tasks else None
    for k, (golden, variant) in enumerate(tasks):
        failed, t0 = in_flight
        reply = failed if failed is not None else process.receive()
        waited = time.perf_counter() - t0
        if pipelined:
            in_flight = send(k + 1) if k + 1 < len(tasks) else None
        t1 = time.perf_counter()
        result = result_of(golden, variant, reply, identify=identify,
                           repro=repro_command(spec, golden.id, variant,
                                               getattr(process, "options", None),
                                               getattr(process, "declared", None)))
        result.seconds = waited + time.perf_counter() - t1
        if not pipelined:
            in_flight = send(k + 1) if k + 1 < len(tasks) else None
        results.append(result)
        if on_result is not None:
            on_result(done + len(results), total, result)
    return results


def default_jobs() -> int:
    """The machine's cores (those this process may run on)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:
        return max(os.cpu_count() or 1, 1)


def _lane_init(spec: str, timeout: float, python: str, options: dict, declared: dict,
               parent: int) -> None:
    from adamconf.conformance.harness.worker import BackendProcess, watch_parent

    watch_parent(parent)
    _LANE["process"] = BackendProcess(spec, timeout, python=python, options=options,
                                      declared=declared)
    _LANE["spec"] = spec


def _lane_run(tasks: list[tuple[GoldenCase, Variant]], identify: bool) -> list[CaseResult]:
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
                 declared: dict | None = None,
                 on_result: Callable[[int, int, CaseResult], None] | None = None
                 ) -> list[CaseResult]:
    chunks = _chunks(_groups(tasks), jobs)
    results: list[CaseResult | None] = [None] * len(tasks)
    done = 0
    context = multiprocessing.get_context("spawn")
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=min(jobs, len(chunks)), mp_context=context, initializer=_lane_init,
        initargs=(spec, timeout, python, dict(options or {}), dict(declared or {}),
                  os.getpid()))
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
