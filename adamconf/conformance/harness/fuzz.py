"""``adamconf fuzz``: hypothesis-generated cases against a backend, judged by the bound.

Each example is a whole case (:func:`.strategies.cases`) for the variant's dtype: it runs
through the backend in its subprocess (one process for the whole run, so an example costs
milliseconds), the reference runs it in Arb balls, and the derived bound judges every value
(the fuzz property, :mod:`.fuzz_property`). Outcomes:

- ``pass``; ``inconclusive`` (the bound cannot decide; counted and shown, never a pass)
  and ``unsupported`` (the variant cannot express the case) are counted, not failed;
- ``fail`` (a value outside its bound) and a backend error (it raised on a valid case,
  crashed or hung) fail the hypothesis test, so hypothesis shrinks the case. The minimal
  case is saved with :func:`.golden.add_regression` as ``regression/<backend>-<digest8>``
  (once: a case already stored is not stored again) and the command that reproduces it is
  printed.

With ``-j N`` (default: one per core; one with ``--derandomize``) N processes fuzz at once,
by one of two engines (``--engine``):

- ``hypofuzz`` (the default where hypofuzz is installed, unless ``--seed`` asks for a
  repeatable run): HypoFuzz's workers run the fuzz properties as a campaign
  (:mod:`.campaign`), adaptive and coverage-guided, with its dashboard on ``--dashboard
  PORT``; this process adds up their counts, stops the campaign when the budget is spent,
  then replays the failures they saved in the database, shrinking each here and saving it
  as a regression case once;
- ``jobs``: processes of adamconf's own, each with its own backend worker and seed (the
  campaign's seed + job), the examples shared out and one example database; the parent sums
  their progress and merges what they found (one finding per variant and kind: the
  smallest case). Ctrl-C sets a flag every job reads before its next example.

Either way the parent runs the invalid phase meanwhile. The example database is a folder or
a Redis server (``--database redis://host:port``, :mod:`.exampledb`), which other processes
and machines may share; ``--replay`` runs only the failures saved there (by HypoFuzz's
workers, ``pytest --adamconf-fuzz`` or another machine), shrinking and saving each.

A short phase (or, with ``--invalid``, the whole run) checks that values outside the
documented ranges raise ``ValueError`` in the reference and in the backend's constructor;
a backend that accepts one is listed with the values.

Exit codes: 0 no failure found, 1 a failure found, 2 usage or environment error.
"""

from __future__ import annotations

import math
import os
import random
import re
import shlex
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from adamconf.conformance.harness.fuzz_property import (
    FAILING,
    RAISES,
    SearchSpace,
    describe_case,
    evaluate,
    fuzz_test,
    is_final_run,
    property_name,
    saved_failures,
)

__all__ = ["FuzzSettings", "run", "default_database_path", "FuzzStats", "Finding",
           "InvalidFinding", "DEFAULT_MAX_EXAMPLES", "INVALID_PHASE_EXAMPLES", "ENGINES",
           "FAILING"]

ENGINES = ("auto", "hypofuzz", "jobs")

DEFAULT_MAX_EXAMPLES = 200
INVALID_PHASE_EXAMPLES = 30
_UNLIMITED = 10**9  # --seconds without --max-examples: the clock decides


def default_database_path() -> Path:
    """Where hypothesis keeps failing examples between runs: the user's cache folder."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "adamconf" / "hypothesis"


# --- results ---------------------------------------------------------------------------


@dataclass
class FuzzStats:
    """What one variant's fuzzing did; ``examples`` counts every run, shrinking included."""

    variant: Any
    counts: Counter = field(default_factory=Counter)
    shrink_runs: int = 0
    seconds: float = 0.0
    inconclusive_reasons: Counter = field(default_factory=Counter)
    unsupported_reasons: Counter = field(default_factory=Counter)
    stopped: str = ""  # "", "time", "interrupted", "nothing saved" (a replay)
    began: float = 0.0  # time.time() when it began (jobs are merged over their wall span)
    saved: tuple[int, int] = (0, 0)  # failing examples in the database: shrunk, others

    @property
    def examples(self) -> int:
        return sum(self.counts.values())

    @property
    def rate(self) -> float:
        return self.examples / self.seconds if self.seconds > 0 else 0.0

    @property
    def failing(self) -> int:
        return sum(self.counts[k] for k in FAILING)


@dataclass
class Finding:
    """A failing case: ``kind`` is fail (outside the bound), error (the backend raised,
    crashed or hung) or harness (the reference itself failed: a bug in adamconf)."""

    kind: str
    case: Any  # Case
    message: str
    observed: Any = None
    variant: Any = None
    stored_id: str | None = None
    is_new: bool = False
    dialects: list[str] | None = None
    repro: str = ""


@dataclass
class InvalidFinding:
    """A documented-invalid value that was not refused with ValueError."""

    where: str  # "reference" or the variant's name/device
    parameter: str
    shown: str
    outcome: str  # "accepted", or the exception that was raised instead


_COUNT = re.compile(r"\s*\(\d+ values?\)")  # "(42 values)": one key per reason


class _Stopped(KeyboardInterrupt):
    """The parent asked this fuzzing job to stop (Ctrl-C there): as an interrupt here."""


class _OutOfTime(KeyboardInterrupt):
    """The --seconds budget is spent. A KeyboardInterrupt, because that is what hypothesis
    lets through without shrinking it or saving the example as a failure."""


