"""Machine-readable reports of a run: JSON (schema-versioned) and JUnit XML."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import mpmath
import numpy as np

from adamconf import __version__
from adamconf.conformance.files import atomic_write
from adamconf.conformance.judge.identify import dialect_label, variant_dialects
from adamconf.conformance.judge.outcome import Conformance, RunResult
from adamconf.reference.engine import DEFAULT_DPS, describe_reference

__all__ = ["JSON_SCHEMA_VERSION", "to_json", "write_json", "write_junit"]

JSON_SCHEMA_VERSION = 2  # 2: conformance and judged/selected per variant


def to_json(runs: list[RunResult]) -> dict:
    """The run as plain JSON; ``schema_version`` changes when a field changes meaning."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "tool": "adamconf", "version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "reference": {"mpmath": mpmath.__version__, "dps": DEFAULT_DPS,
                      "certificate": describe_reference()},
        "platform": {"python": platform.python_version(), "numpy": np.__version__,
                     "machine": platform.machine(), "cpus": os.cpu_count()},
        "runs": [{
            "backend": run.backend,
            "info": run.info.to_json() if run.info else None,
            "conforms": run.conforms, "conformance": run.conformance.value,
            "counts": run.counts(), "seconds": round(run.seconds, 3),
            "settings": {k: v for k, v in run.settings.items() if k != "pid"},
            "validation": [v.to_json() for v in run.validation],
            "variants": _variant_summaries(run),
            "results": [r.to_json() for r in run.results],
        } for run in runs],
    }


def _variant_summaries(run: RunResult) -> list[dict]:
    by_variant = defaultdict(list)
    for r in run.results:
        by_variant[r.variant.id].append(r)
    from adamconf.conformance.judge.expected import compare, load_expected

    expected = load_expected(run.backend)
    out = []
    for decision in run.decisions():
        results = by_variant.get(decision.variant, [])
        status, words = compare(expected, decision.variant, results)
        out.append({**decision.to_json(), "dialects": variant_dialects(results),
                    "implements": dialect_label(results),
                    "expected": {"status": status, "words": words} if status else None})
    return out


def write_json(path: Path, runs: list[RunResult]) -> None:
    atomic_write(path, (json.dumps(to_json(runs), indent=1, allow_nan=False) + "\n").encode())


def write_junit(path: Path, runs: list[RunResult]) -> None:
    """One testsuite per backend variant; fail → failure, error → error, others → skipped."""
    root = ET.Element("testsuites", name="adamconf")
    for run in runs:
        by_variant = defaultdict(list)
        for r in run.results:
            by_variant[r.variant.id].append(r)
        for decision in run.decisions():
            vid, results = decision.variant, by_variant.get(decision.variant, [])
            verdict_failed = decision.conformance is not Conformance.CONFORMS
            suite = ET.SubElement(root, "testsuite", name=f"{run.backend}[{vid}]",
                                  tests=str(len(results) + 1),
                                  failures=str(sum(r.status == "fail" for r in results)
                                               + verdict_failed),
                                  errors=str(sum(r.status == "error" for r in results)),
                                  skipped=str(sum(r.status in ("inconclusive", "unsupported")
                                                  for r in results)))
            props = ET.SubElement(suite, "properties")
            for key, value in (("conformance", decision.conformance.value),
                               ("judged", decision.judged), ("selected", decision.selected)):
                ET.SubElement(props, "property", name=key, value=str(value))
            for note in (run.info.notes if run.info is not None else []):
                ET.SubElement(props, "property", name="note", value=note)
            verdict = ET.SubElement(suite, "testcase", classname=f"{run.backend}.{vid}",
                                    name="[verdict]", time="0")
            if verdict_failed:
                ET.SubElement(verdict, "failure", message=f"{decision.conformance.value}: "
                              f"{decision.reason}")
            for r in results:
                case = ET.SubElement(suite, "testcase", classname=f"{run.backend}.{vid}",
                                     name=r.case_id, time=f"{r.seconds:.4f}")
                detail = r.message + (f"\ndialect: {', '.join(r.dialects)}" if r.dialects
                                      else "") + f"\nreproduce: {r.repro}"
                if r.status == "fail":
                    dialect = ", ".join(r.dialects) if r.dialects else "none"
                    ET.SubElement(case, "failure", message=f"does not conform; dialect: "
                                  f"{dialect}").text = detail
                elif r.status == "error":
                    ET.SubElement(case, "error", message=r.message[:200]).text = detail
                elif r.status in ("inconclusive", "unsupported"):
                    ET.SubElement(case, "skipped", message=f"{r.status}: {r.message}"[:500])
        if run.validation:
            suite = ET.SubElement(root, "testsuite", name=f"{run.backend}[validation]",
                                  tests=str(len(run.validation)),
                                  failures=str(sum(not v.ok for v in run.validation)))
            for v in run.validation:
                case = ET.SubElement(suite, "testcase", classname=f"{run.backend}.validation",
                                     name=f"{v.variant}/{v.device} {v.parameter}={v.value}")
                if not v.ok:
                    ET.SubElement(case, "failure", message="documented ValueError not raised"
                                  ).text = f"raised: {v.raised}"
    ET.indent(root)
    atomic_write(path, ET.tostring(root, encoding="utf-8", xml_declaration=True))
