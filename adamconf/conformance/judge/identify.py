"""Naming what a failing implementation does: a search of the model of dialects.

A dialect is a point in a space of switches (:mod:`adamconf.reference.dialects`). For a
variant's failing cases the search:

1. *localizes* each failure: which of m, v, v̂max, θ departs from the spec first, at which
   step, and how (:func:`localize`); that rules switches in or out (if m agrees, no
   weight-decay switch can explain the case; if m, v and v̂max agree and θ departs, it is ε,
   bias correction, amsgrad, the step count, a decay of θ itself or a precision choice);
2. takes the failing cases in groups of the switches that can act on them, the simplest
   first (plain cases, then weight decay, amsgrad, both), and extends the model found so
   far by the fewest settings that make a probe case of the group pass its own reference
   and bound, then every case of the group;
3. confirms the model on every failing case *and* on every passing case it could change
   (a model the passing cases contradict is not the implementation's), and drops any
   switch whose removal explains as much: a switch without an observable effect is never
   named.

What the model cannot explain is said in words: where and how the trajectory departs, and
the closest model with how far off it still is.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from adamconf.conformance.corpus.cases import Case
from adamconf.conformance.judge.bounds import cached_bounds
from adamconf.conformance.judge.outcome import CaseResult, Observed
from adamconf.conformance.judge.verdict import Verdict, judge
from adamconf.reference.balls import run_balls
from adamconf.reference.dialects import (
    DIALECTS,
    SPEC,
    SWITCHES,
    Dialect,
    get_dialect,
    rounded_problem,
)
from adamconf.reference.floats import FloatFormat, as_format, round_to
from adamconf.reference.problem import Problem, Trajectory
from adamconf.reference.step import run_float64

__all__ = ["dialect_reference", "localize", "describe_departure", "conforms_to", "Departure", "Evidence", "SearchResult",
           "search_model", "identify_dialects", "identify_variants", "variant_dialects",
           "dialect_label"]

_SWITCH = {s.field: s for s in SWITCHES}
_G_FIELDS = {"weight_decay_mode"}  # switches that change g (so m) itself
_CATALOGUE_ORDER = {name: i for i, name in enumerate(DIALECTS)}

_reference_cache: dict[tuple, Trajectory] = {}
_problem_cache: dict[tuple, Problem | None] = {}
_CACHE_LIMIT = 20000


def dialect_reference(case: Case, dialect: Dialect, dtype: str | FloatFormat = "float64",
                      problem: Problem | None = None) -> Trajectory:
    """The dialect's trajectory, accurate enough to judge an implementation in ``dtype`` (a
    name, or the format itself: only its name is read).

    For float64 that is the ball engine's (every value proven correctly rounded). For
    narrower dtypes the float64 evaluation of the same formula: its own error is about
    2^-29 of float32's bound (and less of float16's), so it cannot move a verdict, and it
    is a hundred times faster. Precision switches other than the hyperparameters' leave the
    reference exact (their bound widens instead), so references are shared between them.
    """
    dtype = dtype if isinstance(dtype, str) else dtype.name
    kind = "exact" if dtype == "float64" else "float64"
    semantic = dialect.semantic
    key = (case.id, semantic.name, dialect.hyper, dtype if dialect.hyper != "as-passed"
           else "", kind)
    if key not in _reference_cache:
        if len(_reference_cache) > _CACHE_LIMIT:
            _reference_cache.clear()
        problem = problem if problem is not None else case.problem
        _reference_cache[key] = (run_balls(problem, semantic) if kind == "exact"
                                 else run_float64(problem, semantic))
    return _reference_cache[key]


def _problem_for(case: Case, dialect: Dialect, fmt: FloatFormat) -> Problem | None:
    if dialect.hyper == "as-passed":
        return case.problem
    # β^t held as inputs (dtype-inputs) are the powers of the step the dialect counts
    key = (case.id, dialect.hyper, fmt.name,
           dialect.step_offset if dialect.hyper == "dtype-inputs" else 0)
    if key not in _problem_cache:
        _problem_cache[key] = rounded_problem(case.problem, dialect, fmt)
    return _problem_cache[key]


# --- where a switch can act -------------------------------------------------------------------

def _case_options(problem: Problem) -> tuple[bool, bool, bool, bool]:
    """(amsgrad, weight decay, maximize with weight decay, an lr schedule with decay) in
    some group of the problem."""
    groups = problem.groups
    amsgrad = any(g.config.amsgrad for g in groups)
    wd = any(g.config.weight_decay for g in groups)
    max_wd = any(g.config.weight_decay and g.config.maximize for g in groups)
    schedule = any(g.config.weight_decay and g.lrs is not None
                   and np.any(np.asarray(g.lrs) != g.config.lr) for g in groups)
    return amsgrad, wd, max_wd, schedule


def _setting_acts(field_name: str, value, problem: Problem, fmt: FloatFormat) -> bool:
    """Whether one switch setting can change anything on this case in a run in ``fmt``."""
    amsgrad, wd, max_wd, schedule = _case_options(problem)
    if field_name in ("amsgrad_mode", "max_nan"):
        return amsgrad
    if field_name == "weight_decay_mode":
        if value == "maximize-after-wd":
            return max_wd
        if value in ("decoupled-lr0", "decoupled-lr-ratio"):
            return schedule
        return wd
    if field_name == "hyper":
        return rounded_problem(problem, Dialect(hyper=value), fmt) is not None
    wide = fmt.precision
    if field_name == "beta_power":
        return fmt.name == "float64" if value == "float32" else wide < 24
    if field_name == "state":
        return fmt.name == "float64" if value == "float32" else wide > 8
    if field_name in ("theta_through", "compute"):
        return fmt.name == "float64"
    return True  # ε placement, bias correction, the step count act on every case


# decays that differ from another only under a schedule
_CONSTANT_LR_EQUIVALENT = {"decoupled-lr0": "decoupled", "decoupled-lr-ratio": "decoupled-nolr"}


def _restrict(point: dict, problem: Problem, fmt: FloatFormat) -> dict:
    """The settings of ``point`` that can act on this case, each as it acts: decay with
    the constructor's lr is decay with the current one where the lr never changes;
    hyperparameters that are all inputs of the dtype round as hyper-in-dtype's where no β
    rounds to 1.0."""
    out = {}
    for f, v in point.items():
        if _setting_acts(f, v, problem, fmt):
            out[f] = v
        elif (f == "weight_decay_mode" and v in _CONSTANT_LR_EQUIVALENT
              and _case_options(problem)[1]):
            out[f] = _CONSTANT_LR_EQUIVALENT[v]
        elif f == "hyper" and v == "dtype-inputs" and _setting_acts(f, "dtype", problem, fmt):
            out[f] = "dtype"
    return out


def _dialect(point: dict) -> Dialect:
    return Dialect(**point)


# --- localization -------------------------------------------------------------------------------

@dataclass
class Departure:
    """Where and how a trajectory departs from the spec."""

    first: dict[str, int]  # quantity → first failing step (1-based), compared ones only
    agree: list[str]  # compared quantities that never fail
    leader: str  # the quantity that departs first (m before θ at the same step)
    step: int
    failure: dict | None  # the verdict's first failure record
    factor: float | None  # the observed update over the documented one there
    nonfinite: bool

    def words(self) -> str:
        parts = []
        if self.agree:
            parts.append(f"{' and '.join(self.agree)} agree{'s' if len(self.agree) == 1 else ''}"
                         " throughout")
        later = [f"{q} from step {s}" for q, s in sorted(self.first.items(), key=lambda x: x[1])
                 if q != self.leader]
        where = f"{self.leader} departs first, at step {self.step}"
        f = self.failure
        if f and f.get("quantity") == self.leader:
            idx = f"[{', '.join(map(str, f['index']))}]" if f.get("index") else ""
            how = ("non-finite where the exact value is finite" if f["kind"] == "nonfinite"
                   else "a value of another class (NaN/±∞)" if f["kind"] == "class"
                   else f"{f['ratio']:.3g} bounds")
            where += (f" (param {f['param']}{idx}: got {f['got']}, want {f['want']}; {how})")
        parts.append(where)
        if self.factor is not None and math.isfinite(self.factor):
            if abs(self.factor + 1) < 1e-3:
                parts.append("the update has the opposite sign")
            elif abs(self.factor - 1) > 1e-6:
                parts.append(f"the update there is {self.factor:.6g}× the documented one")
        if later:
            parts.append("then " + ", ".join(later))
        return "; ".join(parts)


def localize(case: Case, observed: Observed, verdict: Verdict, reference: Trajectory
             ) -> Departure:
    """Which quantity departs first, at which step, and by what factor on θ's update."""
    first, agree = {}, []
    for name, summary in verdict.quantities.items():
        step = summary.get("first_failed_step")
        if summary.get("failed"):
            first[name] = int(step) if step is not None else 1
        elif summary.get("compared"):
            agree.append(name)
    if not first:  # a non-finite failure the summary did not count: use the record
        f = verdict.first_failure or {}
        first[f.get("quantity", "theta")] = int(f.get("step", 1))
    step = min(first.values())
    order = ("m", "v", "vmax", "theta")  # causes before effects at the same step
    leader = min((q for q, s in first.items() if s == step), key=order.index)
    factor = _update_factor(case.problem, observed, reference, step)
    f = verdict.first_failure
    return Departure(first, agree, leader, step, f, factor,
                     bool(f and f.get("kind") == "nonfinite"))


