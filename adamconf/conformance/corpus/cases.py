"""The case catalogue: named, tagged problems that cover every option in every regime.

The catalogue is a grid. Its rows are the eight combinations of the three switches that
change the algorithm's structure — amsgrad × maximize × (weight_decay = 0 / ≠ 0) — and its
columns are regimes (t = 1, long horizons, resumed at step ~10^7, zero / tiny / huge /
subnormal gradients, sign flips, ε = 0, β1 = 0, β2 → 1, lr schedules, several groups,
empty and 0-d parameters, non-finite inputs, …). Every cell is one generated case; a few
hand-checked cases stand beside the grid. ``adamconf cases`` prints the grid with counts,
so a gap is visible.

Inputs are drawn from a generator seeded by the case id (stable across runs and machines)
and rounded so that they are exact in every dtype the case targets; a case targets each
dtype in which all its inputs are exact.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from adamconf.reference.config import GroupConfig
from adamconf.reference.floats import FORMATS, representable, round_to
from adamconf.reference.problem import Group, InitialState, Problem

__all__ = ["Case", "FEATURES", "OPTION_COMBOS", "REGIMES", "catalogue", "coverage_matrix",
           "select_cases", "ALL_DTYPES"]

ALL_DTYPES = ("float64", "float32", "float16", "bfloat16")


@dataclass(frozen=True)
class Case:
    """A problem with a name, a purpose, tags and the dtypes whose values hold it exactly."""

    id: str
    description: str
    tags: tuple[str, ...]
    problem: Problem
    dtypes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        exact = exact_dtypes(self.problem)
        if not self.dtypes:
            object.__setattr__(self, "dtypes", exact)
        for dtype in self.dtypes:
            if dtype not in exact:
                raise ValueError(f"case {self.id}: inputs are not exact in {dtype}")

    @property
    def options(self) -> str:
        """The row of the coverage grid: which of amsgrad, maximize, weight decay are on."""
        return combo_name(*_options_of(self.problem))


def _options_of(problem: Problem) -> tuple[bool, bool, bool]:
    cfg = problem.groups[0].config
    return cfg.amsgrad, cfg.maximize, cfg.weight_decay != 0.0


def _inputs(problem: Problem) -> Iterable[np.ndarray]:
    yield from problem.params
    yield from problem.grads
    if problem.initial_state is not None:
        for name in ("m", "v", "vmax"):
            yield from getattr(problem.initial_state, name)


def exact_dtypes(problem: Problem) -> tuple[str, ...]:
    """The dtypes in which every input value (params, gradients, state) is exact."""
    values = np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1)
                             for a in _inputs(problem)] or [np.zeros(0)])
    return tuple(d for d in ALL_DTYPES if bool(np.all(representable(values, d))))


# --- the grid ---------------------------------------------------------------------------

OPTION_COMBOS = tuple((a, m, w) for a in (False, True) for m in (False, True)
                      for w in (False, True))


def combo_name(amsgrad: bool, maximize: bool, weight_decay: bool) -> str:
    parts = [name for name, on in (("ams", amsgrad), ("max", maximize), ("wd", weight_decay))
             if on]
    return "+".join(parts) or "plain"


def _rng(case_id: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(case_id.encode()))


def _exact(x: np.ndarray, dtypes: Iterable[str]) -> np.ndarray:
    """Round until the values are exact in every dtype listed (narrowest formats last)."""
    x = np.asarray(x, dtype=np.float64)
    for _ in range(3):
        for dtype in dtypes:
            x = round_to(x, dtype)
    return x


_SMALL = ("float64", "float32", "float16", "bfloat16")
_WIDE = ("float64", "float32", "bfloat16")  # float32's range; 8 significant bits


def _normal_grads(rng, steps: int, shape, scale: float = 1.0, dtypes=_SMALL) -> np.ndarray:
    """Gradients of varied magnitude (a decade either side of ``scale``) and random sign."""
    magnitude = scale * 10.0 ** rng.uniform(-1.0, 1.0, size=(steps,) + tuple(shape))
    return _exact(rng.choice([-1.0, 1.0], size=magnitude.shape) * magnitude, dtypes)


def _params(rng, shape, dtypes=_SMALL) -> np.ndarray:
    return _exact(rng.uniform(-2.0, 2.0, size=shape), dtypes)


@dataclass(frozen=True)
class _Regime:
    name: str
    description: str
    build: Callable[[np.random.Generator, GroupConfig], tuple[tuple[Group, ...],
                                                              tuple[np.ndarray, ...],
                                                              InitialState | None]]
    feature: str  # the column of the coverage and report matrices (FEATURES) it fills


def _single(config: GroupConfig, params, grads, lrs=None, state=None):
    return (Group(config, tuple(params), lrs),), tuple(grads), state


def _t1(rng, cfg):
    p = _params(rng, (64,))
    g = _normal_grads(rng, 1, (64,), 0.1)
    return _single(cfg, [p], [g])


def _few_steps(rng, cfg):
    p = _params(rng, (3, 4))
    return _single(cfg, [p], [_normal_grads(rng, 12, (3, 4), 0.1)])


def _long(rng, cfg):
    p = _params(rng, (4,))
    # a slowly drifting gradient with noise: moments settle, v̂ both rises and falls
    steps = 1000
    base = np.sin(np.linspace(0, 6 * np.pi, steps))[:, None] * np.array([1.0, -0.5, 0.2, 2.0])
    noise = rng.normal(0, 0.3, size=(steps, 4))
    return _single(replace(cfg, lr=1e-3), [p], [_exact(0.1 * (base + noise), _SMALL)])


def _resumed(rng, cfg):
    shape = (6,)
    p = _params(rng, shape)
    step = 10_000_000 + int(rng.integers(0, 1000))
    g = _normal_grads(rng, 5, shape, 0.1)
    m = _exact(rng.normal(0, 0.01, size=shape), _SMALL)
    v = _exact(rng.uniform(1e-3, 4e-3, size=shape), _SMALL)
    # the documented v̂max: a running max of v̂, so never below v̂ = v/(1 − β2^t) ≈ v here
    vmax = _exact(v * rng.uniform(1.0, 2.0, size=shape), _SMALL) if cfg.amsgrad else np.zeros(
        shape)
    state = InitialState(step, (m,), (v,), (np.maximum(vmax, v) if cfg.amsgrad else vmax,))
    return _single(cfg, [p], [g], state=state)


def _zero_grads(rng, cfg):
    p = _params(rng, (5,))
    g = _normal_grads(rng, 8, (5,), 0.1)
    g[:4] = 0.0  # m = v = 0: the update is 0/(0 + ε) = 0 until the first nonzero gradient
    g[:, 0] = 0.0
    return _single(cfg, [p], [g])


def _tiny_grads(rng, cfg):
    p = _params(rng, (5,), _WIDE)
    return _single(cfg, [p], [_normal_grads(rng, 8, (5,), 1e-30, _WIDE)])


def _huge_grads(rng, cfg):
    p = _params(rng, (5,), _WIDE)
    return _single(cfg, [p], [_normal_grads(rng, 8, (5,), 2.0 ** 55, _WIDE)])


def _subnormal32_grads(rng, cfg):
    p = _params(rng, (5,), _WIDE)
    tiny = FORMATS["float32"].smallest_subnormal
    g = rng.choice([-1.0, 1.0], size=(8, 5)) * rng.integers(1, 2**10, size=(8, 5)) * tiny
    return _single(replace(cfg, eps=1e-40), [p], [g])


def _subnormal16_grads(rng, cfg):
    p = _params(rng, (5,))
    tiny = FORMATS["float16"].smallest_subnormal
    g = rng.choice([-1.0, 1.0], size=(8, 5)) * rng.integers(1, 64, size=(8, 5)) * tiny
    return _single(replace(cfg, eps=1e-10), [p], [_exact(g, _SMALL)])


def _sign_flips(rng, cfg):
    p = _params(rng, (6,))
    magnitude = _normal_grads(rng, 10, (6,), 0.1)
    signs = np.where(np.arange(10)[:, None] % 2 == 0, 1.0, -1.0)
    return _single(cfg, [p], [np.abs(magnitude) * signs])


def _decreasing(rng, cfg):
    """A large gradient, then small ones: v̂ falls, so amsgrad's max is what decides θ."""
    p = _params(rng, (4,))
    g = np.array([1.0, 0.01, 0.01, 0.01, 0.01, 0.5, 0.01, 0.01])[:, None] * np.array(
        [1.0, -1.0, 0.5, 2.0])
    return _single(replace(cfg, lr=0.1), [p], [_exact(g, _SMALL)])


