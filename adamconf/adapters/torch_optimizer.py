"""Any ``torch.optim.Optimizer`` with torch's constructor conventions, driven step by step.

``torch-optimizer:package.module:Class`` judges ``Class(param_groups, lr=..., betas=...,
eps=..., weight_decay=..., [amsgrad=...], [maximize=...], **options)``: the one torch
driver, of which ``torch.optim.Adam`` (:mod:`.torch_backend`) and the named libraries
(torch-optimi, bitsandbytes, DeepSpeed) are instances with a fixed class and variants.

What the driver does, and nothing else — it never guesses; what it can probe, it probes:

- The signature (``inspect``) says which hyperparameters the class names. ``lr``, ``betas``
  and ``eps`` are needed. ``weight_decay``, ``amsgrad`` and ``maximize`` are passed where the
  signature names them (the case's value always: a default is not the case's), and through
  ``**kwargs`` only where a probe showed them accepted and effective. A case that needs one
  the class lacks is unsupported, with that reason: the driver never fakes a feature (it does
  not negate gradients for maximize).
- Each of those keywords is probed by construction *and* by effect, on a problem where the
  documented feature changes the trajectory: a keyword the library rejects (``TypeError:
  unknown keyword``) or refuses at its first step is unsupported with the library's error; one
  accepted without effect (``amsgrad=True`` giving the trajectory of ``amsgrad=False``) is
  reported *accepted and ignored*, and its cases are unsupported with that reason — never
  judged as the feature. A feature the class fixes is declared by the user (``--feature
  amsgrad=always``, ``maximize=never``); ``keyword`` declares a keyword the feature whatever
  its effect (a library documents it so: its cases are judged, and fail where it is ignored).
- Param groups are torch's: one dict per group with that group's hyperparameters; the
  constructor gets the first group's as its defaults. A library reads a group key only if
  it is one of its ``optimizer.defaults``; where groups differ in a hyperparameter whose key
  the library does not keep per group, the case is unsupported (its value would be ignored).
- The lr changes between steps through ``param_groups[i]['lr']``, as an LR scheduler does
  (or in place with ``fill_`` for a tensor lr).
- Whatever the library refuses (a dtype, a device) is found by trying a few steps at probe
  time and listed as unsupported and refused, with the library's own message.
- State is read where it follows torch's names (``exp_avg``, ``exp_avg_sq``,
  ``max_exp_avg_sq``, ``step``, in ``optimizer.state[p]``; the step may sit in the param
  group instead), and compared only where a probe shows what it holds (``state="auto"``):
  per variant, the probe's first steps must leave m = (1 − β1)·g under ``exp_avg`` and v under
  ``exp_avg_sq`` (not m̂ and v̂, as QHAdam and optimi keep), and the max under
  ``max_exp_avg_sq`` of raw v (torch's) or of v̂ (the documented one). What holds something
  else is not compared, θ is judged without it, and every report says so (a note).
  ``state="compare"`` compares the names whatever they hold; ``"ignore"`` judges θ alone.
  Resume goes through the library's own ``load_state_dict``, and only where its state is made
  of those names alone (a key the driver cannot fill from m, v and v̂max makes resume
  unsupported, saying which).

Options (``--option key=value``) are extra constructor keywords, checked against the
signature: one it does not name (where it takes no ``**kwargs``) is a usage error listing its
parameters. Values are Python literals where they parse (``ast.literal_eval``: ``True``, ``32``,
``1e-3``, ``'text'``); a word that is not one (``maybe``) is passed as a string only where the
parameter takes a string, else it is a usage error (a misspelt ``True`` never reaches the
library as a string).
"""

