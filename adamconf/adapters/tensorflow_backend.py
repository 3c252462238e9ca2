"""TensorFlow: the raw Adam kernels, ``tf.raw_ops.ResourceApplyAdam`` and
``ResourceApplyAdamWithAmsgrad``, driven step by step in eager mode.

These are the C++ kernels behind ``tf.compat.v1.train.AdamOptimizer`` (and Keras 2's Adam).
Every hyperparameter is a kernel *input*, a scalar tensor of the variable's dtype T:
``beta1_power``, ``beta2_power``, ``lr``, ``beta1``, ``beta2``, ``epsilon``. So the adapter
feeds, at every step, the case's lr for the parameter's group and β1^t, β2^t for the
case's step t (Python ``beta ** t`` in binary64, then cast to T: what the case asks, not
``AdamOptimizer``'s running product). All six are rounded to T by the kernel's signature:
in bfloat16, β2 = 0.999 is exactly 1.0 (1 − β2^t = 0: θ never moves), which the suite
judges as it is.

What the kernels compute (``tensorflow/core/kernels/training_ops.cc``, ``ApplyAdamNonCuda``
and ``ApplyAdamWithAmsgrad<CPUDevice>``), all in T::

    α ← lr·√(1 − β2^t)/(1 − β1^t)
    m ← m + (g − m)·(1 − β1)          v ← v + (g² − v)·(1 − β2)
    ResourceApplyAdam:             θ ← θ − m·α/(√v + ε)
    ResourceApplyAdamWithAmsgrad:  v̂ ← max(v̂, v);  θ ← θ − m·α/(√v̂ + ε)

ε is added to √v, not to the bias-corrected √v̂: dialect ``eps-hat``; the amsgrad kernel
keeps the max of *raw* v: ``ams-rawmax+eps-hat``. Eigen's ``cwiseMax`` keeps vhat where v
is NaN (seen in float64 and float32): the NaN does not reach the vhat state, where the
reference's max propagates it (θ is NaN either way, through m). State is read from the adapter's own
resource variables (m, v, and vhat, raw: ``vmax_kind="raw"``); the step count is the t the
adapter feeds.

Variants (``Variant.name``) × device (``cpu``; ``gpu`` where TensorFlow sees one) × dtype
(float64, float32, float16, bfloat16: each found by trying one step):

- ``ResourceApplyAdam``: cases with amsgrad are refused (use the other variant);
- ``ResourceApplyAdamWithAmsgrad``: cases without amsgrad are refused (a different kernel,
  not a switch).

What the kernels lack, and what the adapter does about it:

- maximize: no such input; refused (the adapter does not negate gradients to fake it).
- weight decay: no such input. L2 goes where a TF1 user puts it, into the loss:
  ``loss + λ·tf.nn.l2_loss(θ)`` (``l2_loss`` is Σθ²/2), differentiated by
  ``tf.GradientTape``: the gradient TensorFlow hands the kernel is g + λθ, computed in T.
  The case's gradient g enters as the gradient of Σ(θ·g), which is exactly g.
- parameter groups: one kernel call per parameter with its group's hyperparameters.
- resume: the adapter's m, v variables are assigned the case's state; vhat (raw) is
  v̂max·(1 − β2^step), computed in binary64 and rounded to T; t continues from the step.

``construct``: the kernels have no constructor and validate no hyperparameter; ``construct``
makes one kernel call with the given values (a finding where nothing raises).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .base import BackendInfo, CaseSetup, OptimizerState, Unsupported, UnsupportedFeature, Variant
from .framework import FrameworkBackend, check_step, one_step_refusal, trial_problem
from .install import importing

__all__ = ["TensorFlowBackend", "VARIANT_NAMES"]

NAME = "tensorflow"
ADAM = "ResourceApplyAdam"
AMSGRAD = "ResourceApplyAdamWithAmsgrad"
VARIANT_NAMES = (ADAM, AMSGRAD)
DEVICE_KINDS = {"cpu": "CPU", "gpu": "GPU"}


def _import_tf():
    # TensorFlow's C++ start-up chatter (oneDNN, CPU features) is not ours to show
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with importing("tensorflow", NAME):
        import tensorflow as tf
    return tf


class _TF:
    """The tensorflow module and conversions between the seam's arrays and tensors."""

    def __init__(self) -> None:
        tf = self.tf = _import_tf()
        self.dtypes = {"float64": tf.float64, "float32": tf.float32, "float16": tf.float16,
                       "bfloat16": tf.bfloat16}

    def devices(self) -> dict[str, str]:
        found = {}
        for kind, tf_kind in DEVICE_KINDS.items():
            if self.tf.config.list_logical_devices(tf_kind):
                found[kind] = f"/{tf_kind}:0"
        return found

    def tensor(self, values, dtype: str):
        # float64 → float32 → T is exact: the seam carries values representable in T
        tf = self.tf
        wide = tf.float64 if dtype == "float64" else tf.float32
        host = np.asarray(values, dtype=np.float64).astype(wide.as_numpy_dtype)
        return tf.cast(tf.constant(host, dtype=wide), self.dtypes[dtype])

    def scalar(self, value, dtype: str):
        """A hyperparameter as the kernel takes it: a scalar tensor of T (rounded to T)."""
        return self.tf.cast(self.tf.constant(value, dtype=self.tf.float64), self.dtypes[dtype])

    def array(self, tensor) -> np.ndarray:
        return np.array(self.tf.cast(tensor, self.tf.float64).numpy(), dtype=np.float64)


