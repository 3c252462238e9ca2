"""``adamconf fuzz``: hypothesis-generated cases against a backend, judged by the bound.

Each example is a whole case (:func:`.strategies.cases`) for the variant's dtype: it runs
through the backend in its subprocess (one process for the whole run, so an example costs
milliseconds), the reference runs it in mpmath, and the derived bound judges every value
(:func:`.runner.judge_case`). Outcomes:

- ``pass``; ``inconclusive`` (the bound cannot decide; counted and shown, never a pass)
  and ``unsupported`` (the variant cannot express the case) are counted, not failed;
- ``fail`` (a value outside its bound) and a backend error (it raised on a valid case,
  crashed or hung) fail the hypothesis test, so hypothesis shrinks the case. The minimal
  case is saved with :func:`.golden.add_regression` as ``regression/<backend>-<digest8>``
  (once: a case already stored is not stored again) and the command that reproduces it is
  printed.

With ``-j N`` (default: one per core; one with ``--derandomize``) N jobs fuzz at once,
each in its own process with its own backend worker and seed (the campaign's seed + job),
the examples shared out and one example database; the parent runs the invalid phase
meanwhile, sums their progress and merges what they found (one finding per variant and
kind: the smallest case). Ctrl-C sets a flag every job reads before its next example.

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

__all__ = ["FuzzSettings", "run", "default_database_path", "FuzzStats", "Finding",
           "InvalidFinding", "DEFAULT_MAX_EXAMPLES", "INVALID_PHASE_EXAMPLES"]

DEFAULT_MAX_EXAMPLES = 200
INVALID_PHASE_EXAMPLES = 30
_UNLIMITED = 10**9  # --seconds without --max-examples: the clock decides


def default_database_path() -> Path:
    """Where hypothesis keeps failing examples between runs: the user's cache folder."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "adamconf" / "hypothesis"


# --- results ---------------------------------------------------------------------------

OUTCOMES = ("pass", "inconclusive", "unsupported", "fail", "error", "harness")
FAILING = ("fail", "error", "harness")


@dataclass
class FuzzStats:
    """What one variant's fuzzing did; ``examples`` counts every run, shrinking included."""

    variant: Any
    counts: Counter = field(default_factory=Counter)
    shrink_runs: int = 0
    seconds: float = 0.0
    inconclusive_reasons: Counter = field(default_factory=Counter)
    unsupported_reasons: Counter = field(default_factory=Counter)
    stopped: str = ""  # "", "time", "interrupted"
    began: float = 0.0  # time.time() when it began (jobs are merged over their wall span)

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


class _Failure(AssertionError):
    """A value outside its bound: fails the hypothesis test, so the case is shrunk."""


class _BackendError(AssertionError):
    """The backend raised, crashed or hung on a valid case (distinct from _Failure, so
    hypothesis shrinks each kind separately)."""


class _HarnessError(AssertionError):
    """The reference or the judge failed: a bug in adamconf, shrunk for its own sake."""


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

def _is_final_run() -> bool:
    """Whether hypothesis is replaying a minimal failing example (its last run of it)."""
    try:
        from hypothesis.control import current_build_context

        return bool(current_build_context().is_final)
    except Exception:
        return False


def _evaluate(case, variant, spec: str, process) -> tuple[str, str, Any]:
    """(outcome, message, observed) for one case on one variant."""
    from adamconf.conformance.corpus.golden import GoldenCase
    from adamconf.conformance.harness.runner import case_setup
    from adamconf.conformance.harness.worker import ReplyKind
    from adamconf.conformance.judge.case import judge_case
    from adamconf.conformance.judge.outcome import Observed
    from adamconf.reference.balls import run_balls

    # the worker steps the backend while this process computes the reference
    failed = process.send("run", case_setup(case.problem), variant)
    try:
        reference, trouble = run_balls(case.problem), None
    except Exception as exc:
        reference, trouble = None, exc
    reply = failed if failed is not None else process.receive()
    if reply.kind is ReplyKind.UNSUPPORTED:
        return "unsupported", reply.message, None
    if not reply.ok:
        detail = reply.message
        if reply.kind is ReplyKind.RAISED and reply.traceback:
            last = [line for line in reply.traceback.strip().splitlines() if line.strip()]
            where = [line.strip() for line in last if line.strip().startswith("File ")]
            if where:
                detail += f" (at {where[-1]})"
        return "error", f"the backend failed on a valid case: {detail}", None
    observed = Observed.from_payload(reply.value)
    # Judged against the ball engine's trajectory: every value proven correctly rounded,
    # several times faster than mpmath (the saved regression case gets mpmath's, certified)
    if trouble is not None:
        return "harness", f"the reference failed: {type(trouble).__name__}: {trouble}", observed
    golden = GoldenCase(case, reference, reference.precision)
    try:
        result = judge_case(golden, variant, observed, identify=False)
    except ValueError as exc:  # a malformed trajectory (shapes) is the backend's error
        return "error", f"could not judge the backend's output: {exc}", observed
    except Exception as exc:
        return "harness", f"the judge failed: {type(exc).__name__}: {exc}", observed
    return result.status.value, result.message, observed


