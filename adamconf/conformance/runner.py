"""The runner: cases × variants through a backend in its own subprocess, judged by the bound.

The backend lives in a worker process (``spawn``), so a segfault, an abort or a hang in a
framework becomes an ``error`` result for that case and the run goes on with a fresh
worker. The parent holds the reference and does all judging.
"""

from __future__ import annotations

import multiprocessing
import os
import shlex
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..adapters.base import (
    BackendInfo,
    CaseSetup,
    GroupSetup,
    Hyperparameters,
    ResumeState,
    UnsupportedFeature,
    Variant,
)
from ..reference.dialects import DIALECTS, SPEC, Dialect
from ..reference.engine import run_float64, run_reference
from ..reference.problem import Problem, Trajectory
from .cases import Case
from .golden import GoldenCase

__all__ = ["CaseResult", "ValidationResult", "RunResult", "Observed",
           "BackendProcess", "select_variants", "plan", "run", "identify_dialects",
           "INVALID_HYPERPARAMETERS", "STATUSES", "case_setup"]

STATUSES = ("pass", "fail", "inconclusive", "unsupported", "error")
DEFAULT_TIMEOUT = 300.0
RECYCLE_AFTER = 200  # requests served by one worker before a fresh one takes over

# The documented errors: (parameter, value, keyword arguments for construct)
_DEFAULTS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
INVALID_HYPERPARAMETERS: list[tuple[str, str, dict]] = [
    ("lr", "-0.001", {"lr": -1e-3}),
    ("lr", "'0.01' (a str)", {"lr": "0.01"}),
    ("eps", "-1e-08", {"eps": -1e-8}),
    ("betas[0]", "-0.1", {"betas": (-0.1, 0.999)}),
    ("betas[0]", "1.0", {"betas": (1.0, 0.999)}),
    ("betas[1]", "1.0", {"betas": (0.9, 1.0)}),
    ("betas[1]", "-0.5", {"betas": (0.9, -0.5)}),
    ("weight_decay", "-0.01", {"weight_decay": -0.01}),
]


@dataclass
class Observed:
    """A backend's trajectory: θ per step, and the state where the backend exposes it."""

    theta: list[np.ndarray]
    m: list[np.ndarray] | None = None
    v: list[np.ndarray] | None = None
    vmax: list[np.ndarray] | None = None
    vmax_kind: str = "hat"


@dataclass
class CaseResult:
    case_id: str
    variant: Variant
    status: str
    message: str = ""
    verdict: object | None = None  # adamconf.conformance.verdict.Verdict
    dialects: list[str] | None = None  # the dialects this trajectory conforms to instead
    seconds: float = 0.0
    tags: tuple[str, ...] = ()
    repro: str = ""

    def to_json(self) -> dict:
        return {"case": self.case_id, "variant": self.variant.to_json(), "status": self.status,
                "message": self.message, "tags": list(self.tags),
                "verdict": self.verdict.to_json() if self.verdict is not None else None,
                "dialects": self.dialects, "seconds": round(self.seconds, 4),
                "repro": self.repro}


@dataclass
class ValidationResult:
    """Whether constructing the optimizer with a documented-invalid value raised ValueError."""

    variant: str
    device: str
    parameter: str
    value: str
    raised: str | None  # the exception's type and message, or None
    ok: bool

    def to_json(self) -> dict:
        return dict(self.__dict__)


@dataclass
class RunResult:
    backend: str
    info: BackendInfo | None
    results: list[CaseResult] = field(default_factory=list)
    validation: list[ValidationResult] = field(default_factory=list)
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for r in self.results:
            out[r.status] += 1
        return out

    @property
    def conforms(self) -> bool:
        counts = self.counts()
        return counts["fail"] == 0 and counts["error"] == 0 and all(
            v.ok for v in self.validation)


# --- the worker process -------------------------------------------------------------------

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


def _drive(backend, problem: CaseSetup, variant: Variant) -> dict:
    session = backend.open(problem, variant)
    steps = problem.steps
    thetas = [np.empty((steps,) + p.shape) for p in problem.params]
    state_arrays: dict[str, list[np.ndarray] | None] = {}
    vmax_kind = "hat"
    for k in range(steps):
        lrs = [g.lr_at(k) for g in problem.groups]
        session.step([g[k] for g in problem.grads], lrs)
        for out, value in zip(thetas, session.params()):
            out[k] = value
        state = session.state()
        if state is None:
            continue
        vmax_kind = state.vmax_kind
        for name in ("m", "v", "vmax"):
            values = getattr(state, name)
            if values is None:
                state_arrays[name] = None
                continue
            if k == 0:
                state_arrays[name] = [np.empty((steps,) + p.shape) for p in problem.params]
            if state_arrays.get(name) is not None:
                for out, value in zip(state_arrays[name], values):
                    out[k] = value
    return {"theta": thetas, "m": state_arrays.get("m"), "v": state_arrays.get("v"),
            "vmax": state_arrays.get("vmax"), "vmax_kind": vmax_kind}


