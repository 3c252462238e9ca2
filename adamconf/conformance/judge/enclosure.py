"""The non-linear enclosure: where the first-order bound is not resolved, intervals decide.

:mod:`.bounds` linearises: it carries an error bound E along the recurrences and judges a
quotient by E_d/d. Where that breaks — the denominator's bound reaches half its value: √
linearised at v ≈ 0, a tiny denominator, a second moment that underflows — this module
computes, for that element and step, the interval of every value a faithful evaluation in D
can produce, and from it a bound on the update:

- **Rounding.** An operation's exact result lies in [lo, hi] (float64 bounds, rounded
  outward); its computed value lies in [fl(lo), fl(hi)], fl any rounding an admissible
  ordering applies: to D or to a wider format (float32 intermediates of a 16-bit step,
  float64), and in the flush model a result below the format's smallest normal may become
  0 too. Round to nearest and flushing are monotone, so the ends decide, and an operand
  used once needs no more.
- **The second moment** by every ordering the bound admits: β2·v′ + (1−β2)·g², with
  (1−β2)·g·g, the lerp forms, FMA (inside the hull, as each operation may stay unrounded),
  then the max of amsgrad; intersected with the first-order bounds, which hold too.
- **The denominator** by the documented form √(v/(1−β2^t)) + ε, torch's √v/√(1−β2^t) + ε,
  the lr-folded √v + ε·√(1−β2^t), and each dialect's; √[0, x] = [0, √x].
- **The update** γ·m·…/((1−β1^t)·d) in *any* association of its factors
  (:func:`chain_roundings`): every intermediate a product or quotient of some of them,
  rounded to D (a scalar one in the scalar format first), subnormal or flushed.
- **Scalars** as the bound models them: β, 1 − β, γ, 1 − β^t exact or rounded to the scalar
  format S and then to D — except that an ε that S keeps (> 0) is never taken as 0 where D
  would round it away: hyperparameters are held in S at least (16-bit ones are not Adam), and
  an implementation that loses ε is judged by the non-finite rule.

A divisor rounded to 0, or an intermediate beyond D's largest value, makes the update ±∞
or NaN; the judge takes such an outcome by the non-finite rule, so the enclosure bounds the
*finite* outcomes: a divisor's interval starts at the smallest positive value an evaluation
can give, and :class:`Enclosed` says where 0 or an overflow was possible. Where the
update's interval still reaches beyond D's largest value (a divisor near 0), the enclosure
decides nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from adamconf.reference.floats import FloatFormat, get_format, round_to

__all__ = ["Rounding", "StepScalars", "StepValues", "Modes", "Enclosed", "enclose_update",
           "chain_roundings", "half_ulp"]

_TINIEST = math.ldexp(1.0, -1074)  # the smallest positive float64
_FLOAT32 = get_format("float32")
_FLOAT64 = get_format("float64")
_NO_LOG = -1e6  # log of 0, kept finite for the sums below


def half_ulp(fmt: FloatFormat, a: np.ndarray) -> np.ndarray:
    """½ulp of magnitudes a ≥ 0 in ``fmt``: u·2^⌊log2 a⌋, at least half its smallest
    subnormal (2^-1074 for float64, which float64 itself cannot halve)."""
    _, e = np.frexp(a)
    exponent = np.where(a == 0, fmt.emin, np.maximum(e - 1, fmt.emin))
    return np.maximum(np.ldexp(fmt.unit_roundoff, exponent), _TINIEST)


# --- interval arithmetic on exact values: (lo, hi) float64 arrays, rounded outward ----------

def _down(x):
    return np.nextafter(x, -np.inf)


def _up(x):
    return np.nextafter(x, np.inf)


def _add(a, b):
    return _down(a[0] + b[0]), _up(a[1] + b[1])


def _sub(a, b):
    return _down(a[0] - b[1]), _up(a[1] - b[0])


def _mul(a, b):
    """a·b for any signs."""
    c = (a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1])
    return (_down(np.minimum(np.minimum(c[0], c[1]), np.minimum(c[2], c[3]))),
            _up(np.maximum(np.maximum(c[0], c[1]), np.maximum(c[2], c[3]))))


def _mul_pos(a, b):
    """a·b for a, b ≥ 0."""
    return np.maximum(_down(a[0] * b[0]), 0.0), _up(a[1] * b[1])


def _div_pos(a, b):
    """a/b for any sign of a and b > 0."""
    return (_down(np.minimum(a[0] / b[0], a[0] / b[1])),
            _up(np.maximum(a[1] / b[0], a[1] / b[1])))


def _sqrt(a):
    return np.maximum(_down(np.sqrt(np.maximum(a[0], 0.0))), 0.0), _up(np.sqrt(a[1]))


def _nonneg(a):
    return np.maximum(a[0], 0.0), np.maximum(a[1], 0.0)


def _hull(*xs):
    lo, hi = xs[0]
    for a, b in xs[1:]:
        lo, hi = np.minimum(lo, a), np.maximum(hi, b)
    return lo, hi


def _meet(a, b):
    """Two enclosures of one set: both hold, so their intersection does."""
    lo, hi = np.maximum(a[0], b[0]), np.minimum(a[1], b[1])
    return np.minimum(lo, hi), hi


def _around(x, e):
    """[x − e, x + e] for a value x (a reference value, correctly rounded to float64, or a
    scalar) known within e: exact where e = 0, else widened by x's own rounding to float64
    and rounded outward."""
    e = np.asarray(e, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    wide = e + half_ulp(_FLOAT64, np.abs(x))
    return (np.where(e > 0, _down(x - wide), x), np.where(e > 0, _up(x + wide), x))


def _magnitude(a):
    """(min |x|, max |x|) over x in a."""
    straddles = (a[0] <= 0) & (a[1] >= 0)
    low = np.where(straddles, 0.0, np.minimum(np.abs(a[0]), np.abs(a[1])))
    return low, np.maximum(np.abs(a[0]), np.abs(a[1]))


class Rounding:
    """The roundings an admissible ordering may apply to one result in a step working in D:
    to D, to float32 (a 16-bit step's intermediates), or to float64, which keeps the outward
    bounds themselves; in the flush model a result below a format's smallest normal may
    also become 0. ``state`` is the narrower format m, v, v̂max are kept in after D (a
    dialect's), if any. ``keep_positive`` restricts the evaluations to those where no
    positive result is rounded or flushed to 0 (a bound consulted to show a pass only)."""

    def __init__(self, dtype: FloatFormat, flush: bool, scalar: FloatFormat,
                 state: FloatFormat | None = None, keep_positive: bool = False) -> None:
        self.D, self.flush, self.S, self.state = dtype, flush, scalar, state
        self.keep_positive = keep_positive
        self.formats = [dtype] + ([_FLOAT32] if dtype.precision < _FLOAT32.precision else [])

    def rounded(self, lo, hi, fmt: FloatFormat, keep: bool = False):
        """The interval of [lo, hi] rounded to nearest in ``fmt`` — and, in the flush model,
        maybe flushed to 0 (both maps are monotone, so the ends decide). ``keep``: a
        positive value's outcomes of 0 left out (its positive ones are then ≥ lo: a format
        that rounds lo to 0 has its smallest subnormal above it)."""
        ends = np.stack(np.broadcast_arrays(lo, hi))
        if fmt.precision < 53:
            ends = round_to(ends, fmt)
        r_lo, r_hi = ends[0], ends[1]
        if self.flush:
            eta = fmt.smallest_normal
            r_lo = np.minimum(r_lo, np.where(np.abs(r_lo) < eta, 0.0, r_lo))
            r_hi = np.maximum(r_hi, np.where(np.abs(r_hi) < eta, 0.0, r_hi))
        if keep:
            r_lo = np.where((r_lo <= 0) & (lo > 0), lo, r_lo)
        return r_lo, r_hi

    def op(self, lo, hi):
        """The interval of one operation's computed result, its exact value in [lo, hi]."""
        out_lo, out_hi = np.broadcast_arrays(lo, hi)
        for fmt in self.formats:
            r_lo, r_hi = self.rounded(lo, hi, fmt, self.keep_positive)
            out_lo, out_hi = np.minimum(out_lo, r_lo), np.maximum(out_hi, r_hi)
        return out_lo, out_hi

    def store(self, a, keep: bool = False):
        """A moment stored: rounded to D (its computed value may be wider), then to the
        state's format; the interval of the stored values (``keep``: as :meth:`rounded`)."""
        lo, hi = self.rounded(a[0], a[1], self.D, keep)
        if self.state is not None:
            lo, hi = self.rounded(lo, hi, self.state, keep)
        return lo, hi

    def divisor(self, lo, hi):
        """A positive divisor's computed interval among the outcomes that keep the update
        finite, and where it may be 0: a result rounded (or flushed) to 0 divides to ±∞ or
        NaN, and a positive one is at least ``lo`` rounded in some format, or that format's
        smallest positive value — above ``lo`` wherever the format rounds ``lo`` to 0."""
        zero = lo <= 0
        low = np.where(lo > 0, lo, np.inf)
        for fmt in self.formats:
            r = round_to(lo, fmt) if fmt.precision < 53 else lo
            zero = zero | (r <= 0) | (self.flush & (r < fmt.smallest_normal))
            low = np.where(r > 0, np.minimum(low, r), low)
        low = np.where(np.isinf(low), _TINIEST, low)  # lo = 0: any tiny positive value
        return (low, self.op(hi, hi)[1]), zero

    def held(self, lo, hi, keep_positive: bool = True):
        """A scalar computed exactly or in S, then maybe rounded to D where it meets an
        array; a positive one that D would round to 0 is held in S (``keep_positive``)."""
        s_lo, s_hi = self.rounded(lo, hi, self.S)
        d_lo, d_hi = self.rounded(s_lo, s_hi, self.D)
        if keep_positive:
            d_lo = np.where((d_lo <= 0) & (s_lo > 0), s_lo, d_lo)
        return (np.minimum(np.minimum(lo, s_lo), d_lo),
                np.maximum(np.maximum(hi, s_hi), d_hi))


# --- the update's product: roundings in any association ------------------------------------

@lru_cache(maxsize=None)
def _chain_nodes(denominator: tuple[bool, ...], scalar: tuple[bool, ...]):
    """The intermediates of a product's associations, as 0/1 matrices over the factors: for
    each node its numerators and denominators, the rest's, whether it holds scalars only;
    and the products of two or more denominators (used as divisors)."""
    count = len(denominator)
    nodes, products = [], []
    for mask in range(1, 1 << count):
        members = [i for i in range(count) if mask >> i & 1]
        if len(members) == 1 and not denominator[members[0]]:
            continue  # a factor itself, not an intermediate
        if len(members) >= 2 and all(denominator[i] for i in members):
            products.append(members)  # used as a divisor (its reciprocal is not a form)
            continue
        nodes.append(members)

    def matrix(rows, pick):
        return np.array([[1.0 if pick(row, i) else 0.0 for i in range(count)] for row in rows]
                        ).reshape(len(rows), count)

    num = matrix(nodes, lambda row, i: i in row and not denominator[i])
    den = matrix(nodes, lambda row, i: i in row and denominator[i])
    rest_num = matrix(nodes, lambda row, i: i not in row and not denominator[i])
    rest_den = matrix(nodes, lambda row, i: i not in row and denominator[i])
    only_scalars = np.array([all(scalar[i] for i in row) for row in nodes])
    # inside[a, b]: node b's factors are some of node a's (b may be one of a's operands)
    inside = np.array([[1.0 if set(b) < set(a) else 0.0 for b in nodes] for a in nodes]
                      ).reshape(len(nodes), len(nodes))
    sizes = np.array([len(row) for row in nodes], dtype=float)
    return (num, den, rest_num, rest_den, only_scalars,
            matrix(products, lambda row, i: i in row), inside, sizes)


def chain_roundings(leaves: list[tuple[np.ndarray, np.ndarray]], denominator: list[bool],
                    scalar: list[bool], D: FloatFormat, S: FloatFormat, flush: bool,
                    exact_max: np.ndarray, absolute_only: bool = False
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """What rounding can do to a product of factors ∏ numerators / ∏ denominators
    (γ·m/((1−β1^t)·d), with √(1−β2^t) in the ε-hat and lr-folded forms) evaluated in any
    association: every intermediate is a product or quotient of some of the factors, with
    at least one numerator, or a reciprocal 1/b, or a product of denominators b1·b2 used as
    a divisor — rounded to D, a scalar-only one first to S, then to D where it meets an
    array.

    ``leaves`` are the factors' magnitudes (min, max) over their intervals, ``exact_max``
    the largest magnitude of the exact product. Returns the relative factor (lo, hi) the
    exact product's interval is multiplied by, an absolute term, and where an intermediate
    may exceed D's largest value (the result then ±∞ or NaN, faithfully). An intermediate
    is off by a relative u_D while it is normal; one whose magnitude may be subnormal is off
    by up to half of D's smallest subnormal (flushed: by all of itself, up to D's smallest
    normal), which reaches the result multiplied by the remaining factors, and by no more
    than the result itself. A product of denominators used as a divisor may round to half
    of itself, or up to D's smallest subnormal (normal, when flushing). One association has
    (factors − 1) operations and a reciprocal: the largest that many terms are summed.
    ``absolute_only``: the absolute term alone (relative factors 1, no overflow test), for
    the first-order bound.
    """
    count = len(leaves)
    # one association: (factors − 1) operations and a reciprocal; relatively, a held
    # scalar's rounding to D too
    operations = count
    roundings = count + 1
    u = D.unit_roundoff
    shape = np.broadcast(*[a for pair in leaves for a in pair]).shape
    logs_lo = np.stack([np.broadcast_to(
        np.where(lo > 0, np.log(np.maximum(lo, _TINIEST)), _NO_LOG), shape) for lo, _ in leaves])
    logs_hi = np.stack([np.broadcast_to(np.log(np.maximum(hi, _TINIEST)), shape)
                        for _, hi in leaves])
    num, den, rest_num, rest_den, only_scalars, products, inside, sizes = _chain_nodes(
        tuple(denominator), tuple(scalar))
    # normal with room for its operands' own roundings (each at most halves a value)
    tiny_log = math.log(D.smallest_normal) + roundings * math.log(2.0)
    flat_lo, flat_hi = logs_lo.reshape(count, -1), logs_hi.reshape(count, -1)
    # |node| between ∏ numerators' min / ∏ denominators' max over its members and the
    # other way round; the rest of the factors carry its rounding to the result
    low = num @ flat_lo - den @ flat_hi
    maybe = low < tiny_log
    if absolute_only:
        ones = np.ones(low.shape[1])
        total = _absolute_terms(maybe, rest_num, rest_den, flat_lo, flat_hi, only_scalars,
                                D, S, flush, np.broadcast_to(exact_max, shape).reshape(-1),
                                operations)
        return ones, ones, total.reshape(shape), None
    high = num @ flat_hi - den @ flat_lo
    # a computed intermediate exceeds its exact bound by the roundings inside it: a factor
    # 1 + u each (its own included), and up to 2 where one may be subnormal (rounded up to
    # the next subnormal); it overflows where it may round beyond D's largest value
    subnormal_inside = np.minimum(inside @ maybe, np.maximum(sizes - 2, 0)[:, None])
    grown = high + sizes[:, None] * math.log1p(u) + subnormal_inside * math.log(2.0)
    overflow = (grown > math.log(D.max)).any(axis=0)
    huge_log = math.log(D.max) - roundings * (math.log1p(u) + math.log(2.0))
    divisor_lo = np.ones(low.shape[1])
    divisor_hi = np.ones(low.shape[1])
    if len(products):
        overflow |= ((products @ flat_hi) > huge_log).any(axis=0)
        smallest_log = (products @ flat_lo).min(axis=0)
        tiny_divisor = smallest_log < tiny_log
        if tiny_divisor.any():
            smallest = np.exp(np.maximum(smallest_log, math.log(_TINIEST)))
            floor = D.smallest_normal if flush else D.smallest_subnormal
            grow = np.maximum(1.0 + half_ulp(D, smallest) / smallest, floor / smallest)
            divisor_lo = np.where(tiny_divisor, 1.0 / grow, 1.0)
            divisor_hi = np.where(tiny_divisor, 2.0, 1.0)
    relative_lo = (1.0 - u) ** roundings * divisor_lo
    relative_hi = (1.0 + u) ** roundings * divisor_hi
    total = _absolute_terms(maybe, rest_num, rest_den, flat_lo, flat_hi, only_scalars, D, S,
                            flush, np.broadcast_to(exact_max, shape).reshape(-1) * relative_hi,
                            operations)
    return (relative_lo.reshape(shape), relative_hi.reshape(shape), total.reshape(shape),
            overflow.reshape(shape))


def _absolute_terms(maybe, rest_num, rest_den, flat_lo, flat_hi, only_scalars, D, S,
                    flush: bool, result_max, roundings: int) -> np.ndarray:
    """The sum of the ``roundings`` largest absolute terms of intermediates that may be
    subnormal (``maybe``, nodes × elements): half of D's smallest subnormal (flushed: its
    smallest normal; a scalar-only one in S too) times the rest of the factors, and no more
    than the result: a rounding is off by at most the value itself (to 0), and the rest
    carries the node's value to the result."""
    rows = np.flatnonzero(maybe.any(axis=1))
    if not len(rows):
        return np.zeros(maybe.shape[1])
    rest = rest_num[rows] @ flat_hi - rest_den[rows] @ flat_lo
    sub = D.smallest_normal if flush else D.smallest_subnormal / 2
    sub_s = S.smallest_normal if flush else S.smallest_subnormal / 2
    absolute = sub + np.where(only_scalars[rows], sub_s, 0.0)[:, None]
    terms = np.where(maybe[rows], np.minimum(absolute * np.exp(np.minimum(rest, 700.0)),
                                             result_max), 0.0)
    if len(rows) > roundings:
        terms = np.partition(terms, len(rows) - roundings, axis=0)[-roundings:]
    return terms.sum(axis=0)


# --- one step, for the elements the first-order bound leaves unresolved ----------------------

@dataclass(frozen=True)
class StepScalars:
    """One step's scalars as the bound models them: exact values and absolute error bounds
    (``rel_*``: relative bounds of 1 − β^t, already with their roundings)."""

    lr: float
    e_lr: float
    bc1: float
    rel_bc1: float
    bc2: float
    rel_bc2: float
    beta2: float
    e_beta2: float
    omb2: float  # 1 − β2
    e_omb2: float
    lerp2: float  # the factor a lerp multiplies (g² − v′) by: 1 − β2, or β2 if that is ≥ ½
    e_lerp2: float
    eps: float


@dataclass(frozen=True)
class StepValues:
    """One step's exact values and first-order error bounds, 1-d over the elements judged
    here: the update's inputs and, for the second moment, the state before the step."""

    g: np.ndarray
    e_g: np.ndarray
    m: np.ndarray
    e_m: np.ndarray
    v_prev: np.ndarray
    e_v_prev: np.ndarray
    v: np.ndarray
    e_v: np.ndarray
    vmax_prev: np.ndarray
    e_vmax_prev: np.ndarray
    vmax: np.ndarray
    e_vmax: np.ndarray
    second: np.ndarray  # what the denominator reads: v, v̂max, raw vmax or v̂max·(1−β2^t)
    e_second: np.ndarray
    update: np.ndarray  # the exact update, signed: θ ← θ − update
    # where ``update``, recomputed from float64 values, is not the exact one (v or m below
    # float64's normal range): the bound is then the enclosure's width
    update_unknown: np.ndarray | None = None


@dataclass(frozen=True)
class Modes:
    """The dialect's switches the step's form depends on."""

    eps_mode: str
    amsgrad_mode: str  # "off" without amsgrad (or where the dialect ignores it)
    corrected: bool  # whether ``second`` is already bias-corrected


@dataclass(frozen=True)
class Enclosed:
    """Per element: a bound on |update − exact| over the enclosure (∞ where undecided),
    whether it decides, where a divisor may round to 0, where an intermediate may leave D's
    range (both make a faithful update non-finite), and the stored v's and v̂max's bounds
    the intervals give (never above the first-order ones)."""

    e_update: np.ndarray
    decided: np.ndarray
    zero_divisor: np.ndarray
    may_overflow: np.ndarray
    e_v: np.ndarray
    e_vmax: np.ndarray


def _eps_interval(eps: float, R: Rounding):
    """ε as passed, rounded to S (flushed where S flushes a subnormal), then to D where D
    keeps it > 0."""
    value = np.array([eps])
    return R.held(value, value)


def _second_moment(R: Rounding, x: StepValues, sc: StepScalars):
    """v ← β2·v′ + (1−β2)·g² by the orderings the bound admits, every operation rounded as
    :class:`Rounding` allows; FMA and float64 intermediates are inside the per-operation
    hull (each operation may stay unrounded)."""
    v_prev = _nonneg(_around(x.v_prev, x.e_v_prev))
    g = _magnitude(_around(x.g, x.e_g))
    beta2 = _nonneg(_around(sc.beta2, sc.e_beta2))
    omb2 = _nonneg(_around(sc.omb2, sc.e_omb2))
    lerp = _nonneg(_around(sc.lerp2, sc.e_lerp2))
    g2 = R.op(*_mul_pos(g, g))
    decayed = R.op(*_mul_pos(beta2, v_prev))
    products = R.op(*_add(decayed, R.op(*_mul_pos(omb2, g2))))
    # (1 − β2)·g, then ·g (torch's addcmul)
    torch = R.op(*_add(decayed, R.op(*_mul_pos(R.op(*_mul_pos(omb2, g)), g))))
    diff = R.op(*_sub(g2, v_prev))
    if sc.omb2 < 0.5:  # v′ + w·(g² − v′)
        lerped = R.op(*_add(v_prev, R.op(*_mul(lerp, diff))))
    else:  # g² − (g² − v′)·(1 − w)
        lerped = R.op(*_sub(g2, R.op(*_mul(diff, lerp))))
    return _nonneg(_hull(products, torch, lerped))


def _denominators(R: Rounding, second, sc: StepScalars, modes: Modes, bc2, sqrt_bc2, eps,
                  eps_folded):
    """Each form's denominator interval (finite outcomes), whether it may be 0, and the
    factors it adds to the numerator: √(1−β2^t) where the form moves it there."""
    eps_mode = modes.eps_mode

    def root(a):
        return R.op(*_sqrt(a))

    forms = []
    if eps_mode == "hat":  # γ·√(1−β2^t)/(1−β1^t) · m/(√V + ε)
        forms.append((*R.divisor(*_add(root(second), eps)), [sqrt_bc2]))
        return forms
    if modes.corrected:  # V̂ already: v̂max, or the paper's max without bias correction
        hat = second
        roots = [root(second)]
    else:
        hat = R.op(*_div_pos(second, bc2))
        # √(v/(1−β2^t)), or √v/√(1−β2^t) with the square root held as a scalar
        roots = [root(hat), R.op(*_div_pos(root(second), sqrt_bc2))]
    if eps_mode == "inside-sqrt":
        forms.append((*R.divisor(*_sqrt(R.op(*_add(hat, eps)))), []))
    elif eps_mode == "floor":  # max(√V̂, ε): exact, 0 only where both are
        s = _hull(*roots)
        (low, _), zero = R.divisor(*_sqrt(hat))
        lo = np.maximum(np.maximum(s[0], eps[0]), np.where(eps[0] > 0, 0.0, low))
        forms.append(((lo, np.maximum(s[1], eps[1])), zero & (eps[0] <= 0), []))
    else:
        forms.append((*R.divisor(*_add(_hull(*roots), eps)), []))
        # lr-folded: γ√(1−β2^t)/(1−β1^t) · m/(√v + ε√(1−β2^t)); over v̂max,
        # √v̂max·√(1−β2^t) + ε√(1−β2^t)
        if modes.corrected and modes.amsgrad_mode == "max-hat":
            folded_root = R.op(*_mul_pos(root(second), sqrt_bc2))
        elif modes.corrected:
            return forms
        else:
            folded_root = root(second)
        forms.append((*R.divisor(*_add(folded_root, eps_folded)), [sqrt_bc2]))
    return forms


def enclose_update(x: StepValues, sc: StepScalars, modes: Modes, R: Rounding) -> Enclosed:
    """The enclosure of one step's update for the elements of ``x`` (see the module
    docstring); the bound is max |update − exact| over it, decided where that interval
    stays within D's range."""
    D = R.D
    bc1 = _around(sc.bc1, sc.bc1 * sc.rel_bc1)
    bc2 = _around(sc.bc2, sc.bc2 * sc.rel_bc2)
    ok = (bc1[0] > 0) & (bc2[0] > 0)
    bc1 = (np.maximum(bc1[0], _TINIEST), bc1[1])
    bc2 = (np.maximum(bc2[0], _TINIEST), bc2[1])
    sqrt_bc2 = R.held(*_sqrt(bc2))
    eps = _eps_interval(sc.eps, R)
    eps_folded = R.held(*_mul_pos(eps, _sqrt(bc2)))
    gamma = _nonneg(_around(sc.lr, sc.e_lr))

    # the second moment the denominator reads, by the intervals and by the first-order bound
    v_new = _second_moment(R, x, sc)
    may_overflow = v_new[1] > D.max
    # the denominator may read v as computed, or as stored (rounded to D, to the state's
    # format); the next step reads it as stored, a positive v maybe lost to underflow
    v_used = _meet(_hull(v_new, R.store(v_new, R.keep_positive)),
                   _nonneg(_around(x.v, x.e_v)))
    e_v = _distance(R.store(v_used), x.v)
    e_vmax = x.e_vmax
    used = v_used
    if modes.amsgrad_mode in ("max-hat", "max-raw", "paper"):
        previous = _nonneg(_around(x.vmax_prev, x.e_vmax_prev))
        new = R.op(*_div_pos(v_used, bc2)) if modes.amsgrad_mode == "max-hat" else v_used
        vmax = (np.maximum(previous[0], new[0]), np.maximum(previous[1], new[1]))
        vmax = _meet(_hull(vmax, R.store(vmax, R.keep_positive)),
                     _nonneg(_around(x.vmax, x.e_vmax)))
        e_vmax = np.fmin(e_vmax, _distance(R.store(vmax), x.vmax))
        used = vmax
        if modes.amsgrad_mode == "max-hat" and modes.eps_mode == "hat":
            used = R.op(*_mul_pos(vmax, bc2))  # V = v̂max·(1−β2^t)
    second = _meet(used, _nonneg(_around(x.second, x.e_second)))

    m = _around(x.m, x.e_m)
    m_size = _magnitude(m)
    lo = np.full(x.m.shape, np.inf)
    hi = np.full(x.m.shape, -np.inf)
    zero_divisor = np.zeros(x.m.shape, dtype=bool)
    for d, zero, extra in _denominators(R, second, sc, modes, bc2, sqrt_bc2, eps, eps_folded):
        zero_divisor |= zero
        may_overflow |= d[1] > D.max
        numerator = gamma
        for factor in extra:
            numerator = _mul_pos(numerator, factor)
        below = _mul_pos(bc1, d)
        exact = _div_pos(_mul(numerator, m), (np.maximum(below[0], _TINIEST), below[1]))
        exact = (np.where(gamma[1] == 0, 0.0, exact[0]), np.where(gamma[1] == 0, 0.0, exact[1]))
        leaves = [gamma, m_size, bc1, d] + list(extra)
        rel_lo, rel_hi, absolute, overflow = chain_roundings(
            leaves, [False, False, True, True] + [False] * len(extra),
            [True, False, True, False] + [True] * len(extra), D, R.S, R.flush,
            np.maximum(np.abs(exact[0]), np.abs(exact[1])))
        may_overflow |= overflow
        lo = np.minimum(lo, _rounded_end(exact[0], rel_lo, rel_hi, absolute, low_end=True))
        hi = np.maximum(hi, _rounded_end(exact[1], rel_lo, rel_hi, absolute, low_end=False))
    # the exact update lies in [lo, hi]: the bound is the distance to the farther end, or
    # the width where the exact update is not known to float64's accuracy
    with np.errstate(invalid="ignore", over="ignore"):
        e_update = np.maximum(x.update - lo, hi - x.update)
        if x.update_unknown is not None:
            e_update = np.where(x.update_unknown, np.maximum(e_update, hi - lo), e_update)
        e_update = _up(e_update * (1.0 + 2.0**-50))  # its own evaluation, rounded outward
    decided = (ok & np.isfinite(e_update) & (np.maximum(np.abs(lo), np.abs(hi)) <= D.max))
    return Enclosed(e_update=np.where(decided, e_update, np.inf), decided=decided,
                    zero_divisor=zero_divisor, may_overflow=may_overflow,
                    e_v=np.fmin(x.e_v, e_v), e_vmax=e_vmax)


def _rounded_end(end, rel_lo, rel_hi, absolute, low_end: bool):
    """One end of the update's interval after the chain's roundings: relative factors, then
    the absolute terms, without crossing 0 (rounding keeps a sign or gives 0)."""
    if low_end:
        scaled = np.where(end >= 0, end * rel_lo, end * rel_hi) - absolute
        return np.where(end >= 0, np.maximum(scaled, 0.0), scaled)
    scaled = np.where(end >= 0, end * rel_hi, end * rel_lo) + absolute
    return np.where(end <= 0, np.minimum(scaled, 0.0), scaled)


def _distance(a, exact):
    """max |x − exact| over x in a."""
    return np.maximum(exact - a[0], a[1] - exact)
