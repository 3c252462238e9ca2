"""The comparison helpers at their edges: ulp_distance, round_to, mpf_to_float64, to_hex.

Every verdict rests on these: a wrong ULP count or a wrongly rounded reference makes every
verdict wrong, so they are tested where formats end (±0, subnormals, the largest finite,
∞, NaN) and where rounding is decided (ties).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from adamconf.reference.floats import FORMATS, mpf_to_float64, round_to, to_hex, ulp_distance

INT64_MAX = np.iinfo(np.int64).max
SMALL = ("float32", "float16", "bfloat16")


def _next_up(x: float, dtype: str) -> float:
    """The next value of ``dtype`` above x (x a value of dtype), by its bit pattern."""
    if dtype == "float64":
        return math.nextafter(x, math.inf)
    if dtype == "float32":
        return float(np.nextafter(np.float32(x), np.float32(np.inf)))
    if dtype == "float16":
        return float(np.nextafter(np.float16(x), np.float16(np.inf)))
    fmt = FORMATS["bfloat16"]
    if x == 0:
        return fmt.smallest_subnormal
    _, e = math.frexp(abs(x))
    quantum = math.ldexp(1.0, max(e - fmt.precision, fmt.emin - fmt.precision + 1))
    if x < 0 and abs(x) == math.ldexp(1.0, e - 1):  # just below a power of two: finer grid
        quantum /= 2 if e - 1 > fmt.emin else 1
    return x + quantum


# --- ulp_distance ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", list(FORMATS))
def test_signed_zeros_are_zero_apart(dtype):
    assert ulp_distance(0.0, -0.0, dtype) == 0
    assert ulp_distance(np.array([-0.0, 0.0]), np.array([0.0, -0.0]), dtype).tolist() == [0, 0]


@pytest.mark.parametrize("dtype", list(FORMATS))
def test_neighbours_are_one_apart_everywhere(dtype):
    fmt = FORMATS[dtype]
    for x in (1.0, 0.75, fmt.smallest_normal, fmt.smallest_subnormal, 0.0,
              fmt.max / 2, 3.0 * fmt.smallest_subnormal):
        up = _next_up(x, dtype)
        assert ulp_distance(x, up, dtype) == 1, (dtype, x, up)
        assert ulp_distance(-x, -up, dtype) == 1, (dtype, x, up)


@pytest.mark.parametrize("dtype", list(FORMATS))
def test_distance_counts_across_zero_and_the_subnormals(dtype):
    fmt = FORMATS[dtype]
    tiny = fmt.smallest_subnormal
    assert ulp_distance(-tiny, tiny, dtype) == 2  # −tiny, ±0, +tiny
    assert ulp_distance(-tiny, 0.0, dtype) == 1
    # every subnormal, then the smallest normal: 2^(p−1) steps from 0
    assert ulp_distance(0.0, fmt.smallest_normal, dtype) == 2 ** (fmt.precision - 1)
    assert ulp_distance(1.0, 2.0, dtype) == 2 ** (fmt.precision - 1)


@pytest.mark.parametrize("dtype", list(FORMATS))
def test_infinity_is_one_past_the_largest_finite(dtype):
    fmt = FORMATS[dtype]
    assert ulp_distance(fmt.max, math.inf, dtype) == 1
    assert ulp_distance(-fmt.max, -math.inf, dtype) == 1
    assert ulp_distance(math.inf, math.inf, dtype) == 0
    assert ulp_distance(-math.inf, -math.inf, dtype) == 0
    if dtype != "float64":  # see the saturation test below
        assert ulp_distance(-math.inf, math.inf, dtype) > ulp_distance(-fmt.max, fmt.max, dtype)


@pytest.mark.parametrize("dtype", list(FORMATS))
def test_nan_rule(dtype):
    assert ulp_distance(math.nan, math.nan, dtype) == 0
    assert ulp_distance(math.nan, 1.0, dtype) == INT64_MAX
    assert ulp_distance(0.0, math.nan, dtype) == INT64_MAX
    assert ulp_distance(math.inf, math.nan, dtype) == INT64_MAX


def test_ulp_distance_rounds_float64_inputs_to_the_format_first():
    assert ulp_distance(1.0, 1.0 + 2.0 ** -30, "float32") == 0
    assert ulp_distance(1.0, 1.0 + 2.0 ** -23, "float32") == 1
    assert ulp_distance(1.0, 1.0 + 2.0 ** -23, "float64") == 2 ** 29
    assert ulp_distance(np.array([1.0, 2.0]), 1.0, "float16").tolist() == [0, 1024]


def test_float64_distance_saturates_instead_of_wrapping():
    top = FORMATS["float64"].max
    assert ulp_distance(-top, top) == INT64_MAX
    assert ulp_distance(-math.inf, math.inf) == INT64_MAX


def test_float64_distance_across_zero_below_the_wrap():
    assert ulp_distance(-1.0, 1.0) == 2 * 0x3FF0000000000000


# --- round_to ---------------------------------------------------------------------------------

def test_bfloat16_ties_go_to_even():
    ulp = 2.0 ** -7  # at 1
    assert round_to(1 + ulp / 2, "bfloat16") == 1.0  # tie: 1 is even
    assert round_to(1 + 3 * ulp / 2, "bfloat16") == 1 + 2 * ulp  # tie: 1 + 2ulp is even
    assert round_to(1 + ulp / 2 + 2.0 ** -30, "bfloat16") == 1 + ulp  # above the tie
    # ml_dtypes before 0.7 converted float64 through float32, which loses the 2^-30 and
    # double-rounds to 1.0; round_to never takes that path, whichever version is installed
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = np.array([1 + ulp / 2 + 2.0 ** -30])
    assert x.astype(ml_dtypes.bfloat16).astype(np.float64)[0] in (1.0, 1 + ulp)
    assert round_to(x, "bfloat16")[0] == 1 + ulp


@pytest.mark.parametrize("dtype", SMALL)
def test_ties_to_even_in_the_subnormals(dtype):
    tiny = FORMATS[dtype].smallest_subnormal
    assert round_to(tiny / 2, dtype) == 0.0
    assert math.copysign(1.0, round_to(-tiny / 2, dtype)) == -1.0  # −0 keeps its sign
    assert round_to(3 * tiny / 2, dtype) == 2 * tiny
    assert round_to(5 * tiny / 2, dtype) == 2 * tiny
    assert round_to(tiny / 2 * (1 + 2.0 ** -20), dtype) == tiny


def test_float16_overflow_at_the_rounding_boundary():
    top = FORMATS["float16"].max  # 65504; the next step would be 65536
    assert round_to(65519.99, "float16") == top
    assert round_to(65520.0, "float16") == math.inf  # the tie rounds to 65536: overflow
    assert round_to(-65520.0, "float16") == -math.inf
    assert round_to(1e6, "float16") == math.inf


def test_bfloat16_overflow_and_range():
    fmt = FORMATS["bfloat16"]
    assert round_to(fmt.max, "bfloat16") == fmt.max
    half_ulp = math.ldexp(1.0, fmt.emax - fmt.precision)
    assert round_to(fmt.max + half_ulp, "bfloat16") == math.inf  # tie to even: overflow
    assert round_to(fmt.max + half_ulp * 0.99, "bfloat16") == fmt.max
    assert round_to(1e38, "bfloat16") < math.inf  # float32's range


@pytest.mark.parametrize("dtype", list(FORMATS))
def test_round_to_keeps_non_finite_and_zero(dtype):
    out = round_to(np.array([math.nan, math.inf, -math.inf, 0.0, -0.0]), dtype)
    assert np.isnan(out[0]) and out[1] == math.inf and out[2] == -math.inf
    assert out[3] == 0 and math.copysign(1.0, out[4]) == -1.0


def test_round_to_agrees_with_numpy_where_numpy_is_exact():
    rng = np.random.default_rng(7)
    x = rng.standard_normal(2000) * 10.0 ** rng.uniform(-45, 38, 2000)
    with np.errstate(over="ignore"):
        assert np.array_equal(round_to(x, "float32"), x.astype(np.float32).astype(np.float64))
        assert np.array_equal(round_to(x, "float16"), x.astype(np.float16).astype(np.float64))


# --- mpf_to_float64: correct rounding, unlike float(mpf) -----------------------------------

@pytest.fixture
def ctx():
    c = mpmath.MPContext()
    c.prec = 400
    return c


def test_mpf_ties_round_to_even(ctx):
    one, two = ctx.mpf(1), ctx.mpf(2)
    assert mpf_to_float64(one + two ** -53) == 1.0
    assert mpf_to_float64(one + 3 * two ** -53) == 1.0 + 2.0 ** -51
    assert mpf_to_float64(one + two ** -53 + two ** -300) == 1.0 + 2.0 ** -52
    assert mpf_to_float64(-(one + 3 * two ** -53)) == -(1.0 + 2.0 ** -51)


def test_mpf_rounds_once_where_float_rounds_twice(ctx):
    two = ctx.mpf(2)
    # on the subnormal grid at 2^-1050 the spacing is 2^-24 relative: this is just above a tie
    x = two ** -1050 * (1 + two ** -25 + two ** -80)
    assert mpf_to_float64(x) == 2.0 ** -1050 * (1 + 2.0 ** -24)
    # float(mpf) rounds to 53 bits first (the 2^-80 goes), then to the grid: a tie, down
    assert float(x) == 2.0 ** -1050
    assert mpf_to_float64(1 + two ** -52 * ctx.mpf("0.75")) == 1.0 + 2.0 ** -52


def test_mpf_subnormals(ctx):
    two = ctx.mpf(2)
    tiny = 2.0 ** -1074
    assert mpf_to_float64(two ** -1074) == tiny
    assert mpf_to_float64(two ** -1075) == 0.0  # tie with 0: 0 is even
    assert mpf_to_float64(two ** -1075 * (1 + two ** -100)) == tiny
    assert mpf_to_float64(3 * two ** -1075) == 2 * tiny  # tie: 2 is even
    assert mpf_to_float64(5 * two ** -1075) == 2 * tiny
    assert mpf_to_float64(two ** -1200) == 0.0
    assert math.copysign(1.0, mpf_to_float64(-(two ** -1200))) == -1.0
    # just below the smallest normal: rounds on the subnormal grid, once
    x = two ** -1022 - two ** -1080
    assert mpf_to_float64(x) == 2.0 ** -1022


def test_mpf_overflow_and_specials(ctx):
    two = ctx.mpf(2)
    top = FORMATS["float64"].max
    assert mpf_to_float64(ctx.mpf(top)) == top
    assert mpf_to_float64(ctx.mpf(top) + two ** 970) == math.inf  # the tie above max
    assert mpf_to_float64(ctx.mpf(top) + two ** 969) == top
    assert mpf_to_float64(-(two ** 1024)) == -math.inf
    assert math.isnan(mpf_to_float64(ctx.nan))
    assert mpf_to_float64(ctx.inf) == math.inf
    assert mpf_to_float64(ctx.mpf(0)) == 0.0


def test_mpf_random_values_match_exact_rational_rounding(ctx):
    from fractions import Fraction

    rng = np.random.default_rng(3)
    for _ in range(300):
        man = int(rng.integers(1, 2 ** 62)) * 2 ** 40 + int(rng.integers(0, 2 ** 40))
        exp = int(rng.integers(-1200, 900))
        x = ctx.ldexp(ctx.mpf(man), exp)
        exact = Fraction(man) * (Fraction(2) ** exp)
        got = mpf_to_float64(x)
        # Python's float(Fraction) rounds correctly, ties to even, subnormals included
        try:
            want = float(exact)
        except OverflowError:
            want = math.inf
        assert got == want, (man, exp)


# --- to_hex -------------------------------------------------------------------------------------

def test_to_hex():
    assert to_hex(0.25) == "0x1.0000000000000p-2"
    assert to_hex(float(np.float32(0.25) - np.float32(2.0 ** -26))) == "0x1.fffffe0000000p-3"
    assert to_hex(math.nan) == "nan"
    assert to_hex(math.inf) == "inf" and to_hex(-math.inf) == "-inf"
    assert to_hex(-0.0) == "-0x0.0p+0"
    assert float.fromhex(to_hex(1e-310)) == 1e-310


def _bfloat16_by_scaling(x: np.ndarray) -> np.ndarray:
    """bfloat16 rounding written out: scale the significand to 8 bits (or the subnormal
    grid), round half to even, scale back; overflow to ±inf."""
    fmt = FORMATS["bfloat16"]
    out = x.copy()
    finite = np.isfinite(x) & (x != 0)
    _, exponent = np.frexp(x[finite])
    quantum = np.maximum(exponent - fmt.precision, fmt.emin - fmt.precision + 1)
    rounded = np.ldexp(np.rint(np.ldexp(x[finite], -quantum)), quantum)
    out[finite] = np.where(np.abs(rounded) > fmt.max, np.copysign(np.inf, rounded), rounded)
    return out


def test_round_to_bfloat16_is_correctly_rounded_everywhere():
    rng = np.random.default_rng(7)
    # random bit patterns over bfloat16's whole range and beyond, ties, their neighbours,
    # subnormals, the largest values, zeros, infinities and NaN
    exponents = rng.integers(-160, 130, size=200_000)
    x = rng.uniform(1.0, 2.0, size=exponents.size) * 2.0 ** exponents.astype(float)
    x *= rng.choice([-1.0, 1.0], size=x.size)
    grid = np.ldexp(rng.integers(1, 2**9, size=50_000).astype(float),
                    rng.integers(-142, 120, size=50_000))
    ties = grid + np.ldexp(1.0, np.frexp(grid)[1] - 9)  # halfway between neighbours
    edges = np.array([0.0, -0.0, np.inf, -np.inf, FORMATS["bfloat16"].max,
                      FORMATS["bfloat16"].max * (1 + 2.0**-9), 2.0**-133, 2.0**-134,
                      1.5 * 2.0**-134, 2.0**-135, 5e-324])
    values = np.concatenate([x, grid, ties, np.nextafter(ties, 0), np.nextafter(ties, np.inf),
                             -ties, edges, -edges])
    np.testing.assert_array_equal(round_to(values, "bfloat16"), _bfloat16_by_scaling(values))
    assert np.isnan(round_to(np.array([np.nan]), "bfloat16")[0])
