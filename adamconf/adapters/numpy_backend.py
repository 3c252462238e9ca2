"""The NumPy production implementation (:mod:`adamconf.adapters.numpy_adam`) as a backend.

Variants, on device ``cpu``:

- ``production`` × float64, float32, float16: ``Adam(..., kernel="numpy")``, the pure-NumPy
  kernel that is always there;
- ``production-numba`` × float64, float32: ``Adam(..., kernel="numba")``, listed when numba
  is importable (``pip install adamconf[fast]``).

``kernel="auto"``, what a user gets by default, is one of these two per parameter, so both
are judged. State is exposed with ``vmax`` in the documented meaning (``"hat"``: the max of
bias-corrected v̂).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import (
    BackendInfo,
    CaseSetup,
    OptimizerState,
    Unsupported,
    UnsupportedFeature,
    Variant,
)
from .numpy_adam import Adam, numba_available

__all__ = ["NumpyBackend", "NumpySession"]

DTYPES = ("float64", "float32", "float16")
NUMBA_DTYPES = ("float64", "float32")
KERNEL_OF_VARIANT = {"production": "numpy", "production-numba": "numba"}


def _exactly(values: np.ndarray, dtype: np.dtype) -> np.ndarray | None:
    """``values`` converted to ``dtype``, or None when that changes a value."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(all="ignore"):
        converted = values.astype(dtype, order="C")  # a new array, 0-d stays 0-d
        back = converted.astype(np.float64)
        # NaN is the one value unequal to itself: the full check only where one may be
        same = bool((back == values).all()) or np.array_equal(back, values, equal_nan=True)
    return converted if same else None


class NumpySession:
    """One :class:`~adamconf.adapters.numpy_adam.Adam` on one problem, stepped by the harness."""

    def __init__(self, optimizer: Adam, params: list[np.ndarray], dtype: np.dtype,
                 variant: Variant) -> None:
        self.optimizer = optimizer
        self._params = params
        self._dtype = dtype
        self.variant = variant

    def step(self, grads: Sequence[np.ndarray], lrs: Sequence[float] | None = None) -> None:
        groups = self.optimizer.param_groups
        if lrs is not None:
            if len(lrs) != len(groups):
                raise ValueError(f"{len(lrs)} learning rates for {len(groups)} param groups")
            for group, lr in zip(groups, lrs, strict=True):
                group["lr"] = float(lr)
        if len(grads) != len(self._params):
            raise ValueError(f"{len(grads)} gradients for {len(self._params)} params")
        converted = []
        for i, g in enumerate(grads):
            exact = _exactly(np.asarray(g), self._dtype)
            if exact is None:
                raise ValueError(f"gradient {i} is not exactly representable in {self._dtype}; "
                                 "the harness must pass values of the variant's dtype")
            converted.append(exact)
        self.optimizer.step(converted)

    def params(self) -> list[np.ndarray]:
        return [p.astype(np.float64) for p in self._params]

    def state(self) -> OptimizerState:
        opt = self.optimizer
        vmax = [np.zeros(p.shape) if a is None else a.astype(np.float64)
                for p, a in zip(self._params, opt.state_arrays("vmax"), strict=True)]
        return OptimizerState(step=opt.step_count,
                              m=[a.astype(np.float64) for a in opt.state_arrays("m")],
                              v=[a.astype(np.float64) for a in opt.state_arrays("v")],
                              vmax=vmax, vmax_kind="hat")


class NumpyBackend:
    """Backend ``numpy``: the production implementation of this package."""

    name = "numpy"

    def _variants(self) -> list[Variant]:
        variants = [Variant(self.name, "production", "cpu", dtype) for dtype in DTYPES]
        if numba_available():
            variants += [Variant(self.name, "production-numba", "cpu", dtype)
                         for dtype in NUMBA_DTYPES]
        return variants

    def probe(self) -> BackendInfo:
        versions = {"numpy": np.__version__}
        unsupported = []
        if numba_available():
            import numba

            versions["numba"] = numba.__version__
            unsupported.append(Unsupported(
                "production-numba/cpu/float16",
                "the numba kernel handles float32 and float64; float16 runs on 'production'"))
        else:
            unsupported.append(Unsupported(
                "production-numba", "numba is not installed; `pip install adamconf[fast]`"))
        return BackendInfo(
            name=self.name, installed=True, versions=versions, devices=["cpu"],
            dtypes=list(DTYPES), variants=self._variants(), unsupported=unsupported,
            description="adamconf's own NumPy Adam (documented formula in the param dtype); "
                        "production = NumPy kernel, production-numba = compiled kernel")

    def _check_variant(self, variant: Variant) -> str:
        if variant.backend != self.name:
            raise ValueError(f"variant {variant.id} belongs to backend {variant.backend!r}, "
                             f"not {self.name!r}")
        if variant.name not in KERNEL_OF_VARIANT:
            raise ValueError(f"unknown numpy variant {variant.name!r}; choose one of "
                             f"{', '.join(KERNEL_OF_VARIANT)}")
        if variant.device != "cpu":
            raise UnsupportedFeature(f"the numpy backend runs on device 'cpu' only, not "
                                     f"{variant.device!r}")
        if variant.dtype not in DTYPES:
            raise UnsupportedFeature(f"the numpy backend supports {', '.join(DTYPES)}, not "
                                     f"{variant.dtype!r}")
        kernel = KERNEL_OF_VARIANT[variant.name]
        if kernel == "numba":
            if not numba_available():
                raise UnsupportedFeature("numba is not installed; `pip install adamconf[fast]`")
            if variant.dtype not in NUMBA_DTYPES:
                raise UnsupportedFeature("the numba kernel handles float32 and float64 only")
        return kernel

    def open(self, problem: CaseSetup, variant: Variant) -> NumpySession:
        kernel = self._check_variant(variant)
        dtype = np.dtype(variant.dtype)
        if not problem.params:
            raise UnsupportedFeature("the optimizer needs at least one parameter")
        for i, grads in enumerate(problem.grads):
            if _exactly(grads, dtype) is None:
                raise UnsupportedFeature(f"the gradients of param {i} are not exactly "
                                         f"representable in {dtype}")
        params: list[np.ndarray] = []
        groups = []
        for gi, group in enumerate(problem.groups):
            arrays = []
            for p in group.params:
                exact = _exactly(p, dtype)
                if exact is None:
                    raise UnsupportedFeature(f"param {len(params)} (group {gi}) is not exactly "
                                             f"representable in {dtype}")
                arrays.append(exact)
                params.append(exact)
            cfg = group.config
            groups.append({"params": arrays, "lr": group.lr_at(0) if problem.steps else cfg.lr,
                           "betas": cfg.betas, "eps": cfg.eps,
                           "weight_decay": cfg.weight_decay, "amsgrad": cfg.amsgrad,
                           "maximize": cfg.maximize})
        optimizer = Adam(groups, kernel=kernel)
        state = problem.initial_state
        if state is not None:
            saved = optimizer.state_dict()
            saved["step"] = state.step
            saved["state"] = [{"m": m, "v": v, "vmax": vmax}
                              for m, v, vmax in zip(state.m, state.v, state.vmax, strict=True)]
            try:
                optimizer.load_state_dict(saved)
            except ValueError as exc:
                raise UnsupportedFeature(f"initial state cannot be loaded in {dtype}: "
                                         f"{exc}") from None
        return NumpySession(optimizer, params, dtype, variant)

    def construct(self, variant: Variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False) -> None:
        kernel = self._check_variant(variant)
        param = np.zeros(4, dtype=np.dtype(variant.dtype))
        Adam([param], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
             maximize=maximize, kernel=kernel)
