"""Dialects: named semantic variants of Adam, each a small delta from the documented spec.

They serve twice: as the mutation catalogue that proves the suite can see a semantic
difference, and to name what a failing backend does instead. Each one is the same engine
(:mod:`adamconf.reference.engine`) with one or two switches turned; the formulas below
use the spec's names (t the shared step count, γ the lr, λ the weight decay).

The documented spec (``SPEC``)::

    g  ← −∇ if maximize else ∇ ;  g ← g + λ·θ  (if λ ≠ 0)
    m  ← β1·m + (1 − β1)·g       v ← β2·v + (1 − β2)·g²
    m̂ ← m / (1 − β1^t)          v̂ ← v / (1 − β2^t)
    amsgrad: v̂max ← max(v̂max, v̂);  θ ← θ − γ·m̂ / (√v̂max + ε)
    else:                            θ ← θ − γ·m̂ / (√v̂ + ε)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Dialect", "SPEC", "DIALECTS", "get_dialect", "PrecisionDialect", "PRECISION_DIALECTS"]


@dataclass(frozen=True)
class Dialect:
    """A variant of the update rule.

    eps_mode:
        ``"outside"`` — d = √v̂ + ε (spec); ``"hat"`` — ε added to √v, not bias-corrected:
        θ ← θ − γ·√(1−β2^t)/(1−β1^t)·m/(√v + ε); ``"inside-sqrt"`` — d = √(v̂ + ε).
    amsgrad_mode (only when the group's amsgrad is on):
        ``"max-hat"`` — v̂max ← max(v̂max, v̂) (spec); ``"max-raw"`` — vmax ← max(vmax, v),
        d from √(vmax/(1−β2^t)); ``"ignored"`` — the flag has no effect; ``"paper"`` —
        Reddi et al.: no bias correction at all, vmax ← max(vmax, v), d = √vmax + ε.
    weight_decay_mode:
        ``"l2"`` — g ← g + λθ after the maximize negation (spec); ``"decoupled"`` —
        θ ← θ·(1 − γλ) before the update, g without λθ (AdamW); ``"maximize-after-wd"`` —
        g ← −(∇ + λθ) when maximizing.
    bias_correction:
        False — m̂ = m, v̂ = v.
    step_offset:
        the bias corrections use t + step_offset (an off-by-one in the step counter).
    """

    name: str
    summary: str
    known_in: str
    eps_mode: str = "outside"
    amsgrad_mode: str = "max-hat"
    weight_decay_mode: str = "l2"
    bias_correction: bool = True
    step_offset: int = 0

    EPS_MODES = ("outside", "hat", "inside-sqrt")
    AMSGRAD_MODES = ("max-hat", "max-raw", "ignored", "paper")
    WEIGHT_DECAY_MODES = ("l2", "decoupled", "maximize-after-wd")

    def __post_init__(self) -> None:
        # a typo in a switch would silently be the spec's formula: refuse it here
        for field_name, allowed in (("eps_mode", self.EPS_MODES),
                                    ("amsgrad_mode", self.AMSGRAD_MODES),
                                    ("weight_decay_mode", self.WEIGHT_DECAY_MODES)):
            value = getattr(self, field_name)
            if value not in allowed:
                raise ValueError(f"dialect {self.name!r}: {field_name}={value!r}; choose one "
                                 f"of {', '.join(allowed)}")
        if not isinstance(self.bias_correction, bool) or not isinstance(self.step_offset, int):
            raise ValueError(f"dialect {self.name!r}: bias_correction is a bool and "
                             "step_offset an int")

    @property
    def vmax_kind(self) -> str:
        """What the v̂max state holds in this dialect: ``"hat"`` or ``"raw"``."""
        return "raw" if self.amsgrad_mode in ("max-raw", "paper") else "hat"

    def can_differ(self, amsgrad: bool, maximize: bool, weight_decay: float) -> bool:
        """Whether this dialect can depart from the spec on a group with these options."""
        if self.eps_mode != "outside" or not self.bias_correction or self.step_offset:
            return True
        if self.amsgrad_mode != "max-hat" and amsgrad:
            return True
        if self.weight_decay_mode == "decoupled" and weight_decay:
            return True
        return self.weight_decay_mode == "maximize-after-wd" and maximize and bool(weight_decay)


SPEC = Dialect(
    "spec", "the documented algorithm (mindspore.experimental.optim.Adam's documentation)",
    "the reference")

DIALECTS: dict[str, Dialect] = {d.name: d for d in (
    SPEC,
    Dialect("eps-hat",
            "ε outside the bias correction: θ ← θ − γ·√(1−β2^t)/(1−β1^t) · m/(√v + ε)",
            "MindSpore ops.Adam, nn.Adam, experimental.optim.Adam; TF raw ResourceApplyAdam; "
            "Keras 3 on tensorflow, jax and torch; scikit-learn AdamOptimizer; ONNX (t>0); "
            "Kingma & Ba §2 'efficient' form",
            eps_mode="hat"),
    Dialect("ams-rawmax",
            "amsgrad keeps the max of raw v: vmax ← max(vmax, v); d = √(vmax/(1−β2^t)) + ε",
            "PyTorch (for-loop, foreach, fused); PaddlePaddle 3 Adam(amsgrad=True)",
            amsgrad_mode="max-raw"),
    Dialect("ams-rawmax+eps-hat",
            "both: vmax ← max(vmax, v); θ ← θ − γ·√(1−β2^t)/(1−β1^t) · m/(√vmax + ε)",
            "TF ResourceApplyAdamWithAmsgrad, Keras 3, MindSpore nn.Adam(use_amsgrad=True)",
            eps_mode="hat", amsgrad_mode="max-raw"),
    Dialect("ams-ignored", "the amsgrad flag has no effect (plain Adam is run)",
            "MindSpore 2.10 experimental.optim.Adam (seen); mint.optim.Adam (from source)",
            amsgrad_mode="ignored"),
    Dialect("ams-ignored+eps-hat", "amsgrad ignored and ε outside the bias correction",
            "MindSpore 2.10 experimental.optim.Adam with amsgrad=True",
            eps_mode="hat", amsgrad_mode="ignored"),
    Dialect("ams-paper",
            "Reddi et al.: no bias correction; vmax ← max(vmax, v); θ ← θ − γ·m/(√vmax + ε)",
            "the AMSGrad paper; optax with both bias corrections off",
            amsgrad_mode="paper"),
    Dialect("wd-decoupled+eps-hat",
            "decoupled weight decay with the current γ, θ ← θ·(1 − γλ), then θ ← θ − "
            "γ·√(1−β2^t)/(1−β1^t)·m/(√v + ε)",
            "Keras 3 Adam(weight_decay=λ) on tensorflow, jax and torch",
            eps_mode="hat", weight_decay_mode="decoupled"),
    Dialect("ams-rawmax+eps-hat+wd-decoupled",
            "all three: max of raw v, ε outside the bias correction, decoupled decay",
            "Keras 3 Adam(amsgrad=True, weight_decay=λ)",
            eps_mode="hat", amsgrad_mode="max-raw", weight_decay_mode="decoupled"),
    Dialect("wd-decoupled",
            "decoupled weight decay: θ ← θ·(1 − γλ), then the update without λθ in g",
            "AdamW; Keras weight_decay; torch decoupled_weight_decay=True",
            weight_decay_mode="decoupled"),
    Dialect("no-bias-correction", "m̂ = m, v̂ = v",
            "ONNX Adam with t = 0; MLX optimizers.Adam (its default bias_correction=False)",
            bias_correction=False),
    Dialect("eps-inside-sqrt", "ε inside the square root: d = √(v̂ + ε)", "optax eps_root style",
            eps_mode="inside-sqrt"),
    Dialect("maximize-after-wd", "maximize negates after weight decay: g = −(∇ + λθ)",
            "a plausible bug", weight_decay_mode="maximize-after-wd"),
    Dialect("step-off-by-one", "the bias corrections use t + 1", "a plausible bug",
            step_offset=1),
    Dialect("step-off-by-one-low",
            "the bias corrections use t − 1 (the first step divides by 1 − β^0 = 0)",
            "a plausible bug", step_offset=-1),
)}


def get_dialect(name: str) -> Dialect:
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}; known: {', '.join(DIALECTS)}") from None


# --- precision dialects ------------------------------------------------------------------
# What a narrow implementation does when it fails: the documented formula with some
# hyperparameters rounded to a narrower format. Alone or combined with a semantic dialect
# ("eps-lost+eps-hat"); each is judged against its own reference and bound.

_HYPERPARAMETERS = ("lr", "betas", "eps", "weight_decay")


@dataclass(frozen=True)
class PrecisionDialect:
    """Hyperparameters rounded to a format before use.

    ``rounds`` names which (of lr, betas, eps, weight_decay); ``to`` is a format name, or
    None for the variant's own dtype. A rounding that leaves the documented range (β2 =
    0.999 is 1.0 in bfloat16) makes the dialect inapplicable: that is no longer Adam.
    """

    name: str
    summary: str
    known_in: str
    rounds: tuple[str, ...]
    to: str | None = None

    def target(self, dtype: str) -> str | None:
        """The format this dialect rounds to in a ``dtype`` run, or None where it is moot."""
        from .floats import get_format

        target = self.to or dtype
        if get_format(target).precision >= get_format(dtype).precision and self.to is not None:
            return None  # rounding to a format at least as wide as the run changes nothing
        return None if target == "float64" else target

    def apply(self, problem, dtype: str):
        """``problem`` with the hyperparameters rounded, or None where nothing changes or
        the rounded values leave the documented range."""
        from .config import GroupConfig
        from .floats import round_to
        from .problem import Group, Problem

        target = self.target(dtype)
        if target is None:
            return None

        def r(x: float) -> float:
            return float(round_to(x, target))

        groups, changed = [], False
        for group in problem.groups:
            c = group.config
            values = {"lr": c.lr, "betas": c.betas, "eps": c.eps,
                      "weight_decay": c.weight_decay}
            if "lr" in self.rounds:
                values["lr"] = r(c.lr)
            if "betas" in self.rounds:
                values["betas"] = (r(c.beta1), r(c.beta2))
            if "eps" in self.rounds:
                values["eps"] = r(c.eps)
            if "weight_decay" in self.rounds:
                values["weight_decay"] = r(c.weight_decay)
            lrs = group.lrs
            if lrs is not None and "lr" in self.rounds:
                lrs = round_to(lrs, target)
            try:
                config = GroupConfig(**values, amsgrad=c.amsgrad, maximize=c.maximize)
                rounded = Group(config, group.params, lrs)
            except ValueError:
                return None
            changed |= config != c or (lrs is not None and not (lrs == group.lrs).all())
            groups.append(rounded)
        if not changed:
            return None
        return Problem(tuple(groups), problem.grads, problem.initial_state)


PRECISION_DIALECTS: dict[str, PrecisionDialect] = {d.name: d for d in (
    PrecisionDialect("eps-lost", "ε rounded to the parameter's dtype (1e-8 is 0 in float16): "
                     "where v̂ is 0 the step divides 0 by 0",
                     "torch for-loop and foreach in float16; optax.adam in float16",
                     rounds=("eps",)),
    PrecisionDialect("hyper-in-dtype", "lr, β1, β2, ε and λ rounded to the parameter's dtype "
                     "(β2 = 0.999 is 0.99902 in float16)",
                     "implementations that hold the hyperparameters as tensors of the "
                     "parameter's dtype", rounds=_HYPERPARAMETERS),
    PrecisionDialect("hyper-float32", "lr, β1, β2, ε and λ held as float32 in a float64 run",
                     "MindSpore nn.Adam (its hyperparameters are float32 Parameters)",
                     rounds=_HYPERPARAMETERS, to="float32"),
)}
