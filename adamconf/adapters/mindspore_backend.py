"""MindSpore: its three Adams, driven step by step.

Variants (``Variant.name``) × device (``CPU``; ``GPU``/``Ascend`` where present) × dtype
(float32, float16, float64 where a kernel takes it):

- ``experimental.optim.Adam`` — the documented optimizer, called in PyNative mode (its
  per-group update is already a ``@jit`` graph). lr lives in a float32 Parameter per group
  (``optimizer.lrs[i]``, the same object as ``param_groups[i]['lr']``); a schedule is applied
  with ``ops.assign`` on it, exactly as ``experimental.optim.lr_scheduler.LRScheduler.step``
  does. What it computes (``mindspore/experimental/optim/adam.py``): weight decay and
  maximize as documented, then ``ops.Adam`` (CPU kernel ``adam_cpu_kernel.cc``:
  ``lr·√(1−β2^t)/(1−β1^t) · m/(√v + ε)``), i.e. ε outside the bias correction, and the
  ``amsgrad`` flag is never read: dialect ``eps-hat`` (``ams-ignored+eps-hat`` with amsgrad).
  β^t is ``ops.Pow`` of the float β and the int32 ``state_step`` Parameter.
- ``experimental.optim.Adam-jit`` — the same optimizer called from a ``mindspore.jit``
  function (the training-step idiom of its documentation), so the whole step is one graph.
  Gradients are its positional Tensor arguments (graph inputs, as ``grad_fn``'s outputs are
  in a training step): a tuple of Tensors would be a graph constant, compiled anew for every
  gradient value.
- ``nn.Adam`` — ``learning_rate, beta1, beta2, eps, weight_decay, use_amsgrad``; no
  ``maximize`` (unsupported); betas, eps and amsgrad are per optimizer (groups may differ
  only in lr and weight decay). Without amsgrad it runs ``ops.Adam`` (``eps-hat``); with it,
  ``ApplyAdamWithAmsgradV2`` (``vhat = max(vhat, v)`` on raw v, ``eps-hat``:
  ``ams-rawmax+eps-hat``). β^t is a running product in float32 Parameters
  (``beta1_power``, ``beta2_power``). Parameters are always passed as groups and named
  neutrally, so nn.Optimizer's rule "no weight decay on names containing beta/gamma" never
  applies. lr: per group a float32 Parameter (``learning_rate``), assigned before each step.
- ``mint.optim.Adam`` — documented for Ascend; where its step fails (on CPU here) it is
  listed as unsupported with the framework's own error, found by trying one step.

Building an optimizer and compiling its step cost far more than a case's steps. As a
training loop builds its optimizer once, the backend keeps built optimizers (``_Engine``) and
hands a free one to the next case with the same shapes and hyperparameters (lr aside: it is a
Parameter), after putting every Parameter it holds back to its value when built; its compiled
graphs are then reused. The lr Parameter is assigned only when the case's lr changes.

MindSpore's context is process-global: the device is set once (``mindspore.set_device``)
and the mode is left in PyNative; graph execution is only ever asked for through ``jit``.
Failed compilations write ``analyze_fail.ir`` under ``$MS_OM_PATH`` (default: the working
directory); the adapter points it at a temporary folder unless the user has set it.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import re
import sys
import tempfile
import weakref
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from .base import BackendInfo, CaseSetup, OptimizerState, Unsupported, UnsupportedFeature, Variant
from .framework import FrameworkBackend, check_step, one_step_refusal, trial_problem
from .install import importing

__all__ = ["MindSporeBackend", "VARIANT_NAMES", "DTYPES"]

NAME = "mindspore"
EXPERIMENTAL = "experimental.optim.Adam"
EXPERIMENTAL_JIT = "experimental.optim.Adam-jit"
NN = "nn.Adam"
MINT = "mint.optim.Adam"
VARIANT_NAMES = (EXPERIMENTAL, EXPERIMENTAL_JIT, NN, MINT)
DTYPES = ("float32", "float16", "float64")
DEVICES = ("CPU", "GPU", "Ascend")
INT32_MAX = 2**31 - 1
FLOAT32_EXACT_INT = 2**24
POOL_SIZE = 256  # built optimizers kept for reuse (each holds its compiled graphs, ~1 MiB)

_session_ids = itertools.count()
_device_set: list[str] = []  # the device this process was set to, once


def _import_mindspore():
    os.environ.setdefault("MS_OM_PATH",
                          os.path.join(tempfile.gettempdir(), f"adamconf-mindspore-{os.getuid()}"))
    # MindSpore's C++ log prints every refused probe (a float64 kernel, mint on CPU) as an
    # ERROR with a stack; the adapter reports those itself, with the reason. GLOG_v=3 to see.
    os.environ.setdefault("GLOG_v", "4")
    with importing("mindspore", NAME):
        import mindspore
    if mindspore.get_context("mode") != mindspore.PYNATIVE_MODE:
        mindspore.set_context(mode=mindspore.PYNATIVE_MODE)
    return mindspore


def _reason(exc: BaseException, depth: int = 0) -> str:
    """The first informative line of MindSpore's message, and what caused it, if anything."""
    lines = [line.strip() for line in str(exc).strip().splitlines()
             if line.strip() and not set(line.strip()) <= set("-")]
    text = re.sub(r" at 0x[0-9a-fA-F]+", "", lines[0] if lines else "")
    reason = f"{type(exc).__name__}: {text}".rstrip(": ")
    cause = exc.__cause__ or exc.__context__
    if cause is not None and depth < 2 and not isinstance(cause, UnsupportedFeature):
        reason += f" (from {_reason(cause, depth + 1)})"
    return reason


