"""``adamconf bench``: how fast the NumPy production Adam is, next to torch on the same CPU.

Two measurements:

1. The production step (:class:`adamconf.adapters.numpy_adam.Adam`, each available kernel)
   against torch's CPU Adam in its three implementations (for-loop, foreach, fused), at the
   same thread count (``torch.set_num_threads`` and ``Adam(threads=...)``), on one
   parameter of 2^k elements, with the same hyperparameters and gradient; the NumPy arrays
   are cache-line aligned, as torch's allocator aligns its tensors. Each time is the
   median over repeats of a batch of steps after warm-up; within a repeat the
   implementations run one after another, so a slow phase of the machine hits them all.
   Beside them: the bandwidth of a NumPy array copy of the same size (read + write bytes
   per second), which bounds a memory-bound step, and the peak memory the NumPy step
   allocates beyond its state (``tracemalloc``).
2. The reference engine's speed (element-steps per second of
   :func:`adamconf.reference.engine.run_reference` at 50 digits, uncertified) against the
   same algorithm written as the obvious mpmath loop.
3. The runner over the numpy corpus (0.1's schedule as the peer, ``-j 1``, ``-j 2``), and
   ``adamconf fuzz --backend numpy`` with one job (the peer), one job per core, and a
   HypoFuzz campaign with as many workers (where hypofuzz is installed), the campaign's
   examples/s against the jobs' in the same run.

Ratios are throughput ratios: ``numpy/fused`` = torch-fused time ÷ NumPy time, so > 1 means
the NumPy step is faster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["add_arguments", "run", "parse_sizes", "plain_mpmath_adam", "bench_step",
           "bench_reference", "SCHEMA"]

SCHEMA = "adamconf.bench/1"
DEFAULT_EXPONENTS = tuple(range(10, 25))
QUICK_EXPONENTS = (10, 16, 20)
TORCH_IMPLS = ("for-loop", "foreach", "fused")
DTYPES = ("float32", "float64", "float16")
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
# a timed batch lasts about this long (seconds), so timer and call overheads vanish
_BATCH_SECONDS = 0.02
_MAX_BATCH = 2000


class UsageError(ValueError):
    """A bad option value; ``run`` prints it and returns 2."""


def _progress(message: str) -> None:
    print(f"adamconf bench: {message}", file=sys.stderr, flush=True)


def parse_sizes(text: str) -> list[int]:
    """Exponents of two from ``"10,12,20"``, ``"10-24"``, ``"2^20"`` or a mix; sorted, unique."""
    exponents: set[int] = set()
    for item in text.replace(" ", "").split(","):
        if not item:
            continue
        try:
            if "-" in item:
                low, high = (int(x.removeprefix("2^")) for x in item.split("-", 1))
                if low > high:
                    raise ValueError
                exponents.update(range(low, high + 1))
            else:
                exponents.add(int(item.removeprefix("2^")))
        except ValueError:
            raise UsageError(f"--sizes: cannot read {item!r}; give exponents of two such as "
                             "'10,16,20', '10-24' or '2^20'") from None
    if not exponents:
        raise UsageError("--sizes: no sizes given")
    bad = [e for e in exponents if not 0 <= e <= 30]
    if bad:
        raise UsageError(f"--sizes: exponent(s) {sorted(bad)} out of range; use 0..30 "
                         "(2^30 float32 elements already need 16 GiB)")
    return sorted(exponents)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``adamconf bench``."""
    parser.add_argument("--sizes", default=None,
                        help="parameter sizes as exponents of two: '10,16,20', '10-24' or "
                             "'2^20' (default: 10-24)")
    parser.add_argument("--quick", action="store_true",
                        help=f"a short run: sizes {', '.join(f'2^{e}' for e in QUICK_EXPONENTS)}"
                             ", 5 repeats, a smaller reference problem")
    parser.add_argument("--dtype", default="float32", choices=DTYPES,
                        help="parameter dtype (default: float32)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for every implementation (default: every core this "
                             "process may use)")
    parser.add_argument("--repeats", type=int, default=7,
                        help="timed repeats per measurement, at least 5 (default: 7)")
    parser.add_argument("--kernels", default=None,
                        help="NumPy kernels to time, comma-separated: numpy, numba "
                             "(default: every available one)")
    parser.add_argument("--amsgrad", action="store_true", help="time the amsgrad step")
    parser.add_argument("--clock", default="wall", choices=CLOCKS,
                        help="wall: elapsed time (default); cpu: CPU time of this process, "
                             "which other work on the machine does not inflate (needs "
                             "--threads 1: with more, waiting threads may spin)")
    parser.add_argument("--no-torch", action="store_true", help="do not time torch")
    parser.add_argument("--no-runner", action="store_true",
                        help="do not time the runner (the numpy corpus with -j 1 and -j 2)")
    parser.add_argument("--no-fuzz", action="store_true",
                        help="do not time fuzzing (one job, one per core, and a HypoFuzz "
                             "campaign with as many workers)")
    parser.add_argument("--no-identify", action="store_true",
                        help="do not time naming the dialect of a failing variant")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the reference-engine speed measurement")
    parser.add_argument("--json", metavar="PATH", default=None,
                        help="also write the results as JSON to PATH")


