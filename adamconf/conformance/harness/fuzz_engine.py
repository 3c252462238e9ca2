"""Who runs the fuzz property in this process, and how it stops: each variant in turn
(:func:`fuzz_phase`, also every job's body), the failures a database holds replayed
(:func:`replay_phase`), a HypoFuzz campaign watched until its budget is spent
(:func:`watch_campaign`); Ctrl-C (:class:`CtrlC`) and SIGTERM (:func:`exit_on_sigterm`);
and each finding kept (:func:`keep_finding`): its dialects named, its minimal case saved as a
regression case once. adamconf's own processes are :mod:`.fuzz_jobs`; HypoFuzz's,
:mod:`.campaign`.
"""

from __future__ import annotations

import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from adamconf.conformance.harness.fuzz_invalid import InvalidFinding
from adamconf.conformance.harness.fuzz_property import (
    HARNESS,
    REPLAY_SEED,
    Finding,
    FuzzStats,
    Progress,
    SearchSpace,
    fuzz_test,
    fuzz_variant,
    property_name,
    replay_settings,
    saved_failures,
)
from adamconf.conformance.harness.fuzz_report import ProgressLine
from adamconf.conformance.harness.fuzz_settings import FuzzSettings

__all__ = ["FuzzResults", "CtrlC", "exit_on_sigterm", "fuzz_phase", "fuzz_variants",
           "watch_campaign", "replay_phase", "keep_finding"]


@dataclass
class FuzzResults:
    """What the phases found, as they found it."""

    stats: list[FuzzStats] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    invalid: list[InvalidFinding] = field(default_factory=list)
    invalid_checked: int = 0
    interrupted: bool = False


