"""Hyperparameters of one Adam param group, validated as documented.

The documented errors of ``mindspore.experimental.optim.Adam`` are ``ValueError``s:
lr < 0, eps < 0, a beta outside [0, 1), weight_decay < 0, and an lr that is not an int,
a float or a tensor. NaN hyperparameters are rejected too (the documentation is silent;
a NaN would otherwise slip through every ``<`` comparison and poison the trajectory).
:data:`DOCUMENTED_ERRORS` holds each documented clause as data, once: the runner, fuzzing,
the pytest plugin and the tests read it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GroupConfig", "DEFAULTS", "DocumentedError", "DOCUMENTED_ERRORS", "coerce_lr",
           "validate_hyperparameters"]

# The documented defaults of mindspore.experimental.optim.Adam
DEFAULTS: dict[str, Any] = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}


@dataclass(frozen=True)
class DocumentedError:
    """One clause of the documented errors: an optimizer built with ``value`` for
    ``keyword`` (for ``betas``, the beta at ``index``) and every other hyperparameter at its
    default raises ``exception``, with a message that begins with ``words`` (torch's and
    MindSpore's words, and the reference's)."""

    keyword: str  # the constructor's keyword: lr, betas, eps or weight_decay
    value: Any
    shown: str  # the value as reports show it
    words: str
    index: int | None = None  # which beta
    exception: type[Exception] = ValueError

    @property
    def parameter(self) -> str:
        """The name reports give it: ``lr``, ``eps``, ``betas[0]``, ``betas[1]``,
        ``weight_decay``."""
        return self.keyword if self.index is None else f"{self.keyword}[{self.index}]"

    @property
    def label(self) -> str:
        """``parameter=value`` as Python writes the value (a test's id): ``betas[0]=-0.1``."""
        return f"{self.parameter}={self.value!r}"

    @property
    def override(self) -> dict[str, Any]:
        """The one keyword argument that differs from :data:`DEFAULTS`:
        ``{"betas": (-0.1, 0.999)}``."""
        if self.index is None:
            return {self.keyword: self.value}
        values = list(DEFAULTS[self.keyword])
        values[self.index] = self.value
        return {self.keyword: tuple(values)}

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """:data:`DEFAULTS` with this clause's value in place."""
        return {**DEFAULTS, **self.override}


DOCUMENTED_ERRORS: tuple[DocumentedError, ...] = (
    DocumentedError("lr", -1e-3, "-0.001", "Invalid learning rate"),
    DocumentedError("lr", "0.01", "'0.01' (a str)", "Invalid learning rate type"),
    DocumentedError("eps", -1e-8, "-1e-08", "Invalid epsilon value"),
    DocumentedError("betas", -0.1, "-0.1", "Invalid beta parameter at index 0", index=0),
    DocumentedError("betas", 1.0, "1.0", "Invalid beta parameter at index 0", index=0),
    DocumentedError("betas", 1.0, "1.0", "Invalid beta parameter at index 1", index=1),
    DocumentedError("betas", -0.5, "-0.5", "Invalid beta parameter at index 1", index=1),
    DocumentedError("weight_decay", -0.01, "-0.01", "Invalid weight_decay value"),
)


def coerce_lr(lr: Any) -> float:
    """Return ``lr`` as a float, accepting an int, a float or a tensor-like scalar.

    A tensor-like scalar is anything with ``.item()`` on a single element (numpy, torch,
    MindSpore and JAX scalars and 0-d or 1-element arrays). Booleans are refused: ``True``
    is an int to Python, never a learning rate to a person.
    """
    if isinstance(lr, bool):
        raise ValueError(f"Invalid learning rate: {lr!r}; lr must be an int, a float or a "
                         "tensor holding one number, not a bool")
    if isinstance(lr, numbers.Real):
        return float(lr)
    item = getattr(lr, "item", None)
    size = getattr(lr, "size", 1)
    if callable(item):
        try:
            if callable(size):  # torch: .size() is a method; numel is the count
                size = lr.numel()
            if int(size) != 1:
                raise ValueError(
                    f"Invalid learning rate: a tensor of {int(size)} elements; lr must be an "
                    "int, a float or a tensor holding exactly one number")
            value = item()
        except ValueError:
            raise
        except Exception as exc:  # a framework's own error reading the tensor
            raise ValueError(f"Invalid learning rate: could not read {type(lr).__name__} "
                             f"as a number ({exc})") from exc
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"Invalid learning rate: tensor holds {value!r}; lr must be a "
                             "real number")
        return float(value)
    raise ValueError(f"Invalid learning rate type: {type(lr).__name__}; lr must be an int, "
                     "a float or a tensor holding one number")


def _check_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"Invalid {name}: {value!r} ({type(value).__name__}); "
                         f"{name} must be a real number")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"Invalid {name}: nan; {name} must be a number, not NaN")
    return value