def _eps_zero(rng, cfg):
    p = _params(rng, (5,))
    g = _normal_grads(rng, 6, (5,), 0.1)
    g[:, 0] = 0.0  # 0/0 at every step: NaN, as IEEE gives it
    return _single(replace(cfg, eps=0.0), [p], [g])


def _eps_large(rng, cfg):
    """ε comparable to √v̂: where the placement of ε (eps-hat, inside √) shows most."""
    p = _params(rng, (4,))
    return _single(replace(cfg, lr=0.1, eps=1e-3), [p], [_normal_grads(rng, 6, (4,), 1e-3)])


def _beta1_zero(rng, cfg):
    p = _params(rng, (5,))
    return _single(replace(cfg, betas=(0.0, cfg.beta2)), [p], [_normal_grads(rng, 8, (5,), 0.1)])


def _beta2_near_one(rng, cfg):
    p = _params(rng, (5,))
    return _single(replace(cfg, betas=(cfg.beta1, 1.0 - 2.0 ** -20)), [p],
                   [_normal_grads(rng, 20, (5,), 0.1)])


def _schedule(rng, cfg):
    p = _params(rng, (5,))
    steps = 12
    # warm-up from 0, then a step decay: what LinearLR + StepLR would set between steps
    lrs = np.concatenate([np.linspace(0.0, 0.05, 4), np.full(4, 0.05), np.full(4, 0.005)])
    return _single(replace(cfg, lr=float(lrs[0])), [p], [_normal_grads(rng, steps, (5,), 0.1)],
                   lrs=lrs)


