"""Hypothesis strategies that draw whole cases of the spec, for fuzzing and property tests.

``cases(dtype)`` draws a :class:`~adamconf.conformance.corpus.cases.Case` whose every input
(parameters, gradients, resumed state) is exactly representable in ``dtype``: several
param groups with their own hyperparameters (edges included: ε = 0, subnormal, tiny,
default, large; β1 = 0 and just below 1; β2 just below 1 and default; lr = 0, tiny,
default, large; weight decay on or off; amsgrad; maximize), shapes from empty ``(0,)`` and
0-d ``()`` to small matrices, lr schedules, states resumed at step ~10^7 up to 2^31, and
values over the dtype's whole range (±0, subnormals, near the largest finite, sign flips,
runs of zeros). Non-finite inputs appear only with ``allow_non_finite=True``.

Hyperparameters are binary64 values, as a user passes them (the spec judges an
implementation that rounds them to its dtype by the bound); array values are drawn as
bit patterns of the target format, so they are exact by construction.

Sizes stay small (≤ 16 elements, ≤ 20 steps by default) so the mpmath reference takes
milliseconds; shrinking goes towards one group, one 0-d parameter, one step, the default
hyperparameters and values of 1.0 or 0.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from hypothesis import strategies as st

from adamconf.conformance.corpus.cases import Case
from adamconf.conformance.corpus.golden import problem_digest
from adamconf.reference.config import GroupConfig
from adamconf.reference.floats import FORMATS, FloatFormat, get_format
from adamconf.reference.problem import Group, InitialState, Problem

__all__ = ["DTYPES", "PARAM_PROFILES", "GRAD_PROFILES", "values", "arrays", "shapes",
           "learning_rates", "epsilons", "beta1s", "beta2s", "weight_decays",
           "hyperparameters", "lr_schedules", "cases", "problems", "InvalidHyperparameters",
           "invalid_hyperparameters", "case_tags"]

DTYPES = tuple(FORMATS)

# An array's profile says where its values lie. Repeats weight the draw towards ordinary
# values (extremes mostly end inconclusive, which costs an example and tells little);
# the first entry is where shrinking goes.
PARAM_PROFILES = ("typical", "typical", "typical", "zeros", "tiny", "subnormal", "huge", "wide")
GRAD_PROFILES = ("typical", "typical", "typical", "constant", "sign-flip", "zeros-run",
                 "tiny", "subnormal", "huge", "wide")
# Half of the cases keep every array ordinary (these profiles only), so most examples are
# judged rather than inconclusive; the other half draw each array's profile freely.
_ORDINARY_PARAMS = tuple(p for p in PARAM_PROFILES if p in ("typical", "zeros"))
_ORDINARY_GRADS = tuple(p for p in GRAD_PROFILES
                        if p in ("typical", "constant", "sign-flip", "zeros-run"))


# --- strategies built once (building one per draw costs more than the draw itself) -------

@functools.cache
def _integers(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


_BOOLEANS = st.booleans()
_ZERO_SIGNS = st.sampled_from((0.0, -0.0))
_NON_FINITE = st.sampled_from((math.nan, math.inf, -math.inf))


# --- values: sign, exponent and fraction in the target format --------------------------

def _format(dtype: str | FloatFormat) -> FloatFormat:
    return dtype if isinstance(dtype, FloatFormat) else get_format(dtype)


def _typical_low(fmt: FloatFormat) -> int:
    """The smallest exponent of a typical value: 2^-12, but in a narrow-range format
    (float16) no lower than where (1 − β2)·g² still lands above its subnormals."""
    return max(-12, fmt.emin // 2 + 4)


def _exponent_range(profile: str, fmt: FloatFormat) -> tuple[int, int]:
    """(lowest, highest) exponent of 2 of a profile's magnitudes in ``fmt``, inclusive.

    typical: 2^-12 (float16: 2^-3) up to just below 16; moment: their squares, the scale of
    v; tiny: normal numbers below typical; huge: the top four binades; subnormal; wide:
    everything finite.
    """
    lowest_subnormal = fmt.emin - fmt.precision + 1
    typical = _typical_low(fmt)
    low, high = {
        "typical": (typical, 3),
        "moment": (max(2 * typical, fmt.emin), 7),
        "tiny": (fmt.emin, typical - 1),
        "huge": (max(fmt.emax - 3, 4), fmt.emax),
        "subnormal": (lowest_subnormal, fmt.emin - 1),
        "wide": (lowest_subnormal, fmt.emax),
    }[profile]
    return low, max(high, low)


@dataclass(frozen=True)
class _Code:
    """One value as one integer k (one hypothesis choice: arrays stay cheap to draw).

    k mod H is the *head* (zero, sign and binade), k div H the *fraction*. Hypothesis
    draws small integers more often than large ones, so the head sits in the low digits,
    where that bias does no harm: heads come out near-uniform. The head, zigzag-decoded
    (0, −1, 1, −2, 2, …), is a zero when |head| < zero_band (−0 for head < 0); from there
    |head| − zero_band walks the profile's exponents outward from ``centre`` (0 where the
    range holds it): first up to ``high``, then down to ``low``. The fraction's bits,
    reversed (so small fractions give 1.5, 1.25, 1.75 …, not values just above a power of
    two), fill the significand from the top (fewer bits below the smallest normal).
    About one value in eight is a zero; shrinking goes to 0, then to ±2^centre.
    """

    fmt: FloatFormat
    low: int
    high: int
    centre: int
    zero_band: int
    signed: bool

    @property
    def heads(self) -> int:
        top = self.zero_band + self.high - self.low
        return 2 * top + 1 if self.signed else top + 1

    def strategy(self) -> st.SearchStrategy[int]:
        return st.integers(0, self.width - 1)

    @property
    def width(self) -> int:
        """How many codes there are: 0 ≤ k < width."""
        return self.heads * (1 << (self.fmt.precision - 1))

    def codes(self, blob: bytes, count: int, fraction_bits: int) -> list[int]:
        """``count`` codes from one drawn byte string: each from its own bytes (one more
        than the width needs, so the remainder is near-uniform), its fraction kept to
        ``fraction_bits`` bits (the significand's top bits: few bits, round values). All
        zero bytes give code 0, where shrinking goes."""
        size = len(blob) // count
        keep = (1 << fraction_bits) - 1
        out = []
        for i in range(count):
            k = int.from_bytes(blob[i * size:(i + 1) * size], "little") % self.width
            fraction, head = divmod(k, self.heads)
            out.append((fraction & keep) * self.heads + head)
        return out

    def decode(self, codes) -> np.ndarray:
        fraction_bits = self.fmt.precision - 1
        heads, fractions = [], []
        for k in np.atleast_1d(np.asarray(codes, dtype=object)).tolist():
            fraction, index = divmod(int(k), self.heads)
            if self.signed:  # zigzag: 0, −1, 1, −2, 2, …
                index = -((index + 1) // 2) if index % 2 else index // 2
            heads.append(index)
            fractions.append(int(format(fraction, f"0{fraction_bits}b")[::-1], 2)
                             if fraction_bits else 0)
        head = np.array(heads, dtype=np.int64)
        fraction = np.array(fractions, dtype=np.int64)
        j = np.maximum(np.abs(head) - self.zero_band, 0)
        up = self.high - self.centre
        exponent = np.where(j <= up, self.centre + j, self.centre - (j - up))
        # bits of fraction this binade has: all of them for normal numbers, fewer below
        available = np.minimum(fraction_bits, exponent - (self.fmt.emin - fraction_bits))
        kept = fraction >> (fraction_bits - available)
        significand = (np.left_shift(1, available) + kept).astype(np.float64)  # < 2^53: exact
        magnitude = np.ldexp(significand, (exponent - available).astype(np.int32))
        magnitude = np.where(np.abs(head) < self.zero_band, 0.0, magnitude)
        negative = (head < 0) if self.signed else np.zeros(head.shape, dtype=bool)
        return np.where(negative, -magnitude, magnitude)


@functools.cache
def _code(profile: str, fmt: FloatFormat, signed: bool, zeros: bool) -> _Code:
    low, high = _exponent_range(profile, fmt)
    centre = min(max(0, low), high)
    # about one value in eight a zero; at least ±0 both where the values are signed
    zero_band = max((high - low + 1) // 7, 2 if signed else 1) if zeros else 0
    return _Code(fmt, low, high, centre, zero_band, signed)


def values(dtype: str = "float32", profile: str = "typical", *, signed: bool = True,
           zeros: bool = True) -> st.SearchStrategy[float]:
    """Single values of ``dtype`` (as Python floats) in a profile.

    Profiles: ``typical`` (2^-12, or 2^-3 in float16, to 16), ``moment`` (their squares, the
    scale of v), ``tiny`` (normal, below typical), ``subnormal``, ``huge`` (top binades, up
    to the largest finite), ``wide`` (any finite magnitude). With ``zeros``, ±0 appear too
    (and are where shrinking goes)."""
    code = _code(profile, _format(dtype), signed, zeros)
    return code.strategy().map(lambda k: float(code.decode(k)[0]))


@functools.cache
def _bytes(size: int) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=size, max_size=size)


def _code_bytes(code: _Code) -> int:
    """Bytes a value of ``code`` is drawn from."""
    return (code.width.bit_length() + 7) // 8 + 1


@functools.cache
def _value_array(fmt: FloatFormat, count: int, profile: str, signed: bool = True,
                 zeros: bool = True) -> st.SearchStrategy[np.ndarray]:
    """``count`` values of one profile (cached: building strategies per draw costs more
    than drawing them). One byte string for the whole array and one significand width:
    two hypothesis choices however many values (drawing one integer per value made
    generation most of a fuzz run)."""
    if count == 0:
        return st.just(0).map(lambda _: np.zeros(0))
    code = _code(profile, fmt, signed, zeros)
    return st.tuples(_integers(0, fmt.precision - 1), _bytes(count * _code_bytes(code))).map(
        lambda drawn: code.decode(code.codes(drawn[1], count, drawn[0])))


def _draw_values(draw, fmt: FloatFormat, count: int, profile: str, width: int,
                 signed: bool = True, zeros: bool = True) -> np.ndarray:
    """As :func:`_value_array`, with the significand width (fraction bits kept) drawn
    already: one choice, the byte string."""
    if count == 0:
        return np.zeros(0)
    code = _code(profile, fmt, signed, zeros)
    return code.decode(code.codes(draw(_bytes(count * _code_bytes(code))), count, width))


def _profile_and_width(draw, fmt: FloatFormat, profiles: tuple[str, ...]) -> tuple[str, int]:
    """An array's profile and significand width as one hypothesis choice (k mod P, k div P):
    shrinking goes to the first profile and to round values together."""
    k = draw(_integers(0, len(profiles) * fmt.precision - 1))
    return profiles[k % len(profiles)], k // len(profiles)


def _sprinkle_non_finite(draw, array: np.ndarray) -> np.ndarray:
    """Maybe put a few NaN / ±∞ into a flat array (only where allowed)."""
    if array.size == 0 or not draw(_BOOLEANS):
        return array
    out = array.copy()
    positions = draw(st.lists(_integers(0, array.size - 1), min_size=1, max_size=3))
    for position in positions:
        out[position] = draw(_NON_FINITE)
    return out


def arrays(dtype: str, shape: tuple[int, ...], *, profiles: Sequence[str] = PARAM_PROFILES,
           allow_non_finite: bool = False) -> st.SearchStrategy[np.ndarray]:
    """A float64 array of ``shape`` whose values are exact in ``dtype`` (parameter-like)."""
    return _arrays(_format(dtype), tuple(shape), tuple(profiles), allow_non_finite)


@functools.lru_cache(maxsize=4096)
def _arrays(fmt: FloatFormat, shape: tuple[int, ...], profiles: tuple[str, ...],
            allow_non_finite: bool) -> st.SearchStrategy[np.ndarray]:

    @st.composite
    def build(draw):
        size = int(np.prod(shape, dtype=np.int64))
        profile, width = _profile_and_width(draw, fmt, tuple(profiles))
        if profile == "zeros":
            flat = np.array(draw(st.lists(_ZERO_SIGNS, min_size=size,
                                          max_size=size)), dtype=np.float64)
        else:
            flat = _draw_values(draw, fmt, size, profile, width)
        if allow_non_finite:
            flat = _sprinkle_non_finite(draw, flat)
        return flat.reshape(shape)

    return build()


@functools.lru_cache(maxsize=4096)
def _gradients(fmt: FloatFormat, steps: int, shape: tuple[int, ...], allow_non_finite: bool,
               profiles: tuple[str, ...] = GRAD_PROFILES
               ) -> st.SearchStrategy[tuple[np.ndarray, str]]:
    return _draw_gradients(fmt, steps, shape, allow_non_finite, profiles)


@st.composite
def _draw_gradients(draw, fmt: FloatFormat, steps: int, shape: tuple[int, ...],
                    allow_non_finite: bool, profiles: tuple[str, ...]
                    ) -> tuple[np.ndarray, str]:
    """Gradients of shape (steps, *shape) in one profile; returns (array, profile)."""
    size = int(np.prod(shape, dtype=np.int64))
    profile, width = _profile_and_width(draw, fmt, profiles)
    if size == 0:
        return np.zeros((steps,) + shape), profile
    if profile == "constant":
        row = _draw_values(draw, fmt, size, "typical", width)
        flat = np.tile(row, steps)
    elif profile == "sign-flip":
        row = _draw_values(draw, fmt, size, "typical", width, zeros=False)
        signs = np.where(np.arange(steps) % 2 == 0, 1.0, -1.0)
        flat = (signs[:, None] * row[None, :]).reshape(-1)
        if draw(_BOOLEANS):  # the same alternating signs with magnitudes that vary
            flat = np.copysign(draw(_value_array(fmt, steps * size, "typical", signed=False,
                                                 zeros=False)), flat)
    elif profile == "zeros-run":
        flat = _draw_values(draw, fmt, steps * size, "typical", width).reshape(steps, size)
        start = draw(_integers(0, steps - 1))
        stop = draw(_integers(start + 1, steps))
        flat[start:stop] = 0.0  # a long run of zero gradients: m and v decay, then restart
        if draw(_BOOLEANS):
            flat[:, draw(_integers(0, size - 1))] = 0.0  # one element never moves
        flat = flat.reshape(-1)
    else:
        flat = _draw_values(draw, fmt, steps * size, profile, width)
    if allow_non_finite:
        flat = _sprinkle_non_finite(draw, flat)
    return flat.reshape((steps,) + shape), profile


@functools.cache
def shapes(max_elements: int = 16) -> st.SearchStrategy[tuple[int, ...]]:
    """A parameter shape of at most ``max_elements`` elements: 0-d, empty, vector or matrix."""
    return _draw_shape(max_elements)


_SHAPE_KINDS = st.sampled_from(("0-d", "vector", "vector", "vector", "matrix", "empty"))
_EMPTY_SHAPES = st.sampled_from([(0,), (0, 3), (2, 0)])


@st.composite
def _draw_shape(draw, max_elements: int) -> tuple[int, ...]:
    kind = draw(_SHAPE_KINDS)
    if max_elements < 1 or kind == "empty":
        return draw(_EMPTY_SHAPES)
    if kind == "0-d":
        return ()
    if kind == "vector":
        return (draw(_integers(1, min(max_elements, 8))),)
    rows = draw(_integers(1, min(max_elements, 4)))
    cols = draw(_integers(1, max(1, min(max_elements // rows, 4))))
    if rows * cols > max_elements:
        cols = 1
    if draw(_BOOLEANS) and rows * cols * 2 <= max_elements:
        return (rows, cols, 2)
    return (rows, cols)


# --- hyperparameters ----------------------------------------------------------------------

def _log_uniform(low_exp: float, high_exp: float) -> st.SearchStrategy[float]:
    return st.floats(low_exp, high_exp).map(lambda e: float(10.0 ** e))


# Each hyperparameter strategy is ``one_of(default, values, random)``: shrinking goes to the
# default. With ``edges=False`` it keeps to ordinary values (what the half of the cases
# without extremes use); with ``edges=True`` the values include the documented range's edges.

@functools.cache
def learning_rates(dtype: str = "float32", *, edges: bool = True) -> st.SearchStrategy[float]:
    """lr ≥ 0: 1e-3 first; edges: 0, tiny (down to the format's smallest subnormal), large
    (10, 1000), log-uniform in [1e-8, 10]; ordinary: 0 and log-uniform in [1e-5, 0.1]."""
    if not edges:
        return st.one_of(st.just(1e-3), st.sampled_from([0.0, 1e-2, 0.1, 3e-4]),
                         _log_uniform(-5, -1))
    fmt = _format(dtype)
    values = [fmt.smallest_subnormal, 1e-30, 1e-8, 1e-2, 0.1, 1.0, 10.0, 1e3]
    return st.one_of(st.just(1e-3), st.just(0.0), st.sampled_from(values), _log_uniform(-8, 1))


@functools.cache
def epsilons(dtype: str = "float32", *, edges: bool = True) -> st.SearchStrategy[float]:
    """ε ≥ 0: 1e-8 first; edges: 0, subnormal (of the format and of float64), the smallest
    normal, tiny, large (1e-3, 1, 1000), log-uniform in [1e-12, 1]; ordinary: [1e-10, 1e-4]
    (in float16, where 1e-8 rounds to 0: from its smallest normal to 1e-2, 1e-4 first)."""
    fmt = _format(dtype)
    if not edges:
        if fmt.smallest_normal > 1e-8:  # float16: 1e-8 is not a float16 number (it is 0)
            return st.one_of(st.just(1e-4), st.sampled_from([1e-3, fmt.smallest_normal]),
                             _log_uniform(math.log10(fmt.smallest_normal), -2))
        return st.one_of(st.just(1e-8), st.sampled_from([1e-6, 1e-10, 1e-4]),
                         _log_uniform(-10, -4))
    tiny = [fmt.smallest_subnormal, 2.0 ** -1074, fmt.smallest_normal, 1e-30]
    if fmt.name in ("float32", "bfloat16"):
        tiny.append(1e-40)  # a float32 subnormal that is not a power of two
    return st.one_of(st.just(1e-8), st.just(0.0), st.sampled_from(tiny),
                     st.sampled_from([1e-16, 1e-3, 1.0, 1e3]), _log_uniform(-12, 0))


def _just_below_one(fmt: FloatFormat) -> list[float]:
    """1 − 2^-k for the format's own unit roundoff, float64's, and a few between."""
    ks = sorted({fmt.precision, 53, 20, 10} | ({24} if fmt.precision > 24 else set()))
    return [1.0 - 2.0 ** -k for k in ks]


@functools.cache
def beta1s(dtype: str = "float32", *, edges: bool = True) -> st.SearchStrategy[float]:
    """β1 in [0, 1): 0.9 first, then 0 and common values; edges: just below 1 (in the
    format and in float64) and anything in [0, 1); ordinary: anything in [0, 0.99]."""
    if not edges:
        return st.one_of(st.just(0.9), st.sampled_from([0.0, 0.5, 0.8, 0.99]),
                         st.floats(0.0, 0.99))
    return st.one_of(st.just(0.9), st.just(0.0), st.sampled_from(_just_below_one(_format(dtype))),
                     st.sampled_from([0.5, 0.8, 0.99]), st.floats(0.0, 1.0, exclude_max=True))


@functools.cache
def beta2s(dtype: str = "float32", *, edges: bool = True) -> st.SearchStrategy[float]:
    """β2 in [0, 1): 0.999 first, then common values; edges: just below 1 (in the format and
    in float64), 0, 0.5 and anything in [0, 1); ordinary: anything in [0.9, 0.9999]."""
    if not edges:
        return st.one_of(st.just(0.999), st.sampled_from([0.99, 0.9, 0.9999]),
                         st.floats(0.9, 0.9999))
    return st.one_of(st.just(0.999), st.sampled_from(_just_below_one(_format(dtype))),
                     st.sampled_from([0.99, 0.9999, 0.0, 0.5]),
                     st.floats(0.0, 1.0, exclude_max=True))


@functools.cache
def weight_decays() -> st.SearchStrategy[float]:
    """λ ≥ 0: off (0) first, then common values, then log-uniform in [1e-6, 10]."""
    return st.one_of(st.just(0.0), st.sampled_from([1e-2, 1e-4, 0.1, 1.0, 5e-4]),
                     _log_uniform(-6, 1))


@functools.cache
def hyperparameters(dtype: str = "float32", *, edges: bool = True, amsgrad: bool | None = None,
                    maximize: bool | None = None) -> st.SearchStrategy[GroupConfig]:
    """A valid :class:`GroupConfig` (edges of the ranges included unless ``edges=False``);
    ``amsgrad``/``maximize`` fixed where given."""
    def flag(fixed):
        return st.booleans() if fixed is None else st.just(bool(fixed))

    return st.builds(GroupConfig, lr=learning_rates(dtype, edges=edges),
                     betas=st.tuples(beta1s(dtype, edges=edges), beta2s(dtype, edges=edges)),
                     eps=epsilons(dtype, edges=edges), weight_decay=weight_decays(),
                     amsgrad=flag(amsgrad), maximize=flag(maximize))


@functools.cache
def lr_schedules(steps: int, dtype: str = "float32", *, edges: bool = True
                 ) -> st.SearchStrategy[np.ndarray]:
    """One lr ≥ 0 per step (what an LR scheduler sets before each step): a switch from one
    lr to another at some step, or at every step any of two to four lrs (drawn once; one
    byte per step picks: a few choices however many steps, where an lr per step cost two
    each)."""
    lrs = learning_rates(dtype, edges=edges)
    switch = st.tuples(lrs, lrs, st.integers(0, steps)).map(
        lambda t: np.array([t[0]] * t[2] + [t[1]] * (steps - t[2])))
    free = st.tuples(st.lists(lrs, min_size=2, max_size=4),
                     st.binary(min_size=steps, max_size=steps)).map(
        lambda t: np.array([t[0][b % len(t[0])] for b in t[1]], dtype=np.float64))
    return st.one_of(switch, free)


_STEP_EDGES = [10_000_000, 2**24, 2**24 + 1, 2**31 - 1, 2**31 - 20, 2**31]


@functools.cache
def _initial_steps() -> st.SearchStrategy[int]:
    return st.one_of(st.integers(1, 100), st.sampled_from(_STEP_EDGES),
                     st.integers(10**6, 2**31))


# --- cases ----------------------------------------------------------------------------------

def case_tags(problem: Problem, dtype: str | None = None) -> tuple[str, ...]:
    """Tags of a fuzzed problem: ``regime:fuzz``, the options on, and its features."""
    configs = [g.config for g in problem.groups]
    tags = ["regime:fuzz"]
    for name, on in (("amsgrad", any(c.amsgrad for c in configs)),
                     ("maximize", any(c.maximize for c in configs)),
                     ("weight-decay", any(c.weight_decay != 0.0 for c in configs))):
        if on:
            tags.append("option:" + name)
    params = problem.params
    features = [("groups", len(problem.groups) > 1),
                ("schedule", any(g.lrs is not None for g in problem.groups)),
                ("resumed", problem.initial_state is not None),
                ("empty", any(p.size == 0 for p in params)),
                ("0-d", any(p.ndim == 0 for p in params)),
                ("non-finite", any(not np.all(np.isfinite(a))
                                   for a in (*params, *problem.grads)))]
    tags += ["feature:" + name for name, on in features if on]
    if dtype is not None:
        tags.append("dtype:" + dtype)
    return tuple(tags)


_VMAX_HOW = st.sampled_from(("same-as-v", "independent", "zero"))


@st.composite
def _resumed_state(draw, fmt: FloatFormat, problem_params: list[np.ndarray],
                   amsgrad_of_param: list[bool]) -> InitialState:
    step = draw(_initial_steps())
    m, v, vmax = [], [], []
    for p, amsgrad in zip(problem_params, amsgrad_of_param, strict=True):
        size = p.size
        m.append(draw(_value_array(fmt, size, "typical")).reshape(p.shape))
        v_values = draw(_value_array(fmt, size, "moment", signed=False))
        v.append(v_values.reshape(p.shape))
        if not amsgrad:
            vmax.append(np.zeros(p.shape))
            continue
        # the documented v̂max: any value ≥ 0; often the v it came from, or above it
        how = draw(_VMAX_HOW)
        if how == "same-as-v":
            vmax.append(v_values.reshape(p.shape))
        elif how == "zero":
            vmax.append(np.zeros(p.shape))
        else:
            vmax.append(draw(_value_array(fmt, size, "moment", signed=False)).reshape(p.shape))
    return InitialState(step, tuple(m), tuple(v), tuple(vmax))


def cases(dtype: str = "float32", *, allow_non_finite: bool = False, max_steps: int = 20,
          max_elements: int = 16, max_groups: int = 3, max_params: int = 4,
          resume: bool = True, schedules: bool = True) -> st.SearchStrategy[Case]:
    """Whole cases whose inputs are exact in ``dtype``; see the module docstring.

    ``max_elements`` bounds the elements over all parameters, ``max_params`` the number of
    parameters; ``resume`` and ``schedules`` allow resumed states and lr schedules.
    """
    fmt = _format(dtype)
    if max_steps < 1 or max_groups < 1 or max_params < 1:
        raise ValueError("max_steps, max_groups and max_params must be at least 1")

    @st.composite
    def build(draw) -> Case:
        steps = draw(_integers(1, max_steps))
        extremes = draw(_BOOLEANS)  # half the cases: edges and extreme values
        param_profiles = PARAM_PROFILES if extremes else _ORDINARY_PARAMS
        grad_profiles = GRAD_PROFILES if extremes else _ORDINARY_GRADS
        n_groups = draw(_integers(1, min(max_groups, max_params)))
        budget = max_elements
        params_left = max_params
        groups, grads, profiles = [], [], []
        for gi in range(n_groups):
            config = draw(hyperparameters(fmt.name, edges=extremes))
            # leave one parameter for every later group
            most = params_left - (n_groups - gi - 1)
            count = draw(_integers(1, max(1, min(most, 3))))
            params_left -= count
            params = []
            for _ in range(count):
                shape = draw(shapes(budget))
                budget -= int(np.prod(shape, dtype=np.int64))
                params.append(draw(arrays(fmt.name, shape, profiles=param_profiles,
                                          allow_non_finite=allow_non_finite)))
                g, profile = draw(_gradients(fmt, steps, shape, allow_non_finite,
                                             grad_profiles))
                grads.append(g)
                profiles.append(profile)
            lrs = None
            if schedules and draw(_BOOLEANS):
                lrs = draw(lr_schedules(steps, fmt.name, edges=extremes))
                config = GroupConfig(lr=float(lrs[0]), betas=config.betas, eps=config.eps,
                                     weight_decay=config.weight_decay,
                                     amsgrad=config.amsgrad, maximize=config.maximize)
            groups.append(Group(config, tuple(params), lrs))
        state = None
        if resume and draw(_BOOLEANS):  # some cases resume from a given state
            all_params = [p for g in groups for p in g.params]
            amsgrad_of = [g.config.amsgrad for g in groups for _ in g.params]
            state = draw(_resumed_state(fmt, all_params, amsgrad_of))
        problem = Problem(tuple(groups), tuple(grads), state)
        shapes_text = ", ".join(str(tuple(p.shape)) for p in problem.params)
        description = (f"fuzzed for {fmt.name}: {n_groups} group(s), params {shapes_text}, "
                       f"{steps} step(s)"
                       + (f" from step {state.step}" if state is not None else "")
                       + f"; gradients {', '.join(profiles)}"
                       + ("; edges and extremes" if extremes else "; ordinary values"))
        with np.errstate(over="ignore"):  # exact_dtypes rounds values near max to bfloat16
            return Case(f"fuzz/{problem_digest(problem)[:8]}", description,
                        case_tags(problem, fmt.name), problem)

    return build()


def problems(dtype: str = "float32", **options: Any) -> st.SearchStrategy[Problem]:
    """The problems of :func:`cases` (same options)."""
    return cases(dtype, **options).map(lambda case: case.problem)


# --- invalid hyperparameters ------------------------------------------------------------------

@dataclass(frozen=True)
class InvalidHyperparameters:
    """Constructor arguments with one value outside the documented ranges.

    ``parameter`` names it (``lr``, ``lr type``, ``eps``, ``betas[0]``, ``betas[1]``,
    ``weight_decay``); ``kwargs`` holds every argument (lr, betas, eps, weight_decay,
    amsgrad, maximize), the others valid.
    """

    parameter: str
    value: Any
    kwargs: dict = field(hash=False)

    def describe(self) -> str:
        """``name=value`` as passed (a value that is not a float shows its type)."""
        value = self.value
        shown = repr(value) if isinstance(value, float) else \
            f"{value!r} ({type(value).__name__})"
        return f"{self.parameter.split(' ')[0]}={shown}"


def _negatives() -> st.SearchStrategy[float]:
    """Strictly negative floats (−0.0 is not below 0), −∞ included."""
    return st.one_of(st.sampled_from([-1e-3, -2.0 ** -1074, -1.0, -math.inf, -1e-8]),
                     st.floats(max_value=-(2.0 ** -1074), allow_nan=False))


def _at_least_one() -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from([1.0, 1.0 + 2.0 ** -52, 2.0, math.inf]),
                     st.floats(min_value=1.0, allow_nan=False))


_WRONG_LR_TYPES = ("0.01", "1e-3", None, [1e-3], (1e-3,), {"lr": 1e-3}, complex(1e-3, 0),
                   Decimal("0.001"), b"0.001")


def invalid_hyperparameters(dtype: str = "float32"
                            ) -> st.SearchStrategy[InvalidHyperparameters]:
    """Arguments with one documented-invalid value (lr < 0, eps < 0, a beta outside [0, 1),
    weight_decay < 0, an lr that is not an int, a float or a tensor); the rest valid.

    NaN is left out: the documentation is silent on it (the reference rejects it, but a
    backend that accepts it does not contradict the documentation).
    """
    @st.composite
    def build(draw) -> InvalidHyperparameters:
        valid = draw(hyperparameters(dtype))
        kwargs = {"lr": valid.lr, "betas": valid.betas, "eps": valid.eps,
                  "weight_decay": valid.weight_decay, "amsgrad": valid.amsgrad,
                  "maximize": valid.maximize}
        parameter = draw(st.sampled_from(("lr", "eps", "betas[0]", "betas[1]",
                                          "weight_decay", "lr type")))
        if parameter == "lr type":
            value = draw(st.sampled_from(_WRONG_LR_TYPES))
            kwargs["lr"] = value
        elif parameter.startswith("betas"):
            value = draw(st.one_of(_negatives(), _at_least_one()))
            betas = list(valid.betas)
            betas[int(parameter[6])] = value
            kwargs["betas"] = tuple(betas)
        else:
            value = draw(_negatives())
            kwargs[parameter] = value
        return InvalidHyperparameters(parameter, value, kwargs)

    return build()