from __future__ import annotations

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
    Refusal,
    Unsupported,
    UnsupportedFeature,
    Variant,
    error_reason,
)
from .generic import (
    FEATURES,
    MEANING_WORDS,
    Signature,
    StatePlan,
    check_options,
    check_state_mode,
    expected_state,
    meaning,
    package_versions,
    parse_features,
    probe_problem,
    signature_of,
    state_note,
)
from .generic import parse_options as parse_keyword_options

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
    """``key=value`` options as constructor keywords: Python literals where they parse, else
    words checked against the signature at probe time (see the module docstring)."""
    return parse_keyword_options(options, HYPERPARAMETERS)


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

    def readings(self) -> dict[str, list[np.ndarray] | None]:
        """What the state holds under the names the driver reads (m, v, vmax), whatever it
        means: each a list of arrays, one per parameter, or None where a name is missing."""
        keys, array = self._backend.state_keys, self._tt.array
        held = [self.optimizer.state.get(p) or {} for p in self._params]
        out: dict[str, list[np.ndarray] | None] = {}
        for name in ("m", "v", "vmax"):
            key = keys.get(name)
            out[name] = ([array(s[key]) for s in held]
                         if key is not None and held and all(_is_tensor(s.get(key)) for s in held)
                         else None)
        return out

    def state(self) -> OptimizerState | None:
        plan = self._backend.state_plan(self._variant)
        if plan is None:
            return None  # state="ignore": θ alone is judged
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
        amsgrad = (self._backend.features.get("amsgrad") == "always"
                   or any(g.get("amsgrad") for g in self.optimizer.param_groups))
        if plan.vmax is not False and amsgrad:
            key = keys.get("vmax")
            if key is not None and any(_is_tensor(s.get(key)) for s in held):
                # a group without amsgrad keeps no max: it stays at the initial 0
                vmax = [array(s[key]) if _is_tensor(s.get(key)) else np.zeros(p.shape)
                        for s, p in zip(held, self._params, strict=True)]
        return OptimizerState(step=step, m=quantity("m") if plan.m else None,
                              v=quantity("v") if plan.v else None, vmax=vmax,
                              vmax_kind=plan.vmax_kind)


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


@dataclass(frozen=True)
class _Trial:
    """A few steps of the probe problem: θ after each step (flattened) and what the state
    held under the names the driver reads."""

    thetas: list[np.ndarray]
    readings: list[dict[str, list[np.ndarray] | None]]
    held: tuple = ()  # the keys of the state per parameter after the last step

    def reading(self, name: str) -> list[np.ndarray] | None:
        """One reading per step, every parameter flattened into one array; None if absent."""
        if any(r[name] is None for r in self.readings):
            return None
        return [np.concatenate([a.reshape(-1) for a in r[name]]) for r in self.readings]

    def same_trajectory(self, other: _Trial) -> bool:
        return len(self.thetas) == len(other.thetas) and all(
            np.array_equal(a, b, equal_nan=True)
            for a, b in zip(self.thetas, other.thetas, strict=True))


_SHOWN_ON = {"weight_decay": "0.5", "amsgrad": "True", "maximize": "True"}