def _half_normal(rng, cfg):
    """Gradients of 0.5–4 with ε = 2^-10: v = (1 − β2)·g² stays normal in float16."""
    p = _params(rng, (6,))
    return _single(replace(cfg, eps=2.0 ** -10), [p], [_normal_grads(rng, 10, (6,), 1.5)])


def _eps_f16(rng, cfg):
    """ε comparable to √v̂, every moment in float16's normal range (v = 0.1·g² ≥ 2^-12)."""
    p = _params(rng, (6,))
    magnitude = 2.0 ** rng.integers(-4, 0, size=(12, 6)) * rng.integers(8, 16, size=(12, 6)) / 8
    g = rng.choice([-1.0, 1.0], size=(12, 6)) * magnitude
    return _single(replace(cfg, betas=(0.5, 0.9), eps=2.0 ** -5), [p], [_exact(g, _SMALL)])


def _range_f16(rng, cfg):
    """Gradients from exactly 0 to 2^6 across the elements, every moment normal in float16:
    v = 0.1·g² ≥ 2^-13.3 where g ≠ 0 (with ε = 2^-10, the denominator stays resolved)."""
    p = _params(rng, (8,))
    exponent = rng.integers(-5, 7, size=(10, 8))
    g = rng.choice([-1.0, 1.0], size=(10, 8)) * 2.0 ** exponent * rng.integers(8, 16,
                                                                                size=(10, 8)) / 8
    g[:, 0] = 0.0  # one element never sees a gradient
    g[:3, 1] = 0.0  # another only from the fourth step
    return _single(replace(cfg, betas=(0.5, 0.9), eps=2.0 ** -10), [p], [_exact(g, _SMALL)])