class CtrlC:
    """While active, the first Ctrl-C sets ``stop`` (fuzzing stops before its next example
    and reports what it did); a second one interrupts at once. A flag, not an exception:
    a KeyboardInterrupt raised inside a garbage-collector callback is swallowed."""

    def __init__(self, stop, stream: TextIO | None) -> None:
        self.stop, self.stream, self._old = stop, stream, None

    def _handle(self, signum, frame) -> None:
        import signal

        self.stop.set()
        signal.signal(signal.SIGINT, self._old or signal.default_int_handler)
        if self.stream is not None:
            self.stream.write("\n  stopping after the examples running now "
                              "(Ctrl-C again to stop at once)\n")
            self.stream.flush()

    def __enter__(self) -> CtrlC:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def exit_on_sigterm():
    """SIGTERM (a killed terminal, a CI job's timeout) as SystemExit, so that a campaign's
    processes are stopped and its scratch folders removed on the way out (by default the
    signal ends this process at once; the campaign's own watch would still end its
    processes, but the folders would stay). Returns what to restore, or None."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def fuzz_phase(backend_name: str, process, variants: list, args: FuzzSettings,
               settings_kwargs: dict, seed: int | None, deadline: float | None,
               stream: TextIO | None, results: FuzzResults) -> None:
    """Fuzz each variant in turn (an equal share of the time left each), until interrupted."""
    import threading

    stop = threading.Event()
    with CtrlC(stop, stream):
        fuzz_variants(backend_name, process, variants, args, settings_kwargs, seed, deadline,
                      ProgressLine(stream), stop, results)


def fuzz_variants(backend_name: str, process, variants: list, args: FuzzSettings,
                  settings_kwargs: dict, seed: int | None, deadline: float | None,
                  progress: Progress, stop, results: FuzzResults) -> None:
    """Each variant in turn, an equal share of the time left each, into ``results``; the
    single process and every job of ``-j N`` alike."""
    for n, variant in enumerate(variants):
        variant_deadline = None
        if deadline is not None:  # an equal share of what is left
            left = deadline - time.monotonic()
            variant_deadline = time.monotonic() + left / (len(variants) - n)
        stats, found, _ = fuzz_variant(
            backend_name, process, variant, settings_kwargs=settings_kwargs, seed=seed,
            deadline=variant_deadline, space=args.space, progress=progress, stop=stop)
        results.stats.append(stats)
        results.findings.extend(found)
        if stats.stopped == "interrupted":
            results.interrupted = True
            break


# --- a HypoFuzz campaign, and what a database holds ------------------------------------------

_SAVE_WAIT = 20.0  # s a campaign may run on, once every variant failed, until it saved them


class _Several:
    """Stands for the variants of a campaign that fuzzes them all at once (progress line)."""

    def __init__(self, count: int) -> None:
        self.id = f"{count} variants"


def _saved(database, name: str, space: SearchSpace, dtype: str) -> bool:
    """Whether ``database`` holds a failing example of the property ``name``."""
    test = fuzz_test(name, space.strategy(dtype), lambda case: None)  # the same key
    return sum(saved_failures(database, test)) > 0


def watch_campaign(hypofuzz, backend_name: str, variants: list, args: FuzzSettings,
                   max_examples: int, deadline: float | None, stream: TextIO | None,
                   results: FuzzResults, database) -> None:
    """Show a HypoFuzz campaign's progress (its workers' counts added up) until its budget is
    spent: the time, ``max_examples`` of every variant, a failure in every variant (once
    the database holds them: HypoFuzz saves in the background), or Ctrl-C; then stop it and
    keep each variant's counts in ``results``."""
    import threading

    names = [property_name(backend_name, v, args.space) for v in variants]
    shown_as = variants[0] if len(variants) == 1 else _Several(len(variants))
    progress = ProgressLine(stream)
    stop = threading.Event()
    stopped, all_failed = "", None
    begun = time.perf_counter()
    dashboard = args.dashboard is None  # True once there is nothing (more) to show
    if stream is not None:
        stream.write(f"  HypoFuzz: starting {hypofuzz.workers} worker(s) (each collects the "
                     "fuzz properties and starts a backend worker)\n")
    with CtrlC(stop, stream):
        while True:
            url = None if dashboard else hypofuzz.dashboard_url()
            if url:
                dashboard = True  # asked for: said even with --quiet
                sys.stderr.write(f"  HypoFuzz's dashboard: {url}\n")
            tallies = hypofuzz.tallies()
            shown = FuzzStats(shown_as)
            for name in names:
                if name in tallies:
                    shown.counts.update(tallies[name].counts)
            progress.update(shown, begun)
            if stop.is_set():
                stopped = "interrupted"
                break
            if not hypofuzz.running():
                results.findings.append(Finding("error", None, str(hypofuzz.ended_early()),
                                                variant=variants[0]))
                break
            if deadline is not None and time.monotonic() > deadline:
                stopped = "time"
                break
            done = [name in tallies and (tallies[name].failing > 0
                                         or tallies[name].examples >= max_examples)
                    for name in names]
            if all(done):
                failing = [(name, v) for name, v in zip(names, variants)
                           if tallies[name].failing]
                if not failing:
                    break
                all_failed = all_failed or time.monotonic()
                if (time.monotonic() - all_failed > _SAVE_WAIT
                        or all(_saved(database, name, args.space, v.dtype)
                               for name, v in failing)):
                    break
            time.sleep(0.25)
    progress.done()
    hypofuzz.stop()
    tallies = hypofuzz.tallies()
    ran = sum(tallies[name].examples for name in names if name in tallies)
    if not ran and stopped != "interrupted" and not results.findings:  # never a silent pass
        waited = time.perf_counter() - begun
        results.findings.append(Finding(
            "error", None, f"HypoFuzz's workers ran no example in {waited:.0f} s (they take "
            f"seconds to start: a longer --seconds?); its log ends:\n{hypofuzz.log_tail()}",
            variant=variants[0]))
    elif "Traceback (most recent call last)" in hypofuzz.log_tail(10_000) and stream is not None:
        stream.write(f"  HypoFuzz's log holds an error (a worker may have died); it ends:\n"
                     f"{hypofuzz.log_tail()}\n")
    for variant, name in zip(variants, names):
        tally = tallies.get(name)
        stats = FuzzStats(variant, began=tally.first if tally else time.time(),
                          stopped=stopped)
        if tally is not None:
            stats.counts.update(tally.counts)
            stats.seconds = tally.last - tally.first
        results.stats.append(stats)
    results.interrupted = stopped == "interrupted"