def _update_factor(problem: Problem, observed: Observed, reference: Trajectory,
                   step: int) -> float | None:
    """Observed θ update over the reference's at ``step``, at the element where the
    reference moves most (None where it does not move)."""
    k = step - 1
    best, factor = 0.0, None
    for i, p in enumerate(problem.params):
        got = np.asarray(observed.theta[i], dtype=np.float64).reshape(problem.steps, -1)
        want = np.asarray(reference.theta[i], dtype=np.float64).reshape(problem.steps, -1)
        before = (np.asarray(p, dtype=np.float64).reshape(-1) if k == 0 else want[k - 1])
        with np.errstate(all="ignore"):
            moved_want = want[k] - before
            moved_got = got[k] - before
        finite = np.isfinite(moved_want) & np.isfinite(moved_got)
        if not finite.any():
            continue
        j = int(np.argmax(np.where(finite, np.abs(moved_want), -1.0)))
        if abs(moved_want[j]) > best:
            best, factor = abs(moved_want[j]), float(moved_got[j] / moved_want[j])
    return factor


def _allowed(departure: Departure) -> tuple[set[str], set[str]]:
    """The switches a departure leaves in play: (those that can start it, all that can
    take part). A model must hold one of the first: if m departs first, something changed
    g or how m is kept; θ may then need another switch too (β^t in float32, say)."""
    everything = {s.field for s in SWITCHES}
    excluded = set()
    if "m" in departure.agree:
        excluded |= _G_FIELDS  # g is right: no weight-decay switch
    if "vmax" in departure.agree:
        excluded |= {"amsgrad_mode", "max_nan"}
    if departure.leader not in ("m", "v", "vmax"):
        excluded.add("state")  # the state's format shows in the state: never from θ alone
    starts = {
        "m": {"weight_decay_mode", "state", "hyper"},
        "v": {"state", "hyper", "weight_decay_mode"},
        "vmax": {"amsgrad_mode", "max_nan", "state", "hyper", "bias_correction",
                 "step_offset", "beta_power"},
    }.get(departure.leader, everything)
    return starts - excluded, everything - excluded


