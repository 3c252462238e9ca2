"""Golden files: the reference trajectories of the catalogue, stored language-neutrally.

Layout of a corpus folder::

    manifest.json           format, versions, precision, and per case: id, description,
                            tags, dtypes, hyperparameters (exact hex), file, SHA-256
    <case-file>.npz         inputs and outputs as plain .npy members (no pickle):
                            param_<i>, grad_<i>, lrs_<g>, state_{m,v,vmax}_<i>,
                            theta_<i>, m_<i>, v_<i>, vmax_<i>

Regenerating gives identical bytes: members are written in a fixed order with a fixed
timestamp, and the manifest is canonical JSON. A regeneration writes into a temporary
sibling folder and swaps it in with renames, so an interrupted run leaves the old corpus.

The ``regressions/`` sub-folder holds cases found by fuzzing (same format, own manifest);
they are inputs chosen by hypothesis, so regeneration recomputes their outputs only.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mpmath
import numpy as np

from adamconf.conformance.corpus.cases import Case, catalogue, select_cases
from adamconf.conformance.errors import UsageError
from adamconf.conformance.files import atomic_folder
from adamconf.reference.config import GroupConfig
from adamconf.reference.engine import DEFAULT_DPS, run_reference
from adamconf.reference.problem import Group, InitialState, Problem, Trajectory

__all__ = ["GOLDEN_DIR", "FORMAT", "FORMAT_VERSION", "GoldenCase", "GoldenError",
           "load_corpus", "regenerate", "check", "write_corpus", "case_file_name",
           "encode_case", "decode_case", "add_regression", "problem_digest"]

GOLDEN_DIR = Path(__file__).with_name("golden")
REGRESSIONS_ENV = "ADAMCONF_REGRESSIONS"
DEFAULT_REGRESSIONS = "adamconf-regressions"
FORMAT = "adamconf-golden"
FORMAT_VERSION = 2  # 2: the ball certificate, its proof counts and the ties
GENERATOR_VERSION = 2  # bump when the engine or the catalogue changes what is stored
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class GoldenError(UsageError):
    """A golden folder that cannot be used: missing, corrupt, foreign, or out of date."""


@dataclass(frozen=True)
class GoldenCase:
    case: Case
    reference: Trajectory
    precision: dict

    @property
    def id(self) -> str:
        return self.case.id


def case_file_name(case_id: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in case_id)
    return f"{safe}-{hashlib.sha256(case_id.encode()).hexdigest()[:8]}.npz"


# --- encoding -----------------------------------------------------------------------------

def _npz_bytes(arrays: list[tuple[str, np.ndarray]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays:
            member = io.BytesIO()
            np.lib.format.write_array(member, np.array(array, order="C"), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue(), compresslevel=6)
    return buffer.getvalue()


def encode_case(case: Case, reference: Trajectory) -> tuple[bytes, dict]:
    """The case's data file bytes and its manifest entry (without file name and hash)."""
    problem = case.problem
    arrays: list[tuple[str, np.ndarray]] = []
    for i, p in enumerate(problem.params):
        arrays.append((f"param_{i}", p))
    for i, g in enumerate(problem.grads):
        arrays.append((f"grad_{i}", g))
    for gi, group in enumerate(problem.groups):
        if group.lrs is not None:
            arrays.append((f"lrs_{gi}", group.lrs))
    if problem.initial_state is not None:
        for name in ("m", "v", "vmax"):
            for i, a in enumerate(getattr(problem.initial_state, name)):
                arrays.append((f"state_{name}_{i}", a))
    for name in Trajectory.QUANTITIES:
        for i, a in enumerate(reference.quantity(name)):
            arrays.append((f"{name}_{i}", a))
    if reference.overflow is not None:  # exact values beyond float64 (fuzzed cases only)
        for name in Trajectory.QUANTITIES:
            for i, mask in enumerate(reference.overflow[name]):
                arrays.append((f"overflow_{name}_{i}", mask.astype(np.float64)))
    entry = {
        "id": case.id, "description": case.description, "tags": list(case.tags),
        "dtypes": list(case.dtypes), "steps": problem.steps,
        "initial_step": None if problem.initial_state is None else problem.initial_step,
        "groups": [{"config": g.config.to_json(), "params": len(g.params),
                    "shapes": [list(p.shape) for p in g.params],
                    "schedule": g.lrs is not None} for g in problem.groups],
        "precision": reference.precision,
        "ties": _tie_positions(reference),
    }
    return _npz_bytes(arrays), entry


