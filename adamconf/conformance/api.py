"""The Python API: what the CLI does, callable from a test, a notebook or a debugger.

>>> from adamconf import check
>>> result = check("numpy", dtypes=["float64"], cases="t1/plain", validate=False)
>>> result.conforms
True
>>> result.verdict
{'production/cpu/float64': 'conforms'}

``check`` runs a backend (a name, ``'package.module:factory'``, or a backend object) over
the golden cases you select and judges every value by the derived bound; a backend object
runs in this process by default (breakpoints work), or in a worker with
``in_process=False``. ``write_findings`` runs every installed backend and writes the
findings document (the report reads the runs; it runs nothing). Bad input raises
:class:`adamconf.conformance.errors.UsageError`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from adamconf.conformance.errors import UsageError
from adamconf.conformance.harness.worker import DEFAULT_BUILD_TIMEOUT, ReplyKind
from adamconf.conformance.judge.outcome import CaseResult, Conformance, RunResult, Status
from adamconf.conformance.report.findings import DEFAULT_OUT

__all__ = ["check", "fuzz", "CheckResult", "load_cases", "read_reports", "write_findings",
           "declared_for", "features_from_items"]


@dataclass
class CheckResult:
    """The runs of one ``check`` call (one per backend)."""

    runs: list[RunResult] = field(default_factory=list)

    @property
    def conformance(self) -> Conformance:
        states = [r.conformance for r in self.runs]
        if Conformance.DOES_NOT_CONFORM in states:
            return Conformance.DOES_NOT_CONFORM
        if not states or Conformance.NO_VERDICT in states:
            return Conformance.NO_VERDICT
        return Conformance.CONFORMS

    @property
    def conforms(self) -> bool:
        return self.conformance is Conformance.CONFORMS

    @property
    def verdict(self) -> dict[str, str]:
        """Variant id → 'conforms', 'does not conform' or 'no verdict'."""
        return {d.variant: d.conformance.value for run in self.runs for d in run.decisions()}

    @property
    def failures(self) -> list[CaseResult]:
        return [r for run in self.runs for r in run.results
                if r.status in (Status.FAIL, Status.ERROR)]

    def to_json(self) -> dict:
        from adamconf.conformance.report.formats import to_json

        return to_json(self.runs)

    def __repr__(self) -> str:
        return f"CheckResult({self.conformance.value}: {self.verdict})"


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def load_cases(*, golden: Path | str | None = None, regressions: Path | str | None = None,
               cases: str | Sequence[str] | None = None, case_ids: Sequence[str] = (),
               tags: Sequence[str] = ()) -> list:
    """The golden cases selected by patterns (substring or glob), exact ids and tags, with the
    user's regression cases from ``regressions`` (a folder of theirs) when given."""
    from adamconf.conformance.corpus.golden import (
        GOLDEN_DIR,
        load_corpus,
        load_regressions,
        select_golden,
    )

    corpus = load_corpus(golden or GOLDEN_DIR)
    if regressions is not None:
        corpus += load_regressions(regressions)
    return select_golden(corpus, case_ids=case_ids, patterns=_as_list(cases), tags=tags)


def _progress_printer(progress):
    if progress is True:
        from adamconf.conformance.report.text import Progress

        return Progress()
    return progress or None


