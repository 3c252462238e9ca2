"""A HypoFuzz campaign: HypoFuzz's workers run the fuzz property of each selected variant.

HypoFuzz (``pip install 'adamconf[hypofuzz]'``, by hypothesis's maintainers) runs the
hypothesis tests that pytest collects as a long campaign: one process per core, adaptive
scheduling between the tests, coverage guidance, a shared example database and a live
dashboard. The plugin makes each variant's fuzz property such a test
(``--adamconf-fuzz``), so a campaign is just::

    hypothesis fuzz -n 2 -- --adamconf-backend numpy --adamconf-fuzz

``adamconf fuzz -j N`` starts that campaign (:class:`Campaign`) in a process group of its
own, adds up what its workers count (:class:`StatsFile`), stops it when the
budget is spent, and then replays the failures the workers saved in the database, shrinking
and saving each as a regression case once (:mod:`.fuzz`). The campaign's process watches
``adamconf fuzz``: when that dies, the whole group ends with it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from adamconf.conformance.harness.fuzz_property import FAILING, SearchSpace

__all__ = ["HYPOFUZZ_INSTALL", "hypofuzz_installed", "require_hypofuzz",
           "patch_hypothesis_for_hypofuzz", "pytest_args", "Campaign", "CampaignError", "main",
           "StatsFile", "PropertyTally", "read_stats"]

HYPOFUZZ_INSTALL = "pip install 'adamconf[hypofuzz]'"


def hypofuzz_installed() -> bool:
    if "hypofuzz" in sys.modules:  # imported, or blocked (None) as a test does
        return sys.modules["hypofuzz"] is not None
    return importlib.util.find_spec("hypofuzz") is not None


def require_hypofuzz(what: str = "a HypoFuzz campaign") -> None:
    from adamconf.conformance.errors import UsageError

    if not hypofuzz_installed():
        raise UsageError(f"{what} needs HypoFuzz, which is not installed: {HYPOFUZZ_INSTALL}")


def patch_hypothesis_for_hypofuzz() -> None:
    """hypofuzz 25.11.1 (the newest) reads ``slice_comments`` from the shrinker's result,
    which hypothesis 6.150-something renamed ``span_comments``: each worker died with an
    AttributeError at the first failure it shrank. An alias where the attribute is missing,
    read only by HypoFuzz (and only for the comments it prints beside a failing example)."""
    try:
        from hypothesis.internal.conjecture.data import ConjectureResult
    except ImportError:
        return
    if (not hasattr(ConjectureResult, "slice_comments")
            and hasattr(ConjectureResult, "span_comments")):
        ConjectureResult.slice_comments = property(lambda self: self.span_comments)


def pytest_args(*, spec: str, variant_ids: Sequence[str], space: SearchSpace, database: str,
                stats: Path, timeout: float, root: Path) -> list[str]:
    """What HypoFuzz passes to pytest in each of its processes: the plugin's fuzz items of
    these variants and nothing else (``root`` is an empty folder with an empty ini file, so
    no project's tests, conftest or settings are collected)."""
    args = ["-q", "-p", "no:cacheprovider", "--noconftest", "-c", str(root / "pytest.ini"),
            "--rootdir", str(root),
            "--adamconf-backend", spec, "--adamconf-fuzz", "--adamconf-database", database,
            "--adamconf-fuzz-stats", str(stats), "--adamconf-timeout", f"{timeout:g}",
            "--adamconf-max-steps", str(space.max_steps),
            "--adamconf-max-elements", str(space.max_elements)]
    if space.allow_non_finite:
        args.append("--adamconf-allow-non-finite")
    for variant_id in variant_ids:
        args += ["--adamconf-variant-id", variant_id]
    return args + [str(root)]


# --- counting, across the processes of a campaign ------------------------------------------

class StatsFile:
    """This process's outcome counts per property, written to ``folder/<pid>.json``
    (atomically, at most every ``period`` seconds) for ``adamconf fuzz`` to add up the
    workers of a HypoFuzz campaign, which runs them where it cannot see."""

    def __init__(self, folder: Path | str, period: float = 0.5) -> None:
        self.path = Path(folder) / f"{os.getpid()}.json"
        self.period = period
        self.properties: dict[str, dict] = {}
        self._written = 0.0

    def record(self, name: str, outcome: str, started: float) -> None:
        """One example of the property ``name`` ended with ``outcome``; it had started at
        ``started`` (``time.time()``)."""
        now = time.time()
        entry = self.properties.setdefault(name, {"counts": {}, "first": started, "last": now})
        counts = entry["counts"]
        first_failure = outcome in FAILING and not any(counts.get(k) for k in FAILING)
        counts[outcome] = counts.get(outcome, 0) + 1
        entry["last"] = now
        if now - self._written >= self.period or first_failure:  # a failure is news at once
            self.flush()

    def flush(self) -> None:
        self._written = time.time()
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            tmp.write_text(json.dumps({"pid": os.getpid(), "properties": self.properties}))
            os.replace(tmp, self.path)
        except OSError:
            pass  # the campaign is being stopped and its folder removed


@dataclass
class PropertyTally:
    """One property's counts over every process of a campaign: ``first`` is the time
    (``time.time()``) the first example any process ran started, ``last`` when the last one
    counted ended, so the rate is examples over the span the workers fuzzed."""

    counts: Counter
    first: float
    last: float

    @property
    def examples(self) -> int:
        return sum(self.counts.values())

    @property
    def failing(self) -> int:
        return sum(self.counts[k] for k in FAILING)


def read_stats(folder: Path | str) -> dict[str, PropertyTally]:
    """Every process's :class:`StatsFile` in ``folder`` added up, by property name."""
    tallies: dict[str, PropertyTally] = {}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being replaced right now: the next read has it
        for name, entry in data.get("properties", {}).items():
            tally = tallies.get(name)
            if tally is None:
                tally = tallies[name] = PropertyTally(Counter(), entry["first"], entry["last"])
            tally.counts.update(entry["counts"])
            tally.first = min(tally.first, entry["first"])
            tally.last = max(tally.last, entry["last"])
    return tallies


# --- the campaign ---------------------------------------------------------------------------

class CampaignError(RuntimeError):
    """The campaign ended before it was stopped, or could not start; the message holds the
    end of its log."""


class Campaign:
    """``hypothesis fuzz -n workers -- pytest_args`` in a process group of its own, its output
    in a log file; :meth:`tallies` reads what its workers counted so far."""

    def __init__(self, *, spec: str, variant_ids: Sequence[str], space: SearchSpace,
                 database: str, workers: int, timeout: float,
                 dashboard_port: int | None = None) -> None:
        self.workers = workers
        self.dashboard_port = dashboard_port
        self.folder = Path(tempfile.mkdtemp(prefix="adamconf-hypofuzz-"))
        self.root = self.folder / "root"
        self.stats = self.folder / "stats"
        self.root.mkdir()
        self.stats.mkdir()
        (self.root / "pytest.ini").write_text("[pytest]\n")
        self.log = self.folder / "hypofuzz.log"
        self.args = pytest_args(spec=spec, variant_ids=variant_ids, space=space,
                                database=database, stats=self.stats, timeout=timeout,
                                root=self.root)
        self.process: subprocess.Popen | None = None
        self.started = 0.0

    def command(self) -> list[str]:
        dashboard = (["--dashboard", "--port", str(self.dashboard_port)]
                     if self.dashboard_port is not None else ["--no-dashboard"])
        return [sys.executable, "-m", "adamconf.conformance.harness.campaign",
                "--parent", str(os.getpid()), "fuzz", "-n", str(self.workers), *dashboard,
                "--", *self.args]

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
        # the campaign imports what this process can (a backend by import path included)
        env["PYTHONPATH"] = os.pathsep.join(p or os.getcwd() for p in sys.path)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, start_new_session=(os.name == "posix"))
        self.started = time.time()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tallies(self) -> dict[str, PropertyTally]:
        return read_stats(self.stats)

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def dashboard_url(self) -> str | None:
        """Where HypoFuzz serves its dashboard, once it says so (the port may be any free
        one) and its port answers: HypoFuzz says it before its server listens."""
        import re
        import socket
        from urllib.parse import urlsplit

        try:
            found = re.search(r"serving dashboard at (\S+)", self.log.read_text(errors="replace"))
        except OSError:
            return None
        if not found:
            return None
        where = urlsplit(found.group(1))
        host = where.hostname or "localhost"
        host = "localhost" if host in ("0.0.0.0", "::") else host
        try:
            with socket.create_connection((host, where.port or 80), timeout=0.5):
                return found.group(1)
        except OSError:
            return None

    def ended_early(self) -> CampaignError:
        code = self.process.returncode if self.process is not None else None
        return CampaignError(f"the HypoFuzz campaign ended by itself (exit code {code}); its "
                             f"log ends:\n{self.log_tail()}")

    def stop(self) -> None:
        """End every process of the campaign: SIGTERM to its group, SIGKILL 10 s later."""
        process = self.process
        if process is None:
            return
        kill = getattr(signal, "SIGKILL", signal.SIGTERM)
        if process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                self._signal(kill)
                process.wait(10)
        if os.name == "posix":  # workers that outlived the campaign's own process
            self._signal(kill)

    def _signal(self, number: int) -> None:
        try:
            if os.name == "posix":
                os.killpg(self.process.pid, number)
            else:
                self.process.send_signal(number)
        except (ProcessLookupError, PermissionError, OSError):
            pass

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def _end_group_with(parent: int) -> None:
    """When ``parent`` (``adamconf fuzz``) dies, end this process group: the campaign's hub,
    HypoFuzz's workers and dashboard, and the backends' workers."""

    leader = os.getpgrp() == os.getpid()  # a group of its own, as Campaign starts it

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                try:
                    if leader:  # never the group of whoever started it by hand
                        os.killpg(os.getpgrp(), signal.SIGKILL)
                finally:
                    os._exit(3)

    threading.Thread(target=watch, name="adamconf-campaign-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    """``python -m adamconf.conformance.harness.campaign --parent PID fuzz ARGS``: HypoFuzz's
    ``hypothesis fuzz ARGS``, ended with its parent."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[0] != "--parent":
        print("usage: python -m adamconf.conformance.harness.campaign --parent PID fuzz ARGS",
              file=sys.stderr)
        return 2
    if os.name == "posix":
        _end_group_with(int(argv[1]))
    patch_hypothesis_for_hypofuzz()
    import hypofuzz.entrypoint  # noqa: F401  (adds 'fuzz' to hypothesis's command line)
    from hypothesis.extra.cli import main as hypothesis_cli

    return hypothesis_cli(args=argv[2:], prog_name="hypothesis")


if __name__ == "__main__":
    sys.exit(main())
