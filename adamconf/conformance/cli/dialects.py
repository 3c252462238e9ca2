"""``adamconf dialects``: the named variants of Adam the suite can recognise."""

from __future__ import annotations

from adamconf.conformance.cli.common import EXIT_OK


def add_parser(sub) -> None:
    sub.add_parser("dialects", help="the named variants of Adam the suite can recognise")


def execute(args) -> int:
    from adamconf.reference.dialects import DIALECTS

    for d in DIALECTS.values():
        print(f"{d.name}\n    {d.summary}\n    known in: {d.known_in}")
    return EXIT_OK
