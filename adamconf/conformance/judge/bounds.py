"""Derived error bounds: how far from the exact trajectory a faithful implementation in D may be.

:func:`error_bounds` runs a first-order (Wilkinson-style) forward error analysis along the
reference trajectory, vectorised over elements in float64 numpy. For every element and step
it bounds |θ̃ − θ|, |m̃ − m|, |ṽ − v| and |ṽmax − vmax| for *any* faithful implementation
working in dtype D: any of the algebraically equal orderings (lerp or two products,
√v/√(1−β2^t) or √v̂, lr/(1−β1^t) as one step size, the lr-folded form with ε·√(1−β2^t),
FMA contraction, float64 intermediates rounded once), hyperparameters exact or rounded to
the scalar format, β^t by pow or by a running product, with gradual underflow or with
subnormals flushed to zero. ``docs/error-model.md`` derives each term.

Where the linearisation breaks (a denominator's bound reaches half its value, 1 − β^t is not
resolved, an exact value lies outside D's range) the element is *inconclusive* from that step
on; the reasons are kept per element as a bit mask (:data:`REASONS`).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from adamconf.conformance.judge.enclosure import (
    Modes,
    Rounding,
    StepScalars,
    StepValues,
    chain_roundings,
    enclose_update,
)
from adamconf.reference.dialects import SPEC, Dialect
from adamconf.reference.floats import FloatFormat, as_format, get_format, round_to
from adamconf.reference.problem import Problem, Trajectory
from adamconf.reference.step import initial_vmax  # the resume convention of raw-vmax dialects

__all__ = ["Bounds", "error_bounds", "cached_bounds", "cached_kept_bounds", "REASONS",
           "describe_reasons", "scalar_format", "scalar_format_of",
           "UNDERFLOW_MODES", "RANGE", "DENOMINATOR", "BIAS_CORRECTION", "BOUND_NOT_FINITE",
           "NONFINITE_POSSIBLE"]

QUANTITIES = Trajectory.QUANTITIES
UNDERFLOW_MODES = ("flush", "gradual")
_DECAYS = ("decoupled", "decoupled-lr0", "decoupled-nolr", "decoupled-lr-ratio", "after")  # θ·(1 − ·λ) somewhere

# Why an element is inconclusive: bits of the per-element mask.
RANGE = 1
DENOMINATOR = 2
BIAS_CORRECTION = 4
BOUND_NOT_FINITE = 8
NONFINITE_POSSIBLE = 16
REASONS: dict[int, str] = {
    RANGE: "an exact value lies outside the range of {dtype}",
    DENOMINATOR: "the denominator's bound reaches half its value, and the non-linear "
                 "enclosure does not decide (a denominator near 0: the update may leave the "
                 "range of {dtype})",
    BIAS_CORRECTION: "1 − β^t is not resolved in the scalar format (bound ≥ half its value)",
    BOUND_NOT_FINITE: "the error bound is not finite",
    NONFINITE_POSSIBLE: "a non-finite value where a faithful evaluation may be non-finite "
                        "too (an intermediate beyond the range of {dtype}, or a divisor of 0 "
                        "where ε is not kept)",
}

_TINIEST = math.ldexp(1.0, -1074)  # the smallest positive float64
_FLOAT32 = get_format("float32")
_FLOAT64 = get_format("float64")

# Rounding constants, each covering the orderings named beside it.
POW_HALF_ULPS = 4   # β^t by a pow accurate to 2 ulp of its result (CUDA's powf)
C_STEP_SCALARS = 3  # γ/(1−β1^t), γ·√(1−β2^t)/(1−β1^t), ε/step: up to three roundings in S


def describe_reasons(bits: int, dtype: str) -> list[str]:
    return [text.format(dtype=dtype) for bit, text in REASONS.items() if bits & bit]


_HELD_AS_THEMSELVES = ("float64", "float32")  # dtypes whose scalars are held in themselves


def scalar_format(dtype: str) -> str:
    """The format hyperparameters and step scalars are assumed held in, at least.

    D itself for float64 and float32. For float16 and bfloat16 at least float32: every
    framework keeps them as Python floats or float32 tensors (opmath), and rounding them to
    the 16-bit format is not Adam any more — β2 = 0.999 is 1.0 in bfloat16 and ε = 1e-8 is
    0 in float16.
    """
    return dtype if dtype in _HELD_AS_THEMSELVES else "float32"


def scalar_format_of(fmt: FloatFormat) -> FloatFormat:
    """:func:`scalar_format` of a format already resolved: ``fmt`` itself, or float32."""
    return fmt if fmt.name in _HELD_AS_THEMSELVES else _FLOAT32


class _Format:
    """What the model needs about one format, with the underflow mode in force."""

    def __init__(self, fmt: FloatFormat, flush: bool) -> None:
        self.fmt = fmt
        self.u = fmt.unit_roundoff
        self.eta = fmt.smallest_normal
        self.max = fmt.max
        self.emin = fmt.emin
        self.flush = flush

    def half_ulp(self, a: np.ndarray) -> np.ndarray:
        """½ulp of a magnitude a ≥ 0 (u·2^⌊log2 a⌋, at least half the smallest subnormal).

        For float64 subnormals that is 2^-1075, which float64 itself rounds to 0: the bound
        takes 2^-1074 there (the analysis runs in float64 too).
        """
        _, e = np.frexp(a)
        exponent = np.where(a == 0, self.emin, np.maximum(e - 1, self.emin))
        return np.maximum(np.ldexp(self.u, exponent), _TINIEST)

    def rnd(self, r, err=0.0) -> np.ndarray:
        """The rounding error of one operation whose exact result has magnitude r.

        The computed operand lies within ``err`` of r, so the rounded value is off by at
        most ½ulp(r + err) and by at most its own magnitude (rounding to 0 is the worst a
        tiny result can do); flushing a result below the smallest normal η costs up to
        min(η, r + err).
        """
        a = r + err
        h = np.minimum(self.half_ulp(a), a)
        if self.flush:
            h = np.where(r - err < self.eta, np.maximum(h, np.minimum(self.eta, a)), h)
        return h

    def input_error(self, x: np.ndarray) -> np.ndarray:
        """An input value's error on entry: its rounding to D, and a flush of a subnormal."""
        with np.errstate(invalid="ignore"):
            err = np.abs(round_to(x, self.fmt) - x)
        err = np.where(np.isfinite(x), err, 0.0)
        if self.flush:
            err = err + np.where(np.abs(x) < self.eta, np.abs(x), 0.0)
        return err

    def outside(self, x: np.ndarray) -> np.ndarray:
        return np.isfinite(x) & (np.abs(x) > self.max)


def _flushed(D: _Format, r: np.ndarray, err) -> np.ndarray:
    """What flushing costs a result of exact magnitude r computed within ``err``: its
    computed value, below η, may become 0."""
    return np.where(r - err < D.eta, np.minimum(D.eta, r + err), 0.0)


def _sqrt_error(x: np.ndarray, err: np.ndarray) -> np.ndarray:
    """max |√x̃ − √x| over x̃ ≥ 0 with |x̃ − x| ≤ err: E/(2√x) for small E, √E at x = 0."""
    up = err / (np.sqrt(x + err) + np.sqrt(x))
    down = np.where(err <= x, err / (np.sqrt(x) + np.sqrt(np.maximum(x - err, 0.0))),
                    np.sqrt(x))
    return np.where(err > 0, np.maximum(up, down), 0.0)


@dataclass
class Bounds:
    """Per parameter, per step: bounds on |observed − reference| for θ, m, v and vmax.

    Arrays have the trajectory's shapes (steps, *param.shape); a bound is NaN where the
    reference value is not finite (such values are compared by class: NaN, +∞, −∞).
    ``reasons[q][i]`` is a uint8 bit mask per element (0: conclusive; see :data:`REASONS`);
    ``inconclusive[q][i]`` is ``reasons != 0``. ``nan_ok[q][i]`` marks infinite reference
    values for which NaN is as faithful (an ordering turns ∞ − ∞ into NaN there).
    ``enclosed[q][i]`` marks values whose bound the non-linear enclosure gave (there, or
    carried from a step it decided: :mod:`.enclosure`). It bounds finite outcomes; where it
    shows every faithful evaluation finite, a non-finite value fails, and
    ``finite_only[q][i]`` marks where it does not (an intermediate may leave D's range, or
    a divisor round to 0 with ε not kept). Both are all False where not given.
    """

    dtype: str
    dialect: str
    underflow: str
    scalar_dtype: str
    theta: list[np.ndarray]
    m: list[np.ndarray]
    v: list[np.ndarray]
    vmax: list[np.ndarray]
    reasons: dict[str, list[np.ndarray]]
    nan_ok: dict[str, list[np.ndarray]]
    enclosed: dict[str, list[np.ndarray]] | None = None
    finite_only: dict[str, list[np.ndarray]] | None = None
    second_moment_kept: bool = False  # see error_bounds(keep_second_moment=)
    inconclusive: dict[str, list[np.ndarray]] = field(init=False)

    def __post_init__(self) -> None:
        self.inconclusive = {q: [r != 0 for r in self.reasons[q]] for q in QUANTITIES}
        for name in ("enclosed", "finite_only"):
            if getattr(self, name) is None:
                setattr(self, name, {q: [np.zeros(r.shape, dtype=bool) for r in self.reasons[q]]
                                     for q in QUANTITIES})

    def quantity(self, name: str) -> list[np.ndarray]:
        return getattr(self, name)