# --- progress ----------------------------------------------------------------------------

class _Progress:
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


# --- the fuzzing of one variant ------------------------------------------------------------

def _fuzz_variant(backend_name: str, process, variant, *, settings_kwargs: dict,
                  seed: int | None, deadline: float | None, space: SearchSpace,
                  progress: _Progress, stop=None, replay: bool = False
                  ) -> tuple[FuzzStats, list[Finding], Exception | None]:
    """Fuzz one variant: its fuzz property, run by hypothesis here. With ``replay``, only
    the failing examples saved in the database are run (and shrunk); where none are saved,
    nothing runs (``stats.stopped`` says so).

    A failure is then shrunk again from what the database holds, until its minimal case no
    longer changes: where one run's shrinking ends depends on where it started, and a
    process that replays the database (on this machine or another) may shrink further.
    At the fixed point every process that shares the database saves the same case."""
    stats = FuzzStats(variant, began=time.time())
    started = time.perf_counter()
    found, raised = _run_property(backend_name, process, variant, settings_kwargs,
                                  seed, deadline, space, progress, stop, stats, started,
                                  replay)
    database = settings_kwargs.get("database")
    for _ in range(_FIXPOINT_ROUNDS):
        if (not found or database is None or stats.stopped
                or any(f.case is None for f in found)):
            break
        again, _ = _run_property(backend_name, process, variant,
                                 _replay_settings(database), _REPLAY_SEED, deadline, space,
                                 progress, stop, stats, started, replay=False)
        before = {f.kind: _digest(f) for f in found}
        merged = {f.kind: f for f in found}
        merged.update({f.kind: f for f in again if f.case is not None})
        found = list(merged.values())
        if {f.kind: _digest(f) for f in found} == before:
            break
    stats.seconds = time.perf_counter() - started
    progress.update(stats, started, force=True)
    progress.done()
    return stats, found, raised


_FIXPOINT_ROUNDS = 5  # rounds of shrinking again from the database, at most


def _digest(finding: Finding) -> str:
    from adamconf.conformance.corpus.golden import problem_digest

    return problem_digest(finding.case.problem)


def _replay_settings(database) -> dict:
    """Settings that run only what ``database`` holds, and shrink it."""
    from hypothesis import Phase

    settings_kwargs = _hypothesis_settings(_REPLAY_EXAMPLES, False, database)
    settings_kwargs["phases"] = (Phase.explicit, Phase.reuse, Phase.shrink)
    return settings_kwargs


def _run_property(backend_name: str, process, variant, settings_kwargs: dict,
                  seed: int | None, deadline: float | None, space: SearchSpace,
                  progress: _Progress, stop, stats: FuzzStats, started: float,
                  replay: bool) -> tuple[list[Finding], Exception | None]:
    """One hypothesis run of the variant's fuzz property, counted into ``stats``: what it
    found (the minimal failing case of each kind), and what it raised."""
    from hypothesis import seed as hypothesis_seed
    from hypothesis import settings as hypothesis_settings

    finals: list[Finding] = []
    latest: dict[str, Finding] = {}  # the last (most shrunk) failing case of each kind

    def check(case) -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise _OutOfTime()
        if stop is not None and stop.is_set():
            raise _Stopped()
        if latest:
            stats.shrink_runs += 1
        outcome, message, observed = evaluate(case, variant, process)
        stats.counts[outcome] += 1
        if outcome == "inconclusive":
            for reason in message.split("; "):
                stats.inconclusive_reasons[_COUNT.sub("", reason)[:160]] += 1
        elif outcome == "unsupported":
            stats.unsupported_reasons[_COUNT.sub("", message)[:160]] += 1
        progress.update(stats, started)
        if outcome in FAILING:
            finding = Finding(outcome, case, message, observed, variant)
            latest[outcome] = finding
            if is_final_run():
                finals.append(finding)
            raise RAISES[outcome](message)

    # the property every engine runs, keyed alike: one database key per backend, variant
    # and search space (pytest's items, HypoFuzz's workers and other machines share it)
    test = fuzz_test(property_name(backend_name, variant, space),
                     space.strategy(variant.dtype), check)
    if seed is not None:
        test = hypothesis_seed(seed)(test)
    # after @seed, which would otherwise turn the example database off
    test = hypothesis_settings(**settings_kwargs)(test)
    if replay:
        database = settings_kwargs.get("database")
        stats.saved = saved_failures(database, test) if database is not None else (0, 0)
        if not sum(stats.saved):
            stats.stopped = "nothing saved"
            return [], None
    raised: Exception | None = None
    try:
        test()
    except _OutOfTime:
        stats.stopped = "time"
    except KeyboardInterrupt:
        stats.stopped = "interrupted"
    except Exception as exc:  # the failure(s) hypothesis shrank and replayed
        raised = exc
    found = finals or list(latest.values())
    if raised is not None and not found:
        # e.g. Flaky: the backend failed a case once and passed it on the replay
        found = [Finding("error", None, f"{type(raised).__name__}: {raised}", None, variant)]
    return found, raised


# --- invalid hyperparameters -------------------------------------------------------------

