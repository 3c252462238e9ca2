"""The fuzz property of one backend variant: one hypothesis test, whichever engine runs it.

A drawn case (:func:`.strategies.cases`, exact in the variant's dtype) runs through the
backend in its worker process while the reference runs it in Arb balls; the derived bound
judges every value (:func:`evaluate`). ``pass``, ``inconclusive`` and ``unsupported`` pass
the test; ``fail`` (a value outside its bound), ``error`` (the backend raised, crashed or
hung on a valid case) and ``harness`` (the reference or the judge failed: a bug in adamconf)
raise, each its own exception type, so hypothesis shrinks each kind separately.

Three engines run the same test (:func:`fuzz_test`):

- ``adamconf fuzz``, in one process or in jobs of its own (:mod:`.fuzz`), each through
  :func:`fuzz_variant`: the test run by hypothesis here, every outcome counted
  (:class:`FuzzStats`), the minimal failing case of each kind kept (:class:`Finding`) and
  shrunk again from the database until it no longer changes;
- pytest, as the plugin's items ``fuzz[<backend>/<variant>]``
  (``pytest --adamconf-backend numpy --adamconf-fuzz``);
- HypoFuzz's workers (``hypothesis fuzz -- --adamconf-backend numpy --adamconf-fuzz``, or
  ``adamconf fuzz -j N`` where hypofuzz is installed: :mod:`.campaign`).

They share one example-database key per backend, variant and search space: hypothesis's
digest of the test function (its source and signature) and the pytest node id of the
plugin's item, which is what hypothesis's pytest plugin and HypoFuzz key it by. A failure
that any of them saved is replayed first by all the others, on this machine or another.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from adamconf.conformance.judge.outcome import Status

__all__ = ["HARNESS", "FAILING", "Failure", "BackendError", "HarnessError", "RAISES",
           "SearchSpace", "property_name", "node_id", "fuzz_test", "database_key",
           "saved_failures", "evaluate", "describe_case", "is_final_run", "UNLIMITED",
           "REPLAY_SEED", "settings_for", "replay_settings", "FuzzStats", "Finding", "Stopped",
           "OutOfTime", "Progress", "fuzz_variant", "run_property"]

# An example ends as a case's Status (its value: "pass", "fail", …) or, where the reference
# or the judge failed, as "harness": a bug in adamconf, which no case result can be.
HARNESS = "harness"
FAILING = (Status.FAIL.value, Status.ERROR.value, HARNESS)


class Failure(AssertionError):
    """A value outside its bound: fails the hypothesis test, so the case is shrunk."""


class BackendError(AssertionError):
    """The backend raised, crashed or hung on a valid case (distinct from Failure, so
    hypothesis shrinks each kind separately)."""


class HarnessError(AssertionError):
    """The reference or the judge failed: a bug in adamconf, shrunk for its own sake."""


RAISES: dict[str, type[AssertionError]] = {Status.FAIL.value: Failure,
                                           Status.ERROR.value: BackendError,
                                           HARNESS: HarnessError}


@dataclass(frozen=True)
class SearchSpace:
    """What the strategy draws: the bounds that make one property differ from another."""

    allow_non_finite: bool = False
    max_steps: int = 20
    max_elements: int = 16

    def strategy(self, dtype: str):
        from adamconf.conformance.corpus.strategies import cases

        return cases(dtype, allow_non_finite=self.allow_non_finite, max_steps=self.max_steps,
                     max_elements=self.max_elements)

    def suffix(self) -> str:
        """Empty for the default space; else what differs (it is part of the item's name,
        so that examples of different spaces do not mix in a database)."""
        default = SearchSpace()
        parts = []
        if self.max_steps != default.max_steps:
            parts.append(f"steps{self.max_steps}")
        if self.max_elements != default.max_elements:
            parts.append(f"elements{self.max_elements}")
        if self.allow_non_finite:
            parts.append("non-finite")
        return "".join(f",{p}" for p in parts)


def property_name(backend_name: str, variant, space: SearchSpace) -> str:
    """The pytest item's name: ``fuzz[numpy/production/cpu/float32]``."""
    return f"fuzz[{backend_name}/{variant.id}{space.suffix()}]"


def node_id(name: str) -> str:
    """The node id pytest gives an item made directly under the session (as the plugin
    makes its fuzz items): ``::`` and the name. Part of the database key."""
    return "::" + name


def fuzz_test(name: str, strategy, check: Callable[[Any], None]):
    """The hypothesis test of the property named ``name``: ``@given(case=strategy)``, calling
    ``check(case)`` (which evaluates the case and raises where it fails). Every engine builds
    it here, so every engine keys its examples alike (see the module docstring); the body
    is part of the key and is best left as it is."""
    from hypothesis import given

    def adamconf_fuzz(case) -> None:
        check(case)

    # what hypothesis's pytest plugin and HypoFuzz add to the digest: the item's node id
    adamconf_fuzz._hypothesis_internal_add_digest = node_id(name).encode()  # type: ignore
    return given(case=strategy)(adamconf_fuzz)


def database_key(test) -> bytes:
    """The key under which hypothesis (and HypoFuzz) save the failing examples of ``test``, a
    test made by :func:`fuzz_test`: the digest hypothesis computes of its inner function.
    (HypoFuzz uses the same internal function: there is no public one.)"""
    from hypothesis.internal.reflection import function_digest

    return function_digest(test.hypothesis.inner_test)


