"""Write a pytest-plugin xfail file from a JSON report: every case that failed or erred,
and every documented ValueError not raised, with the reason (the dialect it implements).

    python -m adamconf.conformance.tools.xfail report.json > xfail/torch.txt

The shipped files (``adamconf/conformance/xfail/<backend>.txt``) are made this way from a
run of the whole corpus; the plugin marks their items ``xfail(strict=True)``, so a known
failure that stops failing shows up as XPASS and the entry must go.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["xfail_lines", "main"]


def xfail_lines(report: dict) -> list[str]:
    lines = []
    for run in report["runs"]:
        lines.append(f"# {run['backend']} "
                     + ", ".join(f"{k} {v}" for k, v in (run["info"] or {}).get(
                         "versions", {}).items()))
        for r in run["results"]:
            if r["status"] not in ("fail", "error"):
                continue
            why = (", ".join(r["dialects"]) if r.get("dialects") else r["status"])
            lines.append(f"{r['case']}[{r['variant']['id']}]  # {why}")
        for v in run["validation"]:
            if not v["ok"]:
                got = (v["raised"] or "accepted silently").splitlines()[0][:80]
                lines.append(f"valueerror[{v['variant']}/{v['device']}:{v['parameter']}="
                             f"{v['value']}]  # {got}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adamconf.conformance.tools.xfail",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="'adamconf run --json' reports")
    args = parser.parse_args(argv)
    for path in args.reports:
        for line in xfail_lines(json.loads(path.read_text())):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
