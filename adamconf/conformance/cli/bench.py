"""``adamconf bench``: the NumPy Adam against torch, and the reference's speed.

The options and the measurement live with the tool (:mod:`adamconf.conformance.tools.bench`),
which also runs as ``python -m adamconf.conformance.tools.bench``.
"""

from __future__ import annotations


def add_parser(sub) -> None:
    from adamconf.conformance.tools import bench

    p = sub.add_parser("bench", help="speed of the NumPy Adam against torch, and of the "
                                     "reference")
    bench.add_arguments(p)


def execute(args) -> int:
    from adamconf.conformance.tools import bench

    return bench.run(args)