def validate_hyperparameters(lr: Any, betas: Any, eps: Any, weight_decay: Any
                             ) -> tuple[float, tuple[float, float], float, float]:
    """Check the documented ranges; return (lr, (beta1, beta2), eps, weight_decay) as floats.

    Each error is a ``ValueError`` naming the parameter, the value and the allowed range.
    """
    lr = coerce_lr(lr)
    if math.isnan(lr):
        raise ValueError("Invalid learning rate: nan; lr must be a number >= 0")
    if lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr!r}; lr must be >= 0")
    eps = _check_real("epsilon value", eps)
    if eps < 0.0:
        raise ValueError(f"Invalid epsilon value: {eps!r}; eps must be >= 0")
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"Invalid betas: {betas!r}; betas must be a pair (beta1, beta2), "
                         "each in [0, 1)") from None
    beta1 = _check_real("beta parameter at index 0", beta1)
    beta2 = _check_real("beta parameter at index 1", beta2)
    for index, beta in enumerate((beta1, beta2)):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"Invalid beta parameter at index {index}: {beta!r}; "
                             "each beta must be in [0, 1)")
    weight_decay = _check_real("weight_decay value", weight_decay)
    if weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay!r}; "
                         "weight_decay must be >= 0")
    return lr, (beta1, beta2), eps, weight_decay


@dataclass(frozen=True)
class GroupConfig:
    """The hyperparameters of one param group, as the exact binary64 values passed.

    ``lr`` is the learning rate of the first step; a schedule (lr per step) lives with the
    case, since the documentation lets lr change between steps.
    """

    lr: float = DEFAULTS["lr"]
    betas: tuple[float, float] = DEFAULTS["betas"]
    eps: float = DEFAULTS["eps"]
    weight_decay: float = DEFAULTS["weight_decay"]
    amsgrad: bool = field(default=False, kw_only=True)
    maximize: bool = field(default=False, kw_only=True)
    # 1 − β1 and 1 − β2 where they are not computed from the β held: only a configuration
    # held rounded has them (see held_rounded)
    held_one_minus_betas: tuple[float, float] | None = field(default=None, kw_only=True,
                                                               repr=False)

    def __post_init__(self) -> None:
        lr, betas, eps, weight_decay = validate_hyperparameters(
            self.lr, self.betas, self.eps, self.weight_decay)
        for flag in ("amsgrad", "maximize"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"Invalid {flag}: {getattr(self, flag)!r}; "
                                 f"{flag} must be True or False")
        object.__setattr__(self, "lr", lr)
        object.__setattr__(self, "betas", betas)
        object.__setattr__(self, "eps", eps)
        object.__setattr__(self, "weight_decay", weight_decay)

    @classmethod
    def held_rounded(cls, *, lr: float, betas: tuple[float, float], eps: float,
                     weight_decay: float, amsgrad: bool, maximize: bool,
                     one_minus_betas: tuple[float, float] | None = None) -> GroupConfig:
        """The configuration an implementation holds after rounding what it was passed: a β
        may have become 1.0 there (β2 = 0.999 in bfloat16), which no user may pass. Used
        to name what such an implementation does, never to judge against the spec.
        ``one_minus_betas``: 1 − β1 and 1 − β2 as held, where they are not 1 − β of the
        rounded β (rounded from the β passed instead)."""
        beta1, beta2 = betas
        if not (0.0 <= beta1 <= 1.0 and 0.0 <= beta2 <= 1.0):
            raise ValueError(f"Invalid betas: {betas!r}: a rounded β lies in [0, 1]")
        probe = cls(lr=lr, betas=(min(beta1, 0.5), min(beta2, 0.5)), eps=eps,
                    weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
        object.__setattr__(probe, "betas", (float(beta1), float(beta2)))
        if one_minus_betas is not None:
            held = tuple(float(x) for x in one_minus_betas)
            if held != (1.0 - probe.beta1, 1.0 - probe.beta2):
                object.__setattr__(probe, "held_one_minus_betas", held)
        return probe

    @property
    def one_minus_betas(self) -> tuple[float, float]:
        """(1 − β1, 1 − β2) as the step uses them: computed from the β held, except where a
        configuration held rounded says otherwise."""
        if self.held_one_minus_betas is not None:
            return self.held_one_minus_betas
        return 1.0 - self.beta1, 1.0 - self.beta2

    @property
    def beta1(self) -> float:
        return self.betas[0]

    @property
    def beta2(self) -> float:
        return self.betas[1]

    def to_json(self) -> dict[str, Any]:
        """Exact, language-neutral form: floats as C99 hex strings, with a decimal beside."""
        return {
            "lr": self.lr.hex(), "beta1": self.beta1.hex(), "beta2": self.beta2.hex(),
            "eps": self.eps.hex(), "weight_decay": self.weight_decay.hex(),
            "amsgrad": self.amsgrad, "maximize": self.maximize,
            "decimal": {"lr": repr(self.lr), "betas": [repr(self.beta1), repr(self.beta2)],
                        "eps": repr(self.eps), "weight_decay": repr(self.weight_decay)},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GroupConfig:
        return cls(lr=float.fromhex(data["lr"]),
                   betas=(float.fromhex(data["beta1"]), float.fromhex(data["beta2"])),
                   eps=float.fromhex(data["eps"]),
                   weight_decay=float.fromhex(data["weight_decay"]),
                   amsgrad=bool(data["amsgrad"]), maximize=bool(data["maximize"]))
