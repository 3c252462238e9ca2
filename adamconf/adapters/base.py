"""The seam between the suite and an optimizer implementation: the Backend protocol.

A backend drives a framework's own optimizer step by step; the harness reads parameters
(and state, where the framework exposes it) after each step. Frameworks are imported
lazily inside their adapter, so ``import adamconf`` never imports torch or MindSpore.

Values cross the seam as float64 numpy arrays that are exactly representable in the
variant's dtype: the adapter converts them to its own tensors and back (exact both ways).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Variant", "Unsupported", "Refusal", "BackendInfo", "OptimizerState", "Backend",
           "Session", "UnsupportedFeature", "BackendUnavailable", "BackendUsageError",
           "FirstUseBuild", "error_reason", "Hyperparameters", "GroupSetup",
           "ResumeState", "CaseSetup"]


# --- the plain data a backend is handed ---------------------------------------------------
# These mirror the reference's Problem without its validation: an implementation under test
# never runs the spec's code (sharing it would make its conformance true by construction).
# The conformance layer builds a CaseSetup from a validated Problem.

@dataclass(frozen=True)
class Hyperparameters:
    """One param group's hyperparameters, as the exact binary64 values the case passes."""

    lr: float
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    amsgrad: bool = False
    maximize: bool = False

    @property
    def beta1(self) -> float:
        return self.betas[0]

    @property
    def beta2(self) -> float:
        return self.betas[1]


@dataclass(frozen=True)
class GroupSetup:
    """One param group: hyperparameters, initial parameter values, lr per step (or None)."""

    config: Hyperparameters
    params: tuple[np.ndarray, ...]
    lrs: np.ndarray | None = None

    def lr_at(self, step_index: int) -> float:
        return self.config.lr if self.lrs is None else float(self.lrs[step_index])


@dataclass(frozen=True)
class ResumeState:
    """State to resume from: the shared step count; m, v and the documented v̂max (the max
    of bias-corrected v) per parameter."""

    step: int
    m: tuple[np.ndarray, ...]
    v: tuple[np.ndarray, ...]
    vmax: tuple[np.ndarray, ...]

    def raw_vmax(self, index: int, beta2: float) -> np.ndarray:
        """Parameter ``index``'s v̂max as the max of *raw* v, which torch, TensorFlow, Keras,
        Paddle and MindSpore's nn.Adam keep: v̂max·(1 − β2^step) with the β2 passed, in binary64
        as the reference resumes those dialects (a framework then rounds it to its dtype)."""
        return np.asarray(self.vmax[index], dtype=np.float64) * (1.0 - beta2 ** self.step)


@dataclass(frozen=True)
class CaseSetup:
    """What a backend runs: groups, one gradient array (steps, *shape) per parameter, and
    an optional state to resume from. Parameters are numbered across groups in order."""

    groups: tuple[GroupSetup, ...]
    grads: tuple[np.ndarray, ...]
    initial_state: ResumeState | None = None

    @property
    def params(self) -> tuple[np.ndarray, ...]:
        return tuple(p for g in self.groups for p in g.params)

    @property
    def steps(self) -> int:
        return int(self.grads[0].shape[0]) if self.grads else 0

    @property
    def initial_step(self) -> int:
        return 0 if self.initial_state is None else self.initial_state.step

    def group_of_param(self) -> list[int]:
        return [gi for gi, g in enumerate(self.groups) for _ in g.params]

    def group_ranges(self) -> list[range]:
        """Each group's parameters, by their numbers across groups."""
        ends = list(itertools.accumulate((len(g.params) for g in self.groups), initial=0))
        return [range(start, end) for start, end in zip(ends, ends[1:])]


class UnsupportedFeature(Exception):
    """Raised by ``Backend.open`` when the variant cannot express what the case asks for.

    The message is the reason a person reads (e.g. "optax.adam has no maximize option").
    The runner reports the case as ``unsupported`` — never as a pass.
    """


class BackendUnavailable(Exception):
    """The framework behind a backend is not installed or cannot start here."""


class BackendUsageError(ValueError):
    """What the user asked of a backend cannot be given as asked (an option the constructor
    does not take, a value that is not what a parameter means); the message names the fix.
    The command line exits 2 with it: it is bad input, not a verdict."""


@dataclass(frozen=True)
class Variant:
    """One way a user can run a backend's Adam: an implementation, a device and a dtype."""

    backend: str
    name: str
    device: str
    dtype: str

    @property
    def id(self) -> str:
        return f"{self.name}/{self.device}/{self.dtype}"

    def to_json(self) -> dict:
        return {"backend": self.backend, "name": self.name, "device": self.device,
                "dtype": self.dtype, "id": self.id}


