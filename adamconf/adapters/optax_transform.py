"""Any optax-style GradientTransformation factory, driven step by step.

``optax-transform:package.module:factory`` judges ``factory(learning_rate=..., b1=..., b2=...,
eps=..., **options)``, the keywords of ``optax.adam``, returning an
``optax.GradientTransformation`` whose updates are *added* to the parameters
(``optax.apply_updates``), as every optax optimizer's are.

What the driver does, and nothing else:

- The signature (``inspect``) must name ``learning_rate``, ``b1``, ``b2`` and ``eps`` (or take
  ``**kwargs``). Weight decay is ``weight_decay=λ`` where the signature names it (its meaning
  is the factory's: ``optax.adamw``'s is decoupled), else optax's way of writing L2:
  ``optax.chain(optax.add_decayed_weights(λ), tx)``. ``amsgrad`` and ``maximize`` are passed
  only where the signature names them; cases that need them are unsupported otherwise (the
  driver does not negate gradients to fake maximize).
- A keyword the signature names is probed by effect, on a problem where the documented
  feature changes the trajectory: one without effect is *accepted and ignored*, and its cases
  are unsupported with that reason. A feature a factory fixes is declared by the user:
  ``--feature amsgrad=always`` for ``optax.amsgrad`` (its cases without amsgrad are
  unsupported, those with it run), ``--feature maximize=never``.
- Options (``--option key=value``) are checked against the signature as the torch driver's
  are: an unknown one is a usage error naming the factory's parameters.
- The lr changes between steps through ``optax.inject_hyperparams(factory,
  static_args=(b1, b2, eps and the options))``: only the lr is injected (an array of the
  parameters' dtype), the rest stay Python values as in a plain call. Where the factory does
  not survive ``inject_hyperparams`` (found by one trial step at probe time), it is called
  plainly and cases whose lr changes are unsupported, with the reason.
- Param groups: one transformation per group, all updated in one jitted step.
- State is read where it follows optax's names: exactly one node of the state with ``mu``,
  ``nu`` and ``count`` (``ScaleByAdamState``; ``nu_max`` for amsgrad). Otherwise it is
  reported absent, and resuming is unsupported; where it is found, resuming replaces those
  fields (``count`` in int32). What they hold is probed per variant (``state="auto"``): ``mu``
  must hold m and ``nu`` v after the probe's steps, ``nu_max`` the max of v̂
  (``scale_by_amsgrad``'s) or of raw v; what holds something else is not compared, and every
  report says so. ``state="compare"`` compares them whatever they hold, ``"ignore"`` judges θ
  alone.

float64 needs JAX's x64 mode: the driver enables ``jax_enable_x64`` when it first touches JAX,
process-wide, as the ``jax`` backend does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .base import (
    BackendInfo,
    BackendUnavailable,
    CaseSetup,
    Hyperparameters,
    OptimizerState,
    Unsupported,
    UnsupportedFeature,
    Variant,
)
from .features import FEATURES, group_asks
from .framework import check_step
from .generic import GenericDriver, Trial, probe_problem, run_trial, signature_of
from .jax_backend import import_jax, jax_devices

__all__ = ["OptaxTransformBackend", "optax_transform_backend"]

PREFIX = "optax-transform"
REQUIRED = ("learning_rate", "b1", "b2", "eps")
INT32_MAX = 2**31 - 1
STATE_FIELDS = ("mu", "nu", "count")


def _find_nodes(tree, fields: Sequence[str]) -> list:
    """The nodes of a state (tuples, NamedTuples, lists, dicts) that have all ``fields``."""
    found = []

    def walk(node):
        if all(hasattr(node, f) for f in fields):
            found.append(node)
        elif isinstance(node, (tuple, list)):
            for child in node:
                walk(child)
        elif isinstance(node, dict):
            for child in node.values():
                walk(child)

    walk(tree)
    return found


def _replace_node(tree, old, new):
    """``tree`` with the node ``old`` (by identity) replaced by ``new``."""
    if tree is old:
        return new
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*(_replace_node(c, old, new) for c in tree))
    if isinstance(tree, (tuple, list)):
        return type(tree)(_replace_node(c, old, new) for c in tree)
    if isinstance(tree, dict):
        return {k: _replace_node(v, old, new) for k, v in tree.items()}
    return tree


class OptaxTransformSession:
    """One transformation per param group, all stepped in one jitted function."""

    def __init__(self, backend: OptaxTransformBackend, problem: CaseSetup, variant: Variant,
                 device) -> None:
        self._backend, self._variant, self._device = backend, variant, device
        jax, self._optax = backend.jax()
        self._jax = jax
        self._txs, self._params, self._states = [], [], []
        self._rows = problem.group_ranges()
        for group in problem.groups:
            tx = backend.transformation(group.config, variant)
            params = [self._array(p) for p in group.params]
            self._txs.append(tx)
            self._params.append(params)
            self._states.append(tx.init(params))
        if problem.initial_state is not None:
            self._load_state(problem)
        # committed to the device as the step's outputs are: an uncommitted scalar in the first
        # state (a count, an injected lr) would have the step compiled again at step 2
        self._states = jax.device_put(self._states, device)
        self._update = jax.jit(self._step_all)

    def _array(self, values):
        return _to_device(self._jax, values, self._variant, self._device)

    def _node(self, gi: int):
        nodes = _find_nodes(self._states[gi], STATE_FIELDS)
        return nodes[0] if len(nodes) == 1 else None

    def _load_state(self, problem: CaseSetup) -> None:
        import jax.numpy as jnp

        init = problem.initial_state
        if init.step > INT32_MAX:
            raise UnsupportedFeature(f"optax counts steps in int32; step {init.step} does not fit")
        count = jnp.asarray(init.step, dtype=jnp.int32)
        for gi, rows in enumerate(self._rows):
            node = self._node(gi)
            if node is None:
                raise UnsupportedFeature(f"cannot resume {self._backend.label}: its state has "
                                         "no single node with optax's mu, nu and count")
            fields = {"count": count, "mu": [self._array(init.m[i]) for i in rows],
                      "nu": [self._array(init.v[i]) for i in rows]}
            if hasattr(node, "nu_max"):  # the documented v̂max, as scale_by_amsgrad keeps it
                fields["nu_max"] = [self._array(init.vmax[i]) for i in rows]
            state = _replace_node(self._states[gi], node, node._replace(**fields))
            # inject_hyperparams' own count (it drives schedules) resumes with the same step
            for wrapper in _find_nodes(state, ("hyperparams", "inner_state", "count")):
                state = _replace_node(state, wrapper, wrapper._replace(count=count))
            self._states[gi] = state

    def _step_all(self, params, grads, states):
        new_params, new_states = [], []
        for tx, p, g, s in zip(self._txs, params, grads, states, strict=True):
            updates, s = tx.update(g, s, p)
            new_params.append(self._optax.apply_updates(p, updates))
            new_states.append(s)
        return new_params, new_states

    def step(self, grads: Sequence[np.ndarray], lrs: Sequence[float] | None = None) -> None:
        import jax.numpy as jnp

        injected = lrs if self._backend.injectable else None  # else the lr is fixed
        check_step(grads, injected, sum(len(p) for p in self._params), len(self._params))
        if injected is not None:
            for gi, lr in enumerate(injected):
                for wrapper in _find_nodes(self._states[gi], ("hyperparams", "inner_state")):
                    hyper = wrapper.hyperparams
                    if "learning_rate" in hyper:  # optax's documented way to change it
                        hyper["learning_rate"] = self._jax.device_put(jnp.asarray(
                            float(lr), dtype=hyper["learning_rate"].dtype), self._device)
        grouped = [[self._array(grads[i]) for i in rows] for rows in self._rows]
        self._params, self._states = self._update(self._params, grouped, self._states)

    def params(self) -> list[np.ndarray]:
        return [np.array(p, dtype=np.float64) for params in self._params for p in params]

    def readings(self) -> dict[str, list[np.ndarray] | None]:
        """What the state holds under optax's names (mu, nu, nu_max), whatever it means."""
        nodes = [self._node(gi) for gi in range(len(self._params))]
        out: dict[str, list[np.ndarray] | None] = {"m": None, "v": None, "vmax": None}
        if not nodes or any(n is None for n in nodes):
            return out
        for name, field_name in (("m", "mu"), ("v", "nu"), ("vmax", "nu_max")):
            try:
                if all(hasattr(n, field_name) for n in nodes):
                    out[name] = [np.array(a, dtype=np.float64) for n in nodes
                                 for a in getattr(n, field_name)]
            except TypeError:  # not one array per parameter: not optax's layout
                out[name] = None
        return out

    def state(self) -> OptimizerState | None:
        plan = self._backend.state_plan(self._variant)
        if plan is None:
            return None  # state="ignore": θ alone is judged
        nodes = [self._node(gi) for gi in range(len(self._params))]
        if not nodes or any(n is None for n in nodes):
            return None
        readings = self.readings()
        if readings["m"] is None or readings["v"] is None:
            return None
        return OptimizerState(step=int(nodes[0].count), m=readings["m"] if plan.m else None,
                              v=readings["v"] if plan.v else None,
                              vmax=readings["vmax"] if plan.vmax is not False else None,
                              vmax_kind=plan.vmax_kind)


