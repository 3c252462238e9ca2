"""The HTML report: one self-contained page to look at a run — and at a failure.

Everything is inline (CSS, plots as base64 PNG data URIs, no script, no fetch), so the file
can be attached to a CI run or mailed. Plots need matplotlib (``pip install
adamconf[report]``); it is imported lazily and driven through ``Figure`` with the Agg
renderer, never pyplot, so the caller's matplotlib state is left alone. Without it the page
keeps every table and says how to get the plots.

The page, top to bottom: a header (date, versions, devices, reference precision); the
summary matrix, backend × variant (dtype is part of the variant) × feature, each cell one
word by the rule in :func:`cell_word`; per variant a ULP histogram and every failing,
inconclusive or erroring case (the first :data:`CASES_PER_VARIANT`) with its error/bound
over steps, got against want, the dialect it conforms to and the command that reproduces
it; the check of the documented ValueErrors.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import math
import platform
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from adamconf import __version__
from adamconf.conformance.corpus.cases import FEATURES
from adamconf.conformance.files import atomic_write
from adamconf.conformance.judge.identify import dialect_label, variant_dialects
from adamconf.conformance.judge.outcome import CaseResult, RunResult
from adamconf.conformance.judge.verdict import short_hex  # 0x1.fffffe0000000p-3 → 0x1.fffffep-3
from adamconf.reference.dialects import DIALECTS
from adamconf.reference.engine import describe_reference

__all__ = ["write_html", "render_html", "FEATURES", "cell_word", "CELL_ORDER",
           "CASES_PER_VARIANT", "PLOTS_HINT"]

CASES_PER_VARIANT = 40
PLOTS_HINT = "install adamconf[report] for the plots (pip install 'adamconf[report]')"

# the columns of the summary matrix: declared with the regimes, in the catalogue


# Cell words, most severe first: a cell shows the first that applies to its cases.
CELL_ORDER = (
    ("fails", "fail", "some case fails and the variant's model does not explain every failure"),
    ("dialect", "dialect", "some case fails, and every failing case conforms to dialect X "
     "instead; (+n): n more dialects explain them as well (hover for the list); "
     "'dialects X + Y': no one dialect explains every failure, but each failing case "
     "conforms to one of these"),
    ("error", "error", "no failure, but some case crashed, hung or could not be judged"),
    ("inconclusive", "inconclusive", "no failure or error, but the bound could not decide "
     "some case (never counted as a pass)"),
    ("conforms (n of N judged; u unsupported)", "pass", "every case that could run passes, "
     "and the variant cannot express the u others (it conforms on what it can express)"),
    ("unsupported", "unsupported", "the variant cannot express any case of this feature"),
    ("conforms", "pass", "every case passes"),
    ("—", "none", "no case of this feature ran on this variant"),
)

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1em 1.5em;
 color:#1d1d1f;max-width:1400px}
h1{font-size:1.45em;margin:0 0 .2em}h2{font-size:1.2em;margin:1.6em 0 .5em;
 border-bottom:1px solid #ccc}h3{font-size:1.05em;margin:1.2em 0 .4em}
table{border-collapse:collapse;margin:.4em 0}th,td{border:1px solid #d0d0d0;padding:3px 7px;
 text-align:left;vertical-align:top}th{background:#f3f3f5;font-weight:600}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,monospace;font-size:.92em}
.meta td:first-child{color:#555;white-space:nowrap}
.summary th{font-size:.85em}.summary td{padding:2px 4px}
.summary td.cell{text-align:center;min-width:4.6em;max-width:6.6em;font-size:.85em}
.nw{white-space:nowrap}
.summary td.cell small{display:block;color:#444;font-size:.75em}
.pass{background:#d4f1d4}.dialect{background:#ffe2b8}.fail{background:#f8c4c4}
.inconclusive{background:#fff2a8}.unsupported{background:#e2e7ef}.error{background:#e8d2f2}
.none{background:#fafafa;color:#999}.ok{background:#d4f1d4}.bad{background:#f8c4c4}
.legend td:first-child{text-align:center;white-space:nowrap}
.banner{display:inline-block;padding:2px 10px;border-radius:4px;font-weight:600}
.case{border:1px solid #d6d6d6;border-left:6px solid #999;border-radius:4px;margin:.7em 0;
 padding:.4em .8em;display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
.case-fail{border-left-color:#d33}.case-inconclusive{border-left-color:#e0b000}
.case-error{border-left-color:#a050c0}.case .text{flex:1 1 430px;min-width:0}
.row{display:flex;flex-wrap:wrap;gap:1.5em;align-items:flex-start}
.scroll{overflow-x:auto;max-width:100%}
.case h4{margin:.1em 0 .3em;font-size:1em}.case table{font-size:.92em}
.case pre{white-space:pre-wrap;margin:.2em 0;background:#f6f6f8;padding:3px 6px}
.case .repro{flex-basis:100%;margin-top:-.6em}.note{color:#555}.plot{max-width:100%;height:auto}
"""