# --- the search ----------------------------------------------------------------------------------

@dataclass
class Evidence:
    """One case of the variant: its trajectory and its verdict against the spec."""

    case: Case
    observed: Observed
    verdict: Verdict | None = None
    result: CaseResult | None = None
    reference: Trajectory | None = None  # the spec's (the golden one, where there is one)

    @property
    def cost(self) -> int:
        p = self.case.problem
        return p.steps * max(1, sum(x.size for x in p.params))


@dataclass
class SearchResult:
    """The model found, what it explains, and what it does not."""

    model: Dialect | None
    explained: list[str] = field(default_factory=list)
    # failing cases the model's own bound cannot decide (inconclusive under it): consistent
    # with the model, not confirmed by it
    consistent: list[str] = field(default_factory=list)
    unexplained: dict[str, str] = field(default_factory=dict)  # case id → departure in words
    closest: dict[str, tuple[str, float]] = field(default_factory=dict)  # case → (name, ratio)
    contradicted: list[str] = field(default_factory=list)  # passing cases the model fails
    judged: int = 0  # how many (model, case) judgements the search made

    @property
    def name(self) -> str:
        return self.model.name if self.model is not None else ""


class _Judge:
    """Judging a model on a case in the format ``fmt``, memoized by (case, model)."""

    def __init__(self, fmt: FloatFormat) -> None:
        self.fmt = fmt
        self.memo: dict[tuple, tuple[str, float]] = {}
        self.count = 0

    def __call__(self, e: Evidence, point: dict) -> tuple[str, float]:
        """('pass' | 'fail' | 'inconclusive' | 'moot', max ratio) of this model on case e."""
        point = _restrict(point, e.case.problem, self.fmt)
        key = _memo_key(e, point, self.fmt)
        if key in self.memo:
            return self.memo[key]
        out = self._judge(e, point)
        self.memo[key] = out
        return out

    def _judge(self, e: Evidence, point: dict) -> tuple[str, float]:
        if not point:  # the spec itself
            v = e.verdict
            return (v.status, v.max_ratio) if v is not None else ("fail", math.inf)
        dialect = _dialect(point)
        problem = _problem_for(e.case, dialect, self.fmt)
        if problem is None:
            return "moot", math.inf
        if not _kept_as(e.observed, dialect):
            return "fail", math.inf
        amsgrad = any(g.config.amsgrad for g in problem.groups)
        if amsgrad and e.observed.vmax is not None and dialect.vmax_kind != e.observed.vmax_kind:
            # the backend's v̂max state means something else than this model's: it cannot
            # confirm the model, and passing on θ alone would name it on half the evidence
            return "fail", math.inf
        self.count += 1
        if dialect.semantic == SPEC and problem is e.case.problem and e.reference is not None:
            reference = e.reference  # a precision model's reference is the spec's own
        else:
            reference = dialect_reference(e.case, dialect, self.fmt, problem)
        try:
            verdict = judge(problem, reference, e.observed, self.fmt, dialect=dialect,
                            bounds=cached_bounds(problem, reference, self.fmt, dialect))
        except ValueError:
            return "fail", math.inf
        return verdict.status, verdict.max_ratio


