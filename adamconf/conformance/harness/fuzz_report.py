"""``adamconf fuzz``'s printing: the progress line, the header, each failure, the invalid
values not refused, the summary. A reader of what the engines recorded
(:class:`.fuzz_property.FuzzStats`, :class:`.fuzz_property.Finding`,
:class:`.fuzz_invalid.InvalidFinding`): what is saved, and the exit code, are decided
elsewhere (:func:`.fuzz_engine.keep_finding`, :mod:`.fuzz`).
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import TextIO

from adamconf.conformance.harness.fuzz_invalid import InvalidFinding
from adamconf.conformance.harness.fuzz_property import (
    HARNESS,
    UNLIMITED,
    Finding,
    FuzzStats,
    describe_case,
)
from adamconf.conformance.harness.fuzz_settings import FuzzSettings

__all__ = ["ProgressLine", "write_header", "write_failure", "write_kept", "write_invalid",
           "write_summary"]


class ProgressLine:
    """One updating line on a TTY; a line every ``period`` seconds otherwise."""

    def __init__(self, stream: TextIO | None, period: float = 10.0) -> None:
        self.stream = stream
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self.period = period if not self.tty else 0.1
        self._last = 0.0
        self._drawn = False

    def update(self, stats: FuzzStats, started: float, force: bool = False) -> None:
        if self.stream is None:
            return
        now = time.perf_counter()
        if not force and now - self._last < self.period:
            return
        self._last = now
        elapsed = max(now - started, 1e-9)
        c = stats.counts
        phase = " shrinking" if stats.shrink_runs else ""
        text = (f"{stats.variant.id}: {stats.examples} examples, "
                f"{stats.examples / elapsed:.1f}/s, {stats.failing} failing, "
                f"{c['inconclusive']} inconclusive, {c['unsupported']} unsupported, "
                f"{elapsed:.0f} s{phase}")
        if self.tty:
            self.stream.write("\r\033[K  " + text)
            self._drawn = True
        else:
            self.stream.write("  " + text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.stream is not None and self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def write_header(stream: TextIO, info, variants: list, args: FuzzSettings, max_examples: int,
                 seed: int | None, database_shown: str, jobs: int = 1,
                 engine: str = "jobs") -> None:
    """What runs, and with which settings, so that a reader of a log knows."""
    versions = ", ".join(f"{k} {v}" for k, v in info.versions.items())
    jobs_text = (f" ({jobs} jobs: seeds {seed} to {seed + jobs - 1})"
                 if jobs > 1 and seed is not None else "")
    if engine == "hypofuzz":
        jobs_text = (f" for the invalid phase; HypoFuzz's {jobs} worker(s) fuzz, not seeded"
                     + (f", dashboard on port {args.dashboard}" if args.dashboard is not None
                        else ""))
    budget = (f"max examples {max_examples}" if max_examples < UNLIMITED
              else "until the time is up")
    if args.replay:
        budget = "replaying the failing examples saved in the database"
    stream.write(
        f"adamconf fuzz: backend {info.name} ({versions or 'version unknown'}); "
        f"variants {', '.join(v.id for v in variants)}\n"
        f"  {budget}{f', {args.seconds:g} s' if args.seconds else ''}; "
        f"{'derandomized' if seed is None else f'seed {seed}'}"
        f"{jobs_text}; "
        f"database {database_shown}; non-finite inputs "
        f"{'on' if args.allow_non_finite else 'off'}\n")


def write_failure(finding: Finding, backend_name: str, out: TextIO) -> None:
    """A finding's first lines: its kind, the variant, the message."""
    out.write(f"\nFAILURE ({finding.kind}) on {backend_name} {finding.variant.id}:\n"
              f"  {finding.message}\n")