def _tie_positions(reference: Trajectory) -> list[list]:
    """[quantity, param, step, flat element] of every value that is an exact tie: the
    stored value is the midpoint rounded ties-to-even, and judging accepts either
    neighbour there."""
    if not reference.ties:
        return []
    out = []
    for name in Trajectory.QUANTITIES:
        for i, mask in enumerate(reference.ties[name]):
            flat = np.asarray(mask).reshape(mask.shape[0], -1) if mask.ndim else mask
            for step, element in np.argwhere(flat):
                out.append([name, i, int(step), int(element)])
    return out


def _tie_masks(entry: dict, values: dict[str, list[np.ndarray]]) -> dict | None:
    positions = entry.get("ties") or []
    if not positions:
        return None
    masks = {name: [np.zeros(a.shape, dtype=bool) for a in arrays]
             for name, arrays in values.items()}
    for name, i, step, element in positions:
        mask = masks[name][i]
        mask.reshape(mask.shape[0], -1)[step, element] = True
    return masks


def decode_case(entry: dict, data: np.lib.npyio.NpzFile) -> GoldenCase:
    groups = []
    index = 0
    for gi, g in enumerate(entry["groups"]):
        params = tuple(data[f"param_{index + k}"] for k in range(g["params"]))
        index += g["params"]
        lrs = data[f"lrs_{gi}"] if g["schedule"] else None
        groups.append(Group(GroupConfig.from_json(g["config"]), params, lrs))
    n = index
    grads = tuple(data[f"grad_{i}"] for i in range(n))
    state = None
    if entry["initial_step"] is not None:
        state = InitialState(entry["initial_step"],
                             *(tuple(data[f"state_{name}_{i}"] for i in range(n))
                               for name in ("m", "v", "vmax")))
    problem = Problem(tuple(groups), grads, state)
    overflow = None
    if "overflow_theta_0" in data.files:
        overflow = {name: [data[f"overflow_{name}_{i}"] != 0 for i in range(n)]
                    for name in Trajectory.QUANTITIES}
    values = {name: [data[f"{name}_{i}"] for i in range(n)] for name in Trajectory.QUANTITIES}
    reference = Trajectory(*(values[name] for name in Trajectory.QUANTITIES),
                           vmax_kind="hat", precision=entry.get("precision", {}),
                           overflow=overflow, ties=_tie_masks(entry, values))
    case = Case(entry["id"], entry["description"], tuple(entry["tags"]), problem,
                tuple(entry["dtypes"]))
    return GoldenCase(case, reference, entry.get("precision", {}))


PROOF_COUNTS = ("proven_first", "proven_raised", "ties")


def proof_totals(entries: list[dict]) -> dict[str, int]:
    """What the certificate proved over a corpus: values proven correctly rounded at the
    first ball precision, after raising it, and exact ties."""
    return {k: sum(int(e.get("precision", {}).get(k, 0)) for e in entries)
            for k in PROOF_COUNTS}