def cell_word(results: Sequence[CaseResult]) -> tuple[str, str]:
    """(word, css class) of one matrix cell, by the order of :data:`CELL_ORDER`."""
    if not results:
        return "—", "none"
    statuses = {r.status for r in results}
    if "fail" in statuses:
        common = _catalogue_order(_common_dialects(results))
        if common:
            more = f" (+{len(common) - 1})" if len(common) > 1 else ""
            return f"dialect {common[0]}{more}", "dialect"
        cover = _catalogue_order(variant_dialects(results) or [])
        if cover:
            return "dialects " + " + ".join(cover), "dialect"
        return "fails", "fail"
    for status in ("error", "inconclusive"):
        if status in statuses:
            return status, status
    if "pass" in statuses and "unsupported" in statuses:  # every judged case passed
        judged = sum(r.status == "pass" for r in results)
        return (f"conforms ({judged} of {len(results)} judged; {len(results) - judged} "
                "unsupported)", "pass")
    if "unsupported" in statuses:
        return "unsupported", "unsupported"
    return "conforms", "pass"


def _common_dialects(results: Sequence[CaseResult]) -> list[str]:
    """The dialects every failing case conforms to."""
    sets = [set(r.dialects or ()) for r in results if r.status == "fail"]
    return sorted(set.intersection(*sets)) if sets else []


_SEVERITY = ("fail", "error", "inconclusive", "unsupported", "pass")


def _tally(results: Sequence[CaseResult]) -> str:
    """'3 fail · 9 pass': the statuses present, most severe first."""
    counts = {status: sum(r.status == status for r in results) for status in _SEVERITY}
    return " · ".join(f"{n} {status}" for status, n in counts.items() if n)


def _breakable(word: str) -> str:
    """Escaped, with line breaks allowed at spaces and after '+', never at a name's hyphen."""
    return " ".join("+<wbr>".join(f"<span class='nw'>{_e(part)}</span>"
                                  for part in token.split("+")) for token in word.split(" "))


def _catalogue_order(names: Sequence[str]) -> list[str]:
    """Dialect names in the catalogue's order: the simplest (eps-hat before its compounds)."""
    order = {name: i for i, name in enumerate(DIALECTS)}
    return sorted(names, key=lambda name: (order.get(name, len(order)), name))


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _num(x: object, fmt: str = ".3g") -> str:
    if x is None:
        return "—"
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    try:
        return format(x, fmt)
    except (TypeError, ValueError):
        return str(x)


def _by_variant(run: RunResult) -> dict[str, list[CaseResult]]:
    out: dict[str, list[CaseResult]] = defaultdict(list)
    for r in run.results:
        out[r.variant.id].append(r)
    return out


def _verdict_json(result: CaseResult) -> dict:
    verdict = result.verdict
    if verdict is None:
        return {}
    try:
        return verdict.to_json() or {}
    except Exception:  # a report must render whatever one verdict holds
        return {}


# --- plots --------------------------------------------------------------------------------

