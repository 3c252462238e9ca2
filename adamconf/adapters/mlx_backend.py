"""MLX: ``mlx.optimizers.Adam``, with and without its ``bias_correction`` switch, on the CPU.

What it computes (``mlx/optimizers/optimizers.py``, ``Adam.apply_single``), after the
optimizer's step counter (``state["step"]``, uint64) is incremented::

    lr ← learning_rate cast to the gradient's dtype
    m ← β1·m + (1 − β1)·g            v ← β2·v + (1 − β2)·g²
    bias_correction=False (the default):  θ ← θ − lr·m/(√v + ε)
    bias_correction=True:   c1 ← lr/(1 − β1^t),  c2 ← 1/√(1 − β2^t)  (each cast to g's dtype)
                            θ ← θ − c1·m/(√v·c2 + ε)

With the switch on that is the documented update (√v·c2 + ε = √v̂ + ε: ε outside the
bias correction); with it off (MLX's default) it is the ``no-bias-correction`` dialect.
β^t is ``β ** step`` on the uint64 step array: a float32 pow. ``learning_rate`` is held as
an ``mx.array`` made from a Python float: float32, even when the parameters are float64.

Variants (``Variant.name``) × device ``cpu`` × dtype (float32, float16, bfloat16, and
float64, which MLX has on the CPU only):

- ``Adam`` — ``Adam(learning_rate, betas, eps)``, i.e. ``bias_correction=False``;
- ``Adam-bias-correction`` — ``Adam(..., bias_correction=True)``.

How the adapter uses it, as a user would:

- parameters are a dict tree ``{"p0": array, ...}`` and each step is
  ``apply_gradients(grads, params)`` (what ``Optimizer.update`` does on a module), then
  ``mx.eval``;
- the lr changes between steps through the ``learning_rate`` setter (an ``mx.array`` of
  the new value), as one does by hand or through a schedule;
- param groups: one ``Adam`` per group, stepped together (what ``MultiOptimizer`` does
  with one filter per group);
- resume: after ``init(params)``, ``state["step"]`` (uint64) and each parameter's
  ``m`` and ``v`` are set; state is read from ``optimizer.state``.

The adapter makes the CPU MLX's default device (``mx.set_default_device(mx.cpu)``, for the
whole process) when it first touches MLX: on Linux it is the only one; on macOS it keeps
the runs on the device the variants name.

Not there, refused: weight decay (``Adam`` has none; ``AdamW`` decays decoupled,
θ·(1 − lr·λ), another optimizer), amsgrad, maximize.

Validation: β outside [0, 1) and ε < 0 raise ValueError; a str lr raises ValueError
("Invalid type str received in array initialization"); lr < 0 is accepted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import BackendInfo, CaseSetup, OptimizerState, UnsupportedFeature, Variant
from .features import Lacking
from .framework import FrameworkBackend, check_step
from .install import importing

__all__ = ["MlxBackend", "VARIANT_NAMES", "DTYPES"]

NAME = "mlx"
ADAM = "Adam"
ADAM_BIAS_CORRECTION = "Adam-bias-correction"
VARIANT_NAMES = (ADAM, ADAM_BIAS_CORRECTION)
DTYPES = ("float32", "float16", "bfloat16", "float64")
DEVICES = ("cpu",)
UINT64_MAX = 2**64 - 1

LACKING = Lacking.of("mlx.optimizers.Adam", "weight_decay", "amsgrad", "maximize",
                     weight_decay=" (AdamW's is decoupled: θ·(1 − lr·λ), another optimizer)")


def _import_mlx():
    with importing("mlx", NAME):
        import mlx.core as mx
        import mlx.optimizers as optimizers
    return mx, optimizers


def _version() -> str:
    try:
        from importlib import metadata

        return metadata.version("mlx")
    except Exception:
        return "unknown"


class _Mlx:
    def __init__(self) -> None:
        self.mx, self.optimizers = _import_mlx()
        mx = self.mx
        # the variants' device (and float64's only one); process-wide, as MLX has it
        mx.set_default_device(mx.cpu)
        self.dtype_of = {"float32": mx.float32, "float16": mx.float16,
                         "bfloat16": mx.bfloat16, "float64": mx.float64}

    def array(self, values, variant: Variant):
        """An array of the variant's dtype on the CPU (exact for the seam's values)."""
        mx = self.mx
        host = np.array(values, dtype=np.float64)
        if variant.dtype == "float64":
            return mx.array(host, dtype=mx.float64)
        # float64 → float32 is exact for values of float32, float16 and bfloat16
        return mx.array(host.astype(np.float32)).astype(self.dtype_of[variant.dtype])

    def to_numpy(self, array) -> np.ndarray:
        mx = self.mx
        if array.dtype != mx.float64:
            array = array.astype(mx.float32)  # exact; NumPy has no bfloat16
        return np.array(array, dtype=np.float64)


class MlxSession:
    """One ``mlx.optimizers.Adam`` per param group over a dict of that group's arrays."""

    def __init__(self, mlx: _Mlx, problem: CaseSetup, variant: Variant) -> None:
        mx = mlx.mx
        self._mlx, self._variant = mlx, variant
        self._keys: list[list[str]] = []
        self._params: list[dict] = []
        self.optimizers = []
        for group, rows in zip(problem.groups, problem.group_ranges()):
            cfg = group.config
            keys = [f"p{i}" for i in rows]
            params = {k: mlx.array(p, variant) for k, p in zip(keys, group.params)}
            opt = mlx.optimizers.Adam(learning_rate=cfg.lr, betas=list(cfg.betas), eps=cfg.eps,
                                      bias_correction=variant.name == ADAM_BIAS_CORRECTION)
            opt.init(params)
            self._keys.append(keys)
            self._params.append(params)
            self.optimizers.append(opt)
        if problem.initial_state is not None:
            init = problem.initial_state
            for keys, opt in zip(self._keys, self.optimizers):
                opt.state["step"] = mx.array(init.step, dtype=mx.uint64)
                for k in keys:
                    i = int(k[1:])
                    opt.state[k]["m"] = mlx.array(init.m[i], variant)
                    opt.state[k]["v"] = mlx.array(init.v[i], variant)
        mx.eval(self._params, [o.state for o in self.optimizers])

    def step(self, grads: Sequence[np.ndarray], lrs: Sequence[float] | None = None) -> None:
        mlx, mx = self._mlx, self._mlx.mx
        check_step(grads, lrs, sum(len(k) for k in self._keys), len(self.optimizers))
        if lrs is not None:
            for opt, lr in zip(self.optimizers, lrs):
                opt.learning_rate = float(lr)
        for gi, (keys, opt) in enumerate(zip(self._keys, self.optimizers)):
            group_grads = {k: mlx.array(grads[int(k[1:])], self._variant) for k in keys}
            self._params[gi] = opt.apply_gradients(group_grads, self._params[gi])
        mx.eval(self._params, [o.state for o in self.optimizers])

    def params(self) -> list[np.ndarray]:
        return [self._mlx.to_numpy(params[k]) for keys, params in zip(self._keys, self._params)
                for k in keys]

    def state(self) -> OptimizerState | None:
        if not self.optimizers:
            return None
        to_numpy = self._mlx.to_numpy
        pairs = [(opt, k) for keys, opt in zip(self._keys, self.optimizers) for k in keys]
        return OptimizerState(step=int(self.optimizers[0].state["step"].item()),
                              m=[to_numpy(opt.state[k]["m"]) for opt, k in pairs],
                              v=[to_numpy(opt.state[k]["v"]) for opt, k in pairs],
                              vmax=None)