@dataclass(frozen=True)
class _Scalars:
    """Per step (shape (steps, 1)): exact value and absolute error bound of each scalar."""

    lr: np.ndarray
    e_lr: np.ndarray
    beta1: float
    e_beta1: float
    beta2: float
    e_beta2: float
    omb1: float
    e_omb1: float
    omb2: float
    e_omb2: float
    eps: float
    e_eps: float
    wd: float
    e_wd: float
    bc1: np.ndarray
    rel_bc1: np.ndarray
    bc2: np.ndarray
    rel_bc2: np.ndarray


def _scalar_error(x, S: _Format, D: _Format, dtype_differs: bool):
    """A hyperparameter's error where it meets D: rounded to S, then to D if D is narrower."""
    x = np.asarray(x, dtype=np.float64)
    err = S.input_error(x)
    if dtype_differs:
        err = err + D.input_error(round_to(x, S.fmt))
    return err


def _bias_correction(beta: float, e_beta: float, t: np.ndarray, S: _Format
                     ) -> tuple[np.ndarray, np.ndarray]:
    """1 − β^t and the relative error bound of its computed value, per step.

    β̃ = β(1+δ) gives β̃^t = β^t(1+δ)^t. Then either pow, accurate to 2 ulp of its result
    (CUDA's powf; glibc's is better), or a running product, t − 1 roundings of at most u
    each. A step count held in the scalar format may itself be rounded (t > 2^24 in
    float32): β^(t+Δ) = β^t·e^(Δ·ln β).
    """
    t = np.asarray(t, dtype=np.float64)
    if beta == 0.0:
        return np.where(t == 0, 0.0, 1.0), np.zeros_like(t)
    if beta == 1.0 and e_beta == 0.0:  # a β held rounded to 1: 1^t = 1 by pow or product
        return np.zeros_like(t), np.zeros_like(t)
    log_beta = math.log(beta)
    power = np.exp(t * log_beta)
    bc = -np.expm1(t * log_beta)  # accurate when β^t is near 1
    # the largest β̃^t̃, in logs (β^t may underflow while (1+δ)^t overflows)
    t_error = np.abs(round_to(t, S.fmt) - t)
    log_excess = t * math.log1p(e_beta / beta) + abs(log_beta) * t_error
    perturbed = np.exp(t * log_beta + log_excess)
    e_power = np.where(log_excess < 1e-3, power * np.expm1(log_excess), perturbed - power)
    e_power = e_power + np.maximum(
        POW_HALF_ULPS * S.half_ulp(perturbed),
        perturbed * np.expm1(np.maximum(t - 1, 0.0) * S.u))
    # a result rounded to 0 or flushed is off by β^t itself, at most
    e_power = np.where(t == 0, 0.0, np.maximum(e_power, S.rnd(power, e_power)))  # β^0 = 1
    e_bc = e_power + S.rnd(bc, e_power)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(bc > 0, e_bc / bc, np.where(e_bc > 0, np.inf, 0.0))
    return bc, rel


def _narrower(fmt: FloatFormat | None, than: _Format, flush: bool) -> _Format | None:
    """The format a precision switch names, where it is narrower than ``than`` (else the
    switch changes nothing the bound does not already cover)."""
    if fmt is None:
        return None
    if fmt.precision >= than.fmt.precision and fmt.emin <= than.fmt.emin:
        return None
    return _Format(fmt, flush=flush)