def saved_failures(database, test) -> tuple[int, int]:
    """How many failing examples ``database`` holds for ``test``: (shrunk, others). The
    shrunk are under hypothesis's key; the others under its ``.secondary`` key, where
    hypothesis keeps the failing examples it passed on the way to the minimal one and
    HypoFuzz puts a failure as soon as it finds it, before shrinking it."""
    key = database_key(test)
    return (sum(1 for _ in database.fetch(key)),
            sum(1 for _ in database.fetch(key + b".secondary")))


def is_final_run() -> bool:
    """Whether hypothesis is replaying a minimal failing example (its last run of it)."""
    try:
        from hypothesis.control import current_build_context

        return bool(current_build_context().is_final)
    except Exception:
        return False


def evaluate(case, variant, process) -> tuple[str, str, Any]:
    """(outcome, message, observed) for one case on one variant, run by ``process`` (a
    :class:`.worker.BackendProcess`)."""
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
        return HARNESS, f"the reference failed: {type(trouble).__name__}: {trouble}", observed
    golden = GoldenCase(case, reference, reference.precision)
    try:
        result = judge_case(golden, variant, observed, identify=False)
    except ValueError as exc:  # a malformed trajectory (shapes) is the backend's error
        return "error", f"could not judge the backend's output: {exc}", observed
    except Exception as exc:
        return HARNESS, f"the judge failed: {type(exc).__name__}: {exc}", observed
    return result.status.value, result.message, observed


def describe_case(case) -> list[str]:
    """A few lines that show a case's inputs (a failing case, printed where it is not saved)."""
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


# --- one process's run of the property -------------------------------------------------------

UNLIMITED = 10**9  # --seconds without --max-examples: the clock decides
REPLAY_SEED = 0  # every process that replays a database's failures shrinks them alike
_REPLAY_EXAMPLES = 100  # saved examples replayed at most per variant
_FIXPOINT_ROUNDS = 5  # rounds of shrinking again from the database, at most


def settings_for(max_examples: int, derandomize: bool, database) -> dict:
    """The keyword arguments of every ``hypothesis.settings`` ``adamconf fuzz`` makes: quiet, no
    deadline or health checks (the backend's speed is not the point), every bug reported."""
    from hypothesis import HealthCheck, Phase, Verbosity

    return dict(
        max_examples=max_examples, derandomize=derandomize, database=database,
        deadline=None, suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
        report_multiple_bugs=True, print_blob=False,
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink))


def replay_settings(database) -> dict:
    """Settings that run only what ``database`` holds, and shrink it."""
    from hypothesis import Phase

    settings_kwargs = settings_for(_REPLAY_EXAMPLES, False, database)
    settings_kwargs["phases"] = (Phase.explicit, Phase.reuse, Phase.shrink)
    return settings_kwargs


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
    naming_error: str = ""  # why the dialects could not be searched, where they could not


_COUNT = re.compile(r"\s*\(\d+ values?\)")  # "(42 values)": one key per reason


class Stopped(KeyboardInterrupt):
    """The parent asked this fuzzing job to stop (Ctrl-C there): as an interrupt here."""


class OutOfTime(KeyboardInterrupt):
    """The --seconds budget is spent. A KeyboardInterrupt, because that is what hypothesis
    lets through without shrinking it or saving the example as a failure."""


class Progress(Protocol):
    """What a run of the property shows its counts to: a progress line
    (:class:`.fuzz_report.ProgressLine`), or a job's relay to its parent."""

    def update(self, stats: FuzzStats, started: float, force: bool = False) -> None: ...

    def done(self) -> None: ...


def fuzz_variant(backend_name: str, process, variant, *, settings_kwargs: dict,
                 seed: int | None, deadline: float | None, space: SearchSpace,
                 progress: Progress, stop=None, replay: bool = False
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
    found, raised = run_property(backend_name, process, variant, settings_kwargs,
                                 seed, deadline, space, progress, stop, stats, started,
                                 replay)
    database = settings_kwargs.get("database")
    for _ in range(_FIXPOINT_ROUNDS):
        if (not found or database is None or stats.stopped
                or any(f.case is None for f in found)):
            break
        again, _ = run_property(backend_name, process, variant,
                                replay_settings(database), REPLAY_SEED, deadline, space,
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


def _digest(finding: Finding) -> str:
    from adamconf.conformance.corpus.golden import problem_digest

    return problem_digest(finding.case.problem)


def run_property(backend_name: str, process, variant, settings_kwargs: dict,
                 seed: int | None, deadline: float | None, space: SearchSpace,
                 progress: Progress, stop, stats: FuzzStats, started: float,
                 replay: bool) -> tuple[list[Finding], Exception | None]:
    """One hypothesis run of the variant's fuzz property, counted into ``stats``: what it
    found (the minimal failing case of each kind), and what it raised."""
    from hypothesis import seed as hypothesis_seed
    from hypothesis import settings as hypothesis_settings

    finals: list[Finding] = []
    latest: dict[str, Finding] = {}  # the last (most shrunk) failing case of each kind

    def check(case) -> None:
        if deadline is not None and time.monotonic() > deadline:
            raise OutOfTime()
        if stop is not None and stop.is_set():
            raise Stopped()
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
    except OutOfTime:
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