class MlxBackend(FrameworkBackend):
    """``mlx.optimizers.Adam`` with ``bias_correction`` off (MLX's default) and on."""

    name = NAME
    dtypes = DTYPES
    session_class = MlxSession

    def describe(self) -> BackendInfo:
        mlx = _Mlx()
        info = BackendInfo(
            name=NAME, installed=True, versions={"mlx": _version()},
            devices=list(DEVICES), dtypes=list(DTYPES), install_hint=self.install_hint,
            variants=[Variant(NAME, name, device, dtype) for name in VARIANT_NAMES
                      for device in DEVICES for dtype in DTYPES],
            unsupported=LACKING.unsupported(),
            description="mlx.optimizers.Adam (bias_correction=False, MLX's default; and "
                        "=True), one per group, apply_gradients on a dict of arrays; lr set "
                        f"through the learning_rate setter; default device "
                        f"{mlx.mx.default_device()}")
        return info

    def framework_for(self, variant: Variant) -> _Mlx:
        mlx = _Mlx()
        self.check_variant(variant, "mlx", VARIANT_NAMES, DEVICES)
        return mlx

    def check_case(self, problem: CaseSetup, variant: Variant) -> None:
        LACKING.check_case(problem)
        if problem.initial_state is not None and problem.initial_step > UINT64_MAX:
            raise UnsupportedFeature(f"MLX counts steps in uint64; step {problem.initial_step} "
                                     "does not fit")

    def construct(self, variant: Variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False) -> None:
        mlx = self.framework_for(variant)
        LACKING.check_construct(weight_decay, amsgrad, maximize)
        opt = mlx.optimizers.Adam(learning_rate=lr, betas=list(betas), eps=eps,
                                  bias_correction=variant.name == ADAM_BIAS_CORRECTION)
        opt.init({"p0": mlx.array(np.zeros(2), variant)})
