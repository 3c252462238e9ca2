"""The worker: one backend in its own process, stepped by requests from the parent.

The backend lives in a worker process (``spawn``), so a segfault, an abort or a hang in a
framework becomes an ``error`` reply and the run goes on with a fresh worker. The worker
imports only the adapter layer and numpy — never the reference or the judge — so it can
run in another Python environment, and the implementation under test never sees the spec.
"""

from __future__ import annotations

import multiprocessing
import traceback
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from adamconf.adapters.base import CaseSetup, UnsupportedFeature, Variant

__all__ = ["BackendProcess", "InProcessBackend", "Reply", "ReplyKind", "DEFAULT_TIMEOUT",
           "RECYCLE_AFTER"]

DEFAULT_TIMEOUT = 300.0
RECYCLE_AFTER = 200  # requests served by one worker before a fresh one takes over


class ReplyKind(str, Enum):
    OK = "ok"                    # value: the result (BackendInfo, a trajectory dict, None)
    UNSUPPORTED = "unsupported"  # message: the backend's reason
    RAISED = "raised"            # the backend raised: message, traceback, exception type
    ERROR = "error"              # the worker died, timed out or could not load the backend

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Reply:
    """What the worker answered to one request."""

    kind: ReplyKind
    value: Any = None
    message: str = ""
    traceback: str = ""
    exception_type: str = ""

    @property
    def ok(self) -> bool:
        return self.kind is ReplyKind.OK


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


def _answer(backend, request: tuple) -> Reply:
    kind = request[0]
    try:
        if kind == "probe":
            return Reply(ReplyKind.OK, backend.probe())
        if kind == "run":
            _, problem, variant = request
            return Reply(ReplyKind.OK, _drive(backend, problem, variant))
        if kind == "construct":
            _, variant, kwargs = request
            backend.construct(variant, **kwargs)
            return Reply(ReplyKind.OK)
        return Reply(ReplyKind.ERROR, message=f"unknown request {kind!r}")
    except UnsupportedFeature as exc:
        return Reply(ReplyKind.UNSUPPORTED, message=str(exc))
    except Exception as exc:
        return Reply(ReplyKind.RAISED, message=f"{type(exc).__name__}: {exc}",
                     traceback=traceback.format_exc(), exception_type=type(exc).__name__)


def _worker_main(conn, spec: str) -> None:  # runs in the subprocess
    from adamconf.conformance.harness.registry import load_backend

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
        if request[0] == "stop":
            return
        if backend is None:
            conn.send(Reply(ReplyKind.ERROR,
                            message=f"could not load backend {spec!r}: {load_error}"))
            continue
        conn.send(_answer(backend, request))


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

    def request(self, *message, timeout: float | None = None) -> Reply:
        """Send a request; the reply, or an ERROR reply after a crash or a timeout."""
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
                return Reply(ReplyKind.ERROR, message=f"timed out after {timeout:g} s (the "
                             "backend process was killed; raise --timeout if the case is "
                             "just slow)")
            return self._conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            if self._process is not None:
                self._process.join(5)  # reap it, or its exit code is not known yet
            code = self._process.exitcode if self._process is not None else None
            self._kill()
            how = f"exit code {code}" if code is None or code >= 0 else _signal_name(-code)
            return Reply(ReplyKind.ERROR,
                         message=f"the backend process died ({how}) while running this")

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


class InProcessBackend:
    """A backend object answered in this process, with BackendProcess's interface: no crash
    isolation and no timeout, but breakpoints and tracebacks work (for debugging an Adam)."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.timeout = None

    def request(self, *message, timeout: float | None = None) -> Reply:
        return _answer(self.backend, message)

    def close(self) -> None:
        pass

    def __enter__(self) -> InProcessBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
