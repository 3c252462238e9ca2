"""Correct implementations of the documented Adam, for the no-false-failure tests.

The implementations themselves live in :mod:`adamconf.conformance.tools.sharpness` (the CLI's
``adamconf sharpness`` runs them too); this module names the family per dtype, adds one
implementation written independently of that emulator (to check the emulator), and the
hypothesis strategies for small problems whose inputs are exact in a dtype.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from adamconf.conformance.tools.sharpness import Recipe, Trace, correct_recipes
from adamconf.reference.config import GroupConfig
from adamconf.reference.floats import FORMATS
from adamconf.reference.problem import Group, InitialState, Problem

DTYPES = ("float64", "float32", "float16", "bfloat16")

FAMILY: dict[str, list[Recipe]] = {dtype: correct_recipes(dtype) for dtype in DTYPES}

# The 1000-step cases are most of the corpus's size: on them, the documented and torch
# orderings stand for all, and held scalars test β^t as a running product over 1000 steps.
LONG_CASE_ORDERINGS = ("documented", "torch")


def runs_long_cases(recipe: Recipe) -> bool:
    return (recipe.ordering in LONG_CASE_ORDERINGS and not recipe.ftz and not recipe.opmath
            and (recipe.scalars == "float64" or recipe.ordering == "documented"))


def independent_float32(problem: Problem) -> Trace:
    """The documented order in plain float32 numpy, written without the emulator.

    Hyperparameters and bias corrections are computed in float64 and rounded to float32
    where they meet an array, as the emulator's ``documented`` recipe does: the two must
    agree bit for bit.
    """
    f = np.float32
    owner = problem.group_of_param()
    state = problem.initial_state
    out = Trace([], [], [], [])
    with np.errstate(all="ignore"):
        for i, p in enumerate(problem.params):
            group = problem.groups[owner[i]]
            cfg = group.config
            theta = p.astype(f)
            m = (np.zeros(p.shape) if state is None else state.m[i]).astype(f)
            v = (np.zeros(p.shape) if state is None else state.v[i]).astype(f)
            vmax = (np.zeros(p.shape) if state is None else state.vmax[i]).astype(f)
            rows = [np.empty((problem.steps,) + p.shape) for _ in range(4)]
            for k in range(problem.steps):
                t = problem.initial_step + k + 1
                g = problem.grads[i][k].astype(f)
                if cfg.maximize:
                    g = -g
                if cfg.weight_decay:
                    g = g + f(cfg.weight_decay) * theta
                m = f(cfg.beta1) * m + f(1.0 - cfg.beta1) * g
                v = f(cfg.beta2) * v + f(1.0 - cfg.beta2) * (g * g)
                m_hat = m / f(1.0 - cfg.beta1 ** t)
                v_hat = v / f(1.0 - cfg.beta2 ** t)
                if cfg.amsgrad:
                    vmax = np.maximum(vmax, v_hat)
                    v_hat = vmax
                theta = theta - f(group.lr_at(k)) * (m_hat / (np.sqrt(v_hat) + f(cfg.eps)))
                for row, value in zip(rows, (theta, m, v, vmax), strict=True):
                    row[k] = value
            for name, row in zip(("theta", "m", "v", "vmax"), rows, strict=True):
                getattr(out, name).append(row)
    return out


# --- hypothesis: small problems with inputs exact in a dtype ------------------------------

def exact_values(dtype: str, zero: bool = True, wide: bool = False
                 ) -> st.SearchStrategy[float]:
    """±k·2^e with k of at most min(p, 10) bits and 0: normal and moderate in ``dtype``, or
    (``wide``) anywhere from the subnormals to 2^-20 of the largest finite value."""
    fmt = FORMATS[dtype]
    bits = min(fmt.precision, 10)
    if wide:  # magnitude in [2^(e-1), 2^e)
        low, high = fmt.emin - fmt.precision + bits + 1, fmt.emax - 20
    else:
        low, high = (-8, 5) if dtype == "float16" else (-24, 8)
    value = st.builds(lambda sign, k, e: sign * k * 2.0 ** (e - bits),
                      st.sampled_from([-1.0, 1.0]),
                      st.integers(2 ** (bits - 1), 2 ** bits - 1), st.integers(low, high))
    return st.one_of(st.just(0.0), value) if zero else value


def _arrays(draw, dtype: str, shape, nonnegative: bool = False, zero: bool = True,
            wide: bool = False):
    size = int(np.prod(shape)) if shape else 1
    values = draw(st.lists(exact_values(dtype, zero, wide), min_size=size, max_size=size))
    a = np.array(values, dtype=np.float64).reshape(shape)
    return np.abs(a) if nonnegative else a


@st.composite
def small_problems(draw, dtype: str, wide: bool = False) -> Problem:
    """1–2 groups, 1–3 elements, 1–6 steps, any option, maybe resumed, maybe a schedule;
    ``wide``: gradients from the subnormals to near overflow."""
    steps = draw(st.integers(1, 6))
    groups, grads, inits = [], [], []
    for _ in range(draw(st.integers(1, 2))):
        shape = draw(st.sampled_from([(), (1,), (2,), (3,)]))
        beta1 = draw(st.one_of(st.sampled_from([0.0, 0.5, 0.9]), st.floats(0.0, 0.99)))
        beta2 = draw(st.one_of(st.sampled_from([0.9, 0.99, 0.999, 0.9999]),
                               st.floats(0.5, 0.9999)))
        config = GroupConfig(
            lr=draw(st.one_of(st.sampled_from([1e-3, 0.01, 0.1]), st.floats(1e-4, 0.5))),
            betas=(beta1, beta2),
            eps=draw(st.sampled_from([0.0, 1e-8, 1e-6, 1e-3] + ([1e-40, 1e-300] if wide
                                                                 else []))),
            weight_decay=draw(st.sampled_from([0.0, 0.0, 0.01, 0.1])),
            amsgrad=draw(st.booleans()), maximize=draw(st.booleans()))
        lrs = None
        if draw(st.booleans()):
            lrs = np.array(draw(st.lists(st.floats(0.0, 0.2), min_size=steps,
                                         max_size=steps)))
        groups.append(Group(config, (_arrays(draw, dtype, shape),), lrs))
        grads.append(_arrays(draw, dtype, (steps,) + shape, wide=wide))
        inits.append(shape)
    state = None
    start = draw(st.sampled_from([0, 0, 3, 1000, 10_000_000]))
    if start:
        m0 = tuple(_arrays(draw, dtype, s) for s in inits)
        v0 = tuple(_arrays(draw, dtype, s, nonnegative=True) for s in inits)
        vmax0 = tuple(np.maximum(_arrays(draw, dtype, s, nonnegative=True), v)
                      if g.config.amsgrad else np.zeros(s)
                      for s, v, g in zip(inits, v0, groups, strict=True))
        state = InitialState(start, m0, v0, vmax0)
    return Problem(tuple(groups), tuple(grads), state)


@st.composite
def enclosure_problems(draw, dtype: str) -> Problem:
    """Where the first-order bound leaves the denominator unresolved in D and the non-linear
    enclosure decides: gradients about where (1 − β2)·g² underflows in D (or exactly 0), β2
    up to 1 − 2^-20, ε from 0 to large against √v̂, lr 0 on some steps; 1–5 steps, one
    group, any option."""
    fmt = FORMATS[dtype]
    steps = draw(st.integers(1, 5))
    shape = draw(st.sampled_from([(1,), (2,), (3,)]))
    beta2 = draw(st.sampled_from([0.9, 0.999, 0.9999, 1.0 - 2.0**-20]))
    bits = min(fmt.precision, 10)
    # (1 − β2)·g² near D's smallest subnormal
    center = round((math.log2(fmt.smallest_subnormal) - math.log2(1.0 - beta2)) / 2)
    gradient = st.one_of(st.just(0.0), st.builds(
        lambda sign, k, e: sign * k * 2.0 ** (e - bits), st.sampled_from([-1.0, 1.0]),
        st.integers(2 ** (bits - 1), 2 ** bits - 1),
        st.integers(max(center - 6, fmt.emin - fmt.precision + bits + 1), center + 6)))
    size = int(np.prod(shape))
    grads = np.array(draw(st.lists(gradient, min_size=steps * size, max_size=steps * size))
                     ).reshape((steps,) + shape)
    config = GroupConfig(
        lr=draw(st.sampled_from([1e-3, 0.01, 0.1])),
        betas=(draw(st.sampled_from([0.0, 0.5, 0.9])), beta2),
        eps=draw(st.sampled_from([0.0, 1e-8, 1e-6, 1e-3, 2.0**-10]
                                 + ([1e-40] if dtype in ("float32", "bfloat16") else []))),
        weight_decay=draw(st.sampled_from([0.0, 0.0, 0.01])),
        amsgrad=draw(st.booleans()), maximize=draw(st.booleans()))
    lrs = None
    if draw(st.booleans()):
        lrs = np.array(draw(st.lists(st.sampled_from([0.0, 1e-3, 0.01]), min_size=steps,
                                     max_size=steps)))
    return Problem((Group(config, (_arrays(draw, dtype, shape, zero=False),), lrs),),
                   (grads,))
