"""PyTorch: ``torch.optim.Adam`` in each of its implementations, driven step by step.

Variants (``Variant.name``), each × device (``cpu``, ``cuda`` when present) × dtype
(float64, float32, float16, bfloat16):

- ``for-loop`` (``foreach=False``), ``foreach`` (``foreach=True``), ``fused`` (``fused=True``),
  ``capturable`` (``foreach=False, capturable=True``), ``foreach-capturable``
  (``foreach=True, capturable=True``): lr a Python float, set between steps through
  ``param_groups[i]['lr']`` as an LR scheduler does.
- the same five with ``-tensor-lr``: lr a 0-d tensor, changed in place with ``fill_`` (what
  torch asks of a tensor lr, so that a captured graph sees the new value). The tensor holds
  the exact binary64 lr (float64), except for ``fused`` on CUDA, whose kernel reads the lr
  as float32 (``lr.const_data_ptr<float>()`` in ``fused_adam_impl.cu``): there it is float32.

Whatever torch refuses (``capturable`` on CPU, a tensor lr with ``foreach`` and no
``capturable``, ``fused`` on a device or dtype without a kernel) is found by trying one
step at probe time and listed as unsupported with torch's own message.

What torch computes (``torch/optim/adam.py``; ``aten/src/ATen/native/cpu/FusedAdamKernel.cpp``):
the documented update, except that amsgrad keeps the max of raw v
(``max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq)``, then ``√(max/(1−β2^t)) + ε``): the
``ams-rawmax`` dialect. The adapter does not correct it; the suite judges. State is
``optimizer.state[p]``: ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (raw) and ``step``,
a float32 tensor per parameter (float64 if torch's default dtype is float64).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np

from .base import (
    BackendInfo,
    BackendUnavailable,
    CaseSetup,
    GroupSetup,
    Hyperparameters,
    OptimizerState,
    Unsupported,
    UnsupportedFeature,
    Variant,
)

__all__ = ["TorchBackend", "IMPLEMENTATIONS", "DTYPES"]

NAME = "torch"
INSTALL_HINT = "pip install 'adamconf[torch]' (or pip install torch)"

# implementation name → the constructor flags that select it
IMPLEMENTATIONS: dict[str, dict[str, bool]] = {
    "for-loop": {"foreach": False},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
    "capturable": {"foreach": False, "capturable": True},
    "foreach-capturable": {"foreach": True, "capturable": True},
}
TENSOR_LR_SUFFIX = "-tensor-lr"
DTYPES = ("float64", "float32", "float16", "bfloat16")


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise BackendUnavailable(f"torch is not installed ({exc}); {INSTALL_HINT}") from None
    return torch


def _split_name(name: str) -> tuple[dict[str, bool], bool]:
    """Variant name → (constructor flags, whether lr is a tensor)."""
    tensor_lr = name.endswith(TENSOR_LR_SUFFIX)
    base = name[: -len(TENSOR_LR_SUFFIX)] if tensor_lr else name
    if base not in IMPLEMENTATIONS:
        known = ", ".join(f"{n}, {n}{TENSOR_LR_SUFFIX}" for n in IMPLEMENTATIONS)
        raise ValueError(f"unknown torch variant {name!r}; known: {known}")
    return IMPLEMENTATIONS[base], tensor_lr


def _variant_names() -> list[str]:
    return [n for base in IMPLEMENTATIONS for n in (base, base + TENSOR_LR_SUFFIX)]


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


class _Torch:
    """The torch module and the conversions between the seam's float64 arrays and tensors."""

    def __init__(self, torch) -> None:
        self.torch = torch
        self.dtypes = {"float64": torch.float64, "float32": torch.float32,
                       "float16": torch.float16, "bfloat16": torch.bfloat16}

    def tensor(self, array, variant: Variant):
        # float64 → the variant's dtype is exact: the seam only carries representable values
        host = self.torch.from_numpy(np.array(array, dtype=np.float64, copy=True))
        return host.to(device=variant.device, dtype=self.dtypes[variant.dtype])

    def array(self, tensor) -> np.ndarray:
        return tensor.detach().to(device="cpu", dtype=self.torch.float64).numpy().copy()

    def lr_value(self, lr, variant: Variant, flags: dict[str, bool], tensor_lr: bool):
        """The lr as the variant passes it: a float, or a 0-d tensor (see the module docstring)."""
        if not tensor_lr or isinstance(lr, bool) or not isinstance(lr, numbers.Real):
            return lr  # what is not a number reaches torch as given (its checks judge it)
        on_cuda_fused = flags.get("fused") and variant.device.startswith("cuda")
        dtype = self.torch.float32 if on_cuda_fused else self.torch.float64
        return self.torch.tensor(lr, dtype=dtype, device=variant.device)

    def scalar_step_dtype(self):
        # as torch.optim.optimizer._get_scalar_dtype: float32 unless the default is float64
        torch = self.torch
        return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class TorchSession:
    """One ``torch.optim.Adam`` on one problem."""

    def __init__(self, tt: _Torch, problem: CaseSetup, variant: Variant) -> None:
        torch = tt.torch
        self._tt, self._variant = tt, variant
        self._flags, self._tensor_lr = _split_name(variant.name)
        self._params: list = []
        groups = []
        for group in problem.groups:
            cfg = group.config
            params = [torch.nn.Parameter(tt.tensor(p, variant)) for p in group.params]
            self._params.extend(params)
            groups.append({"params": params,
                           "lr": tt.lr_value(cfg.lr, variant, self._flags, self._tensor_lr),
                           "betas": tuple(cfg.betas), "eps": cfg.eps,
                           "weight_decay": cfg.weight_decay, "amsgrad": cfg.amsgrad,
                           "maximize": cfg.maximize})
        # the default lr, in the variant's form, so torch's constructor checks see it too
        first_lr = problem.groups[0].config.lr if problem.groups else 1e-3
        self.optimizer = torch.optim.Adam(
            groups, lr=tt.lr_value(first_lr, variant, self._flags, self._tensor_lr),
            **self._flags)
        if problem.initial_state is not None:
            self._load_state(problem)

    def _load_state(self, problem: CaseSetup) -> None:
        """Resume through torch's own ``load_state_dict``, which casts to each param's dtype."""
        torch, tt = self._tt.torch, self._tt
        init = problem.initial_state
        owner = problem.group_of_param()
        state_dict = self.optimizer.state_dict()
        entries = {}
        for index in range(len(self._params)):
            beta2 = problem.groups[owner[index]].config.beta2
            # the problem's v̂max is documented (max of bias-corrected v); torch keeps the max of
            # raw v, so it resumes from raw = v̂max·(1 − β2^step), computed in float64 — the
            # same convention as the reference engine's raw dialects (rounded to the dtype here)
            raw_vmax = np.asarray(init.vmax[index]) * (1.0 - beta2 ** init.step)
            entries[index] = {
                "step": torch.tensor(float(init.step), dtype=tt.scalar_step_dtype()),
                "exp_avg": torch.from_numpy(np.array(init.m[index], dtype=np.float64)),
                "exp_avg_sq": torch.from_numpy(np.array(init.v[index], dtype=np.float64)),
                "max_exp_avg_sq": torch.from_numpy(np.array(raw_vmax, dtype=np.float64)),
            }
        state_dict["state"] = entries
        self.optimizer.load_state_dict(state_dict)

    def step(self, grads: Sequence[np.ndarray], lrs: Sequence[float] | None = None) -> None:
        if len(grads) != len(self._params):
            raise ValueError(f"{len(grads)} gradients for {len(self._params)} parameters")
        if lrs is not None:
            groups = self.optimizer.param_groups
            if len(lrs) != len(groups):
                raise ValueError(f"{len(lrs)} learning rates for {len(groups)} param groups")
            for group, lr in zip(groups, lrs, strict=True):
                if self._tensor_lr:
                    group["lr"].fill_(float(lr))  # in place: what torch asks of a tensor lr
                else:
                    group["lr"] = float(lr)
        for param, grad in zip(self._params, grads, strict=True):
            param.grad = self._tt.tensor(grad, self._variant)
        self.optimizer.step()

    def params(self) -> list[np.ndarray]:
        return [self._tt.array(p) for p in self._params]

    def state(self) -> OptimizerState | None:
        held = [self.optimizer.state.get(p) for p in self._params]
        if not held or any(not s for s in held):
            return None  # torch creates its state lazily, at the first step
        any_amsgrad = any(g["amsgrad"] for g in self.optimizer.param_groups)
        vmax = None
        if any_amsgrad:
            # a group without amsgrad has no max_exp_avg_sq: it keeps the initial 0 (or what a
            # resume loaded, which torch stores and never reads)
            vmax = [self._tt.array(s["max_exp_avg_sq"]) if "max_exp_avg_sq" in s
                    else np.zeros(p.shape) for s, p in zip(held, self._params, strict=True)]
        return OptimizerState(
            step=int(held[0]["step"].item()),
            m=[self._tt.array(s["exp_avg"]) for s in held],
            v=[self._tt.array(s["exp_avg_sq"]) for s in held],
            vmax=vmax, vmax_kind="raw")


