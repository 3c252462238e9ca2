"""Any ``torch.optim.Optimizer`` with torch's constructor conventions, driven step by step.

``torch-optimizer:package.module:Class`` judges ``Class(param_groups, lr=..., betas=...,
eps=..., weight_decay=..., [amsgrad=...], [maximize=...], **options)``: the one torch
driver, of which ``torch.optim.Adam`` (:mod:`.torch_backend`) and the named libraries
(torch-optimi, bitsandbytes, DeepSpeed) are instances with a fixed class and variants.

What the driver does, and nothing else:

- The signature (``inspect``) says which hyperparameters the class takes. ``lr``, ``betas``
  and ``eps`` are needed; ``weight_decay``, ``amsgrad`` and ``maximize`` are passed where
  the signature names them (or has ``**kwargs``). A case that needs one the class lacks
  (weight decay ≠ 0, amsgrad, maximize) is unsupported, with that reason: the driver never
  fakes a feature (it does not negate gradients for maximize).
- Param groups are torch's: one dict per group with that group's hyperparameters; the
  constructor gets the first group's as its defaults. A library reads a group key only if
  it is one of its ``optimizer.defaults``; where groups differ in a hyperparameter whose key
  the library does not keep per group, the case is unsupported (its value would be ignored).
- The lr changes between steps through ``param_groups[i]['lr']``, as an LR scheduler does
  (or in place with ``fill_`` for a tensor lr).
- Whatever the library refuses (a dtype, a device, amsgrad at its first step) is found by
  trying one step at probe time and listed as unsupported with the library's own message.
- State is read where it follows torch's names (``exp_avg``, ``exp_avg_sq``,
  ``max_exp_avg_sq``, ``step``, in ``optimizer.state[p]``; the step may sit in the param
  group instead); otherwise it is reported absent. By torch's convention ``max_exp_avg_sq``
  is the max of raw v (``vmax_kind="raw"``). Resume goes through the library's own
  ``load_state_dict``, and only where its state is made of those names alone (a key the
  driver cannot fill from m, v and v̂max makes resume unsupported, saying which).

Options (``--option key=value``) are extra constructor keywords; values are Python
literals where they parse (``ast.literal_eval``: ``True``, ``32``, ``1e-3``), else strings.
"""

from __future__ import annotations

import ast
import inspect
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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
    error_reason,
)

__all__ = ["TorchOptimizerBackend", "Implementation", "TORCH_STATE_KEYS", "DTYPES",
           "torch_optimizer_backend", "parse_options"]

PREFIX = "torch-optimizer"
TORCH_INSTALL_HINT = "pip install 'adamconf[torch]' (or pip install torch)"
DTYPES = ("float64", "float32", "float16", "bfloat16")
# the hyperparameters the driver passes, by their torch names
HYPERPARAMETERS = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize")
REQUIRED = ("lr", "betas", "eps")
# where the driver reads (and resumes) each state quantity: torch's names
TORCH_STATE_KEYS: dict[str, str] = {"step": "step", "m": "exp_avg", "v": "exp_avg_sq",
                                    "vmax": "max_exp_avg_sq"}


def parse_options(options: Mapping[str, str] | None) -> dict[str, object]:
    """``key=value`` options as constructor keywords: Python literals where they parse."""
    parsed: dict[str, object] = {}
    for key, value in (options or {}).items():
        if not key.isidentifier():
            raise ValueError(f"option {key!r} is not a keyword name")
        if key in HYPERPARAMETERS:
            raise ValueError(f"option {key!r} is a hyperparameter: each case sets it")
        if isinstance(value, str):
            try:
                parsed[key] = ast.literal_eval(value)
            except (ValueError, SyntaxError):
                parsed[key] = value
        else:
            parsed[key] = value
    return parsed


@dataclass(frozen=True)
class Implementation:
    """One variant: the constructor keywords that select it and how the lr is passed.

    ``tensor_lr``: the lr is a 0-d tensor (float64, or float32 on the devices named by
    ``float32_lr_on``, whose kernels read it so), changed in place with ``fill_``.
    ``leaf_params``: False passes non-leaf tensors that require grad (what torch's
    ``differentiable=True`` is for: an optimizer step inside an autograd graph).
    """

    keywords: Mapping[str, object] = field(default_factory=dict)
    tensor_lr: bool = False
    float32_lr_on: tuple[str, ...] = ()
    leaf_params: bool = True


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise BackendUnavailable(f"torch is not installed ({exc}); {TORCH_INSTALL_HINT}") from None
    return torch