def _refusal(exc: BaseException) -> str:
    """A trial's failure as its reason: the adapter's own words, or MindSpore's."""
    return str(exc) if isinstance(exc, UnsupportedFeature) else _reason(exc)


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C-level stderr (MindSpore prints its failed Ascend library loads and the C++
    stacks of refused trial steps there)."""
    sys.stderr.flush()
    try:
        fd = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        sys.stderr.flush()
        os.dup2(fd, 2)
        os.close(fd)


class _MS:
    """The mindspore module and conversions between the seam's arrays and Tensors."""

    def __init__(self, ms) -> None:
        self.ms = ms
        self.dtypes = {"float32": ms.float32, "float16": ms.float16, "float64": ms.float64}

    def tensor(self, array, dtype: str):
        # float64 → the variant's dtype is exact: the seam carries representable values only
        return self.ms.Tensor(np.array(array, dtype=np.float64).astype(np.dtype(dtype)),
                              self.dtypes[dtype])

    @staticmethod
    def array(tensor) -> np.ndarray:
        return np.array(tensor.asnumpy(), dtype=np.float64)

    def assign(self, parameter, value) -> None:
        self.ms.ops.assign(parameter, value)


def _ensure_device(ms, device: str) -> None:
    """Set MindSpore's device once per process; a second, different device is refused."""
    if _device_set:
        if _device_set[0] != device:
            raise UnsupportedFeature(f"MindSpore's device is set once per process; this process "
                                     f"runs on {_device_set[0]}, not {device}")
        return
    current = ms.get_context("device_target")
    if current != device:
        try:
            ms.set_device(device)
        except Exception as exc:
            raise UnsupportedFeature(f"mindspore.set_device({device!r}) failed: "
                                     f"{_reason(exc)}") from exc
    _device_set.append(device)


