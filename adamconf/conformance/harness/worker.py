"""The worker: one backend in its own process, stepped by requests from the parent.

The backend lives in a worker process (``spawn``), so a segfault, an abort or a hang in a
framework becomes an ``error`` reply and the run goes on with a fresh worker. The worker
imports only the adapter layer and numpy — never the reference or the judge — so it can
run in another Python environment, and the implementation under test never sees the spec.

A backend that builds something at first use (DeepSpeed compiles its CPU Adam kernel) builds
it as the worker starts, before its probe, in a phase of its own: the worker says what it
builds (a ``building`` message, before any reply), the parent waits for it within the build
budget (``build_timeout``), not the per-case timeout, and a build it stops (the budget spent,
Ctrl-C) is stopped with SIGTERM first, so that the build's own clean-up runs, and then has the
locks it held cleared where no process holds them any more: a stopped build never leaves a
lock that stalls the next run.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from adamconf.adapters.base import (
    BackendUsageError,
    CaseSetup,
    FirstUseBuild,
    UnsupportedFeature,
    Variant,
    error_reason,
)

__all__ = ["BackendProcess", "Reply", "ReplyKind", "DEFAULT_TIMEOUT",
           "DEFAULT_BUILD_TIMEOUT", "RECYCLE_AFTER", "RECYCLE_GROWTH", "RECYCLE_TOTAL"]

DEFAULT_TIMEOUT = 300.0
# a first-use build (DeepSpeed's CPU Adam: 2–4 minutes on two cores) gets its own budget
DEFAULT_BUILD_TIMEOUT = 900.0
# A worker is replaced once it has grown by this much since it was ready, or holds this
# much in all (frameworks that compile a graph per optimizer keep every graph); where its
# memory cannot be read, after RECYCLE_AFTER requests.
RECYCLE_GROWTH = 3 << 29  # 1.5 GiB
RECYCLE_TOTAL = 4 << 30
RECYCLE_AFTER = 1000


class ReplyKind(str, Enum):
    OK = "ok"                    # value: the result (BackendInfo, a trajectory dict, None)
    UNSUPPORTED = "unsupported"  # message: the backend's reason
    RAISED = "raised"            # the backend raised: message, traceback, exception type
    ERROR = "error"              # the worker died, timed out or could not load the backend
    USAGE = "usage"              # the backend cannot be given what the user asked (message)
    BUILDING = "building"        # not a reply: a first-use build starts (value: FirstUseBuild)
    BUILT = "built"              # not a reply: it ended (value: seconds; message: why it failed)

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
    value_error: bool = False  # the exception is a ValueError (or a subclass of it)
    rss: int | None = None  # the worker's resident set size after answering, in bytes
    rss_ready: int | None = None  # ... and when it had loaded and probed its backend

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


def answer(backend, request: tuple) -> Reply:
    """The reply to one request ("probe", "run", "construct"), as the worker sends it: a
    backend's refusal, usage error or exception is a reply, never raised."""
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
    except BackendUsageError as exc:
        return Reply(ReplyKind.USAGE, message=str(exc))
    except Exception as exc:
        return Reply(ReplyKind.RAISED, message=f"{type(exc).__name__}: {exc}",
                     traceback=traceback.format_exc(), exception_type=type(exc).__name__,
                     value_error=isinstance(exc, ValueError))


def watch_parent(parent_pid: int) -> None:
    """End this process within a second of its parent's death (a killed terminal, SIGTERM
    to the parent alone): a worker never outlives the run that started it."""
    import threading

    try:  # Linux: the kernel sends SIGKILL when the parent dies
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent_pid:
                os._exit(3)

    threading.Thread(target=watch, name="adamconf-parent-watch", daemon=True).start()


def first_use_build(backend, notify) -> None:
    """Build what the backend builds at first use, where it has something to build here,
    telling ``notify`` before (a BUILDING message) and after (BUILT). A failed build is the
    backend's to report (its probe says why); it is not raised here."""
    describe = getattr(backend, "first_use_build", None)
    if describe is None:
        return
    try:
        pending = describe()
    except Exception:  # what it cannot even describe, its probe reports
        return
    if not isinstance(pending, FirstUseBuild):
        return
    notify(Reply(ReplyKind.BUILDING, pending))
    started = time.monotonic()
    failed = ""
    try:
        backend.build()
    except Exception as exc:
        failed = error_reason(exc)
    notify(Reply(ReplyKind.BUILT, round(time.monotonic() - started, 1), message=failed))


