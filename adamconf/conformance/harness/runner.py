"""The runner: cases × variants through a backend in its worker, each judged by the bound.

The parent holds the reference and does all judging; the worker (:mod:`.worker`) only
steps the backend's optimizer.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from adamconf.adapters.base import (
    BackendInfo,
    Variant,
)
from adamconf.conformance.corpus.golden import GoldenCase
from adamconf.conformance.errors import UsageError
from adamconf.conformance.harness.lanes import (
    case_setup,
    repro_command,
    result_of,
    run_lane,
    run_parallel,
)
from adamconf.conformance.harness.registry import (
    INSTALL_HINTS,
    UnknownBackend,
    known_backends,
    load_backend,
)
from adamconf.conformance.harness.worker import (
    DEFAULT_BUILD_TIMEOUT,
    DEFAULT_TIMEOUT,
    BackendProcess,
    ReplyKind,
)
from adamconf.conformance.judge.identify import identify_variants
from adamconf.conformance.judge.outcome import (
    CaseResult,
    RunResult,
    ValidationResult,
)
from adamconf.reference.config import DOCUMENTED_ERRORS

__all__ = ["case_setup", "probe_backend", "select_variants", "choose_variants", "plan", "run",
           "check_validation", "result_of", "repro_command"]

def probe_backend(spec: str, timeout: float = 180.0, *, require_installed: bool = True,
                  python: str | None = None, options: dict[str, str] | None = None,
                  declared: dict | None = None,
                  build_timeout: float = DEFAULT_BUILD_TIMEOUT,
                  notify: Callable[[str], None] | None = None,
                  meanwhile: Callable[[], Any] | None = None
                  ) -> tuple[BackendInfo, BackendProcess]:
    """Start the backend's worker and probe it: (info, the running worker).

    ``meanwhile`` is called while the worker starts (it imports its framework on another
    core): loading the corpus there costs a run nothing. ``declared``: a generic backend's
    ``state`` mode and ``features``. A first-use build (DeepSpeed's kernel) runs as the worker
    starts, within ``build_timeout``, and ``notify`` gets a line when it starts and ends. A
    UsageError names the fix: an unknown name, a bad 'module:factory', an option the
    constructor does not take, a worker that cannot start, a framework that is not installed.
    """
    names = known_backends()
    if spec not in names and ":" not in spec:
        raise UsageError(f"unknown backend {spec!r}; known: {', '.join(sorted(names))}, or give "
                         "a third-party one as 'package.module:factory'")
    declared = {k: v for k, v in (declared or {}).items() if v}
    if (":" in spec or options or declared) and python is None:
        try:  # resolve here too, so a typo is one clear message and not a worker error
            load_backend(spec, options, **declared)
        except UnknownBackend as exc:
            raise UsageError(str(exc)) from None
    process = BackendProcess(spec, timeout, python=python, options=options, declared=declared,
                             build_timeout=build_timeout, notify=notify)
    failed = process.send("probe")
    if meanwhile is not None and failed is None:
        try:
            meanwhile()
        except BaseException:
            process.close()
            raise
    reply = failed if failed is not None else process.receive()
    hint = INSTALL_HINTS.get(spec, "")
    if reply.kind is ReplyKind.USAGE:
        process.close()
        raise UsageError(f"backend {spec!r}: {reply.message}")
    if not reply.ok:
        process.close()
        where = f" with {python}" if python else ""
        raise UsageError(f"backend {spec!r} could not start{where}: {reply.message}"
                         + (f"; to install it: {hint}" if hint else ""))
    info = reply.value
    if require_installed and not info.installed:
        process.close()
        raise UsageError(f"backend {spec!r} is not installed here: "
                         f"{info.install_hint or hint}")
    return info, process


def choose_variants(info: BackendInfo, spec: str, names: Sequence[str] = (),
                    devices: Sequence[str] = (), dtypes: Sequence[str] = (), *,
                    allow_none: bool = False) -> list[Variant]:
    """The backend's variants for a --variant/--device/--dtype choice; a UsageError names the
    valid ones. Where the choice holds only variants the backend refused, those: each of
    their cases is unsupported with the library's reason, and the run has no verdict (exit
    3, reports written) — a refusal is a verdict, not a usage error. Where the backend offers
    no variant at all and nothing was chosen: nothing with ``allow_none`` (a run of no case,
    with no verdict), else a UsageError with its reasons."""
    try:
        variants = select_variants(info, names=names, devices=devices, dtypes=dtypes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not variants and (names or devices or dtypes):
        raise UsageError(f"backend {spec!r} has no variant with that combination of "
                         f"--variant/--device/--dtype; 'adamconf backends -b {spec}' lists them")
    if not variants and not allow_none:
        reasons = "; ".join(f"{u.what}: {u.reason}" for u in info.unsupported)
        raise UsageError(f"backend {spec!r} offers no variant here"
                         + (f" ({reasons})" if reasons else ""))
    return variants


def select_variants(info: BackendInfo, *, names: Sequence[str] = (), devices: Sequence[str] = (),
                    dtypes: Sequence[str] = ()) -> list[Variant]:
    """The backend's variants filtered by name, device and dtype, or, where none it runs
    matches, the refused variants that do; ValueError names the valid values (of both)."""
    refused = [r.variant for r in getattr(info, "refused", ())]
    every = list(info.variants) + [v for v in refused if v not in info.variants]
    for label, wanted, valid in (
            ("variant", names, sorted({v.name for v in every})),
            ("device", devices, sorted({v.device for v in every})),
            ("dtype", dtypes, sorted({v.dtype for v in every}))):
        unknown = [w for w in wanted if w not in valid]
        if unknown:
            raise ValueError(f"unknown {label} {', '.join(map(repr, unknown))} for backend "
                             f"{info.name}; valid: {', '.join(valid) or '(none)'}")

    def chosen(variants: Sequence[Variant]) -> list[Variant]:
        return [v for v in variants
                if (not names or v.name in names) and (not devices or v.device in devices)
                and (not dtypes or v.dtype in dtypes)]

    return chosen(info.variants) or chosen(refused)


def plan(corpus: Sequence[GoldenCase], variants: Sequence[Variant],
         shard: tuple[int, int] | None = None) -> list[tuple[GoldenCase, Variant]]:
    """Every (case, variant) whose dtype the case's inputs are exact in, then the shard."""
    tasks = [(g, v) for v in variants for g in corpus if v.dtype in g.case.dtypes]
    if shard is not None:
        index, count = shard
        tasks = tasks[index - 1::count]
    return tasks


