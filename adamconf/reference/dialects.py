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

__all__ = ["Dialect", "SPEC", "DIALECTS", "get_dialect"]


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
            "MindSpore ops.Adam, nn.Adam, experimental.optim.Adam; TF/Keras; ONNX (t>0); "
            "Kingma & Ba §2 'efficient' form",
            eps_mode="hat"),
    Dialect("ams-rawmax",
            "amsgrad keeps the max of raw v: vmax ← max(vmax, v); d = √(vmax/(1−β2^t)) + ε",
            "PyTorch (for-loop, foreach, fused)",
            amsgrad_mode="max-raw"),
    Dialect("ams-rawmax+eps-hat",
            "both: vmax ← max(vmax, v); θ ← θ − γ·√(1−β2^t)/(1−β1^t) · m/(√vmax + ε)",
            "TF ApplyAdamWithAmsgrad, Keras, MindSpore nn.Adam(use_amsgrad=True)",
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
    Dialect("wd-decoupled",
            "decoupled weight decay: θ ← θ·(1 − γλ), then the update without λθ in g",
            "AdamW; Keras weight_decay; torch decoupled_weight_decay=True",
            weight_decay_mode="decoupled"),
    Dialect("no-bias-correction", "m̂ = m, v̂ = v", "ONNX Adam with t = 0",
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
