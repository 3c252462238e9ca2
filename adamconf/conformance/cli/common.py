"""What the commands share: exit codes and the options that select cases and variants."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["EXIT_OK", "EXIT_NONCONFORMING", "EXIT_USAGE", "EXIT_NO_VERDICT", "shard",
           "add_selection", "add_generic", "parse_options", "regressions_folder"]

# 0 conforms, 1 does not conform, 2 usage or environment error, 3 nothing could be judged
EXIT_OK, EXIT_NONCONFORMING, EXIT_USAGE, EXIT_NO_VERDICT = 0, 1, 2, 3


def shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: write it as i/n, e.g. 1/4") from None
    if not 1 <= index <= count:
        raise argparse.ArgumentTypeError(f"--shard {text!r}: need 1 <= i <= n")
    return index, count


def add_selection(p: argparse.ArgumentParser) -> None:
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
    g.add_argument("--shard", type=shard, metavar="i/n",
                   help="run the i-th of n equal slices of the (case, variant) list (CI matrices)")
    g.add_argument("--golden", type=Path, metavar="DIR",
                   help="golden folder to read (default: the one installed with adamconf)")
    g.add_argument("--regressions", type=Path, metavar="DIR", default=None,
                   help="also run the regression cases saved by 'adamconf fuzz' in this folder "
                        "(default: $ADAMCONF_REGRESSIONS, else ./adamconf-regressions when it "
                        "exists)")
    g.add_argument("--no-regressions", action="store_true",
                   help="leave out the regression cases even where the folder exists")


def add_generic(p: argparse.ArgumentParser) -> None:
    """What a generic backend (torch-optimizer:…, optax-transform:…) is told, and the budget
    of a first-use build."""
    g = p.add_argument_group("generic backends (torch-optimizer:…, optax-transform:…)")
    g.add_argument("--option", "-o", dest="options", action="append", default=[],
                   metavar="KEY=VALUE",
                   help="an extra constructor keyword: a Python literal (True, 32, 1e-3, "
                        "'text'); a bare word only where the parameter takes a string; one "
                        "the constructor does not name is a usage error; repeatable")
    g.add_argument("--state", choices=("auto", "compare", "ignore"), default=None,
                   help="compare the state where a probe shows it holds m and v (auto, the "
                        "default), by its names whatever it holds (compare), or judge θ alone "
                        "(ignore); per backend: a [state] table in ./adamconf.toml")
    g.add_argument("--feature", dest="features", action="append", default=[],
                   metavar="NAME=SETTING",
                   help="a feature the class or factory fixes: amsgrad=always (optax.amsgrad), "
                        "maximize=never, weight_decay=never, or NAME=keyword (its keyword is "
                        "the feature, judged as such even where a probe finds it ignored); "
                        "repeatable; per backend: a [features] table in ./adamconf.toml")
    p.add_argument("--build-timeout", type=float, default=900.0, metavar="S",
                   help="seconds a backend's first-use build (DeepSpeed compiles its CPU Adam "
                        "kernel) may take, apart from --timeout (default 900)")


def regressions_folder(args: argparse.Namespace) -> Path | None:
    """The user's regression folder for this run, or None."""
    from adamconf.conformance.corpus.golden import default_regressions_folder

    if getattr(args, "no_regressions", False):
        return None
    return args.regressions or default_regressions_folder()


def parse_options(items: list[str]) -> dict[str, str] | None:
    """``--option key=value`` items as a dict; a UsageError for one without ``=``."""
    from adamconf.conformance.errors import UsageError

    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--option {item!r}: write it as key=value, e.g. foreach=False")
        options[key.strip()] = value
    return options or None