def write_kept(finding: Finding, regressions: Path, out: TextIO) -> None:
    """What became of a finding (:func:`.fuzz_engine.keep_finding`): the dialects its
    trajectory conforms to; where its minimal case is saved, and the command that reproduces
    it, or the case itself where it is not saved."""
    if finding.case is None:
        return
    if finding.naming_error:
        out.write(f"  (could not search the model: {finding.naming_error})\n")
    if finding.dialects:
        out.write(f"  the trajectory conforms to dialect(s) instead: "
                  f"{', '.join(finding.dialects)}\n")
    if finding.kind == HARNESS:
        out.write("  this is a bug in adamconf's reference or judge, not in the backend; the "
                  "case (not saved):\n")
        out.write("\n".join(describe_case(finding.case)) + "\n")
        return
    if finding.stored_id is None:
        out.write("  (not saved: --no-save) the minimal case:\n")
        out.write("\n".join(describe_case(finding.case)) + "\n")
        return
    if finding.is_new:
        out.write(f"  saved as regression case {finding.stored_id} in {regressions}\n")
    else:
        out.write(f"  already stored as regression case {finding.stored_id} in {regressions} "
                  "(not saved again)\n")
    out.write(f"  reproduce: {finding.repro}\n")


def write_invalid(invalid: list[InvalidFinding], checked: int, out: TextIO) -> None:
    """Grouped by where and what happened: the values, and one example of the message."""
    groups: dict[tuple[str, str], list[InvalidFinding]] = {}
    for f in invalid:
        kind = "accepted" if f.outcome == "accepted" else f.outcome.split(":")[0]
        groups.setdefault((f.where, kind), []).append(f)
    out.write(f"\nINVALID HYPERPARAMETERS NOT REFUSED: {len(invalid)} of {checked} "
              "documented-invalid settings did not raise ValueError:\n")
    for (where, kind), found in groups.items():
        who = "the reference (a bug in adamconf)" if where == "reference" else where
        verb = "accepted" if kind == "accepted" else kind + ", not ValueError"
        shown = list(dict.fromkeys(f.shown for f in found))  # each value once, in order
        more = f"; and {len(shown) - 6} more" if len(shown) > 6 else ""
        out.write(f"  {who} {verb}: {'; '.join(shown[:6])}{more}\n")
        if kind != "accepted":
            out.write(f"      e.g. {found[0].outcome.removeprefix('raised ')[:200]}\n")


def write_summary(all_stats: list[FuzzStats], findings: list[Finding],
                  invalid: list[InvalidFinding], invalid_checked: int, seconds: float,
                  seed: int | None, out: TextIO, engine: str = "jobs") -> None:
    """Each variant's counts, rate and most common reasons; the totals; what was found."""
    out.write("\n")
    total = 0
    for s in all_stats:
        total += s.examples
        c = s.counts
        stopped = {"time": " (stopped: time budget spent)",
                   "interrupted": " (interrupted)",
                   "nothing saved": " (no failing example saved in the database)"
                   }.get(s.stopped, "")
        out.write(f"{s.variant.backend} {s.variant.id}: {s.examples} examples in "
                  f"{s.seconds:.1f} s ({s.rate:.1f} examples/s){stopped}: {c['pass']} pass, "
                  f"{c['inconclusive']} inconclusive, {c['unsupported']} unsupported, "
                  f"{s.failing} failing"
                  + (f" ({s.shrink_runs} runs while shrinking)" if s.shrink_runs else "")
                  + "\n")
        for reason, n in s.inconclusive_reasons.most_common(3):
            out.write(f"    inconclusive ×{n}: {reason}\n")
        for reason, n in s.unsupported_reasons.most_common(3):
            out.write(f"    unsupported ×{n}: {reason}\n")
    if all_stats:
        fuzz_seconds = sum(s.seconds for s in all_stats)
        rate = total / fuzz_seconds if fuzz_seconds > 0 else 0.0
        out.write(f"{total} examples, {rate:.1f} examples/s; {seconds:.1f} s in all")
        if engine == "hypofuzz":
            out.write("; HypoFuzz's workers, not seeded\n")
        else:
            out.write(f"; seed {seed}\n" if seed is not None else "; derandomized\n")
    if invalid_checked:
        out.write(f"invalid hyperparameters: {invalid_checked} checked, "
                  f"{len(invalid)} not refused with ValueError\n")
    if findings or invalid:
        kinds = Counter(f.kind for f in findings)
        parts = [f"{n} {k}" for k, n in kinds.items()]
        if invalid:
            parts.append(f"{len(invalid)} invalid value(s) not refused")
        out.write(f"FAILURES FOUND: {', '.join(parts)}\n")
    else:
        out.write("no failure found\n")