def _figure_class():
    """matplotlib's Figure (Agg renders PNG), or None when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=fig.dpi)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


_QUANTITY_LABELS = {"theta": r"$\theta$", "m": "$m$", "v": "$v$", "vmax": r"$\hat v_{\max}$"}
_QUANTITY_COLOURS = {"theta": "#1f5fbf", "m": "#2a9d3a", "v": "#d07a00", "vmax": "#9b3bb5"}
_MONO = ("got", "want", "|error| / bound", "error in ULPs", "max over the case")


def _float(x: object) -> float:
    """A number from verdict JSON, where non-finite values are the strings 'nan', 'inf'."""
    try:
        return float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def _new_figure(Figure, width: float, height: float, right: float):
    fig = Figure(figsize=(width, height), dpi=90)
    # fixed margins: constrained layout would double the time per plot
    fig.subplots_adjust(left=0.6 / width, right=right, top=0.88, bottom=0.5 / height)
    return fig, fig.add_subplot()


def _ratio_plot(Figure, ratio_by_step: dict, first_step: int | None, title: str) -> str | None:
    """Max error/bound per step (log scale) per quantity; the bound and first failure marked."""
    series = {q: np.array([_float(x) for x in xs]) for q, xs in ratio_by_step.items() if xs}
    if not series:
        return None
    from matplotlib.ticker import MaxNLocator

    fig, ax = _new_figure(Figure, 5.8, 2.5, right=0.75)
    top = 1.0
    for q, values in series.items():
        at = np.arange(1, len(values) + 1)
        positive = np.where(np.isfinite(values) & (values > 0), values, np.nan)
        label = _QUANTITY_LABELS.get(q, q)
        if np.isnan(values).all():
            continue  # not compared (v̂max without amsgrad, state a backend hides): see notes
        if np.isfinite(positive).any():
            top = max(top, float(np.nanmax(positive)))
        elif not np.isinf(values).any():
            label += " (exact)"
        ax.plot(at, positive, label=label, color=_QUANTITY_COLOURS.get(q), lw=1.2,
                marker="o" if len(values) <= 30 else None, ms=3)
        infinite = np.isinf(values)
        if infinite.any():  # an error over a zero bound: drawn at the top edge
            ax.plot(at[infinite], np.full(int(infinite.sum()), 0.96), "^", ms=5,
                    color=_QUANTITY_COLOURS.get(q), transform=ax.get_xaxis_transform())
    ax.set_yscale("log")
    ax.axhline(1.0, color="#c00", ls="--", lw=1, label="bound")
    if first_step is not None:
        ax.axvline(first_step, color="#444", ls=":", lw=1.4,
                   label=f"first fail: step {first_step}")
    ax.set_ylim(top=top * 4)
    ax.set_xlabel("step", fontsize=8, labelpad=1)
    ax.set_ylabel("max |error| / bound", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    last = max(len(v) for v in series.values())
    if last <= 12:
        ax.set_xticks(range(1, last + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, last + 0.5)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.grid(True, alpha=.3)
    return _png(fig)


def _bin_start(label: str) -> int:
    try:
        return int(label.split("-")[0])
    except ValueError:
        return 1 << 62


def _bin_label(label: str) -> str:
    """'4-7' → '4', '1024-2047' → '1k': a bin by its first value, short enough for an axis."""
    start = _bin_start(label)
    if start == 1 << 62:
        return label
    for size, suffix in ((1 << 30, "G"), (1 << 20, "M"), (1 << 10, "k")):
        if start >= size and start % size == 0:
            return f"{start // size}{suffix}"
    return str(start)


def _merge_histograms(histograms: Sequence[object]) -> dict[str, int]:
    """Sum the verdicts' ULP histograms ({'0': n, '1': n, '2-3': n, '4-7': n, …}) bin by bin."""
    total: dict[str, int] = {}
    for histogram in histograms:
        if isinstance(histogram, dict):
            for label, count in histogram.items():
                if isinstance(count, (int, float)):
                    total[str(label)] = total.get(str(label), 0) + int(count)
    return dict(sorted(total.items(), key=lambda item: _bin_start(item[0])))