_UNSET = object()
_ENOUGH = 0.9  # a model explaining this share of a group is taken without looking further


def _memo_key(e: Evidence, point: dict, fmt: FloatFormat) -> tuple:
    point = _restrict(point, e.case.problem, fmt)
    return (e.case.id, tuple(sorted(point.items(), key=lambda x: x[0])))


def _representable(arrays, fmt: str) -> bool:
    """Whether every finite value of ``arrays`` is a number of format ``fmt``."""
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        finite = a[np.isfinite(a)]
        if finite.size and not np.array_equal(round_to(finite, fmt), finite):
            return False
    return True


def _kept_as(observed: Observed, dialect: Dialect) -> bool:
    """The evidence a format leaves: state kept in bfloat16 holds bfloat16 numbers (and is
    named only where it is exposed); θ returned through float32, or computed in float32,
    holds float32 ones."""
    if dialect.state is not None:
        if observed.m is None and observed.v is None:
            return False
        if not all(_representable(arrays, dialect.state) for arrays in (observed.m, observed.v)
                   if arrays is not None):
            return False
    if dialect.theta_through is not None and not _representable(observed.theta,
                                                                 dialect.theta_through):
        return False
    # a step computed in float32 returns float32 numbers, whatever it stores them in
    return dialect.compute is None or _representable(observed.theta, dialect.compute)


def _signature(e: Evidence, fmt: FloatFormat) -> tuple:
    """Which switches can act on this case (its group in the search)."""
    acts = []
    for switch in SWITCHES:
        values = tuple(s.value for s in switch.settings[1:]
                       if _setting_acts(switch.field, s.value, e.case.problem, fmt))
        if values:
            acts.append((switch.field, values))
    return tuple(acts)


def _extensions(free: dict[str, tuple], size: int) -> list[dict]:
    """Every choice of ``size`` settings of distinct free switches, in the catalogue's
    order (the switches' order, documented alternatives first)."""
    fields = [f for f in (s.field for s in SWITCHES) if f in free]
    out = []
    for chosen in itertools.combinations(fields, size):
        for values in itertools.product(*(free[f] for f in chosen)):
            out.append(dict(zip(chosen, values)))
    return out


