"""The step description: Adam's update for every dialect, on any kind of number.

:func:`adam_step` is the documented rule (and each dialect's switches) written once; the
engines run it on mpmath scalars (:mod:`.engine`, the reference of record), on Arb balls
(:mod:`.balls`, the proof) and on float64 numpy arrays (:func:`run_float64`, the IEEE
shadow for the sign of zeros and a fast approximation). Each number kind brings an
:class:`Arith` for the three operations whose IEEE meaning it may not give by itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .dialects import SPEC, Dialect
from .problem import Problem, Trajectory

__all__ = ["PrecisionError", "CertificateError", "StepConstants", "Arith", "NUMPY_ARITH",
           "adam_step", "step_constants", "initial_values", "initial_vmax", "run_float64"]

class PrecisionError(RuntimeError):
    """The precision certificate could not be met even at the highest precision."""


class CertificateError(RuntimeError):
    """mpmath and the Arb balls disagree: a value of record that the proof does not back."""


@dataclass(frozen=True)
class StepConstants:
    """What one step of one group needs besides the element's own values."""

    lr: Any
    beta1: Any
    beta2: Any
    one_minus_beta1: Any
    one_minus_beta2: Any
    eps: Any
    weight_decay: Any
    decay_factor: Any  # 1 − γλ, for decoupled weight decay
    bias_correction1: Any
    bias_correction2: Any
    sqrt_bias_correction2: Any
    amsgrad: bool
    maximize: bool


class Arith:
    """The operations whose IEEE meaning a number type may not give by itself: division,
    square root, the max that propagates NaN and the max that drops it (fmax)."""

    def __init__(self, div: Callable, sqrt: Callable, maximum: Callable,
                 fmax: Callable | None = None) -> None:
        self.div, self.sqrt, self.maximum = div, sqrt, maximum
        self.fmax = fmax or maximum


def _numpy_div(a, b):
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        return np.true_divide(a, b)


def _numpy_sqrt(a):
    with np.errstate(invalid="ignore"):
        return np.sqrt(a)


NUMPY_ARITH = Arith(_numpy_div, _numpy_sqrt, np.maximum, np.fmax)

_DECOUPLED = ("decoupled", "decoupled-lr0", "decoupled-nolr", "decoupled-lr-ratio")


def adam_step(ar: Arith, dialect: Dialect, c: StepConstants, theta, m, v, vmax, grad):
    """One update of (θ, m, v, vmax) for a gradient; returns the new four.

    Written once for both number kinds; the dialect's switches pick the formula (see
    :class:`adamconf.reference.dialects.Dialect`).
    """
    if dialect.weight_decay_mode in _DECOUPLED and c.weight_decay:
        theta = theta * c.decay_factor
    g = grad
    if dialect.weight_decay_mode == "maximize-after-wd":
        if c.weight_decay:
            g = g + c.weight_decay * theta
        if c.maximize:
            g = -g
    else:
        if c.maximize:
            g = -g
        if dialect.weight_decay_mode == "l2" and c.weight_decay:
            g = g + c.weight_decay * theta
    m = c.beta1 * m + c.one_minus_beta1 * g
    v = c.beta2 * v + c.one_minus_beta2 * (g * g)

    amsgrad_mode = dialect.amsgrad_mode if c.amsgrad else "off"
    maximum = ar.fmax if dialect.max_nan == "drop" else ar.maximum
    after = dialect.weight_decay_mode == "after" and c.weight_decay
    if amsgrad_mode == "max-hat":
        vmax = maximum(vmax, ar.div(v, c.bias_correction2))
        second = vmax  # the bias-corrected second moment that the denominator uses
        second_raw = vmax * c.bias_correction2 if dialect.eps_mode == "hat" else None
    elif amsgrad_mode in ("max-raw", "paper"):
        # Reddi et al.'s is the max of raw v without bias correction anywhere: its bias
        # corrections are 1 (step_constants), and ε goes where the ε switch puts it
        vmax = maximum(vmax, v)
        second_raw = vmax
        second = ar.div(vmax, c.bias_correction2) if dialect.eps_mode != "hat" else None
    else:  # amsgrad off or ignored: the state is left as it was
        second_raw = v
        second = ar.div(v, c.bias_correction2) if dialect.eps_mode != "hat" else None

    if dialect.eps_mode == "hat":
        step_size = c.lr * ar.div(c.sqrt_bias_correction2, c.bias_correction1)
        theta = theta - step_size * ar.div(m, ar.sqrt(second_raw) + c.eps)
    else:
        if dialect.eps_mode == "inside-sqrt":
            denominator = ar.sqrt(second + c.eps)
        elif dialect.eps_mode == "floor":
            denominator = ar.maximum(ar.sqrt(second), c.eps)
        else:
            denominator = ar.sqrt(second) + c.eps
        theta = theta - c.lr * ar.div(ar.div(m, c.bias_correction1), denominator)
    # decay after the update: the new θ is decayed (transformers' old AdamW order)
    return (theta * c.decay_factor if after else theta), m, v, vmax