# --------------------------------------------------------------------------------------
# timing helpers

def _time_batches(functions: dict[str, Callable[[], Any]], repeats: int,
                  warmup: int = 2, clock: Callable[[], float] = time.perf_counter
                  ) -> dict[str, float]:
    """Median seconds per call of each function (by ``clock``), interleaved over repeats."""
    batch = {}
    for name, fn in functions.items():
        for _ in range(warmup):
            fn()
        start = clock()
        fn()
        once = max(clock() - start, 1e-7)
        batch[name] = int(min(_MAX_BATCH, max(1, _BATCH_SECONDS / once)))
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            count = batch[name]
            start = clock()
            for _ in range(count):
                fn()
            samples[name].append((clock() - start) / count)
    return {name: statistics.median(values) for name, values in samples.items()}


def _peak_extra_bytes(step: Callable[[], Any]) -> int:
    """Peak memory traced by ``tracemalloc`` during one call (after warm-up)."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return max(0, peak - base)


def _torch_module() -> tuple[Any, str | None]:
    try:
        import torch
    except Exception as exc:  # not installed, or a broken install
        return None, "torch not installed" + (
            "" if isinstance(exc, ModuleNotFoundError) else f" ({type(exc).__name__})")
    return torch, None


def _torch_steppers(torch: Any, param: np.ndarray, grad: np.ndarray, amsgrad: bool
                    ) -> dict[str, Callable[[], Any] | str]:
    """A step function per torch implementation, or the reason it cannot run."""
    out: dict[str, Callable[[], Any] | str] = {}
    flags = {"for-loop": {"foreach": False}, "foreach": {"foreach": True},
             "fused": {"fused": True}}
    for impl in TORCH_IMPLS:
        try:
            p = torch.from_numpy(param.copy()).requires_grad_(True)
            p.grad = torch.from_numpy(grad.copy())
            opt = torch.optim.Adam([p], lr=1e-3, amsgrad=amsgrad, **flags[impl])
            opt.step()  # fails here when the implementation lacks this dtype or device
            out[impl] = opt.step
        except Exception as exc:
            out[impl] = f"unsupported ({type(exc).__name__}: {str(exc).splitlines()[0][:60]})"
    return out


def bench_step(exponents: list[int], dtype: str = "float32", threads: int | None = None,
               repeats: int = 7, kernels: list[str] | None = None, amsgrad: bool = False,
               use_torch: bool = True, clock: str = "wall") -> dict[str, Any]:
    """Time the NumPy production step and torch's CPU Adam; return a JSON-ready dict.

    ``clock="cpu"`` times by the process's CPU time: meaningful with ``threads=1``, where
    every implementation computes on one thread (no other thread spins while it waits).
    """
    from adamconf.adapters.numpy_adam import Adam, aligned_zeros, default_threads, numba_available

    threads = default_threads() if threads is None else threads
    load_at_start = _load_average()
    if kernels is None:
        kernels = ["numpy"] + (["numba"] if numba_available() and dtype != "float16" else [])
    torch, torch_missing = _torch_module() if use_torch else (None, "torch not timed")
    if torch is not None:
        torch.set_num_threads(threads)
    np_dtype = np.dtype(dtype)
    rows = []
    rng = np.random.default_rng(0)
    numba_layer = _numba_threading_layer(kernels, torch)
    # first calls start thread pools and load compiled kernels: keep them out of the table
    _warm_up(Adam, torch, kernels, np_dtype, threads, amsgrad)
    for exponent in exponents:
        n = 1 << exponent
        _progress(f"2^{exponent} = {n} {dtype} elements, {threads} threads")
        # cache-line aligned, as torch's allocator aligns the tensors it is timed on
        param, grad = aligned_zeros(n, np_dtype), aligned_zeros(n, np_dtype)
        param[...] = rng.standard_normal(n)
        grad[...] = rng.standard_normal(n)
        optimizers = {}
        functions: dict[str, Callable[[], Any]] = {}
        for kernel in kernels:
            own = aligned_zeros(n, np_dtype)
            own[...] = param
            opt = Adam([own], amsgrad=amsgrad, kernel=kernel, threads=threads)
            optimizers[kernel] = opt
            functions[f"numpy:{kernel}"] = (lambda o=opt, g=grad: o.step([g]))
        torch_cells: dict[str, Any] = {}
        if torch is not None:
            for impl, stepper in _torch_steppers(torch, param, grad, amsgrad).items():
                if isinstance(stepper, str):
                    torch_cells[impl] = stepper
                else:
                    functions[f"torch:{impl}"] = stepper
        source, target = param.copy(), np.empty_like(param)
        functions["copy"] = lambda t=target, s=source: np.copyto(t, s)
        times = _time_batches(functions, repeats, clock=CLOCKS[clock])
        copy_gbps = 2 * param.nbytes / times["copy"] / 1e9
        torch_ms: dict[str, Any] = {}
        for impl in TORCH_IMPLS:
            if torch is None:
                torch_ms[impl] = torch_missing
            elif f"torch:{impl}" in times:
                torch_ms[impl] = times[f"torch:{impl}"] * 1e3
            else:
                torch_ms[impl] = torch_cells[impl]
        for kernel, opt in optimizers.items():
            seconds = times[f"numpy:{kernel}"]
            peak = _peak_extra_bytes(lambda o=opt, g=grad: o.step([g]))
            speed = {}
            for impl in ("fused", "foreach"):
                other = torch_ms[impl]
                speed[impl] = other / (seconds * 1e3) if isinstance(other, float) else None
            rows.append({
                "exponent": exponent, "elements": n, "kernel": kernel,
                "numpy_ms": seconds * 1e3, "torch_ms": torch_ms,
                "speed_vs_fused": speed["fused"], "speed_vs_foreach": speed["foreach"],
                "element_steps_per_s": n / seconds, "copy_gbps": copy_gbps,
                "step_gbps": _step_bytes(param.nbytes, amsgrad) / seconds / 1e9,
                "peak_extra_bytes": peak, "peak_extra_fraction": peak / max(param.nbytes, 1),
            })
    versions = {"numpy": np.__version__}
    if torch is not None:
        versions["torch"] = torch.__version__
    if "numba" in kernels:
        import numba
        versions["numba"] = numba.__version__
        versions["numba threading layer"] = numba_layer
    return {"dtype": dtype, "threads": threads, "amsgrad": amsgrad, "repeats": repeats,
            "clock": clock,
            "load_average_at_start": load_at_start,
            "kernels": kernels, "torch": None if torch is None else torch.__version__,
            "torch_missing": torch_missing if torch is None else None,
            "versions": versions, "rows": rows}


def _numba_threading_layer(kernels: list[str], torch: Any) -> str | None:
    """Keep numba's OpenMP threads out of torch's way; the layer the numba kernel runs on.

    numba's default OpenMP layer loads libgomp.so.1, which resolves to the copy torch has
    already loaded: sharing it slows torch's CPU Adam down by 10-100x in this process, so
    the torch columns would be wrong. Unless NUMBA_THREADING_LAYER chooses a layer, the
    kernel runs on numba's own "workqueue" threads here.
    """
    if "numba" not in kernels:
        return None
    import numba

    if torch is not None and not os.environ.get("NUMBA_THREADING_LAYER"):
        numba.config.THREADING_LAYER = "workqueue"
    return str(numba.config.THREADING_LAYER)


def _warm_up(adam: Any, torch: Any, kernels: list[str], dtype: np.dtype, threads: int,
             amsgrad: bool) -> None:
    param, grad = np.ones(4096, dtype), np.full(4096, 0.5, dtype)
    steppers: list[Callable[[], Any]] = []
    for kernel in kernels:
        opt = adam([param.copy()], amsgrad=amsgrad, kernel=kernel, threads=threads)
        steppers.append(lambda o=opt: o.step([grad]))
    if torch is not None:
        steppers += [s for s in _torch_steppers(torch, param, grad, amsgrad).values()
                     if not isinstance(s, str)]
    for stepper in steppers:
        for _ in range(20):
            stepper()


def _step_bytes(param_bytes: int, amsgrad: bool) -> int:
    """Bytes one step must move: read θ, g, m, v (, v̂max); write θ, m, v (, v̂max)."""
    return param_bytes * (9 if amsgrad else 7)


# --------------------------------------------------------------------------------------
# reference speed

def plain_mpmath_adam(params: list[np.ndarray], grads: list[np.ndarray], lr: float = 1e-3,
                      betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                      dps: int = 50) -> list[np.ndarray]:
    """The documented Adam (no amsgrad, no weight decay) as the obvious mpmath loop.

    ``grads[i]`` has shape (steps, *params[i].shape). Returns θ after the last step, rounded
    to float64. Precision is scoped with ``mpmath.workdps``.
    """
    import mpmath

    out = []
    with mpmath.workdps(dps):
        beta1, beta2 = mpmath.mpf(betas[0]), mpmath.mpf(betas[1])
        lr_mp, eps_mp = mpmath.mpf(lr), mpmath.mpf(eps)
        for p, g in zip(params, grads, strict=True):
            flat_p, flat_g = p.reshape(-1), g.reshape(g.shape[0], -1)
            result = np.empty(flat_p.size)
            for e in range(flat_p.size):
                theta, m, v = mpmath.mpf(float(flat_p[e])), mpmath.mpf(0), mpmath.mpf(0)
                for k in range(flat_g.shape[0]):
                    t = k + 1
                    grad = mpmath.mpf(float(flat_g[k, e]))
                    m = beta1 * m + (1 - beta1) * grad
                    v = beta2 * v + (1 - beta2) * grad * grad
                    m_hat = m / (1 - beta1 ** t)
                    v_hat = v / (1 - beta2 ** t)
                    theta = theta - lr_mp * m_hat / (mpmath.sqrt(v_hat) + eps_mp)
                result[e] = float(theta)
            out.append(result.reshape(p.shape))
    return out


def bench_reference(elements: int = 64, steps: int = 200, dps: int = 50) -> dict[str, Any]:
    """Element-steps per second of ``run_reference`` (uncertified), of the Arb ball engine
    (``run_balls``: every value proven correctly rounded) and of the plain mpmath loop."""
    from adamconf.reference.balls import run_balls
    from adamconf.reference.config import GroupConfig
    from adamconf.reference.engine import run_reference
    from adamconf.reference.problem import Group, Problem

    rng = np.random.default_rng(1)
    theta0 = rng.standard_normal(elements)
    grads = rng.standard_normal((steps, elements))
    problem = Problem((Group(GroupConfig(), (theta0,)),), (grads,))
    _progress(f"reference engine: {elements} elements × {steps} steps at {dps} digits")
    start = time.perf_counter()
    trajectory = run_reference(problem, dps=dps, certify=False)
    engine_seconds = time.perf_counter() - start
    _progress("plain mpmath loop, same problem")
    start = time.perf_counter()
    plain = plain_mpmath_adam([theta0], [grads], dps=dps)
    plain_seconds = time.perf_counter() - start
    _progress("Arb ball engine, same problem, each value proven")
    run_balls(Problem((Group(GroupConfig(), (theta0[:1],)),), (grads[:1, :1],)))  # loads flint
    start = time.perf_counter()
    balls = run_balls(problem)
    balls_seconds = time.perf_counter() - start
    balls_agree = all(np.array_equal(a, b) for name in ("theta", "m", "v")
                      for a, b in zip(balls.quantity(name), trajectory.quantity(name)))
    final = trajectory.theta[0][-1]
    scale = max(float(np.max(np.abs(final))), 1e-300)
    difference = float(np.max(np.abs(final - plain[0])))
    element_steps = elements * steps
    return {"elements": elements, "steps": steps, "dps": dps,
            "engine_seconds": engine_seconds, "plain_seconds": plain_seconds,
            "engine_element_steps_per_s": element_steps / engine_seconds,
            "plain_element_steps_per_s": element_steps / plain_seconds,
            "engine_vs_plain": plain_seconds / engine_seconds,
            "max_relative_difference": difference / scale,
            "balls_seconds": balls_seconds,
            "balls_element_steps_per_s": element_steps / balls_seconds,
            "balls_vs_plain": plain_seconds / balls_seconds,
            "balls_prec_bits": balls.precision["prec_bits"],
            "balls_ties": balls.precision["ties"],
            "balls_agree_with_engine": balls_agree}


# --------------------------------------------------------------------------------------
# output

def _fmt_ms(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if value < 1 else f"{value:.3f}" if value < 100 else f"{value:.1f}"
    return "n/a"


def _fmt_speed(value: Any) -> str:
    return f"{value:.2f}×" if isinstance(value, float) else "n/a"


def _fmt_rate(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _fmt_bytes(count: int) -> str:
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} B"


def format_table(result: dict[str, Any]) -> str:
    """The step benchmark as a text table."""
    lines = [f"Adam step, one parameter of 2^k {result['dtype']} elements, "
             f"{result['threads']} threads for every implementation"
             f"{', amsgrad' if result['amsgrad'] else ''}; median of {result['repeats']} "
             "repeats; ms per step"
             f"{' of CPU time' if result.get('clock') == 'cpu' else ''}"]
    versions = ", ".join(f"{k} {v}" for k, v in result["versions"].items())
    load = result.get("load_average_at_start")
    load_text = "" if load is None else f"; load average at start {load:.2f}"
    if load is not None and load >= 0.5:
        load_text += " (other work was running: times may be skewed)"
    lines.append(f"versions: {versions}{load_text}")
    lines.append("speed = torch time / numpy time (> 1: numpy faster)")
    header = (f"{'size':>6} {'kernel':>6} {'numpy':>9} {'for-loop':>9} {'foreach':>9} "
              f"{'fused':>9} {'vs fused':>9} {'vs foreach':>10} {'GB/s':>6} {'copy GB/s':>9} "
              f"{'peak extra':>11}")
    lines += [header, "-" * len(header)]
    notes = []
    for row in result["rows"]:
        cells = []
        for impl in TORCH_IMPLS:
            value = row["torch_ms"][impl]
            if isinstance(value, str):
                if value not in notes and result["torch"] is not None:
                    notes.append(f"torch {impl}: {value}")
                cells.append("see note")
            else:
                cells.append(_fmt_ms(value))
        torch_part = (f"{cells[0]:>9} {cells[1]:>9} {cells[2]:>9} "
                      f"{_fmt_speed(row['speed_vs_fused']):>9} "
                      f"{_fmt_speed(row['speed_vs_foreach']):>10}")
        if result["torch"] is None:  # one message across the torch columns
            torch_part = f"{result['torch_missing']:^{len(torch_part)}}"
        lines.append(
            f"{'2^' + str(row['exponent']):>6} {row['kernel']:>6} {_fmt_ms(row['numpy_ms']):>9} "
            f"{torch_part} {_fmt_rate(row['step_gbps']):>6} "
            f"{_fmt_rate(row['copy_gbps']):>9} {_fmt_bytes(row['peak_extra_bytes']):>11}")
    for note in notes:
        lines.append(f"note: {note}")
    lines.append("GB/s: bytes a step must move (θ, g, m, v read; θ, m, v written) per second; "
                 "copy GB/s: np.copyto of the same size (read + write)")
    return "\n".join(lines)


def format_reference(ref: dict[str, Any]) -> str:
    return (f"reference speed, {ref['elements']} elements × {ref['steps']} steps at "
            f"{ref['dps']} digits (uncertified):\n"
            f"  run_reference      {ref['engine_element_steps_per_s']:>10.0f} element-steps/s "
            f"({ref['engine_seconds']:.2f} s)\n"
            f"  plain mpmath loop  {ref['plain_element_steps_per_s']:>10.0f} element-steps/s "
            f"({ref['plain_seconds']:.2f} s)\n"
            f"  run_reference / plain: {ref['engine_vs_plain']:.2f}×   (final θ agree to "
            f"{ref['max_relative_difference']:.1e} relative)\n"
            f"  run_balls          {ref['balls_element_steps_per_s']:>10.0f} element-steps/s "
            f"({ref['balls_seconds']:.2f} s; Arb at {ref['balls_prec_bits']} bits, every value "
            f"proven, {ref['balls_ties']} ties)\n"
            f"  run_balls / plain: {ref['balls_vs_plain']:.2f}×   (same float64s as "
            f"run_reference: {'yes' if ref['balls_agree_with_engine'] else 'NO'})")


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _machine() -> dict[str, Any]:
    return {"platform": platform.platform(), "processor": platform.processor(),
            "python": platform.python_version(), "cpu_count": os.cpu_count()}


def run(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed options; 0 on success, 2 on a usage error."""
    from adamconf.adapters.numpy_adam import KERNELS, numba_available

    try:
        if args.sizes is not None:
            exponents = parse_sizes(args.sizes)
        else:
            exponents = list(QUICK_EXPONENTS if args.quick else DEFAULT_EXPONENTS)
        repeats = 5 if args.quick and args.repeats == 7 else args.repeats
        if repeats < 5:
            raise UsageError(f"--repeats {repeats}: use at least 5 (the median of fewer is "
                             "too noisy to report)")
        if args.threads is not None and args.threads < 1:
            raise UsageError(f"--threads {args.threads}: use an integer >= 1")
        if args.clock == "cpu" and args.threads != 1:
            raise UsageError("--clock cpu: add --threads 1 (with more threads, CPU time "
                             "counts threads that spin while they wait)")
        kernels = None
        if args.kernels:
            kernels = [k.strip() for k in args.kernels.split(",") if k.strip()]
            unknown = [k for k in kernels if k not in KERNELS or k == "auto"]
            if unknown:
                raise UsageError(f"--kernels: unknown kernel(s) {unknown}; choose numpy, numba")
            if "numba" in kernels and not numba_available():
                raise UsageError("--kernels numba: numba is not installed; "
                                 "`pip install adamconf[fast]`")
            if "numba" in kernels and args.dtype == "float16":
                raise UsageError("--kernels numba: the numba kernel has no float16; "
                                 "use --kernels numpy")
    except UsageError as exc:
        print(f"adamconf bench: {exc}", file=sys.stderr)
        return 2
    report: dict[str, Any] = {"schema": SCHEMA, "machine": _machine()}
    step = bench_step(exponents, dtype=args.dtype, threads=args.threads, repeats=repeats,
                      kernels=kernels, amsgrad=args.amsgrad, use_torch=not args.no_torch,
                      clock=args.clock)
    report["step"] = step
    print(format_table(step))
    if not args.no_runner:
        runner = bench_runner(quick=args.quick)
        report["runner"] = runner
        print()
        print(format_runner(runner))
    if not args.no_fuzz:
        fuzzing = bench_fuzz(examples=100 if args.quick else 400)
        report["fuzz"] = fuzzing
        print()
        print(format_fuzz(fuzzing))
    if not args.no_identify:
        identifying = bench_identify(quick=args.quick)
        report["identify"] = identifying
        print()
        print(format_identify(identifying))
    if not args.no_reference:
        elements, steps = (16, 50) if args.quick else (64, 200)
        reference = bench_reference(elements, steps)
        report["reference"] = reference
        print()
        print(format_reference(reference))
    if args.json:
        path = args.json
        tmp = f"{path}.tmp{os.getpid()}"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(report, fh, indent=2, sort_keys=True)
                fh.write("\n")
            os.replace(tmp, path)
        except OSError as exc:
            print(f"adamconf bench: cannot write {path}: {exc}", file=sys.stderr)
            return 2
        _progress(f"wrote {path}")
    return 0


