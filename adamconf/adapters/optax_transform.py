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

from collections.abc import Mapping, Sequence

import numpy as np

from .base import (
    BackendInfo,
    BackendUnavailable,
    CaseSetup,
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
    StatePlan,
    check_options,
    check_state_mode,
    expected_state,
    meaning,
    package_versions,
    parse_features,
    parse_options,
    probe_problem,
    signature_of,
    state_note,
)

__all__ = ["OptaxTransformBackend", "optax_transform_backend", "DTYPES"]

PREFIX = "optax-transform"
INSTALL_HINT = "pip install 'adamconf[jax]' (or pip install jax optax)"
DTYPES = ("float64", "float32", "float16", "bfloat16")
DEVICE_KINDS = ("cpu", "gpu")
REQUIRED = ("learning_rate", "b1", "b2", "eps")
INT32_MAX = 2**31 - 1
STATE_FIELDS = ("mu", "nu", "count")


def _import_jax():
    try:
        import jax
        import optax
    except ImportError as exc:
        raise BackendUnavailable(f"jax/optax is not installed ({exc}); {INSTALL_HINT}") from None
    jax.config.update("jax_enable_x64", True)  # process-wide, before any array
    return jax, optax


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
        index = 0
        for gi, params in enumerate(self._params):
            rows = range(index, index + len(params))
            index += len(params)
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

        count = sum(len(p) for p in self._params)
        if len(grads) != count:
            raise ValueError(f"{len(grads)} gradients for {count} parameters")
        if lrs is not None and self._backend.injectable:
            if len(lrs) != len(self._params):
                raise ValueError(f"{len(lrs)} learning rates for {len(self._params)} groups")
            for gi, lr in enumerate(lrs):
                for wrapper in _find_nodes(self._states[gi], ("hyperparams", "inner_state")):
                    hyper = wrapper.hyperparams
                    if "learning_rate" in hyper:  # optax's documented way to change it
                        hyper["learning_rate"] = self._jax.device_put(jnp.asarray(
                            float(lr), dtype=hyper["learning_rate"].dtype), self._device)
        grouped, index = [], 0
        for params in self._params:
            grouped.append([self._array(g) for g in grads[index:index + len(params)]])
            index += len(params)
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


_SHOWN_ON = {"weight_decay": "0.5", "amsgrad": "True", "maximize": "True"}


