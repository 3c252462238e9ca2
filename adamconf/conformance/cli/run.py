"""``adamconf run``: the corpus against backends, judged by the bound."""

from __future__ import annotations

import sys
from pathlib import Path

from adamconf.conformance.cli.common import (
    EXIT_NO_VERDICT,
    EXIT_NONCONFORMING,
    EXIT_OK,
    add_generic,
    add_selection,
    parse_options,
    regressions_folder,
)
from adamconf.conformance.errors import UsageError


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="run the corpus against backends and judge it",
                       description="Run every selected golden case on every selected variant "
                                   "of the backend (each backend in its own subprocess), judge "
                                   "each value against the derived error bound, name the "
                                   "dialect a failing variant implements instead, and check the "
                                   "documented ValueErrors on its constructor.")
    add_selection(p)
    o = p.add_argument_group("output")
    o.add_argument("--json", type=Path, metavar="PATH", help="write the JSON report here")
    o.add_argument("--junit", type=Path, metavar="PATH", help="write JUnit XML here")
    o.add_argument("--html", type=Path, metavar="PATH",
                   help="write a self-contained HTML report here (plots need the 'report' extra)")
    o.add_argument("--verbose", "-v", action="store_true", help="list every failure")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    b = p.add_argument_group("behaviour")
    b.add_argument("--timeout", type=float, default=300.0, metavar="S",
                   help="seconds one case may take before it is an error (default 300)")
    b.add_argument("--strict", action="store_true",
                   help="exit 1 when any case is inconclusive (by default they are reported, "
                        "never counted as passes, and do not change the exit code)")
    b.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help="lanes that run and judge in parallel, each with its own worker "
                        "(default: the machine's cores)")
    b.add_argument("--python", metavar="PATH", default=None,
                   help="run the backend's worker on this interpreter (a virtual environment "
                        "where its framework is installed; it needs adamconf and numpy "
                        "there); per backend: a [python] table in ./adamconf.toml")
    b.add_argument("--min-judged", type=float, default=None, metavar="FRACTION",
                   help="a variant that judged (pass or fail) fewer than this fraction of its "
                        "selected cases does not conform (e.g. 0.5)")
    b.add_argument("--no-validate", action="store_true",
                   help="skip the check of the documented ValueErrors on the constructor")
    b.add_argument("--no-identify", action="store_true",
                   help="do not look for the dialect a failing variant implements")
    add_generic(p)


def execute(args) -> int:
    from adamconf.conformance.api import CheckResult, check, features_from_items
    from adamconf.conformance.judge.outcome import Conformance
    from adamconf.conformance.report import formats
    from adamconf.conformance.report import text as report

    if args.min_judged is not None and not 0.0 <= args.min_judged <= 1.0:
        raise UsageError(f"--min-judged {args.min_judged}: give a fraction between 0 and 1")
    if args.build_timeout <= 0:
        raise UsageError(f"--build-timeout {args.build_timeout:g}: give seconds above 0")
    from adamconf.conformance.harness.lanes import default_jobs

    jobs = default_jobs() if args.jobs is None else args.jobs
    if jobs < 1:
        raise UsageError(f"--jobs {jobs}: give at least 1")
    regressions = regressions_folder(args)
    runs = []
    for spec in args.backend or ["numpy"]:
        progress = report.Progress(enabled=not args.quiet)
        result = check(spec, variants=args.variants, devices=args.devices, dtypes=args.dtypes,
                       cases=args.patterns, case_ids=args.case_ids, tags=args.tags,
                       golden=args.golden, regressions=regressions, shard=args.shard,
                       validate=not args.no_validate, identify=not args.no_identify,
                       timeout=args.timeout, min_judged=args.min_judged or 0.0,
                       jobs=jobs, python=args.python, options=parse_options(args.options),
                       state=args.state, features=features_from_items(args.features),
                       build_timeout=args.build_timeout, progress=progress)
        runs.extend(result.runs)
    report.print_summary(runs, verbose=args.verbose)
    if args.json:
        formats.write_json(args.json, runs)
        print(f"JSON report: {args.json}")
    if args.junit:
        formats.write_junit(args.junit, runs)
        print(f"JUnit report: {args.junit}")
    if args.html:
        from adamconf.conformance.report import html

        html.write_html(args.html, runs)
        print(f"HTML report: {args.html}")
    conformance = CheckResult(runs).conformance
    if conformance is Conformance.DOES_NOT_CONFORM:
        return EXIT_NONCONFORMING
    if args.strict and any(r.counts()["inconclusive"] for r in runs):
        return EXIT_NONCONFORMING
    if conformance is Conformance.NO_VERDICT:
        names = [f"{r.backend} {v}" for r in runs for v in r.no_verdict_variants()]
        print(f"adamconf: no verdict for {', '.join(names) or 'any variant'}: nothing there "
              f"could be judged (exit {EXIT_NO_VERDICT})", file=sys.stderr)
        for why in _refusals(runs):
            print(f"  {why}", file=sys.stderr)
        return EXIT_NO_VERDICT
    return EXIT_OK


def _refusals(runs) -> list[str]:
    """Why nothing could be judged: each distinct reason a case was unsupported, with how
    many; where no case ran, what the backend said it cannot do."""
    from collections import Counter

    lines = []
    for run in runs:
        undecided = set(run.no_verdict_variants())
        reasons = Counter(r.message for r in run.results
                          if r.status == "unsupported" and r.variant.id in undecided)
        lines += [f"{run.backend}: {why} ({n} case×variant)" for why, n in reasons.most_common()]
        if not run.results and run.info is not None:
            lines += [f"{run.backend}: {u.what}: {u.reason}" for u in run.info.unsupported]
    return lines
