"""Keras 3: ``keras.optimizers.Adam`` on each Keras backend (tensorflow, jax, torch).

Keras picks its backend once per process, from ``KERAS_BACKEND``, when ``keras`` is first
imported. So each Keras backend is its own adamconf backend, and each runs in its own worker
process (the runner starts one per backend): ``keras-tensorflow``, ``keras-jax``,
``keras-torch`` set ``KERAS_BACKEND`` in that worker before importing keras; ``keras`` runs
whichever backend ``KERAS_BACKEND`` (or Keras's own default, tensorflow) selects. A
process that already imported keras with another backend is told so (BackendUnavailable).
``adamconf run -b keras-tensorflow -b keras-jax -b keras-torch`` runs all three.

For keras-jax the adapter turns on ``jax_enable_x64`` before keras is imported (float64
variables are float32 otherwise); the switch is process-wide, as in the jax adapter.

Variants (``Variant.name``) × device ``cpu`` × dtype (float64, float32, float16, bfloat16):

- ``Adam`` — ``learning_rate`` a float; a changed lr is ``optimizer.learning_rate.assign``
  (Keras keeps it in a ``floatx`` Variable). The case's weight decay is Keras's own
  ``weight_decay`` argument, which is *decoupled* (see below), judged as what it is.
- ``Adam-schedule`` — ``learning_rate`` a ``keras.optimizers.schedules.PiecewiseConstantDecay``
  built from the case's lr per step (Python floats: the schedule's values are ``floatx``
  tensors); weight decay as in ``Adam``.
- ``Adam-l2-regularizer`` — no Keras weight decay: L2 goes into the loss the way a Keras
  user writes it, ``keras.regularizers.L2(λ/2)``, and the gradient is the backend's own
  autodiff (``tf.GradientTape``, ``jax.grad``, ``torch.autograd.grad``) of
  ``Σ(θ·g) + L2(λ/2)(θ)``. Keras's L2 is ``l2·Σθ²`` (gradient ``2·l2·θ``), so the documented
  ``g + λθ`` is ``L2(λ/2)``; a user who writes ``L2(λ)`` gets 2λθ. The case's gradient g
  enters as the gradient of Σ(θ·g), which is exactly g.

One Keras optimizer per param group (Keras has no groups; a user with different settings
per set of variables makes one optimizer each); all are stepped once per step. amsgrad is
the ``amsgrad`` flag. maximize does not exist in Keras and is refused (the adapter does not
negate gradients to fake it).

dtypes: the parameters are ``keras.Variable``s of the variant's dtype. float64 variants run
with ``keras.config.set_floatx("float64")`` (what a float64 Keras user sets; with the
default float32, the lr Variable, the schedule's values and — on the tensorflow backend —
the Python betas converted to tensors are float32). The other variants keep Keras's default
floatx, float32.

What Keras computes (``keras/src/optimizers/adam.py`` ``update_step``; on torch
``keras/src/backend/torch/optimizers/torch_adam.py``, the same formula with ``torch._foreach``
ops), in the variable's dtype D::

    lr, β1^t, β2^t: cast to D (β^t = power(cast(β, D), cast(iterations + 1, D)))
    α ← lr·√(1 − β2^t)/(1 − β1^t)
    m ← m + (g − m)·(1 − β1)        v ← v + (g² − v)·(1 − β2)    (torch: m·β1 + g·(1 − β1))
    amsgrad: v̂ ← max(v̂, v); v ← v̂
    θ ← θ − m·α/(√v + ε)

ε is added to √v, not the bias-corrected √v̂: ``eps-hat``; amsgrad keeps the max of raw v:
``ams-rawmax+eps-hat`` (``vmax_kind="raw"``). The betas, ε, lr and β^t are all in D, so in
bfloat16 β2 = 0.999 is 1.0, and in float16 iterations + 1 > 65504 is ∞.

Keras's weight decay (``base_optimizer._apply_weight_decay``, before the update, with the
*current* lr): θ ← θ − θ·λ·γ on jax and tensorflow; θ ← θ·(1 − λ·γ) on torch
(``torch_optimizer._apply_weight_decay``, ``1 − λ·lr`` computed as a float32 tensor). Both
are the decoupled form θ·(1 − γλ) (dialect ``wd-decoupled``), here combined with
``eps-hat``.

State: ``optimizer.variables``: ``iterations`` (the step), ``<param>_momentum``,
``<param>_velocity``, ``<param>_velocity_hat``. Resume: ``iterations.assign(step)`` and the
moments assigned (v̂ raw: the case's v̂max·(1 − β2^step) in binary64, rounded to D).
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Sequence

import numpy as np

from .base import (
    BackendInfo,
    BackendUnavailable,
    CaseSetup,
    GroupSetup,
    OptimizerState,
    Unsupported,
    UnsupportedFeature,
    Variant,
)
from .framework import FrameworkBackend, check_step, one_step_refusal, trial_problem
from .install import INSTALL_HINTS

__all__ = ["KerasBackend", "KerasTensorFlowBackend", "KerasJaxBackend", "KerasTorchBackend",
           "VARIANT_NAMES", "KERAS_BACKENDS"]

KERAS_BACKENDS = ("tensorflow", "jax", "torch")
ADAM = "Adam"
SCHEDULE = "Adam-schedule"
L2_REGULARIZER = "Adam-l2-regularizer"
VARIANT_NAMES = (ADAM, SCHEDULE, L2_REGULARIZER)
INT32_MAX = 2**31 - 1

_session_ids = itertools.count()


def _import_keras(wanted: str | None):
    """keras, imported with the wanted backend (None: whatever KERAS_BACKEND selects)."""
    if "keras" in sys.modules:
        keras = sys.modules["keras"]
        have = keras.backend.backend()
        if wanted is not None and have != wanted:
            raise BackendUnavailable(f"keras is already imported with the {have!r} backend in "
                                     f"this process; Keras picks its backend once per process "
                                     f"(run keras-{wanted} in a process of its own)")
        return keras
    if wanted is not None:
        os.environ["KERAS_BACKEND"] = wanted
    chosen = os.environ.get("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        if chosen == "jax":
            import jax

            # process-wide, and must precede any array: see the module docstring
            jax.config.update("jax_enable_x64", True)
        import keras
    except ImportError as exc:
        raise BackendUnavailable(f"keras with the {chosen!r} backend cannot be imported ({exc}); "
                                 f"{INSTALL_HINTS['keras']}") from None
    return keras


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


class _Keras:
    """keras, its backend's name, and conversions between the seam's arrays and tensors."""

    def __init__(self, wanted: str | None) -> None:
        self.keras = _import_keras(wanted)
        self.ops = self.keras.ops
        self.backend = self.keras.backend.backend()

    def use_floatx(self, dtype: str) -> None:
        self.keras.config.set_floatx("float64" if dtype == "float64" else "float32")

    def tensor(self, values, dtype: str):
        # float64 → float32 → dtype is exact: the seam carries values representable in dtype
        wide = np.float64 if dtype == "float64" else np.float32
        host = np.asarray(values, dtype=np.float64).astype(wide)
        return self.ops.cast(self.ops.convert_to_tensor(host), dtype)

    def rounded(self, values, dtype: str):
        """Binary64 values rounded to dtype by the backend (for state that is not exact)."""
        host = np.asarray(values, dtype=np.float64)
        return self.ops.cast(self.ops.convert_to_tensor(host), dtype)

    def array(self, value) -> np.ndarray:
        # to the host in the value's own dtype, widened there (exact; a cast on the device
        # is an op dispatch per read, most of a step's time)
        return np.array(self.ops.convert_to_numpy(value), dtype=np.float64)

    def l2_gradient(self, variable, grad, regularizer):
        """The backend's autodiff of Σ(θ·g) + regularizer(θ) at θ = the variable's value."""
        ops = self.ops

        def loss(x):
            return ops.sum(ops.multiply(x, grad)) + regularizer(x)

        if self.backend == "tensorflow":
            import tensorflow as tf

            value = variable.value
            with tf.GradientTape() as tape:
                tape.watch(value)
                total = loss(value)
            return tape.gradient(total, value)
        if self.backend == "jax":
            import jax

            return jax.grad(loss)(variable.value)
        if self.backend == "torch":
            import torch

            value = variable.value
            with torch.enable_grad():
                (gradient,) = torch.autograd.grad(loss(value), [value])
            return gradient
        raise UnsupportedFeature(f"the adapter knows no autodiff for Keras backend "
                                 f"{self.backend!r}")


class KerasSession:
    """One ``keras.optimizers.Adam`` per param group, stepped together."""

    def __init__(self, kk: _Keras, problem: CaseSetup, variant: Variant) -> None:
        keras = kk.keras
        self._kk, self._variant, self._problem = kk, variant, problem
        kk.use_floatx(variant.dtype)
        sid = next(_session_ids)
        dtype = variant.dtype
        self._names = [f"adamconf{sid}_p{i}" for i in range(len(problem.params))]
        self._vars = [keras.Variable(kk.tensor(p, dtype), dtype=dtype, name=name)
                      for name, p in zip(self._names, problem.params, strict=True)]
        self._optimizers, self._group_vars, self._regularizers = [], [], []
        self._schedules: list[list[float]] = []
        self._slots: dict[tuple[int, str], object] = {}
        self._rows = problem.group_ranges()
        for group, rows in zip(problem.groups, self._rows):
            cfg = group.config
            variables = [self._vars[i] for i in rows]
            self._group_vars.append(variables)
            self._optimizers.append(self._build(group, variables))
            self._regularizers.append(
                keras.regularizers.L2(cfg.weight_decay / 2)
                if variant.name == L2_REGULARIZER and cfg.weight_decay != 0 else None)
        if problem.initial_state is not None:
            self._load_state()

    def _build(self, group: GroupSetup, variables):
        keras, cfg = self._kk.keras, group.config
        if self._variant.name == SCHEDULE:
            lrs = [float(group.lr_at(k)) for k in range(self._problem.steps)] or [cfg.lr]
            self._schedules.append(lrs)
            start = self._problem.initial_step
            # iterations = start + k before step k, and the schedule gives values[i] for
            # boundaries[i-1] < it ≤ boundaries[i]: a boundary at start + k − 1 where the lr
            # changes at step k, as a user writes it (one boundary per step costs Keras a
            # comparison per boundary per step: 1000 steps ran 0.1 s a step on tensorflow);
            # the last boundary lies past the case
            changes = [k for k in range(1, len(lrs)) if lrs[k] != lrs[k - 1]]
            learning_rate = keras.optimizers.schedules.PiecewiseConstantDecay(
                boundaries=[start + k - 1 for k in changes] + [start + len(lrs)],
                values=[lrs[0]] + [lrs[k] for k in changes] + [lrs[-1]])
        else:
            learning_rate = float(cfg.lr)
        weight_decay = (None if self._variant.name == L2_REGULARIZER or cfg.weight_decay == 0
                        else float(cfg.weight_decay))
        optimizer = keras.optimizers.Adam(
            learning_rate=learning_rate, beta_1=cfg.beta1, beta_2=cfg.beta2, epsilon=cfg.eps,
            amsgrad=cfg.amsgrad, weight_decay=weight_decay)
        optimizer.build(variables)
        return optimizer

    def _slot(self, optimizer, index: int, kind: str):
        key = (index, kind)
        if key not in self._slots:
            wanted = f"{self._names[index]}_{kind}"
            self._slots[key] = next((v for v in optimizer.variables if v.name == wanted), None)
        return self._slots[key]

    def _owner(self) -> list[int]:
        return self._problem.group_of_param()

    def _load_state(self) -> None:
        kk, init, dtype = self._kk, self._problem.initial_state, self._variant.dtype
        for optimizer in self._optimizers:
            optimizer.iterations.assign(init.step)
        owner = self._owner()
        for i in range(len(self._vars)):
            optimizer = self._optimizers[owner[i]]
            config = self._problem.groups[owner[i]].config
            self._slot(optimizer, i, "momentum").assign(kk.tensor(init.m[i], dtype))
            self._slot(optimizer, i, "velocity").assign(kk.tensor(init.v[i], dtype))
            if config.amsgrad:  # Keras keeps the max of raw v, rounded to D
                self._slot(optimizer, i, "velocity_hat").assign(
                    kk.rounded(init.raw_vmax(i, config.beta2), dtype))

    def step(self, grads: Sequence[np.ndarray], lrs: Sequence[float] | None = None) -> None:
        kk, dtype = self._kk, self._variant.dtype
        check_step(grads, lrs, len(self._vars), len(self._optimizers), groups_word="param groups")
        kk.use_floatx(dtype)
        if lrs is not None:
            for gi, (optimizer, lr) in enumerate(zip(self._optimizers, lrs, strict=True)):
                if self._variant.name == SCHEDULE:
                    k = int(kk.array(optimizer.iterations)) - self._problem.initial_step
                    planned = self._schedules[gi][min(k, len(self._schedules[gi]) - 1)]
                    if float(lr) != planned:
                        raise ValueError(f"group {gi}: lr {lr} at step {k} is not the "
                                         f"schedule's {planned}")
                else:
                    optimizer.learning_rate.assign(float(lr))
        tensors = [kk.tensor(g, dtype) for g in grads]
        for gi, (optimizer, variables, rows) in enumerate(
                zip(self._optimizers, self._group_vars, self._rows, strict=True)):
            group_grads = [tensors[i] for i in rows]
            regularizer = self._regularizers[gi]
            if regularizer is not None:
                group_grads = [kk.l2_gradient(self._vars[i], tensors[i], regularizer)
                               for i in rows]
            if variables:
                optimizer.apply(group_grads, variables)

    def params(self) -> list[np.ndarray]:
        return [self._kk.array(v) for v in self._vars]

    def state(self) -> OptimizerState | None:
        if not self._optimizers:
            return None
        array, owner = self._kk.array, self._owner()
        slots = {kind: [self._slot(self._optimizers[owner[i]], i, kind)
                        for i in range(len(self._vars))]
                 for kind in ("momentum", "velocity", "velocity_hat")}
        any_amsgrad = any(g.config.amsgrad for g in self._problem.groups)
        vmax = None
        if any_amsgrad:
            # a group without amsgrad has no velocity_hat: it keeps the initial 0
            vmax = [array(s) if s is not None else np.zeros(v.shape)
                    for s, v in zip(slots["velocity_hat"], self._vars, strict=True)]
        return OptimizerState(
            step=int(array(self._optimizers[0].iterations)),
            m=[array(s) for s in slots["momentum"]], v=[array(s) for s in slots["velocity"]],
            vmax=vmax, vmax_kind="raw")


class KerasBackend(FrameworkBackend):
    """``keras.optimizers.Adam`` on the Keras backend this class names (or KERAS_BACKEND's)."""

    keras_backend: str | None = None
    install_name = "keras"
    session_class = KerasSession

    def __init__(self) -> None:
        super().__init__()
        self.name = "keras" if self.keras_backend is None else f"keras-{self.keras_backend}"

    def _kk(self) -> _Keras:
        return _Keras(self.keras_backend)

    def _try(self, kk: _Keras, variant: Variant) -> str | None:
        """One step of the trial problem with amsgrad and weight decay; Keras's refusal as a
        reason, or None."""

        def made_otherwise(session: KerasSession, _) -> str | None:
            made = session._vars[0].dtype
            if made != variant.dtype:
                return f"a keras.Variable of dtype {variant.dtype} came out {made}"
            return None

        return one_step_refusal(lambda problem: KerasSession(kk, problem, variant),
                                trial_problem(weight_decay=0.125, amsgrad=True), reason=_reason,
                                check=made_otherwise)

    def describe(self) -> BackendInfo:
        kk = self._kk()
        versions = {"keras": kk.keras.__version__, "keras backend": kk.backend}
        framework = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}.get(kk.backend)
        if framework is not None:
            module = sys.modules.get(framework)
            versions[framework] = getattr(module, "__version__", "unknown")
        info = BackendInfo(
            name=self.name, installed=True, versions=versions, devices=["cpu"],
            dtypes=list(self.dtypes), install_hint=self.install_hint,
            description=f"keras.optimizers.Adam on the {kk.backend} backend; one optimizer per "
                        "group; lr by learning_rate.assign or a PiecewiseConstantDecay; weight "
                        "decay as Keras's (decoupled) or as an L2(λ/2) regularizer")
        self.try_variants(info, (Variant(self.name, name, "cpu", dtype) for name in VARIANT_NAMES
                                 for dtype in self.dtypes), lambda variant: self._try(kk, variant))
        info.unsupported.append(Unsupported("maximize", "keras.optimizers.Adam has no maximize"))
        return info

    def framework_for(self, variant: Variant) -> _Keras:
        kk = self._kk()
        self.check_variant(variant, "keras", VARIANT_NAMES, ("cpu",))
        self.check_refused(variant, "Keras")
        return kk

    def check_case(self, problem: CaseSetup, variant: Variant) -> None:
        if any(g.config.maximize for g in problem.groups):
            raise UnsupportedFeature("keras.optimizers.Adam has no maximize option (the adapter "
                                     "does not fake it by negating gradients)")
        if problem.initial_state is not None and problem.initial_step > INT32_MAX:
            raise UnsupportedFeature(f"Keras may count iterations in int32; step "
                                     f"{problem.initial_step} does not fit")

    def construct(self, variant: Variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False) -> None:
        kk = self.framework_for(variant)
        keras = kk.keras
        if maximize:
            raise UnsupportedFeature("keras.optimizers.Adam has no maximize option")
        kk.use_floatx(variant.dtype)
        beta1, beta2 = betas
        if variant.name == L2_REGULARIZER:
            keras.regularizers.L2(weight_decay / 2)
            weight_decay = None
        learning_rate = lr
        if variant.name == SCHEDULE and isinstance(lr, float):
            learning_rate = keras.optimizers.schedules.PiecewiseConstantDecay([0], [lr, lr])
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta1,
                                          beta_2=beta2, epsilon=eps, amsgrad=amsgrad,
                                          weight_decay=weight_decay)
        optimizer.build([keras.Variable(kk.tensor(np.zeros(2), variant.dtype),
                                        dtype=variant.dtype)])


class KerasTensorFlowBackend(KerasBackend):
    keras_backend = "tensorflow"


class KerasJaxBackend(KerasBackend):
    keras_backend = "jax"


class KerasTorchBackend(KerasBackend):
    keras_backend = "torch"

