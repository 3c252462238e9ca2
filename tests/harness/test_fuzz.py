"""The fuzzer: its strategies draw valid cases, it passes a correct backend, and it finds,
shrinks, saves (once) and reproduces the failure of a wrong one."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from processes import descendants, survivors_of_sigterm

from adamconf.conformance.cli import main
from adamconf.conformance.corpus import strategies as S
from adamconf.conformance.corpus.cases import exact_dtypes
from adamconf.conformance.corpus.golden import GOLDEN_DIR
from adamconf.reference.config import GroupConfig
from adamconf.reference.floats import representable

DTYPES = ("float64", "float32", "float16", "bfloat16")
HYPOFUZZ_MISSING = "hypofuzz is not installed: pip install 'adamconf[hypofuzz]'"


def _inputs(problem):
    yield from problem.params
    yield from problem.grads
    if problem.initial_state is not None:
        for name in ("m", "v", "vmax"):
            yield from getattr(problem.initial_state, name)


# --- (a) the strategies --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_cases_are_valid_and_exact_in_their_dtype(dtype, data):
    case = data.draw(S.cases(dtype))
    problem = case.problem
    with np.errstate(over="ignore"):  # rounding values near float64's max to bfloat16
        assert dtype in case.dtypes and dtype in exact_dtypes(problem)
    for array in _inputs(problem):
        assert np.all(representable(array, dtype)) and np.all(np.isfinite(array))
    assert sum(p.size for p in problem.params) <= 16 and 1 <= problem.steps <= 20
    for group in problem.groups:
        if group.lrs is not None:
            assert np.all(group.lrs >= 0)
    state = problem.initial_state
    if state is not None:
        assert 0 < state.step <= 2**31
        assert all(np.all(v >= 0) for v in state.v) and all(np.all(v >= 0) for v in state.vmax)
    assert "regime:fuzz" in case.tags


_FIND = settings(max_examples=2000, database=None, deadline=None,
                 phases=[Phase.generate], suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("what, condition", [
    ("an empty parameter", lambda c: any(p.shape == (0,) for p in c.problem.params)),
    ("a 0-d parameter", lambda c: any(p.shape == () for p in c.problem.params)),
    ("several groups", lambda c: len(c.problem.groups) >= 3),
    ("a state resumed at step ≥ 10^7", lambda c: c.problem.initial_step >= 10**7),
    ("an lr schedule with a 0", lambda c: any(g.lrs is not None and 0.0 in g.lrs
                                              for g in c.problem.groups)),
    ("ε = 0 with amsgrad and maximize", lambda c: any(
        g.config.eps == 0 and g.config.amsgrad and g.config.maximize for g in c.problem.groups)),
    ("β1 = 0", lambda c: any(g.config.beta1 == 0 for g in c.problem.groups)),
    ("β2 just below 1", lambda c: any(g.config.beta2 >= 1 - 2.0**-20 for g in c.problem.groups)),
    ("a subnormal gradient", lambda c: any(
        np.any((g != 0) & (np.abs(g) < 2.0**-126)) for g in c.problem.grads)),
    ("a gradient near the largest float32", lambda c: any(
        np.any(np.abs(g) >= 2.0**126) for g in c.problem.grads)),
    ("a −0 parameter", lambda c: any(
        np.any((p == 0) & np.signbit(p)) for p in c.problem.params)),
])
def test_cases_reach_the_edges(what, condition):
    find(S.cases("float32"), condition, settings=_FIND)


def test_non_finite_inputs_only_when_allowed():
    def non_finite(case):
        return any(not np.all(np.isfinite(a)) for a in _inputs(case.problem))

    found = find(S.cases("float32", allow_non_finite=True), non_finite, settings=_FIND)
    assert "feature:non-finite" in found.tags


@settings(max_examples=40, deadline=None)
@given(S.hyperparameters("float32"))
def test_hyperparameters_are_valid(config):
    assert GroupConfig(lr=config.lr, betas=config.betas, eps=config.eps,
                       weight_decay=config.weight_decay) is not None


@settings(max_examples=60, deadline=None)
@given(S.invalid_hyperparameters())
def test_invalid_hyperparameters_raise_in_the_reference(item):
    with pytest.raises(ValueError):
        GroupConfig(**item.kwargs)


# --- (b)–(d) the command, on a correct backend and on wrong ones ---------------------------

BACKENDS = textwrap.dedent('''
    """Backends for test_fuzz: ε inside the square root; an lr < 0 accepted."""
    import numpy as np

    from adamconf.adapters.base import OptimizerState, UnsupportedFeature
    from adamconf.adapters.numpy_backend import NumpyBackend


    class _Session:
        """Adam in the variant's dtype; with eps_inside, d = sqrt(v_hat + eps) (wrong)."""

        def __init__(self, problem, dtype, eps_inside):
            if problem.initial_state is not None:
                raise UnsupportedFeature("no resumed states")
            self.dtype = np.dtype(dtype)
            self.configs = [g.config for g in problem.groups]
            self.owner = problem.group_of_param()
            self.lrs = [c.lr for c in self.configs]
            self.theta = [np.array(p, dtype=self.dtype) for p in problem.params]
            self.m = [np.zeros_like(t) for t in self.theta]
            self.v = [np.zeros_like(t) for t in self.theta]
            self.vmax = [np.zeros_like(t) for t in self.theta]
            self.t, self.eps_inside = 0, eps_inside

        def step(self, grads, lrs=None):
            if lrs is not None:
                self.lrs = list(lrs)
            self.t += 1
            d = self.dtype.type
            with np.errstate(all="ignore"):
                for i, grad in enumerate(grads):
                    c = self.configs[self.owner[i]]
                    g = np.asarray(grad, dtype=self.dtype)
                    g = -g if c.maximize else g
                    if c.weight_decay:
                        g = g + d(c.weight_decay) * self.theta[i]
                    b1, b2 = c.betas
                    self.m[i] = d(b1) * self.m[i] + d(1 - b1) * g
                    self.v[i] = d(b2) * self.v[i] + d(1 - b2) * (g * g)
                    m_hat = self.m[i] / d(1 - b1 ** self.t)
                    v_hat = self.v[i] / d(1 - b2 ** self.t)
                    if c.amsgrad:
                        self.vmax[i] = np.maximum(self.vmax[i], v_hat)
                        v_hat = self.vmax[i]
                    lr, eps = d(self.lrs[self.owner[i]]), d(c.eps)
                    denominator = np.sqrt(v_hat + eps) if self.eps_inside else np.sqrt(v_hat) + eps
                    self.theta[i] = self.theta[i] - lr * (m_hat / denominator)

        def params(self):
            return [t.astype(np.float64) for t in self.theta]

        def state(self):
            return OptimizerState(self.t, [a.astype(np.float64) for a in self.m],
                                  [a.astype(np.float64) for a in self.v],
                                  [a.astype(np.float64) for a in self.vmax], "hat")


    class EpsInsideSqrt(NumpyBackend):
        name = "eps-inside"
        eps_inside = True

        def open(self, problem, variant):
            self._check_variant(variant)
            return _Session(problem, variant.dtype, self.eps_inside)


    class Plain(EpsInsideSqrt):
        """The same code with eps where the documentation puts it."""

        name = "plain"
        eps_inside = False


    class WorksOnlyInTheParent(NumpyBackend):
        """Probes only as the worker of the process named in $ADAMCONF_TEST_FUZZ_PARENT, so
        every fuzzing job (its own worker) fails to start."""

        name = "parent-only"

        def probe(self):
            import os

            if os.environ.get("ADAMCONF_TEST_FUZZ_PARENT") != str(os.getppid()):
                raise RuntimeError("this backend starts only under the test's process")
            return super().probe()


    class NegativeLrAccepted(NumpyBackend):
        name = "lax-lr"

        def construct(self, variant, *, lr, **kwargs):
            if isinstance(lr, float) and lr < 0:
                return  # accepted: the documented ValueError is missing
            super().construct(variant, lr=lr, **kwargs)
