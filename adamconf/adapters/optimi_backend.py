"""torch-optimi: ``optimi.Adam``, driven by the generic torch driver (:mod:`.torch_optimizer`).

Variants × device (``cpu``; ``cuda`` when present) × dtype (float64, float32, float16,
bfloat16), each ``optimi.Adam(params, lr, betas, weight_decay, eps, ...)`` with ``triton=False``
(optimi's Triton kernels are for GPUs) and:

- ``default``: optimi's own choices (``kahan_sum=None``: Kahan-compensated updates for float16
  and bfloat16 parameters, none for wider ones; L2 weight decay added to the gradient);
- ``kahan-sum`` (``kahan_sum=True``) and ``no-kahan-sum`` (``kahan_sum=False``);
- ``decouple-wd`` (``decouple_wd=True``): θ ← θ·(1 − γλ), the AdamW form;
- ``decouple-lr`` (``decouple_lr=True``): θ ← θ·(1 − (γ/γmax)·λ), "fully decoupled", with
  γmax = ``max_lr`` set per group to the largest lr of its schedule, as optimi asks ("Set if
  lr is not the maximum scheduled learning rate"; left unset, a schedule starting at 0
  divides by zero).

optimi's default eps is 1e-6 (torch's is 1e-8); the driver always passes the case's eps.
It has no ``amsgrad`` and no ``maximize``: cases that need them are unsupported.

Its param groups keep β1 and β2 as ``beta1`` and ``beta2`` (not torch's ``betas``): the
groups are given so. What it computes (``optimi/adam.py``): the moments with *debiased*
betas, β̂ = (β^t − β)/(β^t − 1), so that ``exp_avg`` and ``exp_avg_sq`` hold m̂ and v̂ themselves
(not m and v), then θ ← θ − γ·m̂/(√v̂ + ε). Its state therefore follows torch's names but not
their meaning: m and v are reported absent (only the step, which optimi keeps per param
group, is read), and resuming from a given m, v is unsupported.
"""

from __future__ import annotations

from collections.abc import Mapping

from .base import GroupSetup, Hyperparameters, Variant
from .torch_optimizer import Implementation, TorchOptimizerBackend

__all__ = ["OptimiBackend", "VARIANTS"]

NAME = "optimi"
VARIANTS: dict[str, dict[str, object]] = {
    "default": {},
    "kahan-sum": {"kahan_sum": True},
    "no-kahan-sum": {"kahan_sum": False},
    "decouple-wd": {"decouple_wd": True},
    "decouple-lr": {"decouple_lr": True},
}


class OptimiBackend(TorchOptimizerBackend):
    """``optimi.Adam``: default, Kahan summation on and off, decoupled weight decay."""

    state_keys: Mapping[str, str] = {"step": "step"}  # exp_avg is m̂ here, not m
    resume_refused = ("optimi keeps the debiased m̂ and v̂ as exp_avg and exp_avg_sq; the "
                      "driver does not convert a resumed m, v into them")

    def __init__(self) -> None:
        super().__init__(
            "optimi:Adam", name=NAME,
            implementations={name: Implementation({"triton": False, **keywords})
                             for name, keywords in VARIANTS.items()},
            description="optimi.Adam (torch-optimi) with triton=False: default, kahan_sum "
                        "True/False, decouple_wd, decouple_lr; the case's eps always passed")

    def extra_group_keys(self, group: GroupSetup, variant: Variant) -> dict[str, object]:
        if variant.name != "decouple-lr":
            return {}
        lrs = [group.config.lr] + ([] if group.lrs is None else [float(x) for x in group.lrs])
        return {"max_lr": max(lrs)}

    def group_keys(self, cfg: Hyperparameters, lr) -> dict[str, object]:
        keys = super().group_keys(cfg, lr)
        beta1, beta2 = keys.pop("betas")
        return {**keys, "beta1": beta1, "beta2": beta2}  # optimi's names in a param group
