"""The HTML report, checked as a page: its structure with the stdlib parser, and — where a
Chromium is installed — rendered by a real headless browser, with a screenshot kept as a CI
artifact (out/ci/report-screenshot.png)."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import textwrap
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from adamconf.adapters.base import Variant
from adamconf.adapters.numpy_backend import NumpyBackend
from adamconf.conformance.corpus.golden import load_corpus
from adamconf.conformance.harness.runner import run
from adamconf.conformance.harness.worker import BackendProcess
from adamconf.conformance.judge.outcome import CaseResult
from adamconf.conformance.report import html as html_report

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "out" / "ci" / "report-screenshot.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CASES = ("t1/plain", "short/ams+wd", "eps-large/plain", "schedule/max", "non-finite/plain",
         "resumed/plain")

# Two deliberately wrong backends, loaded by the spawned worker as `module:factory`.
WRONG_BACKENDS = '''
import numpy as np
from adamconf.adapters.base import OptimizerState, Variant
from adamconf.adapters.base import Variant
from adamconf.adapters.numpy_backend import NumpyBackend


class ScaledSession:
    """The production Adam with every θ update scaled by 1.01: no known dialect."""

    def __init__(self, inner):
        self.inner = inner

    def step(self, grads, lrs=None):
        before = self.inner.params()
        self.inner.step(grads, lrs)
        for p, b in zip(self.inner._params, before):
            with np.errstate(all="ignore"):
                p[...] = b + (p - b) * 1.01

    def params(self):
        return self.inner.params()

    def state(self):
        return self.inner.state()


class ReplaySession:
    """The eps-hat dialect's float64 trajectory, rounded to the variant's dtype, replayed."""

    def __init__(self, trajectory, dtype):
        self.traj, self.dtype, self.k = trajectory, np.dtype(dtype), -1

    def _now(self, arrays):
        return [a[self.k].astype(self.dtype).astype(np.float64) for a in arrays]

    def step(self, grads, lrs=None):
        self.k += 1

    def params(self):
        return self._now(self.traj.theta)

    def state(self):
        t = self.traj
        return OptimizerState(None, self._now(t.m), self._now(t.v), self._now(t.vmax), "hat")


class ScaledBackend:
    name = "scaled-updates"

    def __init__(self):
        self.numpy = NumpyBackend()

    def _numpy_variant(self, variant):
        return Variant("numpy", variant.name, variant.device, variant.dtype)

    def probe(self):
        info = self.numpy.probe()
        info.name = self.name
        info.variants = [Variant(self.name, v.name, v.device, v.dtype)
                         for v in info.variants if v.name == "production"]
        return info

    def open(self, problem, variant):
        return ScaledSession(self.numpy.open(problem, self._numpy_variant(variant)))

    def construct(self, variant, **kwargs):
        self.numpy.construct(self._numpy_variant(variant), **kwargs)


class EpsHatBackend(ScaledBackend):
    name = "eps-hat-replay"

    def open(self, problem, variant):
        from adamconf.reference.dialects import get_dialect
        from adamconf.reference.engine import run_float64

        self.numpy.open(problem, self._numpy_variant(variant))  # the same unsupported cases
        return ReplaySession(run_float64(problem, get_dialect("eps-hat")), variant.dtype)
'''


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A conforming numpy run and two failing third-party runs, on a few cases."""
    folder = tmp_path_factory.mktemp("backends")
    (folder / "wrong_adam.py").write_text(textwrap.dedent(WRONG_BACKENDS))
    # A spawned worker starts with this process's sys.path (multiprocessing copies it;
    # PYTHONPATH would reach only a separate `adamconf run` process).
    sys.path.insert(0, str(folder))
    try:
        corpus = [g for g in load_corpus() if g.id in CASES]
        assert len(corpus) == len(CASES)
        info = NumpyBackend().probe()
        variants = [v for v in info.variants if v.name == "production"
                    and v.dtype in ("float32", "float64")]
        out = [run("numpy", corpus, variants=variants, info=info)]
        for spec in ("wrong_adam:ScaledBackend", "wrong_adam:EpsHatBackend"):
            with BackendProcess(spec) as process:
                reply = process.request("probe")
                assert reply.ok, reply
                wrong = reply.value
                chosen = [v for v in wrong.variants if v.dtype == "float32"]
                out.append(run(spec, corpus, variants=chosen, info=wrong, process=process))
        return out
    finally:
        sys.path.remove(str(folder))


class _Page(HTMLParser):
    """What the tests look at: the title, tables by id, legend, images, text."""

    def __init__(self) -> None:
        super().__init__()
        self.title, self.ids, self.images, self.text = "", set(), [], []
        self.cells: list[tuple[str, str]] = []  # (class, text) of summary cells
        self._in_title = False
        self._cell_class: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "title":
            self._in_title = True
        if tag == "img":
            self.images.append(attrs)
        if tag == "td" and "cell" in (attrs.get("class") or "").split():
            self._cell_class = attrs["class"]
            self.cells.append((self._cell_class, ""))

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        if tag == "td":
            self._cell_class = None

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        if self._cell_class is not None:
            cls, text = self.cells[-1]
            self.cells[-1] = (cls, text + data)
        self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def _png_bytes(src: str) -> bytes:
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix), src[:40]
    return base64.b64decode(src[len(prefix):], validate=True)


