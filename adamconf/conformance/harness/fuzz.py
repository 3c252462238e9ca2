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

Exit codes: 0 no failure found, 1 a failure found, 2 usage or environment error (130
interrupted).

The rooms: the property and its run in one process (:mod:`.fuzz_property`); who runs it
(:mod:`.fuzz_engine` here, :mod:`.fuzz_jobs` adamconf's processes, :mod:`.campaign`
HypoFuzz's) and the invalid-value phase (:mod:`.fuzz_invalid`); the printing
(:mod:`.fuzz_report`); the settings (:mod:`.fuzz_settings`). This module is the command:
the phases in order, and the public names.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import TextIO

from adamconf.conformance.harness.exampledb import database_for, default_database_path
from adamconf.conformance.harness.fuzz_engine import (
    FuzzResults,
    exit_on_sigterm,
    fuzz_phase,
    fuzz_variants,
    keep_finding,
    replay_phase,
    watch_campaign,
)
from adamconf.conformance.harness.fuzz_invalid import InvalidFinding, check_invalid
from adamconf.conformance.harness.fuzz_jobs import Relay, gather_jobs, job_count, start_jobs
from adamconf.conformance.harness.fuzz_property import (
    FAILING,
    REPLAY_SEED,
    UNLIMITED,
    Finding,
    FuzzStats,
    settings_for,
)
from adamconf.conformance.harness.fuzz_report import (
    write_failure,
    write_header,
    write_invalid,
    write_kept,
    write_summary,
)
from adamconf.conformance.harness.fuzz_settings import (
    DEFAULT_MAX_EXAMPLES,
    ENGINES,
    INVALID_PHASE_EXAMPLES,
    FuzzSettings,
)

__all__ = ["FuzzSettings", "run", "fuzz_job", "default_database_path", "FuzzStats", "Finding",
           "InvalidFinding", "DEFAULT_MAX_EXAMPLES", "INVALID_PHASE_EXAMPLES", "ENGINES",
           "FAILING"]


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

    max_examples = args.max_examples or (UNLIMITED if args.seconds else DEFAULT_MAX_EXAMPLES)
    seed = REPLAY_SEED if args.replay else _campaign_seed(args)
    jobs = job_count(args, max_examples)
    engine, note = _engine(args, jobs)
    if note:  # never a silent fallback: said even with --quiet
        sys.stderr.write(f"adamconf fuzz: {note}\n")
    database, database_text, database_shown = database_for(
        args.database, none=args.database_off)
    settings_kwargs = settings_for(max_examples, args.derandomize, database)

    info, process = probe_backend(args.backend, args.timeout)
    process.timeout = args.timeout
    stream = None if args.quiet else sys.stderr
    out = sys.stdout
    results = FuzzResults()
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
            write_header(stream, info, variants, args, max_examples, seed, database_shown,
                         jobs if fuzzing else 1, engine)
        if hypofuzz is not None:  # it starts while the invalid phase runs here
            old_sigterm = exit_on_sigterm()
            hypofuzz.start()
        elif jobs > 1 and fuzzing:  # they start while the invalid phase runs here
            running, stop = start_jobs(fuzz_job, args, variants, jobs, max_examples, seed,
                                       deadline)
        if not args.no_invalid and not args.replay:
            examples = max_examples if args.invalid else INVALID_PHASE_EXAMPLES
            examples = min(examples, 100_000)
            results.invalid, results.invalid_checked = check_invalid(
                process, variants, examples=examples, settings_kwargs=settings_kwargs,
                seed=seed, progress_stream=stream, deadline=deadline if args.invalid else None)
        if hypofuzz is not None:
            watch_campaign(hypofuzz, info.name, variants, args, max_examples, deadline,
                           stream, results, database)
            # what the workers found is kept, after Ctrl-C too (a second one skips it)
            if not results.interrupted or any(st.failing for st in results.stats):
                replay_phase(info.name, process, variants, args, database, stream, results,
                             merge=True)
        elif running:
            gather_jobs(running, stop, variants, stream, results)
        elif args.replay:
            replay_phase(info.name, process, variants, args, database, stream, results,
                         merge=False)
        elif not args.invalid:
            fuzz_phase(info.name, process, variants, args, settings_kwargs, seed, deadline,
                       stream, results)
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
        stats.extend(results.stats)
    return _report(results, args, info, regressions, time.perf_counter() - started, seed, out,
                   engine if hypofuzz is not None else "jobs")


def _report(results: FuzzResults, args: FuzzSettings, info, regressions: Path, seconds: float,
            seed: int | None, out: TextIO, engine: str = "jobs") -> int:
    """Each finding (saved as a regression case unless --no-save), the invalid values not
    refused, the summary; the exit code: 130 interrupted, 1 anything found, else 0."""
    for finding in results.findings:
        write_failure(finding, info.name, out)
        keep_finding(finding, args.backend, info.name, regressions, not args.no_save)
        write_kept(finding, regressions, out)
    if results.invalid:
        write_invalid(results.invalid, results.invalid_checked, out)
    write_summary(results.stats, results.findings, results.invalid,
                  results.invalid_checked, seconds, seed, out, engine)
    if results.interrupted:
        return 130
    return 1 if results.findings or results.invalid else 0


def fuzz_job(args: FuzzSettings, job: int, variant_ids: list[str], share: int,
             seed: int | None, deadline: float | None, parent_pid: int, conn, stop) -> None:
    """One fuzzing process of ``adamconf fuzz -j N`` (run by multiprocessing): its own
    backend worker, its own seed (the campaign's + job), ``share`` examples of each variant,
    the shared example database; sends ("progress", …) and then ("done", stats, findings)
    or ("failed", message) to the parent. Ctrl-C is the parent's: it sets ``stop``, which
    the job reads before each example.

    It lives here, with the command: hypothesis also draws constants written in the local
    modules a process has imported, so what a job imports is part of what its seed draws,
    and a job imports this module (as it always has)."""
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
        database, _, _ = database_for(args.database, none=args.database_off)
        results = FuzzResults()
        fuzz_variants(info.name, process, [by_id[v] for v in variant_ids], args,
                      settings_for(share, args.derandomize, database),
                      None if seed is None else seed + job, deadline, Relay(conn, job),
                      stop, results)
        conn.send(("done", job, results.stats, results.findings))
    except Exception as exc:
        conn.send(("failed", job, f"{type(exc).__name__}: {exc}"))
    finally:
        if process is not None:
            process.close()
        conn.close()


def _choose_variants(info, args) -> list:
    from adamconf.conformance.harness.runner import choose_variants

    variants = choose_variants(info, args.backend, args.variants, args.devices, args.dtypes)
    if not (args.variants or args.devices or args.dtypes):
        float32 = [v for v in variants if v.dtype == "float32"]
        variants = (float32 or variants)[:1]
    return variants


def _campaign_seed(args: FuzzSettings) -> int | None:
    """The seed given, or a fresh random one; None when derandomized without one."""
    seed = args.seed
    if seed is None and not args.derandomize:
        seed = random.SystemRandom().randrange(2**32)
    return seed


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