def _fuzz_variant(spec: str, process, variant, *, settings_kwargs: dict, seed: int | None,
                  deadline: float | None, allow_non_finite: bool, max_steps: int,
                  max_elements: int, progress: _Progress, stop=None
                  ) -> tuple[FuzzStats, list[Finding], Exception | None]:
    from hypothesis import given
    from hypothesis import seed as hypothesis_seed
    from hypothesis import settings as hypothesis_settings

    from adamconf.conformance.corpus.strategies import cases

    stats = FuzzStats(variant, began=time.time())
    finals: list[Finding] = []
    latest: dict[str, Finding] = {}  # the last (most shrunk) failing case of each kind
    started = time.perf_counter()
    exceptions = {"fail": _Failure, "error": _BackendError, "harness": _HarnessError}

    def check(case) -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise _OutOfTime()
        if stop is not None and stop.is_set():
            raise _Stopped()
        if latest:
            stats.shrink_runs += 1
        outcome, message, observed = _evaluate(case, variant, spec, process)
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
            if _is_final_run():
                finals.append(finding)
            raise exceptions[outcome](message)

    # one database key per backend, variant and search space: their examples do not mix
    check._hypothesis_internal_add_digest = (  # type: ignore[attr-defined]
        f"adamconf-fuzz|{spec}|{variant.id}|{allow_non_finite}|{max_steps}|{max_elements}"
    ).encode()
    strategy = cases(variant.dtype, allow_non_finite=allow_non_finite, max_steps=max_steps,
                     max_elements=max_elements)
    test = hypothesis_settings(**settings_kwargs)(given(strategy)(check))
    if seed is not None:
        test = hypothesis_seed(seed)(test)
    raised: Exception | None = None
    try:
        test()
    except _OutOfTime:
        stats.stopped = "time"
    except KeyboardInterrupt:
        stats.stopped = "interrupted"
    except Exception as exc:  # the failure(s) hypothesis shrank and replayed
        raised = exc
    stats.seconds = time.perf_counter() - started
    progress.update(stats, started, force=True)
    progress.done()
    found = finals or list(latest.values())
    if raised is not None and not found:
        # e.g. Flaky: the backend failed a case once and passed it on the replay
        found = [Finding("error", None, f"{type(raised).__name__}: {raised}", None, variant)]
    return stats, found, raised


# --- invalid hyperparameters -------------------------------------------------------------

def _documented_invalid():
    from adamconf.conformance.corpus.strategies import InvalidHyperparameters
    from adamconf.conformance.harness.runner import INVALID_HYPERPARAMETERS
    from adamconf.reference.config import DEFAULTS

    out = []
    for parameter, _, override in INVALID_HYPERPARAMETERS:
        kwargs = {**DEFAULTS, **override, "amsgrad": False, "maximize": False}
        value = override.get(parameter.split("[")[0])
        if parameter.startswith("betas"):
            value = override["betas"][int(parameter[6])]
        if parameter == "lr" and not isinstance(value, (int, float)):
            parameter = "lr type"
        out.append(InvalidHyperparameters(parameter, value, kwargs))
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


def _database(args):
    from hypothesis.database import DirectoryBasedExampleDatabase

    if args.no_database:
        return None, "none"
    path = args.database or default_database_path()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if args.database is not None:
            from adamconf.conformance.errors import UsageError

            raise UsageError(f"--database {path}: cannot create it ({exc})") from None
        return None, f"none ({path} cannot be created: {exc})"
    return DirectoryBasedExampleDatabase(str(path)), str(path)


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


def _describe_problem(case) -> list[str]:
    """A few lines that show a failing case's inputs (for harness failures, never saved)."""
    lines = [f"    {case.description}"]
    problem = case.problem
    index = 0
    for gi, group in enumerate(problem.groups):
        c = group.config
        lines.append(f"    group {gi}: lr={c.lr!r} betas={c.betas!r} eps={c.eps!r} "
                     f"weight_decay={c.weight_decay!r} amsgrad={c.amsgrad} "
                     f"maximize={c.maximize}"
                     + (f" lrs={group.lrs.tolist()!r}" if group.lrs is not None else ""))
        for p in group.params:
            lines.append(f"      param {index}: {p.tolist()!r}; grads "
                         f"{problem.grads[index].tolist()!r}")
            index += 1
    if problem.initial_state is not None:
        lines.append(f"    resumed at step {problem.initial_state.step}")
    return lines


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
        out.write("\n".join(_describe_problem(finding.case)) + "\n")
        return
    case = _regression_case(finding, info.name)
    if not save:
        out.write("  (not saved: --no-save) the minimal case:\n")
        out.write("\n".join(_describe_problem(finding.case)) + "\n")
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
    database: Path | None = None
    no_database: bool = False
    timeout: float = 60.0
    invalid: bool = False
    no_invalid: bool = False
    regressions: Path | None = None  # default: the user's folder (default_regressions_folder)
    no_save: bool = False
    quiet: bool = False
    jobs: int | None = None  # fuzzing processes; None: the machine's cores (1 derandomized)

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
        for name in ("variants", "devices", "dtypes"):
            object.__setattr__(self, name, tuple(getattr(self, name)))


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
                  seed: int | None, database_shown: str, jobs: int = 1) -> None:
    """What runs, and with which settings, so that a reader of a log knows."""
    versions = ", ".join(f"{k} {v}" for k, v in info.versions.items())
    jobs_text = (f" ({jobs} jobs: seeds {seed} to {seed + jobs - 1})"
                 if jobs > 1 and seed is not None else "")
    budget = (f"max examples {max_examples}" if max_examples < _UNLIMITED
              else "until the time is up")
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


