"""``adamconf``: run conformance, list backends and cases, manage golden files, benchmark.

Exit codes: 0 conforms (or the command succeeded), 1 does not conform (or a check found a
difference), 2 usage or environment error (one message on stderr naming the fix).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .. import __version__

EXIT_OK, EXIT_NONCONFORMING, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input or environment: printed as one line, exit 2."""


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: write it as i/n, e.g. 1/4") from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: need 1 <= i <= n")
    return index, count


def _add_selection(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what to run")
    g.add_argument("--backend", "-b", action="append", metavar="NAME",
                   help="backend name (numpy, torch, mindspore, jax, a plug-in) or "
                        "'package.module:factory'; repeatable (default: numpy)")
    g.add_argument("-k", dest="patterns", action="append", default=[], metavar="PATTERN",
                   help="run cases whose id contains PATTERN or matches it as a glob; repeatable")
    g.add_argument("--case", dest="case_ids", action="append", default=[], metavar="ID",
                   help="run exactly this case id; repeatable")
    g.add_argument("--tag", dest="tags", action="append", default=[], metavar="TAG",
                   help="only cases with this tag (e.g. amsgrad, long, regime:eps0); repeatable")
    g.add_argument("--variant", dest="variants", action="append", default=[], metavar="NAME",
                   help="only this variant of the backend (see 'adamconf backends'); repeatable")
    g.add_argument("--device", dest="devices", action="append", default=[], metavar="DEVICE",
                   help="only this device (cpu, cuda, CPU, GPU, …); repeatable")
    g.add_argument("--dtype", dest="dtypes", action="append", default=[], metavar="DTYPE",
                   help="only this dtype (float64, float32, float16, bfloat16); repeatable")
    g.add_argument("--shard", type=_shard, metavar="i/n",
                   help="run the i-th of n equal slices of the (case, variant) list (CI matrices)")
    g.add_argument("--golden", type=Path, metavar="DIR",
                   help="golden folder to read (default: the one installed with adamconf)")
    g.add_argument("--no-regressions", action="store_true",
                   help="leave out the regression cases that fuzzing saved")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adamconf",
        description="A verified reference of Adam (as documented for "
                    "mindspore.experimental.optim.Adam) and a conformance suite: run the "
                    "golden cases against a backend and judge every value by an error bound "
                    "derived for its dtype.",
        epilog="Exit codes: 0 conforms, 1 does not conform, 2 usage or environment error. "
               "Start with 'adamconf run' (numpy backend) or 'adamconf backends'.")
    parser.add_argument("--version", action="version", version=f"adamconf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("run", help="run the corpus against backends and judge it",
                       description="Run every selected golden case on every selected variant "
                                   "of the backend (each backend in its own subprocess), judge "
                                   "each value against the derived error bound, name the "
                                   "dialect a failing variant implements instead, and check the "
                                   "documented ValueErrors on its constructor.")
    _add_selection(p)
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
    b.add_argument("--no-validate", action="store_true",
                   help="skip the check of the documented ValueErrors on the constructor")
    b.add_argument("--no-identify", action="store_true",
                   help="do not look for the dialect a failing variant implements")

    p = sub.add_parser("backends", help="what is installed: versions, devices, variants",
                       description="Probe every known backend (each in a subprocess) and list "
                                   "versions, devices, dtypes and variants, what is unsupported "
                                   "and why, and how to install what is missing.")
    p.add_argument("--backend", "-b", action="append", metavar="NAME",
                   help="probe only these (default: all known)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the probe results as JSON")

    p = sub.add_parser("cases", help="list the golden cases and the coverage matrix")
    p.add_argument("-k", dest="patterns", action="append", default=[], metavar="PATTERN")
    p.add_argument("--tag", dest="tags", action="append", default=[], metavar="TAG")
    p.add_argument("--matrix", action="store_true", help="only the coverage matrix")
    p.add_argument("--list", action="store_true", help="only the list of cases")

    p = sub.add_parser("dialects", help="the named variants of Adam the suite can recognise")

    p = sub.add_parser("golden", help="regenerate or check the golden files")
    gsub = p.add_subparsers(dest="golden_command", metavar="ACTION")
    r = gsub.add_parser("regen", help="recompute every golden file (atomic swap)",
                        description="Recompute every case with the mpmath reference (both "
                                    "cores) and replace the golden folder atomically: an "
                                    "interrupted run leaves the old corpus intact.")
    r.add_argument("--out", type=Path, metavar="DIR",
                   help="folder to write (default: the package's golden folder)")
    r.add_argument("--dps", type=int, default=None, metavar="DIGITS",
                   help="reference precision in decimal digits (default 50)")
    r.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    c = gsub.add_parser("check", help="verify checksums and that regeneration gives the same bytes")
    c.add_argument("--golden", type=Path, metavar="DIR")
    c.add_argument("--workers", type=int, default=None)

    p = sub.add_parser("sharpness", help="the bound's sensitivity (dialect → catching cases) "
                                         "and tightness (error/bound of correct implementations)")
    p.add_argument("--golden", type=Path, metavar="DIR")

    try:
        from . import bench
    except ImportError:
        bench = None
    if bench is not None:
        p = sub.add_parser("bench", help="speed of the NumPy Adam against torch, and of the "
                                         "reference")
        bench.add_arguments(p)
    try:
        from . import fuzz
    except ImportError:
        fuzz = None
    if fuzz is not None:
        p = sub.add_parser("fuzz", help="hypothesis-generated cases against a backend; failures "
                                        "are saved as regression cases")
        fuzz.add_arguments(p)
    try:
        from . import findings
    except ImportError:
        findings = None
    if findings is not None:
        p = sub.add_parser("findings", help="run every installed backend and write "
                                            "docs/findings.md")
        findings.add_arguments(p)
    return parser