def _beta2_low(rng, cfg):
    """β2 = 0.99 and β1 = 0.5: (1 − β2)·v stays above half an ulp of v in bfloat16."""
    p = _params(rng, (6,))
    return _single(replace(cfg, betas=(0.5, 0.99), eps=2.0 ** -10), [p],
                   [_normal_grads(rng, 16, (6,), 0.5)])


def _lr_zero(rng, cfg):
    """lr = 0 for two steps, with one element's gradient exactly 0: θ must not move."""
    p = _params(rng, (4,))
    g = _normal_grads(rng, 5, (4,), 0.1)
    g[:, 0] = 0.0
    lrs = np.array([0.0, 0.0, 0.01, 0.01, 0.0])
    return _single(replace(cfg, lr=0.0), [p], [g], lrs=lrs)


def _groups(rng, cfg):
    """Two groups with different options and lrs; the second flips amsgrad and maximize."""
    other = GroupConfig(lr=0.02, betas=(0.8, 0.99), eps=1e-6,
                        weight_decay=0.0 if cfg.weight_decay else 0.05,
                        amsgrad=not cfg.amsgrad, maximize=not cfg.maximize)
    p1, p2, p3 = _params(rng, (4,)), _params(rng, (2, 3)), _params(rng, (3,))
    steps = 8
    grads = [_normal_grads(rng, steps, p.shape, 0.1) for p in (p1, p2, p3)]
    lrs = np.geomspace(0.02, 0.002, steps)
    return ((Group(replace(cfg, lr=0.01), (p1, p2)), Group(other, (p3,), lrs)), tuple(grads),
            None)


def _empty_and_scalar(rng, cfg):
    empty, scalar, vector = np.zeros((0,)), np.array(_params(rng, ())), _params(rng, (3,))
    grads = [np.zeros((6, 0)), _normal_grads(rng, 6, (), 0.1), _normal_grads(rng, 6, (3,), 0.1)]
    return _single(cfg, [empty, scalar, vector], grads)


def _non_finite(rng, cfg):
    p = _params(rng, (6,))
    p[5] = np.inf
    g = _normal_grads(rng, 6, (6,), 0.1)
    g[2, 0] = np.nan
    g[1, 1] = np.inf
    g[3, 2] = -np.inf
    return _single(cfg, [p], [g])


REGIMES: tuple[_Regime, ...] = (
    _Regime("t1", "a single step (t = 1) on 64 elements of varied size",
            _t1, "basic"),
    _Regime("short", "12 steps on a 3×4 parameter",
            _few_steps, "basic"),
    _Regime("long", "1000 steps on 4 elements: moments settle, v̂ rises and falls",
            _long, "basic"),
    _Regime("resumed", "resumed at step ~10^7 from a given m, v, v̂max",
            _resumed, "resumed state"),
    _Regime("zero-grad", "gradients exactly 0 for the first steps and in one element",
            _zero_grads, "gradient range"),
    _Regime("tiny-grad", "gradients near 1e-30 (below ε, representable in float32)",
            _tiny_grads, "gradient range"),
    _Regime("huge-grad", "gradients near 2^55 (g² near 2^110, within float32)",
            _huge_grads, "gradient range"),
    _Regime("subnormal32", "float32-subnormal gradients with ε = 1e-40",
            _subnormal32_grads, "gradient range"),
    _Regime("subnormal16", "float16-subnormal gradients with ε = 1e-10",
            _subnormal16_grads, "gradient range"),
    _Regime("sign-flip", "gradients flip sign every step",
            _sign_flips, "basic"),
    _Regime("decreasing", "one large gradient then small ones (v̂ falls; amsgrad decides)",
            _decreasing, "basic"),
    _Regime("eps0", "ε = 0, with one element's gradient always 0 (0/0 → NaN)",
            _eps_zero, "ε"),
    _Regime("eps-large", "ε = 1e-3 against gradients near 1e-3",
            _eps_large, "ε"),
    _Regime("beta1-0", "β1 = 0",
            _beta1_zero, "basic"),
    _Regime("beta2-near-1", "β2 = 1 − 2^-20 over 20 steps",
            _beta2_near_one, "basic"),
    _Regime("schedule", "lr changes between steps: warm-up from 0, then a decay",
            _schedule, "schedules"),
    _Regime("lr-zero", "lr = 0 on some steps, one element's gradient always 0",
            _lr_zero, "schedules"),
    _Regime("half-normal", "gradients 0.5–4, ε = 2^-10: v stays normal in float16",
            _half_normal, "basic"),
    _Regime("range-f16", "gradients from 0 to 2^6, β = (0.5, 0.9), ε = 2^-10: every moment "
            "normal in float16", _range_f16, "gradient range"),
    _Regime("eps-f16", "ε = 2^-5 against gradients 2^-4–2^-1, β = (0.5, 0.9): ε matters and v "
            "stays normal in float16", _eps_f16, "ε"),
    _Regime("beta2-low", "β = (0.5, 0.99): v does not stagnate in bfloat16",
            _beta2_low, "basic"),
    _Regime("groups", "two groups with different options, one with a schedule",
            _groups, "schedules"),
    _Regime("empty-0d", "an empty parameter, a 0-d parameter and a vector in one group",
            _empty_and_scalar, "shapes"),
    _Regime("non-finite", "NaN and ±∞ gradients, an infinite parameter",
            _non_finite, "non-finite"),
)