def _worker_main(conn, spec: str) -> None:  # runs in the subprocess
    from ..adapters.registry import load_backend

    try:
        backend = load_backend(spec)
        backend.probe()  # a restarted worker knows what its backend refuses, as the first did
        load_error = None
    except Exception as exc:
        backend, load_error = None, f"{type(exc).__name__}: {exc}"
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        kind = request[0]
        if kind == "stop":
            return
        if backend is None:
            conn.send(("error", f"could not load backend {spec!r}: {load_error}", ""))
            continue
        try:
            if kind == "probe":
                conn.send(("ok", backend.probe()))
            elif kind == "run":
                _, problem, variant = request
                conn.send(("ok", _drive(backend, problem, variant)))
            elif kind == "construct":
                _, variant, kwargs = request
                backend.construct(variant, **kwargs)
                conn.send(("ok", None))
        except UnsupportedFeature as exc:
            conn.send(("unsupported", str(exc), ""))
        except Exception as exc:
            conn.send(("raised", f"{type(exc).__name__}: {exc}", traceback.format_exc(),
                       type(exc).__name__))


class BackendProcess:
    """A backend in a subprocess; restarted after a crash or a timeout."""

    def __init__(self, spec: str, timeout: float = DEFAULT_TIMEOUT,
                 recycle_after: int = RECYCLE_AFTER) -> None:
        self.spec, self.timeout, self.recycle_after = spec, timeout, recycle_after
        self._ctx = multiprocessing.get_context("spawn")
        self._process = None
        self._conn = None
        self._served = 0

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._process = self._ctx.Process(target=_worker_main, args=(child, self.spec),
                                          daemon=True, name=f"adamconf-{self.spec}")
        self._process.start()
        child.close()
        self._conn = parent

    def _kill(self) -> None:
        started = self._process is not None and self._process.pid is not None
        if started and self._process.is_alive():
            self._process.kill()
        if started:
            self._process.join(5)
        self._process, self._conn = None, None

    def request(self, *message, timeout: float | None = None) -> tuple:
        """Send a request; the reply, or ('error', why, '') after a crash or a timeout."""
        if self._process is not None and self._served >= self.recycle_after:
            self.close()  # frameworks that compile a graph per optimizer only ever grow
        if self._process is None or not self._process.is_alive():
            self._start()
            self._served = 0
        self._served += 1
        timeout = self.timeout if timeout is None else timeout
        try:
            self._conn.send(message)
            if not self._conn.poll(timeout):
                self._kill()
                return ("error", f"timed out after {timeout:g} s (the backend process was "
                        "killed; raise --timeout if the case is just slow)", "")
            return self._conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            if self._process is not None:
                self._process.join(5)  # reap it, or its exit code is not known yet
            code = self._process.exitcode if self._process is not None else None
            self._kill()
            how = f"exit code {code}" if code is None or code >= 0 else _signal_name(-code)
            return ("error", f"the backend process died ({how}) while running this", "")

    def close(self) -> None:
        if self._process is not None and self._process.is_alive():
            try:
                self._conn.send(("stop",))
                self._process.join(5)
            except (OSError, BrokenPipeError):
                pass
        self._kill()

    def __enter__(self) -> BackendProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _signal_name(number: int) -> str:
    import signal

    try:
        return f"signal {signal.Signals(number).name}"
    except ValueError:
        return f"signal {number}"


# --- planning -----------------------------------------------------------------------------

def select_variants(info: BackendInfo, *, names: Sequence[str] = (), devices: Sequence[str] = (),
                    dtypes: Sequence[str] = ()) -> list[Variant]:
    """The backend's variants filtered by name, device and dtype; ValueError names the valid."""
    for label, wanted, valid in (
            ("variant", names, sorted({v.name for v in info.variants})),
            ("device", devices, sorted({v.device for v in info.variants})),
            ("dtype", dtypes, sorted({v.dtype for v in info.variants}))):
        unknown = [w for w in wanted if w not in valid]
        if unknown:
            raise ValueError(f"unknown {label} {', '.join(map(repr, unknown))} for backend "
                             f"{info.name}; valid: {', '.join(valid) or '(none)'}")
    return [v for v in info.variants
            if (not names or v.name in names) and (not devices or v.device in devices)
            and (not dtypes or v.dtype in dtypes)]