def _documented_invalid():
    """The documented clauses (:data:`.config.DOCUMENTED_ERRORS`), as drawn arguments."""
    from adamconf.conformance.corpus.strategies import InvalidHyperparameters
    from adamconf.reference.config import DOCUMENTED_ERRORS

    out = []
    for error in DOCUMENTED_ERRORS:
        kwargs = {**error.hyperparameters, "amsgrad": False, "maximize": False}
        parameter = error.parameter
        if parameter == "lr" and not isinstance(error.value, (int, float)):
            parameter = "lr type"
        out.append(InvalidHyperparameters(parameter, error.value, kwargs))
    return out


def _checker(check_one, variant):
    """``item -> check_one(variant, item)`` as a plain function (what @given can wrap)."""
    def check(item) -> None:
        check_one(variant, item)

    return check


def _check_invalid(process, variants, *, examples: int, settings_kwargs: dict,
                   seed: int | None, progress_stream: TextIO | None,
                   deadline: float | None = None) -> tuple[list[InvalidFinding], int]:
    """Each drawn invalid set of arguments, once per (variant name, device): must raise
    ValueError in the reference (GroupConfig) and in the backend's constructor."""
    from hypothesis import given
    from hypothesis import seed as hypothesis_seed
    from hypothesis import settings as hypothesis_settings
    from hypothesis.database import InMemoryExampleDatabase

    from adamconf.conformance.corpus.strategies import invalid_hyperparameters
    from adamconf.conformance.harness.worker import ReplyKind
    from adamconf.reference.config import GroupConfig

    findings: list[InvalidFinding] = []
    seen_reference: set[str] = set()
    checked = 0
    keys = []
    for variant in variants:
        if (variant.name, variant.device) not in [(v.name, v.device) for v in keys]:
            keys.append(variant)

    def check_one(where_variant, item) -> None:
        nonlocal checked
        if deadline is not None and time.monotonic() > deadline:
            raise _OutOfTime()
        checked += 1
        shown = item.describe()
        try:
            GroupConfig(**item.kwargs)
            outcome = "accepted"
        except ValueError:
            outcome = None
        except Exception as exc:
            outcome = f"raised {type(exc).__name__}: {exc}"
        if outcome is not None and shown not in seen_reference:
            seen_reference.add(shown)
            findings.append(InvalidFinding("reference", item.parameter, shown, outcome))
        reply = process.request("construct", where_variant, item.kwargs)
        where = f"{where_variant.name}/{where_variant.device}"
        if reply.ok:
            findings.append(InvalidFinding(where, item.parameter, shown, "accepted"))
        elif reply.kind is ReplyKind.RAISED:
            if not reply.value_error:
                findings.append(InvalidFinding(where, item.parameter, shown,
                                               f"raised {reply.message[:200]}"))
        elif reply.kind is ReplyKind.ERROR:
            findings.append(InvalidFinding(where, item.parameter, shown,
                                           f"backend error: {reply.message[:200]}"))
        # "unsupported": the variant cannot build an optimizer here at all; nothing to judge

    for variant in keys:
        kwargs = {**settings_kwargs, "max_examples": max(examples, 1),
                  "database": InMemoryExampleDatabase()}
        test = hypothesis_settings(**kwargs)(given(invalid_hyperparameters(variant.dtype))(
            _checker(check_one, variant)))
        if seed is not None:
            test = hypothesis_seed(seed)(test)
        try:
            for item in _documented_invalid():
                check_one(variant, item)
            if examples > 0:
                test()
        except _OutOfTime:
            break
        if progress_stream is not None:
            progress_stream.write(f"  invalid hyperparameters on {variant.name}/"
                                  f"{variant.device}: {checked} checked\n")
    return findings, checked


# --- the command ---------------------------------------------------------------------------

def _choose_variants(info, args) -> list:
    from adamconf.conformance.harness.runner import choose_variants

    variants = choose_variants(info, args.backend, args.variants, args.devices, args.dtypes)
    if not (args.variants or args.devices or args.dtypes):
        float32 = [v for v in variants if v.dtype == "float32"]
        variants = (float32 or variants)[:1]
    return variants


def _database(args) -> tuple[Any, str | None, str]:
    """(the example database, the text that opens it in another process, how to show it):
    --database (a folder or a Redis URL, which must work), else the user's cache folder
    where it can be made, else none."""
    from adamconf.conformance.errors import UsageError
    from adamconf.conformance.harness.exampledb import open_database, shown

    if args.no_database:
        return None, None, "none"
    if args.database is not None:
        return open_database(args.database), str(args.database), shown(args.database)
    path = default_database_path()
    try:
        return open_database(path), str(path), str(path)
    except UsageError:
        return None, None, f"none ({path} cannot be created)"


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