def check(backend="numpy", *, variants: Sequence[str] = (), devices: Sequence[str] = (),
          dtypes: Sequence[str] = (), cases: str | Sequence[str] | None = None,
          case_ids: Sequence[str] = (), tags: Sequence[str] = (),
          golden: Path | str | None = None, regressions: Path | str | None = None,
          validate: bool = True, identify: bool = True, timeout: float = 300.0,
          min_judged: float = 0.0, shard: tuple[int, int] | None = None,
          in_process: bool | None = None, jobs: int = 1, python: str | None = None,
          options: dict[str, str] | None = None, state: str | None = None,
          features: dict[str, str] | None = None,
          build_timeout: float = DEFAULT_BUILD_TIMEOUT,
          progress: bool | Callable[[int, int, CaseResult], None] | None = None) -> CheckResult:
    """Run ``backend`` (or each of a list of them) over the selected cases and judge it.

    ``cases`` are id patterns (``"ams*"``, ``"t1/"``); ``variants``/``devices``/``dtypes``
    choose among the backend's variants; ``min_judged`` (a fraction) turns a run that
    judged fewer of its selected cases into a failure; ``jobs`` lanes run and judge in
    parallel; ``python`` runs the backend's worker on another interpreter (a virtual
    environment where its framework is installed — it needs adamconf and numpy there);
    ``build_timeout`` is the budget of a first-use build (DeepSpeed's kernel), apart from
    the per-case ``timeout``. For a generic backend (``torch-optimizer:pkg.mod:Class``,
    ``optax-transform:pkg.mod:factory``): ``options`` are extra constructor keywords,
    ``state`` is how its state is compared (``"auto"``: where a probe shows it holds m and v;
    ``"compare"``; ``"ignore"``: θ alone), ``features`` what its class or factory fixes
    (``{"amsgrad": "always"}``, ``{"maximize": "never"}``); both default to the tables
    ``[state]`` and ``[features]`` of ``./adamconf.toml``. A backend that refuses every
    selected variant gives a run with no verdict whose results name each refusal.
    """
    if jobs < 1:
        raise UsageError(f"jobs={jobs!r}: give at least 1")
    if not 0.0 <= min_judged <= 1.0:
        raise UsageError(f"min_judged={min_judged!r}: give a fraction between 0 and 1")
    loaded: list = []

    def corpus() -> list:  # loaded once, while the first backend's worker starts
        if not loaded:
            loaded.append(load_cases(golden=golden, regressions=regressions, cases=cases,
                                     case_ids=case_ids, tags=tags))
        return loaded[0]

    if build_timeout <= 0:
        raise UsageError(f"build_timeout={build_timeout!r}: give a number of seconds above 0")
    backends = backend if isinstance(backend, (list, tuple)) else [backend]
    result = CheckResult()
    for one in backends:
        progress_printer = _progress_printer(progress)
        result.runs.append(_check_one(one, corpus, variants=variants, devices=devices,
                                      dtypes=dtypes, validate=validate, identify=identify,
                                      timeout=timeout, min_judged=min_judged, shard=shard,
                                      in_process=in_process, jobs=jobs,
                                      python=python_for(one, python), options=options,
                                      declared=declared_for(one, state, features),
                                      build_timeout=build_timeout,
                                      progress=progress_printer))
    return result


def _check_one(backend, corpus, *, variants, devices, dtypes, validate, identify, timeout,
               min_judged, shard, in_process, jobs, python, options, declared, build_timeout,
               progress) -> RunResult:
    from adamconf.conformance.harness.runner import choose_variants, probe_backend, run
    from adamconf.conformance.harness.inprocess import InProcessBackend

    notify = getattr(progress, "note", None)  # a first-use build's progress line
    if isinstance(backend, str):
        if in_process:
            raise UsageError("in_process=True needs a backend object, not a name")
        info, process = probe_backend(backend, timeout, python=python, options=options,
                                      declared=declared, build_timeout=build_timeout,
                                      notify=notify, meanwhile=corpus)
        spec = backend
    else:
        if in_process is False:
            raise UsageError("a backend object runs in this process; for a worker, register "
                             "it and pass 'package.module:factory'")
        if declared:
            raise UsageError("state and features are told to a generic backend by name "
                             "('torch-optimizer:…', 'optax-transform:…'); a backend object "
                             "is built already: give them to its constructor")
        process = InProcessBackend(backend, notify=notify)
        reply = process.request("probe")
        if reply.kind is ReplyKind.USAGE:
            raise UsageError(f"backend {getattr(backend, 'name', backend)!r}: {reply.message}")
        if not reply.ok:
            raise UsageError(f"backend {getattr(backend, 'name', backend)!r} could not be "
                             f"probed: {reply.message}")
        info = reply.value
        spec = info.name
    try:
        chosen = choose_variants(info, spec, variants, devices, dtypes, allow_none=True)
        return run(spec, corpus(), variants=chosen, info=info, shard=shard, timeout=timeout,
                   validate=validate, identify=identify, process=process,
                   min_judged=min_judged, jobs=jobs, on_result=progress)
    finally:
        process.close()


CONFIG_FILE = "adamconf.toml"


def _config_table(name: str, instead: str) -> dict:
    """The table ``[name]`` of the user's ``adamconf.toml`` in the working folder ({} where
    there is none); ``instead`` says what to pass where the file cannot be read."""
    path = Path(CONFIG_FILE)
    if not path.is_file():
        return {}
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise UsageError(f"{path} needs Python 3.11 to be read (tomllib); pass {instead} "
                         "instead") from None
    try:
        table = tomllib.loads(path.read_text()).get(name, {})
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: {exc}") from None
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [{name}] must be a table of backend = …")
    return table