def _regime_feature(names: set[str]) -> Callable[[Sequence[str]], bool]:
    return lambda tags: any(t.startswith("regime:") and t[7:] in names for t in tags)


def _option(name: str) -> Callable[[Sequence[str]], bool]:
    return lambda tags: "option:" + name in tags


_FEATURE_TEXT = {  # in the order of the matrices' columns
    "basic": "t = 1, short and long runs, sign flips, a falling v̂, β1 = 0, β2 near 1, "
             "moments kept normal in 16-bit formats, hand-checked cases",
    "ε": "ε = 0 (0/0 → NaN), ε = 1e-3 against gradients near 1e-3, ε = 2^-5 in float16",
    "gradient range": "zero, tiny, huge and subnormal gradients",
    "schedules": "lr changing between steps (lr = 0 too); several param groups",
    "resumed state": "resumed at step ~10⁷ from a given m, v, v̂max",
    "shapes": "an empty and a 0-d parameter",
    "non-finite": "NaN and ±∞ gradients and parameters",
}


def _features() -> tuple[tuple[str, str, Callable[[Sequence[str]], bool]], ...]:
    """The columns of the coverage and report matrices: each regime's declared feature, the
    three options, everything, and the regression cases."""
    by_feature: dict[str, set[str]] = {}
    for regime in REGIMES:
        by_feature.setdefault(regime.feature, set()).add(regime.name)
    by_feature["basic"].add("hand")
    columns = [("all cases", "every case of the variant", lambda tags: True),
               ("basic", _FEATURE_TEXT["basic"], _regime_feature(by_feature.pop("basic"))),
               ("amsgrad", "cases with amsgrad=True", _option("amsgrad")),
               ("maximize", "cases with maximize=True", _option("maximize")),
               ("weight decay", "cases with weight_decay > 0", _option("weight-decay"))]
    columns += [(name, _FEATURE_TEXT[name], _regime_feature(by_feature[name]))
                for name in _FEATURE_TEXT if name in by_feature]
    columns.append(("regressions", "cases that fuzzing found and saved",
                    lambda tags: "regression" in tags))
    return tuple(columns)