class TensorFlowSession:
    """The adapter's resource variables (θ, m, v, vhat) and one kernel call per parameter."""

    def __init__(self, framework: tuple[_TF, str], problem: CaseSetup, variant: Variant) -> None:
        tft, device = framework  # TensorFlow, and the variant's device
        tf = tft.tf
        self._tft, self._variant, self._device = tft, variant, device
        self._configs = [g.config for g in problem.groups for _ in g.params]
        self._group_of = problem.group_of_param()
        self._lrs = [g.config.lr for g in problem.groups]
        self._t = problem.initial_step
        amsgrad = variant.name == AMSGRAD
        dtype = variant.dtype
        with tf.device(device):
            self._vars = [tf.Variable(tft.tensor(p, dtype)) for p in problem.params]
            self._m = [tf.Variable(tf.zeros(p.shape, tft.dtypes[dtype])) for p in problem.params]
            self._v = [tf.Variable(tf.zeros(p.shape, tft.dtypes[dtype])) for p in problem.params]
            self._vhat = ([tf.Variable(tf.zeros(p.shape, tft.dtypes[dtype]))
                           for p in problem.params] if amsgrad else None)
        init = problem.initial_state
        if init is not None:
            for i in range(len(self._vars)):
                self._m[i].assign(tft.tensor(init.m[i], dtype))
                self._v[i].assign(tft.tensor(init.v[i], dtype))
                if amsgrad:  # the kernel keeps the max of raw v, rounded to T
                    raw = init.raw_vmax(i, self._configs[i].beta2)
                    self._vhat[i].assign(self._rounded(raw, dtype))

    def _rounded(self, values, dtype: str):
        tf = self._tft.tf
        return tf.cast(tf.constant(np.asarray(values, dtype=np.float64)),
                       self._tft.dtypes[dtype])

    def _gradient(self, index: int, grad: np.ndarray):
        """g, or with L2 the gradient of Σ(θ·g) + λ·l2_loss(θ) as TensorFlow computes it."""
        tft, tf = self._tft, self._tft.tf
        g = tft.tensor(grad, self._variant.dtype)
        weight_decay = self._configs[index].weight_decay
        if weight_decay == 0:
            return g
        var = self._vars[index]
        with tf.GradientTape() as tape:
            loss = (tf.reduce_sum(var * g)
                    + tft.scalar(weight_decay, self._variant.dtype) * tf.nn.l2_loss(var))
        return tape.gradient(loss, var)

    def step(self, grads: Sequence[np.ndarray], lrs: Sequence[float] | None = None) -> None:
        tft, tf = self._tft, self._tft.tf
        check_step(grads, lrs, len(self._vars), len(self._lrs), groups_word="param groups")
        if lrs is not None:
            self._lrs = [float(lr) for lr in lrs]
        self._t += 1
        t, dtype = self._t, self._variant.dtype
        with tf.device(self._device):
            for i, grad in enumerate(grads):
                cfg = self._configs[i]
                inputs = dict(
                    var=self._vars[i].handle, m=self._m[i].handle, v=self._v[i].handle,
                    beta1_power=tft.scalar(cfg.beta1 ** t, dtype),
                    beta2_power=tft.scalar(cfg.beta2 ** t, dtype),
                    lr=tft.scalar(self._lrs[self._group_of[i]], dtype),
                    beta1=tft.scalar(cfg.beta1, dtype), beta2=tft.scalar(cfg.beta2, dtype),
                    epsilon=tft.scalar(cfg.eps, dtype), grad=self._gradient(i, grad))
                if self._vhat is not None:
                    tf.raw_ops.ResourceApplyAdamWithAmsgrad(vhat=self._vhat[i].handle, **inputs)
                else:
                    tf.raw_ops.ResourceApplyAdam(**inputs)

    def params(self) -> list[np.ndarray]:
        return [self._tft.array(v) for v in self._vars]

    def state(self) -> OptimizerState | None:
        array = self._tft.array
        return OptimizerState(
            step=self._t, m=[array(m) for m in self._m], v=[array(v) for v in self._v],
            vmax=None if self._vhat is None else [array(h) for h in self._vhat],
            vmax_kind="raw")


