"""``adamconf findings``: run every installed backend and write docs/findings.md."""

from __future__ import annotations

from pathlib import Path

from adamconf.conformance.report.findings import DEFAULT_OUT


def add_parser(sub) -> None:
    p = sub.add_parser("findings", help="run every installed backend and write "
                                        "docs/findings.md")
    add_arguments(p)


def add_arguments(p) -> None:
    p.description = ("Run every selected backend (default: every installed one) over the whole "
                     "corpus, all variants, and write a Markdown findings document.")
    p.add_argument("--backend", "-b", action="append", metavar="NAME",
                   help="backends to run (default: every installed built-in backend)")
    p.add_argument("--device", dest="devices", action="append", default=[], metavar="DEVICE",
                   help="only this device (repeatable)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="PATH",
                   help=f"where to write the document (default {DEFAULT_OUT})")
    p.add_argument("--json-dir", type=Path, metavar="DIR",
                   help="also keep each backend's JSON report in this folder")
    p.add_argument("--from-json", type=Path, nargs="+", metavar="REPORT",
                   help="build the document from these 'adamconf run --json' reports instead "
                        "of running anything")
    p.add_argument("--title", default="Findings", help="the document's title")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--quiet", "-q", action="store_true")




def execute(args) -> int:
    from adamconf.conformance.api import write_findings

    path = write_findings(args.backend, devices=args.devices, out=args.out,
                          json_dir=args.json_dir, from_json=args.from_json, title=args.title,
                          timeout=args.timeout, quiet=args.quiet)
    print(f"findings written to {path}")
    return 0