def _passes(status: str) -> bool:
    return status == "pass"


def _probes(cases: Sequence[Evidence], n: int = 2) -> list[Evidence]:
    """The cheapest few cases, of different tags where there is a choice."""
    ordered = sorted(cases, key=lambda e: e.cost)
    picked, tags = [], set()
    for e in ordered:
        key = tuple(sorted(e.case.tags))
        if key not in tags or len(ordered) <= n:
            picked.append(e)
            tags.add(key)
        if len(picked) == n:
            break
    return picked or ordered[:n]


def search_model(failing: Sequence[Evidence], passing: Sequence[Evidence],
                 dtype: str | FloatFormat, *, max_extension: int = 2) -> SearchResult:
    """The smallest model that explains the failing cases and that the passing ones do not
    contradict (see the module docstring). Every failing case must carry its spec verdict.
    ``dtype``: a name, resolved here once, or the format itself."""
    fmt = as_format(dtype)
    judge_model = _Judge(fmt)
    departures = {e.case.id: localize(e.case, e.observed, e.verdict, _spec_reference(e, fmt))
                  for e in failing}
    groups: dict[tuple, list[Evidence]] = {}
    for e in failing:
        groups.setdefault(_signature(e, fmt), []).append(e)
    order = sorted(groups, key=lambda sig: (sum(len(v) for _, v in sig), -len(groups[sig])))
    model: dict = {}
    explained_so_far: list[Evidence] = []
    processed: list[Evidence] = []
    closest: dict[str, tuple[str, float]] = {}
    given_up: set[str] = set()
    for sig in order:
        cases = groups[sig]
        todo = [e for e in cases if not _passes(judge_model(e, model)[0])]
        if not todo:
            continue
        if model and len(todo) <= (1 - _ENOUGH) * len(cases):
            # the model explains nearly all of the group already: the few left are said in
            # words, not searched (they are the costly long cases, as a rule)
            continue
        found, partial, best = _extend(model, sig, todo, departures, explained_so_far,
                                       judge_model, max_extension)
        if found is None and partial[1] and len(todo) > partial[0]:
            # the best of the group leaves some: one more setting for what it left? (not for
            # what its bound cannot decide: those are consistent with it already)
            left = [e for e in todo
                    if judge_model(e, partial[1])[0] not in ("pass", "inconclusive")]
            more, _, _ = _extend(partial[1], sig, left, departures,
                                 [e for e in todo if e not in left] + explained_so_far,
                                 judge_model, 1, probe_count=1) if left else (None, 0, 0)
            if more is not None:
                found = more
        if found is None and 2 * partial[0] >= len(todo):
            found = partial[1]  # most of the group: the rest is said in words
        if found is None:
            for e in todo:
                given_up.add(e.case.id)
                if best[1]:
                    closest[e.case.id] = (_dialect(best[1]).name, best[0])
            continue
        model = found
        processed.extend(cases)
        explained_so_far = sorted((e for e in processed if _passes(judge_model(e, model)[0])),
                                  key=lambda e: e.cost)
    model = _minimal(model, failing, judge_model)
    result = SearchResult(_dialect(model) if model else None, closest=closest)
    for e in failing:
        status = judge_model(e, model)[0] if model else "fail"
        if _passes(status):
            result.explained.append(e.case.id)
        elif status == "inconclusive":
            result.consistent.append(e.case.id)
        else:
            result.unexplained[e.case.id] = departures[e.case.id].words()
            if model:  # the model itself, where it comes closer than any tried
                status, ratio = judge_model(e, model)
                near = closest.get(e.case.id)
                if status == "inconclusive":
                    result.closest[e.case.id] = (_dialect(model).name, 0.0)
                elif 1 < ratio < math.inf and (near is None or ratio < near[1]):
                    result.closest[e.case.id] = (_dialect(model).name, ratio)
    if model:
        for e in passing:
            if _restrict(model, e.case.problem, fmt) and _contradicts(judge_model, e, model):
                result.contradicted.append(e.case.id)
    result.judged = judge_model.count
    return result