def plan(corpus: Sequence[GoldenCase], variants: Sequence[Variant],
         shard: tuple[int, int] | None = None) -> list[tuple[GoldenCase, Variant]]:
    """Every (case, variant) whose dtype the case's inputs are exact in, then the shard."""
    tasks = [(g, v) for v in variants for g in corpus if v.dtype in g.case.dtypes]
    if shard is not None:
        index, count = shard
        tasks = tasks[index - 1::count]
    return tasks


# --- judging ------------------------------------------------------------------------------

_dialect_cache: dict[tuple[str, str, str], Trajectory] = {}


def dialect_reference(case: Case, dialect: Dialect, dtype: str = "float64") -> Trajectory:
    """The dialect's trajectory, accurate enough to judge an implementation in ``dtype``.

    For float64 that is the mpmath reference. For narrower dtypes the float64 evaluation
    of the same formula is used: its own error is about 2^-29 of float32's bound (and less
    of float16's), so it cannot move a verdict, and it is a hundred times faster — which is
    what makes naming the dialect of every failing case affordable.
    """
    kind = "exact" if dtype == "float64" else "float64"
    key = (case.id, dialect.name, kind)
    if key not in _dialect_cache:
        _dialect_cache[key] = (run_reference(case.problem, dialect, certify=False)
                               if kind == "exact" else run_float64(case.problem, dialect))
    return _dialect_cache[key]


_BOUNDS_CACHE_SIZE = 4096
_bounds_cache: OrderedDict[tuple, tuple] = OrderedDict()


def cached_bounds(problem: Problem, reference: Trajectory, dtype: str, dialect: Dialect):
    """The (flush, gradual) bounds pair for ``judge``, computed once per problem, reference,
    dtype and dialect: every variant of a backend in one dtype shares them.

    Keyed by the objects' identity (the entry holds them, so an id cannot be reused while
    it is cached); least recently used entries are dropped past a few thousand.
    """
    from .tolerance import error_bounds

    key = (id(problem), id(reference), dtype, dialect.name)
    entry = _bounds_cache.get(key)
    if entry is None:
        flush = error_bounds(problem, reference, dtype, dialect, underflow="flush")
        entry = [problem, reference, flush, None]
        _bounds_cache[key] = entry
        if len(_bounds_cache) > _BOUNDS_CACHE_SIZE:
            _bounds_cache.popitem(last=False)
    else:
        _bounds_cache.move_to_end(key)

    def gradual():
        if entry[3] is None:
            entry[3] = error_bounds(problem, reference, dtype, dialect, underflow="gradual")
        return entry[3]

    return entry[2], gradual


def candidate_dialects(problem: Problem) -> list[Dialect]:
    return [d for d in DIALECTS.values() if d is not SPEC and any(
        d.can_differ(g.config.amsgrad, g.config.maximize, g.config.weight_decay)
        for g in problem.groups)]


def identify_dialects(case: Case, observed: Observed, dtype: str) -> list[str]:
    """The dialects whose own reference and bound this trajectory passes."""
    from .verdict import judge

    amsgrad = any(g.config.amsgrad for g in case.problem.groups)
    matches = []
    for dialect in candidate_dialects(case.problem):
        if amsgrad and observed.vmax is not None and dialect.vmax_kind != observed.vmax_kind:
            # the backend's v̂max state means something else than this dialect's: it cannot
            # confirm the dialect, and passing on θ alone would name it on half the evidence
            continue
        reference = dialect_reference(case, dialect, dtype)
        verdict = judge(case.problem, reference, observed, dtype, dialect=dialect,
                        bounds=cached_bounds(case.problem, reference, dtype, dialect))
        if verdict.status == "pass":
            matches.append(dialect.name)
    return matches


def repro_command(backend: str, case_id: str, variant: Variant) -> str:
    return (f"adamconf run --backend {shlex.quote(backend)} --variant {shlex.quote(variant.name)} "
            f"--device {shlex.quote(variant.device)} --dtype {variant.dtype} "
            f"--case {shlex.quote(case_id)}")


def judge_case(golden: GoldenCase, variant: Variant, observed: Observed, backend: str,
               identify: bool = True) -> CaseResult:
    from .verdict import judge

    verdict = judge(golden.case.problem, golden.reference, observed, variant.dtype,
                    bounds=cached_bounds(golden.case.problem, golden.reference, variant.dtype,
                                         SPEC))
    result = CaseResult(golden.id, variant, verdict.status, verdict=verdict,
                        tags=golden.case.tags, repro=repro_command(backend, golden.id, variant))
    if verdict.status == "fail":
        result.message = verdict.describe(golden.id, variant.id)
        if identify:
            result.dialects = identify_dialects(golden.case, observed, variant.dtype)
    elif verdict.status == "inconclusive":
        result.message = "; ".join(verdict.inconclusive_reasons)
    return result


def _observed(payload: dict) -> Observed:
    return Observed(payload["theta"], payload.get("m"), payload.get("v"), payload.get("vmax"),
                    payload.get("vmax_kind", "hat"))


