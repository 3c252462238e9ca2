"""The features a case switches on (weight decay, amsgrad, maximize), and refusing those an
optimizer does not have: each with the reason a person reads, never faked (an adapter does not
negate gradients to fake maximize). A refused case is reported unsupported, never passed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .base import CaseSetup, Hyperparameters, Unsupported, UnsupportedFeature

__all__ = ["FEATURES", "asked", "group_asks", "Lacking"]

#: the features a case switches, by their torch and optax keyword names
FEATURES = ("weight_decay", "amsgrad", "maximize")


def asked(weight_decay, amsgrad, maximize) -> dict[str, object]:
    """Feature → whether these settings switch it on (truthy), in the order of FEATURES."""
    return {"weight_decay": weight_decay != 0, "amsgrad": amsgrad, "maximize": maximize}


def group_asks(cfg: Hyperparameters) -> dict[str, object]:
    """Feature → whether a group's hyperparameters switch it on."""
    return asked(cfg.weight_decay, cfg.amsgrad, cfg.maximize)


_WORDS = {"weight_decay": "weight decay", "amsgrad": "amsgrad", "maximize": "maximize"}


def _in_a_case(feature: str, group_index: int, reason: str) -> str:
    if feature == "weight_decay":
        return f"group {group_index} asks for weight decay: {reason}"
    if feature == "maximize":
        return f"{reason} (the adapter does not fake it by negating gradients)"
    return reason


@dataclass(frozen=True)
class Lacking:
    """The features an optimizer does not have: feature → the reason (``"optax has no
    maximize option"``), in the order a case is checked for them."""

    reasons: Mapping[str, str]

    @classmethod
    def of(cls, who: str, *features: str, **after: str) -> Lacking:
        """``who`` has none of ``features`` (in the order a case is checked for them): each
        reason is "<who> has no <feature> option", or ``after[feature]`` in place of
        " option" where given."""
        return cls({feature: f"{who} has no {_WORDS[feature]}{after.get(feature, ' option')}"
                    for feature in features})

    def unsupported(self) -> list[Unsupported]:
        """What the probe lists."""
        return [Unsupported(feature, reason) for feature, reason in self.reasons.items()]

    def check_group(self, group_index: int, cfg: Hyperparameters) -> None:
        """UnsupportedFeature for the first lacking feature the group asks for."""
        on = group_asks(cfg)
        for feature, reason in self.reasons.items():
            if on[feature]:
                raise UnsupportedFeature(_in_a_case(feature, group_index, reason))

    def check_case(self, problem: CaseSetup) -> None:
        for group_index, group in enumerate(problem.groups):
            self.check_group(group_index, group.config)

    def check_construct(self, weight_decay, amsgrad, maximize) -> None:
        """UnsupportedFeature, with the bare reason, where a construction asks for one."""
        on = asked(weight_decay, amsgrad, maximize)
        for feature, reason in self.reasons.items():
            if on[feature]:
                raise UnsupportedFeature(reason)
