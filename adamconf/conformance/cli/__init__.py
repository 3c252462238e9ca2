"""``adamconf``: run conformance, list backends and cases, manage golden files, benchmark.

Exit codes: 0 conforms (or the command succeeded), 1 does not conform (or a check found a
difference), 2 usage or environment error (one message on stderr naming the fix), 3 no
verdict (nothing selected could be judged: every case unsupported or inconclusive).

One module per command, each with ``add_parser(subparsers)`` and ``execute(args)``; the
work is done by the Python API (:mod:`adamconf.conformance.api`) and the rooms below it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from adamconf import __version__
from adamconf.conformance.cli.common import EXIT_USAGE
from adamconf.conformance.errors import UsageError

__all__ = ["main", "build_parser", "COMMANDS"]

COMMANDS = ("run", "backends", "cases", "dialects", "golden", "sharpness", "bench", "fuzz",
            "findings")


def _command(name: str):
    return importlib.import_module(f"adamconf.conformance.cli.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="adamconf",
        description="A verified reference of Adam (as documented for "
                    "mindspore.experimental.optim.Adam) and a conformance suite: run the "
                    "golden cases against a backend and judge every value by an error bound "
                    "derived for its dtype.",
        epilog="Exit codes: 0 conforms, 1 does not conform, 2 usage or environment error, "
               "3 no verdict (nothing could be judged). Start with 'adamconf run' (numpy "
               "backend) or 'adamconf backends'.")
    parser.add_argument("--version", action="version", version=f"adamconf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        _command(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return _command(args.command).execute(args)
    except UsageError as exc:
        print(f"adamconf: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("adamconf: interrupted", file=sys.stderr)
        return 130