def bench_runner(quick: bool = False, jobs: int = 2) -> dict[str, Any]:
    """Wall seconds over the numpy corpus (validation left out), in this run: one lane that
    waits for each judgement before the next request (0.1's runner: the peer), one
    pipelined lane (-j 1), and ``jobs`` lanes (-j N); the same cases and judge."""
    from adamconf.conformance.api import check, load_cases
    from adamconf.conformance.harness.lanes import run_lane
    from adamconf.conformance.harness.runner import plan, probe_backend

    cases = "t1/" if quick else None
    seconds = {}
    _progress("runner: the numpy corpus, one lane without overlap (0.1's runner)")
    started = time.perf_counter()  # from the worker's start, as check() is timed
    info, process = probe_backend("numpy")
    try:
        run_lane(process, "numpy", plan(load_cases(cases=cases), info.variants),
                 pipelined=False)
        seconds["sequential"] = time.perf_counter() - started
    finally:
        process.close()
    for lanes in (1, jobs):
        _progress(f"runner: the numpy corpus with -j {lanes}")
        started = time.perf_counter()
        result = check("numpy", cases=cases, validate=False, jobs=lanes)
        seconds[lanes] = time.perf_counter() - started
    return {"cases": len(result.runs[0].results), "jobs": jobs,
            "seconds_sequential": seconds["sequential"], "seconds_one": seconds[1],
            "seconds_parallel": seconds[jobs], "ratio": seconds[1] / seconds[jobs],
            "ratio_sequential": seconds["sequential"] / seconds[jobs],
            "load_average": _load_average()}