def _fuzz_phase(process, variants: list, args: FuzzSettings, settings_kwargs: dict,
                seed: int | None, deadline: float | None, stream: TextIO | None,
                campaign: _Campaign) -> None:
    """Fuzz each variant in turn (an equal share of the time left each), until interrupted."""
    import threading

    stop = threading.Event()
    with _CtrlC(stop, stream):
        _fuzz_variants(process, variants, args, settings_kwargs, seed, deadline,
                       _Progress(stream), stop, campaign)


def _fuzz_variants(process, variants: list, args: FuzzSettings, settings_kwargs: dict,
                   seed: int | None, deadline: float | None, progress: _Progress, stop,
                   campaign: _Campaign) -> None:
    """Each variant in turn, an equal share of the time left each, into ``campaign``; the
    single process and every job of ``-j N`` alike."""
    for n, variant in enumerate(variants):
        variant_deadline = None
        if deadline is not None:  # an equal share of what is left
            left = deadline - time.monotonic()
            variant_deadline = time.monotonic() + left / (len(variants) - n)
        stats, found, _ = _fuzz_variant(
            args.backend, process, variant, settings_kwargs=settings_kwargs, seed=seed,
            deadline=variant_deadline, allow_non_finite=args.allow_non_finite,
            max_steps=args.max_steps, max_elements=args.max_elements,
            progress=progress, stop=stop)
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
        database, _ = _database(args)
        campaign = _Campaign()
        _fuzz_variants(process, [by_id[v] for v in variant_ids], args,
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
            seed: int | None, out: TextIO) -> int:
    """Each finding (saved as a regression case unless --no-save), the invalid values not
    refused, the summary; the exit code: 130 interrupted, 1 anything found, else 0."""
    for finding in campaign.findings:
        _report_finding(finding, args.backend, info, regressions, not args.no_save, out)
    if campaign.invalid:
        _report_invalid(campaign.invalid, campaign.invalid_checked, out)
    _print_summary(campaign.stats, campaign.findings, campaign.invalid,
                   campaign.invalid_checked, seconds, seed, out)
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
    seed = _campaign_seed(args)
    database, database_shown = _database(args)
    settings_kwargs = _hypothesis_settings(max_examples, args.derandomize, database)

    info, process = probe_backend(args.backend, args.timeout)
    process.timeout = args.timeout
    stream = None if args.quiet else sys.stderr
    out = sys.stdout
    campaign = _Campaign()
    started = time.perf_counter()
    deadline = time.monotonic() + args.seconds if args.seconds else None
    jobs = _jobs(args, max_examples)
    running: list = []
    stop = None
    try:
        variants = _choose_variants(info, args)
        if stream is not None:
            _write_header(stream, info, variants, args, max_examples, seed, database_shown,
                          jobs if not args.invalid else 1)
        if jobs > 1 and not args.invalid:  # they start while the invalid phase runs here
            running, stop = _start_jobs(args, variants, jobs, max_examples, seed, deadline)
        if not args.no_invalid:
            examples = max_examples if args.invalid else INVALID_PHASE_EXAMPLES
            examples = min(examples, 100_000)
            campaign.invalid, campaign.invalid_checked = _check_invalid(
                process, variants, examples=examples, settings_kwargs=settings_kwargs,
                seed=seed, progress_stream=stream, deadline=deadline if args.invalid else None)
        if running:
            _gather_jobs(running, stop, variants, stream, campaign)
        elif not args.invalid:
            _fuzz_phase(process, variants, args, settings_kwargs, seed, deadline, stream,
                        campaign)
    finally:
        process.close()
        for proc, _ in running:
            if proc.is_alive():
                proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    if stats is not None:
        stats.extend(campaign.stats)
    return _report(campaign, args, info, regressions, time.perf_counter() - started, seed, out)


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
                   seed: int | None, out: TextIO) -> None:
    out.write("\n")
    total = 0
    for s in all_stats:
        total += s.examples
        c = s.counts
        stopped = {"time": " (stopped: time budget spent)",
                   "interrupted": " (interrupted)"}.get(s.stopped, "")
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