def _grid_case(regime: _Regime, combo: tuple[bool, bool, bool]) -> Case:
    amsgrad, maximize, decay = combo
    case_id = f"{regime.name}/{combo_name(*combo)}"
    config = GroupConfig(lr=0.01, betas=(0.9, 0.999), eps=1e-8,
                         weight_decay=0.01 if decay else 0.0, amsgrad=amsgrad,
                         maximize=maximize)
    groups, grads, state = regime.build(_rng(case_id), config)
    options = [name for name, on in (("amsgrad", amsgrad), ("maximize", maximize),
                                     ("weight-decay", decay)) if on]
    return Case(case_id, f"{regime.description}; {combo_name(*combo)}",
                tuple(["regime:" + regime.name] + ["option:" + o for o in options]),
                Problem(groups, grads, state))


def _hand_checked() -> list[Case]:
    """Cases whose results were checked by hand (and appear in the README)."""
    f32 = lambda a: np.asarray(a, dtype=np.float32).astype(np.float64)  # noqa: E731
    cases = [
        Case("hand/amsgrad-decreasing",
             "θ0 = 1, lr = 0.1, gradients 1, 0.01, 0.01 with amsgrad: documented θ3 = "
             "0.821514859039…, ams-rawmax 0.779325904539…, plain Adam 0.779247709127…",
             ("regime:hand", "option:amsgrad"),
             Problem((Group(GroupConfig(lr=0.1, amsgrad=True), (np.array([1.0]),)),),
                     (np.array([[1.0], [0.01], [0.01]]),))),
        Case("hand/eps-hat",
             "θ0 = [1, −2, 3], lr = 0.1, eps = 1e-3, two float32 gradients: documented "
             "θ2 ≈ [0.98414979, −1.92538365, 2.93333333]; eps-hat ≈ [1.0014271, −1.9951101, "
             "2.9962568] (what MindSpore 2.10 produces)",
             ("regime:hand",),
             Problem((Group(GroupConfig(lr=0.1, eps=1e-3), (np.array([1.0, -2.0, 3.0]),)),),
                     (np.stack([f32([1e-3, -1e-3, 5e-4]), f32([-3e-3, 1e-4, 5e-4])]),))),
        Case("hand/constant-gradient",
             "a constant gradient: m̂ = g and v̂ = g² at every t, so θ_T = θ0 − T·γ·g/(|g| + ε)",
             ("regime:hand",),
             Problem((Group(GroupConfig(lr=0.01), (np.array([0.5, -0.25, 1.0]),)),),
                     (np.tile([0.5, -0.125, 2.0], (50, 1)),))),
    ]
    return cases


FEATURES = _features()


def catalogue() -> list[Case]:
    """Every case of the corpus, in a stable order."""
    cases = [_grid_case(regime, combo) for regime in REGIMES for combo in OPTION_COMBOS]
    cases.extend(_hand_checked())
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    return cases


def coverage_matrix(cases: Iterable[Case]) -> tuple[list[str], list[str], dict]:
    """Rows (option combos) × columns (regimes and target dtypes) → number of cases."""
    rows = [combo_name(*c) for c in OPTION_COMBOS]
    columns = [r.name for r in REGIMES] + ["dtype:" + d for d in ALL_DTYPES]
    counts: dict[tuple[str, str], int] = {(r, c): 0 for r in rows for c in columns}
    for case in cases:
        row = case.options
        for tag in case.tags:
            if tag.startswith("regime:") and (row, tag[7:]) in counts:
                counts[(row, tag[7:])] += 1
        for dtype in case.dtypes:
            counts[(row, "dtype:" + dtype)] += 1
    return rows, columns, counts


def select_cases(cases: Iterable[Case], patterns: Iterable[str] = (), tags: Iterable[str] = ()
                 ) -> list[Case]:
    """Cases whose id matches any pattern (substring, or fnmatch glob) and carry every tag."""
    import fnmatch

    patterns, tags = list(patterns), list(tags)
    out = []
    for case in cases:
        if patterns and not any(p in case.id or fnmatch.fnmatchcase(case.id, p)
                                for p in patterns):
            continue
        if any(t not in case.tags and "regime:" + t not in case.tags
               and "option:" + t not in case.tags for t in tags):
            continue
        out.append(case)
    return out