class TorchBackend:
    """``torch.optim.Adam``: for-loop, foreach, fused, capturable; float or tensor lr."""

    name = NAME

    def __init__(self) -> None:
        self._info: BackendInfo | None = None
        self._refused: dict[Variant, str] = {}

    def _tt(self) -> _Torch:
        return _Torch(_import_torch())

    @staticmethod
    def _devices(torch) -> list[str]:
        devices = ["cpu"]
        if torch.cuda.is_available():
            devices.append("cuda")
        return devices

    def _try(self, tt: _Torch, variant: Variant) -> str | None:
        """One step on a two-element parameter; torch's refusal as a reason, or None."""
        try:
            problem = _trial_problem()
            session = TorchSession(tt, problem, variant)
            session.step([g[0] for g in problem.grads], [problem.groups[0].config.lr])
            session.params()
        except Exception as exc:  # torch's own refusal is the reason a person reads
            return _reason(exc)
        return None

    def probe(self) -> BackendInfo:
        if self._info is not None:
            return self._info
        try:
            tt = self._tt()
        except BackendUnavailable as exc:
            return BackendInfo(name=NAME, installed=False, install_hint=INSTALL_HINT,
                               description=str(exc))
        torch = tt.torch
        devices = self._devices(torch)
        info = BackendInfo(
            name=NAME, installed=True,
            versions={"torch": torch.__version__,
                      "cuda": str(torch.version.cuda) if torch.version.cuda else "none"},
            devices=devices, dtypes=list(DTYPES), install_hint=INSTALL_HINT,
            description="torch.optim.Adam; implementations selected by foreach / fused / "
                        "capturable, lr a float or a 0-d tensor")
        for name in _variant_names():
            for device in devices:
                refused = {}
                for dtype in DTYPES:
                    variant = Variant(NAME, name, device, dtype)
                    reason = self._try(tt, variant)
                    if reason is None:
                        info.variants.append(variant)
                    else:
                        refused[dtype] = reason
                        self._refused[variant] = reason
                if refused and len(set(refused.values())) == 1 and len(refused) == len(DTYPES):
                    info.unsupported.append(Unsupported(f"{name}/{device}",
                                                        next(iter(refused.values()))))
                else:
                    info.unsupported.extend(Unsupported(f"{name}/{device}/{dtype}", reason)
                                            for dtype, reason in refused.items())
        self._info = info
        return info

    def _check_variant(self, variant: Variant) -> _Torch:
        tt = self._tt()
        if variant.backend != NAME:
            raise ValueError(f"variant {variant.id} belongs to backend {variant.backend!r}")
        _split_name(variant.name)
        if variant.dtype not in tt.dtypes:
            raise ValueError(f"unknown dtype {variant.dtype!r} for torch; known: "
                             f"{', '.join(DTYPES)}")
        device = variant.device
        if device not in self._devices(tt.torch):
            raise UnsupportedFeature(f"torch has no device {device!r} here "
                                     f"(devices: {', '.join(self._devices(tt.torch))})")
        self.probe()
        if variant in self._refused:
            raise UnsupportedFeature(f"torch refuses {variant.id}: {self._refused[variant]}")
        return tt

    def open(self, problem: CaseSetup, variant: Variant) -> TorchSession:
        tt = self._check_variant(variant)
        return TorchSession(tt, problem, variant)

    def construct(self, variant: Variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False) -> None:
        tt = self._check_variant(variant)
        flags, tensor_lr = _split_name(variant.name)
        param = tt.torch.nn.Parameter(tt.tensor(np.zeros(2), variant))
        tt.torch.optim.Adam([param], lr=tt.lr_value(lr, variant, flags, tensor_lr),
                            betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                            maximize=maximize, **flags)


def _trial_problem() -> CaseSetup:
    """Two elements, one step: enough for torch to accept or refuse a variant."""
    config = Hyperparameters(0.25, (0.9, 0.999), 1e-8, 0.0)
    return CaseSetup(groups=(GroupSetup(config, (np.array([1.0, -0.5]),)),),
                     grads=(np.array([[0.5, 0.25]]),))
