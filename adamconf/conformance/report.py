"""Reports of a run: a terminal summary for people, JSON (schema-versioned) and JUnit XML."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path
from typing import TextIO

import mpmath
import numpy as np

from .. import __version__
from ..reference.engine import DEFAULT_DPS
from .runner import STATUSES, RunResult, dialect_label, variant_dialects

__all__ = ["JSON_SCHEMA_VERSION", "to_json", "write_json", "write_junit", "print_summary",
           "Progress", "header_lines"]

JSON_SCHEMA_VERSION = 1

_COLOURS = {"pass": "32", "fail": "31", "inconclusive": "33", "unsupported": "36",
            "error": "35"}


def _colour(text: str, status: str, enabled: bool) -> str:
    return f"\033[{_COLOURS[status]}m{text}\033[0m" if enabled else text


def header_lines(run: RunResult) -> list[str]:
    info = run.info
    versions = ", ".join(f"{k} {v}" for k, v in (info.versions if info else {}).items())
    devices = ", ".join(info.devices) if info else "?"
    return [f"adamconf {__version__} — backend {run.backend} ({versions or 'version unknown'}); "
            f"devices: {devices}",
            f"reference: mpmath {mpmath.__version__} at {DEFAULT_DPS} digits, certified at "
            f"{2 * DEFAULT_DPS}; python {platform.python_version()}, numpy {np.__version__}"]


def to_json(runs: list[RunResult]) -> dict:
    """The run as plain JSON; ``schema_version`` changes when a field changes meaning."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "tool": "adamconf", "version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "reference": {"mpmath": mpmath.__version__, "dps": DEFAULT_DPS,
                      "certified_dps": 2 * DEFAULT_DPS},
        "platform": {"python": platform.python_version(), "numpy": np.__version__,
                     "machine": platform.machine(), "cpus": os.cpu_count()},
        "runs": [{
            "backend": run.backend,
            "info": run.info.to_json() if run.info else None,
            "conforms": run.conforms, "counts": run.counts(), "seconds": round(run.seconds, 3),
            "settings": {k: v for k, v in run.settings.items() if k != "pid"},
            "validation": [v.to_json() for v in run.validation],
            "variants": _variant_summaries(run),
            "results": [r.to_json() for r in run.results],
        } for run in runs],
    }


def _variant_summaries(run: RunResult) -> list[dict]:
    by_variant = defaultdict(list)
    for r in run.results:
        by_variant[r.variant.id].append(r)
    out = []
    for vid, results in by_variant.items():
        counts = {s: sum(r.status == s for r in results) for s in STATUSES}
        out.append({"variant": vid, "counts": counts, "dialects": variant_dialects(results),
                    "implements": dialect_label(results)})
    return out


