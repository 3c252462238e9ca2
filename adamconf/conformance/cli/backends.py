"""``adamconf backends``: what is installed, what each backend can run, and what not."""

from __future__ import annotations

from pathlib import Path

from adamconf.conformance.cli.common import EXIT_OK
from adamconf.conformance.errors import UsageError


def add_parser(sub) -> None:
    p = sub.add_parser("backends", help="what is installed: versions, devices, variants",
                       description="Probe every known backend (each in a subprocess) and list "
                                   "versions, devices, dtypes and variants, what is unsupported "
                                   "and why, and how to install what is missing.")
    p.add_argument("--backend", "-b", action="append", metavar="NAME",
                   help="probe only these (default: all known)")
    p.add_argument("--json", type=Path, metavar="PATH", help="write the probe results as JSON")
    p.add_argument("--build-timeout", type=float, default=900.0, metavar="S",
                   help="seconds a backend's first-use build (DeepSpeed compiles its CPU Adam "
                        "kernel) may take, apart from the probe's 180 s (default 900)")


def execute(args) -> int:
    import json

    from adamconf.conformance.harness.registry import INSTALL_HINTS, known_backends
    from adamconf.conformance.harness.runner import probe_backend

    import sys

    if args.build_timeout <= 0:
        raise UsageError(f"--build-timeout {args.build_timeout:g}: give seconds above 0")
    names = args.backend or list(known_backends())
    infos = []
    for name in names:
        try:
            info, process = probe_backend(
                name, require_installed=False, build_timeout=args.build_timeout,
                notify=lambda line: print(f"  {line}", file=sys.stderr, flush=True))
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
        for note in info.notes:
            print(f"  note: {note}")
    if args.json:
        args.json.write_text(json.dumps([i.to_json() for i in infos], indent=1) + "\n")
    return EXIT_OK
