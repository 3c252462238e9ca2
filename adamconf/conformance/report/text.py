"""Reports of a run: a terminal summary for people, JSON (schema-versioned) and JUnit XML."""

from __future__ import annotations

import os
import platform
import sys
from collections import defaultdict
from typing import TextIO

import numpy as np

from adamconf import __version__
from adamconf.conformance.judge.expected import compare, load_expected
from adamconf.conformance.judge.identify import dialect_label
from adamconf.conformance.judge.outcome import STATUSES, Conformance, RunResult
from adamconf.reference.engine import describe_reference

__all__ = ["print_summary", "Progress", "header_lines"]

_COLOURS = {"pass": "32", "fail": "31", "inconclusive": "33", "unsupported": "36",
            "error": "35"}


_VERDICT_WORDS = {Conformance.CONFORMS: "conforms", Conformance.DOES_NOT_CONFORM: "fails",
                  Conformance.NO_VERDICT: "no verdict"}
_VERDICT_COLOUR = {Conformance.CONFORMS: "pass", Conformance.DOES_NOT_CONFORM: "fail",
                   Conformance.NO_VERDICT: "inconclusive"}


def _colour(text: str, status: str, enabled: bool) -> str:
    return f"\033[{_COLOURS[status]}m{text}\033[0m" if enabled else text


def header_lines(run: RunResult) -> list[str]:
    info = run.info
    versions = ", ".join(f"{k} {v}" for k, v in (info.versions if info else {}).items())
    devices = ", ".join(info.devices) if info else "?"
    notes = [f"note: {note}" for note in (getattr(info, "notes", None) or [])]
    return [f"adamconf {__version__} — backend {run.backend} ({versions or 'version unknown'}); "
            f"devices: {devices}",
            f"reference: {describe_reference()}; python {platform.python_version()}, "
            f"numpy {np.__version__}", *notes]


class Progress:
    """A one-line progress bar on a terminal; a line per tenth elsewhere (CI logs)."""

    def __init__(self, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.stream, self.enabled = stream or sys.stderr, enabled
        self.tty = self.stream.isatty()
        self.counts = {s: 0 for s in STATUSES}

    def note(self, line: str) -> None:
        """A line of its own (a first-use build starting, ending), between progress lines."""
        if not self.enabled:
            return
        self.stream.write(("\r\033[K" if self.tty else "") + f"  {line}\n")
        self.stream.flush()

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
        w(f"\n  {'variant':<40} " + " ".join(f"{s:>12}" for s in STATUSES)
          + f" {'judged':>9}  verdict\n")
        expected = load_expected(run.backend)
        for decision in run.decisions():
            results = by_variant.get(decision.variant, [])
            cells = []
            for s in STATUSES:
                n = decision.counts[s]
                cells.append(_colour(f"{n:>12}", s, colour and n > 0))
            word = _VERDICT_WORDS[decision.conformance]
            label = dialect_label(results)
            shown = f"{word}: {label}" if label else word
            _, against = compare(expected, decision.variant, results)
            if against and (label or not against.startswith("as expected")):
                shown += f" [{against}]"
            w(f"  {decision.variant:<40} " + " ".join(cells)
              + f" {f'{decision.judged}/{decision.selected}':>9}  "
              + _colour(shown, _VERDICT_COLOUR[decision.conformance], colour) + "\n")
        failing = [r for r in run.results if r.status in ("fail", "error")]
        if failing:
            w(f"\n  Not conforming ({len(failing)}):\n")
            for r in failing[: None if verbose else limit]:
                mark = _colour(r.status.upper(), r.status, colour)
                w(f"  {mark} {r.message}\n")
                if r.dialects is not None:
                    named = ", ".join(r.dialects) or f"no model: {r.departure}"
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
        no_verdict = [d for d in run.decisions() if d.conformance is Conformance.NO_VERDICT]
        if no_verdict:
            w(f"\n  No verdict ({len(no_verdict)} variants: nothing there could be judged, so "
              "nothing is claimed):\n")
            for d in no_verdict:
                w(f"    {d.variant}: {d.reason}\n")
        counts = run.counts()
        judged = counts["pass"] + counts["fail"]
        conformance = run.conformance
        verdict = _colour(conformance.value.upper(), _VERDICT_COLOUR[conformance], colour)
        w(f"\n  {run.backend}: {verdict} — " + ", ".join(f"{v} {k}" for k, v in counts.items())
          + f"; {judged} of {len(run.results)} selected judged in {run.seconds:.1f} s\n\n")