class TensorFlowBackend(FrameworkBackend):
    """``tf.raw_ops.ResourceApplyAdam`` and ``ResourceApplyAdamWithAmsgrad``, eager."""

    name = NAME
    session_class = TensorFlowSession

    def describe(self) -> BackendInfo:
        tft = _TF()
        tf = tft.tf
        devices = tft.devices()
        info = BackendInfo(
            name=NAME, installed=True, versions={"tensorflow": tf.__version__},
            devices=list(devices), dtypes=list(self.dtypes), install_hint=self.install_hint,
            description="tf.raw_ops.ResourceApplyAdam / ResourceApplyAdamWithAmsgrad in eager "
                        "mode; lr, β1^t, β2^t fed per step as kernel inputs in the variable's "
                        "dtype; L2 as λ·tf.nn.l2_loss(θ) in the loss")

        def refusal(variant: Variant) -> str | None:  # one kernel call on the trial problem
            return one_step_refusal(
                lambda problem: TensorFlowSession((tft, devices[variant.device]), problem, variant),
                trial_problem(amsgrad=variant.name == AMSGRAD))

        self.try_variants(info, (Variant(NAME, name, device, dtype) for name in VARIANT_NAMES
                                 for device in devices for dtype in self.dtypes), refusal)
        info.unsupported += [
            Unsupported("maximize", "the Adam kernels have no maximize input"),
            Unsupported(f"{ADAM} amsgrad", f"{ADAM} has no amsgrad: {AMSGRAD} is its own "
                                           "variant"),
            Unsupported(f"{AMSGRAD} without amsgrad", f"{AMSGRAD} always keeps the max"),
        ]
        return info

    def framework_for(self, variant: Variant) -> tuple[_TF, str]:
        tft = _TF()
        self.check_variant(variant, "tensorflow", VARIANT_NAMES)
        devices = tft.devices()
        self.check_device(variant, devices, "TensorFlow")
        self.check_refused(variant, "TensorFlow")
        return tft, devices[variant.device]

    def check_case(self, problem: CaseSetup, variant: Variant) -> None:
        for gi, group in enumerate(problem.groups):
            cfg = group.config
            if cfg.maximize:
                raise UnsupportedFeature("TensorFlow's Adam kernels have no maximize input (the "
                                         "adapter does not fake it by negating gradients)")
            if cfg.amsgrad and variant.name == ADAM:
                raise UnsupportedFeature(f"group {gi} asks for amsgrad: {ADAM} has none; use the "
                                         f"{AMSGRAD} variant")
            if not cfg.amsgrad and variant.name == AMSGRAD:
                raise UnsupportedFeature(f"group {gi} does not ask for amsgrad: {AMSGRAD} always "
                                         f"keeps the max; use the {ADAM} variant")

    def construct(self, variant: Variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False) -> None:
        """One kernel call with these values: the kernels have no constructor to check them."""
        framework = self.framework_for(variant)
        if maximize:
            raise UnsupportedFeature("the Adam kernels have no maximize input")
        beta1, beta2 = betas
        problem = trial_problem(theta=(0.0, 0.0), lr=lr, betas=(beta1, beta2), eps=eps,
                                weight_decay=weight_decay, amsgrad=variant.name == AMSGRAD)
        session = TensorFlowSession(framework, problem, variant)
        session.step([problem.grads[0][0]])  # the lr as given reaches the kernel's input