def _serve(conn, spec: str, options: dict[str, str] | None = None,
           declared: dict | None = None) -> None:
    import dataclasses

    from adamconf.adapters.memory import rss_bytes
    from adamconf.conformance.harness.registry import load_backend

    usage = None
    try:
        backend = load_backend(spec, options, **(declared or {}))
        first_use_build(backend, conn.send)
        backend.probe()  # a restarted worker knows what its backend refuses, as the first did
        load_error = None
    except BackendUsageError as exc:
        backend, load_error, usage = None, str(exc), str(exc)
    except Exception as exc:
        backend, load_error = None, f"{type(exc).__name__}: {exc}"
    ready = rss_bytes()
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request[0] == "stop":
            return
        if usage is not None:
            conn.send(Reply(ReplyKind.USAGE, message=usage))
            continue
        if backend is None:
            conn.send(Reply(ReplyKind.ERROR,
                            message=f"could not load backend {spec!r}: {load_error}"))
            continue
        conn.send(dataclasses.replace(answer(backend, request), rss=rss_bytes(),
                                      rss_ready=ready))


def main(argv: list[str] | None = None) -> int:
    """``python -m adamconf.conformance.harness.worker --fd N --parent PID SPEC``."""
    import argparse
    from multiprocessing.connection import Connection

    parser = argparse.ArgumentParser(prog="adamconf-worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--options", default="{}", help="a JSON object of key=value options")
    parser.add_argument("--declared", default="{}",
                        help="a JSON object: a generic backend's state mode and features")
    parser.add_argument("spec")
    args = parser.parse_args(argv)
    watch_parent(args.parent)
    import signal

    # Ctrl-C reaches the whole process group; it is the parent's to handle: it stops the
    # run, reports what it has, and closes this worker (stop, then kill after 5 s)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM (the parent stopping a first-use build) unwinds: a build's own clean-up runs
    # (torch's extension builder removes its lock in a finally, and kills its compiler)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    extra = os.environ.get(_SYS_PATH_ENV)
    if extra:  # the parent's import path, so 'module:factory' resolves as it did there
        sys.path[:0] = [p for p in extra.split(os.pathsep) if p not in sys.path]
    _serve(Connection(args.fd), args.spec, json.loads(args.options) or None,
           json.loads(args.declared) or None)
    return 0


def _exit_on_sigterm(signum, frame) -> None:
    # a build's tool (ninja) first, so that it stops the compilers it runs: killed by the
    # unwinding below, it would leave them compiling, orphaned
    from adamconf.adapters.buildlock import stop_children

    stop_children()
    raise SystemExit(128 + signum)


_SYS_PATH_ENV = "ADAMCONF_WORKER_SYS_PATH"


def _child_sys_path(python: str) -> str:
    """The parent's import path for a worker on this interpreter; for another interpreter
    only the entries that are not an installation's own (its site-packages are its own)."""
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        return os.pathsep.join(p or os.getcwd() for p in sys.path)
    own = ("site-packages", "dist-packages", f"python{sys.version_info[0]}.")
    return os.pathsep.join(p or os.getcwd() for p in sys.path
                           if not any(part in p for part in own) and not p.endswith(".zip"))