def _atomic_write(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make reports owner-only
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_json(path: Path, runs: list[RunResult]) -> None:
    _atomic_write(path, (json.dumps(to_json(runs), indent=1, allow_nan=False) + "\n").encode())


def write_junit(path: Path, runs: list[RunResult]) -> None:
    """One testsuite per backend variant; fail → failure, error → error, others → skipped."""
    root = ET.Element("testsuites", name="adamconf")
    for run in runs:
        by_variant = defaultdict(list)
        for r in run.results:
            by_variant[r.variant.id].append(r)
        for vid, results in by_variant.items():
            suite = ET.SubElement(root, "testsuite", name=f"{run.backend}[{vid}]",
                                  tests=str(len(results)),
                                  failures=str(sum(r.status == "fail" for r in results)),
                                  errors=str(sum(r.status == "error" for r in results)),
                                  skipped=str(sum(r.status in ("inconclusive", "unsupported")
                                                  for r in results)))
            for r in results:
                case = ET.SubElement(suite, "testcase", classname=f"{run.backend}.{vid}",
                                     name=r.case_id, time=f"{r.seconds:.4f}")
                detail = r.message + (f"\ndialect: {', '.join(r.dialects)}" if r.dialects
                                      else "") + f"\nreproduce: {r.repro}"
                if r.status == "fail":
                    dialect = ", ".join(r.dialects) if r.dialects else "none"
                    ET.SubElement(case, "failure", message=f"does not conform; dialect: "
                                  f"{dialect}").text = detail
                elif r.status == "error":
                    ET.SubElement(case, "error", message=r.message[:200]).text = detail
                elif r.status in ("inconclusive", "unsupported"):
                    ET.SubElement(case, "skipped", message=f"{r.status}: {r.message}"[:500])
        if run.validation:
            suite = ET.SubElement(root, "testsuite", name=f"{run.backend}[validation]",
                                  tests=str(len(run.validation)),
                                  failures=str(sum(not v.ok for v in run.validation)))
            for v in run.validation:
                case = ET.SubElement(suite, "testcase", classname=f"{run.backend}.validation",
                                     name=f"{v.variant}/{v.device} {v.parameter}={v.value}")
                if not v.ok:
                    ET.SubElement(case, "failure", message="documented ValueError not raised"
                                  ).text = f"raised: {v.raised}"
    ET.indent(root)
    _atomic_write(path, ET.tostring(root, encoding="utf-8", xml_declaration=True))


class Progress:
    """A one-line progress bar on a terminal; a line per tenth elsewhere (CI logs)."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream, self.enabled = stream or sys.stderr, enabled
        self.tty = self.stream.isatty()
        self.counts = {s: 0 for s in STATUSES}

    def __call__(self, done: int, total: int, result) -> None:
        self.counts[result.status] += 1
        if not self.enabled:
            return
        tally = " ".join(f"{k}={v}" for k, v in self.counts.items() if v)
        if self.tty:
            width = 24
            filled = int(width * done / max(total, 1))
            self.stream.write(f"\r  [{'█' * filled}{'·' * (width - filled)}] {done}/{total} "
                              f"{tally} {result.case_id[:30]:<30}")
            if done == total:
                self.stream.write("\n")
        elif done == total or done % max(total // 10, 1) == 0:
            self.stream.write(f"  {done}/{total} {tally}\n")
        self.stream.flush()


def print_summary(runs: list[RunResult], stream: TextIO | None = None, *,
                  colour: bool | None = None, verbose: bool = False, limit: int = 10) -> None:
    stream = stream or sys.stdout
    colour = stream.isatty() and not os.environ.get("NO_COLOR") if colour is None else colour
    w = stream.write
    for run in runs:
        for line in header_lines(run):
            w(line + "\n")
        by_variant = defaultdict(list)
        for r in run.results:
            by_variant[r.variant.id].append(r)
        w(f"\n  {'variant':<40} " + " ".join(f"{s:>12}" for s in STATUSES) + "  dialect\n")
        for vid, results in by_variant.items():
            cells = []
            for s in STATUSES:
                n = sum(r.status == s for r in results)
                cells.append(_colour(f"{n:>12}", s, colour and n > 0))
            w(f"  {vid:<40} " + " ".join(cells) + f"  {dialect_label(results)}\n")
        failing = [r for r in run.results if r.status in ("fail", "error")]
        if failing:
            w(f"\n  Not conforming ({len(failing)}):\n")
            for r in failing[: None if verbose else limit]:
                mark = _colour(r.status.upper(), r.status, colour)
                w(f"  {mark} {r.message}\n")
                if r.dialects is not None:
                    named = ", ".join(r.dialects) or "none of the known dialects"
                    w(f"      conforms instead to: {named}\n")
                w(f"      reproduce: {r.repro}\n")
            if len(failing) > limit and not verbose:
                w(f"  … and {len(failing) - limit} more (--verbose lists all; --json has all)\n")
        inconclusive = [r for r in run.results if r.status == "inconclusive"]
        if inconclusive:
            w(f"\n  Inconclusive ({len(inconclusive)}, not counted as pass):\n")
            for r in inconclusive[: None if verbose else limit]:
                w(f"    {r.case_id} [{r.variant.id}]: {r.message}\n")
            if len(inconclusive) > limit and not verbose:
                w(f"    … and {len(inconclusive) - limit} more\n")
        unsupported = defaultdict(list)
        for r in run.results:
            if r.status == "unsupported":
                unsupported[(r.variant.name, r.message)].append(r)
        if unsupported:
            w("\n  Unsupported:\n")
            for (name, why), rs in unsupported.items():
                w(f"    {name}: {why} ({len(rs)} case×variant)\n")
        bad = [v for v in run.validation if not v.ok]
        if run.validation:
            w(f"\n  Documented ValueErrors: {len(run.validation) - len(bad)}/"
              f"{len(run.validation)} raised as documented\n")
            for v in bad:
                w(f"    {v.variant}/{v.device}: {v.parameter}={v.value} → "
                  f"{v.raised or 'accepted silently'}\n")
        counts = run.counts()
        verdict = "CONFORMS" if run.conforms else "DOES NOT CONFORM"
        verdict = _colour(verdict, "pass" if run.conforms else "fail", colour)
        w(f"\n  {run.backend}: {verdict} — " + ", ".join(f"{v} {k}" for k, v in counts.items())
          + f" in {run.seconds:.1f} s\n\n")