def _result(status: str, dialects: list[str] | None = None) -> CaseResult:
    return CaseResult("case", Variant("x", "v", "cpu", "float32"), status, dialects=dialects)


@pytest.mark.parametrize("statuses, word", [
    ([], "—"),
    (["pass", "pass"], "conforms"),
    # every judged case passed: it conforms on what it can express, and says how much that is
    (["pass", "unsupported"], "conforms (1 of 2 judged; 1 unsupported)"),
    (["pass"] * 48 + ["unsupported"] * 147, "conforms (48 of 195 judged; 147 unsupported)"),
    (["unsupported", "unsupported"], "unsupported"),  # nothing could run: no claim
    (["pass", "unsupported", "inconclusive"], "inconclusive"),
    (["pass", "inconclusive", "error"], "error"),
    (["pass", ("fail", ["eps-hat", "ams-ignored+eps-hat"]), ("fail", ["eps-hat"]), "error"],
     "dialect eps-hat"),
    ([("fail", ["ams-ignored+eps-hat", "eps-hat"]), ("fail", ["ams-ignored+eps-hat", "eps-hat"])],
     "dialect eps-hat (+1)"),  # the catalogue's order: the simplest first
    ([("fail", ["eps-hat"]), ("fail", ["ams-ignored+eps-hat"])],
     "dialects eps-hat + ams-ignored+eps-hat"),
    ([("fail", ["eps-hat"]), ("fail", [])], "fails"),
    ([("fail", None), "pass"], "fails"),
])
def test_cell_word(statuses, word):
    results = [_result(*s) if isinstance(s, tuple) else _result(s) for s in statuses]
    assert html_report.cell_word(results)[0] == word


def test_runs_have_what_the_report_shows(runs):
    numpy_run, scaled, eps_hat = runs
    assert numpy_run.conforms and numpy_run.validation
    assert not scaled.conforms and any(r.status == "fail" for r in scaled.results)
    failing = [r for r in eps_hat.results if r.status == "fail"]
    assert failing and all("eps-hat" in r.dialects for r in failing)


def test_page_structure(runs, tmp_path):
    pytest.importorskip("matplotlib", reason="the plots need the 'report' extra")
    path = tmp_path / "report.html"
    html_report.write_html(path, runs)
    page = _parse(path)
    text = " ".join(page.text)
    assert "adamconf" in page.title
    assert {"summary", "legend", "validation"} <= page.ids
    for word in ("conforms", "fails", "dialect X", "inconclusive", "unsupported", "error"):
        assert word in text, word  # the legend explains every cell word
    words = [t for _, t in page.cells]
    assert any(t.startswith("conforms") for t in words)
    assert any(t.startswith("fails") for t in words)  # the scaled backend
    assert any(t.startswith("dialect eps-hat") for t in words)  # the replayed dialect
    assert "adamconf run --backend wrong_adam:ScaledBackend" in text  # reproduce commands
    assert "0x" in text  # got / want in hex
    assert "install adamconf[report]" not in text
    assert len(page.images) >= 4  # ULP histograms and error/bound plots
    for img in page.images:
        data = _png_bytes(img["src"])
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    try:
        from PIL import Image
    except ImportError:
        return
    import io

    for img in page.images:
        with Image.open(io.BytesIO(_png_bytes(img["src"]))) as im:
            assert im.size[0] > 100 and im.size[1] > 50
    assert not list(tmp_path.glob(".report.html.*"))  # the atomic write left no temp file


def test_without_matplotlib_the_tables_remain(runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    path = tmp_path / "report.html"
    html_report.write_html(path, runs)
    page = _parse(path)
    assert not page.images
    assert "install adamconf[report] for the plots" in " ".join(page.text)
    assert {"summary", "legend", "validation"} <= page.ids


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


# Reads back through --dump-dom whether every image decoded to a non-empty picture.
_PROBE = """<script>window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.length > 0 && imgs.every(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.dataset.imagesOk = ok ? 'yes' : 'no';
  document.body.dataset.images = String(imgs.length);
});</script>"""


def _browser(binary: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    # --disable-dev-shm-usage: containers often give /dev/shm only 64 MB
    return subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu",
                           "--disable-dev-shm-usage", "--hide-scrollbars",
                           "--virtual-time-budget=5000", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_page_renders_in_a_real_browser(runs, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the plots need the 'report' extra")
    binary = _chromium()
    if binary is None:
        pytest.skip("no chromium on PATH (CI: apt-get install -y --no-install-recommends "
                    "chromium fonts-dejavu-core)")
    page = tmp_path / "report.html"
    html_report.write_html(page, runs)
    probed = tmp_path / "probed.html"
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"),
                      encoding="utf-8")
    started = time.perf_counter()
    dom = _browser(binary, "--dump-dom", probed.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<title>adamconf" in dom.stdout
    assert 'id="summary"' in dom.stdout and 'id="legend"' in dom.stdout
    assert 'data-images-ok="yes"' in dom.stdout, dom.stdout[:300]

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    shot = _browser(binary, f"--screenshot={SCREENSHOT}", "--window-size=1280,2000",
                    page.as_uri())
    assert shot.returncode == 0, shot.stderr[-2000:]
    data = SCREENSHOT.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
    with capsys.disabled():  # shown in the CI log even when pytest captures output
        print(f"\nreport screenshot ({time.perf_counter() - started:.1f} s in chromium): "
              f"{SCREENSHOT}")