def _extend(model: dict, sig: tuple, todo: list[Evidence], departures: dict,
            keep: list[Evidence], judge_model: _Judge, max_extension: int,
            probe_count: int = 2
            ) -> tuple[dict | None, tuple[int, dict], tuple[float, dict]]:
    """The fewest settings added to (or changed in) ``model`` that explain every case of
    ``todo`` without losing ``keep``: (that model or None, the one that explains most of
    them with how many, the closest failed one with its ratio). Three settings are tried
    only where two do not do, on one probe."""
    starts, allowed = set(), set()
    for e in todo:
        first, part = _allowed(departures[e.case.id])
        starts |= first
        allowed |= part
    # a later group may also change a setting the model has (wd-decoupled for the plain
    # decay cases, wd-decoupled-lr0 once a schedule shows it), keeping what it explained
    free = {f: kept for f, vals in sig if f in allowed
            and (kept := tuple(v for v in vals if model.get(f, _UNSET) != v))}
    todo = sorted(todo, key=lambda e: e.cost)  # a wrong candidate fails on a cheap case first
    partial: tuple[int, dict] = (0, {})  # the most cases of the group one explains
    best: tuple[float, dict] = (math.inf, {})
    for size in range(1, max_extension + 2):
        if size > max_extension and (partial[1] or size > 3 or max_extension < 2):
            break
        probes = _probes(todo, probe_count if size <= max_extension else 1)
        candidates = _extensions(free, size)
        extensions = [ext for ext in candidates if starts & set(ext)]
        extensions.sort(key=lambda ext: sum(f not in model for f in ext))  # replace first
        if starts & set(model):
            # the model may already hold what starts the departure (hyper-dtype-inputs'
            # 1 − β̃1 moves m from the spec's in every group): then, after those, any
            # extension may finish it
            extensions += [ext for ext in candidates if not starts & set(ext)]
        for extension in extensions:
            point = {**model, **extension}
            ok = True
            for e in probes:
                status, ratio = judge_model(e, point)
                if status not in ("pass", "inconclusive"):  # a probe it cannot decide
                    ok = False                              # refutes nothing
                    if 1 < ratio < best[0]:  # how far off, where a bound measures it
                        best = (ratio, point)
                    break
            if not ok:
                continue
            # count the cases it explains, giving up once it cannot beat the best
            misses, allowed_misses = 0, len(todo) - partial[0]
            for e in todo:
                if not _passes(judge_model(e, point)[0]):
                    misses += 1
                    if misses >= allowed_misses:
                        break
            # a setting added (no-bias-correction for the amsgrad cases, say) may act on
            # an earlier group's cases as much as a setting replaced
            if misses < allowed_misses and not all(
                    _passes(judge_model(e, point)[0]) for e in keep):
                continue  # it would lose what an earlier group explained
            if misses == 0:
                return point, (len(todo), point), best
            if len(todo) - misses > partial[0]:
                partial = (len(todo) - misses, point)
                if partial[0] >= _ENOUGH * len(todo):
                    return None, partial, best  # nearly all: the rest is said in words
    return None, partial, best


def _contradicts(judge_model: _Judge, e: Evidence, model: dict) -> bool:
    """Whether a passing case fails the model. First against the model's reference with the
    spec's own bounds, already computed for the verdict (the two bounds are alike): a pass
    there is taken; a failure is checked against the model's own bound."""
    fmt = judge_model.fmt
    dialect = _dialect(_restrict(model, e.case.problem, fmt))
    problem = _problem_for(e.case, dialect, fmt)
    if problem is None:
        return False
    if problem is e.case.problem and e.reference is not None:
        reference = dialect_reference(e.case, dialect, fmt, problem)
        kept = getattr(e.result, "spec_bounds", None)  # computed where the case was judged
        spec_bounds = kept if kept is not None else cached_bounds(problem, e.reference, fmt,
                                                                  SPEC)
        try:
            quick = judge(problem, reference, e.observed, fmt, dialect=dialect,
                          bounds=spec_bounds)
        except ValueError:
            quick = None
        if quick is not None and quick.status == "pass":
            return False
    return judge_model(e, model)[0] == "fail"


