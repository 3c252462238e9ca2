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
    Unsupported,
    UnsupportedFeature,
    Variant,
    error_reason,
)
from .features import FEATURES, asked, group_asks
from .generic import GenericDriver, Signature, Trial, probe_problem, run_trial, signature_of
from .generic import parse_options as parse_keyword_options
from .install import INSTALL_HINTS, not_installed

__all__ = ["TorchOptimizerBackend", "Implementation", "TORCH_STATE_KEYS",
           "torch_optimizer_backend", "parse_options"]

PREFIX = "torch-optimizer"
TORCH_INSTALL_HINT = INSTALL_HINTS["torch"]
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
        raise not_installed("torch", exc, "torch") from None
    return torch


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
            vmax = (init.raw_vmax(index, beta2) if backend.vmax_kind == "raw"
                    else np.asarray(init.vmax[index], dtype=np.float64))
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

    def held(self) -> tuple:
        """The keys of the state per parameter, as the library keeps them."""
        return tuple(k for p in self._params for k in (self.optimizer.state.get(p) or {}))

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


class TorchOptimizerBackend(GenericDriver):
    """A ``torch.optim.Optimizer`` subclass given as 'package.module:Class', by torch's
    conventions; subclasses fix the class, its variants and how its state is named."""

    #: where the state's step, m, v and v̂max are kept (the key of ``optimizer.state[p]``)
    state_keys: Mapping[str, str] = TORCH_STATE_KEYS
    #: what the max under ``state_keys['vmax']`` is by the library's convention (with
    #: ``state="compare"``; ``"auto"`` finds it by a probe)
    vmax_kind = "raw"

    @property
    def state_names(self) -> Mapping[str, str]:
        return self.state_keys

    @property
    def install_hint(self) -> str:
        return self._install_hint
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
        super().__init__(target, options, reserved=HYPERPARAMETERS, name=name, state=state,
                         features=features, declared=self.declared, prefix=PREFIX)
        module_name, _, attr = target.partition(":")
        self._implementations = dict(implementations or {attr.rpartition(".")[2]:
                                                         Implementation()})
        for vname, impl in self._implementations.items():
            clash = set(impl.keywords) & set(self.options)
            if clash:
                raise ValueError(f"option {', '.join(sorted(clash))} is fixed by variant "
                                 f"{vname!r} of {self.name}")
        self._devices = tuple(devices) if devices is not None else None
        self._install_hint = install_hint or INSTALL_HINTS.get(self.name) or (
            f"install the package that provides {module_name!r} (and torch: "
            f"{TORCH_INSTALL_HINT})")
        self._description = description
        # feature → why a case that needs it is unsupported, on one variant (every variant's
        # are GenericDriver's)
        self._variant_features: dict[tuple[Variant, str], str] = {}
        self._kwargs_effective: set[str] = set()  # keywords passed through **kwargs (probed)
        self._trying: set[str] = set()  # a keyword passed through **kwargs while probed
        self._probe_variant: Variant | None = None  # where the features are probed
        self._feature_trials: dict[str, Trial] = {}  # each feature's probe there
        self._class = None
        self._signature: Signature | None = None

    # --- what the class is and takes ------------------------------------------------------

    def optimizer_class(self):
        if self._class is None:
            cls = self.resolved()
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
        return {name: getattr(cfg, name) for name in FEATURES if self._passes(name)}

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

    def check_case(self, problem: CaseSetup, variant: Variant | None = None) -> None:
        """UnsupportedFeature for what the case needs and the class cannot be given (or
        cannot be judged on: a keyword it ignores, a feature declared fixed)."""
        for gi, group in enumerate(problem.groups):
            for feature, needed in group_asks(group.config).items():
                if not self.check_declared(gi, feature, needed):
                    continue
                reason = (self._variant_features.get((variant, feature))
                          or self._features.get(feature))
                if reason is None and not self._passes(feature):
                    reason = self._missing(feature)
                if reason is not None:
                    raise UnsupportedFeature(f"group {gi} needs {feature}: {reason}")
        if problem.initial_state is not None:
            if "resume" in self._features:
                raise UnsupportedFeature(f"resume: {self._features['resume']}")
            self.check_resume(variant)

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
               ) -> tuple[Trial | None, str | None]:
        """The problem's steps on the variant: θ and the state's readings after each, or the
        library's refusal as a reason."""
        return run_trial(lambda p: TorchOptimizerSession(self, tt, p, variant), problem,
                         held=TorchOptimizerSession.held)

    def versions(self, torch) -> dict[str, str]:
        return self.add_versions({"torch": torch.__version__}, self._class, *self.packages)

    def prepare(self) -> str | None:
        """Anything the library must do once before its first step (load a kernel, say);
        why it cannot run here, or None."""
        return None

    def description(self) -> str:
        if self._description:
            return self._description
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return (f"{self.target} driven by torch's conventions (param groups, lr, betas, eps"
                + ", weight_decay, amsgrad, maximize where its signature has them)"
                + (f"; options: {options}" if options else ""))

    def candidates(self, devices: Sequence[str]) -> list[Variant]:
        return [Variant(self.name, name, device, dtype)
                for name in self._implementations for device in devices for dtype in self.dtypes]

    def describe(self) -> BackendInfo:
        tt = self._tt()
        cls = self.optimizer_class()
        torch = tt.torch
        devices = self.devices(torch)
        info = BackendInfo(name=self.name, installed=True, versions=self.versions(torch),
                           devices=devices, dtypes=list(self.dtypes),
                           install_hint=self.install_hint, description=self.description())
        if not issubclass(cls, torch.optim.Optimizer):
            return self.refuse_candidates(info, devices, "not a torch.optim.Optimizer")
        signature = self.signature()
        self.check_options_against(signature)
        missing = [n for n in REQUIRED if not self._takes(n)]
        if missing:
            return self.refuse_candidates(info, devices, "; ".join(
                self._missing(n) for n in missing) + ": Adam's hyperparameters cannot be given")
        for feature in FEATURES:
            if feature not in self.features and not self._takes(feature):
                self._features[feature] = self._missing(feature)
                info.unsupported.append(Unsupported(feature, self._missing(feature)))
        reason = self.prepare()
        if reason is not None:
            return self.refuse_candidates(info, devices, reason)
        trials = self._probe_variants(tt, info, devices)
        self._probe_features(tt, info, trials)
        self._plan_state(tt, trials)
        info.notes = self.declared_notes() + self._notes
        return info

    def _probe_variants(self, tt: _Torch, info: BackendInfo, devices: list[str]
                        ) -> dict[Variant, Trial]:
        """Each variant stepped on the probe problem; its trial where it runs."""
        trials: dict[Variant, Trial] = {}
        problem = probe_problem()

        def refusal(variant: Variant) -> str | None:
            trial, reason = self._trial(tt, variant, problem)
            if trial is not None:
                trials[variant] = trial
            return reason

        self.try_variants(info, self.candidates(devices), refusal, by_device=True, listed=True)
        return trials

    def _probe_features(self, tt: _Torch, info: BackendInfo, trials: dict[Variant, Trial]
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
            if not self.judge_feature(info, feature, trial, reason, base,
                                      refused="rejects" if through_kwargs else "refuses"):
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

    def _plan_state(self, tt: _Torch, trials: dict[Variant, Trial]) -> None:
        """Per variant, which readings of the state mean what the reference holds: m and v
        from the probe's steps, the max from a step with amsgrad (where it runs)."""
        if not self.plans_state(f"{', '.join(self.state_keys.values())}, the max taken as the "
                                f"max of {self.vmax_kind} v"):
            return
        keys = self.state_keys
        want = self.expected()
        amsgrad = self.features.get("amsgrad")
        with_max = self.probes_max() and keys.get("vmax")
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
            ams = None
            if with_max:
                if amsgrad == "always":
                    ams = trial
                elif probed is not None and variant == self._probe_variant:
                    ams = probed
                else:
                    ams, reason = self._trial(tt, variant, probe_problem(amsgrad=True))
                    if ams is None:
                        self._variant_features[(variant, "amsgrad")] = (
                            f"{self.label} refuses amsgrad=True on {variant.id}: {reason}")
            self.plan(variant, trial, ams, want)
        self.note_plans(len(trials))

    def _neither(self, name: str, got: list[np.ndarray], documented: list[np.ndarray]) -> str:
        return (f"{super()._neither(name, got, documented)} (after the probe's first step "
                f"{np.array2string(got[0], precision=6)}, where {self._words(name)[0]} is "
                f"{np.array2string(documented[0], precision=6)})")

    def framework_for(self, variant: Variant) -> _Torch:
        tt = self._tt()
        if variant.backend != self.name:
            raise ValueError(f"variant {variant.id} belongs to backend {variant.backend!r}")
        self.implementation(variant.name)
        if variant.dtype not in tt.dtypes:
            raise ValueError(f"unknown dtype {variant.dtype!r} for {self.name}; known: "
                             f"{', '.join(self.dtypes)}")
        devices = self.devices(tt.torch)
        if variant.device not in devices:
            raise UnsupportedFeature(f"{self.name} has no device {variant.device!r} here "
                                     f"(devices: {', '.join(devices)})")
        info = self.probed()
        self.check_refused(variant, self.label)
        self.check_listed(info, variant)
        return tt

    def session(self, tt: _Torch, problem: CaseSetup, variant: Variant) -> TorchOptimizerSession:
        return TorchOptimizerSession(self, tt, problem, variant)

    def construct(self, variant: Variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False) -> None:
        tt = self.framework_for(variant)
        for feature, needed in asked(weight_decay, amsgrad, maximize).items():
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


def torch_optimizer_backend(target: str, options: Mapping[str, str] | None = None, *,
                            state: str = "auto", features: Mapping[str, str] | None = None
                            ) -> TorchOptimizerBackend:
    """The backend for ``torch-optimizer:package.module:Class`` (``target`` without the
    prefix), with ``options`` as extra constructor keywords, ``state`` how its state is
    compared (auto, compare, ignore) and ``features`` what its class fixes
    (``{'amsgrad': 'always'}``)."""
    return TorchOptimizerBackend(target, options, state=state, features=features)