def _ulp_plot(Figure, counts: dict[str, int], title: str) -> str | None:
    if not any(counts.values()):
        return None
    labels = [_bin_label(label) for label in counts]
    fig, ax = _new_figure(Figure, 5.0, 2.3, right=0.98)
    ax.bar(range(len(labels)), [max(n, 0) for n in counts.values()], color="#4a78c2")
    ax.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 8 else 0)
    ax.set_yscale("log")
    ax.set_xlabel("error in ULPs of the dtype (bins [n, 2n))", fontsize=8, labelpad=1)
    ax.set_ylabel("values", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(True, axis="y", alpha=.3)
    return _png(fig)


# --- sections -----------------------------------------------------------------------------

def _header(runs: Sequence[RunResult], created: str) -> list[str]:
    rows = [(key, _e(value)) for key, value in (
        ("created", created), ("adamconf", __version__),
        ("reference", describe_reference()),
        ("platform", f"python {platform.python_version()}, numpy {np.__version__}, "
                     f"{platform.system()} {platform.machine()}"))]
    for run in runs:
        info = run.info
        versions = ", ".join(f"{k} {v}" for k, v in (info.versions if info else {}).items())
        devices = ", ".join(info.devices) if info and info.devices else "?"
        settings = ", ".join(f"{k} {v}" for k, v in run.settings.items()
                             if k != "pid" and v is not None)
        css = {"conforms": "pass", "does not conform": "fail"}.get(run.conformance.value,
                                                                   "inconclusive")
        verdict = f"<span class='banner {css}'>{_e(run.conformance.value.upper())}</span>"
        counts = ", ".join(f"{v} {k}" for k, v in run.counts().items() if v)
        notes = "".join(f"<br>note: {_e(note)}" for note in (info.notes if info else []))
        rows.append((f"backend {run.backend}",
                     f"{verdict} {_e(counts)} in {run.seconds:.1f} s<br>"
                     f"versions: {_e(versions or 'unknown')}; devices: {_e(devices)}"
                     + (f"; {_e(settings)}" if settings else "") + notes))
    body = "".join(f"<tr><td>{_e(k)}</td><td>{v}</td></tr>" for k, v in rows)
    return [f"<table class='meta'>{body}</table>"]


def _summary(runs: Sequence[RunResult]) -> list[str]:
    features = [f for f in FEATURES if f is FEATURES[0]
                or any(f[2](r.tags) for run in runs for r in run.results)]
    head = "".join(f"<th title='{_e(what)}'>{_e(name)}</th>" for name, what, _ in features)
    out = ["<div class='scroll'><table class='summary' id='summary'><tr>"
           f"<th>backend / variant</th>{head}<th title='the documented ValueErrors raised, of "
           "those checked'>ValueErrors</th></tr>"]
    for run in runs:
        checks: dict[tuple[str, str], list] = defaultdict(list)
        for v in run.validation:
            checks[(v.variant, v.device)].append(v)
        for vid, results in _by_variant(run).items():
            cells = []
            for name, _, wanted in features:
                chosen = [r for r in results if wanted(r.tags)]
                word, css = cell_word(chosen)
                detail = _tally(chosen)
                title = f"{name}: {detail}"
                if css == "dialect":
                    title += "; conforms to: " + ", ".join(
                        _catalogue_order(_common_dialects(chosen)
                                         or variant_dialects(chosen) or []))
                cells.append(f"<td class='cell {css}' title='{_e(title)}'>"
                             f"{_breakable(word)}<small>{_e(detail)}</small></td>")
            variant = results[0].variant
            mine = checks.get((variant.name, variant.device), [])
            good = sum(v.ok for v in mine)
            check = (f"<td class='cell {'ok' if good == len(mine) else 'bad'}'>{good}/{len(mine)}"
                     "</td>" if mine else "<td class='cell none'>—</td>")
            out.append(f"<tr><td>{_e(run.backend)}<br><span class='mono'>"
                       f"{'/<wbr>'.join(map(_e, vid.split('/')))}</span></td>"
                       + "".join(cells) + check + "</tr>")
    out.append("</table></div>")
    legend = "".join(f"<tr><td class='{css}'>{_e(word if word != 'dialect' else 'dialect X')}"
                     f"</td><td>{_e(meaning)}</td></tr>" for word, css, meaning in CELL_ORDER)
    out.append("<table class='legend' id='legend'><tr><th>cell</th><th>meaning (a cell "
               "shows the first row that applies to its cases; the small line counts them)"
               f"</th></tr>{legend}</table>")
    out.append("<p class='note'>A case can count in several columns (e.g. amsgrad and "
               "schedules). Hover a column heading for what it holds. The dtype is part of "
               "the variant.</p>")
    return out


def _first_failure_rows(ff: dict) -> list[tuple[str, str]]:
    index = "".join(f"[{i}]" for i in ff.get("index") or [])
    where = (f"{ff.get('quantity', '?')} at step {ff.get('step', '?')} (t = {ff.get('t', '?')}),"
             f" param {ff.get('param', '?')}{index}")
    rows = [("first failure", where), ("got", short_hex(str(ff.get("got")))),
            ("want", short_hex(str(ff.get("want"))))]
    if ff.get("kind") == "class":
        rows.append(("error", "a value of another class (NaN / +∞ / −∞ / finite)"))
    else:
        rows += [("|error| / bound", f"{_num(ff.get('error'))} / {_num(ff.get('bound'))} = "
                                     f"{_num(ff.get('ratio'))}×"),
                 ("error in ULPs", _num(ff.get("ulps"), ""))]
    return rows


def _case_block(result: CaseResult, Figure) -> str:
    vj = _verdict_json(result)
    rows = _first_failure_rows(vj["first_failure"]) if vj.get("first_failure") else []
    if vj:
        rows.append(("max over the case", f"{_num(_float(vj.get('max_ratio')))}× bound, "
                                          f"{_num(vj.get('max_ulp'), '')} ULP"))
    if result.status == "fail":
        rows.append(("conforms instead to", ", ".join(_catalogue_order(result.dialects))
                     if result.dialects
                     else "no model: " + (result.departure or "it departs as above")
                     if result.dialects is not None else "(not checked)"))
        if result.dialects and result.departure:
            rows.append(("note", result.departure))
    rows += [("inconclusive", reason) for reason in vj.get("inconclusive_reasons") or []]
    rows += [("note", note) for note in vj.get("notes") or []]
    table = "".join(f"<tr><th>{_e(k)}</th><td{' class=mono' if k in _MONO else ''}>{_e(v)}"
                    "</td></tr>" for k, v in rows)
    plot = ""
    if Figure is not None and vj.get("ratio_by_step"):
        ff = vj.get("first_failure") or {}
        uri = _ratio_plot(Figure, vj["ratio_by_step"], ff.get("step"),
                          f"{result.case_id} [{result.variant.id}]")
        if uri:
            plot = (f"<img class='plot' src='{uri}' alt='error over bound per step for "
                    f"{_e(result.case_id)}'>")
    # a verdict's one-line message repeats its table; an error's message is all there is
    message = f"<pre>{_e(result.message)}</pre>" if result.message and not vj else ""
    anchor = _e(f"{result.variant.backend}:{result.variant.id}:{result.case_id}")
    return (f"<div class='case case-{result.status}' id='{anchor}'><div class='text'>"
            f"<h4>{_e(result.status.upper())} {_e(result.case_id)} "
            f"<span class='mono'>[{_e(result.variant.id)}]</span></h4>{message}"
            f"<table>{table}</table></div>{plot}"
            f"<div class='repro'>reproduce: <code>{_e(result.repro)}</code></div></div>")


def _variant_stats(results: Sequence[CaseResult]) -> str:
    """Counts, the dialects, how close the passing cases came to the bound, unsupported whys."""
    rows = [("cases", _tally(results))]
    dialects = variant_dialects(results)
    if dialects is not None:
        rows.append(("failures conform to", " + ".join(_catalogue_order(dialects))
                     or dialect_label(results)))
    passing = [_verdict_json(r) for r in results if r.status == "pass"]
    ratios = [x for x in (_float(v.get("max_ratio")) for v in passing) if math.isfinite(x)]
    ulps = [v["max_ulp"] for v in passing if isinstance(v.get("max_ulp"), int)]
    if ratios:
        rows.append(("passing cases", f"max error = {max(ratios):.3g}× bound, "
                                      f"{max(ulps, default=0)} ULP"))
    whys = sorted({r.message for r in results if r.status == "unsupported"})
    rows += [("unsupported", why) for why in whys[:5]]
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>"
                               for k, v in rows) + "</table>"