def _manifest(entries: list[dict], dps: int, kind: str) -> bytes:
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
        "generator": "adamconf", "generator_version": GENERATOR_VERSION,
        "mpmath_version": mpmath.__version__, "precision_dps": dps,
        "certificate": {"engine": "arb (python-flint)", "cross-check": "mpmath",
                        **proof_totals(entries)},
        "spec": "mindspore.experimental.optim.Adam, as documented; see README",
        "cases": entries,
    }
    return (json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


# --- computing ----------------------------------------------------------------------------

def _compute(args: tuple[Case, int]) -> tuple[str, bytes, dict, float]:
    case, dps = args
    start = time.perf_counter()
    reference = run_reference(case.problem, dps=dps)
    data, entry = encode_case(case, reference)
    return case.id, data, entry, time.perf_counter() - start


def _progress(done: int, total: int, label: str, started: float, stream) -> None:
    """Progress on ``stream``; True means standard error (looked up now), None or False none."""
    if not stream:
        return
    if stream is True:
        stream = sys.stderr
    width = 30
    filled = int(width * done / max(total, 1))
    elapsed = time.perf_counter() - started
    bar = "█" * filled + "·" * (width - filled)
    end = "\n" if done == total else ""
    if stream.isatty():
        stream.write(f"\r  [{bar}] {done}/{total} {elapsed:5.1f}s {label[:40]:<40}{end}")
    elif done == total or done % max(total // 10, 1) == 0:
        stream.write(f"  {done}/{total} cases, {elapsed:.1f}s\n")
    stream.flush()


def compute_corpus(cases: list[Case], dps: int = DEFAULT_DPS, *, workers: int | None = None,
                   progress=True) -> dict[str, tuple[bytes, dict]]:
    """Run the reference on every case (in parallel on all cores); bytes and entries by id."""
    workers = workers or os.cpu_count() or 1
    # largest first, so the long cases do not finish last on one core
    order = sorted(cases, key=lambda c: -c.problem.element_steps)
    results: dict[str, tuple[bytes, dict]] = {}
    started = time.perf_counter()
    jobs = [(c, dps) for c in order]
    if workers > 1 and len(cases) > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for n, (cid, data, entry, _) in enumerate(pool.imap_unordered(_compute, jobs), 1):
                results[cid] = (data, entry)
                _progress(n, len(jobs), cid, started, progress)
    else:
        for n, job in enumerate(jobs, 1):
            cid, data, entry, _ = _compute(job)
            results[cid] = (data, entry)
            _progress(n, len(jobs), cid, started, progress)
    return results


def write_corpus(folder: Path, cases: list[Case], results: dict[str, tuple[bytes, dict]],
                 dps: int, kind: str = "catalogue") -> None:
    """Write manifest + data files into ``folder`` (which must be new or empty)."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for case in cases:
        data, entry = results[case.id]
        name = case_file_name(case.id)
        (folder / name).write_bytes(data)
        entries.append({**entry, "file": name, "sha256": hashlib.sha256(data).hexdigest()})
    (folder / "manifest.json").write_bytes(_manifest(entries, dps, kind))


def regenerate(folder: Path = GOLDEN_DIR, *, dps: int = DEFAULT_DPS, workers: int | None = None,
               progress=True) -> float:
    """Recompute the whole catalogue and swap it into ``folder`` atomically; returns seconds."""
    started = time.perf_counter()
    cases = catalogue()
    results = compute_corpus(cases, dps, workers=workers, progress=progress)
    with atomic_folder(folder) as staging:
        write_corpus(staging, cases, results, dps)
    return time.perf_counter() - started


# --- reading and checking ---------------------------------------------------------------

def _read_manifest(folder: Path) -> dict:
    path = folder / "manifest.json"
    if not folder.is_dir():
        raise GoldenError(f"golden folder {folder} does not exist; create it with "
                          "'adamconf golden regen'")
    if not path.is_file():
        raise GoldenError(f"{folder} has no manifest.json, so it is not a golden folder; "
                          "point to the right folder or run 'adamconf golden regen'")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GoldenError(f"{path} is not readable JSON ({exc}); restore it from version "
                          "control or run 'adamconf golden regen'") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise GoldenError(f"{path} is not an adamconf golden manifest (format "
                          f"{manifest.get('format') if isinstance(manifest, dict) else '?'!r}); "
                          "point to an adamconf golden folder")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise GoldenError(f"{path} has format version {manifest.get('format_version')}; this "
                          f"adamconf reads version {FORMAT_VERSION}: run 'adamconf golden regen'")
    return manifest


def _load_folder(folder: Path, verify: bool = True) -> list[GoldenCase]:
    manifest = _read_manifest(folder)
    out = []
    for entry in manifest["cases"]:
        path = folder / entry["file"]
        try:
            raw = path.read_bytes()
        except OSError:
            raise GoldenError(f"golden file {path.name} (case {entry['id']}) is missing; run "
                              "'adamconf golden regen'") from None
        if verify and hashlib.sha256(raw).hexdigest() != entry["sha256"]:
            raise GoldenError(f"golden file {path.name} (case {entry['id']}) does not match "
                              "its SHA-256 in manifest.json: it was changed or corrupted; "
                              "restore it or run 'adamconf golden regen'")
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as data:
                out.append(decode_case(entry, data))
        except (ValueError, KeyError, zipfile.BadZipFile, OSError) as exc:
            raise GoldenError(f"golden file {path.name} (case {entry['id']}) cannot be read "
                              f"({exc}); run 'adamconf golden regen'") from None
    return out


def load_corpus(folder: Path | str = GOLDEN_DIR) -> list[GoldenCase]:
    """Every case of a golden folder, checksums verified."""
    return _load_folder(Path(folder))


def default_regressions_folder() -> Path:
    """Where fuzzing saves regression cases: ``$ADAMCONF_REGRESSIONS``, else
    ``./adamconf-regressions`` in the working folder — the user's, never the package's."""
    return Path(os.environ.get(REGRESSIONS_ENV) or DEFAULT_REGRESSIONS)


def load_regressions(folder: Path | str) -> list[GoldenCase]:
    """The regression cases saved in a folder of the user's ([] where none were saved)."""
    folder = Path(folder)
    if not (folder / "manifest.json").exists():
        return []
    return _load_folder(folder)


@dataclass
class CheckResult:
    ok: bool
    problems: list[str]
    seconds: float
    notes: list[str] = field(default_factory=list)


def same_manifest(a: bytes, b: bytes) -> bool:
    """Manifests equal but for the mpmath version that wrote them (provenance only)."""
    try:
        ja, jb = json.loads(a), json.loads(b)
    except ValueError:
        return False
    ja.pop("mpmath_version", None)
    jb.pop("mpmath_version", None)
    return ja == jb


def check(folder: Path | str = GOLDEN_DIR, *, dps: int | None = None, workers: int | None = None,
          progress=True) -> CheckResult:
    """Verify checksums, regenerate in memory and compare bytes; name every differing file."""
    started = time.perf_counter()
    folder = Path(folder)
    problems: list[str] = []
    for entry in _read_manifest(folder)["cases"]:
        path = folder / entry["file"]
        if not path.is_file():
            problems.append(f"{entry['file']}: missing (case {entry['id']})")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            problems.append(f"{entry['file']}: SHA-256 differs from the manifest "
                            f"(case {entry['id']}): the file was changed or corrupted")
    manifest = _read_manifest(folder)
    dps = dps or manifest.get("precision_dps", DEFAULT_DPS)
    problems.extend(_disproofs(folder))
    totals = manifest.get("certificate", {})
    notes = [f"certificate: {totals.get('proven_first', 0)} values proven correctly rounded "
             f"at the first ball precision, {totals.get('proven_raised', 0)} after raising "
             f"it, {totals.get('ties', 0)} exact ties"]
    if manifest.get("mpmath_version") != mpmath.__version__:
        # provenance, not content: every value is certified, so another mpmath must give
        # the same bytes in every data file — which the comparison below checks
        notes.append(f"the corpus was written with mpmath {manifest.get('mpmath_version')}; "
                     f"this is mpmath {mpmath.__version__}")
    cases = catalogue()
    results = compute_corpus(cases, dps, workers=workers, progress=progress)
    with tempfile.TemporaryDirectory() as scratch:
        fresh = Path(scratch) / "golden"
        write_corpus(fresh, cases, results, dps)
        problems.extend(_compare_trees(fresh, folder))
    return CheckResult(not problems, problems, time.perf_counter() - started, notes)


def _disproofs(folder: Path) -> list[str]:
    """Every stored value that Arb's enclosure of the exact value proves wrong."""
    from adamconf.reference.balls import find_disproofs

    try:
        stored = _load_folder(folder, verify=False)
    except GoldenError as exc:
        return [str(exc)]
    found = []
    for g in stored:
        for d in find_disproofs(g.case.problem, g.reference):
            shape = g.case.problem.params[d.param].shape
            index = list(np.unravel_index(d.element, shape)) if shape else []
            found.append(f"case {g.id} step {d.step + 1} {d.quantity} param {d.param}"
                         f"{index}: stored {d.stored.hex()}, but the enclosure of the exact "
                         f"value proves {d.proven.hex()}: disproven")
    return found


def _compare_trees(fresh: Path, stored: Path) -> list[str]:
    problems = []
    names_fresh = {p.name for p in fresh.iterdir() if p.is_file()} if fresh.exists() else set()
    names_stored = {p.name for p in stored.iterdir() if p.is_file()} if stored.exists() else set()
    for name in sorted(names_fresh | names_stored):
        if name not in names_stored:
            problems.append(f"{name}: missing from the stored corpus (regeneration makes it)")
        elif name not in names_fresh:
            problems.append(f"{name}: stored but not produced by regeneration (stale file)")
        elif (fresh / name).read_bytes() != (stored / name).read_bytes() and not (
                name == "manifest.json"
                and same_manifest((fresh / name).read_bytes(), (stored / name).read_bytes())):
            problems.append(f"{name}: differs from a fresh regeneration")
    return problems


def problem_digest(problem: Problem) -> str:
    """SHA-256 of a problem's inputs and options: the identity of a regression case."""
    digest = hashlib.sha256()
    for group in problem.groups:
        digest.update(json.dumps(group.config.to_json(), sort_keys=True).encode())
        for p in group.params:
            digest.update(repr(p.shape).encode() + p.tobytes())
        if group.lrs is not None:
            digest.update(b"lrs" + group.lrs.tobytes())
    for g in problem.grads:
        digest.update(repr(g.shape).encode() + g.tobytes())
    state = problem.initial_state
    if state is not None:
        digest.update(str(state.step).encode())
        for arrays in (state.m, state.v, state.vmax):
            for a in arrays:
                digest.update(a.tobytes())
    return digest.hexdigest()


def add_regression(case: Case, folder: Path | str, *,
                   dps: int = DEFAULT_DPS) -> tuple[GoldenCase, bool]:
    """Store ``case`` in the user's regressions ``folder`` (atomically); returns (stored case,
    is_new). The installed package is never written to.

    A case whose inputs are already stored (same digest) is not stored twice: the stored
    one is returned with ``is_new = False``.
    """
    folder = Path(folder).resolve()
    if folder == GOLDEN_DIR.resolve() or GOLDEN_DIR.resolve() in folder.parents:
        raise UsageError(f"{folder} is inside the installed golden corpus; regression cases "
                         "belong in a folder of yours (--regressions DIR)")
    existing = load_regressions(folder)
    digest = problem_digest(case.problem)
    for g in existing:
        if problem_digest(g.case.problem) == digest:
            return g, False
    cases = [g.case for g in existing] + [case]
    results = {g.id: encode_case(g.case, g.reference) for g in existing}
    reference = run_reference(case.problem, dps=dps)
    results[case.id] = encode_case(case, reference)
    with atomic_folder(folder) as staging:
        write_corpus(staging, cases, results, dps, "regressions")
    return GoldenCase(case, reference, reference.precision), True


def select_golden(corpus: list[GoldenCase], *, case_ids: Sequence[str] = (),
                  patterns: Sequence[str] = (), tags: Sequence[str] = ()) -> list[GoldenCase]:
    """The cases chosen by exact ids, or by id patterns and tags; a UsageError when none."""
    if case_ids:
        ids = {g.id: g for g in corpus}
        unknown = [i for i in case_ids if i not in ids]
        if unknown:
            raise UsageError(f"no case with id {', '.join(map(repr, unknown))}; "
                             "'adamconf cases --list' lists them")
        return [ids[i] for i in case_ids]
    chosen = {c.id for c in select_cases([g.case for g in corpus], patterns, tags)}
    selected = [g for g in corpus if g.id in chosen]
    if not selected:
        what = " ".join([f"-k {p}" for p in patterns] + [f"--tag {t}" for t in tags])
        raise UsageError(f"no case matches {what}; 'adamconf cases --list' lists ids and tags")
    return selected