def _resolve(target: str):
    """'package.module:Class' → the class; BackendUnavailable saying what is missing."""
    import importlib

    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise BackendUnavailable(f"{target!r} must look like 'package.module:Class'")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendUnavailable(f"cannot import {module_name!r} ({exc})") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise BackendUnavailable(f"module {module_name!r} has no attribute {attr!r}") from None
    return obj


def _package_version(module_name: str) -> tuple[str, str] | None:
    """(distribution or package name, version) of the top-level package of ``module_name``."""
    import sys
    from importlib import metadata

    top = module_name.partition(".")[0]
    version = getattr(sys.modules.get(top), "__version__", None)
    names = metadata.packages_distributions().get(top, [])
    if version is None:
        for name in names:
            try:
                return name, metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        return None
    return (names[0] if names else top), str(version)


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

    def lr_value(self, lr, variant: Variant, impl: Implementation):
        """The lr as the variant passes it: a float, or a 0-d tensor (see Implementation)."""
        if not impl.tensor_lr or isinstance(lr, bool) or not isinstance(lr, numbers.Real):
            return lr  # what is not a number reaches the library as given (its checks judge it)
        narrow = any(variant.device.startswith(d) for d in impl.float32_lr_on)
        dtype = self.torch.float32 if narrow else self.torch.float64
        return self.torch.tensor(lr, dtype=dtype, device=variant.device)


def _same_type_step(template, step: int):
    """The step count in the form the library keeps it (a tensor of its dtype, int, float)."""
    if hasattr(template, "dtype") and hasattr(template, "device"):
        import torch

        return torch.tensor(float(step), dtype=template.dtype, device=template.device)
    return type(template)(step) if isinstance(template, (int, float)) else step


