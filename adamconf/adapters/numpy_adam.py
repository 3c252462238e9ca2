"""Adam as documented for ``mindspore.experimental.optim.Adam``, in NumPy: a real optimizer.

Per param group (lr γ, betas (β1, β2), eps ε, weight_decay λ, amsgrad, maximize), with one
step counter t shared by the optimizer (incremented before use: the first update has t = 1)
and per parameter m, v, v̂max, all 0 at the start::

    g  ← −∇ if maximize else ∇;       if λ ≠ 0:  g ← g + λ·θ
    m  ← β1·m + (1 − β1)·g
    v  ← β2·v + (1 − β2)·(g·g)
    m̂ ← m / (1 − β1^t)                v̂ ← v / (1 − β2^t)
    amsgrad:  v̂max ← max(v̂max, v̂);   θ ← θ − γ·(m̂ / (√v̂max + ε))
    else:                              θ ← θ − γ·(m̂ / (√v̂ + ε))

Note that v̂max is the max of the *bias-corrected* v̂, as documented — not of raw v, as
PyTorch keeps it — and that ε is added to √v̂, not to √v (the "eps-hat" form MindSpore's own
kernels use is a different algorithm).

Arithmetic. Every operation above is one IEEE operation in the parameter's dtype, in the
order written (no FMA contraction, no folding of ε or of the bias corrections): float64 and
float32 parameters compute in their own dtype. float16 parameters compute the step in
float32 (as torch's fused kernels do) and store θ, m, v and v̂max rounded to float16 after
it: in float16 itself ε = 1e-8 is 0, and where v̂ is 0 the step would divide by 0 —
which is not the documented algorithm, whose ε keeps the denominator from 0.
The constants (β1, 1 − β1, β2, 1 − β2, γ, ε, λ) and the bias
corrections 1 − β1^t and 1 − β2^t are computed once per step per group in float64 and
rounded to the parameter's dtype; the bias corrections avoid the cancellation of
``1 - beta**t`` (see :func:`one_minus_power`), so they are within 1.5 float64 ulps at
every t. Non-finite values follow IEEE 754: NaN and ±∞ propagate, 0/0 is NaN (ε = 0 with
a zero gradient), and the max of amsgrad propagates NaN (as ``numpy.maximum``).

Kernels. ``kernel="numpy"`` walks each parameter in cache-sized chunks through ufuncs with
``out=`` into preallocated scratch chunks: no full-size temporary is allocated per step;
a parameter of 1 MiB or more is shared among ``threads`` threads (the ufuncs release the
GIL) in larger chunks, each thread taking the next chunk when it is done with one, so a
thread the machine runs late does less of the work instead of holding up the step.
``kernel="numba"`` (optional extra ``adamconf[fast]``) runs the same operations in the same
order per element, compiled with ``fastmath`` off (no FMA contraction, no reassociation)
and parallelised over blocks of elements with ``prange`` on ``threads`` threads (a step on
one thread, for a small parameter or ``threads=1``, runs a serial compilation of the same
loop); it handles float32 and float64 and gives the same bits as the NumPy kernel.
``kernel="auto"`` (the default) uses numba for float32/float64 parameters when it is
installed and NumPy otherwise (always NumPy for float16). In a process that also runs
torch on the CPU, choose numba's threading layer with ``NUMBA_THREADING_LAYER=workqueue``
(or ``tbb``): its default OpenMP layer binds to the libgomp torch has loaded, and sharing
it slows torch's own operations down many times over (measured 10-100x for torch's Adam
step).
"""

from __future__ import annotations

import copy
import math
import numbers
import os
import threading
import types
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Adam", "KERNELS", "aligned_zeros", "default_threads", "numba_available",
           "one_minus_power", "validate_hyperparameters", "STATE_DICT_FORMAT"]

KERNELS = ("auto", "numpy", "numba")
STATE_DICT_FORMAT = "adamconf.numpy_adam/1"
SUPPORTED_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
NUMBA_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_DEFAULTS: dict[str, Any] = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                             "weight_decay": 0.0, "amsgrad": False, "maximize": False}
_GROUP_KEYS = frozenset(_DEFAULTS) | {"params"}

# Bytes per array per chunk of the NumPy kernel. The 14 ufuncs of a step pass over the
# chunk's 6 arrays (θ, g, m, v, two scratch) while they sit in L2; smaller chunks pay the
# call overhead (~0.5 µs a ufunc) more often, larger ones leave L2. 128 and 256 KiB
# measured alike (CPU time per element, one thread); 128 KiB gives threads more chunks.
_CHUNK_BYTES = 128 * 1024
# Bytes per array per chunk where threads share a step. The ufuncs release the GIL only
# while they loop: on 128 KiB chunks (~5 µs a call) two threads convoy on the GIL and run
# slower than one; 512 KiB calls overlap (two threads 0.39–0.57× → 0.60–0.89× torch
# foreach from 2^16 to 2^22, measured in adamconf bench), at some cost in cache.
_SHARED_CHUNK_BYTES = 512 * 1024
# Bytes of one parameter from which the NumPy kernel shares it among threads: two shared
# chunks, the fewest a second thread can share. A helper that starts late costs the step
# little (the caller takes the chunks it would have taken).
_NUMPY_PARALLEL_MIN_BYTES = 2 * _SHARED_CHUNK_BYTES
# Elements per block of the numba kernel's parallel loop, and the fewest elements worth a
# thread of their own (a parameter smaller than that runs on the calling thread alone).
_NUMBA_BLOCK = 16384
_NUMBA_ELEMENTS_PER_THREAD = 1 << 15
# ... in numba's workqueue layer, where starting a parallel region costs about 0.25 ms:
# two threads measured slower than one up to 2^19 elements, faster from 2^20
_NUMBA_ELEMENTS_PER_THREAD_WORKQUEUE = 1 << 19


