"""The second engine: the same step description in Arb ball arithmetic (python-flint).

Each number is an ``arb``, a midpoint and a radius whose ball contains the exact value. The
step is :func:`adamconf.reference.engine.adam_step`, unchanged, run on balls through an
arithmetic that gives IEEE 754 outcomes where a denominator is exactly zero and carries NaN
and ±∞ as :class:`_Special` values (Arb has no −0 and its own idea of infinity). A ball too
wide to decide a branch of that arithmetic (a denominator or a factor of ∞ that straddles
zero) stops the element at this precision: it is recomputed at a higher one.

The certificate: a value is *proven* when every point of its ball rounds to the same
float64 (round to nearest, ties to even, subnormals included). The first pass runs at
``FIRST_PREC`` bits; elements holding an unproven value are recomputed alone at twice the
bits, up to ``MAX_PREC``. A value whose ball still holds one float64 midpoint there, or is
exactly a midpoint, is a *tie*: stored as the midpoint rounds (ties to even) and marked, since
an implementation that lands on either neighbour may be right.

Precision lives on ``flint.ctx.prec``; every entry point restores it in a ``finally``.
python-flint is imported on first use, so ``import adamconf`` does not load it.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .dialects import SPEC, Dialect
from .problem import Problem, Trajectory
from .step import (
    Arith,
    PrecisionError,
    StepConstants,
    adam_step,
    initial_values,
    initial_vmax,
    run_float64,
    step_constants,
)

__all__ = ["FIRST_PREC", "MAX_PREC", "BallRun", "run_balls", "ball_run", "round_ball",
           "stored_verdict", "disproven", "Disproof", "find_disproofs", "outside_ball",
           "certify_mp"]

FIRST_PREC = 170   # bits: a little above mpmath's 169 at 50 digits
MAX_PREC = 2720    # 170·2^4 bits, about 819 digits (mpmath's old limit was 800 digits)

_QUANTITIES = Trajectory.QUANTITIES
_INF = math.inf
_SMALLEST_FAST = 2.0 ** -1000  # below this the float check's absolute slack is too coarse
_LARGEST_FAST = 2.0 ** 1023     # above this the gap to the next float may be ∞


_arb: Any = None  # flint.arb, bound on first use


def _flint():
    global _arb
    import flint

    _arb = flint.arb
    return flint


class _Unresolved(ArithmeticError):
    """A ball straddles zero where an IEEE branch depends on the sign: precision must rise."""


# --- IEEE specials -----------------------------------------------------------------------

class _Special:
    """NaN, +∞ or −∞ in the ball engine, following IEEE 754 against balls and each other."""

    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"_Special({self.value!r})"

    def __bool__(self) -> bool:
        return True

    def __float__(self) -> float:
        return self.value

    def rel_accuracy_bits(self) -> int:
        return 0  # never proven by the float test: specials take the exact path

    def __neg__(self) -> _Special:
        return _Special(-self.value)

    def __add__(self, other) -> _Special:
        if type(other) is _Special:
            return _Special(self.value + other.value)  # ∞ − ∞ = NaN, as in Python floats
        return self  # a finite value does not move ±∞ or NaN

    __radd__ = __add__

    def __sub__(self, other) -> _Special:
        return self + (-other)

    def __rsub__(self, other) -> _Special:
        return (-self) + other

    def __mul__(self, other) -> _Special:
        if type(other) is _Special:
            return _Special(self.value * other.value)
        return _Special(self.value * _sign(other))  # 0·∞ = NaN

    __rmul__ = __mul__


_NAN = _Special(math.nan)


def _sign(x) -> float:
    """0.0, 1.0 or −1.0 for a ball whose sign is decided; raises where it straddles zero."""
    if x.is_zero():
        return 0.0
    if x > 0:
        return 1.0
    if x < 0:
        return -1.0
    raise _Unresolved("a ball straddles zero where the IEEE outcome depends on its sign")


def _careful_div(a, b):
    if type(a) is not _Special and type(b) is not _Special:
        if b.is_zero():
            # denominators here are +0 (√0 + 0, 1 − β^0): ±∞, or NaN for 0/0
            s = _sign(a)
            return _NAN if s == 0.0 else _Special(math.copysign(_INF, s))
        q = a / b
        if q.is_finite():
            return q
        raise _Unresolved("a denominator ball straddles zero")
    if type(b) is _Special:
        if type(a) is _Special or math.isnan(b.value):
            return _NAN
        return _arb(0)  # finite / ±∞: a zero, whose sign the float64 shadow gives
    if math.isnan(a.value):
        return _NAN
    return a if b.is_zero() else _Special(a.value * _sign(b))


def _careful_sqrt(a):
    if type(a) is _Special:
        return a if a.value == _INF else _NAN
    r = a.sqrt()
    if r.is_finite():
        return r
    if a < 0:
        return _NAN
    raise _Unresolved("the argument of a square root straddles zero")


def _careful_maximum(a, b):
    if type(a) is _Special or type(b) is _Special:
        if (type(a) is _Special and math.isnan(a.value)) or (
                type(b) is _Special and math.isnan(b.value)):
            return _NAN
        if type(a) is _Special:
            return a if a.value > 0 else b
        return b if b.value > 0 else a
    return a.max(b)  # an enclosure of the max whether or not the order is decided


def _careful_fmax(a, b):
    """fmax: a NaN operand is dropped (two NaNs give NaN)."""
    if type(a) is _Special and math.isnan(a.value):
        return b
    if type(b) is _Special and math.isnan(b.value):
        return a
    return _careful_maximum(a, b)


_CAREFUL = Arith(_careful_div, _careful_sqrt, _careful_maximum, _careful_fmax)


def _fast_arith() -> Arith:
    """Balls only, no checks: a NaN ball from a zero denominator reaches θ and is redone."""
    arb = _flint().arb
    return Arith(operator.truediv, arb.sqrt, arb.max)


def _to_ball(x: float):
    x = float(x)
    if math.isfinite(x):
        return _arb(x)  # exact: a float64 fits in any precision
    return _Special(x)


def _ball_constants(problem: Problem, dialect: Dialect) -> tuple[list[list[StepConstants]],
                                                                  list[list[bool]]]:
    """Constants at the current precision, and per step and group whether all are balls
    (no NaN or ±∞ among the hyperparameters, so the fast arithmetic may run)."""
    arb = _flint().arb
    consts = step_constants(_to_ball, lambda b, t: b ** t, arb.sqrt, problem, dialect)
    plain = []
    for k, row in enumerate(consts):
        flags = []
        for group, c in zip(problem.groups, row):
            cfg = group.config
            if cfg.weight_decay == 0:
                # arb(0) is truthy, and the step asks `if c.weight_decay`: a falsy zero here
                # (our own fresh constants, so setting the frozen field touches nothing shared)
                object.__setattr__(c, "weight_decay", 0)
            flags.append(all(map(math.isfinite, (group.lr_at(k), cfg.beta1, cfg.beta2, cfg.eps,
                                                 cfg.weight_decay))))
        plain.append(flags)
    return consts, plain


# --- rounding a ball to float64 ------------------------------------------------------------

def _round_exact(man: int, exp: int) -> tuple[float, float | None]:
    """man·2^exp rounded to float64 (nearest, ties to even, subnormals, overflow to ±∞),
    and, where it is exactly a midpoint between two float64s, the other one (else None)."""
    if man == 0:
        return 0.0, None
    negative = man < 0
    man = -man if negative else man
    bc = man.bit_length()
    quantum = max(exp + bc - 53, -1074)  # the float64 grid spacing at this magnitude
    shift = quantum - exp
    tie = False
    other = None
    if shift <= 0:
        n = man << -shift
    elif shift > bc:  # below half a quantum
        n = 0
    else:
        n = man >> shift
        rest = man - (n << shift)
        half = 1 << (shift - 1)
        tie = rest == half
        if rest > half or (tie and n & 1):
            n += 1
            other = n - 1 if tie else None
        elif tie:
            other = n + 1
    f = _ldexp(n, quantum)
    if other is not None:
        other = _ldexp(other, quantum)
        return (-f if negative else f), (-other if negative else other)
    return (-f if negative else f), None


def _ldexp(n: int, exp: int) -> float:
    try:
        return math.ldexp(n, exp)  # exact: n ≤ 2^53 on the format's grid
    except OverflowError:
        return _INF


def _arb_exact_to_float(x) -> tuple[float, float | None]:
    man, exp = x.man_exp()
    return _round_exact(int(man), int(exp))


def _ends(x) -> tuple[float, float, float | None]:
    """(rounding of the lower end, of the upper end, the other neighbour where the ball is
    exactly a midpoint) of a ball or special."""
    if type(x) is _Special:
        return x.value, x.value, None
    if x.is_exact():
        f, tie = _arb_exact_to_float(x)
        return f, f, tie
    if not x.is_finite():
        return math.nan, math.nan, None  # never from the careful arithmetic
    lo, _ = _arb_exact_to_float(x.lower())
    hi, _ = _arb_exact_to_float(x.upper())
    return lo, hi, None


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _even_of(a: float, b: float) -> float:
    """Of two adjacent float64s, the one with an even significand (ties to even)."""
    bits = np.array([a], dtype=np.float64).view(np.int64)[0]
    return a if bits & 1 == 0 else b


def round_ball(ball) -> tuple[float, str]:
    """(float64, status) for one ball: status ``"proven"`` (every point rounds to it),
    ``"tie"`` (exactly a midpoint, or the ball holds exactly one midpoint; the value is the
    ties-to-even rounding of that midpoint) or ``"undecided"`` (the ball is wider; the
    value is the rounding of its midpoint)."""
    lo, hi, other = _ends(ball)
    if _same(lo, hi):
        return lo, ("proven" if other is None else "tie")
    if math.nextafter(lo, _INF) == hi:
        return _even_of(lo, hi), "tie"
    return float(ball), "undecided"


def stored_verdict(stored: float, ball) -> str:
    """Whether ``stored`` is the rounding the ball proves: ``"proven"``, ``"tie"`` (the ball
    holds one midpoint and ``stored`` is one of its two neighbours), ``"disproven"`` (no point
    of the ball rounds to ``stored``) or ``"undecided"`` (the ball is too wide to say).

    Zeros compare by value: the sign of a zero is IEEE's rule (the float64 shadow), not
    something a ball can prove.
    """
    stored = float(stored)
    lo, hi, other = _ends(ball)
    if _same(lo, hi):
        if other is not None and (stored == lo or stored == other):
            return "tie"
        return "proven" if _same(stored, lo) else "disproven"
    if math.isnan(stored) or math.isnan(lo) or math.isnan(hi):
        return "disproven"
    if stored < lo or stored > hi:
        return "disproven"
    return "tie" if math.nextafter(lo, _INF) == hi else "undecided"


def disproven(stored: float, ball) -> bool:
    """True when ``stored`` is not the correctly rounded value of any point of ``ball``."""
    return stored_verdict(stored, ball) == "disproven"


def _fast_proven(values: np.ndarray, residuals: np.ndarray, accuracy: np.ndarray
                 ) -> np.ndarray:
    """Where a ball provably rounds to ``values``, from three floats per ball.

    ``values`` is a float64 near the midpoint, ``residuals`` the midpoint minus it (rounded
    to float64), ``accuracy`` Arb's relative accuracy in bits (radius < |mid|·2^-accuracy).
    Proven where |mid − value| + radius is below half the gap to each neighbour; the
    factors cover the roundings of the residual and of |mid| by |value|.
    """
    a = np.abs(values)
    with np.errstate(all="ignore"):
        half_gap = np.spacing(np.minimum(a, _LARGEST_FAST)) * 0.5
        mantissa, _ = np.frexp(a)
        half_gap = np.where(mantissa == 0.5, half_gap * 0.5, half_gap)  # gap below 2^k
        radius = np.ldexp(a, 2 - np.clip(accuracy, -4000, 4000).astype(np.int64))
        bound = (np.abs(residuals) + radius) * (1.0 + 2.0 ** -48) + 2.0 ** -1070
        return (np.isfinite(values) & (a >= _SMALLEST_FAST) & (a < _LARGEST_FAST)
                & (bound < half_gap))


def _exact_zeros(cols: list[list], floats: np.ndarray) -> np.ndarray:
    """Where a ball is exactly zero (the float test cannot say: it has no gap to measure);
    ``cols[q][k]`` is the ball of ``floats[k, q]``."""
    out = np.zeros(floats.shape, dtype=bool)
    last, zero = None, False
    for k, q in zip(*np.nonzero(floats == 0)):
        x = cols[q][k]
        if x is not last:  # an unchanged quantity is the same ball step after step
            last, zero = x, type(x) is not _Special and x.is_zero()
        out[k, q] = zero
    return out


# --- the engine ----------------------------------------------------------------------------

@dataclass
class BallRun:
    """Everything a ball run learned, per quantity (``Trajectory.QUANTITIES``) per parameter,
    each array of shape (steps, elements of the parameter).

    ``values``: the certified float64s (zeros signed by the float64 shadow); ``ties``,
    ``overflow`` and ``zeros`` (the ball is exactly 0): boolean masks; ``tie_other``: at a
    tie, the other neighbour of the midpoint (NaN elsewhere); ``balls``, where kept: the
    first ball computed for each value (an ``arb``, or a special for NaN and ±∞), at the
    precision in ``balls_prec``. ``counts``: values proven at the first precision, at a
    raised one, and ties; ``prec_bits``: the precisions run.
    """

    values: list[list[np.ndarray]]
    ties: list[list[np.ndarray]]
    tie_other: list[list[np.ndarray]]
    overflow: list[list[np.ndarray]]
    zeros: list[list[np.ndarray]]
    balls: list[list[np.ndarray]] | None
    balls_prec: list[list[np.ndarray]] | None
    prec_bits: list[int]
    counts: dict[str, int] = field(default_factory=dict)

    def precision(self) -> dict[str, Any]:
        """The certificate in numbers, easy to sum over cases."""
        return {"engine": "arb", "certificate": "ball", "prec_bits": list(self.prec_bits),
                "proven_first": self.counts.get("proven_first", 0),
                "proven_raised": self.counts.get("proven_raised", 0),
                "ties": self.counts.get("ties", 0)}

    def store(self, q: int, i: int, k: int, e: int, x, value: float,
              other: float | None) -> None:
        self.values[q][i][k, e] = value
        if other is not None:
            self.ties[q][i][k, e] = True
            self.tie_other[q][i][k, e] = other
        if type(x) is not _Special:
            if math.isinf(value):
                self.overflow[q][i][k, e] = True
            elif value == 0 and x.is_zero():
                self.zeros[q][i][k, e] = True


def _element_trajectory(dialect, consts, plain, group, steps, start, grads, fast):
    """The balls of one element: per step (θ, m, v, vmax); shorter where a ball became too
    wide to decide an IEEE branch at this precision."""
    arb = _arb
    out = []
    state = start
    careful = any(type(s) is _Special for s in state)
    grads = grads.tolist()
    for k in range(steps):
        c = consts[k][group]
        g = grads[k]
        g = arb(g) if g - g == 0 else _Special(g)  # x − x is 0 exactly when x is finite
        try:
            if careful or type(g) is _Special or not plain[k][group]:
                new = adam_step(_CAREFUL, dialect, c, *state, g)
                careful = any(type(x) is _Special for x in new)
            else:
                new = adam_step(fast, dialect, c, *state, g)
                # a zero or straddling denominator leaves a NaN ball, which reaches θ
                if not (new[0].is_finite() and (new[3] is state[3] or new[3].is_finite())):
                    new = adam_step(_CAREFUL, dialect, c, *state, g)
                    careful = any(type(x) is _Special for x in new)
        except _Unresolved:
            break
        out.append(new)
        state = new
    return out


def ball_run(problem: Problem, dialect: Dialect = SPEC, *, first_prec: int = FIRST_PREC,
             max_prec: int = MAX_PREC, keep_balls: bool = False) -> BallRun:
    """Run ``problem`` in ball arithmetic and certify every value's float64 rounding.

    Raises :class:`~adamconf.reference.engine.PrecisionError` naming the parameter, quantity,
    step and element of a value that is neither proven nor a tie at ``max_prec`` bits.
    """
    if first_prec < 60:
        raise ValueError(f"first_prec={first_prec} bits cannot prove float64 roundings; "
                         "use at least 60")
    flint = _flint()
    saved = flint.ctx.prec
    try:
        return _ball_run(flint, problem, dialect, first_prec, max(max_prec, first_prec),
                         keep_balls)
    finally:
        flint.ctx.prec = saved


def _ball_run(flint, problem, dialect, first_prec, max_prec, keep_balls) -> BallRun:
    steps = problem.steps
    owner = problem.group_of_param()
    params = problem.params
    shapes = [(steps, p.size) for p in params]

    def arrays(make):
        return [[make(s) for s in shapes] for _ in _QUANTITIES]

    run = BallRun(values=arrays(np.empty), ties=arrays(lambda s: np.zeros(s, dtype=bool)),
                  tie_other=arrays(lambda s: np.full(s, np.nan)),
                  overflow=arrays(lambda s: np.zeros(s, dtype=bool)),
                  zeros=arrays(lambda s: np.zeros(s, dtype=bool)),
                  balls=arrays(lambda s: np.empty(s, dtype=object)) if keep_balls else None,
                  balls_prec=arrays(lambda s: np.zeros(s, dtype=np.int64))
                  if keep_balls else None,
                  prec_bits=[], counts={"proven_first": 0, "proven_raised": 0, "ties": 0})
    starts = [(p.reshape(-1), initial_values(problem, "m", i, p.shape).reshape(-1),
               initial_values(problem, "v", i, p.shape).reshape(-1),
               initial_vmax(problem, dialect, i, p.shape).reshape(-1))
              for i, p in enumerate(params)]
    columns = [problem.grads[i].reshape(steps, -1) for i in range(len(params))]

    # per element still open: {(quantity, step): (lower rounding, upper rounding, ball),
    # or None where no ball was computed (the element stopped before that step)}
    unresolved: dict[tuple[int, int], dict[tuple[int, int], tuple | None]] = {}
    prec = first_prec
    while True:
        flint.ctx.prec = prec
        run.prec_bits.append(prec)
        consts, plain = _ball_constants(problem, dialect)
        fast = _fast_arith()
        if len(run.prec_bits) == 1:
            for i in range(len(params)):
                _first_pass(run, dialect, consts, plain, owner[i], i, starts[i], columns[i],
                            unresolved, prec, steps, fast)
        else:
            for (i, e), pending in list(unresolved.items()):
                start = tuple(_to_ball(s[e]) for s in starts[i])
                traj = _element_trajectory(dialect, consts, plain, owner[i], steps, start,
                                           columns[i][:, e], fast)
                for (q, k) in list(pending):
                    if k >= len(traj):
                        continue
                    x = traj[k][q]
                    if run.balls is not None and run.balls[q][i][k, e] is None:
                        run.balls[q][i][k, e] = x
                        run.balls_prec[q][i][k, e] = prec
                    lo, hi, other = _ends(x)
                    if _same(lo, hi):
                        run.store(q, i, k, e, x, lo, other)
                        run.counts["proven_raised" if other is None else "ties"] += 1
                        del pending[(q, k)]
                    else:
                        pending[(q, k)] = (lo, hi, x)
                if not pending:
                    del unresolved[(i, e)]
        if not unresolved or prec * 2 > max_prec:
            break
        prec *= 2
    for (i, e), pending in unresolved.items():
        for (q, k), ends in sorted(pending.items(), key=lambda item: (item[0][1], item[0][0])):
            if ends is not None and math.nextafter(ends[0], _INF) == ends[1]:
                lo, hi, x = ends  # one midpoint in the ball: a tie, stored ties-to-even
                even = _even_of(lo, hi)
                run.store(q, i, k, e, x, even, hi if even == lo else lo)
                run.counts["ties"] += 1
                continue
            what = (f"its ball rounds to {ends[0]!r} .. {ends[1]!r}" if ends is not None
                    else "a ball straddled zero where an IEEE outcome depends on its sign")
            raise PrecisionError(f"param {i} {_QUANTITIES[q]} step {k} element {e}: not "
                                 f"proven at {prec} bits ({what})")
    if any((a == 0).any() for arrays in run.values for a in arrays):
        shadow = run_float64(problem, dialect)  # a ball has no −0: IEEE's sign, from the shadow
        for q, name in enumerate(_QUANTITIES):
            for i in range(len(params)):
                arr, sh = run.values[q][i], shadow.quantity(name)[i].reshape(shapes[i])
                signed = (arr == 0) & (sh == 0)
                arr[signed] = np.copysign(0.0, sh[signed])
    return run


def _first_pass(run, dialect, consts, plain, group, i, start, column, unresolved, prec, steps,
                fast):
    """All elements of parameter ``i`` at the first precision, checked by the float test."""
    counts = run.counts
    for e in range(column.shape[1]):
        state = tuple(_to_ball(s[e]) for s in start)
        traj = _element_trajectory(dialect, consts, plain, group, steps, state,
                                   column[:, e], fast)
        length = len(traj)
        cols = [[new[q] for new in traj] for q in range(4)]
        fl = np.empty((length, 4))
        rs = np.empty((length, 4))
        ac = np.empty((length, 4))
        for q, col in enumerate(cols):
            if length and all(x is col[0] for x in col):  # unchanged (v̂max without amsgrad)
                x = col[0]
                f = float(x)
                fl[:, q], rs[:, q], ac[:, q] = f, float(x - f), x.rel_accuracy_bits()
                continue
            floats = [float(x) for x in col]
            fl[:, q] = floats
            rs[:, q] = [float(x - f) for x, f in zip(col, floats)]
            ac[:, q] = [x.rel_accuracy_bits() for x in col]
        proven = _fast_proven(fl, rs, ac)
        for q in range(4):
            run.values[q][i][:length, e] = fl[:, q]
            if run.balls is not None:
                run.balls[q][i][:length, e] = cols[q]
                run.balls_prec[q][i][:length, e] = prec
        exact_zero = _exact_zeros(cols, fl)
        proven |= exact_zero
        counts["proven_first"] += int(proven.sum())
        for q in range(4):
            run.zeros[q][i][:length, e] = exact_zero[:, q]
        for k, q in zip(*np.nonzero(~proven)):
            x = cols[q][k]
            lo, hi, other = _ends(x)
            if _same(lo, hi):
                run.store(q, i, k, e, x, lo, other)
                counts["proven_first" if other is None else "ties"] += 1
            else:
                unresolved.setdefault((i, e), {})[(q, k)] = (lo, hi, x)
        for k in range(length, steps):
            for q in range(4):
                unresolved.setdefault((i, e), {})[(q, k)] = None


def run_balls(problem: Problem, dialect: Dialect = SPEC, *, first_prec: int = FIRST_PREC,
              max_prec: int = MAX_PREC) -> Trajectory:
    """The trajectory from Arb alone, each value proven correctly rounded (or a marked tie).

    No mpmath: the fast path for re-judging dialects, fuzzing and sharpness. Exact values
    beyond float64's range are stored as ±inf and marked in ``overflow``, as
    :func:`~adamconf.reference.engine.run_reference` does.
    """
    run = ball_run(problem, dialect, first_prec=first_prec, max_prec=max_prec)
    return _trajectory(problem, dialect, run)


def _trajectory(problem: Problem, dialect: Dialect, run: BallRun, values=None) -> Trajectory:
    steps = problem.steps
    shapes = [(steps,) + p.shape for p in problem.params]
    values = run.values if values is None else values
    quantities = [[a.reshape(s) for a, s in zip(values[q], shapes)] for q in range(4)]
    overflow = None
    if any(m.any() for masks in run.overflow for m in masks):
        overflow = {name: [m.reshape(s) for m, s in zip(run.overflow[q], shapes)]
                    for q, name in enumerate(_QUANTITIES)}
    ties = {name: [m.reshape(s) for m, s in zip(run.ties[q], shapes)]
            for q, name in enumerate(_QUANTITIES)}
    return Trajectory(*quantities, vmax_kind=dialect.vmax_kind, precision=run.precision(),
                      overflow=overflow, ties=ties)


# --- certifying the mpmath reference ---------------------------------------------------------

def outside_ball(y, ball, mp_prec: int, ball_prec: int) -> bool:
    """Whether mpmath's value ``y`` (at ``mp_prec`` bits) disagrees with ``ball``.

    The ball encloses the exact value; mpmath's value carries mpmath's own rounding errors,
    which no enclosure covers. Computed at mpmath's precision, the ball's radius holds a bound
    on each rounding at least as large as mpmath's (a full ulp against mpmath's half ulp),
    propagated in absolute value: so ``y`` must lie in the ball with its radius scaled from
    ``ball_prec`` to ``mp_prec`` bits and a factor 16 for second-order terms, plus one
    rounding of ``y`` itself. NaN and ±∞ must be the same special on both sides.
    """
    sign, man, exp, _ = y._mpf_
    if not man and exp:  # mpmath's NaN or ±∞
        special = math.nan if exp == -123 else (-_INF if sign else _INF)
        return not (type(ball) is _Special and _same(ball.value, special))
    if type(ball) is _Special:
        return True
    man = int(man)
    yb = _arb((-man if sign else man, int(exp))) if man else _arb(0)
    gap = (ball.mid() - yb).abs_upper()
    allowed = (ball.rad() * _power_of_two(max(ball_prec - mp_prec, 0) + 4)
               + abs(yb) * _power_of_two(1 - mp_prec))
    return not gap <= allowed


def _power_of_two(n: int):
    return _arb((1, n))


def _outside_many(ys: list, xs: list, mp_prec: int, ball_precs: np.ndarray) -> np.ndarray:
    """:func:`outside_ball` for many values: the comparison in float64 where the magnitudes
    allow (the test is a cross-check, not a proof: float64's rounding of the gap and the
    radius is far below the factor 16 it allows), exactly elsewhere."""
    arb = _arb
    n = len(ys)
    gap = np.empty(n)
    rad = np.empty(n)
    mag = np.empty(n)
    exact = np.zeros(n, dtype=bool)
    for j, (y, x) in enumerate(zip(ys, xs)):
        sign, man, exp, _ = y._mpf_
        if (not man) or type(x) is _Special:
            exact[j] = True
            continue
        man = int(man)
        yb = arb((-man if sign else man, int(exp)))
        gap[j] = float(x - yb)  # the midpoint's distance from mpmath's value
        rad[j] = float(x.rad())
        mag[j] = float(yb)
    with np.errstate(all="ignore"):
        scale = np.ldexp(1.0, np.maximum(ball_precs - mp_prec, 0) + 4)
        a = np.abs(mag)
        usable = ~exact & (a > 1e-250) & (a < 1e250)
        outside = np.abs(gap) > rad * scale * (1 + 2.0 ** -40) + a * 2.0 ** (1 - mp_prec)
    outside &= usable
    for j in np.flatnonzero(~usable):
        outside[j] = outside_ball(ys[j], xs[j], mp_prec, int(ball_precs[j]))
    return outside


def certify_mp(problem: Problem, dialect: Dialect, values: list[list[np.ndarray]],
               raw: list[list[np.ndarray]], dps: int) -> tuple[BallRun, str | None]:
    """Check the mpmath run against the balls; store the tie rule's value at ties.

    ``values``: mpmath's roundings per quantity per parameter (changed in place at ties);
    ``raw``: mpmath's values, object arrays of shape (steps, size). Raises
    :class:`~adamconf.reference.engine.CertificateError` where an mpmath value lies outside
    its ball. Returns the ball run and, where mpmath's value is in its ball but rounds to
    another float64 than the proven one (too few digits: θ0 = 1e-300 lost in θ0 − γ at 50
    digits, say), a message naming the first such value — more digits are needed.
    """
    from mpmath import libmp

    from .step import CertificateError

    mp_prec = libmp.dps_to_prec(dps)
    # balls at mpmath's own precision: where mpmath rounds, Arb rounds too and widens its
    # ball by at least that rounding, so mpmath's value stays in the (widened) ball
    run = ball_run(problem, dialect, first_prec=mp_prec, keep_balls=True)
    flint = _flint()
    saved = flint.ctx.prec
    mismatch = None
    try:
        flint.ctx.prec = max(run.prec_bits + [mp_prec]) + 64
        for q, name in enumerate(_QUANTITIES):
            for i in range(len(problem.params)):
                ys, xs, precs = raw[q][i], run.balls[q][i], run.balls_prec[q][i]
                outside = _outside_many(ys.ravel().tolist(), xs.ravel().tolist(), mp_prec,
                                        precs.ravel())
                if outside.any():
                    k, e = np.unravel_index(int(np.flatnonzero(outside)[0]), ys.shape)
                    raise CertificateError(
                        f"param {i} {name} step {k} element {e}: mpmath at {dps} digits "
                        f"gives {libmp.to_str(ys[k, e]._mpf_, 40)}, outside the Arb ball "
                        f"{xs[k, e]} (at {precs[k, e]} bits); two libraries, two "
                        "answers: this value cannot be certified")
                mine = values[q][i].reshape(ys.shape)
                proven, tie = run.values[q][i], run.ties[q][i]
                agree = (mine == proven) | (np.isnan(mine) & np.isnan(proven))
                wrong = ~agree & ~tie
                if wrong.any() and mismatch is None:
                    k, e = (int(n) for n in np.argwhere(wrong)[0])
                    mismatch = (f"param {i} {name} step {k} element {e}: mpmath at {dps} digits "
                                f"rounds to {float(mine[k, e])!r} ({float(mine[k, e]).hex()}), "
                                f"the Arb ball proves {float(proven[k, e])!r} "
                                f"({float(proven[k, e]).hex()})")
                mine[tie] = proven[tie]
    finally:
        flint.ctx.prec = saved
    return run, mismatch


@dataclass(frozen=True)
class Disproof:
    """A stored value that the ball proves wrong."""

    param: int
    quantity: str
    step: int
    element: int
    stored: float
    proven: float

    def __str__(self) -> str:
        return (f"param {self.param} {self.quantity} step {self.step} element "
                f"{self.element}: stored {self.stored!r} ({float(self.stored).hex()}), the "
                f"ball proves {self.proven!r} ({float(self.proven).hex()})")


def find_disproofs(problem: Problem, trajectory: Trajectory, dialect: Dialect = SPEC
                   ) -> list[Disproof]:
    """Every stored value of ``trajectory`` that is not the proven rounding.

    At a tie either neighbour of the midpoint is accepted; zeros compare by value (the sign
    of a zero is IEEE's rule, not something a ball proves). For ``golden check``.
    """
    run = ball_run(problem, dialect)
    found = []
    for q, name in enumerate(_QUANTITIES):
        for i, stored_arr in enumerate(trajectory.quantity(name)):
            stored = np.asarray(stored_arr, dtype=np.float64).reshape(run.values[q][i].shape)
            proven = run.values[q][i]
            same = (stored == proven) | (np.isnan(stored) & np.isnan(proven))
            same |= run.ties[q][i] & (stored == run.tie_other[q][i])
            for k, e in zip(*np.nonzero(~same)):
                found.append(Disproof(i, name, int(k), int(e), float(stored[k, e]),
                                      float(proven[k, e])))
    return found