class TorchOptimizerSession:
    """One optimizer of the backend's class on one case."""

    def __init__(self, backend: TorchOptimizerBackend, tt: _Torch, problem: CaseSetup,
                 variant: Variant) -> None:
        self._backend, self._tt, self._variant = backend, tt, variant
        self._impl = backend.implementation(variant.name)
        self._params: list = []
        self._leaves: list = []  # kept alive: the roots of non-leaf params
        self.optimizer = self._build(problem)
        if problem.initial_state is not None:
            self._load_state(problem)

    def _param(self, values):
        tt = self._tt
        tensor = tt.tensor(values, self._variant)
        if self._impl.leaf_params:
            return tt.torch.nn.Parameter(tensor)
        leaf = tensor.requires_grad_(True)
        self._leaves.append(leaf)
        return leaf.clone()  # a non-leaf that requires grad, as a meta-learning step has

    def _build(self, problem: CaseSetup):
        backend, tt, variant = self._backend, self._tt, self._variant
        groups = []
        for group in problem.groups:
            params = [self._param(p) for p in group.params]
            self._params.extend(params)
            groups.append({"params": params, **backend.group_keys(
                group.config, tt.lr_value(group.config.lr, variant, self._impl)),
                **backend.extra_group_keys(group, variant)})
        first = problem.groups[0].config if problem.groups else Hyperparameters(
            1e-3, (0.9, 0.999), 1e-8, 0.0)
        keywords = backend.keywords(variant, first, tt.lr_value(first.lr, variant, self._impl))
        optimizer = backend.optimizer_class()(groups, **keywords)
        self._check_groups(problem, optimizer)
        return optimizer

    def _check_groups(self, problem: CaseSetup, optimizer) -> None:
        """Groups that differ where the library keeps no per-group value are unsupported."""
        backend = self._backend
        if len(problem.groups) < 2:
            return
        per_group = [backend.group_keys(g.config, g.config.lr) for g in problem.groups]
        for key in per_group[0]:
            if key == "lr" or key in optimizer.defaults:
                continue
            values = {repr(keys[key]) for keys in per_group}
            if len(values) > 1:
                raise UnsupportedFeature(
                    f"the groups differ in {key!r}, which {backend.label} does not keep per "
                    f"param group (its defaults: {', '.join(sorted(optimizer.defaults))})")

    def _load_state(self, problem: CaseSetup) -> None:
        """Resume through the library's own ``load_state_dict``, in the layout (keys, dtypes,
        devices) its state takes after one step of a twin optimizer."""
        backend, tt = self._backend, self._tt
        init = problem.initial_state
        layout, group_step = backend.state_layout(tt, problem, self._variant)
        keys = backend.state_keys
        owner = problem.group_of_param()
        state_dict = self.optimizer.state_dict()
        entries = {}
        for index in range(len(self._params)):
            beta2 = problem.groups[owner[index]].config.beta2
            vmax = np.asarray(init.vmax[index], dtype=np.float64)
            if backend.vmax_kind == "raw":
                # the case's v̂max is documented (max of bias-corrected v); the library keeps the
                # max of raw v: raw = v̂max·(1 − β2^step), in float64 as the reference does
                vmax = vmax * (1.0 - beta2 ** init.step)
            values = {keys["m"]: init.m[index], keys["v"]: init.v[index]}
            if keys.get("vmax"):
                values[keys["vmax"]] = vmax
            entry = {}
            for key, template in layout[index].items():
                if key == keys["step"]:
                    entry[key] = _same_type_step(template, init.step)
                elif key in values:
                    # in the dtype and on the device the library keeps it (bitsandbytes keeps
                    # float32 state whatever the param's dtype, and its load_state_dict does
                    # not cast): what the library's own state_dict would hold
                    value = tt.torch.from_numpy(np.array(values[key], dtype=np.float64))
                    entry[key] = (value.to(dtype=template.dtype, device=template.device)
                                  if _is_tensor(template) else value)
                else:
                    entry[key] = template  # None: what the library starts from
            entries[index] = entry
        state_dict["state"] = entries
        if group_step is not None:
            for group in state_dict["param_groups"]:
                group[keys["step"]] = _same_type_step(group_step, init.step)
        self.optimizer.load_state_dict(state_dict)

    def step(self, grads: Sequence[np.ndarray], lrs: Sequence[float] | None = None) -> None:
        if len(grads) != len(self._params):
            raise ValueError(f"{len(grads)} gradients for {len(self._params)} parameters")
        if lrs is not None:
            groups = self.optimizer.param_groups
            if len(lrs) != len(groups):
                raise ValueError(f"{len(lrs)} learning rates for {len(groups)} param groups")
            for group, lr in zip(groups, lrs, strict=True):
                if self._impl.tensor_lr:
                    group["lr"].fill_(float(lr))  # in place: what torch asks of a tensor lr
                else:
                    group["lr"] = float(lr)
        for param, grad in zip(self._params, grads, strict=True):
            param.grad = self._tt.tensor(grad, self._variant)
        self.optimizer.step()

    def params(self) -> list[np.ndarray]:
        return [self._tt.array(p) for p in self._params]

    def state(self) -> OptimizerState | None:
        keys, array = self._backend.state_keys, self._tt.array
        held = [self.optimizer.state.get(p) for p in self._params]
        if not held or any(not s for s in held):
            return None  # torch-style optimizers create their state lazily, at the first step
        step = _read_step(held[0], self.optimizer.param_groups[0], keys["step"])

        def quantity(name):
            key = keys.get(name)
            if key is None or not all(_is_tensor(s.get(key)) for s in held):
                return None
            return [array(s[key]) for s in held]

        vmax = None
        if any(g.get("amsgrad") for g in self.optimizer.param_groups):
            key = keys.get("vmax")
            if key is not None and any(_is_tensor(s.get(key)) for s in held):
                # a group without amsgrad keeps no max: it stays at the initial 0
                vmax = [array(s[key]) if _is_tensor(s.get(key)) else np.zeros(p.shape)
                        for s, p in zip(held, self._params, strict=True)]
        return OptimizerState(step=step, m=quantity("m"), v=quantity("v"), vmax=vmax,
                              vmax_kind=self._backend.vmax_kind)


def _is_tensor(value) -> bool:
    return hasattr(value, "detach") and hasattr(value, "shape")


