"""The processes below a process, read from Linux's /proc, and what is left of them after
SIGTERM to their parent alone: for the tests that prove a worker or a fuzzing job never
outlives the command that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def _parents() -> dict[int, list[int]]:
    """Every process's children, by parent."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def children(pid: int) -> list[int]:
    return _parents().get(pid, [])


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``: children, theirs, and so on."""
    below, out, todo = _parents(), [], [pid]
    while todo:
        for child in below.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def survivors_of_sigterm(parent: subprocess.Popen, processes: list[int],
                         seconds: float = 15.0) -> list[int]:
    """SIGTERM to ``parent`` alone (as a killed terminal); which of ``processes`` are still
    alive ``seconds`` after it ended."""
    os.kill(parent.pid, signal.SIGTERM)
    parent.wait(30)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in processes):
        time.sleep(0.2)
    return [p for p in processes if alive(p)]