def _variant_sections(run: RunResult, Figure) -> list[str]:
    out = []
    for vid, results in _by_variant(run).items():
        out.append(f"<h3>{_e(run.backend)} <span class='mono'>{_e(vid)}</span></h3>")
        histogram = _merge_histograms([_verdict_json(r).get("ulp_histogram") for r in results])
        uri = _ulp_plot(Figure, histogram, "error in ULPs, every judged value of the variant") \
            if Figure is not None else None
        image = f"<img class='plot' src='{uri}' alt='ULP histogram of {_e(vid)}'>" if uri else ""
        out.append(f"<div class='row'>{_variant_stats(results)}{image}</div>")
        shown = [r for status in ("fail", "error", "inconclusive")  # failures first
                 for r in results if r.status == status]
        for r in shown[:CASES_PER_VARIANT]:
            out.append(_case_block(r, Figure))
        if len(shown) > CASES_PER_VARIANT:
            out.append(f"<p class='note'>… and {len(shown) - CASES_PER_VARIANT} more failing, "
                       "inconclusive or erroring cases of this variant left out (the JSON "
                       "report, <code>--json</code>, has all).</p>")
    return out


def _validation(runs: Sequence[RunResult]) -> list[str]:
    rows = []
    for run in runs:
        for v in run.validation:
            rows.append(f"<tr class='{'ok' if v.ok else 'bad'}'><td>{_e(run.backend)}</td>"
                        f"<td class='mono'>{_e(v.variant)}/{_e(v.device)}</td>"
                        f"<td class='mono'>{_e(v.parameter)} = {_e(v.value)}</td>"
                        f"<td>{_e(v.raised or 'accepted silently')}</td>"
                        f"<td>{'ok' if v.ok else 'NOT AS DOCUMENTED'}</td></tr>")
    if not rows:
        return ["<p class='note'>Not checked in this run (<code>--no-validate</code>, or the "
                "backend could not build its optimizer).</p>"]
    return ["<table id='validation'><tr><th>backend</th><th>variant</th><th>argument</th>"
            "<th>raised</th><th>verdict</th></tr>" + "".join(rows) + "</table>"]


