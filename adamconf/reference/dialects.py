"""Dialects: a model of Adam implementations, as points in a space of independent switches.

Each switch is one choice an implementation makes (where ε goes, what amsgrad keeps, how
weight decay enters, which format β^t is computed in, …); each of its settings has a short
label, and the documented setting has none. A dialect is one setting per switch, and its
name is its non-default labels in alphabetical order joined by ``+``
(``ams-rawmax+wd-decoupled``); the spec is the point where every switch is documented, and
is named ``spec``. :func:`get_dialect` reads any such name back.

The documented spec (``SPEC``)::

    g  ← −∇ if maximize else ∇ ;  g ← g + λ·θ  (if λ ≠ 0)
    m  ← β1·m + (1 − β1)·g       v ← β2·v + (1 − β2)·g²
    m̂ ← m / (1 − β1^t)          v̂ ← v / (1 − β2^t)
    amsgrad: v̂max ← max(v̂max, v̂);  θ ← θ − γ·m̂ / (√v̂max + ε)
    else:                            θ ← θ − γ·m̂ / (√v̂ + ε)

Two kinds of switch. *Semantic* ones change the formula: the step description
(:mod:`adamconf.reference.step`) runs them on every number kind, and the bound follows
them. *Precision* ones keep the formula and change a format: the hyperparameters are
rounded before use (the reference is then the exact run of the rounded problem:
:func:`rounded_problem`), or β^t, the stored state or the returned θ are computed or kept
in a narrower format (the reference stays exact and the bound widens to every faithful
evaluation with that choice). Each setting's formula and who is known to implement it are
in :data:`SWITCHES`; ``adamconf dialects`` prints them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .floats import FloatFormat

__all__ = ["Setting", "Switch", "SWITCHES", "Dialect", "SPEC", "DIALECTS", "SEMANTIC_DIALECTS", "get_dialect",
           "rounded_problem", "LABELS"]


@dataclass(frozen=True)
class Setting:
    """One setting of a switch: its value, its label ('' for the documented one), its
    formula and who is known to implement it."""

    value: Any
    label: str
    formula: str
    known_in: str


@dataclass(frozen=True)
class Switch:
    """One independent choice, the documented setting first."""

    field: str
    title: str
    settings: tuple[Setting, ...]
    semantic: bool = True

    @property
    def default(self) -> Any:
        return self.settings[0].value

    def setting(self, value: Any) -> Setting:
        for s in self.settings:
            if s.value == value and type(s.value) is type(value):
                return s
        raise ValueError(f"{self.field}={value!r}; choose one of "
                         f"{', '.join(repr(s.value) for s in self.settings)}")


SWITCHES: tuple[Switch, ...] = (
    Switch("eps_mode", "ε placement", (
        Setting("outside", "", "d = √v̂ + ε", "the documentation; PyTorch; optax"),
        Setting("hat", "eps-hat", "ε added to √v, not bias-corrected: θ ← θ − "
                "γ·√(1−β2^t)/(1−β1^t)·m/(√v + ε)",
                "MindSpore ops.Adam, nn.Adam, experimental.optim.Adam; TF raw "
                "ResourceApplyAdam; Keras 3; scikit-learn; ONNX (t>0); Kingma & Ba §2's "
                "'efficient' form"),
        Setting("inside-sqrt", "eps-inside-sqrt", "ε inside the root: d = √(v̂ + ε)",
                "optax's eps_root style"),
        Setting("floor", "eps-floor", "ε as a floor: d = max(√v̂, ε)", "heavyball-style"),
    )),
    Switch("amsgrad_mode", "amsgrad (only where the group's amsgrad is on)", (
        Setting("max-hat", "", "v̂max ← max(v̂max, v̂); d from √v̂max", "the documentation"),
        Setting("max-raw", "ams-rawmax", "the max of raw v: vmax ← max(vmax, v); "
                "d = √(vmax/(1−β2^t)) + ε",
                "PyTorch (for-loop, foreach, fused); PaddlePaddle; TF "
                "ResourceApplyAdamWithAmsgrad; Keras 3"),
        Setting("ignored", "ams-ignored", "the amsgrad flag has no effect (plain Adam runs)",
                "MindSpore 2.10 experimental.optim.Adam (seen); mint.optim.Adam (source)"),
        Setting("paper", "ams-paper", "Reddi et al.: no bias correction; vmax ← max(vmax, "
                "v); θ ← θ − γ·m/(√vmax + ε)", "the AMSGrad paper; optax with both bias "
                "corrections off"),
    )),
    Switch("max_nan", "the max's NaN rule (amsgrad)", (
        Setting("propagate", "", "max(NaN, x) = NaN, as numpy.maximum and torch.maximum",
                "the documentation's IEEE reading"),
        Setting("drop", "max-drops-nan", "the max drops a NaN operand, as fmax and Eigen's "
                "cwiseMax do: max(NaN, x) = x", "torch fused; TF; Keras; bitsandbytes"),
    )),
    Switch("weight_decay_mode", "weight decay (only where λ ≠ 0)", (
        Setting("l2", "", "L2 in the gradient: g ← g + λθ after maximize's negation",
                "the documentation; torch.optim.Adam"),
        Setting("decoupled", "wd-decoupled", "decoupled with the current lr: θ ← θ·(1 − "
                "γ_t·λ), then the update without λθ in g",
                "AdamW everywhere; Keras weight_decay; torch decoupled_weight_decay=True"),
        Setting("decoupled-lr0", "wd-decoupled-lr0", "decoupled with the initial lr: θ ← "
                "θ·(1 − γ_0·λ) at every step, whatever the schedule",
                "a decay factor computed once at construction"),
        Setting("decoupled-nolr", "wd-decoupled-nolr", "decoupled without the lr: θ ← θ·(1 − "
                "λ)", "hand-written AdamW"),
        Setting("decoupled-lr-ratio", "wd-decoupled-lr-ratio", "decoupled with the lr "
                "relative to the group's largest: θ ← θ·(1 − λ·γ_t/γ_max), γ_max the "
                "schedule's peak or the constructor's lr (θ·(1 − λ) while the lr is "
                "constant)", "optimi decouple_lr=True (max_lr)"),
        Setting("after", "wd-after", "decoupled, applied after the update to the new θ: θ ← "
                "(θ − update)·(1 − γ_t·λ)", "transformers' old AdamW order"),
        Setting("maximize-after-wd", "maximize-after-wd", "maximize negates after the decay: "
                "g = −(∇ + λθ)", "a plausible bug"),
    )),
    Switch("bias_correction", "bias correction", (
        Setting(True, "", "m̂ = m/(1 − β1^t), v̂ = v/(1 − β2^t)", "the documentation"),
        Setting(False, "no-bias-correction", "m̂ = m, v̂ = v",
                "ONNX Adam with t = 0; MLX optimizers.Adam (bias_correction=False)"),
    )),
    Switch("step_offset", "step count", (
        Setting(0, "", "the first update uses t = 1", "the documentation"),
        Setting(1, "step-off-by-one", "the bias corrections use t + 1", "a plausible bug"),
        Setting(-1, "step-off-by-one-low", "the bias corrections use t − 1 (the first step "
                "divides by 1 − β^0 = 0)", "a plausible bug"),
    )),
    Switch("hyper", "hyperparameters", (
        Setting("as-passed", "", "the exact binary64 values passed", "the documentation"),
        Setting("eps-dtype", "eps-lost", "ε rounded to the parameter's dtype (1e-8 is 0 in "
                "float16): where v̂ is 0 the step divides 0 by 0",
                "torch for-loop and foreach in float16; optax.adam in float16"),
        Setting("lr-float32", "lr-float32", "the lr held as float32 in a float64 run (β, ε "
                "and λ as passed)", "MLX (learning_rate is a float32 array)"),
        Setting("float32", "hyper-float32", "lr, β1, β2, ε and λ held as float32 in a "
                "float64 run", "MindSpore nn.Adam (float32 Parameters); ONNX attributes"),
        Setting("dtype", "hyper-in-dtype", "lr, β1, β2, ε and λ rounded to the parameter's "
                "dtype (β2 = 0.999 is 0.99902 in float16); a β rounded to 1.0 keeps 1 − β of "
                "the β passed", "Keras (casts to the variable's dtype); TF raw kernels"),
        Setting("dtype-inputs", "hyper-dtype-inputs", "every scalar an input of the "
                "parameter's dtype: lr, β1, β2, ε, λ and β^t (of the β passed) rounded to it, "
                "1 − β of the rounded β, so a β rounded to 1.0 freezes its moment (named only "
                "there: elsewhere it is hyper-in-dtype within the bound)",
                "TensorFlow's raw kernels (ResourceApplyAdam) in bfloat16"),
    ), semantic=False),
    Switch("beta_power", "β^t", (
        Setting(None, "", "β^t by pow or a running product, in float64 or the step's "
                "scalar format (float32 for 16-bit parameters)", "the documentation"),
        Setting("float32", "betapow-float32", "β^t by pow or a running product in float32, "
                "in a float64 run", "torch differentiable; tinygrad; MLX"),
        Setting("dtype", "betapow-in-dtype", "β^t by pow or a running product in the "
                "parameter's 16-bit dtype", "Keras 16-bit; hand-written half kernels"),
    ), semantic=False),
    Switch("state", "state stored", (
        Setting(None, "", "m, v and v̂max kept in the parameter's dtype (or wider)",
                "the documentation"),
        Setting("float32", "state-float32", "m, v and v̂max kept in float32 in a float64 "
                "run", "bitsandbytes 32-bit, optimi with float32 state"),
        Setting("bfloat16", "state-bfloat16", "m, v and v̂max kept in bfloat16",
                "memory-saving optimizers"),
    ), semantic=False),
    Switch("theta_through", "θ returned", (
        Setting(None, "", "θ kept in its dtype", "the documentation"),
        Setting("float32", "theta-via-float32", "θ rounded through float32 after each step "
                "in a float64 run", "bitsandbytes float64"),
    ), semantic=False),
    # the widest precision choice last: a narrower one that explains as much is named first
    Switch("compute", "the step computed in", (
        Setting(None, "", "the parameter's dtype (or wider)", "the documentation"),
        Setting("float32", "compute-float32", "float32, every operation, in a float64 run "
                "(the values cross as float64)", "bitsandbytes, tinygrad with float64 "
                "parameters"),
    ), semantic=False),
)

_BY_FIELD = {s.field: s for s in SWITCHES}
LABELS: dict[str, tuple[Switch, Setting]] = {
    setting.label: (switch, setting) for switch in SWITCHES for setting in switch.settings
    if setting.label}

# Named points worth knowing, with where they are seen (combinations are otherwise named
# by their labels; their summary is their settings' formulas).
_KNOWN_COMBINATIONS = {
    "ams-rawmax+eps-hat": "TF ResourceApplyAdamWithAmsgrad, Keras 3, MindSpore "
                          "nn.Adam(use_amsgrad=True)",
    "ams-ignored+eps-hat": "MindSpore 2.10 experimental.optim.Adam with amsgrad=True",
    "eps-hat+wd-decoupled": "Keras 3 Adam(weight_decay=λ) on tensorflow, jax and torch",
    "ams-rawmax+eps-hat+wd-decoupled": "Keras 3 Adam(amsgrad=True, weight_decay=λ)",
    "ams-rawmax+wd-decoupled": "torch.optim.AdamW(amsgrad=True)",
}


@dataclass(frozen=True)
class Dialect:
    """One setting per switch (see :data:`SWITCHES`); the defaults are the spec.

    eps_mode: ``"outside"`` (spec) · ``"hat"`` · ``"inside-sqrt"`` · ``"floor"``.
    amsgrad_mode (only when the group's amsgrad is on): ``"max-hat"`` (spec) ·
    ``"max-raw"`` · ``"ignored"`` · ``"paper"``. max_nan: ``"propagate"`` · ``"drop"``.
    weight_decay_mode: ``"l2"`` (spec) · ``"decoupled"`` · ``"decoupled-lr0"`` ·
    ``"decoupled-nolr"`` · ``"decoupled-lr-ratio"`` · ``"after"`` · ``"maximize-after-wd"``. bias_correction: True ·
    False. step_offset: 0 · 1 · −1 (the bias corrections use t + step_offset).
    Precision: hyper ``"as-passed"`` · ``"eps-dtype"`` · ``"lr-float32"`` · ``"float32"`` ·
    ``"dtype"`` · ``"dtype-inputs"``;
    beta_power None · ``"float32"`` · ``"dtype"``; state None · ``"float32"`` ·
    ``"bfloat16"``; theta_through None · ``"float32"``; compute None · ``"float32"``.
    """

    eps_mode: str = "outside"
    amsgrad_mode: str = "max-hat"
    max_nan: str = "propagate"
    weight_decay_mode: str = "l2"
    bias_correction: bool = True
    step_offset: int = 0
    hyper: str = "as-passed"
    beta_power: str | None = None
    state: str | None = None
    theta_through: str | None = None
    compute: str | None = None

    def __post_init__(self) -> None:
        # a typo in a switch would silently be the spec's formula: refuse it here
        for switch in SWITCHES:
            switch.setting(getattr(self, switch.field))

    # --- names ---------------------------------------------------------------------------
    @property
    def settings(self) -> list[tuple[Switch, Setting]]:
        """The non-default settings, in the switches' order."""
        out = []
        for switch in SWITCHES:
            setting = switch.setting(getattr(self, switch.field))
            if setting.label:
                out.append((switch, setting))
        return out

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(sorted(s.label for _, s in self.settings))

    @property
    def name(self) -> str:
        return "+".join(self.labels) or "spec"

    @property
    def size(self) -> int:
        """How many switches are off their documented setting."""
        return len(self.labels)

    @property
    def summary(self) -> str:
        if not self.labels:
            return ("the documented algorithm (mindspore.experimental.optim.Adam's "
                    "documentation)")
        return "; ".join(s.formula for _, s in self.settings)

    @property
    def known_in(self) -> str:
        if self.name in _KNOWN_COMBINATIONS:
            return _KNOWN_COMBINATIONS[self.name]
        if not self.labels:
            return "the reference"
        return "; ".join(f"{s.label}: {s.known_in}" for _, s in self.settings)

    def __str__(self) -> str:
        return self.name

    # --- what the model needs ------------------------------------------------------------
    @property
    def vmax_kind(self) -> str:
        """What the v̂max state holds in this dialect: ``"hat"`` or ``"raw"``."""
        return "raw" if self.amsgrad_mode in ("max-raw", "paper") else "hat"

    @property
    def semantic(self) -> Dialect:
        """This dialect with every precision switch at its documented setting."""
        return dataclasses.replace(self, **{s.field: s.default for s in SWITCHES
                                            if not s.semantic})

    def with_settings(self, **changes: Any) -> Dialect:
        return dataclasses.replace(self, **changes)

    def switch_values(self) -> dict[str, Any]:
        """field → value, for the switches off their documented setting."""
        return {switch.field: setting.value for switch, setting in self.settings}

    def can_differ(self, amsgrad: bool, maximize: bool, weight_decay: float,
                   schedule: bool = True) -> bool:
        """Whether this dialect's semantic switches can depart from the spec on a group with
        these options (``schedule``: its lr changes between steps)."""
        return bool(self.effective_fields(amsgrad, maximize, weight_decay, schedule))

    def effective_fields(self, amsgrad: bool, maximize: bool, weight_decay: float,
                         schedule: bool = True) -> set[str]:
        """The semantic switches of this dialect that can have an effect on such a group."""
        out = set()
        for field_name, value in self.semantic.switch_values().items():
            if field_name == "amsgrad_mode" and not amsgrad:
                continue
            if field_name == "max_nan" and not amsgrad:
                continue
            if field_name == "weight_decay_mode":
                if not weight_decay:
                    continue
                if value == "maximize-after-wd" and not maximize:
                    continue
                if value in ("decoupled-lr0", "decoupled-lr-ratio") and not schedule:
                    pass  # the same as decoupled (resp. without lr) while the lr is constant
            out.add(field_name)
        return out


SPEC = Dialect()


def get_dialect(name: str) -> Dialect:
    """The dialect of a name: ``spec``, or labels joined by ``+`` in any order."""
    if isinstance(name, Dialect):
        return name
    name = name.strip()
    if name == "spec":
        return SPEC
    values: dict[str, Any] = {}
    for label in name.split("+"):
        if label not in LABELS:
            raise ValueError(f"unknown dialect label {label!r} in {name!r}; known labels: "
                             f"{', '.join(sorted(LABELS))} ('adamconf dialects' explains "
                             "each)")
        switch, setting = LABELS[label]
        if switch.field in values:
            raise ValueError(f"dialect {name!r} sets {switch.title} twice: choose one of "
                             f"{', '.join(s.label for s in switch.settings if s.label)}")
        values[switch.field] = setting.value
    return Dialect(**values)


# The catalogue: every single-switch point, and the combinations known in real code. The
# mutation tests prove the suite sees each; any other point is named by its labels.
DIALECTS: dict[str, Dialect] = {"spec": SPEC}
for _label in LABELS:
    DIALECTS.setdefault(get_dialect(_label).name, get_dialect(_label))
for _name in _KNOWN_COMBINATIONS:
    DIALECTS[_name] = get_dialect(_name)
del _label, _name

SEMANTIC_DIALECTS = {name: d for name, d in DIALECTS.items() if d.semantic == d}


# --- the hyperparameters switch: a rounded problem ---------------------------------------------

_ROUNDED = {"eps-dtype": ("eps",), "lr-float32": ("lr",),
            "float32": ("lr", "betas", "eps", "weight_decay"),
            "dtype": ("lr", "betas", "eps", "weight_decay"),
            "dtype-inputs": ("lr", "betas", "eps", "weight_decay")}


def hyper_target(setting: str, dtype: FloatFormat) -> FloatFormat | None:
    """The format the hyperparameters switch rounds to in a ``dtype`` run; None where moot
    (nothing is narrower than the run, or the setting is the documented one)."""
    from .floats import FORMATS

    if setting == "as-passed":
        return None
    float32 = FORMATS["float32"]
    # eps-dtype, dtype and dtype-inputs round to the run's own dtype
    target = float32 if setting in ("float32", "lr-float32") else dtype
    if target.name == "float32" and target.precision >= dtype.precision:
        return None  # rounding to a format at least as wide as the run changes nothing
    return None if target.name == "float64" else target


def rounded_problem(problem, dialect: Dialect, dtype: str | FloatFormat):
    """``problem`` with the hyperparameters rounded as ``dialect`` says, the problem itself
    where its setting is the documented one, or None where the rounding changes nothing.
    A β that rounds to 1.0 (β2 = 0.999 in bfloat16) is kept so: that is no longer Adam, and
    it is what such an implementation runs (1 − β2^t = 0: Keras's step size is 0).
    ``dtype``: a name, or the format itself."""
    import numpy as np

    from .config import GroupConfig
    from .floats import as_format, round_to
    from .problem import Group, Problem

    if dialect.hyper == "as-passed":
        return problem
    target = hyper_target(dialect.hyper, as_format(dtype))
    if target is None:
        return None
    rounds = _ROUNDED[dialect.hyper]

    def r(x: float) -> float:
        return float(round_to(x, target))

    groups, changed = [], False
    frozen = False  # some β rounded to 1.0, under dtype-inputs: a frozen moment
    for group in problem.groups:
        c = group.config
        values = {"lr": c.lr, "betas": c.betas, "eps": c.eps, "weight_decay": c.weight_decay}
        if "lr" in rounds:
            values["lr"] = r(c.lr)
        one_minus = powers = None
        if "betas" in rounds:
            values["betas"] = (r(c.beta1), r(c.beta2))
            if dialect.hyper == "dtype-inputs":
                frozen |= 1.0 in values["betas"]
                # β^t handed to the kernel: the power of the β passed, rounded to the dtype
                t = problem.initial_step + np.arange(problem.steps) + 1 + dialect.step_offset
                powers = np.stack([round_to(np.power(c.beta1, t), target),
                                   round_to(np.power(c.beta2, t), target)], axis=1)
            elif 1.0 in values["betas"]:
                # 1 − β = 0 would freeze m or v: where the β held is 1.0, 1 − β comes from
                # the β passed, as Keras computes it (`1 - self.beta_2` beside
                # cast(beta_2)); a kernel that freezes v instead is another algorithm
                one_minus = (r(1.0 - c.beta1), r(1.0 - c.beta2))
        if "eps" in rounds:
            values["eps"] = r(c.eps)
        if "weight_decay" in rounds:
            values["weight_decay"] = r(c.weight_decay)
        lrs = group.lrs
        if lrs is not None and "lr" in rounds:
            lrs = round_to(lrs, target)
        try:
            config = GroupConfig.held_rounded(**values, amsgrad=c.amsgrad,
                                              maximize=c.maximize, one_minus_betas=one_minus)
            rounded = Group(config, group.params, lrs, held_powers=powers)
        except ValueError:
            return None
        changed |= config != c or (lrs is not None and not (lrs == group.lrs).all())
        groups.append(rounded)
    if not changed or (dialect.hyper == "dtype-inputs" and not frozen):
        # without a frozen moment, 1 − β̃ and rnd(β^t) are hyper-in-dtype's, within its bound
        return None
    return Problem(tuple(groups), problem.grads, problem.initial_state, unrounded=problem)