def python_for(backend, python: str | None) -> str | None:
    """The interpreter for a backend's worker: the one given, else the user's config file
    (``adamconf.toml`` in the working folder, a table ``[python]`` of backend = path)."""
    if python is not None or not isinstance(backend, str):
        return python
    chosen = _config_table("python", "--python").get(backend)
    if chosen is not None and not isinstance(chosen, str):
        raise UsageError(f"{CONFIG_FILE}: [python] {backend} must be a path to an interpreter")
    return chosen


def features_from_items(items: Sequence[str]) -> dict[str, str] | None:
    """``name=setting`` items (``--feature amsgrad=always``) as a dict; a UsageError for one
    without ``=``. What the names and settings may be, the backend checks."""
    features = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise UsageError(f"--feature {item!r}: write it as name=setting, e.g. "
                             "amsgrad=always")
        features[key.strip()] = value.strip()
    return features or None


def declared_for(backend, state: str | None, features: dict[str, str] | None) -> dict:
    """A generic backend's state mode and declared features: those given, over the user's
    config file (``adamconf.toml``: a table ``[state]`` of backend = "auto" | "compare" |
    "ignore", and ``[features]`` of backend = { amsgrad = "always", … }); only what is set."""
    if not isinstance(backend, str):
        return {k: v for k, v in (("state", state), ("features", features)) if v}
    if state is None:
        state = _config_table("state", "--state").get(backend)
        if state is not None and not isinstance(state, str):
            raise UsageError(f"{CONFIG_FILE}: [state] {backend} must be one of \"auto\", "
                             "\"compare\", \"ignore\"")
    table = _config_table("features", "--feature").get(backend) or {}
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise UsageError(f"{CONFIG_FILE}: [features] {backend} must be a table of feature = "
                         "setting, e.g. { amsgrad = \"always\" }")
    merged = {**table, **(features or {})}
    return {k: v for k, v in (("state", state), ("features", merged)) if v}


def read_reports(paths: Sequence[Path | str]) -> list[dict]:
    """JSON reports of earlier runs, checked to be adamconf's and of this schema."""
    from adamconf.conformance.report.formats import JSON_SCHEMA_VERSION

    reports = []
    for p in paths:
        try:
            data = json.loads(Path(p).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"cannot read the JSON report {p}: {exc}") from None
        if data.get("tool") != "adamconf" or data.get("schema_version") != JSON_SCHEMA_VERSION:
            raise UsageError(f"{p} is not an adamconf JSON report of schema version "
                             f"{JSON_SCHEMA_VERSION}")
        reports.append(data)
    return reports


def write_findings(backends: list[str] | None = None, *, devices: Sequence[str] = (),
                   out: Path | str = DEFAULT_OUT, json_dir: Path | None = None,
                   from_json: list[Path] | None = None, title: str = "Findings",
                   timeout: float = 300.0, quiet: bool = False) -> Path:
    """Run the backends (default: every built-in one that starts here) over the corpus, or
    read earlier JSON reports, and write the Markdown findings document
    (:func:`.report.findings.build_document`); returns its path."""
    from adamconf.conformance.files import atomic_write
    from adamconf.conformance.harness.registry import BUILTIN
    from adamconf.conformance.report import formats
    from adamconf.conformance.report.findings import build_document
    from adamconf.conformance.report.text import Progress

    if from_json:
        reports = read_reports(from_json)
    else:
        reports = []
        for spec in backends or list(BUILTIN):
            try:
                result = check(spec, devices=devices, timeout=timeout,
                               progress=Progress(enabled=not quiet))
            except UsageError as exc:
                if backends:
                    raise
                print(f"findings: {spec} left out: {exc}", file=sys.stderr)
                continue
            reports.append(result.to_json())
            if json_dir:
                formats.write_json(Path(json_dir) / f"{spec}.json", result.runs)
        if not reports:
            raise UsageError("no backend ran; install one (see 'adamconf backends')")
    out = Path(out)
    atomic_write(out, build_document(reports, title).encode())
    return out


def fuzz(backend: str = "numpy", **settings) -> int:
    """Fuzz ``backend`` with hypothesis (keywords as the options of ``adamconf fuzz``:
    ``max_examples``, ``seconds``, ``dtypes``, ``regressions``, …); prints what it finds and
    returns the exit code (0 nothing found, 1 a failure found)."""
    from adamconf.conformance.harness.fuzz import FuzzSettings, run

    return run(FuzzSettings(backend=backend, **settings))