@dataclass(frozen=True)
class Unsupported:
    """Something a backend cannot do here (a variant, a feature, a device) and why."""

    what: str
    reason: str


@dataclass(frozen=True)
class Refusal:
    """A variant the backend has (an implementation, a device, a dtype) that it refused to run
    here, and the library's reason: a run that selects only refused variants is a verdict
    (no verdict, every reason named), not a usage error."""

    variant: Variant
    reason: str

    def to_json(self) -> dict:
        return {"variant": self.variant.to_json(), "reason": self.reason}


@dataclass(frozen=True)
class FirstUseBuild:
    """What a backend must build before its first step can run here (a kernel compiled at
    first use and cached), said before the build starts so that it gets a phase of its own.

    ``locks``: files the build holds open while it runs (torch's extension builder keeps a
    ``lock`` file in the build folder); one whose owner is gone stalls every later build, so a
    build that is stopped has them cleared.
    """

    what: str
    locks: tuple[str, ...] = ()


@dataclass
class BackendInfo:
    """What ``probe`` found: versions, devices, dtypes, variants, and what is missing.

    ``refused``: the variants tried and refused, with the library's reason (a run that can
    select nothing else reports them). ``notes``: what a reader of any report must know about
    how the backend is judged (state not compared and why, features declared by the user).
    """

    name: str
    installed: bool
    versions: dict[str, str] = field(default_factory=dict)
    devices: list[str] = field(default_factory=list)
    dtypes: list[str] = field(default_factory=list)
    variants: list[Variant] = field(default_factory=list)
    unsupported: list[Unsupported] = field(default_factory=list)
    install_hint: str | None = None
    description: str = ""
    refused: list[Refusal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"name": self.name, "installed": self.installed, "versions": self.versions,
                "devices": self.devices, "dtypes": self.dtypes,
                "variants": [v.to_json() for v in self.variants],
                "unsupported": [{"what": u.what, "reason": u.reason} for u in self.unsupported],
                "refused": [r.to_json() for r in self.refused], "notes": list(self.notes),
                "install_hint": self.install_hint, "description": self.description}


@dataclass
class OptimizerState:
    """State as the framework holds it, per parameter, as float64 arrays.

    Any of m, v, vmax may be None where the framework does not expose it. ``vmax_kind``
    declares what ``vmax`` means in this framework: ``"hat"`` (max of bias-corrected v,
    the documented state) or ``"raw"`` (max of raw v, as torch keeps it).
    """

    step: int | None
    m: list[np.ndarray] | None
    v: list[np.ndarray] | None
    vmax: list[np.ndarray] | None
    vmax_kind: str = "hat"


@runtime_checkable
class Session(Protocol):
    """One optimizer instance on one case, stepped by the harness."""

    def step(self, grads: Sequence[np.ndarray], lrs: Sequence[float] | None = None) -> None:
        """Apply one step: one gradient per parameter; ``lrs`` sets each group's lr first."""

    def params(self) -> list[np.ndarray]:
        """The parameters now, as float64 arrays, in the problem's order."""

    def state(self) -> OptimizerState | None:
        """The optimizer's state now, or None where the framework hides it."""


@runtime_checkable
class Backend(Protocol):
    """A framework's Adam, as the suite sees it."""

    name: str

    def probe(self) -> BackendInfo:
        """Installed? Versions, devices, dtypes, variants, unsupported things with reasons."""

    def open(self, problem: CaseSetup, variant: Variant) -> Session:
        """A fresh optimizer on the problem's initial params (and initial state, if any).

        Raises :class:`UnsupportedFeature` when the variant cannot express the problem.
        """

    def construct(self, variant: Variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False) -> None:
        """Build the optimizer with these hyperparameters on a small parameter, and discard it.

        Used to check that the documented invalid values raise ``ValueError``; whatever the
        framework raises is let through.
        """

    # Optional, for a backend that builds something at first use (DeepSpeed's CPU Adam):
    #   first_use_build(self) -> FirstUseBuild | None: what a first step would build here now
    #       (None: nothing, or it is built); quick, builds nothing.
    #   build(self) -> None: build it; raises with the reason where it cannot.
    # The worker runs the build before the probe, in a phase with its own time budget
    # (``--build-timeout``), apart from the per-case timeout.


def error_reason(exc: BaseException) -> str:
    """A framework's exception as the one line an unsupported reason shows."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
