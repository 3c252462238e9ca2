"""The executable spec: Adam as documented, in mpmath at P decimal digits.

One function, :func:`adam_step`, states the update rule for every dialect and runs on three
kinds of numbers: mpmath scalars (the reference of record), Arb balls
(:mod:`adamconf.reference.balls`: enclosures that prove each stored rounding) and float64
numpy arrays (a fast IEEE shadow used for the sign of zero results, which neither
arbitrary-precision library carries, and as a cheap approximation where exactness is not
needed). Precision is scoped: a private ``mpmath.MPContext`` per run; the global ``mp.dps``
is never read or written.

Non-finite arithmetic follows IEEE 754: x/0 is ±∞ (NaN for 0/0 and NaN/0), ∞ − ∞ and 0·∞
are NaN, and max() propagates NaN (as ``numpy.maximum`` and ``torch.maximum`` do).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

from .dialects import SPEC, Dialect
from .floats import mpf_to_float64
from .problem import Problem, Trajectory
from .step import (
    Arith,
    CertificateError,
    PrecisionError,
    StepConstants,
    adam_step,
    initial_values,
    initial_vmax,
    run_float64,
    step_constants,
)

__all__ = ["describe_reference", "run_reference", "run_float64", "adam_step", "DEFAULT_DPS",
           "PrecisionError", "CertificateError", "Arith", "StepConstants", "step_constants",
           "initial_values", "initial_vmax"]

DEFAULT_DPS = 50
MAX_DPS = 800  # mpmath digits: beyond this a value mpmath cannot round is an error


def describe_reference() -> str:
    """The reference in a few words, for report headers."""
    try:
        from importlib.metadata import version

        flint = version("python-flint")
    except Exception:
        flint = "?"
    return (f"mpmath {mpmath.__version__} at {DEFAULT_DPS} digits, every stored value proven "
            f"correctly rounded by Arb ball arithmetic (python-flint {flint})")


def _mp_arith(ctx: mpmath.MPContext) -> Arith:
    nan, inf = ctx.nan, ctx.inf
    isnan = ctx.isnan

    def div(a, b):
        if b:
            return a / b
        # denominators here are +0 (√0 + 0, 1 − β^0): IEEE gives ±∞, or NaN for 0/0
        if isnan(a) or not a:
            return nan
        return inf if a > 0 else -inf

    def maximum(a, b):
        if isnan(a) or isnan(b):
            return nan
        return a if a >= b else b

    def fmax(a, b):  # a NaN operand is dropped; two NaNs give NaN
        if isnan(a):
            return b
        if isnan(b):
            return a
        return a if a >= b else b

    return Arith(div, ctx.sqrt, maximum, fmax)


def _run_mp(problem: Problem, dialect: Dialect, dps: int, keep: bool = False):
    """(rounded float64 values, exact-zero masks, overflow masks) per quantity per parameter,
    and with ``keep`` the mpmath values themselves (object arrays of shape (steps, size)).

    An overflow mask marks a finite exact value beyond float64's range (stored as ±inf).
    """
    ctx = mpmath.MPContext()
    ctx.dps = dps
    ar = _mp_arith(ctx)
    consts = step_constants(ctx.mpf, ctx.power, ctx.sqrt, problem, dialect)
    owner = problem.group_of_param()
    values: list[list[np.ndarray]] = [[] for _ in range(4)]
    zeros: list[list[np.ndarray]] = [[] for _ in range(4)]
    overflows: list[list[np.ndarray]] = [[] for _ in range(4)]
    kept: list[list[np.ndarray]] = [[] for _ in range(4)]
    mpf, isinf = ctx.mpf, ctx.isinf
    for i, p in enumerate(problem.params):
        steps = problem.steps
        flat_shape = (steps, p.size)
        outs = [np.empty(flat_shape) for _ in range(4)]
        zero_masks = [np.zeros(flat_shape, dtype=bool) for _ in range(4)]
        overflow_masks = [np.zeros(flat_shape, dtype=bool) for _ in range(4)]
        raw = [np.empty(flat_shape, dtype=object) for _ in range(4)] if keep else None
        theta0 = p.reshape(-1)
        m0 = initial_values(problem, "m", i, p.shape).reshape(-1)
        v0 = initial_values(problem, "v", i, p.shape).reshape(-1)
        vmax0 = initial_vmax(problem, dialect, i, p.shape).reshape(-1)
        grads = problem.grads[i].reshape(steps, -1)
        group_consts = [consts[k][owner[i]] for k in range(steps)]
        for e in range(p.size):
            state = (mpf(theta0[e]), mpf(m0[e]), mpf(v0[e]), mpf(vmax0[e]))
            column = grads[:, e]
            states = []
            for k in range(steps):
                state = adam_step(ar, dialect, group_consts[k], *state, mpf(column[k]))
                if keep:
                    states.append(state)
                for q in range(4):
                    value = state[q]
                    rounded = outs[q][k, e] = mpf_to_float64(value)
                    if not value:
                        zero_masks[q][k, e] = True
                    elif math.isinf(rounded) and not isinf(value):
                        overflow_masks[q][k, e] = True
            if keep:
                for q in range(4):
                    raw[q][:, e] = [s[q] for s in states]
        for q in range(4):
            values[q].append(outs[q].reshape((steps,) + p.shape))
            zeros[q].append(zero_masks[q].reshape((steps,) + p.shape))
            overflows[q].append(overflow_masks[q].reshape((steps,) + p.shape))
            if keep:
                kept[q].append(raw[q])
    if keep:
        return values, zeros, overflows, kept
    return values, zeros, overflows


def run_reference(problem: Problem, dialect: Dialect = SPEC, *, dps: int = DEFAULT_DPS,
                  certify: bool = True) -> Trajectory:
    """The trajectory of ``problem`` under ``dialect``, each value correctly rounded to float64.

    mpmath at ``dps`` digits is the reference of record. With ``certify`` (the default) the
    same step runs again in Arb ball arithmetic (:mod:`adamconf.reference.balls`), a second
    library by other authors: every mpmath value must lie in its value's ball (allowing for
    mpmath's own rounding, see :func:`~adamconf.reference.balls.outside_ball`), and every
    stored float64 is the rounding the ball proves, which must be mpmath's rounding too —
    except at an exact tie (a float64 midpoint), stored ties-to-even and marked in ``ties``.
    ``precision`` then counts the proofs (``proven_first``, ``proven_raised``, ``ties``) and
    lists the ball precisions run (``prec_bits``). Where mpmath's value lies in its ball but
    rounds otherwise (its digits too few to resolve the value), mpmath runs again at twice the
    digits (``mpmath_dps`` says how many were used). Raises :class:`CertificateError` where
    the two libraries disagree, or mpmath still rounds otherwise at ``MAX_DPS`` digits, and
    :class:`PrecisionError` where a value is neither proven nor a tie at the highest
    precision.
    """
    if dps < 20:
        raise ValueError(f"dps={dps} is too few digits for a reference; use at least 20")
    if certify:
        from .balls import certify_mp

        used = dps
        while True:
            values, zeros, overflows, raw = _run_mp(problem, dialect, used, keep=True)
            run, mismatch = certify_mp(problem, dialect, values, raw, used)
            if mismatch is None:
                break
            if used * 2 > MAX_DPS:
                raise CertificateError(f"{mismatch}; mpmath still rounds otherwise at {used} "
                                       "digits")
            used *= 2  # mpmath's value is in the ball but its digits are too few to round
        precision = {"dps": dps, "mpmath_dps": used, **run.precision()}
        ties = {name: [m.reshape(v.shape) for m, v in zip(run.ties[q], values[q])]
                for q, name in enumerate(Trajectory.QUANTITIES)}
    else:
        values, zeros, overflows = _run_mp(problem, dialect, dps)
        precision = {"dps": dps, "engine": "mpmath", "certificate": None}
        ties = None
    shadow = run_float64(problem, dialect)
    # mpmath has no −0: an exactly-zero result takes the sign IEEE arithmetic gives it
    for q, name in enumerate(Trajectory.QUANTITIES):
        for arr, mask, sh in zip(values[q], zeros[q], shadow.quantity(name)):
            signed = mask & (sh == 0)
            arr[signed] = np.copysign(0.0, sh[signed])
    overflow = None
    if any(mask.any() for masks in overflows for mask in masks):
        overflow = dict(zip(Trajectory.QUANTITIES, overflows))
    return Trajectory(*values, vmax_kind=dialect.vmax_kind, precision=precision,
                      overflow=overflow, ties=ties)


def closed_form_constant_gradient(theta0: float, grad: float, lr: float, eps: float,
                                  steps: int) -> float:
    """θ_T for a constant gradient: m̂ = g and v̂ = g² at every t, so each step moves γ·g/(|g|+ε)."""
    return theta0 - steps * lr * grad / (abs(grad) + eps) if not math.isnan(grad) else math.nan