def _minimal(model: dict, failing: Sequence[Evidence], judge_model: _Judge) -> dict:
    """Drop every switch whose removal still explains as many failing cases."""
    ordered = sorted(failing, key=lambda e: e.cost)

    def misses(point, give_up=math.inf):
        n = 0
        for e in ordered:
            if not _passes(judge_model(e, point)[0]):
                n += 1
                if n > give_up:
                    break
        return n

    if not model:
        return model
    best = misses(model)
    for f in list(model):
        smaller = {k: v for k, v in model.items() if k != f}
        if smaller and misses(smaller, give_up=best) <= best:
            model = smaller
    return model


def _spec_reference(e: Evidence, fmt: FloatFormat) -> Trajectory:
    if e.reference is None:
        e.reference = dialect_reference(e.case, SPEC, fmt)
    return e.reference


# --- one case, and a variant's cases ---------------------------------------------------------------

def identify_dialects(case: Case, observed: Observed, dtype: str | FloatFormat,
                      verdict: Verdict | None = None) -> list[str]:
    """The smallest model that this one failing trajectory conforms to ([] if none).
    ``dtype``: a name, resolved here once, or the format itself."""
    fmt = as_format(dtype)
    if verdict is None:
        reference = _spec_reference(Evidence(case, observed), fmt)
        verdict = judge(case.problem, reference, observed, fmt,
                        bounds=cached_bounds(case.problem, reference, fmt, SPEC))
    evidence = Evidence(case, observed, verdict)
    found = search_model([evidence], [], fmt)
    if not found.explained:
        return []
    # one case may not tell apart models of the same size: name every one it fits
    judge_model = _Judge(fmt)
    free = dict(_signature(evidence, fmt))
    names = [_dialect(point).name for point in _extensions(free, found.model.size)
             if _passes(judge_model(evidence, point)[0])]
    return sorted(set(names) | {found.name},
                  key=lambda n: (_CATALOGUE_ORDER.get(n, len(DIALECTS)), n))


def identify_variants(results: Sequence[CaseResult], cases: dict, jobs: int = 1) -> None:
    """For each variant with failures: search its model over its failing and passing cases
    (their trajectories kept on the results), and write the outcome on each failing result
    (``dialects``: the model where it explains the case; ``departure``: in words where it
    does not). ``jobs`` > 1 searches that many variants at once, in processes of their own.
    The trajectories are dropped afterwards."""
    by_variant: dict[str, list[CaseResult]] = {}
    for r in results:
        by_variant.setdefault(r.variant.id, []).append(r)
    work = [rs for rs in by_variant.values()
            if any(r.status == "fail" and r.observed is not None for r in rs)]
    if jobs > 1 and len(work) > 1:
        outcomes = _search_in_processes(work, cases, jobs)
    else:
        outcomes = [_search_variant(rs, cases) for rs in work]
    for rs, outcome in zip(work, outcomes):
        for r in rs:
            if r.case_id in outcome and r.status == "fail":
                r.dialects, r.departure, r.contradicted = outcome[r.case_id]
    for r in results:
        r.observed = None
        r.spec_bounds = None


def _search_variant(rs: Sequence[CaseResult], cases: dict) -> dict:
    """One variant's search: case id → (dialects, departure, contradicted passing cases)."""
    failing = [_evidence(cases[r.case_id], r) for r in rs
               if r.status == "fail" and r.observed is not None and r.verdict is not None]
    if not failing:
        return {}
    passing = [_evidence(cases[r.case_id], r) for r in rs
               if r.status == "pass" and r.observed is not None]
    found = search_model(failing, passing, rs[0].variant.dtype)
    contradicted = list(found.contradicted) or None
    out = {}
    for e in failing:
        cid = e.case.id
        if cid in found.explained:
            out[cid] = ([found.name], "", contradicted)
        elif cid in found.consistent:
            out[cid] = ([found.name], CONSISTENT, contradicted)
        else:
            out[cid] = ([], found.unexplained.get(cid, "") + _closest_words(
                found.closest.get(cid)), contradicted)
    return out


def _search_job(rs: list[CaseResult], cases: dict) -> dict:
    return _search_variant(rs, cases)