class OptaxTransformBackend(GenericDriver):
    """An optax-style factory given as 'package.module:factory', by ``optax.adam``'s keywords."""

    target_shape = ("optax factory", "factory")
    kind = "factory"
    vmax_kind = "hat"  # scale_by_amsgrad's nu_max
    state_names = {"m": "mu", "v": "nu", "vmax": "nu_max"}
    install_name = "jax"

    def __init__(self, target: str, options: Mapping[str, str] | None = None, *,
                 name: str | None = None, state: str = "auto",
                 features: Mapping[str, str] | None = None) -> None:
        super().__init__(target, options, reserved=(*REQUIRED, *FEATURES), name=name,
                         state=state, features=features, prefix=PREFIX)
        self.variant_name = target.partition(":")[2].rpartition(".")[2]
        self.injectable = True
        self._inject_reason = ""
        self._factory = None

    # --- the factory ----------------------------------------------------------------------

    def jax(self):
        return import_jax()

    def factory(self):
        if self._factory is None:
            obj = self.resolved()
            if not callable(obj):
                raise BackendUnavailable(f"{self.target} is not callable")
            self._factory = obj
        return self._factory

    def _takes(self, name: str) -> bool:
        """Whether the factory names this keyword; ``**kwargs`` counts for the required ones
        only (a wrapper that forwards them to optax.adam must not be handed weight_decay)."""
        signature = signature_of(self.factory())
        if signature is None:
            return name in REQUIRED  # no signature to read
        return signature.names(name) or (name in REQUIRED and signature.var_keyword)

    def _passes(self, name: str) -> bool:
        """Whether the factory is handed this feature's keyword: where it names it, unless the
        feature is declared fixed (the factory then gets no say in it)."""
        return self._takes(name) and self.features.get(name) not in ("always", "never")

    def _keywords(self, cfg: Hyperparameters) -> dict[str, object]:
        keywords: dict[str, object] = {"b1": cfg.beta1, "b2": cfg.beta2, "eps": cfg.eps}
        for name in FEATURES:
            if self._passes(name):  # always, where named: the factory's default is not the case's
                keywords[name] = getattr(cfg, name)
        keywords.update(self.options)
        return keywords

    def transformation(self, cfg: Hyperparameters, variant: Variant):
        """What a user writes: the factory (lr injected where it can be), L2 chained first
        where the factory takes no weight_decay."""
        jax, optax = self.jax()
        keywords = self._keywords(cfg)
        if self.injectable:
            static = tuple(k for k in keywords)
            tx = optax.inject_hyperparams(self.factory(), static_args=static)(
                learning_rate=cfg.lr, **keywords)
        else:
            tx = self.factory()(learning_rate=cfg.lr, **keywords)
        if cfg.weight_decay != 0 and not self._takes("weight_decay"):
            return optax.chain(optax.add_decayed_weights(cfg.weight_decay), tx)
        return tx

    def check_case(self, problem: CaseSetup, variant: Variant | None = None) -> None:
        """UnsupportedFeature for what the case needs and the factory cannot be given (or
        cannot be judged on: a keyword it ignores, a feature declared fixed)."""
        for gi, group in enumerate(problem.groups):
            cfg = group.config
            for feature, needed in group_asks(cfg).items():
                if not self.check_declared(gi, feature, needed):
                    continue
                if feature in self._features:
                    raise UnsupportedFeature(f"group {gi} needs {feature}: "
                                             f"{self._features[feature]}")
                if feature != "weight_decay" and not self._takes(feature):
                    raise UnsupportedFeature(f"group {gi} needs {feature}: {self.label} takes "
                                             f"no {feature!r} keyword (the driver fakes none)")
            if (not self.injectable and group.lrs is not None
                    and any(float(x) != cfg.lr for x in group.lrs)):
                raise UnsupportedFeature(f"group {gi}'s lr changes between steps, and "
                                         f"{self.label} does not survive "
                                         f"optax.inject_hyperparams: {self._inject_reason}")
        if problem.initial_state is not None:
            self.check_resume(variant)

    # --- the Backend protocol -------------------------------------------------------------

    def devices(self) -> dict[str, object]:
        return jax_devices(self.jax()[0])

    def _trial(self, variant: Variant, device, problem: CaseSetup
               ) -> tuple[Trial | None, str | None]:
        """The problem's steps: θ and the readings after each, or the factory's refusal."""
        return run_trial(lambda p: OptaxTransformSession(self, p, variant, device), problem)

    def _try(self, variant: Variant, device) -> str | None:
        return self._trial(variant, device, probe_problem())[1]

    def versions(self, jax, optax) -> dict[str, str]:
        return self.add_versions({"jax": jax.__version__, "optax": optax.__version__},
                                 self._factory)

    def describe(self) -> BackendInfo:
        jax, optax = self.jax()
        self.factory()
        devices = self.devices()
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        info = BackendInfo(
            name=self.name, installed=True, versions=self.versions(jax, optax),
            devices=list(devices), dtypes=list(self.dtypes), install_hint=self.install_hint,
            description=f"{self.label}(learning_rate, b1, b2, eps) as an optax "
                        "GradientTransformation, lr through inject_hyperparams, L2 as "
                        "chain(add_decayed_weights, ·)" + (f"; options: {options}"
                                                           if options else ""))
        signature = signature_of(self.factory())
        self.check_options_against(signature)
        missing = [n for n in REQUIRED if not self._takes(n)]
        if missing:
            reason = (f"{self.label} takes no {', '.join(missing)} keyword: optax.adam's "
                      "keywords are needed")
            return self.refuse_candidates(info, devices, reason)
        for feature in ("amsgrad", "maximize"):
            if not self._takes(feature) and feature not in self.features:
                info.unsupported.append(Unsupported(feature, f"{self.label} takes no "
                                                    f"{feature!r} keyword"))
        first_kind = next(iter(devices), None)
        if first_kind is not None:
            reason = self._try(Variant(self.name, self.variant_name, first_kind, "float32"),
                               devices[first_kind])
            if reason is not None:
                self.injectable = False
                self._inject_reason = reason
                info.unsupported.append(Unsupported(
                    "lr schedule", f"{self.label} does not survive optax.inject_hyperparams "
                                   f"({reason}): the lr cannot change between steps"))
        trials: dict[Variant, Trial] = {}

        def refusal(variant: Variant) -> str | None:
            trial, reason = self._trial(variant, devices[variant.device], probe_problem())
            if trial is not None:
                trials[variant] = trial
            return reason

        self.try_variants(info, self.candidates(devices), refusal, listed=True)
        self._probe_features(info, devices, trials)
        self._plan_state(devices, trials)
        info.notes = self.declared_notes() + self._notes
        return info

    def _probe_features(self, info: BackendInfo, devices, trials) -> None:
        """Each feature keyword the factory names, by effect (on the first float32 variant)."""
        if not trials:
            return
        variant = next((v for v in trials if v.dtype == "float32"), next(iter(trials)))
        for feature in FEATURES:
            if self._passes(feature):
                trial, reason = self._trial(variant, devices[variant.device],
                                            probe_problem(**{feature: True}))
                self.judge_feature(info, feature, trial, reason, trials[variant])

    def _plan_state(self, devices, trials) -> None:
        """Per variant, which of mu, nu, nu_max hold m, v and a max of v in the reference's
        sense (the max from a step with amsgrad, where it runs)."""
        if not self.plans_state("mu, nu, and nu_max as the max of v̂"):
            return
        want = self.expected()
        always = self.features.get("amsgrad") == "always"
        with_max = self.probes_max()
        for variant, trial in trials.items():
            ams = None
            if with_max:
                ams = trial if always else self._trial(variant, devices[variant.device],
                                                       probe_problem(amsgrad=True))[0]
            self.plan(variant, trial, ams, want)
        self.note_plans(len(trials))

    def candidates(self, devices: Iterable[str]) -> list[Variant]:
        return [Variant(self.name, self.variant_name, kind, dtype)
                for kind in devices for dtype in self.dtypes]

    def framework_for(self, variant: Variant):
        if variant.backend != self.name:
            raise ValueError(f"variant {variant.id} belongs to backend {variant.backend!r}")
        self.check_listed(self.probed(), variant)
        return self.devices()[variant.device]

    def session(self, device, problem: CaseSetup, variant: Variant) -> OptaxTransformSession:
        return OptaxTransformSession(self, problem, variant, device)

    def construct(self, variant: Variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False) -> None:
        device = self.framework_for(variant)
        for feature, needed in (("amsgrad", amsgrad), ("maximize", maximize)):
            if needed and not self._takes(feature):
                raise UnsupportedFeature(f"{self.label} takes no {feature!r} keyword")
        cfg = Hyperparameters(lr, tuple(betas), eps, weight_decay, amsgrad, maximize)
        tx = self.transformation(cfg, variant)
        tx.init([_to_device(self.jax()[0], np.zeros(2), variant, device)])


def _to_device(jax, values, variant: Variant, device):
    # float64 → the variant's dtype is exact: the seam carries representable values only
    import jax.numpy as jnp

    host = np.array(values, dtype=np.float64).astype(jnp.dtype(variant.dtype))
    return jax.device_put(host, device)


def optax_transform_backend(target: str, options: Mapping[str, str] | None = None, *,
                            state: str = "auto", features: Mapping[str, str] | None = None
                            ) -> OptaxTransformBackend:
    """The backend for ``optax-transform:package.module:factory`` (``target`` without the
    prefix), with ``options`` as extra keywords of the factory, ``state`` how its state is
    compared and ``features`` what the factory fixes (``{'amsgrad': 'always'}``)."""
    return OptaxTransformBackend(target, options, state=state, features=features)