# --- commands -----------------------------------------------------------------------------

def _load_corpus(args):
    from .golden import GOLDEN_DIR, GoldenError, load_corpus

    try:
        return load_corpus(args.golden or GOLDEN_DIR,
                           regressions=not getattr(args, "no_regressions", False))
    except GoldenError as exc:
        raise UsageError(str(exc)) from None


def _select(corpus, args):
    from .cases import select_cases

    if args.case_ids:
        ids = {g.id: g for g in corpus}
        unknown = [i for i in args.case_ids if i not in ids]
        if unknown:
            raise UsageError(f"no case with id {', '.join(map(repr, unknown))}; "
                             "'adamconf cases --list' lists them")
        return [ids[i] for i in args.case_ids]
    chosen = {c.id for c in select_cases([g.case for g in corpus], args.patterns, args.tags)}
    selected = [g for g in corpus if g.id in chosen]
    if not selected:
        what = " ".join([f"-k {p}" for p in args.patterns] + [f"--tag {t}" for t in args.tags])
        raise UsageError(f"no case matches {what}; 'adamconf cases --list' lists ids and tags")
    return selected


def probe_backend(spec: str, timeout: float = 180.0):
    """Probe in a subprocess; returns BackendInfo or raises UsageError with the fix."""
    from ..adapters.registry import INSTALL_HINTS, UnknownBackend, known_backends, load_backend
    from .runner import BackendProcess

    names = known_backends()
    if spec not in names and ":" not in spec:
        raise UsageError(f"unknown backend {spec!r}; known: {', '.join(sorted(names))}, or give "
                         "a third-party one as 'package.module:factory'")
    if ":" in spec:
        try:  # resolve here too, so a typo is one clear message and not a worker error
            load_backend(spec)
        except UnknownBackend as exc:
            raise UsageError(str(exc)) from None
    process = BackendProcess(spec, timeout)
    reply = process.request("probe")
    if reply[0] != "ok":
        process.close()
        hint = INSTALL_HINTS.get(spec, "")
        raise UsageError(f"backend {spec!r} could not start: {reply[1]}"
                         + (f"; to install it: {hint}" if hint else ""))
    return reply[1], process


def choose_variants(info, spec: str, names, devices, dtypes) -> list:
    """The backend's variants for --variant/--device/--dtype; a UsageError names the valid."""
    from .runner import select_variants

    try:
        variants = select_variants(info, names=names, devices=devices, dtypes=dtypes)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not variants:
        raise UsageError(f"backend {spec!r} has no variant with that combination of "
                         f"--variant/--device/--dtype; 'adamconf backends -b {spec}' lists them")
    return variants


def cmd_run(args) -> int:
    from . import report
    from .runner import run

    corpus = _select(_load_corpus(args), args)
    runs = []
    for spec in args.backend or ["numpy"]:
        info, process = probe_backend(spec, args.timeout)
        try:
            if not info.installed:
                from ..adapters.registry import INSTALL_HINTS

                raise UsageError(f"backend {spec!r} is not installed here: "
                                 f"{info.install_hint or INSTALL_HINTS.get(spec, '')}")
            variants = choose_variants(info, spec, args.variants, args.devices, args.dtypes)
            if not args.quiet:
                sys.stderr.write(f"adamconf: {spec}: {len(corpus)} cases × {len(variants)} "
                                 "variants\n")
            progress = report.Progress(enabled=not args.quiet)
            result = run(spec, corpus, variants=variants, info=info, shard=args.shard,
                         timeout=args.timeout, validate=not args.no_validate,
                         identify=not args.no_identify, process=process, on_result=progress)
        finally:
            process.close()
        runs.append(result)
    report.print_summary(runs, verbose=args.verbose)
    if args.json:
        report.write_json(args.json, runs)
        print(f"JSON report: {args.json}")
    if args.junit:
        report.write_junit(args.junit, runs)
        print(f"JUnit report: {args.junit}")
    if args.html:
        from . import html_report

        html_report.write_html(args.html, runs)
        print(f"HTML report: {args.html}")
    bad = not all(r.conforms for r in runs)
    if args.strict and any(r.counts()["inconclusive"] for r in runs):
        bad = True
    return EXIT_NONCONFORMING if bad else EXIT_OK