# --------------------------------------------------------------------------------------
# Hyperparameters. This module's own check of the documented errors, written from the
# documentation (not shared with the reference, so that the conformance suite's check of
# the documented ValueErrors judges this code, not the specification's).

def _learning_rate(lr: Any) -> float:
    """``lr`` as a float: an int, a float, or a tensor-like holding one number (not a bool)."""
    if isinstance(lr, (bool, np.bool_)):
        raise ValueError(f"Invalid learning rate: {lr!r}; lr must be an int, a float or a "
                         "tensor holding one number, not a bool")
    if isinstance(lr, numbers.Real):
        return float(lr)
    item = getattr(lr, "item", None)
    if not callable(item):
        raise ValueError(f"Invalid learning rate type: {type(lr).__name__}; lr must be an "
                         "int, a float or a tensor holding one number")
    try:
        numel = getattr(lr, "numel", None)  # torch: .size() is a method, .numel() the count
        count = int(numel()) if callable(numel) else int(getattr(lr, "size", 1))
        if count != 1:
            raise ValueError(f"Invalid learning rate: a tensor of {count} elements; lr must "
                             "be an int, a float or a tensor holding exactly one number")
        value = item()
    except ValueError:
        raise
    except Exception as exc:  # the framework's own error reading its tensor
        raise ValueError(f"Invalid learning rate: cannot read a {type(lr).__name__} as a "
                         f"number ({type(exc).__name__}: {exc})") from exc
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"Invalid learning rate: the tensor holds {value!r}; lr must be a "
                         "real number")
    return float(value)


