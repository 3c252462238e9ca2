"""tinygrad: ``tinygrad.nn.optim.Adam``, driven step by step on tinygrad's CPU device.

``Adam(params, lr, b1, b2, eps)`` is ``LAMB(..., weight_decay=0, adam=True)``
(``tinygrad/nn/optim.py``). What it computes, per step::

    b1_t ← b1_t·β1      b2_t ← b2_t·β2              (float32 running products, start 1)
    m ← β1·m + (1 − β1)·g                           v ← β2·v + (1 − β2)·g·g
    θ ← θ − cast_θ(lr·(m/(1 − b1_t)) / (√(v/(1 − b2_t)) + ε))

the documented update (ε outside √v̂, both moments bias-corrected), with:

- β^t as a float32 running product (``b1_t``, ``b2_t``), not a pow of an integer step;
  tinygrad keeps no step count;
- m and v in ``OPTIM_DTYPE`` (float32 unless that environment variable says otherwise),
  whatever the parameters' dtype: a float16 or bfloat16 parameter gets float32 moments
  and a float32 update, rounded to the parameter's dtype before it is subtracted; a
  float64 parameter gets float32 moments too;
- lr a float32 tensor of shape (1,) (``least_upper_dtype(default_float, float32)``).

Variants ``Adam`` (``fused=False``, the default) and ``Adam-fused`` (``fused=True``, what
``FUSE_OPTIM=1`` selects: the parameters and gradients are concatenated into one flat
tensor, one update runs on it, and it is split back; m and v are one flat buffer each)
× device ``cpu`` × dtype (float32, float16, bfloat16, float64). The device
is tinygrad's CPU device with its default renderer (C compiled by clang: tinygrad's CPU
device needs a ``clang`` on PATH, even for its own worker programs), selected with
``Context(DEV="CPU")``. A dtype it cannot compile (bfloat16 with clang 14: "__bf16 is not
supported on this target") is found by trying one step at probe time and listed as
unsupported with the compiler's message. (``DEV=CPU:LLVM`` runs bfloat16, but with the
libLLVM 14/15 found here tinygrad's IR for vectorised stores fails to verify; not listed.)

A 0-d parameter is refused by ``Adam`` as it fails on it: lr has shape (1,), so the
update does too and cannot be assigned to shape () — measured at the first step, not
assumed. ``Adam-fused`` handles it (the update is computed on the flat tensor).

How the adapter uses it, as a user would:

- the lr changes between steps by ``opt.lr.assign(Tensor([lr]))``, as tinygrad's LR
  schedulers do;
- param groups: one ``Adam`` per group combined with ``OptimizerGroup`` (tinygrad's way to
  give groups their own hyperparameters), one ``step`` for all;
- resume: ``m``, ``v`` assigned, and ``b1_t``, ``b2_t`` set to β^t rounded to float32 (the
  state tinygrad holds in place of a step count);
- state: m and v from ``opt.m``, ``opt.v``; no step count.

Not there, refused: weight decay (``Adam`` has none; ``AdamW`` decays decoupled,
θ − lr·(… + λθ), another optimizer), amsgrad, maximize.

Validation: only lr < 0 raises ValueError (``Optimizer.__init__``); ε and β are not checked.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Sequence

import numpy as np

from .base import BackendInfo, CaseSetup, OptimizerState, Unsupported, UnsupportedFeature, Variant
from .features import Lacking
from .framework import FrameworkBackend, check_step, one_step_refusal, trial_problem
from .install import importing

__all__ = ["TinygradBackend", "VARIANT_NAMES", "DTYPES", "DEVICES"]

NAME = "tinygrad"
ADAM = "Adam"
ADAM_FUSED = "Adam-fused"
VARIANT_NAMES = (ADAM, ADAM_FUSED)
DTYPES = ("float32", "float16", "bfloat16", "float64")
# variant device → the value of tinygrad's DEV that selects it (device:renderer)
DEVICES = {"cpu": "CPU"}

LACKING = Lacking.of("tinygrad's Adam", "weight_decay", "amsgrad", "maximize",
                     weight_decay=" (AdamW's is decoupled: θ − lr·(… + λθ), another optimizer)")


def _import_tinygrad():
    with importing("tinygrad", NAME):
        import tinygrad
        from tinygrad import Tensor, dtypes
        from tinygrad.helpers import Context
        from tinygrad.nn import optim
    return tinygrad, Tensor, dtypes, Context, optim


@contextlib.contextmanager
def _compiler_errors():
    """Collects what subprocesses (tinygrad's clang) write to stderr, as a list of lines."""
    lines: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines.extend(captured.read().decode(errors="replace").splitlines())


class _Tinygrad:
    def __init__(self) -> None:
        self.tinygrad, self.Tensor, self.dtypes, self.Context, self.optim = _import_tinygrad()
        self.dtype_of = {"float32": self.dtypes.float32, "float16": self.dtypes.float16,
                         "bfloat16": self.dtypes.bfloat16, "float64": self.dtypes.float64}

    def context(self, variant: Variant):
        return self.Context(DEV=DEVICES[variant.device])

    def tensor(self, values, variant: Variant):
        """A realized tensor of the variant's dtype (from float64: exact for seam values)."""
        host = np.array(values, dtype=np.float64)
        return self.Tensor(host, device="CPU", dtype=self.dtypes.float64).cast(
            self.dtype_of[variant.dtype]).contiguous().realize()

    def array(self, tensor) -> np.ndarray:
        return np.array(tensor.cast(self.dtypes.float64).numpy(), dtype=np.float64)


class TinygradSession:
    """One tinygrad Adam per group, stepped together through an OptimizerGroup."""

    def __init__(self, tg: _Tinygrad, problem: CaseSetup, variant: Variant) -> None:
        self._tg, self._variant = tg, variant
        self._params: list = []
        self.optimizers = []
        with tg.context(variant):
            for group in problem.groups:
                cfg = group.config
                params = [tg.tensor(p, variant) for p in group.params]
                self._params.extend(params)
                self.optimizers.append(tg.optim.Adam(params, lr=cfg.lr, b1=cfg.beta1,
                                                     b2=cfg.beta2, eps=cfg.eps,
                                                     fused=variant.name == ADAM_FUSED))
            self.optimizer = tg.optim.OptimizerGroup(*self.optimizers)
            if problem.initial_state is not None:
                self._load_state(problem)

    def _load_state(self, problem: CaseSetup) -> None:
        tg, init = self._tg, problem.initial_state
        for opt, group, rows in zip(self.optimizers, problem.groups, problem.group_ranges()):
            cfg = group.config
            for buffers, values in ((opt.m, init.m), (opt.v, init.v)):
                if opt.fused:  # one flat buffer: the parameters' values concatenated
                    hosts = [np.concatenate([np.ravel(values[i]) for i in rows])]
                else:
                    hosts = [np.array(values[i], dtype=np.float64) for i in rows]
                for buffer, host in zip(buffers, hosts):
                    buffer.assign(tg.Tensor(np.asarray(host, dtype=np.float64), device="CPU",
                                            dtype=tg.dtypes.float64).cast(buffer.dtype)).realize()
            for product, beta in ((opt.b1_t, cfg.beta1), (opt.b2_t, cfg.beta2)):
                power = float(np.float64(beta) ** init.step)  # β^t, rounded once by the cast
                product.assign(tg.Tensor([power], device="CPU", dtype=tg.dtypes.float64)
                               .cast(product.dtype)).realize()

    def step(self, grads: Sequence[np.ndarray], lrs: Sequence[float] | None = None) -> None:
        tg = self._tg
        check_step(grads, lrs, len(self._params), len(self.optimizers))
        with tg.context(self._variant):
            if lrs is not None:
                for opt, lr in zip(self.optimizers, lrs):
                    opt.lr.assign(tg.Tensor([float(lr)], device="CPU", dtype=tg.dtypes.float64)
                                  .cast(opt.lr.dtype)).realize()
            for p, g in zip(self._params, grads):
                p.grad = tg.tensor(g, self._variant)
            with tg.Context(TRAINING=1):
                try:
                    self.optimizer.step()
                except ValueError as exc:
                    if "broadcast" in str(exc) and any(p.ndim == 0 for p in self._params):
                        raise UnsupportedFeature(f"tinygrad's Adam cannot step a 0-d "
                                                 f"parameter (its lr has shape (1,)): "
                                                 f"{exc}") from None
                    raise

    def params(self) -> list[np.ndarray]:
        with self._tg.context(self._variant):
            return [self._tg.array(p) for p in self._params]

    def _per_param(self, opt, buffers) -> list[np.ndarray]:
        if not opt.fused:
            return [self._tg.array(b) for b in buffers]
        flat = self._tg.array(buffers[0])
        return [flat[start:end].reshape(p.shape) for p, start, end
                in zip(opt.params, opt.pos_params, opt.pos_params[1:])]

    def state(self) -> OptimizerState | None:
        with self._tg.context(self._variant):
            return OptimizerState(step=None,
                                  m=[a for o in self.optimizers for a in self._per_param(o, o.m)],
                                  v=[a for o in self.optimizers for a in self._per_param(o, o.v)],
                                  vmax=None)


class TinygradBackend(FrameworkBackend):
    """tinygrad.nn.optim.Adam on tinygrad's CPU device, per renderer."""

    name = NAME
    dtypes = DTYPES
    session_class = TinygradSession

    def _try_step(self, tg: _Tinygrad, device: str, dtype: str) -> str | None:
        """None when one Adam step of the trial problem runs for (device, dtype), else
        tinygrad's reason (what the C compiler printed, where it printed an error)."""
        variant = Variant(NAME, ADAM, device, dtype)
        with _compiler_errors() as errors:
            reason = one_step_refusal(lambda problem: TinygradSession(tg, problem, variant),
                                      trial_problem())
        said = next((line.split("error:", 1)[1].strip() for line in errors if "error:" in line),
                    None)
        return reason if reason is None or said is None else f"the C compiler said: {said}"

    def describe(self) -> BackendInfo:
        tg = _Tinygrad()
        versions = {"tinygrad": getattr(tg.tinygrad, "__version__", None) or _version()}
        info = BackendInfo(name=NAME, installed=True, versions=versions,
                           dtypes=list(DTYPES), install_hint=self.install_hint,
                           description="tinygrad.nn.optim.Adam, one per group in an "
                                       "OptimizerGroup; lr a float32 tensor set with assign; "
                                       "moments in float32 (OPTIM_DTYPE)")
        for device in DEVICES:
            working = []
            for dtype in DTYPES:
                reason = self._try_step(tg, device, dtype)
                if reason is None:
                    working.append(dtype)
                else:
                    for name in VARIANT_NAMES:
                        self.refuse(Variant(NAME, name, device, dtype), reason)
                    info.unsupported.append(Unsupported(f"{device}/{dtype}", reason))
            if working:
                info.devices.append(device)
                info.variants += [Variant(NAME, name, device, dtype) for name in VARIANT_NAMES
                                  for dtype in working]
        info.unsupported += LACKING.unsupported()
        return info

    def framework_for(self, variant: Variant) -> _Tinygrad:
        tg = _Tinygrad()
        self.check_variant(variant, "tinygrad", VARIANT_NAMES, list(DEVICES))
        refused = self.refusal(variant)  # for every variant name alike: found by plain Adam
        if refused is not None:
            raise UnsupportedFeature(f"tinygrad cannot run {variant.dtype} on "
                                     f"{variant.device}: {refused}")
        return tg

    def check_case(self, problem: CaseSetup, variant: Variant) -> None:
        LACKING.check_case(problem)
        if not problem.params:
            raise UnsupportedFeature("tinygrad's optimizers need at least one parameter")

    def construct(self, variant: Variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False) -> None:
        tg = self.framework_for(variant)
        LACKING.check_construct(weight_decay, amsgrad, maximize)
        beta1, beta2 = betas
        with tg.context(variant):
            tg.optim.Adam([tg.tensor(np.zeros(2), variant)], lr=lr, b1=beta1, b2=beta2,
                          eps=eps, fused=variant.name == ADAM_FUSED)


def _version() -> str:
    try:
        from importlib import metadata

        return metadata.version("tinygrad")
    except Exception:
        return "unknown"