def render_html(runs: Sequence[RunResult], *, created: str | None = None) -> str:
    """The report page as a string (see the module docstring for what it holds)."""
    created = created or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    Figure = _figure_class()
    backends = ", ".join(run.backend for run in runs) or "no backend"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>adamconf report — {_e(backends)}</title><style>{_CSS}</style></head><body>",
             f"<h1>adamconf conformance report — {_e(backends)}</h1>",
             "<p class='note'>Adam as documented for <code>mindspore.experimental.optim.Adam"
             "</code>, judged against a reference in mpmath with an error bound derived per "
             "dtype.</p>"]
    parts += _header(runs, created)
    if Figure is None:
        parts.append(f"<p class='banner inconclusive' id='no-plots'>{_e(PLOTS_HINT)}</p>")
    parts.append("<h2>Summary</h2>")
    parts += _summary(runs)
    parts.append("<h2>Per variant: ULP errors, and the cases that did not pass</h2>")
    if not any(run.results for run in runs):
        parts.append("<p class='note'>No case ran.</p>")
    for run in runs:
        parts += _variant_sections(run, Figure)
    parts.append("<h2>Documented ValueErrors</h2>")
    parts += _validation(runs)
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_html(path: Path | str, runs: Sequence[RunResult]) -> None:
    """Write the report to ``path`` atomically (a temp file in the same folder, then rename)."""
    atomic_write(Path(path), render_html(runs).encode("utf-8"))
