"""JAX/optax: ``optax.adam`` and ``optax.amsgrad``, driven step by step.

Variants (``Variant.name``) × device (``cpu``; ``gpu`` where present) × dtype (float64,
float32, float16, bfloat16):

- ``optax.adam`` — ``scale_by_adam`` then ``scale_by_learning_rate``: m̂/(√(v̂ + eps_root) + ε)
  with eps_root = 0 and both moments bias-corrected (``optax/_src/transform.py``), i.e. the
  documented update. Problems with amsgrad are refused ("use the optax.amsgrad variant").
- ``optax.amsgrad`` — ``scale_by_amsgrad``: ``nu_max = max(nu_max, bias-corrected nu)``, the
  max of v̂ as documented (``vmax_kind="hat"``). Problems without amsgrad are refused: it
  is another optimizer, not a switch.

How the adapter builds what a user would:

- L2 weight decay is ``optax.chain(optax.add_decayed_weights(λ), adam)``: λθ is added to
  the gradient before the moments, the documented order (only when λ ≠ 0).
- ``maximize`` does not exist in optax and is refused; the adapter does not negate
  gradients to fake it.
- The lr can change between steps: the optimizer is ``optax.inject_hyperparams(optax.adam,
  static_args=("b1", "b2", "eps"))`` and the lr is set in
  ``opt_state.hyperparams['learning_rate']`` (an array of the parameters' dtype). b1, b2
  and ε stay Python floats, as in plain ``optax.adam``: injected, inject_hyperparams casts
  them to the parameters' dtype, and in bfloat16 b2 = 0.999 becomes exactly 1.0
  (1 − b2^t = 0, the first update NaN) — measured, and not what a user of optax.adam gets.
- Param groups: one optax optimizer per group over that group's parameters (equivalent to
  ``optax.multi_transform`` with one label per group, which masks the others out), all
  groups updated in one jitted step with ``optax.apply_updates`` (θ + u, u = −lr·…).
- Resume: the state is built with ``count = step`` (int32; larger steps are refused) and
  ``mu``, ``nu`` (and ``nu_max`` in the documented meaning, as optax keeps it).

float64 needs JAX's x64 mode: the adapter enables ``jax_enable_x64`` when it first touches
JAX (before any array exists). The switch is process-wide: every later JAX computation in
this process defaults to 64-bit (``jnp.array(1.0)`` is float64). The narrower variants are
unaffected: their arrays, and so their injected hyperparameters, have their dtype explicitly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import BackendInfo, CaseSetup, OptimizerState, Unsupported, UnsupportedFeature, Variant
from .features import Lacking
from .framework import FrameworkBackend, check_step
from .install import importing

__all__ = ["JaxBackend", "VARIANT_NAMES", "import_jax", "jax_devices"]

NAME = "jax"
ADAM = "optax.adam"
AMSGRAD = "optax.amsgrad"
VARIANT_NAMES = (ADAM, AMSGRAD)
DEVICE_KINDS = ("cpu", "gpu")
INT32_MAX = 2**31 - 1
LACKING = Lacking.of("optax", "maximize")


def import_jax():
    """jax and optax, with x64 on (the generic optax driver imports them so too)."""
    with importing("jax/optax", NAME):
        import jax
        import optax
    # process-wide, and must precede any array: see the module docstring
    jax.config.update("jax_enable_x64", True)
    return jax, optax


def jax_devices(jax) -> dict[str, object]:
    """Device kind (cpu, gpu) → the first such device JAX has here."""
    found = {}
    for kind in DEVICE_KINDS:
        try:
            devices = jax.devices(kind)
        except (RuntimeError, ValueError):  # "Unknown backend": no such platform here
            continue
        if devices:
            found[kind] = devices[0]
    return found


class _Jax:
    def __init__(self) -> None:
        self.jax, self.optax = import_jax()
        import jax.numpy as jnp

        self.jnp = jnp

    def devices(self) -> dict[str, object]:
        return jax_devices(self.jax)

    def array(self, values, variant: Variant, device):
        # float64 → the variant's dtype is exact: the seam carries representable values only
        dtype = self.jnp.dtype(variant.dtype)  # bfloat16 through ml_dtypes, as JAX names it
        host = np.array(values, dtype=np.float64).astype(dtype)
        return self.jax.device_put(host, device)

    @staticmethod
    def to_numpy(array) -> np.ndarray:
        return np.array(array, dtype=np.float64)


def _transformation(jx: _Jax, variant: Variant, *, lr, b1, b2, eps, weight_decay):
    """The optimizer a user writes: inject_hyperparams(adam|amsgrad), L2 decay chained first."""
    optax = jx.optax
    factory = optax.amsgrad if variant.name == AMSGRAD else optax.adam
    # only the lr is injected (it changes between steps); b1, b2 and eps stay Python floats
    # as in plain optax.adam — injected, they would be cast to the parameters' dtype
    adam = optax.inject_hyperparams(factory, static_args=("b1", "b2", "eps"))(
        learning_rate=lr, b1=b1, b2=b2, eps=eps)
    if weight_decay != 0:
        return optax.chain(optax.add_decayed_weights(weight_decay), adam), True
    return adam, False


class JaxSession:
    """One optax optimizer per param group, all stepped in one jitted function."""

    def __init__(self, framework: tuple[_Jax, object], problem: CaseSetup,
                 variant: Variant) -> None:
        jx, device = framework  # JAX, and the variant's device
        self._jx, self._variant, self._device = jx, variant, device
        self._problem = problem
        self._txs, self._chained = [], []
        self._params: list[list] = []
        self._states: list = []
        self._rows = problem.group_ranges()
        for group in problem.groups:
            cfg = group.config
            tx, chained = _transformation(jx, variant, lr=cfg.lr, b1=cfg.beta1, b2=cfg.beta2,
                                          eps=cfg.eps, weight_decay=cfg.weight_decay)
            params = [jx.array(p, variant, device) for p in group.params]
            self._txs.append(tx)
            self._chained.append(chained)
            self._params.append(params)
            self._states.append(tx.init(params))
        if problem.initial_state is not None:
            self._load_state()
        self._update = jx.jax.jit(self._step_all)

    def _inject_state(self, gi: int, state=None):
        state = self._states[gi] if state is None else state
        return state[1] if self._chained[gi] else state

    def _with_inject_state(self, gi: int, inject_state):
        if self._chained[gi]:
            return (self._states[gi][0], inject_state)
        return inject_state

    def _load_state(self) -> None:
        jx, jnp = self._jx, self._jx.jnp
        init = self._problem.initial_state
        count = jnp.asarray(init.step, dtype=jnp.int32)
        for gi, rows in enumerate(self._rows):
            inject = self._inject_state(gi)
            adam_state = inject.inner_state[0]  # (scale_by_adam|amsgrad, scale_by_learning_rate)
            fields = {
                "count": count,
                "mu": [jx.array(init.m[i], self._variant, self._device) for i in rows],
                "nu": [jx.array(init.v[i], self._variant, self._device) for i in rows],
            }
            if self._variant.name == AMSGRAD:
                # optax keeps nu_max as the max of bias-corrected nu: the documented v̂max as is
                fields["nu_max"] = [jx.array(init.vmax[i], self._variant, self._device)
                                    for i in rows]
            inner = (adam_state._replace(**fields),) + tuple(inject.inner_state[1:])
            # the wrapper's own count (it drives schedules) resumes with the same step
            inject = inject._replace(count=count, inner_state=inner)
            self._states[gi] = self._with_inject_state(gi, inject)

    def _step_all(self, params, grads, states):
        new_params, new_states = [], []
        for tx, p, g, s in zip(self._txs, params, grads, states, strict=True):
            updates, s = tx.update(g, s, p)
            new_params.append(self._jx.optax.apply_updates(p, updates))
            new_states.append(s)
        return new_params, new_states

    def step(self, grads: Sequence[np.ndarray], lrs: Sequence[float] | None = None) -> None:
        jx = self._jx
        check_step(grads, lrs, sum(len(p) for p in self._params), len(self._params))
        if lrs is not None:
            for gi, lr in enumerate(lrs):
                hyper = self._inject_state(gi).hyperparams
                # optax's documented way to change an injected hyperparameter between steps
                hyper["learning_rate"] = jx.jnp.asarray(float(lr),
                                                        dtype=hyper["learning_rate"].dtype)
        grouped = [[jx.array(grads[i], self._variant, self._device) for i in rows]
                   for rows in self._rows]
        self._params, self._states = self._update(self._params, grouped, self._states)

    def params(self) -> list[np.ndarray]:
        return [self._jx.to_numpy(p) for params in self._params for p in params]

    def state(self) -> OptimizerState | None:
        to_numpy = self._jx.to_numpy
        adam_states = [self._inject_state(gi).inner_state[0] for gi in range(len(self._params))]
        if not adam_states:
            return None
        vmax = None
        if self._variant.name == AMSGRAD:
            vmax = [to_numpy(a) for s in adam_states for a in s.nu_max]
        return OptimizerState(step=int(adam_states[0].count),
                              m=[to_numpy(a) for s in adam_states for a in s.mu],
                              v=[to_numpy(a) for s in adam_states for a in s.nu],
                              vmax=vmax, vmax_kind="hat")


class JaxBackend(FrameworkBackend):
    """``optax.adam`` and ``optax.amsgrad`` through ``optax.inject_hyperparams``."""

    name = NAME
    session_class = JaxSession

    def describe(self) -> BackendInfo:
        jx = _Jax()
        devices = list(jx.devices())
        info = BackendInfo(
            name=NAME, installed=True,
            versions={"jax": jx.jax.__version__, "jaxlib": _jaxlib_version(),
                      "optax": jx.optax.__version__},
            devices=devices, dtypes=list(self.dtypes), install_hint=self.install_hint,
            description="optax.inject_hyperparams(optax.adam | optax.amsgrad), L2 decay as "
                        "chain(add_decayed_weights, ·), one optimizer per group, jitted step; "
                        "jax_enable_x64 on")
        info.variants = [Variant(NAME, name, device, dtype) for name in VARIANT_NAMES
                         for device in devices for dtype in self.dtypes]
        info.unsupported = [
            *LACKING.unsupported(),
            Unsupported(f"{ADAM} amsgrad", "optax.adam has no amsgrad switch: optax.amsgrad is "
                                           "its own variant"),
            Unsupported(f"{AMSGRAD} without amsgrad", "optax.amsgrad always keeps the max"),
        ]
        return info

    def framework_for(self, variant: Variant):
        jx = _Jax()
        self.check_variant(variant, "jax", VARIANT_NAMES)
        devices = jx.devices()
        self.check_device(variant, devices, "JAX")
        return jx, devices[variant.device]

    def check_case(self, problem: CaseSetup, variant: Variant) -> None:
        for gi, group in enumerate(problem.groups):
            cfg = group.config
            LACKING.check_group(gi, cfg)
            if cfg.amsgrad and variant.name == ADAM:
                raise UnsupportedFeature(f"group {gi} asks for amsgrad: optax.adam has none; use "
                                         "the optax.amsgrad variant")
            if not cfg.amsgrad and variant.name == AMSGRAD:
                raise UnsupportedFeature(f"group {gi} does not ask for amsgrad: optax.amsgrad is "
                                         "another optimizer, not a switch; use the optax.adam "
                                         "variant")
        if problem.initial_state is not None and problem.initial_step > INT32_MAX:
            raise UnsupportedFeature(f"optax counts steps in int32; step {problem.initial_step} "
                                     "does not fit")

    def construct(self, variant: Variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False) -> None:
        jx, device = self.framework_for(variant)
        LACKING.check_construct(weight_decay, amsgrad, maximize)
        if amsgrad and variant.name == ADAM:
            raise UnsupportedFeature("optax.adam has no amsgrad; use the optax.amsgrad variant")
        # optax.amsgrad is amsgrad whatever the flag says: the variant is the choice
        beta1, beta2 = betas
        tx, _ = _transformation(jx, variant, lr=lr, b1=beta1, b2=beta2, eps=eps,
                                weight_decay=weight_decay)
        tx.init([jx.array(np.zeros(2), variant, device)])


def _jaxlib_version() -> str:
    try:
        import jaxlib

        return jaxlib.__version__
    except (ImportError, AttributeError):
        return "unknown"
