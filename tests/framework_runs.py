"""Running golden cases through a real framework with the CLI, for the framework tests.

The CLI runs the backend in its own worker process (as a user's run does), so a framework
that picks global settings at import (Keras's backend) never leaks into the test process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from dataclasses import dataclass

import pytest

from adamconf.conformance.cli import main


def framework_python(name: str) -> str | None:
    """The interpreter of another environment that holds the framework ``name`` (tensorflow,
    paddle, keras): ``$ADAMCONF_PYTHON_<NAME>``, as CI sets it. The worker runs there; this
    process, which judges, need not have the framework at all."""
    return os.environ.get(f"ADAMCONF_PYTHON_{name.split('-')[0].upper()}") or None


def require(*modules: str) -> None:
    """Skip unless every module can be imported (found, not imported: the worker imports it)
    here, or in the framework's own environment (framework_python)."""
    python = framework_python(modules[0])
    if python is not None:
        probe = subprocess.run([python, "-c", f"import {', '.join(modules)}"],
                               capture_output=True, text=True, timeout=300)
        if probe.returncode != 0:
            pytest.fail(f"{python} cannot import {', '.join(modules)}: {probe.stderr[-300:]}")
        return
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


@dataclass
class CliRun:
    exit_code: int
    report: dict

    @property
    def run(self) -> dict:
        (only,) = self.report["runs"]
        return only

    def result(self, case: str, variant_id: str) -> dict:
        for r in self.run["results"]:
            if r["case"] == case and r["variant"]["id"] == variant_id:
                return r
        raise KeyError(f"no result for {case} [{variant_id}]")

    def variant_ids(self) -> set[str]:
        return {v["id"] for v in self.run["info"]["variants"]}

    def unsupported(self) -> dict[str, str]:
        return {u["what"]: u["reason"] for u in self.run["info"]["unsupported"]}

    def validation(self, variant: str) -> dict[str, str | None]:
        """'parameter=value' → the exception's type name (None: accepted silently)."""
        return {f"{v['parameter']}={v['value']}": (v["raised"] or "").split(":")[0] or None
                for v in self.run["validation"] if v["variant"] == variant}


def run_cli(tmp_path, backend: str, cases: list[str], dtypes: list[str],
            variants: list[str] = (), validate: bool = True) -> CliRun:
    out = tmp_path / f"{backend}.json"
    argv = ["run", "--backend", backend, "--quiet", "--json", str(out)]
    for case in cases:
        argv += ["--case", case]
    for dtype in dtypes:
        argv += ["--dtype", dtype]
    for variant in variants:
        argv += ["--variant", variant]
    if not validate:
        argv.append("--no-validate")
    python = framework_python(backend)
    if python is not None:
        argv += ["--python", python]
    code = main(argv)
    return CliRun(code, json.loads(out.read_text()))