''')


@pytest.fixture(scope="module")
def backends_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz_backends")
    (folder / "adamconf_fuzz_test_backends.py").write_text(BACKENDS)
    return folder


@pytest.fixture
def importable(backends_module, monkeypatch):
    """The test backends importable here and in the backend's worker process."""
    monkeypatch.syspath_prepend(str(backends_module))
    path = [str(backends_module)] + [p for p in sys.path if p]
    monkeypatch.setenv("PYTHONPATH", ":".join(path))
    return "adamconf_fuzz_test_backends"


@pytest.fixture
def regressions(tmp_path):
    return tmp_path / "my-regressions"


def _package_bytes() -> dict[str, bytes]:
    """Every file of the installed golden folder, to prove fuzzing writes nothing there."""
    return {str(p.relative_to(GOLDEN_DIR)): p.read_bytes()
            for p in sorted(GOLDEN_DIR.rglob("*")) if p.is_file()}


def _regression_ids(folder) -> list[str]:
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return []
    return [c["id"] for c in json.loads(manifest.read_text())["cases"]]


def test_fuzz_passes_the_numpy_backend(regressions, capsys):
    code = main(["fuzz", "--backend", "numpy", "--max-examples", "60", "--seed", "0",
                 "--no-database", "--regressions", str(regressions), "-q"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "no failure found" in out and "examples/s" in out
    assert re.search(r": 60 examples in [0-9.]+ s", out), out  # exactly the examples asked
    assert _regression_ids(regressions) == []


def test_fuzz_finds_shrinks_saves_and_reproduces_a_wrong_backend(importable, regressions,
                                                                 tmp_path, capsys):
    spec = f"{importable}:EpsInsideSqrt"
    package_before = _package_bytes()
    fuzz = ["fuzz", "--backend", spec, "--max-examples", "100", "--seed", "7",
            "--database", str(tmp_path / "db"), "--regressions", str(regressions),
            "--max-steps", "4", "--max-elements", "4", "--no-invalid", "-q"]
    assert main(fuzz) == 1
    out = capsys.readouterr().out
    assert "FAILURE (fail)" in out and "saved as regression case" in out
    ids = _regression_ids(regressions)
    assert len(ids) == 1 and ids[0].startswith("regression/eps-inside-")
    assert f"--case {ids[0]}" in out and f"--regressions {regressions}" in out
    assert _package_bytes() == package_before  # nothing under the installed package changed
    manifest = json.loads((regressions / "manifest.json").read_text())
    entry = manifest["cases"][0]
    assert "regression" in entry["tags"] and "regime:fuzz" in entry["tags"]
    # shrunk: one group holding one parameter of at most one element
    assert len(entry["groups"]) == 1 and entry["groups"][0]["params"] == 1
    assert int(np.prod(entry["groups"][0]["shapes"][0])) <= 1
    assert "runs while shrinking" in out
    assert "eps-inside-sqrt" in out  # the dialect it implements is named

    # the saved case reproduces the failure through 'adamconf run'
    assert main(["run", "--backend", spec, "--regressions", str(regressions), "--case", ids[0],
                 "--variant", "production", "--dtype", "float32", "-q"]) == 1
    capsys.readouterr()

    # the same failure found again is not stored again
    assert main(fuzz) == 1
    out = capsys.readouterr().out
    assert "already stored as regression case" in out
    assert _regression_ids(regressions) == ids
    assert _package_bytes() == package_before


def test_fuzz_reports_a_backend_that_accepts_a_negative_lr(importable, capsys):
    code = main(["fuzz", "--backend", f"{importable}:NegativeLrAccepted", "--invalid",
                 "--max-examples", "40", "--seed", "1", "--no-database", "--no-save", "-q"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "INVALID HYPERPARAMETERS NOT REFUSED" in out
    lines = [line for line in out.splitlines() if "production/cpu accepted:" in line]
    assert len(lines) == 1 and "lr=-0.001" in lines[0]
    values = [v for v in lines[0].split(": ", 1)[1].split("; ") if not v.startswith("and ")]
    assert all(value.startswith("lr=-") for value in values)
    assert "the reference" not in out  # the reference refused every one of them


def test_fuzz_stops_when_the_time_is_up(importable, regressions, capsys):
    code = main(["fuzz", "--backend", f"{importable}:Plain", "--seconds", "3", "--seed", "3",
                 "--no-database", "--regressions", str(regressions), "--no-invalid", "-q"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "stopped: time budget spent" in out


def test_fuzz_jobs_share_the_examples_and_say_their_seeds(capsys):
    code = main(["fuzz", "--backend", "numpy", "--max-examples", "41", "--seed", "5", "-j", "2",
                 "--no-database", "--no-save", "--no-invalid"])
    captured = capsys.readouterr()
    assert code == 0, captured.out
    assert "2 jobs: seeds 5 to 6" in captured.err
    assert re.search(r": 41 examples in [0-9.]+ s", captured.out), captured.out


def test_fuzz_jobs_from_a_script_without_a_main_guard(tmp_path):
    """``adamconf.fuzz(jobs=2)`` at a script's top level: the jobs do not run the script
    again (a spawned process imports its parent's ``__main__`` unless told not to)."""
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent("""
        import adamconf
        print("the script ran")
        code = adamconf.fuzz("numpy", max_examples=12, seed=1, jobs=2, no_database=True,
                             no_save=True, no_invalid=True, quiet=True)
        print("exit", code)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("the script ran") == 1, done.stdout
    assert "exit 0" in done.stdout and ": 12 examples in" in done.stdout


def test_a_fuzzing_job_that_cannot_start_is_an_error_not_a_pass(importable, monkeypatch,
                                                                capsys):
    monkeypatch.setenv("ADAMCONF_TEST_FUZZ_PARENT", str(os.getpid()))
    code = main(["fuzz", "--backend", f"{importable}:WorksOnlyInTheParent", "--max-examples",
                 "10", "--seed", "1", "-j", "2", "--no-database", "--no-save", "--no-invalid",
                 "-q"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "a fuzzing job failed" in out and "FAILURES FOUND" in out
    assert "no failure found" not in out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("engine", ["jobs", "hypofuzz"])
def test_fuzzing_jobs_and_their_workers_never_outlive_the_command(engine):
    """SIGTERM to ``adamconf fuzz -j 2`` alone (as a killed terminal): its jobs (or
    HypoFuzz's campaign: its hub, manager and workers) and their backend workers stop
    within seconds."""
    if engine == "hypofuzz":
        pytest.importorskip("hypofuzz", reason=HYPOFUZZ_MISSING)
    parent = subprocess.Popen(
        [sys.executable, "-m", "adamconf.conformance.cli", "fuzz", "--backend", "numpy",
         "-j", "2", "--seconds", "120", "--no-database", "--no-save", "--no-invalid", "-q",
         "--engine", engine],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        below: list[int] = []
        # jobs: the parent's worker, multiprocessing's resource tracker, 2 jobs and their
        # workers; hypofuzz: the parent's worker, the campaign, its manager, 2 workers and
        # theirs
        while time.monotonic() < deadline and len(below) < 5:
            time.sleep(0.5)
            below = descendants(parent.pid)
        assert len(below) >= 5, f"the jobs did not start: {below}"
        time.sleep(1)
        assert not survivors_of_sigterm(parent, below), "a job or worker outlived fuzz"
    finally:
        if parent.poll() is None:
            parent.kill()


def test_fuzz_derandomized_draws_the_same_examples_on_every_run(regressions, capsys):
    """With no example database: hypothesis keeps none for a derandomized test."""
    outputs = []
    for _ in range(2):
        assert main(["fuzz", "--backend", "numpy", "--derandomize", "--max-examples", "12",
                     "--regressions", str(regressions)]) == 0
        captured = capsys.readouterr()
        assert "derandomized; database none" in captured.err
        outputs.append(re.sub(r"[0-9.]+ s\b|[0-9.]+ examples/s", "", captured.out))
    assert outputs[0] == outputs[1] and ": 12 examples in" in outputs[0], outputs
    assert "invalid hyperparameters: 38 checked" in outputs[0]
    assert _regression_ids(regressions) == []
    assert main(["fuzz", "--derandomize", "--database", str(regressions / "db")]) == 2
    assert "--derandomize" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--max-examples", "0"], "--max-examples"),
    (["--jobs", "0"], "--jobs"),
    (["--derandomize", "-j", "2"], "--derandomize"),
    (["--seconds", "-1"], "--seconds"),
    (["--dtype", "float8"], "unknown dtype"),
    (["--backend", "nonesuch"], "unknown backend"),
    (["--invalid", "--no-invalid"], "exclude each other"),
])
def test_fuzz_usage_errors(argv, message, capsys):
    assert main(["fuzz", "--no-database", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