class TorchOptimizerBackend:
    """A ``torch.optim.Optimizer`` subclass given as 'package.module:Class', by torch's
    conventions; subclasses fix the class, its variants and how its state is named."""

    #: where the state's step, m, v and v̂max are kept (the key of ``optimizer.state[p]``)
    state_keys: Mapping[str, str] = TORCH_STATE_KEYS
    #: what the max under ``state_keys['vmax']`` is by the library's convention (with
    #: ``state="compare"``; ``"auto"`` finds it by a probe)
    vmax_kind = "raw"
    #: packages whose versions the probe reports, besides torch and the class's own
    packages: tuple[str, ...] = ()
    #: why resuming cannot work for this library, where the driver knows it in advance
    resume_refused: str | None = None
    #: features an adapter declares for its library (as a user does with ``--feature``)
    declared: Mapping[str, str] = {}

    def __init__(self, target: str, options: Mapping[str, str] | None = None, *,
                 name: str | None = None,
                 implementations: Mapping[str, Implementation] | None = None,
                 devices: Sequence[str] | None = None, install_hint: str | None = None,
                 description: str | None = None, state: str = "auto",
                 features: Mapping[str, str] | None = None) -> None:
        module_name, _, attr = target.partition(":")
        if not module_name or not attr:
            raise ValueError(f"torch optimizer {target!r} must look like 'package.module:Class'")
        self.target = target
        self.name = name or f"{PREFIX}:{target}"
        self.label = f"{module_name}.{attr}"
        self.options = parse_options(options)
        self.state_mode = check_state_mode(state)
        self._user_features = parse_features(features)
        self.features: dict[str, str] = {**self.declared, **self._user_features}
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
        # feature → why a case that needs it is unsupported (on every variant; per variant)
        self._features: dict[str, str] = {}
        self._variant_features: dict[tuple[Variant, str], str] = {}
        self._kwargs_effective: set[str] = set()  # keywords passed through **kwargs (probed)
        self._trying: set[str] = set()  # a keyword passed through **kwargs while probed
        self._plans: dict[Variant, StatePlan] = {}
        self._notes: list[str] = []
        self._probe_variant: Variant | None = None  # where the features are probed
        self._feature_trials: dict[str, _Trial] = {}  # each feature's probe there
        self._ignored_but_declared: set[str] = set()  # declared keywords found without effect
        self._class = None
        self._signature: Signature | None = None

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

    def signature(self) -> Signature:
        """The constructor's keyword parameters; where Python cannot read them, none named and
        ``**kwargs`` (so that every keyword is probed)."""
        if self._signature is None:
            self._signature = (signature_of(self.optimizer_class())
                               or Signature({}, var_keyword=True))
        return self._signature

    def _takes(self, name: str) -> bool:
        """Whether the constructor can be handed this keyword at all (named, or **kwargs)."""
        signature = self.signature()
        return signature.names(name) or signature.var_keyword

    def _passes(self, feature: str) -> bool:
        """Whether the driver passes this feature's keyword: where the signature names it,
        and through ``**kwargs`` only where a probe found it effective (or it is declared the
        keyword)."""
        signature = self.signature()
        if feature in self._trying or signature.names(feature):
            return True
        return signature.var_keyword and (feature in self._kwargs_effective
                                          or self.features.get(feature) == "keyword")

    def _feature_keywords(self, cfg: Hyperparameters) -> dict[str, object]:
        return {name: value for name, value in (("weight_decay", cfg.weight_decay),
                                                 ("amsgrad", cfg.amsgrad),
                                                 ("maximize", cfg.maximize))
                if self._passes(name)}

    def group_keys(self, cfg: Hyperparameters, lr) -> dict[str, object]:
        """One group's hyperparameters as param-group keys (torch's names)."""
        return {"lr": lr, "betas": tuple(cfg.betas), "eps": cfg.eps,
                **self._feature_keywords(cfg)}

    def extra_group_keys(self, group: GroupSetup, variant: Variant) -> dict[str, object]:
        """Keys a library asks for in a param group beyond the hyperparameters (none here)."""
        return {}

    def keywords(self, variant: Variant, cfg: Hyperparameters, lr) -> dict[str, object]:
        """The constructor keywords: the hyperparameters, the variant's, the options."""
        keywords: dict[str, object] = {"lr": lr, "betas": tuple(cfg.betas), "eps": cfg.eps,
                                       **self._feature_keywords(cfg)}
        keywords.update(self.implementation(variant.name).keywords)
        keywords.update(self.options)
        return keywords

    def _missing(self, name: str) -> str:
        return f"{self.label}'s constructor has no {name!r} keyword"

    def _declared_how(self, feature: str) -> str:
        setting = self.features[feature]
        if feature in self._user_features:
            return f"declared: --feature {feature}={setting}"
        return f"declared by the {self.name} adapter: {feature}={setting}"

    def check_case(self, problem: CaseSetup, variant: Variant | None = None) -> None:
        """UnsupportedFeature for what the case needs and the class cannot be given (or
        cannot be judged on: a keyword it ignores, a feature declared fixed)."""
        for gi, group in enumerate(problem.groups):
            cfg = group.config
            for feature, needed in (("weight_decay", cfg.weight_decay != 0),
                                    ("amsgrad", cfg.amsgrad), ("maximize", cfg.maximize)):
                setting = self.features.get(feature)
                if setting == "always" and not needed:
                    raise UnsupportedFeature(
                        f"group {gi} runs without {feature}, and {self.label} always has it "
                        f"({self._declared_how(feature)})")
                if not needed or setting == "always":
                    continue
                if setting == "never":
                    raise UnsupportedFeature(f"group {gi} needs {feature}, and {self.label} "
                                             f"never has it ({self._declared_how(feature)})")
                reason = (self._variant_features.get((variant, feature))
                          or self._features.get(feature))
                if reason is None and not self._passes(feature):
                    reason = self._missing(feature)
                if reason is not None:
                    raise UnsupportedFeature(f"group {gi} needs {feature}: {reason}")
        if problem.initial_state is not None:
            if "resume" in self._features:
                raise UnsupportedFeature(f"resume: {self._features['resume']}")
            plan = self.state_plan(variant) if variant is not None else None
            if self.state_mode == "ignore":
                raise UnsupportedFeature("resume: with state='ignore' the driver does not "
                                         "know what the library's state holds, so it cannot "
                                         "fill it from m, v and v̂max")
            if plan is not None and not (plan.m and plan.v):
                raise UnsupportedFeature(f"resume: {'; '.join(plan.why_not)}; the driver fills "
                                         "the state from m, v and v̂max only")

    # --- state ----------------------------------------------------------------------------

    def state_plan(self, variant: Variant | None) -> StatePlan | None:
        """Which readings of this variant's state are compared (None: none, θ alone)."""
        if self.state_mode == "ignore":
            return None
        return self._plans.get(variant) or StatePlan(vmax_kind=self.vmax_kind)

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
            # a library may keep keys that are not strings (an int): named by repr, sorted so
            unknown = sorted((k for k, v in state.items() if k not in known and v is not None),
                             key=repr)
            if unknown or keys["m"] not in state or keys["v"] not in state:
                held = ", ".join(sorted(map(_key_name, state), key=str)) or "nothing"
                raise UnsupportedFeature(
                    f"cannot resume {self.label}: its state holds {held} per parameter; the "
                    f"driver fills only {', '.join(sorted(known))}")
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

    def _trial(self, tt: _Torch, variant: Variant, problem: CaseSetup
               ) -> tuple[_Trial | None, str | None]:
        """The problem's steps on the variant: θ and the state's readings after each, or the
        library's refusal as a reason."""
        thetas, readings = [], []
        try:
            session = TorchOptimizerSession(self, tt, problem, variant)
            for k in range(problem.steps):
                session.step([g[k] for g in problem.grads],
                             [group.lr_at(k) for group in problem.groups])
                thetas.append(np.concatenate([p.reshape(-1) for p in session.params()]))
                readings.append(session.readings())
            session.state()
            held = tuple(k for p in session._params for k in (session.optimizer.state.get(p) or {}))
        except UnsupportedFeature as exc:
            return None, str(exc)
        except Exception as exc:  # the library's own refusal is the reason a person reads
            return None, error_reason(exc)
        return _Trial(thetas, readings, held), None

    def versions(self, torch) -> dict[str, str]:
        versions = {"torch": torch.__version__}
        # the class's own module too: a class reached through a shim shows whose it is
        modules = (self.target.partition(":")[0], getattr(self._class, "__module__", "") or "",
                   *self.packages)
        for name, version in package_versions(m for m in modules if m).items():
            versions.setdefault(name, version)
        return versions

    def prepare(self) -> str | None:
        """Anything the library must do once before its first step (load a kernel, say);
        why it cannot run here, or None."""
        return None

    def describe(self) -> str:
        if self._description:
            return self._description
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return (f"{self.target} driven by torch's conventions (param groups, lr, betas, eps"
                + ", weight_decay, amsgrad, maximize where its signature has them)"
                + (f"; options: {options}" if options else ""))

    def _candidates(self, devices: Sequence[str]) -> list[Variant]:
        return [Variant(self.name, name, device, dtype)
                for name in self._implementations for device in devices for dtype in DTYPES]

    def _refuse_all(self, info: BackendInfo, devices: Sequence[str], reason: str) -> BackendInfo:
        """Every variant refused for one reason (the class cannot be judged here at all)."""
        info.unsupported.append(Unsupported(self.label, reason))
        info.refused = [Refusal(v, reason) for v in self._candidates(devices)]
        self._refused.update((r.variant, reason) for r in info.refused)
        self._info = info
        return info

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
            return self._refuse_all(info, devices, "not a torch.optim.Optimizer")
        signature = self.signature()
        check_options(self.options, signature, self.label)  # a usage error: raised, not listed
        missing = [n for n in REQUIRED if not self._takes(n)]
        if missing:
            return self._refuse_all(info, devices, "; ".join(
                self._missing(n) for n in missing) + ": Adam's hyperparameters cannot be given")
        for feature in FEATURES:
            if feature not in self.features and not self._takes(feature):
                self._features[feature] = self._missing(feature)
                info.unsupported.append(Unsupported(feature, self._missing(feature)))
        reason = self.prepare()
        if reason is not None:
            return self._refuse_all(info, devices, reason)
        trials = self._probe_variants(tt, info, devices)
        self._probe_features(tt, info, trials)
        self._plan_state(tt, trials)
        info.notes = self._declared_notes() + self._notes
        self._info = info
        return info

    def _probe_variants(self, tt: _Torch, info: BackendInfo, devices: list[str]
                        ) -> dict[Variant, _Trial]:
        trials: dict[Variant, _Trial] = {}
        problem = probe_problem()
        for name in self._implementations:
            for device in devices:
                refused = {}
                for dtype in DTYPES:
                    variant = Variant(self.name, name, device, dtype)
                    trial, reason = self._trial(tt, variant, problem)
                    if trial is not None:
                        info.variants.append(variant)
                        trials[variant] = trial
                    else:
                        refused[dtype] = reason
                        self._refused[variant] = reason
                        info.refused.append(Refusal(variant, reason))
                if refused and len(set(refused.values())) == 1 and len(refused) == len(DTYPES):
                    info.unsupported.append(Unsupported(f"{name}/{device}",
                                                        next(iter(refused.values()))))
                else:
                    info.unsupported.extend(Unsupported(f"{name}/{device}/{dtype}", reason)
                                            for dtype, reason in refused.items())
        return trials

    def _probe_features(self, tt: _Torch, info: BackendInfo, trials: dict[Variant, _Trial]
                        ) -> None:
        """Each feature keyword the constructor may take, by construction and by effect (on
        the first float32 variant that runs); resume checked against the state's layout."""
        if not trials:
            return
        variant = next((v for v in trials if v.dtype == "float32"), next(iter(trials)))
        self._probe_variant = variant
        base = trials[variant]
        for feature in FEATURES:
            setting = self.features.get(feature)
            if setting in ("always", "never") or feature in self._features:
                continue  # declared fixed (noted), or the constructor cannot take it
            through_kwargs = not self.signature().names(feature)
            self._trying = {feature} if through_kwargs else set()
            try:
                trial, reason = self._trial(tt, variant, probe_problem(**{feature: True}))
            finally:
                self._trying = set()
            shown = f"{feature}={_SHOWN_ON[feature]}"
            if trial is None:
                how = "rejects" if through_kwargs else "refuses"
                self._features[feature] = f"{self.label} {how} {shown}: {reason}"
                info.unsupported.append(Unsupported(feature, self._features[feature]))
                continue
            if trial.same_trajectory(base):
                ignored = (f"{self.label} accepts {shown} and ignores it: on a probe where the "
                           f"documented {feature} changes the update, θ is the same as without "
                           "it")
                if setting == "keyword":
                    self._ignored_but_declared.add(feature)
                    self._notes.append(f"{feature}: {ignored}; its cases are judged as the "
                                       f"feature all the same ({self._declared_how(feature)})")
                else:
                    self._features[feature] = f"accepted and ignored: {ignored}"
                    info.unsupported.append(Unsupported(feature, self._features[feature]))
                continue
            self._feature_trials[feature] = trial
            if through_kwargs:
                self._kwargs_effective.add(feature)
        try:
            if self.resume_refused:
                raise UnsupportedFeature(self.resume_refused)
            self.state_layout(tt, probe_problem(steps=1), variant)
        except UnsupportedFeature as exc:
            self._features["resume"] = str(exc)
        except Exception as exc:
            self._features["resume"] = f"cannot resume {self.label}: {error_reason(exc)}"
        if "resume" in self._features:
            info.unsupported.append(Unsupported("resume", self._features["resume"]))

    def _plan_state(self, tt: _Torch, trials: dict[Variant, _Trial]) -> None:
        """Per variant, which readings of the state mean what the reference holds: m and v
        from the probe's steps, the max from a step with amsgrad (where it runs)."""
        if self.state_mode == "ignore":
            self._notes.append("state not compared (state='ignore'): θ alone is judged")
            return
        if self.state_mode == "compare":
            self._notes.append(f"state compared by its names whatever it holds "
                               f"(state='compare'): {', '.join(self.state_keys.values())}, the "
                               f"max taken as the max of {self.vmax_kind} v")
            return
        keys = self.state_keys
        want = expected_state(maximize=self.features.get("maximize") == "always")
        amsgrad = self.features.get("amsgrad")
        with_max = amsgrad == "always" or (amsgrad != "never" and "amsgrad" not in self._features
                                           and self._passes("amsgrad"))
        probed = self._feature_trials.get("amsgrad")
        absent = [keys[n] for n in ("m", "v") if keys.get(n)
                  and any(t.reading(n) is None for t in trials.values())]
        if absent and trials:
            held = sorted({_key_name(k) for t in trials.values() for k in t.held}, key=str)
            self._notes.append(f"state not read: {self.label} keeps no {' and no '.join(absent)} "
                               f"(its state per parameter: {', '.join(held) or 'nothing'}); "
                               f"{'θ alone is' if len(absent) == 2 else 'θ and the rest are'} "
                               "judged")
        for variant, trial in trials.items():
            why, compare = [], {}
            for name in ("m", "v"):
                found = meaning(trial.reading(name), want[name], want[f"{name}_hat"])
                compare[name] = found in (None, "documented")
                if trial.reading(name) is None:
                    continue  # not under the name: reported absent
                if found == "bias-corrected":
                    why.append(f"{keys[name]} holds {MEANING_WORDS[name][1]}, not {name}")
                elif found is None:
                    compare[name] = False
                    why.append(_neither(keys[name], name, trial.reading(name), want[name]))
            vmax, vmax_kind = None, self.vmax_kind
            if with_max and keys.get("vmax"):
                if amsgrad == "always":
                    ams = trial
                elif probed is not None and variant == self._probe_variant:
                    ams = probed
                else:
                    ams, reason = self._trial(tt, variant, probe_problem(amsgrad=True))
                    if ams is None:
                        self._variant_features[(variant, "amsgrad")] = (
                            f"{self.label} refuses amsgrad=True on {variant.id}: {reason}")
                got = ams.reading("vmax") if ams is not None else None
                if got is not None:
                    found = meaning(got, want["vmax_raw"], want["vmax_hat"])
                    if found is None:
                        vmax = False
                        why.append(_neither(keys["vmax"], "vmax", got, want["vmax_raw"]))
                    else:
                        vmax, vmax_kind = True, "raw" if found == "documented" else "hat"
            self._plans[variant] = StatePlan(m=compare["m"], v=compare["v"], vmax=vmax,
                                             vmax_kind=vmax_kind, why_not=tuple(why))
        self._notes.extend(state_note({v.id: p for v, p in self._plans.items()}, len(trials)))

    def _declared_notes(self) -> list[str]:
        words = {"always": "always on: cases without it are unsupported",
                 "never": "never on: cases with it are unsupported",
                 "keyword": "the keyword of that name: passed as each case says and judged as "
                            "the feature"}
        return [f"{feature} {words[setting]} ({self._declared_how(feature)})"
                for feature, setting in self.features.items()
                if feature not in self._ignored_but_declared]  # its own note says it

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
        self.check_case(problem, variant)
        return TorchOptimizerSession(self, tt, problem, variant)

    def construct(self, variant: Variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False) -> None:
        tt = self._check_variant(variant)
        for feature, needed in (("weight_decay", weight_decay != 0), ("amsgrad", amsgrad),
                                ("maximize", maximize)):
            if needed and not self._passes(feature):
                raise UnsupportedFeature(self._features.get(feature) or self._missing(feature))
        impl = self.implementation(variant.name)
        param = tt.torch.nn.Parameter(tt.tensor(np.zeros(2), variant))
        cfg = Hyperparameters(lr, betas, eps, weight_decay, amsgrad, maximize)
        keywords = {"lr": tt.lr_value(lr, variant, impl), "betas": betas, "eps": eps,
                    **self._feature_keywords(cfg)}
        keywords.update(impl.keywords)
        keywords.update(self.options)
        self.optimizer_class()([param], **keywords)


def _key_name(key) -> str:
    return key if isinstance(key, str) else repr(key)


def _neither(key: str, name: str, got: list[np.ndarray], documented: list[np.ndarray]) -> str:
    words = MEANING_WORDS[name]
    return (f"{key} holds neither {words[0]} nor {words[1]} (after the probe's first step "
            f"{np.array2string(got[0], precision=6)}, where {words[0]} is "
            f"{np.array2string(documented[0], precision=6)})")


def torch_optimizer_backend(target: str, options: Mapping[str, str] | None = None, *,
                            state: str = "auto", features: Mapping[str, str] | None = None
                            ) -> TorchOptimizerBackend:
    """The backend for ``torch-optimizer:package.module:Class`` (``target`` without the
    prefix), with ``options`` as extra constructor keywords, ``state`` how its state is
    compared (auto, compare, ignore) and ``features`` what its class fixes
    (``{'amsgrad': 'always'}``)."""
    return TorchOptimizerBackend(target, options, state=state, features=features)