def _read_step(state: dict, group: dict, key: str) -> int | None:
    value = state.get(key, group.get(key))
    if value is None:
        return None
    if _is_tensor(value):
        value = value.item()
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class TorchOptimizerBackend:
    """A ``torch.optim.Optimizer`` subclass given as 'package.module:Class', by torch's
    conventions; subclasses fix the class, its variants and how its state is named."""

    #: where the state's step, m, v and v̂max are kept (the key of ``optimizer.state[p]``)
    state_keys: Mapping[str, str] = TORCH_STATE_KEYS
    vmax_kind = "raw"
    #: packages whose versions the probe reports, besides torch and the class's own
    packages: tuple[str, ...] = ()
    #: why resuming cannot work for this library, where the driver knows it in advance
    resume_refused: str | None = None

    def __init__(self, target: str, options: Mapping[str, str] | None = None, *,
                 name: str | None = None,
                 implementations: Mapping[str, Implementation] | None = None,
                 devices: Sequence[str] | None = None, install_hint: str | None = None,
                 description: str | None = None) -> None:
        module_name, _, attr = target.partition(":")
        if not module_name or not attr:
            raise ValueError(f"torch optimizer {target!r} must look like 'package.module:Class'")
        self.target = target
        self.name = name or f"{PREFIX}:{target}"
        self.label = f"{module_name}.{attr}"
        self.options = parse_options(options)
        self._implementations = dict(implementations or {attr.rpartition(".")[2]:
                                                         Implementation()})
        for vname, impl in self._implementations.items():
            clash = set(impl.keywords) & set(self.options)
            if clash:
                raise ValueError(f"option {', '.join(sorted(clash))} is fixed by variant "
                                 f"{vname!r} of {self.name}")
        self._devices = tuple(devices) if devices is not None else None
        self.install_hint = install_hint or (
            f"install the package that provides {module_name!r} (and torch: "
            f"{TORCH_INSTALL_HINT})")
        self._description = description
        self._info: BackendInfo | None = None
        self._refused: dict[Variant, str] = {}
        self._features: dict[str, str] = {}  # feature → why it is unsupported
        self._class = None

    # --- what the class is and takes ------------------------------------------------------

    def optimizer_class(self):
        if self._class is None:
            cls = _resolve(self.target)
            if not isinstance(cls, type):
                raise BackendUnavailable(f"{self.target} is not a class")
            self._class = cls
        return self._class

    def implementation(self, name: str) -> Implementation:
        if name not in self._implementations:
            raise ValueError(f"unknown {self.name} variant {name!r}; known: "
                             f"{', '.join(self._implementations)}")
        return self._implementations[name]

    def accepted(self) -> set[str] | None:
        """The torch hyperparameters the constructor takes (None: it takes ``**kwargs``)."""
        params = inspect.signature(self.optimizer_class()).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return None
        return {n for n in HYPERPARAMETERS if n in params}

    def _takes(self, name: str) -> bool:
        accepted = self.accepted()
        return accepted is None or name in accepted

    def group_keys(self, cfg: Hyperparameters, lr) -> dict[str, object]:
        """One group's hyperparameters as param-group keys (torch's names)."""
        keys: dict[str, object] = {"lr": lr, "betas": tuple(cfg.betas), "eps": cfg.eps}
        for name, value in (("weight_decay", cfg.weight_decay), ("amsgrad", cfg.amsgrad),
                            ("maximize", cfg.maximize)):
            if self._takes(name):
                keys[name] = value
        return keys

    def extra_group_keys(self, group: GroupSetup, variant: Variant) -> dict[str, object]:
        """Keys a library asks for in a param group beyond the hyperparameters (none here)."""
        return {}

    def keywords(self, variant: Variant, cfg: Hyperparameters, lr) -> dict[str, object]:
        """The constructor keywords: the hyperparameters, the variant's, the options."""
        keywords: dict[str, object] = {"lr": lr, "betas": tuple(cfg.betas), "eps": cfg.eps}
        for name, value in (("weight_decay", cfg.weight_decay), ("amsgrad", cfg.amsgrad),
                            ("maximize", cfg.maximize)):
            if self._takes(name):
                keywords[name] = value
        keywords.update(self.implementation(variant.name).keywords)
        keywords.update(self.options)
        return keywords

    def _missing(self, name: str) -> str:
        return f"{self.label}'s constructor has no {name!r} keyword"

    def check_case(self, problem: CaseSetup) -> None:
        """UnsupportedFeature for what the case needs and the class cannot be given."""
        for gi, group in enumerate(problem.groups):
            cfg = group.config
            for feature, needed in (("weight_decay", cfg.weight_decay != 0),
                                    ("amsgrad", cfg.amsgrad), ("maximize", cfg.maximize)):
                if not needed:
                    continue
                if not self._takes(feature):
                    raise UnsupportedFeature(f"group {gi} needs {feature}: "
                                             f"{self._missing(feature)}")
                if feature in self._features:
                    raise UnsupportedFeature(f"group {gi} needs {feature}: "
                                             f"{self._features[feature]}")
        if problem.initial_state is not None and "resume" in self._features:
            raise UnsupportedFeature(f"resume: {self._features['resume']}")

    # --- state ----------------------------------------------------------------------------

    def state_layout(self, tt: _Torch, problem: CaseSetup, variant: Variant):
        """The library's state after one step of a twin optimizer on this case: per param,
        key → a template (the value, kept only for the step and for None); the group's step
        where the library keeps it there. UnsupportedFeature where the driver cannot fill it."""
        twin = TorchOptimizerSession(self, tt, CaseSetup(problem.groups, problem.grads), variant)
        twin.step([np.zeros(p.shape) for p in problem.params])
        keys = self.state_keys
        known = {keys.get(name) for name in ("m", "v", "vmax", "step")} - {None}
        layout = []
        group_step = None
        for param in twin._params:
            state = twin.optimizer.state.get(param, {})
            unknown = sorted(k for k, v in state.items() if k not in known and v is not None)
            if unknown or keys["m"] not in state or keys["v"] not in state:
                raise UnsupportedFeature(
                    f"cannot resume {self.label}: its state holds "
                    f"{', '.join(sorted(state)) or 'nothing'} per parameter; the driver fills "
                    f"only {', '.join(sorted(known))}")
            layout.append(state)
        if not layout or keys["step"] not in layout[0]:
            group_step = twin.optimizer.param_groups[0].get(keys["step"])
            if group_step is None:
                raise UnsupportedFeature(f"cannot resume {self.label}: it keeps no "
                                         f"{keys['step']!r} in its state or param groups")
        return layout, group_step

    # --- the Backend protocol -------------------------------------------------------------

    def _tt(self) -> _Torch:
        return _Torch(_import_torch())

    def devices(self, torch) -> list[str]:
        found = ["cpu"]
        if torch.cuda.is_available():
            found.append("cuda")
        if self._devices is not None:
            found = [d for d in found if d in self._devices]
        return found

    def _try(self, tt: _Torch, variant: Variant, **features) -> str | None:
        """One step on a two-element parameter; the library's refusal as a reason, or None."""
        try:
            problem = _trial_problem(**features)
            session = TorchOptimizerSession(self, tt, problem, variant)
            session.step([g[0] for g in problem.grads], [problem.groups[0].config.lr])
            session.params()
            session.state()
        except UnsupportedFeature as exc:
            return str(exc)
        except Exception as exc:  # the library's own refusal is the reason a person reads
            return error_reason(exc)
        return None

    def versions(self, torch) -> dict[str, str]:
        versions = {"torch": torch.__version__}
        for module_name in (self.target.partition(":")[0], *self.packages):
            found = _package_version(module_name)
            if found is not None:
                versions.setdefault(found[0], found[1])
        return versions

    def prepare(self) -> str | None:
        """Anything the library must do once before its first step (build a kernel, say);
        why it cannot run here, or None."""
        return None

    def describe(self) -> str:
        if self._description:
            return self._description
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return (f"{self.target} driven by torch's conventions (param groups, lr, betas, eps"
                + ", weight_decay, amsgrad, maximize where its signature has them)"
                + (f"; options: {options}" if options else ""))

    def probe(self) -> BackendInfo:
        if self._info is not None:
            return self._info
        try:
            tt = self._tt()
            cls = self.optimizer_class()
        except BackendUnavailable as exc:
            return BackendInfo(name=self.name, installed=False,
                               install_hint=f"{exc}; {self.install_hint}", description=str(exc))
        torch = tt.torch
        devices = self.devices(torch)
        info = BackendInfo(name=self.name, installed=True, versions=self.versions(torch),
                           devices=devices, dtypes=list(DTYPES), install_hint=self.install_hint,
                           description=self.describe())
        if not issubclass(cls, torch.optim.Optimizer):
            info.unsupported.append(Unsupported(self.label, "not a torch.optim.Optimizer"))
            self._info = info
            return info
        missing = [n for n in REQUIRED if not self._takes(n)]
        if missing:
            info.unsupported.append(Unsupported(self.label, "; ".join(
                self._missing(n) for n in missing) + ": Adam's hyperparameters cannot be given"))
            self._info = info
            return info
        for feature in ("weight_decay", "amsgrad", "maximize"):
            if not self._takes(feature):
                info.unsupported.append(Unsupported(feature, self._missing(feature)))
        reason = self.prepare()
        if reason is not None:
            info.unsupported.append(Unsupported(self.label, reason))
            self._info = info
            return info
        self._probe_variants(tt, info, devices)
        self._probe_features(tt, info)
        self._info = info
        return info

    def _probe_variants(self, tt: _Torch, info: BackendInfo, devices: list[str]) -> None:
        for name in self._implementations:
            for device in devices:
                refused = {}
                for dtype in DTYPES:
                    variant = Variant(self.name, name, device, dtype)
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

    def _probe_features(self, tt: _Torch, info: BackendInfo) -> None:
        """amsgrad and maximize, where the signature takes them, tried for one step; resume
        checked against the state's layout (on the first variant that runs)."""
        if not info.variants:
            return
        variant = next((v for v in info.variants if v.dtype == "float32"), info.variants[0])
        for feature in ("amsgrad", "maximize"):
            if self._takes(feature):
                reason = self._try(tt, variant, **{feature: True})
                if reason is not None:
                    self._features[feature] = f"{self.label} refuses it: {reason}"
        try:
            if self.resume_refused:
                raise UnsupportedFeature(self.resume_refused)
            self.state_layout(tt, _trial_problem(), variant)
        except UnsupportedFeature as exc:
            self._features["resume"] = str(exc)
        except Exception as exc:
            self._features["resume"] = f"cannot resume {self.label}: {error_reason(exc)}"
        info.unsupported.extend(Unsupported(feature, reason)
                                for feature, reason in self._features.items())

    def _check_variant(self, variant: Variant) -> _Torch:
        tt = self._tt()
        if variant.backend != self.name:
            raise ValueError(f"variant {variant.id} belongs to backend {variant.backend!r}")
        self.implementation(variant.name)
        if variant.dtype not in tt.dtypes:
            raise ValueError(f"unknown dtype {variant.dtype!r} for {self.name}; known: "
                             f"{', '.join(DTYPES)}")
        devices = self.devices(tt.torch)
        if variant.device not in devices:
            raise UnsupportedFeature(f"{self.name} has no device {variant.device!r} here "
                                     f"(devices: {', '.join(devices)})")
        info = self.probe()
        if not info.installed:
            raise BackendUnavailable(info.description)
        if variant in self._refused:
            raise UnsupportedFeature(f"{self.label} refuses {variant.id}: "
                                     f"{self._refused[variant]}")
        if variant not in info.variants:
            reasons = "; ".join(f"{u.what}: {u.reason}" for u in info.unsupported)
            raise UnsupportedFeature(f"{self.name} cannot run {variant.id}: {reasons}")
        return tt

    def open(self, problem: CaseSetup, variant: Variant) -> TorchOptimizerSession:
        tt = self._check_variant(variant)
        self.check_case(problem)
        return TorchOptimizerSession(self, tt, problem, variant)

    def construct(self, variant: Variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False) -> None:
        tt = self._check_variant(variant)
        for feature, needed in (("weight_decay", weight_decay != 0), ("amsgrad", amsgrad),
                                ("maximize", maximize)):
            if needed and not self._takes(feature):
                raise UnsupportedFeature(self._missing(feature))
        impl = self.implementation(variant.name)
        param = tt.torch.nn.Parameter(tt.tensor(np.zeros(2), variant))
        keywords = {"lr": tt.lr_value(lr, variant, impl), "betas": betas, "eps": eps}
        for name, value in (("weight_decay", weight_decay), ("amsgrad", amsgrad),
                            ("maximize", maximize)):
            if self._takes(name):
                keywords[name] = value
        keywords.update(impl.keywords)
        keywords.update(self.options)
        self.optimizer_class()([param], **keywords)


def _trial_problem(amsgrad: bool = False, maximize: bool = False) -> CaseSetup:
    """Two elements, one step: enough for a library to accept or refuse a variant."""
    config = Hyperparameters(0.25, (0.9, 0.999), 1e-8, 0.0, amsgrad, maximize)
    return CaseSetup(groups=(GroupSetup(config, (np.array([1.0, -0.5]),)),),
                     grads=(np.array([[0.5, 0.25]]),))


def torch_optimizer_backend(target: str, options: Mapping[str, str] | None = None
                            ) -> TorchOptimizerBackend:
    """The backend for ``torch-optimizer:package.module:Class`` (``target`` without the
    prefix), with ``options`` as extra constructor keywords."""
    return TorchOptimizerBackend(target, options)

