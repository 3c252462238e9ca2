"""Locks of first-use builds: who holds one, whether it is stale, clearing what a stopped
build left; and stopping a build's own processes.

torch's extension builder (``torch.utils.cpp_extension.load``, which DeepSpeed's CPU Adam
uses) serialises builds with a file: the builder creates ``<build folder>/lock`` exclusively,
keeps it open while it compiles, and removes it when done; every other builder polls until the
file is gone, with no time limit. A builder killed mid-build leaves the file, and every later
build waits on it forever. The file holds nothing (no process id), but its owner holds it
open: on Linux, ``/proc/<pid>/fd`` says which processes do. A lock that no process holds open
is stale.

A build runs a tool (ninja) that runs the compilers, each in a process group of its own. Killed
outright, the tool leaves them compiling, orphaned; sent SIGTERM, it stops them and exits.
"""

from __future__ import annotations

import os
import shlex
import signal
import time
from pathlib import Path

__all__ = ["holders", "stale_lock_reason", "clear_stale", "stop_children"]

_PROC = Path("/proc")


def holders(path: str | os.PathLike) -> list[int] | None:
    """The ids of the processes that hold ``path`` open, or None where that cannot be told
    (no ``/proc``: not Linux). Only processes whose descriptors this user may read are seen:
    another user's build cannot hold a lock in this user's cache."""
    if not (_PROC / "self" / "fd").is_dir():
        return None
    try:
        target = os.path.realpath(path)
    except OSError:
        return []
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:  # gone, or not ours to read
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    found.append(int(entry.name))
                    break
            except OSError:
                continue
    return found


def stale_lock_reason(path: str | os.PathLike, what: str) -> str | None:
    """Why a build of ``what`` would wait forever on ``path``: the lock exists and no process
    holds it open (its owner is gone). None where it is absent, held, or cannot be told."""
    if not os.path.exists(path):
        return None
    held = holders(path)
    if held is None or held:
        return None
    return (f"a stale lock of torch's extension builder, {path}, stalls the build of {what}: "
            "it is left by a build that was stopped, and no process holds it open now (its "
            f"owner is gone); every build waits on it forever. Clear it with: rm -f "
            f"{shlex.quote(str(path))}")


def clear_stale(paths) -> list[str]:
    """Remove each lock in ``paths`` that exists and no process holds open (what a build that
    was just stopped left); the paths removed. Where holders cannot be told, nothing."""
    removed = []
    for path in paths:
        if os.path.exists(path) and holders(path) == []:
            try:
                os.remove(path)
            except OSError:
                continue
            removed.append(str(path))
    return removed


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in (_PROC / str(pid) / "task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
    except (OSError, ValueError):
        return found
    return found


def _running(pid: int) -> bool:
    try:  # the state follows the parenthesised name: 'Z' is a zombie, exited
        return (_PROC / str(pid) / "stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_children(grace: float = 3.0) -> list[int]:
    """SIGTERM to each child of this process (a build's ninja, which then stops its
    compilers and exits), waiting up to ``grace`` seconds for them to exit; the ids
    signalled. Nothing where the children cannot be read (no ``/proc``)."""
    children = _children(os.getpid())
    for child in children:
        try:
            os.kill(child, signal.SIGTERM)
        except OSError:
            continue
    deadline = time.monotonic() + grace
    while any(_running(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    return children