def _report_finding(finding: Finding, spec: str, info, regressions: Path, save: bool,
                    out: TextIO) -> None:
    from adamconf.conformance.corpus.golden import add_regression
    from adamconf.conformance.harness.runner import repro_command
    from adamconf.conformance.judge.identify import identify_dialects

    variant = finding.variant
    out.write(f"\nFAILURE ({finding.kind}) on {info.name} {variant.id}:\n  {finding.message}\n")
    if finding.case is None:
        return
    if finding.kind == "fail" and finding.observed is not None:
        try:
            finding.dialects = identify_dialects(finding.case, finding.observed, variant.dtype)
        except Exception as exc:  # naming is a help: a failure to name never hides the finding
            finding.dialects = None
            out.write(f"  (could not search the model: {type(exc).__name__}: {exc})\n")
        if finding.dialects:
            out.write(f"  the trajectory conforms to dialect(s) instead: "
                      f"{', '.join(finding.dialects)}\n")
    if finding.kind == "harness":
        out.write("  this is a bug in adamconf's reference or judge, not in the backend; the "
                  "case (not saved):\n")
        out.write("\n".join(describe_case(finding.case)) + "\n")
        return
    case = _regression_case(finding, info.name)
    if not save:
        out.write("  (not saved: --no-save) the minimal case:\n")
        out.write("\n".join(describe_case(finding.case)) + "\n")
        return
    stored, is_new = add_regression(case, regressions)
    finding.stored_id, finding.is_new = stored.id, is_new
    if is_new:
        out.write(f"  saved as regression case {stored.id} in {regressions}\n")
    else:
        out.write(f"  already stored as regression case {stored.id} in {regressions} (not "
                  "saved again)\n")
    repro = (repro_command(spec, stored.id, variant)
             + f" --regressions {shlex.quote(str(regressions))}")
    finding.repro = repro
    out.write(f"  reproduce: {repro}\n")


@dataclass(frozen=True)
class FuzzSettings:
    """What ``adamconf fuzz`` (and :func:`run`) does; checked when made."""

    backend: str = "numpy"
    variants: tuple[str, ...] = ()
    devices: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ()
    allow_non_finite: bool = False
    max_steps: int = 20
    max_elements: int = 16
    max_examples: int | None = None
    seconds: float | None = None
    seed: int | None = None
    derandomize: bool = False
    database: str | Path | None = None  # a folder or a Redis URL (redis://host:port)
    no_database: bool = False
    timeout: float = 60.0
    invalid: bool = False
    no_invalid: bool = False
    regressions: Path | None = None  # default: the user's folder (default_regressions_folder)
    no_save: bool = False
    quiet: bool = False
    jobs: int | None = None  # fuzzing processes; None: the machine's cores (1 derandomized)
    engine: str = "auto"  # who runs -j N: hypofuzz, jobs, or auto (hypofuzz where installed)
    dashboard: int | None = None  # HypoFuzz's dashboard on this port (0: any free one)
    replay: bool = False  # only the failures saved in the database, shrunk and saved

    def __post_init__(self) -> None:
        from adamconf.conformance.errors import UsageError

        if self.max_examples is not None and self.max_examples < 1:
            raise UsageError(f"--max-examples {self.max_examples}: give a number of examples "
                             ">= 1")
        if self.seconds is not None and not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise UsageError(f"--seconds {self.seconds}: give a positive number of seconds")
        if self.max_steps < 1 or self.max_elements < 1:
            raise UsageError("--max-steps and --max-elements must be at least 1")
        if self.timeout <= 0:
            raise UsageError("--timeout must be a positive number of seconds")
        if self.invalid and self.no_invalid:
            raise UsageError("--invalid and --no-invalid exclude each other")
        if self.database is not None and self.no_database:
            raise UsageError("--database and --no-database exclude each other")
        if self.jobs is not None and self.jobs < 1:
            raise UsageError(f"--jobs {self.jobs}: give at least 1")
        if self.derandomize and (self.jobs or 1) > 1:
            raise UsageError("--derandomize runs one job (the same examples on every run): "
                             "leave out --jobs, or give --seed instead of --derandomize")
        if self.engine not in ENGINES:
            raise UsageError(f"--engine {self.engine}: give one of {', '.join(ENGINES)}")
        if self.replay and self.no_database:
            raise UsageError("--replay runs the failures saved in the example database: "
                             "it needs one (leave out --no-database)")
        if self.replay and self.invalid:
            raise UsageError("--replay and --invalid exclude each other")
        if self.dashboard is not None:
            if not 0 <= self.dashboard <= 65535:
                raise UsageError(f"--dashboard {self.dashboard}: give a port, 0 to 65535")
            if self.engine == "jobs" or self.replay or self.invalid or self.derandomize:
                raise UsageError("--dashboard is HypoFuzz's: it needs the hypofuzz engine "
                                 "(not --engine jobs, --replay, --invalid or --derandomize)")
        if self.database is not None and not isinstance(self.database, str):
            object.__setattr__(self, "database", str(self.database))
        for name in ("variants", "devices", "dtypes"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @property
    def space(self) -> SearchSpace:
        return SearchSpace(allow_non_finite=self.allow_non_finite, max_steps=self.max_steps,
                           max_elements=self.max_elements)


def _hypothesis_settings(max_examples: int, derandomize: bool, database) -> dict:
    """The keyword arguments of every ``hypothesis.settings`` the campaign makes: quiet, no
    deadline or health checks (the backend's speed is not the point), every bug reported."""
    from hypothesis import HealthCheck, Phase, Verbosity

    return dict(
        max_examples=max_examples, derandomize=derandomize, database=database,
        deadline=None, suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
        report_multiple_bugs=True, print_blob=False,
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink))


def _campaign_seed(args: FuzzSettings) -> int | None:
    """The seed given, or a fresh random one; None when derandomized without one."""
    seed = args.seed
    if seed is None and not args.derandomize:
        seed = random.SystemRandom().randrange(2**32)
    return seed