def replay_phase(backend_name: str, process, variants: list, args: FuzzSettings, database,
                 stream: TextIO | None, results: FuzzResults, merge: bool) -> None:
    """Each variant's failing examples saved in ``database`` (by HypoFuzz's workers, pytest
    or another machine), run here and shrunk by hypothesis as every engine shrinks (with a
    fixed seed, so every process that replays them shrinks alike), into ``results``'
    findings; with ``merge`` the runs count as shrinking runs of ``results``' stats."""
    import threading

    settings_kwargs = replay_settings(database)
    stop = threading.Event()
    with CtrlC(stop, stream):
        for n, variant in enumerate(variants):
            stats, found, _ = fuzz_variant(
                backend_name, process, variant, settings_kwargs=settings_kwargs,
                seed=REPLAY_SEED, deadline=None, space=args.space,
                progress=ProgressLine(stream), stop=stop, replay=True)
            if stream is not None:
                shrunk, others = stats.saved
                stream.write(f"  {variant.id}: {shrunk} shrunk failing example(s) saved in the "
                             f"database, {others} not shrunk"
                             f"{'; replayed and shrunk here' if shrunk + others else ''}\n")
            if merge:
                results.stats[n].shrink_runs += stats.examples
                if results.stats[n].failing and not found:  # never lost without a word
                    found = [Finding(
                        "error", None, f"HypoFuzz's workers saw {results.stats[n].failing} "
                        "failing example(s) of this variant, but none that the database holds "
                        "fails here (stopped before it was saved, or flaky); run longer, or "
                        "--replay later", variant=variant)]
            else:
                results.stats.append(stats)
            results.findings.extend(found)
            if stats.stopped == "interrupted":
                results.interrupted = True
                break


# --- keeping what was found ------------------------------------------------------------------

def _regression_case(finding: Finding, backend_name: str):
    import numpy as np

    from adamconf.conformance.corpus.cases import Case
    from adamconf.conformance.corpus.golden import problem_digest

    case = finding.case
    safe = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in backend_name)
    digest = problem_digest(case.problem)[:8]
    first_line = finding.message.splitlines()[0] if finding.message else ""
    description = (f"found by 'adamconf fuzz' on {backend_name} {finding.variant.id} "
                   f"({finding.kind}): {first_line[:300]}; {case.description}")
    tags = ("regression",) + tuple(t for t in case.tags if t != "regression")
    with np.errstate(over="ignore"):  # exact_dtypes rounds values near max to bfloat16
        return Case(f"regression/{safe}-{digest}", description, tags, case.problem)


def keep_finding(finding: Finding, spec: str, backend_name: str, regressions: Path,
                 save: bool) -> None:
    """Name the dialects a failing trajectory conforms to, and save the minimal case as a
    regression case in ``regressions`` (once: a case already stored is not stored again),
    with the command that reproduces it; unless ``save`` is off, or the finding is a bug in
    adamconf. What it did is recorded on the finding (:func:`.fuzz_report.write_kept`)."""
    from adamconf.conformance.corpus.golden import add_regression
    from adamconf.conformance.harness.runner import repro_command
    from adamconf.conformance.judge.identify import identify_dialects

    variant = finding.variant
    if finding.case is None:
        return
    if finding.kind == "fail" and finding.observed is not None:
        try:
            finding.dialects = identify_dialects(finding.case, finding.observed, variant.dtype)
        except Exception as exc:  # naming is a help: a failure to name never hides the finding
            finding.dialects = None
            finding.naming_error = f"{type(exc).__name__}: {exc}"
    if finding.kind == HARNESS:
        return
    case = _regression_case(finding, backend_name)
    if not save:
        return
    stored, is_new = add_regression(case, regressions)
    finding.stored_id, finding.is_new = stored.id, is_new
    finding.repro = (repro_command(spec, stored.id, variant)
                     + f" --regressions {shlex.quote(str(regressions))}")