def step_constants(number: Callable, power: Callable, sqrt: Callable, problem: Problem,
               dialect: Dialect) -> list[list[StepConstants]]:
    """Per step, per group: the constants, computed in the number kind given."""
    out = []
    one = number(1.0)
    for k in range(problem.steps):
        t = problem.initial_step + k + 1 + dialect.step_offset
        row = []
        for group in problem.groups:
            cfg = group.config
            beta1, beta2 = number(cfg.beta1), number(cfg.beta2)
            lr = number(group.lr_at(k))
            wd = number(cfg.weight_decay)
            if dialect.weight_decay_mode == "decoupled-nolr":
                decay_factor = one - wd
            elif dialect.weight_decay_mode == "decoupled-lr0":
                decay_factor = one - number(cfg.lr) * wd  # the constructor's lr
            elif dialect.weight_decay_mode == "decoupled-lr-ratio":
                # λ·γ_t/γ_max; a group whose lr is always 0 leaves the ratio 1
                top = max([cfg.lr, *(() if group.lrs is None else group.lrs)])  # Group.max_lr
                ratio = lr / number(float(top)) if top else one
                decay_factor = one - ratio * wd
            else:
                decay_factor = one - lr * wd
            bias_off = not dialect.bias_correction or (
                cfg.amsgrad and dialect.amsgrad_mode == "paper")
            powers = getattr(group, "held_powers", None)  # β^t as inputs (rounded problem)
            if bias_off:
                bc1 = bc2 = one
            elif powers is not None:
                bc1, bc2 = one - number(float(powers[k][0])), one - number(float(powers[k][1]))
            else:
                bc1, bc2 = one - power(beta1, t), one - power(beta2, t)
            held = getattr(cfg, "held_one_minus_betas", None)  # a configuration held rounded
            if held is None:
                omb1, omb2 = one - beta1, one - beta2
            else:  # held apart from the rounded β (a rounded problem: see dialects)
                omb1, omb2 = (number(x) for x in held)
            row.append(StepConstants(
                lr=lr, beta1=beta1, beta2=beta2, one_minus_beta1=omb1,
                one_minus_beta2=omb2, eps=number(cfg.eps), weight_decay=wd,
                decay_factor=decay_factor, bias_correction1=bc1, bias_correction2=bc2,
                sqrt_bias_correction2=sqrt(bc2), amsgrad=cfg.amsgrad, maximize=cfg.maximize))
        out.append(row)
    return out


def initial_values(problem: Problem, name: str, index: int, shape) -> np.ndarray:
    state = problem.initial_state
    if state is None:
        return np.zeros(shape)
    return np.asarray(getattr(state, name)[index], dtype=np.float64)


def initial_vmax(problem: Problem, dialect: Dialect, index: int, shape) -> np.ndarray:
    """The resumed v̂max in the dialect's own meaning (raw dialects keep max of raw v)."""
    vmax = initial_values(problem, "vmax", index, shape)
    if dialect.vmax_kind == "raw" and problem.initial_state is not None:
        gi = problem.group_of_param()[index]
        # the β2 the user passed, as a backend is handed it, also where the problem holds
        # it rounded (a dialect's hyperparameters): the conversion is the seam's, not the
        # implementation's
        passed = problem.unrounded if problem.unrounded is not None else problem
        beta2 = passed.groups[gi].config.beta2
        vmax = vmax * (1.0 - beta2 ** problem.initial_step)  # float64: a resume convention
    return vmax




def run_float64(problem: Problem, dialect: Dialect = SPEC) -> Trajectory:
    """The same algorithm in float64 numpy, vectorised: fast, IEEE, not exact."""
    consts = step_constants(np.float64, lambda b, t: np.float64(b) ** np.float64(t), np.sqrt,
                        problem, dialect)
    owner = problem.group_of_param()
    traj = Trajectory([], [], [], [], vmax_kind=dialect.vmax_kind,
                      precision={"kind": "float64 shadow"})
    with np.errstate(all="ignore"):
        for i, p in enumerate(problem.params):
            theta, m = p.copy(), initial_values(problem, "m", i, p.shape).copy()
            v = initial_values(problem, "v", i, p.shape).copy()
            vmax = initial_vmax(problem, dialect, i, p.shape).copy()
            outs = [np.empty((problem.steps,) + p.shape) for _ in range(4)]
            for k in range(problem.steps):
                theta, m, v, vmax = adam_step(NUMPY_ARITH, dialect, consts[k][owner[i]],
                                              theta, m, v, vmax, problem.grads[i][k])
                for out, value in zip(outs, (theta, m, v, vmax)):
                    out[k] = value
            for name, out in zip(Trajectory.QUANTITIES, outs):
                traj.quantity(name).append(out)
    return traj