def format_runner(r: dict[str, Any]) -> str:
    return (f"runner, numpy corpus ({r['cases']} case × variant pairs): one lane without "
            f"overlap (0.1's runner) {r['seconds_sequential']:.1f} s, -j 1 (pipelined) "
            f"{r['seconds_one']:.1f} s, -j {r['jobs']} {r['seconds_parallel']:.1f} s: "
            f"-j {r['jobs']} is {r['ratio_sequential']:.2f}× 0.1's runner and "
            f"{r['ratio']:.2f}× -j 1")


# the failing NumPy implementations timed: two switches each, most cases failing
IDENTIFY_IMPLEMENTATIONS = (("float32", {"eps": "hat", "wd": "decoupled"}),
                            ("float64", {"ams": "max-raw", "step_offset": 1}),
                            ("float32", {"state": "bfloat16"}))


def bench_identify(quick: bool = False) -> dict[str, Any]:
    """The whole corpus on failing NumPy implementations (``tools/deviant.py``), in one lane,
    with naming the dialect and without (``--no-identify``), run back to back."""
    from adamconf.conformance.api import check
    from adamconf.conformance.judge.identify import dialect_label
    from adamconf.conformance.tools.deviant import DeviantAdam

    rows = []
    for dtype, deviations in IDENTIFY_IMPLEMENTATIONS[:1] if quick else IDENTIFY_IMPLEMENTATIONS:
        times = {}
        for identify in (False, True):
            _progress(f"identify: {dtype} {deviations}, identify={identify}")
            started = time.perf_counter()
            result = check(DeviantAdam(dtype, **deviations), validate=False,
                           identify=identify)
            times[identify] = time.perf_counter() - started
        results = result.runs[0].results
        rows.append({"dtype": dtype, "deviations": deviations,
                     "failing": sum(r.status == "fail" for r in results),
                     "cases": len(results), "seconds_no_identify": times[False],
                     "seconds_identify": times[True], "ratio": times[True] / times[False],
                     "named": dialect_label(results)})
    return {"rows": rows}