def _write_header(stream: TextIO, info, variants: list, args: FuzzSettings, max_examples: int,
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
    budget = (f"max examples {max_examples}" if max_examples < _UNLIMITED
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


@dataclass
class _Campaign:
    """What the phases found, as they found it."""

    stats: list[FuzzStats] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    invalid: list[InvalidFinding] = field(default_factory=list)
    invalid_checked: int = 0
    interrupted: bool = False


class _CtrlC:
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

    def __enter__(self) -> _CtrlC:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _fuzz_phase(backend_name: str, process, variants: list, args: FuzzSettings,
                settings_kwargs: dict, seed: int | None, deadline: float | None,
                stream: TextIO | None, campaign: _Campaign) -> None:
    """Fuzz each variant in turn (an equal share of the time left each), until interrupted."""
    import threading

    stop = threading.Event()
    with _CtrlC(stop, stream):
        _fuzz_variants(backend_name, process, variants, args, settings_kwargs, seed, deadline,
                       _Progress(stream), stop, campaign)


def _fuzz_variants(backend_name: str, process, variants: list, args: FuzzSettings,
                   settings_kwargs: dict, seed: int | None, deadline: float | None,
                   progress: _Progress, stop, campaign: _Campaign) -> None:
    """Each variant in turn, an equal share of the time left each, into ``campaign``; the
    single process and every job of ``-j N`` alike."""
    for n, variant in enumerate(variants):
        variant_deadline = None
        if deadline is not None:  # an equal share of what is left
            left = deadline - time.monotonic()
            variant_deadline = time.monotonic() + left / (len(variants) - n)
        stats, found, _ = _fuzz_variant(
            backend_name, process, variant, settings_kwargs=settings_kwargs, seed=seed,
            deadline=variant_deadline, space=args.space, progress=progress, stop=stop)
        campaign.stats.append(stats)
        campaign.findings.extend(found)
        if stats.stopped == "interrupted":
            campaign.interrupted = True
            break


def _exit_on_sigterm():
    """SIGTERM (a killed terminal, a CI job's timeout) as SystemExit, so that a campaign's
    processes are stopped and its scratch folders removed on the way out (by default the
    signal ends this process at once; the campaign's own watch would still end its
    processes, but the folders would stay). Returns what to restore, or None."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _engine(args: FuzzSettings, jobs: int) -> tuple[str, str]:
    """(who runs -j N, a note to print): HypoFuzz's workers where asked (--engine hypofuzz,
    --dashboard; a UsageError where it is missing), or by default for several processes
    where it is installed and no --seed asks for a repeatable run; else adamconf's own jobs,
    said where HypoFuzz would have run had it been installed."""
    from adamconf.conformance.harness.campaign import (
        HYPOFUZZ_INSTALL,
        hypofuzz_installed,
        require_hypofuzz,
    )

    if args.invalid or args.replay:
        return "jobs", ""
    if args.engine == "hypofuzz" or args.dashboard is not None:
        require_hypofuzz("--engine hypofuzz" if args.engine == "hypofuzz" else "--dashboard")
        return "hypofuzz", ""
    if args.engine == "jobs" or jobs <= 1 or args.seed is not None:
        return "jobs", ""
    if not hypofuzz_installed():
        return "jobs", (f"HypoFuzz is not installed, so -j {jobs} runs adamconf's own jobs; "
                        f"for HypoFuzz's workers and its dashboard: {HYPOFUZZ_INSTALL}")
    return "hypofuzz", ""


_SAVE_WAIT = 20.0  # s a campaign may run on, once every variant failed, until it saved them
_REPLAY_SEED = 0  # every process that replays a database's failures shrinks them alike
_REPLAY_EXAMPLES = 100  # saved examples replayed at most per variant


class _Several:
    """Stands for the variants of a campaign that fuzzes them all at once (progress line)."""

    def __init__(self, count: int) -> None:
        self.id = f"{count} variants"


def _saved(database, name: str, space: SearchSpace, dtype: str) -> bool:
    """Whether ``database`` holds a failing example of the property ``name``."""
    test = fuzz_test(name, space.strategy(dtype), lambda case: None)  # the same key
    return sum(saved_failures(database, test)) > 0


def _watch_campaign(hypofuzz, backend_name: str, variants: list, args: FuzzSettings,
                    max_examples: int, deadline: float | None, stream: TextIO | None,
                    campaign: _Campaign, database) -> None:
    """Show a HypoFuzz campaign's progress (its workers' counts added up) until its budget is
    spent: the time, ``max_examples`` of every variant, a failure in every variant (once
    the database holds them: HypoFuzz saves in the background), or Ctrl-C; then stop it and
    keep each variant's counts in ``campaign``."""
    import threading

    names = [property_name(backend_name, v, args.space) for v in variants]
    shown_as = variants[0] if len(variants) == 1 else _Several(len(variants))
    progress = _Progress(stream)
    stop = threading.Event()
    stopped, all_failed = "", None
    begun = time.perf_counter()
    dashboard = args.dashboard is None  # True once there is nothing (more) to show
    if stream is not None:
        stream.write(f"  HypoFuzz: starting {hypofuzz.workers} worker(s) (each collects the "
                     "fuzz properties and starts a backend worker)\n")
    with _CtrlC(stop, stream):
        while True:
            if not dashboard and hypofuzz.dashboard_url():
                dashboard = True  # asked for: said even with --quiet
                sys.stderr.write(f"  HypoFuzz's dashboard: {hypofuzz.dashboard_url()}\n")
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
                campaign.findings.append(Finding("error", None, str(hypofuzz.ended_early()),
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
    if not ran and stopped != "interrupted" and not campaign.findings:  # never a silent pass
        waited = time.perf_counter() - begun
        campaign.findings.append(Finding(
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
        campaign.stats.append(stats)
    campaign.interrupted = stopped == "interrupted"


def _replay_phase(backend_name: str, process, variants: list, args: FuzzSettings, database,
                  stream: TextIO | None, campaign: _Campaign, merge: bool) -> None:
    """Each variant's failing examples saved in ``database`` (by HypoFuzz's workers, pytest
    or another machine), run here and shrunk by hypothesis as every engine shrinks (with a
    fixed seed, so every process that replays them shrinks alike), into ``campaign``'s
    findings; with ``merge`` the runs count as shrinking runs of ``campaign``'s stats."""
    import threading

    settings_kwargs = _replay_settings(database)
    stop = threading.Event()
    with _CtrlC(stop, stream):
        for n, variant in enumerate(variants):
            stats, found, _ = _fuzz_variant(
                backend_name, process, variant, settings_kwargs=settings_kwargs,
                seed=_REPLAY_SEED, deadline=None, space=args.space, progress=_Progress(stream),
                stop=stop, replay=True)
            if stream is not None:
                shrunk, others = stats.saved
                stream.write(f"  {variant.id}: {shrunk} shrunk failing example(s) saved in the "
                             f"database, {others} not shrunk"
                             f"{'; replayed and shrunk here' if shrunk + others else ''}\n")
            if merge:
                campaign.stats[n].shrink_runs += stats.examples
                if campaign.stats[n].failing and not found:  # never lost without a word
                    found = [Finding(
                        "error", None, f"HypoFuzz's workers saw {campaign.stats[n].failing} "
                        "failing example(s) of this variant, but none that the database holds "
                        "fails here (stopped before it was saved, or flaky); run longer, or "
                        "--replay later", variant=variant)]
            else:
                campaign.stats.append(stats)
            campaign.findings.extend(found)
            if stats.stopped == "interrupted":
                campaign.interrupted = True
                break


def _jobs(args: FuzzSettings, max_examples: int) -> int:
    """How many fuzzing processes: as asked, else one per core (one when derandomized: the
    same examples every run), never more than there are examples to share."""
    if args.jobs is not None:
        jobs = args.jobs
    elif args.derandomize:
        jobs = 1
    else:
        from adamconf.conformance.harness.lanes import default_jobs

        jobs = default_jobs()
    return max(1, min(jobs, max_examples))


def _shares(total: int, jobs: int) -> list[int]:
    """``total`` examples split over ``jobs`` as evenly as can be (the first get the rest)."""
    if total >= _UNLIMITED:
        return [_UNLIMITED] * jobs
    return [total // jobs + (1 if j < total % jobs else 0) for j in range(jobs)]


class _Relay:
    """A job's progress, sent to the parent (at most every ``period`` seconds), which shows
    the sum of all jobs; quacks like :class:`_Progress`."""

    def __init__(self, conn, job: int, period: float = 0.25) -> None:
        self.conn, self.job, self.period, self._last = conn, job, period, 0.0

    def update(self, stats: FuzzStats, started: float, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < self.period:
            return
        self._last = now
        try:
            self.conn.send(("progress", self.job, stats.variant.id, dict(stats.counts),
                            stats.shrink_runs))
        except (OSError, ValueError):
            pass  # the parent is gone or closing: the job ends with it

    def done(self) -> None:
        pass


def fuzz_job(args: FuzzSettings, job: int, variant_ids: list[str], share: int,
             seed: int | None, deadline: float | None, parent_pid: int, conn, stop) -> None:
    """One fuzzing process of ``adamconf fuzz -j N`` (run by multiprocessing): its own
    backend worker, its own seed (the campaign's + job), ``share`` examples of each variant,
    the shared example database; sends ("progress", …) and then ("done", stats, findings)
    or ("failed", message) to the parent. Ctrl-C is the parent's: it sets ``stop``, which
    the job reads before each example."""
    import signal

    from adamconf.conformance.harness.runner import probe_backend
    from adamconf.conformance.harness.worker import watch_parent

    watch_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    process = None
    try:
        info, process = probe_backend(args.backend, args.timeout)
        process.timeout = args.timeout
        by_id = {v.id: v for v in info.variants}
        database, _, _ = _database(args)
        campaign = _Campaign()
        _fuzz_variants(info.name, process, [by_id[v] for v in variant_ids], args,
                       _hypothesis_settings(share, args.derandomize, database),
                       None if seed is None else seed + job, deadline, _Relay(conn, job),
                       stop, campaign)
        conn.send(("done", job, campaign.stats, campaign.findings))
    except Exception as exc:
        conn.send(("failed", job, f"{type(exc).__name__}: {exc}"))
    finally:
        if process is not None:
            process.close()
        conn.close()


def _merge_stats(per_job: list[list[FuzzStats]], variants: list) -> list[FuzzStats]:
    """One FuzzStats per variant over all jobs: counts added, the wall time from the first
    job's start to the last one's end (they ran at once), stopped if any job stopped."""
    merged = []
    for n, variant in enumerate(variants):
        parts = [stats[n] for stats in per_job if n < len(stats)]
        if not parts:
            continue
        total = FuzzStats(variant, began=min(part.began for part in parts))
        total.seconds = max(part.began + part.seconds for part in parts) - total.began
        for part in parts:
            total.counts.update(part.counts)
            total.shrink_runs += part.shrink_runs
            total.inconclusive_reasons.update(part.inconclusive_reasons)
            total.unsupported_reasons.update(part.unsupported_reasons)
            total.stopped = total.stopped or part.stopped
        merged.append(total)
    return merged


def _smallest_findings(findings: list[Finding]) -> list[Finding]:
    """One finding per variant and kind, as one job reports (several jobs may each find and
    shrink the same bug): the smallest case — fewest parameters, elements, steps."""
    def size(f: Finding) -> tuple:
        if f.case is None:
            return (math.inf,)
        problem = f.case.problem
        return (len(problem.params), sum(p.size for p in problem.params), problem.steps,
                len(problem.groups), f.case.id)

    best: dict[tuple, Finding] = {}
    for f in findings:
        key = (f.variant.id if f.variant is not None else "", f.kind)
        if key not in best or size(f) < size(best[key]):
            best[key] = f
    return list(best.values())


def _start_jobs(args: FuzzSettings, variants: list, jobs: int, max_examples: int,
                seed: int | None, deadline: float | None) -> list:
    """Start the fuzzing processes: ([(process, connection)], the stop event); the work
    starts at once."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    shares = _shares(max_examples, jobs)  # of each variant's examples
    stop = context.Event()
    started = []
    for job in range(jobs):
        here, there = context.Pipe(duplex=False)
        proc = context.Process(
            target=fuzz_job, name=f"adamconf-fuzz-{job}", daemon=True,
            args=(args, job, [v.id for v in variants], shares[job], seed, deadline,
                  os.getpid(), there, stop))
        _start_without_main(proc)
        there.close()
        started.append((proc, here))
    return started, stop


def _start_without_main(proc) -> None:
    """Start a spawned process without it importing the caller's ``__main__``: a job needs
    nothing of it, and a script that calls ``adamconf.fuzz`` without an
    ``if __name__ == "__main__"`` guard would otherwise run again in every job."""
    import types

    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        proc.start()
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _gather_jobs(started: list, stop, variants: list, stream: TextIO | None,
                 campaign: _Campaign) -> None:
    """Wait for every job, showing the sum of their progress; merge what they found. On
    Ctrl-C the jobs are told to stop (before their next example) and send what they did;
    one that has not within 15 s is killed."""
    progress = _Progress(stream)
    results: dict[int, tuple[list, list]] = {}
    failures: list[str] = []
    with _CtrlC(stop, stream):
        _wait_for_jobs(started, stop, variants, progress, results, failures)
    progress.done()
    per_job = [results[j][0] for j in sorted(results)]
    campaign.stats.extend(_merge_stats(per_job, variants))
    campaign.findings.extend(_smallest_findings(
        [f for j in sorted(results) for f in results[j][1]]))
    if not stop.is_set():  # a job stopped by Ctrl-C is not a failure of the backend
        for message in failures:
            campaign.findings.append(Finding("error", None, f"a fuzzing job failed: {message}",
                                             variant=variants[0]))
    if stop.is_set() or any(s.stopped == "interrupted" for s in campaign.stats):
        campaign.interrupted = True


def _wait_for_jobs(started: list, stop, variants: list, progress: _Progress,
                   results: dict, failures: list[str]) -> None:
    """Read the jobs' messages until every job has ended (or, 15 s after a stop, kill)."""
    from multiprocessing.connection import wait

    begun = time.perf_counter()
    latest: dict[int, tuple[str, dict, int]] = {}
    open_conns = {conn: job for job, (_, conn) in enumerate(started)}
    give_up = math.inf
    while open_conns:
        if stop.is_set() and give_up == math.inf:
            give_up = time.monotonic() + 15
        if time.monotonic() > give_up:
            for job in open_conns.values():
                started[job][0].kill()
                failures.append(f"job {job} did not stop within 15 s of Ctrl-C; killed")
            return
        for conn in wait(list(open_conns), timeout=0.5):
            job = open_conns[conn]
            try:
                message = conn.recv()
            except (EOFError, OSError):
                del open_conns[conn]
                if job not in results:
                    failures.append(f"job {job} ended without a result (exit code "
                                    f"{started[job][0].exitcode})")
                continue
            if message[0] == "progress":
                latest[job] = (message[2], message[3], message[4])
                progress.update(_progress_sum(latest, variants), begun)
            elif message[0] == "done":
                results[job] = (message[2], message[3])
            else:
                failures.append(f"job {job}: {message[2]}")


def _progress_sum(latest: dict[int, tuple[str, dict, int]], variants: list) -> FuzzStats:
    """What the progress line shows: every job's latest counts added up, under the variant
    the furthest job is on."""
    ids = [v.id for v in variants]
    furthest = max((ids.index(v) for v, _, _ in latest.values() if v in ids), default=0)
    shown = FuzzStats(variants[furthest])
    for _, counts, shrink in latest.values():
        shown.counts.update(counts)
        shown.shrink_runs += shrink
    return shown


def _report(campaign: _Campaign, args: FuzzSettings, info, regressions: Path, seconds: float,
            seed: int | None, out: TextIO, engine: str = "jobs") -> int:
    """Each finding (saved as a regression case unless --no-save), the invalid values not
    refused, the summary; the exit code: 130 interrupted, 1 anything found, else 0."""
    for finding in campaign.findings:
        _report_finding(finding, args.backend, info, regressions, not args.no_save, out)
    if campaign.invalid:
        _report_invalid(campaign.invalid, campaign.invalid_checked, out)
    _print_summary(campaign.stats, campaign.findings, campaign.invalid,
                   campaign.invalid_checked, seconds, seed, out, engine)
    if campaign.interrupted:
        return 130
    return 1 if campaign.findings or campaign.invalid else 0


def run(args: FuzzSettings, *, stats: list[FuzzStats] | None = None) -> int:
    """Fuzz as the settings say; print findings and the summary; the exit code. ``stats``,
    where given, receives each variant's :class:`FuzzStats` (for ``adamconf bench``)."""
    from adamconf.conformance.corpus.golden import default_regressions_folder
    from adamconf.conformance.errors import UsageError
    from adamconf.conformance.harness.runner import probe_backend

    try:
        import hypothesis  # noqa: F401
    except ImportError:
        raise UsageError("adamconf fuzz needs hypothesis: pip install 'adamconf[fuzz]'") from None
    regressions = Path(args.regressions) if args.regressions else default_regressions_folder()

    max_examples = args.max_examples or (_UNLIMITED if args.seconds else DEFAULT_MAX_EXAMPLES)
    seed = _REPLAY_SEED if args.replay else _campaign_seed(args)
    jobs = _jobs(args, max_examples)
    engine, note = _engine(args, jobs)
    if note:  # never a silent fallback: said even with --quiet
        sys.stderr.write(f"adamconf fuzz: {note}\n")
    database, database_text, database_shown = _database(args)
    settings_kwargs = _hypothesis_settings(max_examples, args.derandomize, database)

    info, process = probe_backend(args.backend, args.timeout)
    process.timeout = args.timeout
    stream = None if args.quiet else sys.stderr
    out = sys.stdout
    campaign = _Campaign()
    started = time.perf_counter()
    deadline = time.monotonic() + args.seconds if args.seconds else None
    running: list = []
    stop = None
    hypofuzz = None
    scratch = None
    old_sigterm = None
    try:
        variants = _choose_variants(info, args)
        fuzzing = not (args.invalid or args.replay)
        if engine == "hypofuzz" and fuzzing:
            if database is None:  # the workers and the replay share one: a scratch folder
                import tempfile

                from adamconf.conformance.harness.exampledb import open_database

                scratch = tempfile.mkdtemp(prefix="adamconf-fuzz-database-")
                database, database_text = open_database(scratch), scratch
                database_shown = (f"{database_shown}, so a scratch folder for this run's "
                                  "workers")
            from adamconf.conformance.harness.campaign import Campaign

            hypofuzz = Campaign(spec=args.backend, variant_ids=[v.id for v in variants],
                                space=args.space, database=database_text, workers=jobs,
                                timeout=args.timeout, dashboard_port=args.dashboard)
        if stream is not None:
            _write_header(stream, info, variants, args, max_examples, seed, database_shown,
                          jobs if fuzzing else 1, engine)
        if hypofuzz is not None:  # it starts while the invalid phase runs here
            old_sigterm = _exit_on_sigterm()
            hypofuzz.start()
        elif jobs > 1 and fuzzing:  # they start while the invalid phase runs here
            running, stop = _start_jobs(args, variants, jobs, max_examples, seed, deadline)
        if not args.no_invalid and not args.replay:
            examples = max_examples if args.invalid else INVALID_PHASE_EXAMPLES
            examples = min(examples, 100_000)
            campaign.invalid, campaign.invalid_checked = _check_invalid(
                process, variants, examples=examples, settings_kwargs=settings_kwargs,
                seed=seed, progress_stream=stream, deadline=deadline if args.invalid else None)
        if hypofuzz is not None:
            _watch_campaign(hypofuzz, info.name, variants, args, max_examples, deadline,
                            stream, campaign, database)
            # what the workers found is kept, after Ctrl-C too (a second one skips it)
            if not campaign.interrupted or any(st.failing for st in campaign.stats):
                _replay_phase(info.name, process, variants, args, database, stream, campaign,
                              merge=True)
        elif running:
            _gather_jobs(running, stop, variants, stream, campaign)
        elif args.replay:
            _replay_phase(info.name, process, variants, args, database, stream, campaign,
                          merge=False)
        elif not args.invalid:
            _fuzz_phase(info.name, process, variants, args, settings_kwargs, seed, deadline,
                        stream, campaign)
    finally:
        process.close()
        if hypofuzz is not None:
            hypofuzz.close()
        if old_sigterm is not None:
            import signal

            signal.signal(signal.SIGTERM, old_sigterm)
        if scratch is not None:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
        for proc, _ in running:
            if proc.is_alive():
                proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    if stats is not None:
        stats.extend(campaign.stats)
    return _report(campaign, args, info, regressions, time.perf_counter() - started, seed, out,
                   engine if hypofuzz is not None else "jobs")


def _report_invalid(invalid: list[InvalidFinding], checked: int, out: TextIO) -> None:
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


def _print_summary(all_stats: list[FuzzStats], findings: list[Finding],
                   invalid: list[InvalidFinding], invalid_checked: int, seconds: float,
                   seed: int | None, out: TextIO, engine: str = "jobs") -> None:
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