class _Engine:
    """A built MindSpore optimizer, its Parameters and its step callable.

    Building one and compiling its step graph costs far more than a case's steps, so the
    backend keeps engines and hands a free one to the next case with the same key (variant,
    shapes, every hyperparameter but lr, which lives in a Parameter). ``reset`` puts every
    Parameter the optimizer holds back to the value it had when it was built: the optimizer
    is then in the state of a fresh one, and its compiled graphs are reused.
    """

    def __init__(self, msm: _MS, params: list, optimizer, call, lr_parameters: list) -> None:
        self.params, self.optimizer, self.call = params, optimizer, call
        self.lr_parameters = lr_parameters
        own = {id(p) for p in params}
        held = {id(p): p for p in [*optimizer.get_parameters(), *lr_parameters]
                if id(p) not in own}
        ms = msm.ms
        self._built = [(p, ms.Tensor(p.asnumpy(), p.dtype)) for p in held.values()]
        self.owner = None  # weak reference to the session using it, if any

    def free(self) -> bool:
        return self.owner is None or self.owner() is None

    def reset(self, msm: _MS) -> None:
        for parameter, value in self._built:
            msm.assign(parameter, value)


class MindSporeSession:
    """One MindSpore optimizer on one problem (a new one, or a reset one from the pool)."""

    def __init__(self, msm: _MS, problem: CaseSetup, variant: Variant,
                 engine: _Engine | None = None) -> None:
        self._msm, self._variant, self._problem = msm, variant, problem
        self._group_start = list(itertools.accumulate(
            [0] + [len(g.params) for g in problem.groups]))
        if engine is None:
            engine = self._build()
        else:
            engine.reset(msm)
            for parameter, value in zip(engine.params, problem.params, strict=True):
                msm.assign(parameter, msm.tensor(value, variant.dtype))
            for parameter, group in zip(engine.lr_parameters, problem.groups, strict=True):
                msm.assign(parameter, msm.ms.Tensor(float(group.config.lr), msm.ms.float32))
        engine.owner = weakref.ref(self)
        self.engine = engine
        self._params, self.optimizer = engine.params, engine.optimizer
        self._lr_parameters, self._call = engine.lr_parameters, engine.call
        # the lr each group's Parameter holds now (as built, or as just assigned)
        self._lrs_held = [float(g.config.lr) for g in problem.groups]
        if problem.initial_state is not None:
            self._load_state()

    def _build(self) -> _Engine:
        msm, ms, variant, problem = self._msm, self._msm.ms, self._variant, self._problem
        sid = next(_session_ids)
        self._params = [ms.Parameter(msm.tensor(p, variant.dtype), name=f"adamconf{sid}_param{i}")
                        for i, p in enumerate(problem.params)]
        builders = {EXPERIMENTAL: self._build_experimental,
                    EXPERIMENTAL_JIT: self._build_experimental,
                    NN: self._build_nn, MINT: self._build_mint}
        builders[variant.name]()
        call = (_graph_step(ms, self.optimizer) if variant.name == EXPERIMENTAL_JIT
                else self.optimizer)
        return _Engine(msm, self._params, self.optimizer, call, self._lr_parameters)

    def _group_params(self, gi: int) -> list:
        return self._params[self._group_start[gi]:self._group_start[gi + 1]]

    # --- experimental.optim.Adam and mint.optim.Adam share the torch-like API ------------
    def _torch_like_groups(self) -> list[dict]:
        return [{"params": self._group_params(gi), "lr": g.config.lr,
                 "betas": tuple(g.config.betas), "eps": g.config.eps,
                 "weight_decay": g.config.weight_decay, "amsgrad": g.config.amsgrad,
                 "maximize": g.config.maximize}
                for gi, g in enumerate(self._problem.groups)]

    def _build_experimental(self) -> None:
        from mindspore.experimental import optim

        self.optimizer = optim.Adam(self._torch_like_groups(), lr=self._problem.groups[0].config.lr)
        self._lr_parameters = list(self.optimizer.lrs)

    def _build_mint(self) -> None:
        from mindspore import mint

        self.optimizer = mint.optim.Adam(self._torch_like_groups(),
                                         lr=self._problem.groups[0].config.lr)
        self._lr_parameters = list(self.optimizer.lrs)

    # --- nn.Adam -----------------------------------------------------------------------
    def _build_nn(self) -> None:
        from mindspore import nn

        configs = [g.config for g in self._problem.groups]
        if any(c.maximize for c in configs):
            raise UnsupportedFeature("nn.Adam has no maximize option")
        for what in ("betas", "eps", "amsgrad"):
            if len({getattr(c, what) for c in configs}) > 1:
                raise UnsupportedFeature(f"nn.Adam takes one {what} for all parameters; the "
                                         "groups here differ (its groups set only lr and "
                                         "weight_decay)")
        first = configs[0]
        groups = [{"params": self._group_params(gi), "lr": c.lr,
                   "weight_decay": c.weight_decay} for gi, c in enumerate(configs)]
        try:
            self.optimizer = nn.Adam(groups, learning_rate=first.lr, beta1=first.beta1,
                                     beta2=first.beta2, eps=first.eps, weight_decay=0.0,
                                     use_amsgrad=first.amsgrad)
        except ValueError as exc:  # e.g. beta = 0 or eps = 0: outside nn.Adam's own range
            raise UnsupportedFeature(f"nn.Adam refuses these hyperparameters: "
                                     f"{_reason(exc)}") from exc
        # one float32 Parameter per group, shared by the group's parameters
        self._lr_parameters = [self.optimizer.learning_rate[start]
                               for start in self._group_start[:-1]]

    # --- resume --------------------------------------------------------------------------
    def _load_state(self) -> None:
        msm, ms = self._msm, self._msm.ms
        init = self._problem.initial_state
        dtype = self._variant.dtype
        owner = self._problem.group_of_param()
        name = self._variant.name
        if name == NN:
            m_slots, v_slots = self.optimizer.moment1, self.optimizer.moment2
        else:
            m_slots, v_slots = self.optimizer.exp_avg, self.optimizer.exp_avg_sq
        for index in range(len(self._params)):
            msm.assign(m_slots[index], msm.tensor(init.m[index], dtype))
            msm.assign(v_slots[index], msm.tensor(init.v[index], dtype))
        if name in (EXPERIMENTAL, EXPERIMENTAL_JIT):
            if init.step > INT32_MAX:
                raise UnsupportedFeature(f"experimental.optim.Adam counts steps in an int32 "
                                         f"Parameter; step {init.step} does not fit")
            msm.assign(self.optimizer.state_step, ms.Tensor(init.step, ms.int32))
            # its max_exp_avg_sq is never read or written by 2.10's step (amsgrad is ignored);
            # it is loaded as given, in the documented meaning (max of bias-corrected v)
            for index in range(len(self._params)):
                msm.assign(self.optimizer.max_exp_avg_sq[index],
                           msm.tensor(init.vmax[index], dtype))
        elif name == MINT:
            if init.step > FLOAT32_EXACT_INT:
                raise UnsupportedFeature(f"mint.optim.Adam counts steps in a float32 "
                                         f"Parameter; step {init.step} is not exact there")
            msm.assign(self.optimizer.state_step, ms.Tensor([float(init.step)], ms.float32))
            for gi, group in enumerate(self.optimizer.param_groups):
                if "max_exp_avg_sq" in group:  # mint's amsgrad would keep max of raw v
                    beta2 = self._problem.groups[gi].config.beta2
                    rows = range(self._group_start[gi], self._group_start[gi + 1])
                    for slot, index in zip(group["max_exp_avg_sq"], rows, strict=True):
                        msm.assign(slot, msm.tensor(init.raw_vmax(index, beta2), dtype))
        else:  # nn.Adam holds t only through β1^t, β2^t (float32 running products)
            if init.step > INT32_MAX:
                raise UnsupportedFeature(f"nn.Adam counts steps in an int32 Parameter; step "
                                         f"{init.step} does not fit")
            config = self._problem.groups[0].config
            msm.assign(self.optimizer.beta1_power,
                       ms.Tensor(config.beta1 ** init.step, ms.float32))
            msm.assign(self.optimizer.beta2_power,
                       ms.Tensor(config.beta2 ** init.step, ms.float32))
            msm.assign(self.optimizer.global_step, ms.Tensor([init.step], ms.int32))
            if config.amsgrad:  # ApplyAdamWithAmsgradV2 keeps the max of raw v
                for index in range(len(self._params)):
                    beta2 = self._problem.groups[owner[index]].config.beta2
                    msm.assign(self.optimizer.vhat[index],
                               msm.tensor(init.raw_vmax(index, beta2), dtype))

    # --- the Session protocol -------------------------------------------------------------
    def step(self, grads: Sequence[np.ndarray], lrs: Sequence[float] | None = None) -> None:
        msm = self._msm
        check_step(grads, lrs, len(self._params), len(self._lr_parameters),
                   groups_word="param groups")
        if lrs is not None:
            for gi, (parameter, lr) in enumerate(zip(self._lr_parameters, lrs, strict=True)):
                # as LRScheduler.step: ops.assign into the group's float32 lr Parameter; an
                # unchanged lr is not assigned again (the Parameter holds it already)
                if float(lr) != self._lrs_held[gi] or np.signbit(lr) != np.signbit(
                        self._lrs_held[gi]):
                    msm.assign(parameter, msm.ms.Tensor(float(lr), msm.ms.float32))
                    self._lrs_held[gi] = float(lr)
        self._call(tuple(msm.tensor(g, self._variant.dtype) for g in grads))

    def params(self) -> list[np.ndarray]:
        return [self._msm.array(p) for p in self._params]

    def state(self) -> OptimizerState | None:
        msm, opt, name = self._msm, self.optimizer, self._variant.name
        if name == NN:
            vmax = ([msm.array(s) for s in opt.vhat]
                    if self._problem.groups[0].config.amsgrad else None)
            return OptimizerState(step=int(msm.array(opt.global_step).reshape(-1)[0]),
                                  m=[msm.array(s) for s in opt.moment1],
                                  v=[msm.array(s) for s in opt.moment2],
                                  vmax=vmax, vmax_kind="raw")
        m = [msm.array(s) for s in opt.exp_avg]
        v = [msm.array(s) for s in opt.exp_avg_sq]
        step = int(msm.array(opt.state_step).reshape(-1)[0])
        any_amsgrad = any(g.config.amsgrad for g in self._problem.groups)
        if name == MINT:
            vmax = None
            if any_amsgrad:  # mint keeps max_exp_avg_sq per amsgrad group only
                vmax = []
                for gi, group in enumerate(opt.param_groups):
                    slots = group.get("max_exp_avg_sq")
                    if slots is None:
                        vmax.extend(np.zeros(p.shape) for p in self._problem.groups[gi].params)
                    else:
                        vmax.extend(msm.array(s) for s in slots)
            return OptimizerState(step=step, m=m, v=v, vmax=vmax, vmax_kind="raw")
        vmax = [msm.array(s) for s in opt.max_exp_avg_sq] if any_amsgrad else None
        return OptimizerState(step=step, m=m, v=v, vmax=vmax, vmax_kind="hat")