def format_identify(r: dict[str, Any]) -> str:
    lines = ["naming the dialect of a failing variant: the whole corpus in one lane, with and "
             "without identification (the peer: --no-identify), back to back",
             f"  {'implementation':<44} {'failing':>9} {'no-identify':>12} {'identify':>9} "
             f"{'ratio':>6}  named"]
    for row in r["rows"]:
        what = f"{row['dtype']} " + ", ".join(f"{k}={v}" for k, v in row["deviations"].items())
        lines.append(f"  {what:<44} {row['failing']:>4}/{row['cases']:<4} "
                     f"{row['seconds_no_identify']:>11.1f}s {row['seconds_identify']:>8.1f}s "
                     f"{row['ratio']:>5.2f}×  {row['named'][:60]}")
    return "\n".join(lines)


def bench_fuzz(examples: int = 400, jobs: int | None = None, seed: int = 0,
               hypofuzz: bool = True) -> dict[str, Any]:
    """``adamconf fuzz --backend numpy`` in this run, the same examples budget: one job (one
    process, as 0.1 fuzzed, with today's judge and strategies: the peer), one job per core
    (adamconf's own jobs, seeded), and, where hypofuzz is installed, a HypoFuzz campaign
    with as many workers (not seeded; it is stopped once it has run the budget). Rates are
    examples per second of fuzzing, as the command prints; ``wall`` is each run's seconds,
    start-up included."""
    import contextlib
    import io

    from adamconf.conformance.harness.campaign import HYPOFUZZ_INSTALL, hypofuzz_installed
    from adamconf.conformance.harness.fuzz import FuzzSettings
    from adamconf.conformance.harness.fuzz import run as fuzz
    from adamconf.conformance.harness.lanes import default_jobs

    jobs = jobs or max(2, default_jobs())
    runs = [("one", 1, "jobs"), ("jobs", jobs, "jobs")]
    campaign = hypofuzz and hypofuzz_installed()
    if campaign:
        runs.append(("hypofuzz", jobs, "hypofuzz"))
    rates, walls, codes = {}, {}, {}
    for label, count, engine in runs:
        _progress(f"fuzz: numpy, {examples} examples, -j {count}, engine {engine}")
        stats: list = []
        began = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            codes[label] = fuzz(FuzzSettings(
                backend="numpy", max_examples=examples, seed=seed if engine == "jobs" else None,
                jobs=count, engine=engine, no_database=True, no_save=True, no_invalid=True,
                quiet=True), stats=stats)
        walls[label] = time.perf_counter() - began
        done = sum(s.examples for s in stats)
        seconds = sum(s.seconds for s in stats)
        rates[label] = done / seconds if seconds > 0 else 0.0
    result = {"examples": examples, "jobs": jobs, "seed": seed, "rate_one": rates["one"],
              "rate_jobs": rates["jobs"], "wall_one": walls["one"], "wall_jobs": walls["jobs"],
              "ratio": rates["jobs"] / rates["one"] if rates["one"] else 0.0,
              "exit_codes": codes, "load_average": _load_average()}
    if campaign:
        result.update(rate_hypofuzz=rates["hypofuzz"], wall_hypofuzz=walls["hypofuzz"],
                      ratio_hypofuzz=rates["hypofuzz"] / rates["jobs"] if rates["jobs"] else 0.0)
    elif hypofuzz:
        result["hypofuzz_missing"] = f"HypoFuzz is not installed: {HYPOFUZZ_INSTALL}"
    return result


