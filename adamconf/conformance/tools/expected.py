"""Write a backend's expected-dialects file from a JSON report of a whole-corpus run: per
variant, the one model its failures show (``spec`` where it conforms), and every documented
ValueError it does not raise.

    adamconf run --backend torch --json torch.json
    python -m adamconf.conformance.tools.expected torch.json > adamconf/conformance/expected/torch.json

Each entry's ``why`` is filled from the dialect's formulas; say there what the framework's
source shows. Failures the model does not explain are listed on standard error, not
written: a reason for one goes under ``unexplained`` by hand, once it is found, and a test
checks that it still matches.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["expected_file", "main"]


def expected_file(report: dict) -> dict:
    from adamconf.reference.dialects import get_dialect

    runs = report["runs"]
    if len({run["backend"] for run in runs}) != 1:
        raise ValueError("one backend per expected-dialects file: give one backend's report")
    run = runs[0]
    versions = ", ".join(f"{k} {v}" for k, v in (run["info"] or {}).get("versions", {}).items())
    variants = []
    for v in run["variants"]:
        failing = [r for r in run["results"]
                   if r["variant"]["id"] == v["variant"] and r["status"] == "fail"]
        names = {n for r in failing for n in (r.get("dialects") or ())}
        if not failing:
            implements = "spec"
        elif len(names) == 1:
            implements = names.pop()  # the variant's model (what it leaves is listed below)
        else:
            continue  # no one model: nothing to expect yet
        name, _, dtype = v["variant"].split("/")
        pattern = f"{name}/*/{dtype}"  # the same on every device, until a run says otherwise
        why = ("conforms" if implements == "spec" else get_dialect(implements).summary)
        if all(e["variants"] != pattern for e in variants):
            variants.append({"variants": pattern, "implements": implements, "why": why})
    validation = []
    for x in run["validation"]:
        item = f"valueerror[{x['variant']}/*:{x['parameter']}={x['value']}]"
        if not x["ok"] and all(e["item"] != item for e in validation):
            validation.append({"item": item, "why": (x["raised"] or "accepted silently")
                               .splitlines()[0][:120]})
    unexplained = [(r["variant"]["id"], r["case"], r.get("departure", ""))
                   for r in run["results"] if r["status"] == "fail" and not r.get("dialects")]
    for vid, case, how in unexplained:
        print(f"not explained: {case}[{vid}]: {how}", file=sys.stderr)
    return {"backend": run["backend"], "seen_with": versions, "variants": variants,
            "validation": validation, "unexplained": []}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adamconf.conformance.tools.expected",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="an 'adamconf run --json' report")
    args = parser.parse_args(argv)
    print(json.dumps(expected_file(json.loads(args.report.read_text())), indent=1,
                     ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
