"""``adamconf sharpness``: how sensitive and how tight the bound is."""

from __future__ import annotations

import time
from pathlib import Path

from adamconf.conformance.cli.common import EXIT_NONCONFORMING, EXIT_OK


def add_parser(sub) -> None:
    p = sub.add_parser("sharpness", help="the bound's sensitivity (dialect → catching cases) "
                                         "and tightness (error/bound of correct implementations)")
    p.add_argument("--golden", type=Path, metavar="DIR")


def execute(args) -> int:
    from adamconf.conformance.corpus.golden import GOLDEN_DIR, load_corpus
    from adamconf.conformance.tools import sharpness

    corpus = load_corpus(args.golden or GOLDEN_DIR)
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
