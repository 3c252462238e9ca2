"""``adamconf golden regen|check``: write the golden files, or prove they are intact."""

from __future__ import annotations

import sys
from pathlib import Path

from adamconf.conformance.cli.common import EXIT_NONCONFORMING, EXIT_OK
from adamconf.conformance.errors import UsageError


def add_parser(sub) -> None:
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


def execute(args) -> int:
    from adamconf.conformance.corpus.golden import GOLDEN_DIR, GoldenError, check, regenerate

    if args.golden_command == "regen":
        from adamconf.reference.engine import DEFAULT_DPS

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
