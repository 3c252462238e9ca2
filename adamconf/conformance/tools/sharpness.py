"""Is the bound sound and sharp? Correct implementations in several orderings, and dialects.

Two families of NumPy implementations run the corpus here:

- :func:`emulate` — *correct* implementations of the documented Adam working in a dtype D
  (float64, float32, float16, bfloat16 via ``ml_dtypes``), each a :class:`Recipe`: an
  ordering of the arithmetic (the documented one, torch's, the lr-folded one, torch's
  capturable one, FMA, float64 intermediates rounded once per step), where the scalars live
  (Python floats, or held in the scalar format with β^t as a running product), subnormals
  flushed or not, and for 16-bit D, float32 intermediates ("opmath") or pure D arithmetic.
  None may ever fail; how close they come is :func:`tightness`.
- :func:`dialect_float32` — each dialect in float32, through the engine's own
  :func:`~adamconf.reference.engine.adam_step` on float32 arrays. Each must fail against the
  spec on some golden case (:func:`sensitivity_table`) and pass against its own reference.

Every elementwise operation is IEEE arithmetic in the working dtype: numpy's float32 and
float64 natively; float16 and bfloat16 through float32, which rounds +, −, ×, ÷ and √
correctly for them (24 ≥ 2p + 2 bits). FMA is computed in long double and rounded once
more (exact but for rare double-rounding ties).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from adamconf.reference.dialects import SEMANTIC_DIALECTS, Dialect
from adamconf.reference.floats import FORMATS, round_to
from adamconf.reference.problem import Problem
from adamconf.reference.step import NUMPY_ARITH, StepConstants, adam_step, initial_vmax

__all__ = ["Recipe", "Trace", "emulate", "dialect_float32", "CORRECT_FLOAT32",
           "correct_recipes", "sensitivity_table", "tightness", "ratios", "spec_bounds",
           "numpy_dtype", "ORDERINGS"]

ORDERINGS = ("documented", "torch", "folded", "capturable", "fma", "float64-once")


def numpy_dtype(name: str):
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


@dataclass(frozen=True)
class Recipe:
    """One correct implementation: an ordering, where scalars live, how underflow goes.

    ordering:
        ``documented`` — m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; m̂ = m/bc1; v̂ = v/bc2;
        θ −= γ·(m̂/(√v̂ + ε)). ``torch`` — m.lerp_(g, 1−β1); v·β2 + (1−β2)·g·g (addcmul);
        d = √v/√bc2 + ε; θ += ((−γ/bc1)·m)/d (addcdiv, which multiplies first).
        ``folded`` — θ −= γ√bc2/bc1 · m/(√v + ε√bc2). ``capturable`` — torch's capturable form: scalars are tensors in
        the scalar format, d = √v/(√bc2·(−s)) + ε/(−s), θ += m/d — where dividing by the
        step size stays in range; elsewhere (lr = 0, say) as torch's non-capturable form,
        since torch's capturable one writes 0/(−0) = NaN where v = 0. ``fma`` — the documented
        order with every a·b + c fused. ``float64-once`` — everything in float64 from the
        stored values, each stored quantity rounded to D once per step.
        With amsgrad every ordering keeps the documented v̂max = max(v̂max, v/bc2).
    scalars:
        ``float64`` — hyperparameters and bias corrections as Python floats, rounded to the
        working dtype where they meet an array (torch). ``held`` — hyperparameters rounded
        to the scalar format once (float32, or float64 for float64 D) and β^t kept there as
        a running product (MindSpore's beta_power parameters).
    ftz:
        flush subnormal inputs and results to zero (GPU "denormals are zero" mode).
    opmath:
        16-bit D only: intermediates in float32, each stored quantity rounded to D.
        Without it, a 16-bit recipe still adds ε in float32 and divides there (ε = 1e-8
        is 0 in float16: an implementation that loses it divides by 0 where v̂ is 0,
        which is not the documented algorithm), every other intermediate rounded to D.
    """

    name: str
    dtype: str
    ordering: str = "documented"
    scalars: str = "float64"
    ftz: bool = False
    opmath: bool = False

    def __post_init__(self) -> None:
        if self.ordering not in ORDERINGS:
            raise ValueError(f"unknown ordering {self.ordering!r}")
        if self.scalars not in ("float64", "held"):
            raise ValueError(f"unknown scalars {self.scalars!r}")


@dataclass
class Trace:
    """What an implementation produced: θ and its state per step (float64 arrays)."""

    theta: list[np.ndarray]
    m: list[np.ndarray] | None
    v: list[np.ndarray] | None
    vmax: list[np.ndarray] | None
    vmax_kind: str = "hat"


class _Arith:
    """IEEE arithmetic in a working dtype W, results stored in D, optionally flushing."""

    def __init__(self, dtype: str, opmath: bool, ftz: bool) -> None:
        self.D = numpy_dtype(dtype)
        self.W = np.dtype(np.float32) if opmath else self.D
        self.dname = dtype
        self.wname = "float32" if opmath else dtype
        self.ftz = ftz
        self.tiny_w = FORMATS[self.wname].smallest_normal
        self.tiny_d = FORMATS[dtype].smallest_normal
        self._constants: dict[float, np.ndarray] = {}

    def _fz(self, x, tiny):
        if not self.ftz:
            return x
        return np.where(np.abs(x) < tiny, np.zeros_like(x) * np.sign(x), x).astype(x.dtype)

    def r(self, x):
        """A result of one operation in W (already rounded by numpy), flushed if need be; a
        float32 result of a 16-bit W (past the ε sum) stays float32."""
        if not self.ftz:
            return x
        x = np.asarray(x)
        if x.dtype == np.float32 and self.W.itemsize < 4:
            return self._fz(x, FORMATS["float32"].smallest_normal)
        return self._fz(np.asarray(x, dtype=self.W), self.tiny_w)

    def c(self, x) -> np.ndarray:
        """A scalar (Python float or numpy scalar) as a W value, correctly rounded."""
        key = float(x)
        value = self._constants.get(key)
        if value is None:
            value = np.asarray(round_to(key, self.wname), dtype=np.float64).astype(self.W)
            value = self._fz(value, self.tiny_w)  # a DAZ device reads a subnormal ε as 0
            self._constants[key] = value
        return value

    def load(self, x: np.ndarray) -> np.ndarray:
        """An input array (float64 holding D values) into W, exactly; DAZ if flushing."""
        return self._fz(np.asarray(round_to(x, self.dname)).astype(self.W), self.tiny_d)

    def store(self, x):
        """Round a W value to D (identity unless opmath), flushing subnormals if need be."""
        y = np.asarray(x).astype(self.D).astype(self.W)
        return self._fz(y, self.tiny_d)

    def store64(self, x):
        """Round a float64 value to D once (not through W)."""
        y = np.asarray(round_to(x, self.dname)).astype(self.D).astype(self.W)
        return self._fz(y, self.tiny_d)

    def fma(self, a, b, c):
        ld = np.longdouble
        exact = np.asarray(a, dtype=ld) * np.asarray(b, dtype=ld) + np.asarray(c, dtype=ld)
        return self.r(round_to(exact.astype(np.float64), self.wname).astype(self.W))

    def lerp(self, start, end, weight: float):
        """torch's lerp(start, end, w): start + w·(end − start) for |w| < ½, else
        end − (end − start)·(1 − w); each operation in W, except that a 16-bit W computes
        in float32 with w a float32 scalar and rounds once (torch's CPU kernel takes its
        opmath there: 1 − w rounded to bfloat16 would be off by up to 2^-9/β1)."""
        if self.W.itemsize >= 4:
            C = self.c
            if abs(weight) < 0.5:
                return self.r(start + self.r(C(weight) * self.r(end - start)))
            return self.r(end - self.r(self.r(end - start) * self.r(C(1.0) - C(weight))))
        s, e = np.asarray(start, np.float32), np.asarray(end, np.float32)
        w = np.float32(round_to(weight, "float32"))
        with np.errstate(all="ignore"):
            out = s + w * (e - s) if abs(weight) < 0.5 else e - (e - s) * (np.float32(1) - w)
        return self.r(np.asarray(out).astype(self.W))

    def sqrt(self, x):
        return self.r(np.sqrt(x))

    def plus_eps(self, x, eps):
        """x + ε: in W, except that a 16-bit W adds ε in float32 (and what follows from
        the sum stays float32 by numpy's promotion until it is stored in D)."""
        if self.W.itemsize >= 4:
            return self.r(x + self.c(eps))
        wide = np.float32(round_to(float(eps), "float32"))
        return self.r(np.asarray(x, dtype=np.float32) + wide)

    def div(self, a, b):
        return self.r(np.true_divide(a, b))


class _Scalars:
    """Per group: the step's scalars, as Python floats or held in the scalar format."""

    def __init__(self, group, recipe: Recipe, t0: int) -> None:
        cfg = group.config
        self.cfg, self.group, self.recipe = cfg, group, recipe
        held = recipe.scalars == "held" or recipe.ordering == "capturable"
        self.sname = ("float64" if recipe.dtype == "float64" else "float32") if held else None
        if self.sname:
            S = np.float64 if self.sname == "float64" else np.float32
            self.S = S
            self.beta1, self.beta2 = S(cfg.beta1), S(cfg.beta2)
            self.eps, self.wd = S(cfg.eps), S(cfg.weight_decay)
            self.omb1, self.omb2 = S(1) - self.beta1, S(1) - self.beta2
            # β^t0 by pow in S, then a running product
            self.power1 = np.power(self.beta1, S(t0)) if t0 else S(1)
            self.power2 = np.power(self.beta2, S(t0)) if t0 else S(1)
        else:
            self.beta1, self.beta2 = cfg.beta1, cfg.beta2
            self.eps, self.wd = cfg.eps, cfg.weight_decay
            self.omb1, self.omb2 = 1.0 - cfg.beta1, 1.0 - cfg.beta2

    def at(self, k: int, t: int) -> dict:
        lr = self.group.lr_at(k)
        if self.sname:
            S = self.S
            lr = S(lr)
            if self.recipe.ordering == "capturable":  # β^t by pow of a float step tensor
                p1, p2 = np.power(self.beta1, S(t)), np.power(self.beta2, S(t))
            else:
                self.power1 = self.power1 * self.beta1
                self.power2 = self.power2 * self.beta2
                p1, p2 = self.power1, self.power2
            bc1, bc2 = S(1) - p1, S(1) - p2
            sqrt_bc2 = np.sqrt(bc2)
        else:
            bc1, bc2 = 1.0 - self.beta1 ** t, 1.0 - self.beta2 ** t
            sqrt_bc2 = math.sqrt(bc2)
        return dict(lr=lr, bc1=bc1, bc2=bc2, sqrt_bc2=sqrt_bc2)


def _step(A: _Arith, recipe: Recipe, sc: _Scalars, st: dict, theta, m, v, vmax, grad):
    cfg = sc.cfg
    lr, bc1, bc2, sqrt_bc2 = st["lr"], st["bc1"], st["bc2"], st["sqrt_bc2"]
    order = recipe.ordering
    C = A.c
    if order == "float64-once":
        th, mm, vv, vm, gr = (np.asarray(x, dtype=np.float64) for x in (theta, m, v, vmax, grad))
        with np.errstate(all="ignore"):
            g = -gr if cfg.maximize else gr
            if cfg.weight_decay:
                g = g + float(sc.wd) * th
            mm = float(sc.beta1) * mm + float(sc.omb1) * g
            vv = float(sc.beta2) * vv + float(sc.omb2) * (g * g)
            vh = vv / float(bc2)
            if cfg.amsgrad:
                vm = np.maximum(vm, vh)
                vh = vm
            th = th - float(lr) * ((mm / float(bc1)) / (np.sqrt(vh) + float(sc.eps)))
        return tuple(A.store64(x) for x in (th, mm, vv, vm))

    g = -grad if cfg.maximize else grad
    if cfg.weight_decay:
        g = A.r(g + A.r(C(sc.wd) * theta))
    if order == "fma":
        m = A.fma(C(sc.beta1), m, A.r(C(sc.omb1) * g))
        v = A.fma(C(sc.beta2), v, A.r(C(sc.omb2) * A.r(g * g)))
    elif order in ("torch", "capturable"):
        m = A.lerp(m, g, float(sc.omb1))
        v = A.r(v * C(sc.beta2))
        v = A.r(v + A.r(A.r(C(sc.omb2) * g) * g))
    else:
        m = A.r(A.r(C(sc.beta1) * m) + A.r(C(sc.omb1) * g))
        v = A.r(A.r(C(sc.beta2) * v) + A.r(C(sc.omb2) * A.r(g * g)))
    m, v = A.store(m), A.store(v)

    if cfg.amsgrad:
        vmax = A.store(np.maximum(vmax, A.div(v, C(bc2))))
    if order in ("documented", "fma"):
        second = vmax if cfg.amsgrad else A.div(v, C(bc2))
        denom = A.plus_eps(A.sqrt(second), sc.eps)
        update = A.div(A.div(m, C(bc1)), denom)
        if order == "fma":
            theta = A.fma(-C(lr), update, theta)
        else:
            theta = A.r(theta - A.r(C(lr) * update))
    elif order == "torch":
        if cfg.amsgrad:
            denom = A.plus_eps(A.sqrt(vmax), sc.eps)
        else:
            denom = A.plus_eps(A.div(A.sqrt(v), C(sqrt_bc2)), sc.eps)
        step_size = float(lr) / float(bc1)
        # addcdiv: self + value·t1/t2, evaluated left to right ((s·m)/d is subnormal where
        # m is tiny, when m/d is not: torch 2.13 on CPU)
        theta = A.r(theta + A.div(A.r(C(-step_size) * m), denom))
    elif order == "folded":
        sb = C(sqrt_bc2)
        root = A.r(A.sqrt(vmax) * sb) if cfg.amsgrad else A.sqrt(v)
        denom = A.plus_eps(root, float(sc.eps) * float(sqrt_bc2))
        step = C(float(lr) * float(sqrt_bc2) / float(bc1))
        theta = A.r(theta - A.r(step * A.div(m, denom)))
    elif not _capturable_safe(A, sc, lr, bc1, sqrt_bc2, v, vmax, cfg.amsgrad):
        # torch's own capturable form divides by the step size: 0/0 = NaN where v = 0 at
        # lr = 0 (or a step size that underflows), ∞ where √v/step overflows. A correct
        # implementation updates by (−step)·(m/d) there, as the non-capturable form does.
        denom = A.plus_eps(A.sqrt(vmax if cfg.amsgrad else A.div(v, C(bc2))), sc.eps)
        theta = A.r(theta + A.r(C(-float(lr) / float(bc1)) * A.div(m, denom)))
    else:  # capturable: scalar tensors in S, combined with arrays in W
        S = sc.S
        step_size_neg = -(S(lr) / bc1)
        if cfg.amsgrad:
            denom = A.r(A.div(A.sqrt(vmax), C(step_size_neg)) + C(S(sc.eps) / step_size_neg))
        else:
            denom = A.r(A.div(A.sqrt(v), C(sqrt_bc2 * step_size_neg))
                        + C(S(sc.eps) / step_size_neg))
        theta = A.r(theta + A.div(m, denom))
    return A.store(theta), m, v, vmax


def _capturable_safe(A: _Arith, sc: _Scalars, lr, bc1, sqrt_bc2, v, vmax, amsgrad) -> bool:
    """Whether dividing by the step size stays within range (the capturable form's domain)."""
    S = sc.S
    with np.errstate(all="ignore"):
        step = S(lr) / bc1
        scale = step * (S(1) if amsgrad else sqrt_bc2)
        if not (abs(float(scale)) >= FORMATS[A.wname].smallest_normal):
            return False
        top = float(np.max(np.sqrt(np.asarray(vmax if amsgrad else v, dtype=np.float64)),
                           initial=0.0))
        limit = FORMATS[A.wname].max
        return top / float(scale) < limit and float(sc.eps) / float(step) < limit


def emulate(problem: Problem, recipe: Recipe) -> Trace:
    """Run ``problem`` through one correct implementation; values as float64 arrays."""
    A = _Arith(recipe.dtype, recipe.opmath, recipe.ftz)
    state = problem.initial_state
    t0 = problem.initial_step
    owner = problem.group_of_param()
    outs: dict[str, list[np.ndarray]] = {q: [] for q in ("theta", "m", "v", "vmax")}
    scalars = [_Scalars(g, recipe, t0) for g in problem.groups]
    per_param, grads = [], []
    for i, p in enumerate(problem.params):
        zeros = np.zeros(p.shape)
        init = [p] + ([zeros] * 3 if state is None else [state.m[i], state.v[i], state.vmax[i]])
        per_param.append([A.load(np.asarray(x, dtype=np.float64)) for x in init])
        grads.append(A.load(problem.grads[i]))
        for q in outs:
            outs[q].append(np.empty((problem.steps,) + p.shape))
    with np.errstate(all="ignore"):
        for k in range(problem.steps):
            step_scalars = [sc.at(k, t0 + k + 1) for sc in scalars]  # once per group
            for i in range(len(per_param)):
                new = _step(A, recipe, scalars[owner[i]], step_scalars[owner[i]],
                            *per_param[i], grads[i][k])
                per_param[i] = list(new)
                for q, value in zip(outs, new, strict=True):
                    outs[q][i][k] = np.asarray(value, dtype=np.float64)
    return Trace(outs["theta"], outs["m"], outs["v"], outs["vmax"], "hat")


def correct_recipes(dtype: str) -> list[Recipe]:
    """The family of correct implementations for one dtype.

    No capturable form for 16-bit dtypes: it divides by √(1−β2^t)·γ/(1−β1^t), which
    rounded to float16 underflows for ordinary step sizes (γ·√(1−β2)/(1−β1) ≈ 3e-5 at
    γ = 1e-4, t = 1 is below float16's smallest normal) and turns into 0/0.
    """
    orderings = [o for o in ORDERINGS if o != "capturable" or dtype in ("float32", "float64")]
    out = [Recipe(f"{dtype}/{o}", dtype, ordering=o) for o in orderings]
    out.append(Recipe(f"{dtype}/held-scalars", dtype, scalars="held"))
    out.append(Recipe(f"{dtype}/torch+held-scalars", dtype, ordering="torch", scalars="held"))
    out.append(Recipe(f"{dtype}/ftz", dtype, ftz=True))
    if dtype in ("float16", "bfloat16"):
        out.append(Recipe(f"{dtype}/opmath", dtype, opmath=True))
        out.append(Recipe(f"{dtype}/torch+opmath", dtype, ordering="torch", opmath=True))
    return out


CORRECT_FLOAT32 = tuple(correct_recipes("float32"))


# --- dialects in float32 ------------------------------------------------------------------

def dialect_float32(problem: Problem, dialect: Dialect) -> Trace:
    """``dialect`` run in float32 through the engine's own step (hyperparameters in float32,
    β^t by pow in float32)."""
    f = np.float32
    owner = problem.group_of_param()
    t0 = problem.initial_step
    outs: dict[str, list[np.ndarray]] = {q: [] for q in ("theta", "m", "v", "vmax")}
    with np.errstate(all="ignore"):
        consts = []
        for k in range(problem.steps):
            t = f(t0 + k + 1 + dialect.step_offset)
            row = []
            for group in problem.groups:
                cfg = group.config
                b1, b2, lr, wd = f(cfg.beta1), f(cfg.beta2), f(group.lr_at(k)), f(
                    cfg.weight_decay)
                off = not dialect.bias_correction or (cfg.amsgrad and
                                                      dialect.amsgrad_mode == "paper")
                bc1 = f(1) if off else f(1) - np.power(b1, t)
                bc2 = f(1) if off else f(1) - np.power(b2, t)
                row.append(StepConstants(
                    lr=lr, beta1=b1, beta2=b2, one_minus_beta1=f(1) - b1,
                    one_minus_beta2=f(1) - b2, eps=f(cfg.eps), weight_decay=wd,
                    decay_factor=f(1) - {
                        "decoupled-nolr": f(1), "decoupled-lr0": f(cfg.lr),
                        "decoupled-lr-ratio": (lr / f(group.max_lr) if group.max_lr
                                               else f(1)),
                    }.get(dialect.weight_decay_mode, lr) * wd,
                    bias_correction1=bc1, bias_correction2=bc2,
                    sqrt_bias_correction2=np.sqrt(bc2), amsgrad=cfg.amsgrad,
                    maximize=cfg.maximize))
            consts.append(row)
        state = problem.initial_state
        for i, p in enumerate(problem.params):
            theta = p.astype(f)
            m = (np.zeros(p.shape) if state is None else state.m[i]).astype(f)
            v = (np.zeros(p.shape) if state is None else state.v[i]).astype(f)
            vmax = np.asarray(round_to(initial_vmax(problem, dialect, i, p.shape),
                                       "float32")).astype(f)
            traj = [np.empty((problem.steps,) + p.shape) for _ in range(4)]
            for k in range(problem.steps):
                theta, m, v, vmax = adam_step(NUMPY_ARITH, dialect, consts[k][owner[i]],
                                              theta, m, v, vmax,
                                              problem.grads[i][k].astype(f))
                theta, m, v, vmax = (np.asarray(x, dtype=f) for x in (theta, m, v, vmax))
                for out, value in zip(traj, (theta, m, v, vmax), strict=True):
                    out[k] = value
            for q, out in zip(outs, traj, strict=True):
                outs[q].append(out)
    return Trace(outs["theta"], outs["m"], outs["v"], outs["vmax"], dialect.vmax_kind)


# --- the two reports ----------------------------------------------------------------------

def _applicable(corpus: Iterable, dtype: str) -> list:
    return [g for g in corpus if dtype in g.case.dtypes]


def spec_bounds(golden, dtype: str, cache: dict | None = None):
    """The spec's flush-mode bounds for a golden case (cached by case id and dtype)."""
    from adamconf.conformance.judge.bounds import error_bounds

    key = (golden.case.id, dtype, "flush")
    if cache is not None and key in cache:
        return cache[key]
    bounds = error_bounds(golden.case.problem, golden.reference, dtype)
    if cache is not None:
        cache[key] = bounds
    return bounds


def sensitivity_table(corpus: Sequence, dialects: Iterable[Dialect] | None = None, *,
                      limit: int | None = None, cache: dict | None = None
                      ) -> list[tuple[str, list[tuple[str, int]]]]:
    """Per dialect (spec excluded): the golden cases whose float32 run fails against the
    spec, each with its first failing step (1-based); at most ``limit`` per dialect."""
    from adamconf.conformance.judge.verdict import judge

    cases = _applicable(corpus, "float32")
    table = []
    for dialect in (dialects if dialects is not None else SEMANTIC_DIALECTS.values()):
        if dialect.name == "spec":
            continue
        catches: list[tuple[str, int]] = []
        for golden in cases:
            if limit is not None and len(catches) >= limit:
                break
            problem = golden.case.problem
            if not any(dialect.can_differ(g.config.amsgrad, g.config.maximize,
                                          g.config.weight_decay) for g in problem.groups):
                continue
            trace = dialect_float32(problem, dialect)
            verdict = judge(problem, golden.reference, trace, "float32",
                            bounds=spec_bounds(golden, "float32", cache))
            if verdict.status == "fail":
                catches.append((golden.case.id, verdict.first_failure["step"]))
        table.append((dialect.name, catches))
    return table


def ratios(problem: Problem, reference, trace: Trace, bounds) -> np.ndarray:
    """error/bound for every finite, conclusive value with a nonzero error."""
    out = []
    owner = problem.group_of_param()
    for name in ("theta", "m", "v", "vmax"):
        got = getattr(trace, name)
        if got is None:
            continue
        for i, (g, want, b, bad) in enumerate(zip(got, reference.quantity(name),
                                                  bounds.quantity(name),
                                                  bounds.inconclusive[name], strict=True)):
            if name == "vmax" and not problem.groups[owner[i]].config.amsgrad:
                continue
            with np.errstate(invalid="ignore"):
                err = np.abs(g - want)
            keep = np.isfinite(want) & np.isfinite(g) & ~bad & (err > 0)
            out.append((err[keep] / b[keep]).ravel())
    return np.concatenate(out) if out else np.zeros(0)


def tightness(corpus: Sequence, recipes: Iterable[Recipe] = CORRECT_FLOAT32, *,
              cache: dict | None = None) -> dict:
    """Per correct implementation: median, 99th percentile and max of error/bound over the
    corpus (values with a nonzero error, in conclusive regions), and how many values."""
    stats = {}
    for recipe in recipes:
        cases = _applicable(corpus, recipe.dtype)
        collected = [ratios(g.case.problem, g.reference, emulate(g.case.problem, recipe),
                            spec_bounds(g, recipe.dtype, cache)) for g in cases]
        r = np.concatenate(collected) if collected else np.zeros(0)
        stats[recipe.name] = {
            "median": float(np.median(r)) if r.size else math.nan,
            "p99": float(np.quantile(r, 0.99)) if r.size else math.nan,
            "max": float(np.max(r)) if r.size else math.nan,
            "count": int(r.size)}
    return stats
