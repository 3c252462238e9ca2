"""Binary floating-point formats: their constants, correct rounding, and ULP distance.

Everything here works on float64 numpy arrays, so formats narrower than float64
(float32, float16, bfloat16) need no framework and no ``ml_dtypes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["FloatFormat", "FORMATS", "get_format", "as_format", "round_to", "representable",
           "mpf_to_float64", "ulp_distance", "to_hex"]


@dataclass(frozen=True)
class FloatFormat:
    """An IEEE-754-style binary format: ``precision`` significand bits (hidden bit included)."""

    name: str
    precision: int
    emin: int  # exponent of the smallest normal number
    emax: int  # exponent of the largest finite number

    @property
    def unit_roundoff(self) -> float:
        """u = 2^-p: the largest relative error of one round-to-nearest."""
        return math.ldexp(1.0, -self.precision)

    @property
    def eps(self) -> float:
        """Machine epsilon: the gap from 1 to the next number, 2u."""
        return math.ldexp(1.0, 1 - self.precision)

    @property
    def smallest_normal(self) -> float:
        return math.ldexp(1.0, self.emin)

    @property
    def smallest_subnormal(self) -> float:
        return math.ldexp(1.0, self.emin - self.precision + 1)

    @property
    def max(self) -> float:
        return math.ldexp(2.0 - math.ldexp(1.0, 1 - self.precision), self.emax)


FORMATS: dict[str, FloatFormat] = {
    "float64": FloatFormat("float64", 53, -1022, 1023),
    "float32": FloatFormat("float32", 24, -126, 127),
    "float16": FloatFormat("float16", 11, -14, 15),
    "bfloat16": FloatFormat("bfloat16", 8, -126, 127),
}


def get_format(name: str) -> FloatFormat:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; known: {', '.join(FORMATS)}") from None


def as_format(fmt: FloatFormat | str) -> FloatFormat:
    """The format a dtype name names (:func:`get_format`), or ``fmt`` itself where it is
    one already: what a function that takes either resolves once, where it begins, so that
    nothing it hands the format to looks the name up again."""
    return get_format(fmt) if isinstance(fmt, str) else fmt


def round_to(x: np.ndarray | float, fmt: FloatFormat | str) -> np.ndarray:
    """Round float64 values to the nearest value of ``fmt`` (ties to even), as float64.

    Overflow gives ±inf, as IEEE round-to-nearest does; subnormals are kept (gradual
    underflow). Exact for every input: the scaling by powers of two is exact and
    ``np.rint`` rounds ties to even.
    """
    fmt = as_format(fmt)
    x = np.asarray(x, dtype=np.float64)
    if fmt.name == "float64":
        return x.copy()
    if fmt.name == "float32":
        with np.errstate(over="ignore"):
            return x.astype(np.float32).astype(np.float64)
    if fmt.name == "float16":
        with np.errstate(over="ignore"):
            return x.astype(np.float16).astype(np.float64)
    if fmt.name == "bfloat16":
        return _round_bfloat16(x)
    out = x.copy()
    finite = np.isfinite(x) & (x != 0)
    xf = x[finite]
    _, exponent = np.frexp(xf)  # xf = f * 2^exponent with 0.5 <= |f| < 1
    # the quantum of the result: 2^(e - p) where e = exponent - 1, floored at the subnormal grid
    quantum_exp = np.maximum(exponent - fmt.precision, fmt.emin - fmt.precision + 1)
    with np.errstate(over="ignore"):  # near float64's max, rounding up overflows to inf
        rounded = np.ldexp(np.rint(np.ldexp(xf, -quantum_exp)), quantum_exp)
    rounded = np.where(np.abs(rounded) > fmt.max, np.copysign(np.inf, xf), rounded)
    out[finite] = rounded
    return out


def _round_bfloat16(x: np.ndarray) -> np.ndarray:
    """Round to nearest bfloat16, ties to even: to float32 by round-to-odd (the nearest
    float32 toward 0, its last bit set where that is inexact), then the top 16 bits rounded
    to nearest even. Round-to-odd keeps a rounding to a format at least two bits narrower
    correct (bfloat16 has 8 bits to float32's 24, and a grid 2^16 coarser below the normal
    range), so this is the correctly rounded value, as the scaling does, only faster."""
    with np.errstate(over="ignore", invalid="ignore"):
        near = x.astype(np.float32)
        wide = near.astype(np.float64)
        toward_zero = np.where(np.abs(wide) > np.abs(x),
                               np.nextafter(near, np.float32(0.0)), near).astype(np.float32)
        bits = toward_zero.view(np.uint32).copy()
        inexact = (toward_zero.astype(np.float64) != x) & np.isfinite(x)
        bits |= inexact.astype(np.uint32)  # round-to-odd
        finite = np.isfinite(x)
        lsb = (bits >> np.uint32(16)) & np.uint32(1)
        rounded = (bits + np.uint32(0x7FFF) + lsb) & np.uint32(0xFFFF0000)
        out = rounded.view(np.float32).astype(np.float64)
    return np.where(finite, out, x)


def representable(x: np.ndarray | float, fmt: FloatFormat | str) -> np.ndarray:
    """True where a float64 value is exactly a value of ``fmt`` (NaN and ±inf count)."""
    x = np.asarray(x, dtype=np.float64)
    r = round_to(x, fmt)
    return (r == x) | np.isnan(x)


def mpf_to_float64(value) -> float:
    """Round an mpmath number to the nearest float64, ties to even, subnormals included.

    ``float(mpf)`` is not this: it rounds to 53 bits first and then again to the subnormal
    grid (double rounding below 2^-1022), and ``libmp.to_float``'s default rounding is
    ``round_fast``, which is round-down.
    """
    import mpmath.libmp as libmp

    raw = value._mpf_
    sign, man, exp, bc = raw
    if not man:
        return libmp.to_float(raw)  # 0, ±inf, nan: exact
    # 53 significant bits, or fewer where the result is subnormal (fixed grid 2^-1074)
    top = exp + bc  # value lies in [2^(top-1), 2^top)
    bits = 53 if top - 1 >= -1022 else max(top + 1074, 0)
    if bits == 0:
        # below half the smallest subnormal unless exactly (or above) 2^-1075
        half = (top - 1 == -1075) and (man != 1 << (bc - 1))
        return math.copysign(math.ldexp(1.0, -1074) if half else 0.0, -1.0 if sign else 1.0)
    sign, man, exp, bc = libmp.normalize(sign, man, exp, bc, bits, libmp.round_nearest)
    if exp + bc > 1024:
        return -math.inf if sign else math.inf
    result = math.ldexp(man, exp)  # exact: man has at most `bits` bits on the format's grid
    return -result if sign else result


def _ordered_int64(x: np.ndarray) -> np.ndarray:
    bits = x.view(np.int64)
    return np.where(bits < 0, np.int64(-(2**63)) - bits, bits)


def ulp_distance(a: np.ndarray | float, b: np.ndarray | float,
                 fmt: FloatFormat | str = "float64") -> np.ndarray:
    """Number of ``fmt`` values between a and b (int64), after rounding both to ``fmt``.

    Rules: +0 and -0 are 0 apart; NaN against NaN is 0 apart and NaN against anything
    else is the largest int64 (never "close"); ±inf is one step past the largest finite,
    so inf vs inf is 0. Counting is done on the ordered integer view of the format's own
    bits: float64 directly, float32 and float16 through numpy, bfloat16 through the top
    16 bits of float32 (a uint16 view).
    """
    fmt = as_format(fmt)
    a = round_to(np.asarray(a, dtype=np.float64), fmt)
    b = round_to(np.asarray(b, dtype=np.float64), fmt)
    a, b = np.broadcast_arrays(a, b)
    if fmt.name == "float64":
        ia, ib = _ordered_int64(a.copy()), _ordered_int64(b.copy())
    else:
        ia, ib = (_ordered_small(v, fmt) for v in (a, b))
    dist = _saturating_distance(ia, ib)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    dist = np.where(nan_a | nan_b, np.iinfo(np.int64).max, dist)
    dist = np.where(nan_a & nan_b, 0, dist)
    return dist.astype(np.int64)


def _saturating_distance(ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """|ia − ib| for ordered ints, the largest int64 where that does not fit (float64 values
    of opposite signs far apart: −max to +max is 2^64 − 2^53 steps)."""
    top = np.iinfo(np.int64).max
    abs_a, abs_b = np.abs(ia), np.abs(ib)  # ordered ints never reach −2^63
    opposite = (ia < 0) != (ib < 0)
    with np.errstate(over="ignore"):
        wide = np.where(abs_a > top - abs_b, top, abs_a + abs_b)
        return np.where(opposite, wide, np.abs(ia - ib))


def _ordered_small(x: np.ndarray, fmt: FloatFormat) -> np.ndarray:
    if fmt.name == "float32":
        bits = x.astype(np.float32).view(np.int32).astype(np.int64)
        negative_zero = np.int64(-(2**31))
    elif fmt.name == "float16":
        bits = x.astype(np.float16).view(np.int16).astype(np.int64)
        negative_zero = np.int64(-(2**15))
    else:  # bfloat16: the high half of the float32 pattern, exact after round_to
        high = (x.astype(np.float32).view(np.uint32) >> np.uint32(16)).astype(np.uint16)
        bits = high.view(np.int16).astype(np.int64)
        negative_zero = np.int64(-(2**15))
    return np.where(bits < 0, negative_zero - bits, bits)


def to_hex(x: float) -> str:
    """C99 hex of a float64 value, 'nan', 'inf' or '-inf'."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x.hex()
