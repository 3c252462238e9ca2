"""What the reference computes on: param groups, initial values, gradients, schedules, state.

A :class:`Problem` is pure data (float64 numpy arrays and :class:`GroupConfig`); the
conformance layer wraps it into a named, tagged case. Parameters are numbered across
groups in order: group 0's parameters first, then group 1's, and so on — the order of
``optimizer.param_groups`` in every framework.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import GroupConfig

__all__ = ["Group", "InitialState", "Problem", "Trajectory"]


def _frozen_array(a, name: str) -> np.ndarray:
    arr = np.array(a, dtype=np.float64)  # a copy: the problem owns its data
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class Group:
    """One param group: its hyperparameters, its parameters' initial values, its lr schedule.

    ``lrs`` holds the lr used at each step (length = number of steps), as an LR scheduler
    would set ``param_groups[i]['lr']`` before each step; ``None`` means ``config.lr`` on
    every step.
    """

    config: GroupConfig
    params: tuple[np.ndarray, ...]
    lrs: np.ndarray | None = None
    # β1^t and β2^t per step where they are inputs of their own (steps, 2): only a problem
    # whose hyperparameters a dialect holds rounded has them (dialects.rounded_problem)
    held_powers: np.ndarray | None = field(default=None, kw_only=True, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "params",
                           tuple(_frozen_array(p, "param") for p in self.params))
        if self.lrs is not None:
            lrs = _frozen_array(self.lrs, "lrs")
            if lrs.ndim != 1:
                raise ValueError(f"lr schedule must be 1-d (one lr per step), got shape "
                                 f"{lrs.shape}")
            for lr in lrs:  # every scheduled lr obeys the documented range
                # the lr alone: a configuration held rounded may have a β of 1.0 (see
                # GroupConfig.held_rounded), which its schedule does not make invalid
                GroupConfig(lr=float(lr))
            object.__setattr__(self, "lrs", lrs)
        if self.held_powers is not None:
            object.__setattr__(self, "held_powers", _frozen_array(self.held_powers, "powers"))

    def lr_at(self, step_index: int) -> float:
        return self.config.lr if self.lrs is None else float(self.lrs[step_index])

    @property
    def max_lr(self) -> float:
        """The largest lr the group sees: its constructor's or a scheduled one (what
        optimi's ``max_lr`` asks for: the schedule's peak)."""
        return self.config.lr if self.lrs is None else max(self.config.lr,
                                                            float(np.max(self.lrs)))


@dataclass(frozen=True)
class InitialState:
    """Optimizer state to resume from: the shared step count and m, v, v̂max per parameter.

    ``vmax`` holds the documented v̂max (the max of bias-corrected v) for every parameter;
    zeros where amsgrad is off.
    """

    step: int
    m: tuple[np.ndarray, ...]
    v: tuple[np.ndarray, ...]
    vmax: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if int(self.step) != self.step or self.step < 0:
            raise ValueError(f"initial step must be an integer >= 0, got {self.step!r}")
        object.__setattr__(self, "step", int(self.step))
        for name in ("m", "v", "vmax"):
            object.__setattr__(self, name,
                               tuple(_frozen_array(a, name) for a in getattr(self, name)))


@dataclass(frozen=True)
class Problem:
    """Groups, one gradient array per parameter of shape (steps, *param.shape), a state."""

    groups: tuple[Group, ...]
    grads: tuple[np.ndarray, ...]
    initial_state: InitialState | None = None
    # a problem whose hyperparameters a dialect rounded: the one as passed
    unrounded: Problem | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "groups", tuple(self.groups))
        object.__setattr__(self, "grads", tuple(_frozen_array(g, "grad") for g in self.grads))
        params = self.params
        if len(self.grads) != len(params):
            raise ValueError(f"{len(self.grads)} gradient arrays for {len(params)} parameters")
        steps = {g.shape[0] for g in self.grads if g.ndim >= 1}
        if len(steps) > 1:
            raise ValueError(f"gradient arrays disagree on the number of steps: {sorted(steps)}")
        for i, (p, g) in enumerate(zip(params, self.grads)):
            if g.shape[1:] != p.shape:
                raise ValueError(f"param {i}: gradients of shape {g.shape[1:]} per step for a "
                                 f"parameter of shape {p.shape}")
        for gi, group in enumerate(self.groups):
            if group.held_powers is not None and group.held_powers.shape != (self.steps, 2):
                raise ValueError(f"group {gi}: held β powers of shape "
                                 f"{group.held_powers.shape} for {self.steps} steps")
            if group.lrs is not None and group.lrs.shape[0] != self.steps:
                raise ValueError(f"group {gi}: lr schedule has {group.lrs.shape[0]} entries "
                                 f"for {self.steps} steps")
        state = self.initial_state
        if state is not None:
            for name in ("m", "v", "vmax"):
                arrays = getattr(state, name)
                if len(arrays) != len(params) or any(
                        a.shape != p.shape for a, p in zip(arrays, params)):
                    raise ValueError(f"initial state {name!r} does not match the parameters' "
                                     "count and shapes")

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

    @property
    def element_steps(self) -> int:
        return sum(p.size for p in self.params) * self.steps


@dataclass
class Trajectory:
    """Per parameter, per step (after each step): θ, m, v and v̂max, as float64 arrays.

    Each array has shape (steps, *param.shape). ``vmax_kind`` says what ``vmax`` holds:
    ``"hat"`` (max of bias-corrected v, the documented state) or ``"raw"`` (max of raw v).
    ``overflow``, where not None, maps each quantity to boolean masks (one per parameter)
    marking values whose exact value is finite but beyond float64's range (stored as ±inf):
    no dtype can be judged there. ``ties``, where not None, maps each quantity to boolean
    masks marking values whose exact value is a float64 midpoint (or whose ball still holds
    one at the highest precision): stored ties-to-even, and either neighbour is right.
    """

    theta: list[np.ndarray]
    m: list[np.ndarray]
    v: list[np.ndarray]
    vmax: list[np.ndarray]
    vmax_kind: str = "hat"
    precision: dict = field(default_factory=dict)
    overflow: dict[str, list[np.ndarray]] | None = None
    ties: dict[str, list[np.ndarray]] | None = None

    QUANTITIES = ("theta", "m", "v", "vmax")

    def quantity(self, name: str) -> list[np.ndarray]:
        return getattr(self, name)