def format_fuzz(r: dict[str, Any]) -> str:
    found = "" if not any(r["exit_codes"].values()) else (
        f" (a run found something: exit codes {r['exit_codes']}; see adamconf fuzz)")
    jobs = r["jobs"]

    def row(what: str, rate: float, wall: float, ratio: str = "") -> str:
        return f"  {what:<50} {rate:>7.1f} examples/s  {wall:>6.1f} s wall  {ratio}".rstrip()

    lines = [f"fuzz, numpy, {r['examples']} examples a run{found}:",
             row(f"one job, seed {r['seed']} (one process, as 0.1 fuzzed)", r["rate_one"],
                 r["wall_one"]),
             row(f"-j {jobs}, adamconf's jobs (seeds {r['seed']} to {r['seed'] + jobs - 1})",
                 r["rate_jobs"], r["wall_jobs"], f"{r['ratio']:.2f}× one job")]
    if "rate_hypofuzz" in r:
        lines.append(row(f"-j {jobs}, a HypoFuzz campaign (not seeded)", r["rate_hypofuzz"],
                         r["wall_hypofuzz"], f"{r['ratio_hypofuzz']:.2f}× adamconf's -j {jobs}"))
    elif "hypofuzz_missing" in r:
        lines.append(f"  -j {jobs}, a HypoFuzz campaign: not timed ({r['hypofuzz_missing']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="adamconf bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