class OptaxTransformBackend:
    """An optax-style factory given as 'package.module:factory', by ``optax.adam``'s keywords."""

    def __init__(self, target: str, options: Mapping[str, str] | None = None, *,
                 name: str | None = None, state: str = "auto",
                 features: Mapping[str, str] | None = None) -> None:
        module_name, _, attr = target.partition(":")
        if not module_name or not attr:
            raise ValueError(f"optax factory {target!r} must look like 'package.module:factory'")
        self.target = target
        self.name = name or f"{PREFIX}:{target}"
        self.label = f"{module_name}.{attr}"
        self.variant_name = attr.rpartition(".")[2]
        self.options = parse_options(options, (*REQUIRED, *FEATURES))
        self.state_mode = check_state_mode(state)
        self.features = parse_features(features)
        self.injectable = True
        self._inject_reason = ""
        self._factory = None
        self._info: BackendInfo | None = None
        self._features: dict[str, str] = {}  # feature → why a case needing it is unsupported
        self._plans: dict[Variant, StatePlan] = {}
        self._notes: list[str] = []
        self._ignored_but_declared: set[str] = set()  # declared keywords found without effect

    # --- the factory ----------------------------------------------------------------------

    def jax(self):
        return _import_jax()

    def factory(self):
        if self._factory is None:
            import importlib

            module_name, _, attr = self.target.partition(":")
            try:
                obj = importlib.import_module(module_name)
            except ImportError as exc:
                raise BackendUnavailable(f"cannot import {module_name!r} ({exc})") from None
            for part in attr.split("."):
                try:
                    obj = getattr(obj, part)
                except AttributeError:
                    raise BackendUnavailable(f"module {module_name!r} has no attribute "
                                             f"{attr!r}") from None
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
        for name, value in (("weight_decay", cfg.weight_decay), ("amsgrad", cfg.amsgrad),
                            ("maximize", cfg.maximize)):
            if self._passes(name):  # always, where named: the factory's default is not the case's
                keywords[name] = value
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

    def _declared_how(self, feature: str) -> str:
        return f"declared: --feature {feature}={self.features[feature]}"

    def check_case(self, problem: CaseSetup, variant: Variant | None = None) -> None:
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
            if self.state_mode == "ignore":
                raise UnsupportedFeature("resume: with state='ignore' the driver does not know "
                                         "what the factory's state holds, so it cannot fill it "
                                         "from m, v and v̂max")
            plan = self.state_plan(variant) if variant is not None else None
            if plan is not None and not (plan.m and plan.v):
                raise UnsupportedFeature(f"resume: {'; '.join(plan.why_not)}; the driver fills "
                                         "the state from m, v and v̂max only")

    def state_plan(self, variant: Variant | None) -> StatePlan | None:
        """Which readings of this variant's state are compared (None: none, θ alone)."""
        if self.state_mode == "ignore":
            return None
        return self._plans.get(variant) or StatePlan(vmax_kind="hat")

    # --- the Backend protocol -------------------------------------------------------------

    def devices(self) -> dict[str, object]:
        jax, _ = self.jax()
        found = {}
        for kind in DEVICE_KINDS:
            try:
                devices = jax.devices(kind)
            except (RuntimeError, ValueError):  # "Unknown backend": no such platform here
                continue
            if devices:
                found[kind] = devices[0]
        return found

    def _trial(self, variant: Variant, device, problem: CaseSetup):
        """The problem's steps: (θ after each step, the readings after each step), or
        (None, the factory's refusal)."""
        thetas, readings = [], []
        try:
            session = OptaxTransformSession(self, problem, variant, device)
            for k in range(problem.steps):
                session.step([g[k] for g in problem.grads],
                             [group.lr_at(k) for group in problem.groups])
                thetas.append(np.concatenate([p.reshape(-1) for p in session.params()]))
                readings.append(session.readings())
            session.state()
        except UnsupportedFeature as exc:
            return None, str(exc)
        except Exception as exc:  # the factory's own refusal is the reason a person reads
            return None, error_reason(exc)
        return (thetas, readings), None

    def _try(self, variant: Variant, device) -> str | None:
        return self._trial(variant, device, probe_problem())[1]

    def versions(self, jax, optax) -> dict[str, str]:
        versions = {"jax": jax.__version__, "optax": optax.__version__}
        # the factory's own package too, where it is not optax (a shim shows whose it is)
        modules = (self.target.partition(":")[0],
                   getattr(self._factory, "__module__", "") or "")
        for name, version in package_versions(m for m in modules if m).items():
            versions.setdefault(name, version)
        return versions

    def probe(self) -> BackendInfo:
        if self._info is not None:
            return self._info
        try:
            jax, optax = self.jax()
            self.factory()
        except BackendUnavailable as exc:
            return BackendInfo(name=self.name, installed=False,
                               install_hint=f"{exc}; {INSTALL_HINT}", description=str(exc))
        devices = self.devices()
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        info = BackendInfo(
            name=self.name, installed=True, versions=self.versions(jax, optax),
            devices=list(devices), dtypes=list(DTYPES), install_hint=INSTALL_HINT,
            description=f"{self.label}(learning_rate, b1, b2, eps) as an optax "
                        "GradientTransformation, lr through inject_hyperparams, L2 as "
                        "chain(add_decayed_weights, ·)" + (f"; options: {options}"
                                                           if options else ""))
        signature = signature_of(self.factory())
        check_options(self.options, signature, self.label)  # a usage error: raised, not listed
        missing = [n for n in REQUIRED if not self._takes(n)]
        if missing:
            reason = (f"{self.label} takes no {', '.join(missing)} keyword: optax.adam's "
                      "keywords are needed")
            info.unsupported.append(Unsupported(self.label, reason))
            info.refused = [Refusal(Variant(self.name, self.variant_name, kind, dtype), reason)
                            for kind in devices for dtype in DTYPES]
            self._info = info
            return info
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
        trials = {}
        for kind, device in devices.items():
            for dtype in DTYPES:
                variant = Variant(self.name, self.variant_name, kind, dtype)
                trial, reason = self._trial(variant, device, probe_problem())
                if trial is not None:
                    info.variants.append(variant)
                    trials[variant] = trial
                else:
                    info.unsupported.append(Unsupported(variant.id, reason))
                    info.refused.append(Refusal(variant, reason))
        self._probe_features(info, devices, trials)
        self._plan_state(devices, trials)
        words = {"always": "always on: cases without it are unsupported",
                 "never": "never on: cases with it are unsupported",
                 "keyword": "the keyword of that name: passed as each case says and judged as "
                            "the feature"}
        info.notes = [f"{feature} {words.get(setting, setting)} ({self._declared_how(feature)})"
                      for feature, setting in self.features.items()
                      if feature not in self._ignored_but_declared] + self._notes
        self._info = info
        return info

    def _probe_features(self, info: BackendInfo, devices, trials) -> None:
        """Each feature keyword the factory names, by effect (on the first float32 variant)."""
        if not trials:
            return
        variant = next((v for v in trials if v.dtype == "float32"), next(iter(trials)))
        base = trials[variant][0]
        for feature in FEATURES:
            if not self._passes(feature):
                continue
            trial, reason = self._trial(variant, devices[variant.device],
                                        probe_problem(**{feature: True}))
            shown = f"{feature}={_SHOWN_ON[feature]}"
            if trial is None:
                self._features[feature] = f"{self.label} refuses {shown}: {reason}"
            elif all(np.array_equal(a, b, equal_nan=True) for a, b in zip(trial[0], base,
                                                                          strict=True)):
                ignored = (f"{self.label} accepts {shown} and ignores it: on a probe where the "
                           f"documented {feature} changes the update, θ is the same as without "
                           "it")
                if self.features.get(feature) == "keyword":  # judged as the feature all the same
                    self._ignored_but_declared.add(feature)
                    self._notes.append(f"{feature}: {ignored}; its cases are judged as the "
                                       f"feature all the same ({self._declared_how(feature)})")
                    continue
                self._features[feature] = f"accepted and ignored: {ignored}"
            else:
                continue
            info.unsupported.append(Unsupported(feature, self._features[feature]))

    def _plan_state(self, devices, trials) -> None:
        """Per variant, which of mu, nu, nu_max hold m, v and a max of v in the reference's
        sense (the max from a step with amsgrad, where it runs)."""
        if self.state_mode == "ignore":
            self._notes.append("state not compared (state='ignore'): θ alone is judged")
            return
        if self.state_mode == "compare":
            self._notes.append("state compared by its names whatever it holds "
                               "(state='compare'): mu, nu, and nu_max as the max of v̂")
            return
        names = {"m": "mu", "v": "nu", "vmax": "nu_max"}
        want = expected_state(maximize=self.features.get("maximize") == "always")
        amsgrad = self.features.get("amsgrad")
        with_max = amsgrad == "always" or (amsgrad != "never" and self._passes("amsgrad")
                                           and "amsgrad" not in self._features)
        for variant, (_, readings) in trials.items():
            why, compare = [], {}
            for name in ("m", "v"):
                got = _per_step(readings, name)
                found = meaning(got, want[name], want[f"{name}_hat"])
                compare[name] = got is None or found == "documented"
                if found == "bias-corrected":
                    why.append(f"{names[name]} holds {MEANING_WORDS[name][1]}, not {name}")
                elif got is not None and found is None:
                    why.append(f"{names[name]} holds neither {MEANING_WORDS[name][0]} nor "
                               f"{MEANING_WORDS[name][1]}")
            vmax, vmax_kind = None, "hat"
            if with_max:
                ams = (readings if amsgrad == "always" else
                       (self._trial(variant, devices[variant.device],
                                    probe_problem(amsgrad=True))[0] or (None, None))[1])
                got = _per_step(ams, "vmax") if ams else None
                if got is not None:
                    found = meaning(got, want["vmax_hat"], want["vmax_raw"])
                    if found is None:
                        vmax = False
                        why.append("nu_max holds neither the max of v̂ nor the max of raw v")
                    else:
                        vmax, vmax_kind = True, "hat" if found == "documented" else "raw"
            self._plans[variant] = StatePlan(m=compare["m"], v=compare["v"], vmax=vmax,
                                             vmax_kind=vmax_kind, why_not=tuple(why))
        self._notes.extend(state_note({v.id: p for v, p in self._plans.items()}, len(trials)))

    def _check_variant(self, variant: Variant):
        if variant.backend != self.name:
            raise ValueError(f"variant {variant.id} belongs to backend {variant.backend!r}")
        info = self.probe()
        if not info.installed:
            raise BackendUnavailable(info.description)
        if variant not in info.variants:
            reasons = "; ".join(f"{u.what}: {u.reason}" for u in info.unsupported)
            raise UnsupportedFeature(f"{self.name} cannot run {variant.id}: {reasons}")
        return self.devices()[variant.device]

    def open(self, problem: CaseSetup, variant: Variant) -> OptaxTransformSession:
        device = self._check_variant(variant)
        self.check_case(problem, variant)
        return OptaxTransformSession(self, problem, variant, device)

    def construct(self, variant: Variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False) -> None:
        device = self._check_variant(variant)
        for feature, needed in (("amsgrad", amsgrad), ("maximize", maximize)):
            if needed and not self._takes(feature):
                raise UnsupportedFeature(f"{self.label} takes no {feature!r} keyword")
        cfg = Hyperparameters(lr, tuple(betas), eps, weight_decay, amsgrad, maximize)
        tx = self.transformation(cfg, variant)
        tx.init([_to_device(self.jax()[0], np.zeros(2), variant, device)])


def _per_step(readings, name: str) -> list[np.ndarray] | None:
    """One reading per step, the parameters flattened into one array; None where absent."""
    if not readings or any(r[name] is None for r in readings):
        return None
    return [np.concatenate([a.reshape(-1) for a in r[name]]) for r in readings]


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