def _graph_step(ms, optimizer):
    """The step as one graph: the optimizer called from a ``mindspore.jit`` function."""

    # Each gradient is a positional Tensor argument, which jit treats as a variable. A tuple
    # of Tensors would be a constant of the graph: a new gradient value, a new compilation.
    @ms.jit
    def graph_step(*gradients):
        return optimizer(gradients)

    def call(gradients):
        return graph_step(*gradients)

    return call


class MindSporeBackend(FrameworkBackend):
    """MindSpore's ``experimental.optim.Adam`` (PyNative, jit), ``nn.Adam``, ``mint.optim.Adam``."""

    name = NAME
    dtypes = DTYPES

    def __init__(self) -> None:
        super().__init__()
        # (variant, amsgrad) → MindSpore's refusal, found by one trial step
        self._refused: dict[tuple[Variant, bool], str] = {}
        # engine key → built optimizers, least recently used first (see _Engine)
        self._engines: OrderedDict[tuple, list[_Engine]] = OrderedDict()

    def _msm(self) -> _MS:
        return _MS(_import_mindspore())

    @staticmethod
    def _devices(ms) -> list[str]:
        devices = []
        with _quiet_stderr():
            for target in DEVICES:
                try:
                    if ms.hal.is_available(target):
                        devices.append(target)
                except Exception:  # a device whose runtime cannot even be asked is absent
                    continue
        return devices or [ms.get_context("device_target")]

    def _try(self, msm: _MS, variant: Variant, amsgrad: bool) -> str | None:
        """One step of the trial problem; MindSpore's refusal as a reason, or None."""
        problem = trial_problem(amsgrad=amsgrad)

        def unmoved(session: MindSporeSession, params: list[np.ndarray]) -> str | None:
            if variant.name == MINT and np.array_equal(params[0], problem.params[0]):
                # seen on CPU: after the first call's SystemError, mint's in-place
                # Parameter.add_ does nothing, so later steps "succeed" and leave θ and
                # state_step unchanged
                return "its step ran without error but left the parameter unchanged"
            return None

        with _quiet_stderr():  # a refused trial prints C++ stacks; its reason is kept
            return one_step_refusal(lambda p: MindSporeSession(msm, p, variant), problem,
                                    reason=_refusal, check=unmoved)

    def _try_mint_off_ascend(self, msm: _MS, device: str) -> str | None:
        """mint.optim.Adam is documented for Ascend only; elsewhere, see whether it runs."""
        first = None
        for _ in range(2):  # its first call in a process can fail differently
            reason = self._try(msm, Variant(NAME, MINT, device, "float32"), False)
            if reason is None:
                return None
            first = first or reason
        return (f"documented for Ascend only (Supported Platforms: Ascend); on {device}: "
                f"{first}" + ("" if reason == first else f"; tried again: {reason}"))

    def describe(self) -> BackendInfo:
        msm = self._msm()
        ms = msm.ms
        all_devices = self._devices(ms)
        device = _device_set[0] if _device_set else ms.get_context("device_target")
        info = BackendInfo(
            name=NAME, installed=True, versions={"mindspore": ms.__version__},
            devices=all_devices, dtypes=list(DTYPES), install_hint=self.install_hint,
            description=f"MindSpore in PyNative mode on {device}; the device is set once per "
                        "process")
        try:
            _ensure_device(ms, device)
        except UnsupportedFeature as exc:
            info.unsupported.append(Unsupported(device, str(exc)))
            return info
        for other in all_devices:
            if other != device:
                info.unsupported.append(Unsupported(
                    f"*/{other}", f"this process runs MindSpore on {device}; MindSpore's device "
                                  f"is set once per process (run a process with {other})"))
        for name in VARIANT_NAMES:
            if name == MINT and device != "Ascend":
                reason = self._try_mint_off_ascend(msm, device)
                if reason is not None:
                    info.unsupported.append(Unsupported(f"{name}/{device}", reason))
                    self._refused.update({(Variant(NAME, name, device, dtype), ams): reason
                                          for dtype in DTYPES for ams in (False, True)})
                    continue
            refused_all = {}
            for dtype in DTYPES:
                variant = Variant(NAME, name, device, dtype)
                refusals = {ams: self._try(msm, variant, ams) for ams in (False, True)}
                for ams, reason in refusals.items():
                    if reason is not None:
                        self._refused[(variant, ams)] = reason
                if all(r is None for r in refusals.values()):
                    info.variants.append(variant)
                elif any(r is None for r in refusals.values()):
                    info.variants.append(variant)
                    ams = next(a for a, r in refusals.items() if r is not None)
                    info.unsupported.append(Unsupported(f"{variant.id} with amsgrad={ams}",
                                                        refusals[ams]))
                else:
                    refused_all[dtype] = refusals[False]
            if len(refused_all) == len(DTYPES) and len(set(refused_all.values())) == 1:
                info.unsupported.append(Unsupported(f"{name}/{device}",
                                                    next(iter(refused_all.values()))))
            else:
                info.unsupported.extend(Unsupported(f"{name}/{device}/{dtype}", reason)
                                        for dtype, reason in refused_all.items())
        info.unsupported.append(Unsupported(f"{NN} maximize", "nn.Adam has no maximize option"))
        return info

    def framework_for(self, variant: Variant) -> _MS:
        msm = self._msm()
        self.check_variant(variant, "MindSpore", VARIANT_NAMES, DEVICES)
        _ensure_device(msm.ms, variant.device)
        self.probe()
        return msm

    def check_case(self, problem: CaseSetup, variant: Variant) -> None:
        amsgrad_flags = {g.config.amsgrad for g in problem.groups}
        for ams in sorted(amsgrad_flags):
            reason = self._refused.get((variant, ams))
            if reason is not None:
                raise UnsupportedFeature(f"MindSpore refuses {variant.id} with amsgrad={ams}: "
                                         f"{reason}")

    def session(self, msm: _MS, problem: CaseSetup, variant: Variant) -> MindSporeSession:
        """A session on a free pooled optimizer built for the same key, or on a new one."""
        key = _engine_key(problem, variant)
        engines = self._engines.get(key, []) if key is not None else []
        engine = next((e for e in engines if e.free()), None)
        try:
            session = MindSporeSession(msm, problem, variant, engine)
        except ValueError as exc:
            if any(p.size == 0 for p in problem.params):
                # no optimizer can be given one: MindSpore has no empty Parameter at all
                raise UnsupportedFeature(f"MindSpore cannot make an empty Parameter: "
                                         f"{_reason(exc)}") from None
            raise
        if key is not None:
            if engine is None:
                self._engines.setdefault(key, []).append(session.engine)
                self._evict()
            self._engines.move_to_end(key)
        return session

    def _evict(self) -> None:
        """Drop the least recently used free engines beyond POOL_SIZE."""
        held = sum(len(engines) for engines in self._engines.values())
        for key in list(self._engines):
            if held <= POOL_SIZE:
                break
            engines = self._engines[key]
            for engine in [e for e in engines if e.free()]:
                engines.remove(engine)
                held -= 1
            if not engines:
                del self._engines[key]

    def release(self) -> None:
        """Drop every pooled optimizer (and with it what MindSpore keeps for its graphs)."""
        self._engines.clear()
        gc.collect()

    def construct(self, variant: Variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False) -> None:
        msm = self.framework_for(variant)
        ms = msm.ms
        param = ms.Parameter(msm.tensor(np.zeros(2), variant.dtype),
                             name=f"adamconf{next(_session_ids)}_construct")
        if variant.name in (EXPERIMENTAL, EXPERIMENTAL_JIT):
            from mindspore.experimental import optim

            optim.Adam([param], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                       amsgrad=amsgrad, maximize=maximize)
        elif variant.name == MINT:
            from mindspore import mint

            mint.optim.Adam([param], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                            amsgrad=amsgrad, maximize=maximize)
        else:
            from mindspore import nn

            if maximize:
                raise UnsupportedFeature("nn.Adam has no maximize option")
            beta1, beta2 = betas
            nn.Adam([param], learning_rate=lr, beta1=beta1, beta2=beta2, eps=eps,
                    weight_decay=weight_decay, use_amsgrad=amsgrad)


def _engine_key(problem: CaseSetup, variant: Variant) -> tuple | None:
    """What a built optimizer must share with a case to run it: the variant, the shapes, and
    every hyperparameter MindSpore fixes when it builds the optimizer or compiles its step
    (all but lr, which it holds in a Parameter). None: never reused (mint.optim.Adam keeps
    per-group state outside its registered Parameters)."""
    if variant.name == MINT:
        return None
    def exact(value):  # -0.0 is not 0.0, an int is not a float, NaN is NaN
        return type(value).__name__, repr(value)

    groups = tuple((tuple(p.shape for p in g.params), *map(exact, g.config.betas),
                    exact(g.config.eps), exact(g.config.weight_decay), g.config.amsgrad,
                    g.config.maximize)
                   for g in problem.groups)
    return (variant, groups)

