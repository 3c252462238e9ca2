"""``adamconf fuzz``: hypothesis-generated cases against a backend, judged by the bound."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from adamconf.conformance.corpus.golden import DEFAULT_REGRESSIONS, REGRESSIONS_ENV
from adamconf.conformance.harness.fuzz import (
    DEFAULT_MAX_EXAMPLES,
    ENGINES,
    INVALID_PHASE_EXAMPLES,
    default_database_path,
)


def add_parser(sub) -> None:
    parser = sub.add_parser("fuzz", help="hypothesis-generated cases against a backend; "
                                         "failures are saved as regression cases")
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Generate cases with hypothesis (edges of every hyperparameter, values over the "
        "dtype's range, empty and 0-d parameters, several groups, lr schedules, resumed "
        "states), run them through the backend, judge them by the derived bound; a failure "
        "is shrunk to a minimal case, saved as a regression case and printed with the "
        "command that reproduces it. Also checks that documented-invalid hyperparameters "
        "raise ValueError. Several processes (-j) are HypoFuzz's workers where hypofuzz is "
        "installed (pip install 'adamconf[hypofuzz]'), else adamconf's own jobs; machines "
        "share a campaign through one example database (a shared folder, or "
        "--database redis://HOST:PORT).")
    parser.epilog = ("Exit codes: 0 no failure found, 1 a failure found (or an invalid value "
                     "accepted), 2 usage or environment error.")
    g = parser.add_argument_group("what to fuzz")
    g.add_argument("--backend", "-b", default="numpy", metavar="NAME",
                   help="backend name or 'package.module:factory' (default: numpy)")
    g.add_argument("--variant", dest="variants", action="append", default=[], metavar="NAME",
                   help="only this variant; repeatable (default: the backend's first float32 "
                        "variant; with several selected, each is fuzzed)")
    g.add_argument("--device", dest="devices", action="append", default=[], metavar="DEVICE",
                   help="only this device; repeatable")
    g.add_argument("--dtype", dest="dtypes", action="append", default=[], metavar="DTYPE",
                   help="only this dtype; repeatable")
    g.add_argument("--allow-non-finite", action="store_true",
                   help="also draw NaN and ±inf parameters and gradients")
    g.add_argument("--max-steps", type=int, default=20, metavar="N",
                   help="steps per case at most (default 20)")
    g.add_argument("--max-elements", type=int, default=16, metavar="N",
                   help="elements over all parameters of a case at most (default 16)")
    h = parser.add_argument_group("search")
    h.add_argument("--max-examples", type=int, default=None, metavar="N",
                   help=f"examples per variant (default {DEFAULT_MAX_EXAMPLES}; with --seconds "
                        "and no --max-examples, until the time is up); shrinking runs more")
    h.add_argument("--seconds", type=float, default=None, metavar="S",
                   help="wall-clock budget for the whole run; hypothesis is stopped cleanly when "
                        "it is spent (a failure found by then is saved as shrunk so far)")
    h.add_argument("--seed", type=int, default=None, metavar="N",
                   help="random seed (printed when not given, so a run can be repeated: "
                        "with the same --jobs)")
    h.add_argument("--derandomize", action="store_true",
                   help="the same examples on every run (a seed derived from the settings; "
                        "no example database: hypothesis keeps none for it)")
    h.add_argument("--database", default=None, metavar="DIR|redis://HOST:PORT",
                   help="hypothesis example database, a folder or a Redis server (pip install "
                        "'adamconf[redis]'): failing examples are replayed first on the next "
                        "run, by every process and machine that shares it "
                        f"(default: {default_database_path()})")
    h.add_argument("--no-database", action="store_true", help="use no example database")
    h.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                   help="fuzzing processes, each with its own backend worker, sharing the "
                        "example database: HypoFuzz's workers or adamconf's own jobs (see "
                        "--engine) (default: the machine's cores; 1 with --derandomize)")
    h.add_argument("--engine", choices=ENGINES, default="auto",
                   help="who runs -j N: hypofuzz (HypoFuzz's workers: adaptive, coverage-"
                        "guided, not seeded; pip install 'adamconf[hypofuzz]'), jobs "
                        "(adamconf's own: the examples shared out, each job seeded with the "
                        "seed given, +1, …), or auto (default): hypofuzz where it is installed "
                        "and no --seed is given, else jobs, said when hypofuzz is missing")
    h.add_argument("--dashboard", type=int, default=None, metavar="PORT",
                   help="serve HypoFuzz's live dashboard on this port (0: any free one) while "
                        "its workers fuzz")
    h.add_argument("--replay", action="store_true",
                   help="generate nothing: run the failing examples saved in the database (by "
                        "HypoFuzz's workers, pytest --adamconf-fuzz or another machine), "
                        "shrink them and save each as a regression case")
    h.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="seconds one example may take in the backend before it is an error "
                        "(default 60)")
    i = parser.add_argument_group("invalid hyperparameters")
    i.add_argument("--invalid", action="store_true",
                   help="fuzz only the documented ValueErrors (lr < 0, eps < 0, betas outside "
                        "[0, 1), weight_decay < 0, lr of a wrong type), --max-examples of them")
    i.add_argument("--no-invalid", action="store_true",
                   help=f"skip the short invalid-hyperparameter phase "
                        f"({INVALID_PHASE_EXAMPLES} examples) that runs by default")
    o = parser.add_argument_group("output")
    o.add_argument("--regressions", type=Path, metavar="DIR",
                   help=f"folder that receives the shrunk failing cases (default: "
                        f"${REGRESSIONS_ENV}, else ./{DEFAULT_REGRESSIONS}); never the "
                        "installed package")
    o.add_argument("--no-save", action="store_true",
                   help="do not save failing cases (print them only)")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress display")


def execute(args: argparse.Namespace) -> int:
    from adamconf.conformance.harness.fuzz import FuzzSettings, run

    names = {f.name for f in fields(FuzzSettings)}
    return run(FuzzSettings(**{k: v for k, v in vars(args).items() if k in names}))