def check_validation(process: BackendProcess, variants: Sequence[Variant]
                     ) -> list[ValidationResult]:
    """Each documented invalid value (:data:`.config.DOCUMENTED_ERRORS`), once per (variant
    name, device): must raise ValueError."""
    seen, out = set(), []
    for variant in variants:
        key = (variant.name, variant.device)
        if key in seen:
            continue
        seen.add(key)
        for error in DOCUMENTED_ERRORS:
            parameter, shown = error.parameter, error.shown
            kwargs = {**error.hyperparameters, "amsgrad": False, "maximize": False}
            reply = process.request("construct", variant, kwargs, timeout=120)
            if reply.kind is ReplyKind.RAISED:
                ok = reply.value_error
                out.append(ValidationResult(variant.name, variant.device, parameter, shown,
                                            reply.message, ok))
            elif reply.kind is ReplyKind.UNSUPPORTED:
                continue
            else:
                raised = None if reply.ok else reply.message
                out.append(ValidationResult(variant.name, variant.device, parameter, shown,
                                            raised, False))
    return out


def run(spec: str, corpus: Sequence[GoldenCase], *, variants: Sequence[Variant],
        info: BackendInfo | None = None, shard: tuple[int, int] | None = None,
        timeout: float = DEFAULT_TIMEOUT, validate: bool = True, identify: bool = True,
        process: BackendProcess | None = None, min_judged: float = 0.0, jobs: int = 1,
        python: str | None = None,
        on_result: Callable[[int, int, CaseResult], None] | None = None) -> RunResult:
    """Run every planned (case, variant) through the backend; judge each; never raise for one.

    With ``jobs`` > 1, that many lanes (each a process with its own worker) run and judge
    slices of the plan in parallel; the results come back in the plan's order, the same
    as with one lane.
    """
    started = time.perf_counter()
    tasks = plan(corpus, variants, shard)
    name = info.name if info is not None else spec
    outcome = RunResult(name, info, settings={"shard": shard, "timeout": timeout,
                                              "min_judged": min_judged, "jobs": jobs,
                                              "pid": os.getpid()},
                        variants_selected=list(variants))
    own = process is None
    process = process or BackendProcess(spec, timeout, python=python)
    try:
        if validate:
            outcome.validation = check_validation(process, variants)
        parallel = jobs > 1 and len(tasks) > 1 and isinstance(process, BackendProcess)
        # with identify, the lanes keep each judged trajectory, and the variant's model is
        # searched over all its cases at once once they are back
        keep = "keep" if identify else False
        if parallel:
            if own:
                process.close()  # the lanes start their own workers
            outcome.results = run_parallel(spec, tasks, jobs=jobs, timeout=timeout,
                                           identify=keep, python=process.python,
                                           options=process.options, on_result=on_result)
        else:
            outcome.results = run_lane(process, spec, tasks, identify=keep,
                                       on_result=on_result)
        if identify:
            identify_started = time.perf_counter()
            identify_variants(outcome.results, {g.id: g for g, _ in tasks},
                              jobs=jobs if isinstance(process, BackendProcess) else 1)
            outcome.settings["identify_seconds"] = round(
                time.perf_counter() - identify_started, 3)
    finally:
        if own:
            process.close()
    outcome.seconds = time.perf_counter() - started
    return outcome