def check_validation(process: BackendProcess, variants: Sequence[Variant]
                     ) -> list[ValidationResult]:
    """Each documented invalid value, once per (variant name, device): must raise ValueError."""
    seen, out = set(), []
    for variant in variants:
        key = (variant.name, variant.device)
        if key in seen:
            continue
        seen.add(key)
        for parameter, shown, override in INVALID_HYPERPARAMETERS:
            kwargs = {**_DEFAULTS, **override, "amsgrad": False, "maximize": False}
            reply = process.request("construct", variant, kwargs, timeout=120)
            if reply[0] == "raised":
                ok = reply[3] == "ValueError"
                out.append(ValidationResult(variant.name, variant.device, parameter, shown,
                                            reply[1], ok))
            elif reply[0] == "unsupported":
                continue
            else:
                raised = None if reply[0] == "ok" else reply[1]
                out.append(ValidationResult(variant.name, variant.device, parameter, shown,
                                            raised, False))
    return out


def run(spec: str, corpus: Sequence[GoldenCase], *, variants: Sequence[Variant],
        info: BackendInfo | None = None, shard: tuple[int, int] | None = None,
        timeout: float = DEFAULT_TIMEOUT, validate: bool = True, identify: bool = True,
        process: BackendProcess | None = None,
        on_result: Callable[[int, int, CaseResult], None] | None = None) -> RunResult:
    """Run every planned (case, variant) through the backend; judge each; never raise for one."""
    started = time.perf_counter()
    tasks = plan(corpus, variants, shard)
    name = info.name if info is not None else spec
    outcome = RunResult(name, info, settings={"shard": shard, "timeout": timeout,
                                              "pid": os.getpid()})
    own = process is None
    process = process or BackendProcess(spec, timeout)
    try:
        if validate:
            outcome.validation = check_validation(process, variants)
        for n, (golden, variant) in enumerate(tasks, 1):
            t0 = time.perf_counter()
            reply = process.request("run", case_setup(golden.case.problem), variant)
            repro = repro_command(spec, golden.id, variant)
            if reply[0] == "ok":
                try:
                    result = judge_case(golden, variant, _observed(reply[1]), spec, identify)
                except Exception as exc:  # a malformed trajectory is the backend's error
                    result = CaseResult(golden.id, variant, "error",
                                        f"could not judge the backend's output: "
                                        f"{type(exc).__name__}: {exc}", tags=golden.case.tags,
                                        repro=repro)
            elif reply[0] == "unsupported":
                result = CaseResult(golden.id, variant, "unsupported", reply[1],
                                    tags=golden.case.tags, repro=repro)
            else:
                result = CaseResult(golden.id, variant, "error", reply[1],
                                    tags=golden.case.tags, repro=repro)
            result.seconds = time.perf_counter() - t0
            outcome.results.append(result)
            if on_result is not None:
                on_result(n, len(tasks), result)
    finally:
        if own:
            process.close()
    outcome.seconds = time.perf_counter() - started
    return outcome


def variant_dialects(results: Sequence[CaseResult]) -> list[str] | None:
    """The fewest dialects that explain every failure: each failing case conforms to one.

    None when nothing failed; [] when some failing case conforms to no known dialect.
    Chosen greedily (the dialect explaining most unexplained failures first; ties by the
    catalogue's order),
    so MindSpore's mix of plain and amsgrad cases reads "eps-hat, ams-ignored+eps-hat".
    """
    failing = [set(r.dialects or ()) for r in results if r.status == "fail"]
    if not failing:
        return None
    if any(not names for names in failing):
        return []
    chosen: list[str] = []
    left = failing
    while left:
        counts: dict[str, int] = {}
        for names in left:
            for name in names:
                counts[name] = counts.get(name, 0) + 1
        order = list(DIALECTS)  # ties go to the catalogue's order: the simplest dialect first
        best = min(counts, key=lambda name: (-counts[name], order.index(name)
                                             if name in order else len(order), name))
        chosen.append(best)
        left = [names for names in left if best not in names]
    return chosen


def dialect_label(results: Sequence[CaseResult]) -> str:
    """What a variant implements, in words: '' (nothing failed), the dialects that explain
    every failure, or those that explain some and how many failures match none."""
    if variant_dialects(results) is None:
        return ""
    failing = [r for r in results if r.status == "fail"]
    unexplained = [r for r in failing if not r.dialects]
    cover = variant_dialects([r for r in failing if r.dialects]) or []
    if not unexplained:
        return ", ".join(cover)
    n = len(unexplained)
    tail = f"{n} failing case{'s match' if n > 1 else ' matches'} no known dialect"
    return f"{', '.join(cover)}; {tail}" if cover else tail