def _search_in_processes(work: list[list[CaseResult]], cases: dict, jobs: int) -> list[dict]:
    """The variants' searches spread over ``jobs`` processes (each gets its variant's cases
    and results); the outcomes in the order given."""
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=min(jobs, len(work)),
                                                  mp_context=context)
    try:
        futures = [pool.submit(_search_job, rs, {r.case_id: cases[r.case_id] for r in rs})
                   for rs in sorted(work, key=len, reverse=True)]
        order = sorted(work, key=len, reverse=True)
        done = {id(rs): f.result() for rs, f in zip(order, futures)}
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [done[id(rs)] for rs in work]


CONSISTENT = ("consistent with the model, not confirmed: its bound cannot decide this case "
              "(inconclusive under it)")


def _evidence(golden, r: CaseResult) -> Evidence:
    """A result's evidence: ``golden`` is a golden case (its reference is the spec's) or a
    bare case."""
    case = getattr(golden, "case", golden)
    return Evidence(case, r.observed, r.verdict, r, getattr(golden, "reference", None))


def _closest_words(near: tuple[str, float] | None) -> str:
    if not near:
        return ""
    name, ratio = near
    if not ratio > 1:  # a failure by class (NaN or ±∞ against a number), not by a bound
        return f"; the closest model tried, {name}, still fails it by a value's class"
    return f"; closest model {name}, still {ratio:.3g}× its bound"


def variant_dialects(results: Sequence[CaseResult]) -> list[str] | None:
    """The fewest dialects that explain every failure: each failing case conforms to one.

    None when nothing failed; [] when some failing case conforms to no model. With the
    variant's model searched (:func:`identify_variants`) every explained case names the
    same one; cases identified alone may name several, and are covered greedily (the
    dialect explaining most failures first; ties by the fewest switches)."""
    failing = [set(r.dialects or ()) for r in results if r.status == "fail"]
    if not failing:
        return None
    if any(not names for names in failing):
        return []
    chosen: list[str] = []
    left = failing
    while left:
        counts: dict[str, int] = {}
        for names in left:
            for name in names:
                counts[name] = counts.get(name, 0) + 1
        best = min(counts, key=lambda name: (-counts[name], _size(name),
                                             _CATALOGUE_ORDER.get(name, len(DIALECTS)), name))
        chosen.append(best)
        left = [names for names in left if best not in names]
    return chosen


def _size(name: str) -> int:
    try:
        return get_dialect(name).size
    except ValueError:
        return 99


def dialect_label(results: Sequence[CaseResult]) -> str:
    """What a variant implements, in words: '' (nothing failed), the model that explains
    every failure, or the model that explains some and where the others depart."""
    if variant_dialects(results) is None:
        return ""
    failing = [r for r in results if r.status == "fail"]
    unexplained = [r for r in failing if not r.dialects]
    cover = variant_dialects([r for r in failing if r.dialects]) or []
    contradicted = next((r.contradicted for r in failing if getattr(r, "contradicted", None)),
                        None)
    head = ", ".join(cover)
    only = sum(r.departure == CONSISTENT for r in failing)
    if only:
        head += (f" ({only} of its {len(failing)} failing cases only consistent with it: "
                 "its bound cannot decide them)")
    if contradicted:
        head += (f" (though {len(contradicted)} passing case"
                 f"{'s contradict' if len(contradicted) > 1 else ' contradicts'} it)")
    if not unexplained:
        return head
    n = len(unexplained)
    first = unexplained[0]
    how = first.departure or "the model has no switch that explains it"
    tail = (f"{n} failing case{'s' if n > 1 else ''} the model cannot explain: "
            f"{first.case_id}: {how}")
    return f"{head}; {tail}" if head else tail


def describe_departure(case: Case, observed: Observed, verdict: Verdict,
                       reference: Trajectory) -> str:
    """Where and how a failing trajectory departs from the spec, in words."""
    return localize(case, observed, verdict, reference).words()


def conforms_to(case: Case, observed: Observed, dtype: str | FloatFormat, name: str) -> bool:
    """Whether this trajectory passes the named model's own reference and bound (``dtype``:
    a name, or the format itself)."""
    evidence = Evidence(case, observed)
    point = get_dialect(name).switch_values()
    return bool(point) and _passes(_Judge(as_format(dtype))(evidence, point)[0])
