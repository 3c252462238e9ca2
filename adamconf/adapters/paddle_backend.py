"""PaddlePaddle: ``paddle.optimizer.Adam`` in dynamic-graph mode, driven step by step.

Variants (``Variant.name``) × device (``cpu``; ``gpu`` where Paddle was built with CUDA and
sees one) × dtype (float64, float32, float16, bfloat16: each found by trying one step):

- ``Adam`` — ``paddle.optimizer.Adam(learning_rate=float, ...)``; the lr is changed before
  each step with ``optimizer.set_lr(lr)``, Paddle's documented way for a float lr.
- ``Adam-multi_precision`` — the same with ``multi_precision=True``: float16/bfloat16
  parameters get float32 master weights (for float32/float64 parameters the flag does
  nothing, so only the 16-bit dtypes are listed).

What Paddle computes (``python/paddle/optimizer/adam.py`` → ``_C_ops.adam_``; CPU kernel
``paddle/phi/kernels/cpu/adam_kernel.cc``, registered for float and double only)::

    α ← lr·√(1 − β2^t)/(1 − β1^t)    ε' ← ε·√(1 − β2^t)
    m ← β1·m + (1 − β1)·g          v ← β2·v + (1 − β2)·g²
    amsgrad: vmax ← max(vmax, v);  θ ← θ − α·m/(√vmax + ε')
    else:                          θ ← θ − α·m/(√v + ε')

ε is scaled by √(1 − β2^t), which puts it back *outside* the bias correction:
α·m/(√v + ε') = lr·m̂/(√v̂ + ε), the documented update (no ``eps-hat``). amsgrad keeps the
max of *raw* v (``moment2_max``): dialect ``ams-rawmax`` (``vmax_kind="raw"``). β1^t and
β2^t are running products in ``beta1_pow_acc``/``beta2_pow_acc`` accumulators (shape [1],
the accumulator dtype: the parameter's, float32 for 16-bit parameters), multiplied by β
after each step. The lr is a tensor of the first parameter's dtype (float32 for 16-bit).
Seen in float32 (not float64) on this CPU: ``max(vmax, v)`` with v = NaN keeps vmax (the
vectorised kernel's max drops the NaN), where IEEE-style propagation would make it NaN;
θ is NaN either way, through m.

How the adapter builds what a user would:

- gradients: ``(θ·g).sum().backward()`` — Paddle's autograd hands the optimizer exactly g
  (for 16-bit parameters the loss is ``(θ.astype('float32')·g).sum()``: Paddle's CPU has
  no 16-bit multiply, and the cast's gradient returns g to the parameter's dtype exactly).
- weight decay: the group's ``weight_decay`` as a float, which Paddle turns into
  ``L2Decay(λ)``: g ← g + λθ before the update (the documented order).
- parameter groups: ``parameters=[{"params": ..., "weight_decay": λ, "beta1": β1,
  "beta2": β2, "epsilon": ε, "learning_rate": scale}, ...]``. Paddle's group
  ``learning_rate`` is a *scale* of the optimizer's lr: the optimizer's lr follows group 0
  and each group's scale is its lr over group 0's, which must be the same at every step
  (otherwise the case is refused: Paddle cannot give groups unrelated schedules). amsgrad
  is one flag per optimizer: groups that differ in it are refused.
- maximize: Paddle has none; refused (the adapter does not negate gradients to fake it).
- resume: ``optimizer.set_state_dict`` before the first step, with Paddle's own names for
  the accumulators (``<param>_moment1_0``, ``_moment2_0``, ``_moment2_max_0`` (raw: the
  case's v̂max·(1 − β2^step)), ``_beta1_pow_acc_0`` = β1^step, ``_beta2_pow_acc_0``).
- state: read from ``optimizer.state_dict()`` by the same names; Paddle keeps no step count
  (t lives only in β^t), so ``step`` is None.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Sequence

import numpy as np

from .base import BackendInfo, CaseSetup, OptimizerState, Unsupported, UnsupportedFeature, Variant
from .features import Lacking
from .framework import FrameworkBackend, check_step, one_step_refusal, trial_problem
from .install import importing

__all__ = ["PaddleBackend", "VARIANT_NAMES"]

NAME = "paddle"
ADAM = "Adam"
MULTI_PRECISION = "Adam-multi_precision"
VARIANT_NAMES = (ADAM, MULTI_PRECISION)
HALF_DTYPES = ("float16", "bfloat16")
LACKING = Lacking.of("paddle.optimizer.Adam", "maximize")

_session_ids = itertools.count()


def _import_paddle():
    os.environ.setdefault("GLOG_minloglevel", "2")
    with importing("paddle", NAME):
        import paddle
    return paddle


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text}".rstrip(": ")


class _Paddle:
    def __init__(self) -> None:
        self.paddle = _import_paddle()

    def devices(self) -> list[str]:
        paddle = self.paddle
        found = ["cpu"]
        if paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0:
            found.append("gpu")
        return found

    def tensor(self, values, dtype: str):
        # float64 → float32 → dtype is exact: the seam carries values representable in dtype
        paddle = self.paddle
        wide = np.float64 if dtype == "float64" else np.float32
        host = paddle.to_tensor(np.asarray(values, dtype=np.float64).astype(wide))
        return host if dtype in ("float64", "float32") else host.astype(dtype)

    def array(self, tensor) -> np.ndarray:
        return np.array(tensor.astype("float64").numpy(), dtype=np.float64)


def _scales(problem: CaseSetup) -> list[float]:
    """Each group's lr as a constant multiple of group 0's (Paddle's group lr is a scale)."""
    steps = problem.steps
    lead = [problem.groups[0].lr_at(k) for k in range(steps)] or [problem.groups[0].config.lr]
    base = problem.groups[0].config.lr
    scales = []
    for gi, group in enumerate(problem.groups):
        lrs = [group.lr_at(k) for k in range(steps)] or [group.config.lr]
        if gi == 0:
            scales.append(1.0)
            continue
        if base == 0:
            if any(lr != 0 for lr in lrs):
                raise UnsupportedFeature(f"group 0's lr is 0 and group {gi}'s is not: Paddle's "
                                         "group learning_rate is a scale of one lr")
            scales.append(1.0)
            continue
        scale = group.config.lr / base
        if any(lr != scale * l0 for lr, l0 in zip(lrs, lead, strict=True)):
            raise UnsupportedFeature(f"group {gi}'s lr is not a fixed multiple of group 0's at "
                                     "every step: Paddle's group learning_rate is a constant "
                                     "scale of the optimizer's one lr")
        scales.append(scale)
    return scales


class PaddleSession:
    """One ``paddle.optimizer.Adam`` on one problem."""

    def __init__(self, pd: _Paddle, problem: CaseSetup, variant: Variant) -> None:
        paddle = pd.paddle
        self._pd, self._variant, self._problem = pd, variant, problem
        sid = next(_session_ids)
        self._names = [f"adamconf{sid}_p{i}" for i in range(len(problem.params))]
        self._params = []
        for name, values in zip(self._names, problem.params, strict=True):
            param = paddle.create_parameter(
                shape=list(np.shape(values)), dtype=variant.dtype,
                attr=paddle.ParamAttr(name=name),
                default_initializer=paddle.nn.initializer.Constant(0.0))
            param.set_value(pd.tensor(values, variant.dtype))
            self._params.append(param)
        scales = _scales(problem)
        groups = []
        for group, rows, scale in zip(problem.groups, problem.group_ranges(), scales, strict=True):
            cfg = group.config
            entry = {"params": [self._params[i] for i in rows], "beta1": cfg.beta1,
                     "beta2": cfg.beta2, "epsilon": cfg.eps, "learning_rate": scale}
            if cfg.weight_decay != 0:
                entry["weight_decay"] = float(cfg.weight_decay)
            groups.append(entry)
        first = problem.groups[0].config
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Accumulating with FP16 or BF16 ..." advice
            self.optimizer = paddle.optimizer.Adam(
                learning_rate=first.lr, beta1=first.beta1, beta2=first.beta2,
                epsilon=first.eps, parameters=groups, amsgrad=first.amsgrad,
                multi_precision=variant.name == MULTI_PRECISION)
        self._amsgrad = first.amsgrad
        if problem.initial_state is not None:
            self._load_state()

    def _key(self, index: int, accumulator: str) -> str:
        return f"{self._names[index]}_{accumulator}_0"

    def _load_state(self) -> None:
        """Resume through Paddle's ``set_state_dict``, applied as the accumulators are made."""
        pd = self._pd
        init = self._problem.initial_state
        owner = self._problem.group_of_param()
        acc_dtype = "float32" if self._variant.dtype in HALF_DTYPES else self._variant.dtype
        state = {}
        for i in range(len(self._params)):
            cfg = self._problem.groups[owner[i]].config
            state[self._key(i, "moment1")] = pd.tensor(init.m[i], acc_dtype)
            state[self._key(i, "moment2")] = pd.tensor(init.v[i], acc_dtype)
            if self._amsgrad:  # Paddle keeps the max of raw v, rounded to its dtype
                state[self._key(i, "moment2_max")] = self._rounded(init.raw_vmax(i, cfg.beta2),
                                                                    acc_dtype)
            for name, beta in (("beta1_pow_acc", cfg.beta1), ("beta2_pow_acc", cfg.beta2)):
                state[self._key(i, name)] = self._rounded([beta ** init.step], acc_dtype)
        self.optimizer.set_state_dict(state)

    def _rounded(self, values, dtype: str):
        return self._pd.paddle.to_tensor(np.asarray(values, dtype=np.float64)).astype(dtype)

    def step(self, grads: Sequence[np.ndarray], lrs: Sequence[float] | None = None) -> None:
        pd = self._pd
        check_step(grads, lrs, len(self._params), len(self._problem.groups),
                   groups_word="param groups")
        if lrs is not None:
            self.optimizer.set_lr(float(lrs[0]))  # the groups scale it (see the docstring)
        loss = None
        # 16-bit parameters: the loss in float32 (Paddle's CPU has no 16-bit multiply); the
        # cast's gradient brings g back to the parameter's dtype exactly
        wide = "float32" if self._variant.dtype in HALF_DTYPES else self._variant.dtype
        for param, grad in zip(self._params, grads, strict=True):
            term = (param.astype(wide) * pd.tensor(grad, wide)).sum()
            loss = term if loss is None else loss + term
        if loss is not None:
            loss.backward()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.optimizer.step()
        self.optimizer.clear_grad()

    def params(self) -> list[np.ndarray]:
        return [self._pd.array(p) for p in self._params]

    def state(self) -> OptimizerState | None:
        held = self.optimizer.state_dict()
        if self._key(0, "moment1") not in held if self._params else True:
            return None  # Paddle makes its accumulators at the first step
        array = self._pd.array
        count = len(self._params)
        vmax = None
        if self._amsgrad:
            vmax = [array(held[self._key(i, "moment2_max")]) for i in range(count)]
        return OptimizerState(step=None,
                              m=[array(held[self._key(i, "moment1")]) for i in range(count)],
                              v=[array(held[self._key(i, "moment2")]) for i in range(count)],
                              vmax=vmax, vmax_kind="raw")


class PaddleBackend(FrameworkBackend):
    """``paddle.optimizer.Adam`` (dynamic graph), with and without ``multi_precision``."""

    name = NAME
    session_class = PaddleSession

    def _try(self, pd: _Paddle, variant: Variant) -> str | None:
        """One step of the trial problem; Paddle's refusal as a reason, or None."""
        if variant.name == MULTI_PRECISION and variant.dtype not in HALF_DTYPES:
            return "multi_precision only changes float16/bfloat16 parameters"

        def open_session(problem: CaseSetup) -> PaddleSession:
            pd.paddle.set_device(variant.device)
            return PaddleSession(pd, problem, variant)

        return one_step_refusal(open_session, trial_problem(), reason=_reason)

    def describe(self) -> BackendInfo:
        pd = _Paddle()
        devices = pd.devices()
        info = BackendInfo(
            name=NAME, installed=True, versions={"paddle": pd.paddle.__version__},
            devices=devices, dtypes=list(self.dtypes), install_hint=self.install_hint,
            description="paddle.optimizer.Adam in dynamic-graph mode; lr by set_lr, groups "
                        "scale it; weight_decay a float (L2Decay); multi_precision variant")
        self.try_variants(info, (Variant(NAME, name, device, dtype) for name in VARIANT_NAMES
                                 for device in devices for dtype in self.dtypes),
                          lambda variant: self._try(pd, variant))
        info.unsupported += [
            *LACKING.unsupported(),
            Unsupported("amsgrad per group", "amsgrad is one flag per optimizer"),
            Unsupported("unrelated lr schedules per group",
                        "a group's learning_rate is a constant scale of the optimizer's lr"),
        ]
        return info

    def framework_for(self, variant: Variant) -> _Paddle:
        pd = _Paddle()
        self.check_variant(variant, "paddle", VARIANT_NAMES)
        self.check_device(variant, pd.devices(), "Paddle")
        self.check_refused(variant, "Paddle")
        pd.paddle.set_device(variant.device)
        return pd

    def check_case(self, problem: CaseSetup, variant: Variant) -> None:
        configs = [g.config for g in problem.groups]
        LACKING.check_case(problem)
        if len({c.amsgrad for c in configs}) > 1:
            raise UnsupportedFeature("paddle.optimizer.Adam takes one amsgrad flag for all groups; "
                                     "the groups here differ")

    def construct(self, variant: Variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False) -> None:
        pd = self.framework_for(variant)
        LACKING.check_construct(weight_decay, amsgrad, maximize)
        paddle = pd.paddle
        param = paddle.create_parameter(shape=[2], dtype=variant.dtype,
                                        default_initializer=paddle.nn.initializer.Constant(0.0))
        beta1, beta2 = betas
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            paddle.optimizer.Adam(learning_rate=lr, beta1=beta1, beta2=beta2, epsilon=eps,
                                  parameters=[param], weight_decay=weight_decay,
                                  amsgrad=amsgrad, multi_precision=variant.name == MULTI_PRECISION)

