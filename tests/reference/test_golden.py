"""Golden files: reproducible bytes, checksums, atomic regeneration, coverage, size."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from adamconf.conformance.corpus import golden
from adamconf.conformance.corpus.cases import ALL_DTYPES, catalogue, coverage_matrix, exact_dtypes
from adamconf.reference.dialects import DIALECTS, SEMANTIC_DIALECTS, SPEC
from adamconf.reference.engine import run_float64
from adamconf.reference.floats import representable


@pytest.fixture(scope="module")
def corpus():
    return golden.load_corpus()


@pytest.fixture()
def copy_of_corpus(tmp_path):
    target = tmp_path / "golden"
    shutil.copytree(golden.GOLDEN_DIR, target)
    return target


def test_catalogue_size_and_unique_ids():
    cases = catalogue()
    assert len(cases) >= 60
    assert len({c.id for c in cases}) == len(cases)


def test_coverage_matrix_has_no_empty_cell():
    rows, columns, counts = coverage_matrix(catalogue())
    empty = [(r, c) for r in rows for c in columns if counts[(r, c)] == 0]
    assert len(rows) == 8 and not empty


def test_inputs_are_exact_in_every_targeted_dtype():
    for case in catalogue():
        assert case.dtypes == exact_dtypes(case.problem)
        assert "float64" in case.dtypes
        for dtype in case.dtypes:
            for array in case.problem.params + case.problem.grads:
                assert representable(array, dtype).all(), (case.id, dtype)
    narrow = [c for c in catalogue() if "float16" in c.dtypes and "bfloat16" in c.dtypes]
    assert len(narrow) > 100


def test_stored_corpus_matches_catalogue(corpus):
    assert [g.id for g in corpus if "regression" not in g.case.tags] == \
        [c.id for c in catalogue()]


def test_corpus_is_small():
    total = sum(p.stat().st_size for p in golden.GOLDEN_DIR.rglob("*") if p.is_file())
    assert total <= 5 * 2**20


def test_every_dialect_departs_far_from_the_spec_somewhere(corpus):
    """Each dialect moves some float32-targeted trajectory by ≫ float32 rounding (1e-3 rel)."""
    for name, dialect in SEMANTIC_DIALECTS.items():
        if dialect is SPEC:
            continue
        departures = []
        quantity = "vmax" if name == "max-drops-nan" else "theta"  # a NaN v̂ kept out of v̂max
        for g in corpus:
            if "float32" not in g.case.dtypes:
                continue
            with np.errstate(all="ignore"):
                other = run_float64(g.case.problem, dialect).quantity(quantity)
                for a, b in zip(g.reference.quantity(quantity), other):
                    diff = np.abs(a - b) / np.maximum(np.abs(a), 1e-30)
                    finite = np.isfinite(a) & np.isfinite(b)
                    class_change = np.isnan(a) != np.isnan(b)
                    if (finite & (diff > 1e-3)).any() or class_change.any():
                        departures.append(g.id)
        assert departures, f"no golden case tells {name} from the spec"


def test_reference_agrees_with_float64_shadow(corpus):
    """A sanity check of the stored values: float64 arithmetic lands close to them."""
    for g in corpus:
        shadow = run_float64(g.case.problem)
        for a, b in zip(g.reference.theta, shadow.theta):
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=g.id)
            finite = np.isfinite(a) & np.isfinite(b)
            # relative to the trajectory's scale: θ may cancel to ~0 (constant-gradient case)
            scale = np.max(np.abs(a[finite]), initial=0.0)
            np.testing.assert_allclose(a[finite], b[finite], rtol=1e-9, atol=1e-12 * scale,
                                       err_msg=g.id)


def test_check_passes_on_the_stored_corpus():
    result = golden.check(workers=2, progress=None)
    assert result.ok, result.problems


def test_regeneration_gives_identical_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    golden.regenerate(a, workers=2, progress=None)
    golden.regenerate(b, workers=1, progress=None)
    files = sorted(p.name for p in a.iterdir())
    assert files == sorted(p.name for p in b.iterdir())
    for name in files:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
        fresh, stored = (a / name).read_bytes(), (golden.GOLDEN_DIR / name).read_bytes()
        if name == "manifest.json":  # may name another mpmath version: provenance only
            assert golden.same_manifest(fresh, stored)
        else:
            assert fresh == stored, name


def test_another_mpmath_version_is_a_note_not_a_difference(copy_of_corpus):
    manifest = json.loads((copy_of_corpus / "manifest.json").read_text())
    manifest["mpmath_version"] = "0.0-elsewhere"
    (copy_of_corpus / "manifest.json").write_text(json.dumps(manifest, indent=1))
    result = golden.check(copy_of_corpus, workers=2, progress=None)
    assert result.ok, result.problems
    assert any("0.0-elsewhere" in note for note in result.notes)


def test_one_changed_byte_is_named(copy_of_corpus):
    manifest = json.loads((copy_of_corpus / "manifest.json").read_text())
    victim = copy_of_corpus / manifest["cases"][7]["file"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    result = golden.check(copy_of_corpus, workers=2, progress=None)
    assert not result.ok
    assert any(victim.name in p and "SHA-256" in p for p in result.problems)
    with pytest.raises(golden.GoldenError, match=victim.name):
        golden.load_corpus(copy_of_corpus)


def test_a_consistent_but_wrong_file_is_caught_by_regeneration(copy_of_corpus):
    """Changing a value and its checksum together is still caught: check recomputes."""
    manifest_path = copy_of_corpus / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    entry = manifest["cases"][3]
    with np.load(copy_of_corpus / entry["file"]) as data:
        arrays = {k: data[k].copy() for k in data.files}
    arrays["theta_0"].flat[0] += 1e-9
    raw = golden._npz_bytes(list(arrays.items()))
    (copy_of_corpus / entry["file"]).write_bytes(raw)
    import hashlib

    entry["sha256"] = hashlib.sha256(raw).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    result = golden.check(copy_of_corpus, workers=2, progress=None)
    assert any(entry["file"] in p and "differs" in p for p in result.problems)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: (d / "manifest.json").unlink(), "has no manifest.json"),
    (lambda d: (d / "manifest.json").write_text("{not json"), "not readable JSON"),
    (lambda d: (d / "manifest.json").write_text('{"format": "other"}'), "not an adamconf golden"),
    (lambda d: (d / "manifest.json").write_text(
        '{"format": "adamconf-golden", "format_version": 99}'), "format version 99"),
])
def test_foreign_or_corrupt_folders(copy_of_corpus, mutate, message):
    mutate(copy_of_corpus)
    with pytest.raises(golden.GoldenError, match=message):
        golden.load_corpus(copy_of_corpus)


def test_missing_folder(tmp_path):
    with pytest.raises(golden.GoldenError, match="does not exist"):
        golden.load_corpus(tmp_path / "nowhere")


def test_interrupted_regeneration_leaves_the_old_corpus(copy_of_corpus, monkeypatch):
    before = {p.name: p.read_bytes() for p in copy_of_corpus.iterdir()}
    real = golden.write_corpus

    def dies_halfway(folder, cases, results, dps, kind="catalogue"):
        real(folder, cases[: len(cases) // 2], results, dps, kind)
        raise KeyboardInterrupt

    monkeypatch.setattr(golden, "write_corpus", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        golden.regenerate(copy_of_corpus, workers=1, progress=None)
    after = {p.name: p.read_bytes() for p in copy_of_corpus.iterdir()}
    assert after == before
    leftovers = [p for p in Path(copy_of_corpus).parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_files_load_without_pickle(corpus):
    for path in golden.GOLDEN_DIR.glob("*.npz"):
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                assert data[key].dtype == np.float64


def test_target_dtypes_are_exactly_those_the_inputs_are_exact_in(corpus):
    """A case may target a dtype only where every input is representable in it, and must
    target every such dtype (a missing one is a gap in the coverage matrix)."""
    from adamconf.conformance.corpus.cases import exact_dtypes
    from adamconf.reference.floats import representable

    for g in corpus:
        assert set(g.case.dtypes) <= set(ALL_DTYPES)
        assert tuple(g.case.dtypes) == exact_dtypes(g.case.problem), g.id
        for dtype in g.case.dtypes:
            for p in g.case.problem.params:
                assert representable(p, dtype).all(), (g.id, dtype)