def _scalars(problem: Problem, group_index: int, dialect: Dialect, D: _Format, S: _Format
             ) -> _Scalars:
    group = problem.groups[group_index]
    cfg = group.config
    steps = problem.steps
    differs = S.fmt.name != D.fmt.name

    def err(x):
        return _scalar_error(x, S, D, differs)

    lr = np.full(steps, cfg.lr) if group.lrs is None else np.asarray(group.lrs, dtype=float)
    beta1, beta2 = cfg.beta1, cfg.beta2
    e_beta1, e_beta2 = float(err(beta1)), float(err(beta2))
    omb1, omb2 = cfg.one_minus_betas
    # 1 − β̃ is exact (Sterbenz) or rounded once in S; then maybe rounded to D
    e_omb1 = float(S.input_error(np.array(beta1))) + float(S.rnd(omb1)) + (
        float(D.rnd(omb1)) if differs else 0.0)
    e_omb2 = float(S.input_error(np.array(beta2))) + float(S.rnd(omb2)) + (
        float(D.rnd(omb2)) if differs else 0.0)
    if problem.unrounded is not None:
        # hyperparameters rounded where they meet an array: 1 − β may be rounded there from
        # the β passed rather than computed from the rounded β
        passed = problem.unrounded.groups[group_index].config
        # (with the roundings of the product it then meets, as a relative 4u_D of it); the
        # problem may hold 1 − β from the β passed (a β held as 1.0): 1 − β of the rounded
        # β is then the other choice, except where that β is 1.0 (1 − β = 0 freezes m or v:
        # another algorithm, not a rounding of this one)
        slack = 1.0 + 4 * D.u

        def other_choices(beta_passed, beta_held, omb):
            if beta_held == 1.0:  # 1 − β = 0 (frozen) or of the β passed: two algorithms
                return 0.0
            return max(abs(c - omb) for c in (float(round_to(1.0 - beta_passed, D.fmt)),
                                              1.0 - beta_held))

        e_omb1 += slack * other_choices(passed.beta1, beta1, omb1)
        e_omb2 += slack * other_choices(passed.beta2, beta2, omb2)
    t = problem.initial_step + np.arange(steps, dtype=np.float64) + 1 + dialect.step_offset
    bias_off = not dialect.bias_correction or (cfg.amsgrad and dialect.amsgrad_mode == "paper")
    if bias_off:
        bc1 = bc2 = np.ones(steps)
        rel_bc1 = rel_bc2 = np.zeros(steps)
    elif group.held_powers is not None:
        # β^t handed as inputs (a rounded problem's): 1 − β^t from them, rounded once in S
        bc1, bc2 = 1.0 - group.held_powers[:, 0], 1.0 - group.held_powers[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            rel_bc1, rel_bc2 = (np.where(bc > 0, S.rnd(bc) / bc, 0.0) for bc in (bc1, bc2))
        if differs:
            with np.errstate(divide="ignore", invalid="ignore"):
                rel_bc1 = rel_bc1 + np.where(bc1 > 0, D.rnd(bc1) / bc1, 0.0)
                rel_bc2 = rel_bc2 + np.where(bc2 > 0, D.rnd(bc2) / bc2, 0.0)
    else:
        # β^t in a narrower format (a precision switch): β rounded there, then pow or a
        # running product there
        beta_format = (None if dialect.beta_power is None else _narrower(
            _FLOAT32 if dialect.beta_power == "float32" else D.fmt, S, S.flush))
        P = beta_format or S
        bc1, rel_bc1 = _bias_correction(beta1, float(P.input_error(np.array(beta1))), t, P)
        bc2, rel_bc2 = _bias_correction(beta2, float(P.input_error(np.array(beta2))), t, P)
        if problem.unrounded is not None:
            # hyperparameters rounded where they meet an array: the bias corrections, scalar
            # work, may still use β as passed
            passed = problem.unrounded.groups[group_index].config
            with np.errstate(divide="ignore", invalid="ignore"):
                for beta_passed, bc, rel in ((passed.beta1, bc1, rel_bc1),
                                             (passed.beta2, bc2, rel_bc2)):
                    other = np.where(t == 0, 0.0, -np.expm1(t * math.log(beta_passed))) \
                        if beta_passed > 0 else np.where(t == 0, 0.0, 1.0)
                    rel += np.where(bc > 0, np.abs(other - bc) / bc, 0.0)
        if differs:  # rounded once more where it meets D (subnormal there, maybe)
            with np.errstate(divide="ignore", invalid="ignore"):
                rel_bc1 = rel_bc1 + np.where(bc1 > 0, D.rnd(bc1) / bc1, 0.0)
                rel_bc2 = rel_bc2 + np.where(bc2 > 0, D.rnd(bc2) / bc2, 0.0)

    def col(a):
        return np.asarray(a, dtype=np.float64).reshape(steps, 1)

    return _Scalars(
        lr=col(lr), e_lr=col(err(lr)), beta1=beta1, e_beta1=e_beta1, beta2=beta2,
        e_beta2=e_beta2, omb1=omb1, e_omb1=e_omb1, omb2=omb2, e_omb2=e_omb2,
        eps=cfg.eps, e_eps=float(err(cfg.eps)), wd=cfg.weight_decay,
        e_wd=float(err(cfg.weight_decay)), bc1=col(bc1), rel_bc1=col(rel_bc1), bc2=col(bc2),
        rel_bc2=col(rel_bc2))


def _previous(initial: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The value before each step: the initial value, then the trajectory shifted by one."""
    return np.concatenate([initial.reshape(1, -1), values[:-1]], axis=0)


def _flag(condition, bit: int) -> np.ndarray:
    return np.where(condition, bit, 0).astype(np.uint8)


class _Rounding:
    """In-loop rounding bound for a stored or propagated value x (magnitudes, per step).

    ½ulp(x̃) for |x̃ − x| ≤ E is ½ulp(x) while x + E stays in x's binade and at most
    u·(x + E) beyond it, so max(½ulp(x), u·(x + E)) bounds it without a frexp per step.
    """

    def __init__(self, D: _Format, x: np.ndarray) -> None:
        self.D, self.x, self.half = D, x, D.half_ulp(x)

    def __call__(self, k: int, err) -> np.ndarray:
        D, x = self.D, self.x[k]
        a = x + err
        h = np.minimum(np.maximum(self.half[k], D.u * a), a)
        if D.flush:
            h = np.where(x - err < D.eta, np.maximum(h, np.minimum(D.eta, a)), h)
        return h


def _carry(own: dict, coupled: bool, max_uses_v: bool, union, dtype) -> dict:
    """Carry per-step causes forward along the steps and along the data dependencies.

    m and v depend on g; v̂max on v; θ on all of them; with L2 weight decay g depends on
    the previous θ, so every chain then carries θ's causes from the step before.
    """
    def acc(x):
        return union.accumulate(x, axis=0) if x.shape[0] else x

    g = acc(own["g"])
    m = acc(union(own["m"], g))
    v = acc(union(own["v"], g))
    vmax = acc(union(own["vmax"], v) if max_uses_v else own["vmax"])
    theta = acc(union(union(union(own["theta"], m), v), vmax))
    if coupled:  # g ← g + λθ: θ's causes reach everything from the next step on
        theta = acc(union(union(union(union(own["theta"], own["m"]), own["v"]),
                                own["vmax"]), own["g"]))
        before = np.zeros_like(theta)
        before[1:] = theta[:-1]
        m, v = union(m, before), union(v, before)
        vmax = union(vmax, before) if max_uses_v else vmax
        theta = union(theta, m)
    return {"theta": theta.astype(dtype), "m": m.astype(dtype), "v": v.astype(dtype),
            "vmax": vmax.astype(dtype)}


@dataclass(frozen=True)
class _ParamInputs:
    """One group's parameters' stored values, flattened and side by side to (steps, n), and
    the options in force.

    θ, m, v, vmax are the reference after each step; θ′, m′, v′ (``*_p``) the values before
    it; ``*0`` the initial state. ``l2`` and ``decoupled`` say how a nonzero λ enters.
    """

    steps: int
    n: int
    sc: _Scalars
    maximize: bool
    amsgrad_mode: str  # the dialect's, or "off" without amsgrad
    eps_mode: str
    weight_decay_mode: str
    l2: bool
    decoupled: bool  # θ·(1 − ·λ) before the update, or after it (weight_decay_mode "after")
    theta: np.ndarray
    m: np.ndarray
    v: np.ndarray
    vmax: np.ndarray
    theta0: np.ndarray
    m0: np.ndarray
    v0: np.ndarray
    vmax0: np.ndarray
    theta_p: np.ndarray
    m_p: np.ndarray
    v_p: np.ndarray
    grad: np.ndarray
    overflow: dict[str, np.ndarray] | None  # exact values the reference stores as ±∞
    scalar: FloatFormat = _FLOAT32  # the format the scalars are held in
    # the lr a decoupled decay scales by: the constructor's ("decoupled-lr0"), the group's
    # largest ("decoupled-lr-ratio", as γ_t/γ_max)
    lr0: float = 0.0
    drops_nan: bool = False  # the max drops a NaN operand (fmax): so do its errors
    e_lr0: float = 0.0
    vmax_p: np.ndarray | None = None  # v̂max (or the dialect's max) before each step

    @property
    def uses_max(self) -> bool:
        """Whether the denominator reads a running max of v (v̂max, raw vmax or the paper's)."""
        return self.amsgrad_mode in ("max-hat", "max-raw", "paper")


def _param_inputs(problem: Problem, reference: Trajectory, indices: Sequence[int],
                  dialect: Dialect, D: _Format, S: _Format) -> _ParamInputs:
    """Parameters ``indices`` of one group side by side (every value is judged element by
    element, so they share one pass): their reference, their state before each step, and
    the group's options."""
    steps = problem.steps
    owner = problem.group_of_param()
    gi = owner[indices[0]]
    if any(owner[i] != gi for i in indices):
        raise ValueError("parameters judged together must be of one group")
    params = [problem.params[i] for i in indices]
    n = sum(p0.size for p0 in params)
    cfg = problem.groups[gi].config
    sc = _scalars(problem, gi, dialect, D, S)
    state = problem.initial_state

    def joined(arrays, per_step=True, dtype=np.float64):
        """The parameters' arrays flattened and side by side: (steps, n), or (n,)."""
        return np.concatenate([np.asarray(a, dtype=dtype).reshape(
            (steps, p0.size) if per_step else (p0.size,)) for a, p0 in zip(arrays, params)],
            axis=-1)

    def ref(name):
        values = reference.quantity(name)
        return joined([values[i] for i in indices])

    theta, m, v, vmax = ref("theta"), ref("m"), ref("v"), ref("vmax")
    theta0 = joined(params, per_step=False)
    if state is None:
        m0, v0 = np.zeros(n), np.zeros(n)
    else:
        m0 = joined([state.m[i] for i in indices], per_step=False)
        v0 = joined([state.v[i] for i in indices], per_step=False)
    vmax0 = joined([initial_vmax(problem, dialect, i, problem.params[i].shape)
                    for i in indices], per_step=False)
    theta_p, m_p, v_p = (_previous(x0, x) for x0, x in ((theta0, theta), (m0, m), (v0, v)))
    wd_mode = dialect.weight_decay_mode
    lr0 = problem.groups[gi].max_lr if wd_mode == "decoupled-lr-ratio" else cfg.lr
    return _ParamInputs(
        steps=steps, n=n, sc=sc, maximize=cfg.maximize,
        amsgrad_mode=dialect.amsgrad_mode if cfg.amsgrad else "off",
        eps_mode=dialect.eps_mode, weight_decay_mode=wd_mode,
        l2=wd_mode in ("l2", "maximize-after-wd") and sc.wd != 0.0,
        decoupled=wd_mode in _DECAYS and sc.wd != 0.0,
        theta=theta, m=m, v=v, vmax=vmax, theta0=theta0, m0=m0, v0=v0, vmax0=vmax0,
        theta_p=theta_p, m_p=m_p, v_p=v_p, vmax_p=_previous(vmax0, vmax),
        grad=joined([problem.grads[i] for i in indices]),
        scalar=S.fmt, drops_nan=dialect.max_nan == "drop", lr0=lr0,
        e_lr0=float(_scalar_error(lr0, S, D, S.fmt.name != D.fmt.name)),
        overflow=None if reference.overflow is None else {
            q: joined([reference.overflow[q][i] for i in indices], dtype=bool)
            for q in QUANTITIES})


@dataclass(frozen=True)
class _Exact:
    """The exact intermediates of each step, recomputed from the stored trajectory."""

    decay: np.ndarray | None  # 1 − γλ, with decoupled decay only
    theta_start: np.ndarray  # θ after the decoupled decay, before the update
    g: np.ndarray
    ag: np.ndarray  # |g|
    g2: np.ndarray  # g²
    a_mp: np.ndarray  # |m′|
    diff_m: np.ndarray  # |g − m′|
    diff_v: np.ndarray  # |g² − v′|
    vhat: np.ndarray  # v/(1−β2^t)
    second: np.ndarray  # the second moment the denominator uses, raw (V) or corrected (V̂)
    corrected: bool  # whether ``second`` is already bias-corrected
    second_hat: np.ndarray
    s: np.ndarray  # √second_hat
    d: np.ndarray  # the denominator
    mhat: np.ndarray  # |m|/(1−β1^t)
    ratio: np.ndarray  # m̂/d
    step_scale: np.ndarray  # √(1−β2^t) with ε-hat, else 1
    q: np.ndarray  # |update| = γ·step_scale·m̂/d


def _decay_lr(p: _ParamInputs) -> np.ndarray:
    """The lr the decoupled decay multiplies λ by: γ_t, the constructor's γ, or 1."""
    if p.weight_decay_mode == "decoupled-nolr":
        return np.ones_like(p.sc.lr)
    if p.weight_decay_mode == "decoupled-lr0":
        return np.full_like(p.sc.lr, p.lr0)
    if p.weight_decay_mode == "decoupled-lr-ratio":
        return p.sc.lr / p.lr0 if p.lr0 else np.ones_like(p.sc.lr)
    return p.sc.lr


def _exact(p: _ParamInputs) -> _Exact:
    """g = ±∇ + λθ′; v̂ = v/(1−β2^t); d = √v̂ + ε (or √(v̂ + ε)); q = γ·m̂/d, per dialect."""
    sc = p.sc
    wd, lr, eps = sc.wd, sc.lr, sc.eps
    bc1, bc2 = sc.bc1, sc.bc2
    amsgrad_mode, eps_mode = p.amsgrad_mode, p.eps_mode
    theta_p, m_p, v_p = p.theta_p, p.m_p, p.v_p
    if p.decoupled:
        decay = 1.0 - _decay_lr(p) * wd
        # θ after the decoupled decay, before the update (decayed after it: θ′ itself)
        theta_start = theta_p if p.weight_decay_mode == "after" else theta_p * decay
    else:
        decay = None
        theta_start = theta_p
    sign = -1.0 if p.maximize else 1.0
    if p.weight_decay_mode == "maximize-after-wd":
        g = sign * (p.grad + wd * theta_p) if p.l2 else sign * p.grad
    else:
        g = sign * p.grad + wd * theta_p if p.l2 else sign * p.grad
    ag = np.abs(g)
    g2 = g * g
    a_mp = np.abs(m_p)
    diff_m, diff_v = np.abs(g - m_p), np.abs(g2 - v_p)

    # the second moment the denominator uses: raw (V) or already bias-corrected (V̂)
    vhat = p.v / bc2
    if amsgrad_mode == "paper":
        second, corrected = p.vmax, True  # no bias correction at all: the max itself
    elif amsgrad_mode == "max-hat":
        second, corrected = (p.vmax * bc2, False) if eps_mode == "hat" else (p.vmax, True)
    elif amsgrad_mode == "max-raw":
        second, corrected = p.vmax, False
    else:
        second, corrected = p.v, False
    if eps_mode == "hat":
        second_hat = second  # ε-hat never bias-corrects the second moment
    else:
        second_hat = second if corrected else second / bc2
    s = np.sqrt(second_hat)
    if eps_mode == "inside-sqrt":
        d = np.sqrt(second_hat + eps)
    elif eps_mode == "floor":
        d = np.maximum(s, eps)
    else:
        d = s + eps
    mhat = np.abs(p.m) / bc1
    ratio = mhat / d
    # ε-hat moves √(1−β2^t) into the step size: γ·√(1−β2^t)/(1−β1^t)·m/(√v + ε)
    step_scale = np.sqrt(bc2) if eps_mode == "hat" else np.ones_like(bc2)
    q = lr * step_scale * ratio  # |update|
    return _Exact(decay=decay, theta_start=theta_start, g=g, ag=ag, g2=g2, a_mp=a_mp,
                  diff_m=diff_m, diff_v=diff_v, vhat=vhat, second=second, corrected=corrected,
                  second_hat=second_hat, s=s, d=d, mhat=mhat, ratio=ratio,
                  step_scale=step_scale, q=q)


def _out_of_range(p: _ParamInputs, x: _Exact, D: _Format) -> dict[str, np.ndarray]:
    """Per quantity, where an exact value it depends on lies outside D's range (or beyond
    float64's, where the reference could only store it as ±∞)."""
    sc = p.sc
    # A value that is not finite although no input was and nothing was divided by an exact
    # zero is an exact value beyond float64's range (the reference stores it as ±∞).
    bad_input = ~np.isfinite(p.grad) | ~np.isfinite(p.theta0) | ~np.isfinite(
        p.m0) | ~np.isfinite(p.v0) | ~np.isfinite(p.vmax0) | (x.d == 0) | (sc.bc1 == 0) | (
        sc.bc2 == 0)
    explained = np.logical_or.accumulate(bad_input, axis=0)

    def outside(value):
        return D.outside(value) | (~np.isfinite(value) & ~explained)

    # the lr-folded form's quotient m/(√v + ε√bc2)
    folded = x.ratio * sc.bc1 / np.sqrt(sc.bc2)
    out = {
        "g": outside(x.g) | (outside(sc.wd * p.theta_p) if p.l2 else False),
        "m": outside(p.m),
        "v": outside(x.g2) | outside(p.v),
        "vmax": outside(p.vmax) | (outside(x.vhat) if p.amsgrad_mode == "max-hat" else False),
        "theta": (outside(p.theta) | outside(x.theta_start) | outside(x.d) | outside(x.s)
                  | outside(x.second_hat) | outside(x.mhat) | outside(x.ratio) | outside(x.q)
                  | outside(folded)),
    }
    if p.overflow is not None:  # exact values the reference could only store as ±∞
        for name in QUANTITIES:
            out[name] |= p.overflow[name]
    return out


def _lerp_nan(p: _ParamInputs, x: _Exact) -> tuple[np.ndarray, np.ndarray]:
    """Where an infinite m (resp. v) may come out as NaN under an allowed ordering.

    An infinite moment stays infinite as β·m + (1−β)·g, but a lerp can make it ∞ − ∞ =
    NaN: m + (1−β)(g − m) when m is infinite, g − (g − m)·β (torch, 1−β ≥ ½) when g is;
    NaN then propagates, so NaN is acceptable from there on.
    """
    lerp_nan_m = np.isinf(p.m) & (np.isinf(p.m_p) | np.isinf(x.g))
    lerp_nan_v = np.isinf(p.v) & (np.isinf(p.v_p) | np.isinf(x.g2))
    return lerp_nan_m, lerp_nan_v


@dataclass(frozen=True)
class _FlushedProducts:
    """Exact products whose computed value a flush to zero may lose (magnitudes, per step)."""

    b1_mp: np.ndarray  # β1·|m′|
    w1_g: np.ndarray  # (1−β1)·|g|
    lerp1_dm: np.ndarray  # the lerp's factor · |g − m′|
    b2_vp: np.ndarray  # β2·v′
    w2_g2: np.ndarray  # (1−β2)·g²
    lerp2_dv: np.ndarray  # the lerp's factor · |g² − v′|
    w2_g: np.ndarray  # (1−β2)·|g|


@dataclass(frozen=True)
class _Sources:
    """Per step, the error terms that do not propagate along the steps."""

    e_grad_in: np.ndarray  # the gradient's rounding to D on entry
    e_decay: np.ndarray | None  # E[1 − γλ], with decoupled decay only
    lerp1: float  # the factor the lerp multiplies (g − m′) by
    lerp2: float  # the factor the lerp multiplies (g² − v′) by
    src_m: np.ndarray  # scalar errors and roundings of m's update
    src_v: np.ndarray  # scalar errors and roundings of v's update
    src_ratio: np.ndarray  # roundings of m̂ and m̂/d
    src_q: np.ndarray  # the step scalars' roundings and γ's error in q
    rnd_s: np.ndarray  # roundings of √v̂ (and of the forms that reach it)
    rnd_d: np.ndarray  # the rounding of d
    hat_share: float  # √(1−β2^t)'s roundings in the lr-folded form over v̂max
    half_bc2: np.ndarray  # E[√(1−β2^t)]/√(1−β2^t), ≥ ½·rel_bc2
    bc2_share_all: np.ndarray  # ½rel·(1 + ε/d): √(1−β2^t) apart, in the step size and ε
    bc2_in_d_all: np.ndarray  # ½rel·√v̂/d: 1−β2^t's error through √v̂
    eps_extra: float  # ε's error, and its roundings in the folded forms
    flushed: _FlushedProducts | None  # with the flush model only
    inexact: np.ndarray  # v (or m) nonzero below float64's normal range: stored inexactly


def _sources(p: _ParamInputs, x: _Exact, D: _Format, S: _Format, F64: _Format) -> _Sources:
    """The orderings' own roundings and the scalars' errors (error-model.md terms 2, 5, 8, 9),
    vectorised over steps; what depends on the carried error is left to the recurrence."""
    sc = p.sc
    G = _Format(D.fmt, flush=False)  # D's roundings without the flush terms
    b1, b2, w1, w2 = sc.beta1, sc.beta2, sc.omb1, sc.omb2
    wd, lr, eps, u_s = sc.wd, sc.lr, sc.eps, S.u
    ag, g2, a_mp, diff_m, diff_v, v_p = x.ag, x.g2, x.a_mp, x.diff_m, x.diff_v, p.v_p
    if p.decoupled:
        lr_decay = _decay_lr(p)
        e_lr_decay = {"decoupled-nolr": 0.0, "decoupled-lr0": p.e_lr0,
                      "decoupled-lr-ratio": (sc.e_lr / p.lr0 + sc.lr * p.e_lr0 / p.lr0 ** 2
                                             + 2 * u_s * sc.lr / p.lr0) if p.lr0 else 0.0
                      }.get(p.weight_decay_mode, sc.e_lr)
        e_decay = (e_lr_decay * wd + lr_decay * sc.e_wd + u_s * lr_decay * wd
                   + S.rnd(np.abs(x.decay)))
    else:
        e_decay = None
    e_grad_in = D.input_error(p.grad)
    # m ← β1·m + (1−β1)·g | the lerp m + (1−β1)(g − m) | g − (g − m)·β1 (torch, weight ≥ ½)
    # (torch's lerp takes the second form for weight 1−β1 ≥ ½, with 1 − weight rounded)
    src_m = np.maximum(sc.e_beta1 * a_mp + sc.e_omb1 * ag,
                       (sc.e_omb1 + (u_s * b1 if w1 >= 0.5 else 0.0)) * diff_m)
    lerp1 = b1 if w1 >= 0.5 else w1  # the factor the lerp multiplies (g − m) by
    src_m += np.maximum(G.rnd(b1 * a_mp) + G.rnd(w1 * ag),
                        lerp1 * G.rnd(diff_m) + G.rnd(lerp1 * diff_m))
    # v = (1−β2)·g² with a tiny g can be nonzero yet below float64's normal range, where
    # neither the stored v nor g² in float64 resolves it: v is then known to within η64,
    # which √v/(1−β2^t) turns into an error that matters only where ε is tinier still
    nonzero_v = (x.g != 0) if b2 == 0 else (np.logical_or.accumulate(x.g != 0, axis=0)
                                            | (p.v0 != 0))
    inexact = nonzero_v & (np.abs(p.v) < F64.eta)
    unresolved_v = np.where(inexact, F64.eta, 0.0)
    inexact = inexact | ((p.m != 0) & (np.abs(p.m) < F64.eta))
    # v ← β2·v + (1−β2)·g² | the lerp forms; g² rounded, or (1−β2)·g rounded then ·g
    src_v = np.maximum(sc.e_beta2 * v_p + sc.e_omb2 * g2,
                       (sc.e_omb2 + (u_s * b2 if w2 >= 0.5 else 0.0)) * diff_v)
    lerp2 = b2 if w2 >= 0.5 else w2
    src_v += np.maximum(G.rnd(b2 * v_p) + G.rnd(w2 * g2),
                        lerp2 * G.rnd(diff_v) + G.rnd(lerp2 * diff_v))
    src_v += np.maximum(w2 * G.rnd(g2), ag * G.rnd(w2 * ag)) + unresolved_v
    # the update: m̂ = m/(1−β1^t), m̂/d, γ·(m̂/d) (or m/d then ·γ/(1−β1^t)); step scalars in S
    src_ratio = G.rnd(x.mhat) / x.d + G.rnd(x.ratio)
    # flushing an intermediate depends on its computed value, so on the error carried into
    # it: those terms are added in the loop (β1·m̃ may fall below η though β1·m does not)
    flushed = _FlushedProducts(
        b1_mp=b1 * a_mp, w1_g=w1 * ag, lerp1_dm=lerp1 * diff_m, b2_vp=b2 * v_p,
        w2_g2=w2 * g2, lerp2_dv=lerp2 * diff_v, w2_g=w2 * ag) if D.flush else None
    src_q = C_STEP_SCALARS * u_s * x.q + sc.e_lr * x.step_scale * x.ratio
    src_q += _tiny_step_scalars(sc, D, u_s) * x.q
    src_q += _subnormal_products(p, x, D, S)
    rnd_s, rnd_d = D.rnd(x.s), D.rnd(x.d)
    cast = D.u if S.fmt.name != D.fmt.name else 0.0  # a scalar rounded to D where used
    hat_share = 0.0
    if p.eps_mode in ("outside", "floor") and not x.corrected:
        # √v̂ after v̂ = V/(1−β2^t), or √V/√(1−β2^t): two more roundings, one of them in S
        rnd_s = rnd_s + (D.u + u_s) * x.s
    elif p.eps_mode == "outside" and p.amsgrad_mode == "max-hat":
        # the lr-folded form still applies to √v̂max: γ√bc2/bc1·m/(√v̂max·√bc2 + ε√bc2),
        # with √bc2 rounded apart in each of its three places, and one more product
        rnd_s = rnd_s + D.u * x.s
        hat_share = 2 * (u_s + cast)
    half_bc2 = 1.0 - np.sqrt(1.0 - np.minimum(sc.rel_bc2, 1.0))  # √(1−β2^t): ≥ ½·rel
    bc2_share_all = half_bc2 * (1.0 + eps / x.d)
    bc2_in_d_all = half_bc2 * x.s / x.d
    eps_extra = sc.e_eps + (2 * u_s * eps if p.eps_mode == "outside" else 0.0)
    return _Sources(e_grad_in=e_grad_in, e_decay=e_decay, lerp1=lerp1, lerp2=lerp2,
                    src_m=src_m, src_v=src_v, src_ratio=src_ratio, src_q=src_q, rnd_s=rnd_s,
                    rnd_d=rnd_d, hat_share=hat_share, half_bc2=half_bc2,
                    bc2_share_all=bc2_share_all, bc2_in_d_all=bc2_in_d_all,
                    eps_extra=eps_extra, flushed=flushed, inexact=inexact)


def _subnormal_products(p: _ParamInputs, x: _Exact, D: _Format, S: _Format) -> np.ndarray:
    """The update γ·m/((1−β1^t)·d) in another association than γ·(m̂/d), (γ/(1−β1^t))·(m/d)
    or the folded one: an intermediate such as γ·m or (γ/(1−β1^t))·m (torch's addcdiv
    computes (s·m)/d) may be subnormal in D where m̂ and m̂/d are not, and is then off by
    half of D's smallest subnormal, which the rest of the product carries to the update
    (:func:`.enclosure.chain_roundings`, with gradual underflow: a flush of such an
    intermediate is left to the enclosure). 0 where every intermediate is normal."""
    sc = p.sc
    gamma = (sc.lr, sc.lr)
    m = (np.abs(p.m), np.abs(p.m))
    bc1 = (sc.bc1, sc.bc1)
    d = (x.d, x.d)
    sqrt_bc2 = (np.sqrt(sc.bc2),) * 2
    forms = [([gamma, m, bc1, d], [False, False, True, True], [True, False, True, False])]
    if p.eps_mode in ("hat", "outside"):
        scaled = d if p.eps_mode == "hat" else (x.d * sqrt_bc2[0],) * 2
        forms.append(([gamma, m, bc1, scaled, sqrt_bc2], [False, False, True, True, False],
                      [True, False, True, False, True]))
    total = np.zeros_like(x.q)
    # no intermediate is subnormal where even the smallest product of the factors' parts
    # below 1 (and of the denominators' reciprocals) is normal, with room
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = [np.log(np.abs(a)) for a in (sc.lr, np.abs(p.m), sc.bc1, x.d)]
    smallest = (np.minimum(logs[0], 0) + np.minimum(logs[1], 0) - np.maximum(logs[2], 0)
                - np.maximum(logs[3], 0) + np.minimum(0.5 * np.log(sc.bc2), 0))
    if not (smallest < math.log(D.eta) + 8 * math.log(2.0)).any():
        return total
    for leaves, denominator, scalar in forms:
        _, _, absolute, _ = chain_roundings(leaves, denominator, scalar, D.fmt, S.fmt, False,
                                            x.q, absolute_only=True)
        total = np.maximum(total, np.where(np.isfinite(absolute), absolute, 0.0))
    return total


def _tiny_step_scalars(sc: _Scalars, D: _Format, u_s: float) -> np.ndarray:
    """Per step, the relative error of a step scalar of the torch or lr-folded ordering,
    γ/(1−β1^t) or γ·√(1−β2^t)/(1−β1^t), rounded to D where it meets the array, where that
    scalar lies below D's smallest normal: there the rounding is absolute (half D's
    smallest spacing, 2^-134 in bfloat16) or a flush, which the relative terms (u_S, and
    u_D through 1−β1^t's own rounding to D) do not cover. 0 where the scalar is normal."""
    worst = np.zeros_like(sc.lr)
    for sigma in (sc.lr / sc.bc1, sc.lr * np.sqrt(sc.bc2) / sc.bc1):
        tiny = (sigma > 0) & (sigma < D.eta)
        if tiny.any():
            rel = D.rnd(sigma, C_STEP_SCALARS * u_s * sigma) / np.where(tiny, sigma, 1.0)
            worst = np.maximum(worst, np.where(tiny, rel, 0.0))
    return worst


@dataclass(frozen=True)
class _Roundings:
    """The in-loop rounding bound of each value the recurrence rounds (see :class:`_Rounding`)."""

    m: _Twice
    v: _Twice
    theta: _Twice
    q: _Rounding
    vhat: _Twice
    second_hat: _Rounding
    second: _Rounding
    d: _Rounding
    inner: _Rounding  # v̂ + ε, under the square root
    g: _Rounding
    wd: _Rounding  # λ·θ′
    start: _Rounding  # θ′·(1 − γλ)


class _Twice:
    """A value rounded in D, then again to a narrower format where it is kept."""

    def __init__(self, first: _Rounding, then: _Rounding | None) -> None:
        self.first, self.then = first, then

    def __call__(self, k: int, err) -> np.ndarray:
        once = self.first(k, err)
        return once if self.then is None else once + self.then(k, err + once)


def _roundings(p: _ParamInputs, x: _Exact, D: _Format, state: _Format | None = None,
               theta: _Format | None = None) -> _Roundings:
    """max(½ulp(x), u·(x + E)) per value, its ½ulp computed once for every step; m, v and
    v̂max rounded once more where the state is kept narrower, θ where it is returned so."""
    def kept(fmt, values):
        return _Twice(_Rounding(D, values), None if fmt is None else _Rounding(fmt, values))

    return _Roundings(
        m=kept(state, np.abs(p.m)), v=kept(state, p.v), theta=kept(theta, np.abs(p.theta)),
        q=_Rounding(D, x.q), vhat=kept(state, x.vhat),
        second_hat=_Rounding(D, x.second_hat), second=_Rounding(D, x.second),
        d=_Rounding(D, x.d), inner=_Rounding(D, x.second_hat + p.sc.eps),
        g=_Rounding(D, x.ag), wd=_Rounding(D, p.sc.wd * np.abs(p.theta_p)),
        start=_Rounding(D, np.abs(x.theta_start)))


@dataclass(frozen=True)
class _Errors:
    """What the recurrence carries: E per quantity, and the denominator's bounds per step."""

    E: dict[str, np.ndarray]  # absolute bounds on θ, m, v, vmax (before the comparison)
    rel_d: np.ndarray  # E_d/d, with 1−β2^t's share through √v̂
    e_d: np.ndarray  # E_d
    enclosed: np.ndarray  # where the non-linear enclosure decided the update
    nonfinite: np.ndarray  # … where a faithful update may still be ±∞ or NaN


def _flushed_moment_terms(k: int, e_m, e_v, e_g, x: _Exact, src: _Sources, sc: _Scalars,
                          D: _Format) -> tuple[np.ndarray, np.ndarray]:
    """What flushing to zero may cost m's and v's updates at step k, judged on the computed
    operands (within E_m′, E_v′, E_g): β1·m̃′ + (1−β1)·g̃, or the lerp's g̃ − m̃′ and its
    product; v likewise, with g̃² or (1−β2)·g̃ rounded first."""
    b1, b2, w1, w2 = sc.beta1, sc.beta2, sc.omb1, sc.omb2
    lerp1, lerp2, fp = src.lerp1, src.lerp2, src.flushed
    ag, g2, diff_m, diff_v = x.ag, x.g2, x.diff_m, x.diff_v
    e_m_in = e_m + e_g
    f_m = np.maximum(_flushed(D, fp.b1_mp[k], b1 * e_m) + _flushed(D, fp.w1_g[k], w1 * e_g),
                     lerp1 * _flushed(D, diff_m[k], e_m_in)
                     + _flushed(D, fp.lerp1_dm[k], lerp1 * e_m_in))
    e_g2 = (2 * ag[k] + e_g) * e_g
    e_v_in = e_v + e_g2
    f_v = np.maximum(
        _flushed(D, fp.b2_vp[k], b2 * e_v) + _flushed(D, fp.w2_g2[k], w2 * e_g2),
        lerp2 * _flushed(D, diff_v[k], e_v_in)
        + _flushed(D, fp.lerp2_dv[k], lerp2 * e_v_in)) + np.maximum(
        w2 * _flushed(D, g2[k], e_g2), (ag[k] + e_g) * _flushed(D, fp.w2_g[k], w2 * e_g))
    return f_m, f_v


def _denominator_error(k: int, e_second, p: _ParamInputs, x: _Exact, src: _Sources,
                       r: _Roundings, S: _Format
                       ) -> tuple[np.ndarray, np.ndarray | float, np.ndarray | float]:
    """E_d at step k from the second moment's error E_second (error-model.md term 8), and the
    share of 1−β2^t's error in the update: apart (``bc2_share``) and through √v̂
    (``bc2_in_d``, counted in rel_d)."""
    sc, eps_mode, u_s = p.sc, p.eps_mode, S.u
    bc2, rel_bc2 = sc.bc2, sc.rel_bc2
    second, second_hat = x.second, x.second_hat
    bc2_share, bc2_in_d = src.hat_share, 0.0
    if eps_mode == "hat":
        e_d = _sqrt_error(second[k], e_second) + src.rnd_s[k] + src.eps_extra
        bc2_share = src.half_bc2[k] + u_s  # √(1−β2^t) in the step size
    elif eps_mode == "inside-sqrt":
        e_sh = e_second if x.corrected else (
            e_second / bc2[k] + second_hat[k] * (rel_bc2[k] + u_s))
        e_sh = e_sh + r.second_hat(k, e_sh) + src.eps_extra
        e_d = _sqrt_error(second_hat[k] + sc.eps, e_sh + r.inner(k, e_sh)) + src.rnd_d[k]
    else:
        if x.corrected:
            e_sh = e_second
        else:
            # documented: ½rel·s/d through √v̂; √(1−β2^t) used apart for the step size
            # and for ε·√(1−β2^t) in the lr-folded form: ½rel·(1 + ε/d)
            e_sh = e_second / bc2[k]
            e_sh = e_sh + r.second_hat(k, e_sh)
            bc2_share = src.bc2_share_all[k]
            bc2_in_d = src.bc2_in_d_all[k]
        e_d = _sqrt_error(second_hat[k], e_sh) + src.rnd_s[k] + src.eps_extra
    e_d = e_d + r.d(k, e_d)
    return e_d, bc2_share, bc2_in_d


def _recurrence(p: _ParamInputs, x: _Exact, src: _Sources, r: _Roundings, D: _Format,
                S: _Format, kept: tuple[_Format | None, _Format | None] = (None, None),
                settled: np.ndarray | None = None, keep_second_moment: bool = False
                ) -> _Errors:
    """E_m = β1·E_m′ + (1−β1)·E_g + sources, E_v likewise, E_vmax = max(E_vmax′, E_v̂),
    E_d from E_v̂ through √, E_q = γ·E[m̂/d] + sources, E_θ = E_θ′ + E_q: terms 4–9 of
    error-model.md, step by step (errors only; the flags follow, vectorised).

    Where the denominator's bound reaches half its value, the non-linear enclosure
    (:func:`.enclosure.enclose_update`) bounds that step's update instead; where it cannot
    either, the value is left to the flags. Without L2 weight decay θ's error feeds nothing
    else, so every such step is enclosed at once after the loop and θ's chain run again;
    with it, step by step. ``settled`` (steps, n): values already inconclusive for another
    reason from that step on, where no enclosure is tried. ``keep_second_moment``: see
    :func:`error_bounds`."""
    steps, n, sc = p.steps, p.n, p.sc
    b1, b2, w1, w2 = sc.beta1, sc.beta2, sc.omb1, sc.omb2
    bc1, bc2, rel_bc1, rel_bc2 = sc.bc1, sc.bc2, sc.rel_bc1, sc.rel_bc2
    wd, lr, u_s = sc.wd, sc.lr, S.u
    amsgrad_mode, eps_mode = p.amsgrad_mode, p.eps_mode
    theta_p, ag, vhat, second, d = p.theta_p, x.ag, x.vhat, x.second, x.d
    mhat, ratio, step_scale = x.mhat, x.ratio, x.step_scale
    flush = D.flush

    E = {name: np.empty((steps, n)) for name in QUANTITIES}
    rel_d_all = np.empty((steps, n))
    e_d_all = np.empty((steps, n))
    e_q_all = np.empty((steps, n))
    e_g_all = np.empty((steps, n))
    e_second_all = np.empty((steps, n))
    state_format, theta_format = (f or D for f in kept)
    e_theta = theta_format.input_error(p.theta0)
    e_m, e_v, e_vmax = (state_format.input_error(x0) for x0 in (p.m0, p.v0, p.vmax0))
    initial = {"theta": e_theta, "m": e_m, "v": e_v, "vmax": e_vmax}
    uses_max = p.uses_max
    maximum = np.fmax if p.drops_nan else np.maximum  # a dropped NaN operand: its error too
    after = p.decoupled and p.weight_decay_mode == "after"
    enclosure = _Enclosure(p, x, D, S, state_format if kept[0] is not None else None,
                           keep_second_moment, src.inexact)
    skip = np.zeros((steps, n), dtype=bool) if settled is None else settled
    skip = skip | _update_exactly_zero(p) | ~(np.isfinite(d) & (d > 0))
    given_up = np.zeros(n, dtype=bool)  # undecided once: inconclusive from there on anyway

    def theta_step(k: int, e_theta, e_q):
        """θ′ (decayed) − update, rounded: E_θ from E_θ′ and E_q."""
        if p.decoupled and not after:
            e_start = np.abs(x.decay[k]) * e_theta + np.abs(theta_p[k]) * src.e_decay[k]
            e_start = e_start + r.start(k, e_start)
        else:
            e_start = e_theta
        e_theta = e_start + e_q
        if after:  # θ ← (θ′ − update)·(1 − γλ): the difference rounded, then the product
            middle = np.abs(theta_p[k]) + x.q[k]
            e_theta = e_theta + D.rnd(middle, e_theta)
            e_theta = np.abs(x.decay[k]) * e_theta + middle * src.e_decay[k]
        return e_theta + r.theta(k, e_theta)

    for k in range(steps):
        # gradient: maximize's sign is exact; weight decay feeds θ's error back in
        e_g = src.e_grad_in[k]
        if p.l2:
            e_wd = wd * e_theta + np.abs(theta_p[k]) * sc.e_wd
            e_g = e_g + e_wd + r.wd(k, e_wd)
            e_g = e_g + r.g(k, e_g)
        # moments (linear recurrences)
        if flush:
            f_m, f_v = _flushed_moment_terms(k, e_m, e_v, e_g, x, src, sc, D)
        else:
            f_m = f_v = 0.0
        e_m = b1 * e_m + w1 * e_g + src.src_m[k] + f_m
        e_m = e_m + r.m(k, e_m)
        e_v = b2 * e_v + w2 * (2 * ag[k] + e_g) * e_g + src.src_v[k] + f_v  # E[g²] = 2|g|E + E²
        e_v = e_v + r.v(k, e_v)
        if amsgrad_mode == "max-hat":  # |max(ã, b̃) − max(a, b)| ≤ max(E_a, E_b)
            e_vhat = e_v / bc2[k] + vhat[k] * (rel_bc2[k] + u_s)
            e_vmax = maximum(e_vmax, e_vhat + r.vhat(k, e_vhat))
        elif uses_max:
            e_vmax = maximum(e_vmax, e_v)
        e_second = e_vmax if uses_max else e_v
        if amsgrad_mode == "max-hat" and eps_mode == "hat":  # V = v̂max·(1−β2^t)
            e_second = e_vmax * bc2[k] + second[k] * rel_bc2[k]
            e_second = e_second + r.second(k, e_second)
        # denominator, and the share of 1−β2^t's error in the update
        e_d, bc2_share, bc2_in_d = _denominator_error(k, e_second, p, x, src, r, S)
        rel_d = e_d / d[k] + bc2_in_d
        # update |q| = γ·scale·|m̂|/d, and the parameter. A quotient is off by
        # (E_m/d + |m|·E_d/d²)/(1 − E_d/d) at most, not only to first order: the factor
        # matters where a flushed term leaves d tens of percent off (capped where the value
        # is inconclusive anyway)
        widen = 1.0 / (1.0 - np.minimum(rel_d + rel_bc1[k], 0.5))
        e_ratio = widen * (ratio[k] * (rel_bc1[k] + rel_d - bc2_in_d + bc2_share)
                           + e_m / (bc1[k] * d[k])) + src.src_ratio[k]
        if flush:
            e_ratio = e_ratio + (_flushed(D, mhat[k], e_m / bc1[k]) / d[k]
                                 + _flushed(D, ratio[k], e_ratio))
        e_q = src.src_q[k] + lr[k] * step_scale[k] * e_ratio
        e_q = e_q + r.q(k, e_q)
        E["m"][k], E["v"][k], E["vmax"][k] = e_m, e_v, e_vmax
        e_g_all[k], e_second_all[k], rel_d_all[k], e_d_all[k] = e_g, e_second, rel_d, e_d
        enclosed_here = False
        if p.l2 and not (rel_d < 0.5).all():  # θ's error reaches the next gradient: now
            unresolved = ~(rel_d < 0.5) & ~skip[k] & ~given_up
            if unresolved.any():
                enclosed_here = True
                rows = (np.full(np.count_nonzero(unresolved), k), np.flatnonzero(unresolved))
                e_q = e_q.copy()
                e_q[rows[1]] = enclosure.update(rows, e_q[rows[1]], E, initial, e_g_all,
                                                e_second_all)
                # step by step, the intervals' tighter bounds of the stored v and v̂max carry
                e_v, e_vmax = e_v.copy(), np.array(e_vmax, dtype=np.float64)
                e_v[rows[1]] = enclosure.tightened.e_v
                e_vmax[rows[1]] = enclosure.tightened.e_vmax
                E["v"][k], E["vmax"][k] = e_v, e_vmax
                given_up[rows[1]] |= ~enclosure.enclosed[rows]
        e_q_all[k] = e_q
        e_theta = theta_step(k, e_theta, e_q)
        if enclosed_here:
            given_up |= enclosure.drop_overflow(k, e_theta)
        E["theta"][k] = e_theta
    if not p.l2:
        unresolved = ~(rel_d_all < 0.5) & ~skip
        if unresolved.any():
            rows = np.nonzero(unresolved)
            e_q_all[rows] = enclosure.update(rows, e_q_all[rows], E, initial, e_g_all,
                                             e_second_all)
            decided = rows[0][enclosure.enclosed[rows]]
            first = int(decided.min()) if decided.size else steps
            e_theta = initial["theta"] if first == 0 else E["theta"][first - 1]
            for k in range(first, steps):  # θ's chain again, with the enclosures
                e_theta = theta_step(k, e_theta, e_q_all[k])
                E["theta"][k] = e_theta
                enclosure.drop_overflow(k, e_theta)
    return _Errors(E=E, rel_d=rel_d_all, e_d=e_d_all, enclosed=enclosure.enclosed,
                   nonfinite=enclosure.nonfinite & enclosure.enclosed)


class _Enclosure:
    """The non-linear enclosure (:func:`.enclosure.enclose_update`) for one group's
    parameters: what it needs of their values and bounds, and what it decided, (steps, n)."""

    def __init__(self, p: _ParamInputs, x: _Exact, D: _Format, S: _Format,
                 state: _Format | None, keep_second_moment: bool = False,
                 inexact: np.ndarray | None = None) -> None:
        self.p, self.x, self.D = p, x, D
        self.inexact = inexact
        self.rounding = Rounding(D.fmt, D.flush, S.fmt, None if state is None else state.fmt,
                                 keep_positive=keep_second_moment)
        self.modes = Modes(eps_mode=p.eps_mode, amsgrad_mode=p.amsgrad_mode,
                           corrected=x.corrected)
        self.u_s = S.u
        self.eps_kept = _eps_kept_in(p.sc.eps, S)
        self.enclosed = np.zeros((p.steps, p.n), dtype=bool)
        self.nonfinite = np.zeros((p.steps, p.n), dtype=bool)

    def update(self, rows: tuple[np.ndarray, np.ndarray], e_q: np.ndarray, E: dict,
               initial: dict, e_g: np.ndarray, e_second: np.ndarray) -> np.ndarray:
        """Enclose the updates at ``rows`` (step and element indices): the bounds ``e_q``
        of those rows (1-d), each replaced where the enclosure decides. ``E`` holds the
        bounds of m, v, vmax through those steps."""
        p, x, sc = self.p, self.x, self.p.sc
        K, J = rows

        def before(name):
            e = E[name][K - 1, J]
            return np.where(K == 0, np.broadcast_to(initial[name], (p.n,))[J], e)

        values = StepValues(
            g=x.g[K, J], e_g=e_g[K, J], m=p.m[K, J], e_m=E["m"][K, J], v_prev=p.v_p[K, J],
            e_v_prev=before("v"), v=p.v[K, J], e_v=E["v"][K, J], vmax_prev=p.vmax_p[K, J],
            e_vmax_prev=before("vmax"), vmax=p.vmax[K, J], e_vmax=E["vmax"][K, J],
            second=x.second[K, J], e_second=e_second[K, J],
            update=np.sign(p.m[K, J]) * x.q[K, J],
            update_unknown=None if self.inexact is None else self.inexact[K, J])
        lerp_extra = self.u_s * sc.beta2 if sc.omb2 >= 0.5 else 0.0
        scalars = StepScalars(
            lr=sc.lr[K, 0], e_lr=sc.e_lr[K, 0], bc1=sc.bc1[K, 0], rel_bc1=sc.rel_bc1[K, 0],
            bc2=sc.bc2[K, 0], rel_bc2=sc.rel_bc2[K, 0], beta2=sc.beta2, e_beta2=sc.e_beta2,
            omb2=sc.omb2, e_omb2=sc.e_omb2, lerp2=sc.beta2 if sc.omb2 >= 0.5 else sc.omb2,
            e_lerp2=sc.e_omb2 + lerp_extra, eps=sc.eps)
        out = enclose_update(values, scalars, self.modes, self.rounding)
        self.tightened = out  # the stored v's and v̂max's bounds from the intervals
        self.enclosed[K, J] = out.decided
        # a faithful update may be non-finite: an intermediate beyond D's range, or a
        # divisor of 0 where ε is not kept
        self.nonfinite[K, J] = out.may_overflow | (out.zero_divisor & ~self.eps_kept)
        return np.where(out.decided, out.e_update, e_q)

    def drop_overflow(self, k: int, e_theta: np.ndarray) -> np.ndarray:
        """An enclosure whose θ reaches beyond D's largest value decides nothing: where."""
        overflow = self.enclosed[k] & ~(np.abs(self.p.theta[k]) + e_theta <= self.D.max)
        self.enclosed[k] &= ~overflow
        return overflow


def _eps_kept_in(eps: float, S: _Format) -> bool:
    """Whether ε > 0 survives where the scalars are held: a subnormal ε there is read as 0
    by a device that flushes (the judge's non-finite rule uses the same test)."""
    if S.flush:
        return eps >= S.eta
    return eps > 0 and eps >= S.fmt.smallest_subnormal / 2


def _reasons(p: _ParamInputs, x: _Exact, out_of_range: dict[str, np.ndarray],
             lerp_nan: tuple[np.ndarray, np.ndarray], errors: _Errors
             ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray],
                        dict[str, np.ndarray]]:
    """Why a value is inconclusive (the :data:`REASONS` bits), where NaN is as faithful as
    ±∞, where the enclosure gave the bound and where it bounds finite outcomes only: each
    value's own causes, then carried along the steps and the dependencies."""
    steps, n, sc = p.steps, p.n, p.sc
    bc1, bc2, rel_bc1, rel_bc2 = sc.bc1, sc.bc2, sc.rel_bc1, sc.rel_bc2
    d, E, amsgrad_mode = x.d, errors.E, p.amsgrad_mode
    unresolved = ((~(errors.rel_d < 0.5) & np.isfinite(d) & (d > 0))
                  | ((d == 0) & (errors.e_d > 0)))
    # an update multiplied by an exact 0 (γ = 0, or ε-hat's √(1 − β2^t) with β2 held as 1)
    # is 0 whatever the denominator is, so long as ε > 0 keeps that from 0
    unresolved &= ~_update_exactly_zero(p) & ~errors.enclosed
    own = {
        "g": _flag(out_of_range["g"], RANGE),
        "m": _flag(out_of_range["m"], RANGE),
        "v": _flag(out_of_range["v"], RANGE),
        "vmax": _flag(out_of_range["vmax"], RANGE) | (
            _flag(np.broadcast_to(rel_bc2 >= 0.5, (steps, n)), BIAS_CORRECTION)
            if amsgrad_mode == "max-hat" else 0),
        "theta": (_flag(out_of_range["theta"], RANGE) | _flag(unresolved, DENOMINATOR)
                  | _flag(np.broadcast_to((rel_bc1 >= 0.5) | (rel_bc2 >= 0.5), (steps, n)),
                          BIAS_CORRECTION)),
    }
    bits = _carry(own, p.l2, p.uses_max, np.bitwise_or, np.uint8)
    # x/0 is ±∞ exactly, but NaN where x itself may come out as 0 (underflow, flush)
    zero_over_zero_vmax = ((bc2 == 0) & (E["v"] >= p.v)) if amsgrad_mode == "max-hat" else (
        np.zeros((steps, n), dtype=bool))
    zero_over_zero_theta = ((d == 0) | (bc1 == 0)) & (E["m"] >= np.abs(p.m))
    # γ·∞ is ±∞, but 0·∞ = NaN where γ may round to 0
    zero_over_zero_theta |= np.isinf(x.ratio) & (sc.e_lr >= sc.lr)
    if p.decoupled:
        # θ·(1 − γλ) keeps an infinite θ infinite; the equal ordering θ + (−γλ)·θ makes it
        # ∞ − ∞ = NaN wherever γλ ≠ 0 (DeepSpeed's CPU kernel decays so)
        zero_over_zero_theta |= np.isinf(p.theta_p) & (sc.lr * sc.wd != 0)
    lerp_nan_m, lerp_nan_v = lerp_nan
    nan_own = {"g": np.zeros((steps, n), dtype=bool), "m": lerp_nan_m, "v": lerp_nan_v,
               "vmax": zero_over_zero_vmax, "theta": zero_over_zero_theta}
    nan_ok = _carry(nan_own, p.l2, p.uses_max, np.logical_or, bool)
    none = np.zeros((steps, n), dtype=bool)
    enclosed = _carry({"g": none, "m": none, "v": none, "vmax": none,
                       "theta": errors.enclosed}, p.l2, p.uses_max, np.logical_or, bool)
    finite_only = _carry({"g": none, "m": none, "v": none, "vmax": none,
                          "theta": errors.nonfinite}, p.l2, p.uses_max, np.logical_or, bool)
    return bits, nan_ok, enclosed, finite_only


def _settled(p: _ParamInputs, out_of_range: dict[str, np.ndarray]) -> np.ndarray:
    """(steps, n): where the update is inconclusive whatever the enclosure finds, from an
    exact value outside D's range or an unresolved 1 − β^t at that step or before."""
    sc = p.sc
    bad = (out_of_range["g"] | out_of_range["m"] | out_of_range["v"] | out_of_range["vmax"]
           | out_of_range["theta"] | (sc.rel_bc1 >= 0.5) | (sc.rel_bc2 >= 0.5))
    return np.logical_or.accumulate(np.broadcast_to(bad, (p.steps, p.n)), axis=0)


def _update_exactly_zero(p: _ParamInputs) -> np.ndarray:
    """Per step (shape (steps, 1)): where the step's factor is an exact zero and ε > 0 is
    kept (ε at least the scalar format's smallest normal, its error below itself): then
    d ≥ ε̃ > 0 (or √ε̃ inside the root), m̂/d is finite and the update is exactly 0."""
    sc = p.sc
    eps_kept = sc.eps > 0 and sc.e_eps < sc.eps and sc.eps >= _EPS_NORMAL.get(p.scalar, 0.0)
    if not eps_kept:
        return np.zeros((p.steps, 1), dtype=bool)
    zero_lr = (sc.lr == 0) & (sc.e_lr == 0)
    zero_scale = ((sc.bc2 == 0) & (sc.rel_bc2 == 0)) if p.eps_mode == "hat" else False
    return np.asarray(zero_lr | zero_scale, dtype=bool).reshape(p.steps, 1)


_EPS_NORMAL = {_FLOAT64: 2.0 ** -1022, _FLOAT32: 2.0 ** -126}


def _compared(p: _ParamInputs, E: dict[str, np.ndarray], bits: dict[str, np.ndarray],
              F64: _Format) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The bound the comparison uses: E + ½ulp_64(reference) (the reference's own rounding,
    term 10), NaN where the reference is not finite; a bound that is not finite is flagged."""
    refs = {"theta": p.theta, "m": p.m, "v": p.v, "vmax": p.vmax}
    bounds, flagged = {}, {}
    for name in QUANTITIES:
        x = refs[name]
        finite = np.isfinite(x)
        bound = E[name] + F64.half_ulp(np.abs(np.where(finite, x, 0.0)))
        flagged[name] = bits[name] | _flag(finite & ~np.isfinite(bound), BOUND_NOT_FINITE)
        bounds[name] = np.where(finite, bound, np.nan)
    return bounds, flagged


@dataclass(frozen=True)
class _StepFormats:
    """The formats one bound works in, resolved once where :func:`error_bounds` begins: D the
    step's (the dtype, or the narrower one a precision switch computes it in), S the
    scalars', float64 the analysis's own, and the narrower ones a dialect keeps the state
    in and returns θ through (None where it does not)."""

    D: _Format
    S: _Format
    F64: _Format
    state: _Format | None = None
    theta: _Format | None = None


def _param_bounds(problem: Problem, reference: Trajectory, indices: Sequence[int],
                  dialect: Dialect, formats: _StepFormats, keep_second_moment: bool = False
                  ) -> tuple[dict, dict, dict, dict, dict]:
    """Bounds, reason masks, NaN-acceptable masks and the enclosure's two masks, flattened
    to (steps, n), for the parameters ``indices`` of one group side by side."""
    D, S, F64 = formats.D, formats.S, formats.F64
    p = _param_inputs(problem, reference, indices, dialect, D, S)
    exact = _exact(p)
    out_of_range = _out_of_range(p, exact, D)
    lerp_nan = _lerp_nan(p, exact)
    sources = _sources(p, exact, D, S, F64)
    kept = (formats.state, formats.theta)
    errors = _recurrence(p, exact, sources, _roundings(p, exact, D, *kept), D, S, kept,
                         settled=_settled(p, out_of_range),
                         keep_second_moment=keep_second_moment)
    bits, nan_ok, enclosed, finite_only = _reasons(p, exact, out_of_range, lerp_nan, errors)
    bounds, bits = _compared(p, errors.E, bits, F64)
    return bounds, bits, nan_ok, enclosed, finite_only


def error_bounds(problem: Problem, reference: Trajectory, dtype: str | FloatFormat,
                 dialect: Dialect = SPEC, *, underflow: str = "flush",
                 scalar_dtype: str | FloatFormat | None = None,
                 keep_second_moment: bool = False) -> Bounds:
    """Per element and step, the error a faithful implementation in ``dtype`` (a name, or
    the format itself) may make.

    ``reference`` is ``dialect``'s exact trajectory of ``problem`` (correctly rounded to
    float64). ``underflow="flush"`` (the default) also covers devices that flush subnormal
    results and inputs to zero; ``"gradual"`` assumes IEEE gradual underflow and is tighter
    where values come near D's smallest normal. ``scalar_dtype`` is the format the
    hyperparameters and step scalars are held in at least (default :func:`scalar_format`).
    ``keep_second_moment``: only the evaluations in which no positive result of the second
    moment's computation, as the denominator reads it, is rounded or flushed to 0 (a float16
    evaluation that computes v = (1 − β2)·g² in float16 loses it where it is below half the
    smallest subnormal, and divides by ε alone): a subset of the faithful evaluations, so a
    trajectory within this bound conforms, and one outside it proves nothing.
    """
    if underflow not in UNDERFLOW_MODES:
        raise ValueError(f"underflow must be one of {UNDERFLOW_MODES}, got {underflow!r}")
    # every format the bound works in, resolved here once: below, only formats are passed
    named = as_format(dtype)
    flush = underflow == "flush"
    # a precision switch: the whole step computed in a narrower format than the values cross in
    compute = get_format(dialect.compute) if dialect.compute else None
    computed = compute if compute is not None and compute.precision < named.precision \
        else named
    D = _Format(computed, flush=flush)
    S = _Format(as_format(scalar_dtype) if scalar_dtype else scalar_format_of(computed),
                flush=flush)
    state, theta = (None if name is None else get_format(name)
                    for name in (dialect.state, dialect.theta_through))
    formats = _StepFormats(D, S, F64=_Format(_FLOAT64, flush=False),
                           state=_narrower(state, D, flush), theta=_narrower(theta, D, flush))
    if reference.vmax_kind != dialect.vmax_kind:
        raise ValueError(f"the reference keeps a {reference.vmax_kind!r} vmax but dialect "
                         f"{dialect.name!r} keeps {dialect.vmax_kind!r}: pass the dialect the "
                         "reference was computed for")
    steps = problem.steps
    shapes = [(steps,) + p.shape for p in problem.params]
    # one pass per group over its parameters side by side: the per-step loop costs the same
    # for one element as for many; an empty parameter (or no step) has nothing to bound
    together: dict[int, list[int]] = {}
    for i, (p, g) in enumerate(zip(problem.params, problem.group_of_param())):
        if p.size and steps:
            together.setdefault(g, []).append(i)
    judged = {i for indices in together.values() for i in indices}
    # per kind of array (bounds, reasons, NaN-acceptable, enclosed, finite only), per quantity
    kinds = (np.float64, np.uint8, bool, bool, bool)
    out: list[dict[str, list]] = [
        {q: [None if i in judged else np.zeros(shape, dtype=kind)
             for i, shape in enumerate(shapes)] for q in QUANTITIES} for kind in kinds]
    with np.errstate(all="ignore"):
        for indices in together.values():
            arrays = _param_bounds(problem, reference, indices, dialect, formats,
                                   keep_second_moment)
            start = 0
            for i in indices:
                stop = start + problem.params[i].size
                for kind, values in zip(out, arrays, strict=True):
                    for q in QUANTITIES:
                        kind[q][i] = values[q][:, start:stop].reshape(shapes[i])
                start = stop
    bounds, reasons, nan_ok, enclosed, finite_only = out
    return Bounds(dtype=named.name, dialect=dialect.name, underflow=underflow,
                  scalar_dtype=S.fmt.name, theta=bounds["theta"], m=bounds["m"],
                  v=bounds["v"], vmax=bounds["vmax"], reasons=reasons, nan_ok=nan_ok,
                  enclosed=enclosed, finite_only=finite_only,
                  second_moment_kept=keep_second_moment)


_BOUNDS_CACHE_SIZE = 4096
_bounds_cache: OrderedDict[tuple, tuple] = OrderedDict()


def cached_bounds(problem: Problem, reference: Trajectory, dtype: str | FloatFormat,
                  dialect: Dialect):
    """The (flush, gradual) bounds pair for ``judge``, computed once per problem, reference,
    dtype (a name, or the format itself) and dialect: every variant of a backend in one dtype
    shares them.

    Keyed by the objects' identity (the entry holds them, so an id cannot be reused while
    it is cached); least recently used entries are dropped past a few thousand.
    """
    fmt = as_format(dtype)
    key = (id(problem), id(reference), fmt.name, dialect.name)
    entry = _bounds_cache.get(key)
    if entry is None:
        flush = error_bounds(problem, reference, fmt, dialect, underflow="flush")
        entry = [problem, reference, flush, None]
        _bounds_cache[key] = entry
        if len(_bounds_cache) > _BOUNDS_CACHE_SIZE:
            _bounds_cache.popitem(last=False)
    else:
        _bounds_cache.move_to_end(key)

    def gradual():
        if entry[3] is None:
            entry[3] = error_bounds(problem, reference, fmt, dialect, underflow="gradual")
        return entry[3]

    return entry[2], gradual


_kept_cache: OrderedDict[tuple, tuple] = OrderedDict()


def cached_kept_bounds(problem: Problem, reference: Trajectory, dtype: str | FloatFormat,
                       dialect: Dialect) -> Bounds:
    """The gradual-underflow bounds of the evaluations that keep the second moment
    (``error_bounds(..., keep_second_moment=True)``), computed once per problem, reference,
    dtype and dialect, as :func:`cached_bounds` does."""
    fmt = as_format(dtype)
    key = (id(problem), id(reference), fmt.name, dialect.name)
    entry = _kept_cache.get(key)
    if entry is None:
        entry = (problem, reference, error_bounds(problem, reference, fmt, dialect,
                                                  underflow="gradual",
                                                  keep_second_moment=True))
        _kept_cache[key] = entry
        if len(_kept_cache) > _BOUNDS_CACHE_SIZE:
            _kept_cache.popitem(last=False)
    else:
        _kept_cache.move_to_end(key)
    return entry[2]