def _real(label: str, name: str, value: Any) -> float:
    """``value`` as a float: a real number (not a bool), not NaN."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"Invalid {label}: {value!r} ({type(value).__name__}); {name} must "
                         "be a real number")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"Invalid {label}: nan; {name} must be a number, not NaN")
    return value


def validate_hyperparameters(lr: Any, betas: Any, eps: Any, weight_decay: Any
                             ) -> tuple[float, tuple[float, float], float, float]:
    """The documented checks; (lr, (beta1, beta2), eps, weight_decay) as floats.

    Each refusal is a ``ValueError`` naming the parameter, its value and the allowed range:
    lr >= 0 (an int, a float or a one-element tensor; not a bool), eps >= 0, each beta in
    [0, 1), weight_decay >= 0; NaN is refused everywhere.
    """
    lr = _learning_rate(lr)
    if math.isnan(lr):
        raise ValueError("Invalid learning rate: nan; lr must be a number >= 0")
    if lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr!r}; lr must be >= 0")
    eps = _real("epsilon value", "eps", eps)
    if eps < 0.0:
        raise ValueError(f"Invalid epsilon value: {eps!r}; eps must be >= 0")
    if isinstance(betas, (str, bytes)) or not isinstance(betas, Iterable):
        raise ValueError(f"Invalid betas: {betas!r}; betas must be a pair (beta1, beta2), "
                         "each in [0, 1)")
    pair = list(betas)
    if len(pair) != 2:
        raise ValueError(f"Invalid betas: {betas!r}; betas must be a pair (beta1, beta2), "
                         "each in [0, 1)")
    checked = []
    for index, beta in enumerate(pair):
        beta = _real(f"beta parameter at index {index}", f"betas[{index}]", beta)
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {beta!r}; each beta "
                             "must be in [0, 1)")
        checked.append(beta)
    weight_decay = _real("weight_decay value", "weight_decay", weight_decay)
    if weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay!r}; weight_decay must "
                         "be >= 0")
    return lr, (checked[0], checked[1]), eps, weight_decay


# --------------------------------------------------------------------------------------
# The numba kernel: plain Python functions here, compiled on first use so that importing
# this module never imports numba. ``_prange`` becomes ``numba.prange`` before compiling.

_prange = range


def _adam_block_kernel(theta, grad, m, v, vmax, beta1, one_minus_beta1, beta2,
                       one_minus_beta2, bias_correction1, bias_correction2, lr, eps,
                       weight_decay, maximize, decay, amsgrad):  # pragma: no cover - compiled
    # one kernel for both amsgrad settings (one compilation per dtype, not two); the flags
    # are loop invariants, so LLVM unswitches the loop and vectorises each version
    n = theta.shape[0]
    blocks = (n + _NUMBA_BLOCK - 1) // _NUMBA_BLOCK
    for block in _prange(blocks):
        start = block * _NUMBA_BLOCK
        stop = min(start + _NUMBA_BLOCK, n)
        # slices, not range(start, stop) indexing: a possibly negative index (wraparound)
        # keeps LLVM from vectorising the loop
        theta_b, grad_b, m_b, v_b = theta[start:stop], grad[start:stop], m[start:stop], \
            v[start:stop]
        vmax_b = vmax[start:stop] if amsgrad else vmax[0:0]
        for i in range(theta_b.shape[0]):
            g = grad_b[i]
            if maximize:
                g = -g
            if decay:
                g = g + weight_decay * theta_b[i]
            m_i = beta1 * m_b[i] + one_minus_beta1 * g
            v_i = beta2 * v_b[i] + one_minus_beta2 * (g * g)
            m_b[i] = m_i
            v_b[i] = v_i
            m_hat = m_i / bias_correction1
            second = v_i / bias_correction2  # v̂
            if amsgrad:
                # NaN from either side propagates; on a tie (±0) numba returns its first
                # operand and NumPy's ufunc its second: swapped, to give NumPy's bits
                second = np.maximum(second, vmax_b[i])
                vmax_b[i] = second
            denominator = np.sqrt(second) + eps
            theta_b[i] = theta_b[i] - lr * (m_hat / denominator)


_numba_state: dict[str, Any] = {}


def numba_available() -> bool:
    """True when the optional numba kernel can be used (``pip install adamconf[fast]``)."""
    if "available" not in _numba_state:
        try:
            import numba  # noqa: F401
        except Exception as exc:  # ImportError, or a broken llvmlite
            _numba_state["available"] = False
            _numba_state["error"] = f"{type(exc).__name__}: {exc}"
        else:
            _numba_state["available"] = True
    return bool(_numba_state["available"])


def _numba_kernel(parallel: bool = True) -> Any:
    """The numba kernel, compiled per dtype on first call (and cached on disk).

    ``parallel=False`` gives the same loop compiled without a parallel region, for a step
    on one thread: launching one costs about 0.3 ms in numba's workqueue layer (the one
    to use beside torch), ten times a small parameter's whole step.
    """
    name = "kernel" if parallel else "serial kernel"
    kernel = _numba_state.get(name)
    if kernel is None:
        if not numba_available():
            raise ImportError("kernel='numba' needs numba, which is not importable here "
                              f"({_numba_state.get('error')}); install it with "
                              "`pip install adamconf[fast]` or use kernel='numpy'")
        import numba

        global _prange
        _prange = numba.prange  # a plain range where the compilation is not parallel
        _numba_state["module"] = numba
        function = _adam_block_kernel
        if not parallel:
            # the same code under its own name: numba's disk cache is keyed by the name
            function = types.FunctionType(function.__code__, function.__globals__,
                                          "_adam_block_kernel_serial")
            function.__qualname__ = function.__name__
        # fastmath off: no FMA contraction, no reassociation, IEEE NaN/∞; error_model numpy:
        # x/0 gives ±∞ or NaN instead of raising
        options = {"parallel": parallel, "fastmath": False, "error_model": "numpy",
                   "nogil": True}
        try:
            kernel = numba.njit(cache=True, **options)(function)
        except RuntimeError:  # no writable cache directory: compile in every process
            kernel = numba.njit(cache=False, **options)(function)
        _numba_state[name] = kernel
    return kernel


# --------------------------------------------------------------------------------------

class _StepConstants(NamedTuple):
    """One group's scalars for one step, already rounded to one dtype.

    The field order is the order of the numba kernel's scalar arguments.
    """

    beta1: np.floating
    one_minus_beta1: np.floating
    beta2: np.floating
    one_minus_beta2: np.floating
    bias_correction1: np.floating
    bias_correction2: np.floating
    lr: np.floating
    eps: np.floating
    weight_decay: np.floating
    maximize: bool
    decay: bool
    amsgrad: bool


def one_minus_power(beta: float, t: int) -> float:
    """1 − β^t in float64, within 1.5 ulps for 0 ≤ β < 1 and t ≥ 1.

    ``1 - beta**t`` loses up to log2(β^t/(1 − β^t)) bits to cancellation when β^t is near 1
    (β2 = 0.999 at t = 2: ~500 ulps; β2 = 1 − 1e-6: millions); there the value is taken
    as −expm1(t·log1p(β − 1)), where β − 1 is exact (β ≥ 1/2) and each step is relative.
    """
    if beta == 0.0:
        return 1.0
    if t == 1:
        return 1.0 - beta
    power = beta ** t
    if power <= 0.5:  # no cancellation
        return 1.0 - power
    return -math.expm1(t * math.log1p(beta - 1.0))


def aligned_zeros(shape: Any, dtype: Any, alignment: int = 64) -> np.ndarray:
    """A C-contiguous array of zeros whose data starts on an ``alignment``-byte boundary.

    NumPy aligns large arrays to 16 bytes only; with 32-byte vectors every other load then
    straddles two cache lines. Cache-line alignment (as torch's allocator gives) makes the
    memory-bound step a few per cent faster; the optimizer's own state is allocated so.
    """
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    buffer = np.zeros(count * dtype.itemsize + alignment, dtype=np.uint8)
    offset = -buffer.ctypes.data % alignment
    return buffer[offset:offset + count * dtype.itemsize].view(dtype).reshape(shape)


def default_threads() -> int:
    """Every core this process may run on (as torch's default thread count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _numba_elements_per_thread() -> int:
    """The fewest elements worth a numba thread, by the threading layer numba runs on: the
    one asked for, or the one it chose once a parallel region has run."""
    layer = _numba_state.get("layer")
    if layer is None:
        import numba

        try:
            layer = numba.threading_layer()
        except ValueError:  # no parallel region has run yet
            layer = numba.config.THREADING_LAYER
        if layer in ("workqueue", "omp", "tbb"):
            _numba_state["layer"] = layer
    if layer == "workqueue":
        return _NUMBA_ELEMENTS_PER_THREAD_WORKQUEUE
    return _NUMBA_ELEMENTS_PER_THREAD


def _numba_call(kernel: Any, threads: int, *args: Any) -> None:
    """Run a numba kernel on ``threads`` threads, leaving the caller's numba setting as it was."""
    numba = _numba_state["module"]
    threads = min(threads, numba.config.NUMBA_NUM_THREADS)
    previous = numba.get_num_threads()
    if previous == threads:
        kernel(*args)
        return
    numba.set_num_threads(threads)
    try:
        kernel(*args)
    finally:
        numba.set_num_threads(previous)


_pool_state: dict[str, Any] = {}
_pool_lock = threading.Lock()


def _thread_pool(workers: int) -> ThreadPoolExecutor:
    """A shared pool for the NumPy kernel's helper threads (grown on demand)."""
    with _pool_lock:
        pool = _pool_state.get("pool")
        if pool is None or _pool_state["workers"] < workers:
            if pool is not None:
                pool.shutdown(wait=False)
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="adamconf-adam")
            _pool_state.update(pool=pool, workers=workers)
        return pool


class _Arrays(NamedTuple):
    """One parameter's flat arrays for the NumPy kernel (``vmax`` None without amsgrad)."""

    theta: np.ndarray
    grad: np.ndarray
    m: np.ndarray
    v: np.ndarray
    vmax: np.ndarray | None


def _numpy_chunk(x: _Arrays, c: _StepConstants, start: int, stop: int,
                 scratch_a: np.ndarray, scratch_b: np.ndarray) -> None:
    """The documented step on elements [start, stop), one ufunc per operation.

    Each operation writes into the state or into the two scratch chunks (positional
    ``out``): no allocation, and every operand stays in cache between operations.
    """
    multiply, add, divide, sqrt = np.multiply, np.add, np.divide, np.sqrt
    theta, g, m, v = x.theta[start:stop], x.grad[start:stop], x.m[start:stop], x.v[start:stop]
    k = stop - start
    a, b = scratch_a[:k], scratch_b[:k]
    if c.maximize:
        np.negative(g, a)
        g = a
    if c.decay:
        multiply(c.weight_decay, theta, b)
        add(g, b, a)
        g = a
    # m ← β1·m + (1 − β1)·g
    multiply(c.beta1, m, m)
    multiply(c.one_minus_beta1, g, b)
    add(m, b, m)
    # v ← β2·v + (1 − β2)·(g·g)
    np.square(g, b)  # g·g: the same IEEE product, one input stream
    multiply(c.one_minus_beta2, b, b)
    multiply(c.beta2, v, v)
    add(v, b, v)
    # the denominator √v̂ + ε (or √v̂max + ε), in b
    divide(v, c.bias_correction2, b)
    if x.vmax is not None:
        vmax = x.vmax[start:stop]
        np.maximum(vmax, b, out=vmax)  # (positional out is deprecated for maximum)
        sqrt(vmax, b)
    else:
        sqrt(b, b)
    add(b, c.eps, b)
    # θ ← θ − γ·(m̂ / denominator)
    divide(m, c.bias_correction1, a)
    divide(a, b, a)
    multiply(c.lr, a, a)
    np.subtract(theta, a, theta)


class _ChunkQueue:
    """The chunk starts of one parameter, handed to whichever thread asks next.

    Threads that share a step take chunks until none is left, so a thread the machine
    runs late does less of the work instead of holding the step up.
    """

    def __init__(self, size: int, chunk: int) -> None:
        self.size, self.chunk = size, chunk
        self._starts = iter(range(0, size, chunk))
        self._lock = threading.Lock()

    def take(self) -> int | None:
        with self._lock:
            return next(self._starts, None)


def _numpy_chunk_wide(x: _Arrays, c: _StepConstants, start: int, stop: int) -> None:
    """A float16 chunk: the step in float32 (``c`` holds float32 constants), the results
    rounded to float16 once, when they are stored."""
    wide = _Arrays(*(None if a is None else a[start:stop].astype(np.float32) for a in x))
    k = stop - start
    _numpy_chunk(wide, c, 0, k, np.empty(k, np.float32), np.empty(k, np.float32))
    x.theta[start:stop], x.m[start:stop], x.v[start:stop] = wide.theta, wide.m, wide.v
    if x.vmax is not None:
        x.vmax[start:stop] = wide.vmax


def _numpy_worker(x: _Arrays, c: _StepConstants, queue: _ChunkQueue,
                  scratch_a: np.ndarray, scratch_b: np.ndarray) -> None:
    """Step the chunks ``queue`` hands out until none is left."""
    narrow = x.theta.dtype.itemsize < 4
    with np.errstate(all="ignore"):  # IEEE results (NaN, ±∞) are the documented outcome
        while (start := queue.take()) is not None:
            stop = min(start + queue.chunk, queue.size)
            if narrow:
                _numpy_chunk_wide(x, c, start, stop)
            else:
                _numpy_chunk(x, c, start, stop, scratch_a, scratch_b)


_PLAIN_TYPES = frozenset({int, float, bool, np.float64, np.float32, np.float16, np.int64,
                          np.int32, np.bool_})


def _plain_key(group: Mapping[str, Any]) -> tuple | None:
    """A group's hyperparameters as (type, value, sign), or None where one is not a plain
    number (a tensor, an array, anything whose value is not its equality)."""
    betas = group["betas"]
    if type(betas) not in (tuple, list) or len(betas) != 2:
        return None
    values = (group["lr"], betas[0], betas[1], group["eps"], group["weight_decay"],
              group["amsgrad"], group["maximize"])
    if not all(type(value) in _PLAIN_TYPES for value in values):
        return None
    # the sign is part of the value: -0.0 == 0.0, yet a β or lr of -0.0 gives other zeros
    return tuple((type(value), value, math.copysign(1.0, value)) for value in values)


def _check_count(saved: Any, expected: int, counted: str, where: str) -> None:
    """ValueError unless ``saved`` is a sequence of ``expected`` entries, saying what the dict
    has (``counted`` with its length, or its type's name where it is no sequence)."""
    if isinstance(saved, Sequence) and len(saved) == expected:
        return
    count = len(saved) if isinstance(saved, Sequence) else type(saved).__name__
    raise ValueError(f"{where}: the dict has {counted.format(count)}, this optimizer has "
                     f"{expected}")


def _as_flag(name: str, value: Any, where: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"Invalid {name}: {value!r} in {where}; {name} must be True or False")
    return bool(value)


class Adam:
    """Adam as documented for ``mindspore.experimental.optim.Adam``, updating NumPy arrays.

    ``params`` is a list of arrays, or a list of group dicts ``{"params": [...], "lr": ...}``
    whose missing keys take the defaults given here. Arrays must be C-contiguous, writeable
    float16, float32 or float64 arrays; :meth:`step` updates them in place.
    ``param_groups`` is a list of dicts that may be changed between steps (an LR scheduler
    sets ``opt.param_groups[i]["lr"]``); every step validates them again (plain numbers
    seen at the last step are not checked twice: the same values pass alike).

    ``kernel`` picks the implementation: ``"numpy"``, ``"numba"`` or ``"auto"`` (see the
    module docstring); both compute the documented formula in the parameter's dtype.
    ``threads`` caps the threads one step uses (default: every core this process may run
    on, as torch does); ``threads=1`` runs every step on one thread. For the last few per
    cent of a memory-bound step, allocate params and gradients with :func:`aligned_zeros`.

    Example::

        opt = Adam([w, b], lr=1e-3)
        for batch in data:
            opt.step([grad_w(batch), grad_b(batch)])   # w and b change in place
    """

    def __init__(self, params: Iterable[Any], lr: Any = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 kernel: str = "auto", threads: int | None = None) -> None:
        validate_hyperparameters(lr, betas, eps, weight_decay)
        _as_flag("amsgrad", amsgrad, "the arguments")
        _as_flag("maximize", maximize, "the arguments")
        if kernel not in KERNELS:
            raise ValueError(f"Invalid kernel: {kernel!r}; choose one of {', '.join(KERNELS)}")
        if threads is None:
            threads = default_threads()
        if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
            raise ValueError(f"Invalid threads: {threads!r}; threads must be an integer >= 1 "
                             "(or None for every core this process may use)")
        self.threads = int(threads)
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize}
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = self._build_groups(params, defaults)
        self._params: list[np.ndarray] = [p for g in self.param_groups for p in g["params"]]
        self._step = 0
        self._m = [aligned_zeros(p.shape, p.dtype) for p in self._params]
        self._v = [aligned_zeros(p.shape, p.dtype) for p in self._params]
        # v̂max exists only where amsgrad has been on (allocated on first need)
        self._vmax: list[np.ndarray | None] = [None] * len(self._params)
        self.kernel = kernel
        # per group: the last plain hyperparameters that passed validation, and what it gave
        self._checked: dict[int, tuple[tuple, tuple]] = {}
        self._kernel_of = [self._choose_kernel(kernel, p, i) for i, p in enumerate(self._params)]
        # preallocated scratch per dtype: one pair of chunk buffers per thread that may use it
        self._scratch: dict[np.dtype, list[tuple[np.ndarray, np.ndarray]]] = {}
        for dtype in {p.dtype for p in self._params}:
            sizes = [p.size for p, k in zip(self._params, self._kernel_of, strict=True)
                     if k == "numpy" and p.dtype == dtype]
            if not sizes:
                continue
            parallel = max(sizes) * dtype.itemsize >= _NUMPY_PARALLEL_MIN_BYTES
            chunk_bytes = _SHARED_CHUNK_BYTES if parallel and self.threads > 1 else _CHUNK_BYTES
            chunk = min(max(max(sizes), 1), chunk_bytes // dtype.itemsize)
            pairs = self.threads if parallel else 1
            self._scratch[dtype] = [(np.empty(chunk, dtype), np.empty(chunk, dtype))
                                    for _ in range(pairs)]

    # ---- construction -------------------------------------------------------------

    @staticmethod
    def _build_groups(params: Iterable[Any], defaults: dict[str, Any]) -> list[dict[str, Any]]:
        if isinstance(params, np.ndarray):
            raise ValueError("params must be a list of arrays or of group dicts, not a single "
                             "array; pass [array]")
        items = list(params)
        if not items:
            raise ValueError("optimizer got an empty parameter list")
        if all(isinstance(item, Mapping) for item in items):
            raw_groups = [dict(item) for item in items]
        elif any(isinstance(item, Mapping) for item in items):
            raise ValueError("params mixes arrays and group dicts; pass either a list of "
                             "arrays or a list of {'params': [...], ...} dicts")
        else:
            raw_groups = [{"params": items}]
        groups = []
        everything: list[np.ndarray] = []
        for gi, raw in enumerate(raw_groups):
            unknown = set(raw) - _GROUP_KEYS
            if unknown:
                raise ValueError(f"param group {gi}: unknown keys {sorted(unknown)}; a group "
                                 f"may set {sorted(_GROUP_KEYS)}")
            if "params" not in raw:
                raise ValueError(f"param group {gi} has no 'params' key")
            arrays = raw["params"]
            arrays = [arrays] if isinstance(arrays, np.ndarray) else list(arrays)
            for p in arrays:
                Adam._check_param(p, len(everything))
                everything.append(p)
            group = {**defaults, **raw, "params": arrays}
            Adam._validate_group(group, f"param group {gi}")
            groups.append(group)
        Adam._check_no_overlap(everything)
        return groups

    @staticmethod
    def _check_no_overlap(params: list[np.ndarray]) -> None:
        """Refuse two params over the same memory: each would be updated twice per step."""
        spans = sorted((p.__array_interface__["data"][0], p.nbytes, i)
                       for i, p in enumerate(params) if p.nbytes)
        for (start, size, i), (next_start, _, j) in zip(spans, spans[1:], strict=False):
            if next_start < start + size:
                first, second = sorted((i, j))
                raise ValueError(f"param {second} shares memory with param {first} (the same "
                                 "array, or views of one); each parameter may appear once")

    @staticmethod
    def _check_param(p: Any, index: int) -> None:
        if not isinstance(p, np.ndarray):
            raise ValueError(f"param {index} is a {type(p).__name__}, not a numpy array")
        if p.dtype not in SUPPORTED_DTYPES:
            raise ValueError(f"param {index} has dtype {p.dtype}; supported dtypes are "
                             "float16, float32 and float64")
        if not p.flags.c_contiguous or not p.flags.writeable:
            raise ValueError(f"param {index} must be a C-contiguous, writeable array (it is "
                             "updated in place); pass np.ascontiguousarray(p) and keep that")

    @staticmethod
    def _validate_group(group: Mapping[str, Any], where: str
                        ) -> tuple[float, tuple[float, float], float, float, bool, bool]:
        try:
            lr, betas, eps, weight_decay = validate_hyperparameters(
                group["lr"], group["betas"], group["eps"], group["weight_decay"])
        except ValueError as exc:
            raise ValueError(f"{exc} (in {where})") from None
        amsgrad = _as_flag("amsgrad", group["amsgrad"], where)
        maximize = _as_flag("maximize", group["maximize"], where)
        return lr, betas, eps, weight_decay, amsgrad, maximize

    @staticmethod
    def _choose_kernel(kernel: str, p: np.ndarray, index: int) -> str:
        if kernel == "numpy":
            return "numpy"
        if kernel == "numba":
            if p.dtype not in NUMBA_DTYPES:
                raise ValueError(f"param {index} has dtype {p.dtype}: the numba kernel handles "
                                 "float32 and float64; use kernel='auto' or 'numpy' for float16")
            _numba_kernel()  # raises ImportError with the fix when numba is missing
            return "numba"
        return "numba" if p.dtype in NUMBA_DTYPES and numba_available() else "numpy"

    # ---- stepping -----------------------------------------------------------------

    @property
    def step_count(self) -> int:
        """The shared step counter t: the number of steps taken (or loaded)."""
        return self._step

    @property
    def kernels(self) -> list[str]:
        """The kernel each parameter runs on ("numpy" or "numba"), in param order."""
        return list(self._kernel_of)

    def _check_grads(self, grads: Sequence[Any]) -> list[np.ndarray]:
        if isinstance(grads, np.ndarray) or not isinstance(grads, Sequence):
            raise ValueError("step() takes a sequence of gradient arrays, one per param "
                             f"({len(self._params)}), in param order")
        if len(grads) != len(self._params):
            raise ValueError(f"step() got {len(grads)} gradients for {len(self._params)} "
                             "params; pass one gradient per param, in param order")
        checked = []
        for i, (g, p) in enumerate(zip(grads, self._params, strict=True)):
            if isinstance(g, np.generic):  # a numpy scalar, as indexing a 0-d array gives
                g = np.asarray(g)
            if not isinstance(g, np.ndarray):
                raise ValueError(f"gradient {i} is a {type(g).__name__}, not a numpy array")
            if g.shape != p.shape:
                raise ValueError(f"gradient {i} has shape {g.shape}, param {i} has shape "
                                 f"{p.shape}")
            if g.dtype != p.dtype:
                raise ValueError(f"gradient {i} has dtype {g.dtype}, param {i} has dtype "
                                 f"{p.dtype}; convert it with grad.astype(np.{p.dtype})")
            checked.append(g)
        return checked

    def _checked_group(self, group: Mapping[str, Any], gi: int
                       ) -> tuple[float, tuple[float, float], float, float, bool, bool]:
        """The group's hyperparameters validated, as :meth:`_validate_group` gives them.

        Every step checks them again, as a scheduler may have changed them. Where each is a
        plain number (its type and value the whole of it), the last check of the same
        values is reused: the same values pass or fail alike. Anything else (a tensor lr, a
        number type of a framework's) is checked in full on every step.
        """
        key = _plain_key(group)
        cached = self._checked.get(gi)
        if key is not None and cached is not None and cached[0] == key:
            return cached[1]
        checked = self._validate_group(group, f"param group {gi}")
        if key is not None:
            self._checked[gi] = (key, checked)
        return checked

    def _constants(self, group: Mapping[str, Any], gi: int, t: int
                   ) -> dict[np.dtype, _StepConstants]:
        checked = self._checked_group(group, gi)
        lr, (beta1, beta2), eps, weight_decay, amsgrad, maximize = checked
        # float64 once per step per group, then rounded to each dtype the group uses
        bias_correction1 = one_minus_power(beta1, t)
        bias_correction2 = one_minus_power(beta2, t)
        out = {}
        for p in group["params"]:
            dtype = p.dtype
            if dtype not in out:
                d = np.float32 if dtype.itemsize < 4 else dtype.type  # float16: step in float32
                out[dtype] = _StepConstants(
                    d(beta1), d(1.0 - beta1), d(beta2), d(1.0 - beta2), d(bias_correction1),
                    d(bias_correction2), d(lr), d(eps), d(weight_decay), maximize,
                    weight_decay != 0.0, amsgrad)
        return out

    def step(self, grads: Sequence[np.ndarray]) -> None:
        """Apply one Adam step: ``grads`` holds one gradient per param, in param order.

        Everything is checked before anything changes: a bad gradient or hyperparameter
        raises ``ValueError`` and leaves params and state as they were. Gradients must have
        their param's shape and dtype; a non-contiguous gradient is read through a copy.
        """
        grads = self._check_grads(grads)
        t = self._step + 1
        constants = [self._constants(group, gi, t) for gi, group in enumerate(self.param_groups)]
        self._step = t
        index = 0
        for gi, group in enumerate(self.param_groups):
            for p in group["params"]:
                c = constants[gi][p.dtype]
                if c.amsgrad and self._vmax[index] is None:
                    self._vmax[index] = aligned_zeros(p.shape, p.dtype)
                if p.size:
                    if self._kernel_of[index] == "numba":
                        self._step_numba(index, grads[index], c)
                    else:
                        self._step_numpy(index, grads[index], c)
                index += 1

    def _step_numba(self, i: int, grad: np.ndarray, c: _StepConstants) -> None:
        theta = self._params[i].reshape(-1)
        vmax = self._vmax[i].reshape(-1) if c.amsgrad else theta  # not touched without amsgrad
        # a small step runs on fewer threads: it would wait longer for a second thread
        # (a time slice, on a busy machine) than that thread could save
        threads = min(self.threads, -(-theta.size // _numba_elements_per_thread()))
        # grad.reshape(-1) is a view for a contiguous gradient
        arrays = (theta, grad.reshape(-1), self._m[i].reshape(-1), self._v[i].reshape(-1),
                  vmax)
        if threads == 1:
            _numba_kernel(parallel=False)(*arrays, *c)
        else:
            _numba_call(_numba_kernel(), threads, *arrays, *c)

    def _step_numpy(self, i: int, grad: np.ndarray, c: _StepConstants) -> None:
        x = _Arrays(self._params[i].reshape(-1), grad.reshape(-1), self._m[i].reshape(-1),
                    self._v[i].reshape(-1), self._vmax[i].reshape(-1) if c.amsgrad else None)
        scratch = self._scratch[x.theta.dtype]
        parallel = x.theta.nbytes >= _NUMPY_PARALLEL_MIN_BYTES and len(scratch) > 1
        # shared: chunks as large as the scratch (_SHARED_CHUNK_BYTES); alone: cache-sized
        chunk = scratch[0][0].size if parallel else min(
            scratch[0][0].size, _CHUNK_BYTES // x.theta.itemsize)
        queue = _ChunkQueue(x.theta.size, chunk)
        chunks = -(-queue.size // queue.chunk)
        helpers = min(len(scratch), self.threads, chunks) - 1 if parallel else 0
        if helpers <= 0:
            _numpy_worker(x, c, queue, *scratch[0])
            return
        pool = _thread_pool(helpers)
        futures = [pool.submit(_numpy_worker, x, c, queue, *scratch[k])
                   for k in range(1, helpers + 1)]
        try:
            _numpy_worker(x, c, queue, *scratch[0])
        finally:
            # a helper that has not started finds nothing left: cancel it rather than
            # wait for it to be scheduled; wait for those still stepping a chunk
            for future in futures:
                if not future.cancel():
                    future.result()

    # ---- state --------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """A copy of the optimizer state: step count, m, v, v̂max per param, the groups.

        ``vmax`` is the documented v̂max (max of bias-corrected v), or None for a param
        whose group never ran with amsgrad. Groups list their params as indices.
        """
        groups = []
        index = 0
        for group in self.param_groups:
            entry = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            entry["params"] = list(range(index, index + len(group["params"])))
            index += len(group["params"])
            groups.append(entry)
        state = [{"m": m.copy(), "v": v.copy(), "vmax": None if vmax is None else vmax.copy()}
                 for m, v, vmax in zip(self._m, self._v, self._vmax, strict=True)]
        return {"format": STATE_DICT_FORMAT, "step": self._step, "param_groups": groups,
                "state": state}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Replace the state with ``state_dict`` (from :meth:`state_dict`, or built alike).

        Refused with ``ValueError`` — and nothing changed — when it does not match this
        optimizer: group count, params per group, array shapes, values not exactly
        representable in a param's dtype, invalid hyperparameters or step count.
        Arrays of another dtype are accepted when they convert exactly.
        """
        where = "load_state_dict"
        if not isinstance(state_dict, Mapping):
            raise ValueError(f"{where}: expected a dict from Adam.state_dict(), got "
                             f"{type(state_dict).__name__}")
        missing = {"step", "param_groups", "state"} - set(state_dict)
        if missing:
            raise ValueError(f"{where}: the dict lacks {sorted(missing)}; expected the keys "
                             "of Adam.state_dict()")
        fmt = state_dict.get("format", STATE_DICT_FORMAT)
        if fmt != STATE_DICT_FORMAT:
            raise ValueError(f"{where}: format {fmt!r} is not {STATE_DICT_FORMAT!r}")
        step = state_dict["step"]
        if (isinstance(step, bool) or not isinstance(step, numbers.Integral)) or step < 0:
            raise ValueError(f"{where}: step must be an integer >= 0, got {step!r}")
        groups = state_dict["param_groups"]
        _check_count(groups, len(self.param_groups), "{} param groups", where)
        new_groups = []
        index = 0
        for gi, (saved, mine) in enumerate(zip(groups, self.param_groups, strict=True)):
            if not isinstance(saved, Mapping):
                raise ValueError(f"{where}: param group {gi} is not a dict")
            expected = list(range(index, index + len(mine["params"])))
            if list(saved.get("params", [])) != expected:
                raise ValueError(f"{where}: param group {gi} holds params "
                                 f"{list(saved.get('params', []))}, this optimizer's group "
                                 f"{gi} holds {expected}")
            index += len(mine["params"])
            merged = {**{k: v for k, v in saved.items() if k != "params"},
                      "params": mine["params"]}
            for key in _DEFAULTS:
                if key not in merged:
                    raise ValueError(f"{where}: param group {gi} lacks {key!r}")
            self._validate_group(merged, f"{where}, param group {gi}")
            new_groups.append(merged)
        states = state_dict["state"]
        _check_count(states, len(self._params), "state for {} params", where)
        new_state = []
        for i, (entry, p) in enumerate(zip(states, self._params, strict=True)):
            if not isinstance(entry, Mapping) or not {"m", "v"} <= set(entry):
                raise ValueError(f"{where}: state of param {i} must be a dict with 'm', 'v' "
                                 "and 'vmax'")
            arrays = []
            for name in ("m", "v", "vmax"):
                value = entry.get(name)
                if value is None and name == "vmax":
                    arrays.append(None)
                    continue
                arrays.append(self._exact_array(value, p, f"{where}: {name} of param {i}"))
            new_state.append(arrays)
        # all checked: apply
        self._step = int(step)
        for group, merged in zip(self.param_groups, new_groups, strict=True):
            group.clear()
            group.update(copy.deepcopy({k: v for k, v in merged.items() if k != "params"}))
            group["params"] = merged["params"]
        for i, (m, v, vmax) in enumerate(new_state):
            np.copyto(self._m[i], m)
            np.copyto(self._v[i], v)
            if vmax is None:
                self._vmax[i] = None
            else:
                if self._vmax[i] is None:
                    self._vmax[i] = aligned_zeros(self._params[i].shape, self._params[i].dtype)
                np.copyto(self._vmax[i], vmax)

    @staticmethod
    def _exact_array(value: Any, p: np.ndarray, where: str) -> np.ndarray:
        if value is None:
            raise ValueError(f"{where} is missing")
        arr = np.asarray(value)
        if arr.shape != p.shape:
            raise ValueError(f"{where} has shape {arr.shape}, the param has shape {p.shape}")
        if arr.dtype.kind not in "fiu":
            raise ValueError(f"{where} has dtype {arr.dtype}, not a real number dtype")
        if arr.dtype != p.dtype:
            with np.errstate(all="ignore"):
                converted = arr.astype(p.dtype)
                back = converted.astype(arr.dtype) if arr.dtype.kind == "f" else converted
                same = np.array_equal(back, arr, equal_nan=True)
            if not same:
                raise ValueError(f"{where} ({arr.dtype}) is not exactly representable in the "
                                 f"param's dtype {p.dtype}")
            arr = converted
        return arr

    def state_arrays(self, name: str) -> list[np.ndarray | None]:
        """The live state arrays ``m``, ``v`` or ``vmax`` (not copies), in param order."""
        if name not in ("m", "v", "vmax"):
            raise ValueError(f"unknown state {name!r}; choose m, v or vmax")
        return list({"m": self._m, "v": self._v, "vmax": self._vmax}[name])

    def __repr__(self) -> str:
        groups = ", ".join(
            f"{{{len(g['params'])} params, lr={g['lr']!r}, betas={g['betas']!r}, "
            f"eps={g['eps']!r}, weight_decay={g['weight_decay']!r}, amsgrad={g['amsgrad']}, "
            f"maximize={g['maximize']}}}" for g in self.param_groups)
        return f"Adam(kernel={self.kernel!r}, step={self._step}, groups=[{groups}])"