class BackendProcess:
    """A backend in a worker process (optionally another Python environment's interpreter);
    restarted after a crash or a timeout."""

    #: seconds a first-use build stopped with SIGTERM has to unwind before it is killed
    build_stop_grace = 10.0

    def __init__(self, spec: str, timeout: float = DEFAULT_TIMEOUT,
                 recycle_after: int = RECYCLE_AFTER, python: str | None = None,
                 options: dict[str, str] | None = None, declared: dict | None = None,
                 build_timeout: float = DEFAULT_BUILD_TIMEOUT,
                 notify: Callable[[str], None] | None = None) -> None:
        self.spec, self.timeout, self.recycle_after = spec, timeout, recycle_after
        self.python = python or sys.executable
        self.options = dict(options or {})
        # a generic backend's state mode and declared features: {"state": …, "features": {…}}
        self.declared = {k: v for k, v in (declared or {}).items() if v}
        self.build_timeout = build_timeout
        self.notify = notify  # told when a first-use build starts and ends (a progress line)
        self._process: subprocess.Popen | None = None
        self._conn = None
        self._served = 0
        self._grown = False  # the last reply said the worker is past its memory limits
        self._building: FirstUseBuild | None = None  # the worker's first-use build, running

    def _start(self) -> None:
        from multiprocessing.connection import Connection

        ours, theirs = socket.socketpair()
        env = {**os.environ, _SYS_PATH_ENV: _child_sys_path(self.python)}
        try:
            self._process = subprocess.Popen(
                [self.python, "-m", "adamconf.conformance.harness.worker",
                 "--fd", str(theirs.fileno()), "--parent", str(os.getpid()),
                 "--options", json.dumps(self.options), "--declared",
                 json.dumps(self.declared), self.spec],
                pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        except OSError as exc:
            ours.close()
            raise WorkerStartError(f"cannot start {self.python}: {exc}") from None
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _kill(self) -> None:
        building, self._building = self._building, None
        if self._process is not None:
            if self._process.poll() is None and building is not None:
                self._process.terminate()  # a build unwinds: its own clean-up runs
                try:
                    self._process.wait(self.build_stop_grace)
                except subprocess.TimeoutExpired:
                    pass
            if self._process.poll() is None:
                self._process.kill()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                pass
        if self._conn is not None:
            self._conn.close()
        self._process, self._conn = None, None
        if building is not None:
            from adamconf.adapters.buildlock import clear_stale

            for path in clear_stale(building.locks):
                self._tell(f"removed the lock {path}, left by the build that was stopped")

    def _tell(self, line: str) -> None:
        if self.notify is not None:
            self.notify(line)

    def send(self, *message) -> Reply | None:
        """Send a request without waiting (pipelining); None, or an ERROR reply where the
        worker could not be reached."""
        if self._process is not None and (self._grown or self._served >= self.recycle_after):
            self.close()  # frameworks that compile a graph per optimizer only ever grow
            self._grown = False
        try:
            if not self._alive():
                self._kill()
                self._start()
                self._served = 0
            self._served += 1
            self._conn.send(message)
        except WorkerStartError as exc:
            return Reply(ReplyKind.ERROR, message=str(exc))
        except (OSError, BrokenPipeError):
            return self._died()
        return None

    def receive(self, timeout: float | None = None) -> Reply:
        """The reply to the oldest request sent; an ERROR reply after a crash or a timeout.
        A first-use build the worker announces is waited for within ``build_timeout``, then
        the request's own timeout starts again."""
        timeout = self.timeout if timeout is None else timeout
        while True:
            building = self._building
            wait = self.build_timeout if building is not None else timeout
            try:
                if not self._conn.poll(wait):
                    self._kill()
                    if building is not None:
                        return Reply(ReplyKind.ERROR, message=(
                            f"the first-use build of {building.what} did not finish within "
                            f"{wait:g} s; it was stopped, and no lock of it is left (raise "
                            "--build-timeout where the build is just slow)"))
                    return Reply(ReplyKind.ERROR, message=f"timed out after {timeout:g} s (the "
                                 "backend process was killed; raise --timeout if the case is "
                                 "just slow)")
                reply = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                return self._died()
            if reply.kind is ReplyKind.BUILDING:
                self._building = reply.value
                self._tell(f"{self.spec}: building {reply.value.what} at first use (up to "
                           f"{self.build_timeout:g} s, --build-timeout) …")
                continue
            if reply.kind is ReplyKind.BUILT:
                self._building = None
                self._tell(f"{self.spec}: " + (f"the build failed after {reply.value:g} s: "
                                               f"{reply.message}" if reply.message
                                               else f"built in {reply.value:g} s"))
                continue
            break
        if reply.rss is not None:
            self._served = 0  # its memory is known: that, not the count, decides
            self._grown = (reply.rss > RECYCLE_TOTAL or (
                reply.rss_ready is not None and reply.rss - reply.rss_ready > RECYCLE_GROWTH))
        return reply

    def request(self, *message, timeout: float | None = None) -> Reply:
        """Send a request and wait for its reply."""
        failed = self.send(*message)
        return failed if failed is not None else self.receive(timeout)

    def _died(self) -> Reply:
        code = None
        if self._process is not None:
            try:
                code = self._process.wait(5)  # reap it, or its exit code is not known yet
            except subprocess.TimeoutExpired:
                pass
        self._kill()
        how = f"exit code {code}" if code is None or code >= 0 else _signal_name(-code)
        return Reply(ReplyKind.ERROR,
                     message=f"the backend process died ({how}) while running this")

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def close(self) -> None:
        if self._alive():
            try:
                self._conn.send(("stop",))
                self._process.wait(5)
            except (OSError, BrokenPipeError, subprocess.TimeoutExpired):
                pass
        self._kill()

    def __enter__(self) -> BackendProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class WorkerStartError(RuntimeError):
    """The worker's interpreter could not be started."""


def _signal_name(number: int) -> str:
    import signal

    try:
        return f"signal {signal.Signals(number).name}"
    except ValueError:
        return f"signal {number}"


if __name__ == "__main__":
    # through the package, so that replies pickle as this module's classes, not __main__'s
    from adamconf.conformance.harness.worker import main as _main

    sys.exit(_main())
