"""``adamconf cases``: the golden cases and the coverage matrix."""

from __future__ import annotations

from pathlib import Path

from adamconf.conformance.cli.common import EXIT_OK
from adamconf.conformance.errors import UsageError


def add_parser(sub) -> None:
    p = sub.add_parser("cases", help="list the golden cases and the coverage matrix")
    p.add_argument("-k", dest="patterns", action="append", default=[], metavar="PATTERN")
    p.add_argument("--tag", dest="tags", action="append", default=[], metavar="TAG")
    p.add_argument("--matrix", action="store_true", help="only the coverage matrix")
    p.add_argument("--list", action="store_true", help="only the list of cases")
    p.add_argument("--regressions", type=Path, metavar="DIR",
                   help="also list the regression cases saved in this folder by 'adamconf fuzz'")
    p.add_argument("--judged", action="store_true",
                   help="run the numpy backend (a correct implementation) over the cases and "
                        "show, per feature and dtype, how many it judges conclusively (pass "
                        "or fail, not inconclusive); a 0 is a cell nothing can judge")


def execute(args) -> int:
    from adamconf.conformance.corpus.cases import catalogue, coverage_matrix, select_cases

    cases = select_cases(catalogue(), args.patterns, args.tags)
    if args.regressions is not None:
        from adamconf.conformance.corpus.golden import load_regressions

        regressions = [g.case for g in load_regressions(args.regressions)]
        cases += select_cases(regressions, args.patterns, args.tags)
    if not cases:
        raise UsageError("no case matches the selection")
    if not args.matrix:
        width = max(len(c.id) for c in cases)
        for c in cases:
            print(f"{c.id:<{width}}  {','.join(c.dtypes):<34} {c.description}")
        print(f"{len(cases)} cases")
    if not args.list:
        rows, columns, counts = coverage_matrix(cases)
        print("\nCoverage: option combination (rows) × regime and target dtype (columns); "
              "each cell counts cases, '·' marks a gap")
        short = [c.replace("dtype:", "") for c in columns]
        col_width = [max(len(s), 2) for s in short]
        print(f"{'':<12}" + " ".join(f"{s:>{w}}" for s, w in zip(short, col_width)))
        gaps = 0
        for row in rows:
            cells = []
            for col, w in zip(columns, col_width):
                n = counts[(row, col)]
                gaps += n == 0
                cells.append(f"{n if n else '·':>{w}}")
            print(f"{row:<12}" + " ".join(cells))
        print(f"{gaps} empty cells")
    if args.judged:
        return _judged_matrix(args)
    return EXIT_OK


def _judged_matrix(args) -> int:
    """Feature × dtype: cases the numpy backend judged conclusively / cases selected."""
    from adamconf.conformance.api import check
    from adamconf.conformance.corpus.cases import ALL_DTYPES, FEATURES
    from adamconf.conformance.harness.lanes import default_jobs
    from adamconf.conformance.report.text import Progress

    result = check("numpy", variants=["production"], cases=args.patterns or None,
                   tags=args.tags, validate=False, identify=False, jobs=default_jobs(),
                   progress=Progress())
    results = result.runs[0].results
    dtypes = [d for d in ALL_DTYPES if any(r.variant.dtype == d for r in results)]
    print("\nJudged conclusively by the numpy backend (production), per feature and dtype: "
          "judged/selected")
    print(f"{'':<16}" + "".join(f"{d:>12}" for d in dtypes))
    empty = 0
    for name, _, predicate in FEATURES:
        cells = []
        for dtype in dtypes:
            chosen = [r for r in results if r.variant.dtype == dtype and predicate(r.tags)]
            judged = sum(r.status in ("pass", "fail") for r in chosen)
            empty += bool(chosen) and judged == 0
            cells.append(f"{judged}/{len(chosen)}" if chosen else "·")
        print(f"{name:<16}" + "".join(f"{c:>12}" for c in cells))
    print(f"{empty} cells with cases but none judged")
    return EXIT_OK