def cmd_backends(args) -> int:
    import json

    from ..adapters.registry import INSTALL_HINTS, known_backends

    names = args.backend or list(known_backends())
    infos = []
    for name in names:
        try:
            info, process = probe_backend(name)
            process.close()
        except UsageError as exc:
            print(f"{name}: not available — {exc}")
            continue
        infos.append(info)
        if not info.installed:
            print(f"{name}: not installed — {info.install_hint or INSTALL_HINTS.get(name, '')}")
            continue
        versions = ", ".join(f"{k} {v}" for k, v in info.versions.items())
        print(f"{name}: {versions}")
        print(f"  devices: {', '.join(info.devices)}; dtypes: {', '.join(info.dtypes)}")
        by_name: dict[str, list] = {}
        for v in info.variants:
            by_name.setdefault(v.name, []).append(f"{v.device}/{v.dtype}")
        for vname, combos in by_name.items():
            print(f"  variant {vname}: {', '.join(combos)}")
        for u in info.unsupported:
            print(f"  unsupported {u.what}: {u.reason}")
    if args.json:
        args.json.write_text(json.dumps([i.to_json() for i in infos], indent=1) + "\n")
    return EXIT_OK


def cmd_cases(args) -> int:
    from .cases import catalogue, coverage_matrix, select_cases

    cases = select_cases(catalogue(), args.patterns, args.tags)
    try:
        from .golden import load_corpus

        regressions = [g.case for g in load_corpus() if "regression" in g.case.tags]
    except Exception:
        regressions = []
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
    return EXIT_OK


def cmd_dialects(args) -> int:
    from ..reference.dialects import DIALECTS

    for d in DIALECTS.values():
        print(f"{d.name}\n    {d.summary}\n    known in: {d.known_in}")
    return EXIT_OK


def cmd_golden(args) -> int:
    from .golden import GOLDEN_DIR, GoldenError, check, regenerate

    if args.golden_command == "regen":
        from ..reference.engine import DEFAULT_DPS

        out = args.out or GOLDEN_DIR
        print(f"regenerating the golden corpus in {out} …", file=sys.stderr)
        seconds = regenerate(out, dps=args.dps or DEFAULT_DPS, workers=args.workers)
        print(f"golden corpus regenerated in {seconds:.1f} s: {out}")
        return EXIT_OK
    if args.golden_command == "check":
        try:
            result = check(args.golden or GOLDEN_DIR, workers=args.workers)
        except GoldenError as exc:
            raise UsageError(str(exc)) from None
        for note in result.notes:
            print(f"note: {note}")
        if result.ok:
            print(f"golden corpus OK: checksums match and regeneration gives identical bytes "
                  f"({result.seconds:.1f} s)")
            return EXIT_OK
        print("golden corpus differs:")
        for problem in result.problems:
            print(f"  {problem}")
        print("if the reference or the catalogue changed on purpose, run 'adamconf golden regen' "
              "and say why in CHANGELOG.md")
        return EXIT_NONCONFORMING
    raise UsageError("golden needs an action: 'adamconf golden regen' or 'adamconf golden check'")


def cmd_sharpness(args) -> int:
    from . import sharpness

    corpus = _load_corpus(args)
    started = time.perf_counter()
    cache: dict = {}  # the spec's bounds, shared by both tables
    table = sharpness.sensitivity_table(corpus, cache=cache)
    print("Sensitivity: each dialect, run in float32, against the spec's bound")
    for dialect, catches in table:
        shown = ", ".join(f"{cid} (step {step})" for cid, step in catches[:3])
        more = f" and {len(catches) - 3} more" if len(catches) > 3 else ""
        print(f"  {dialect:<22} {len(catches):>3} cases: {shown or 'NOT CAUGHT'}{more}")
    stats = sharpness.tightness(corpus, cache=cache)
    print("\nTightness: error/bound of correct float32 implementations over the corpus")
    for name, s in stats.items():
        print(f"  {name:<28} median {s['median']:.3g}  p99 {s['p99']:.3g}  max {s['max']:.3g}  "
              f"({s['count']} values with nonzero error)")
    print(f"({time.perf_counter() - started:.1f} s)")
    return EXIT_OK if all(c for _, c in table) else EXIT_NONCONFORMING


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    commands = {"run": cmd_run, "backends": cmd_backends, "cases": cmd_cases,
                "dialects": cmd_dialects, "golden": cmd_golden, "sharpness": cmd_sharpness}
    try:
        if args.command in commands:
            return commands[args.command](args)
        if args.command in ("bench", "fuzz", "findings"):
            import importlib

            module = importlib.import_module(f"adamconf.conformance.{args.command}")
            return module.run(args)
        parser.print_help()
        return EXIT_USAGE
    except UsageError as exc:
        print(f"adamconf: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("adamconf: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # through the package, so exceptions raised by submodules are this module's classes
    from adamconf.conformance.cli import main as package_main

    sys.exit(package_main())
