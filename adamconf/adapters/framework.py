"""What every framework's backend shares: the probe, made once and by trial, and the order a
session is opened in.

What a framework refuses here (a dtype, a device, an implementation) is found by running it,
never assumed: each variant steps a small problem once (:func:`trial_problem`), and a refusal
is the framework's own message, the reason a person reads in every report. A framework that is
missing or cannot start is a probe that says so and how to install it, not kept, so that an
install in between counts.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

import numpy as np

from .base import (
    BackendInfo,
    BackendUnavailable,
    CaseSetup,
    GroupSetup,
    Hyperparameters,
    Refusal,
    Session,
    Unsupported,
    UnsupportedFeature,
    Variant,
    error_reason,
)
from .install import INSTALL_HINTS

__all__ = ["FrameworkBackend", "TRIAL_CONFIG", "trial_problem", "one_step_refusal",
           "check_step"]

#: the trial's hyperparameters: torch's defaults but for an lr that moves θ visibly
TRIAL_CONFIG = Hyperparameters(0.25, (0.9, 0.999), 1e-8, 0.0)
TRIAL_THETA = (1.0, -0.5)
TRIAL_GRAD = (0.5, 0.25)


def trial_problem(config: Hyperparameters = TRIAL_CONFIG, theta: Iterable[float] = TRIAL_THETA,
                  grads: Iterable[Iterable[float]] = (TRIAL_GRAD,), **changes) -> CaseSetup:
    """One parameter of two elements, one step: enough for a framework to accept or refuse a
    variant (and, with the hyperparameters a user gives, for one that checks them only when it
    steps). ``grads``: one gradient a step; ``changes``: hyperparameters other than
    ``config``'s (``amsgrad=True``)."""
    return CaseSetup(groups=(GroupSetup(replace(config, **changes),
                                        (np.array(tuple(theta), dtype=float),)),),
                     grads=(np.array(tuple(grads)),))


def one_step_refusal(open_session: Callable[[CaseSetup], Session], problem: CaseSetup, *,
                     reason: Callable[[BaseException], str] = error_reason,
                     check: Callable[[Session, list[np.ndarray]], str | None] | None = None
                     ) -> str | None:
    """Why a framework refuses to step ``problem`` once on the session ``open_session`` makes:
    its exception as the one line ``reason`` makes of it, or what ``check`` finds wrong with
    the session and its parameters after the step; None where it runs."""
    try:
        session = open_session(problem)
        session.step([g[0] for g in problem.grads], [problem.groups[0].config.lr])
        params = session.params()
        return None if check is None else check(session, params)
    except Exception as exc:  # the framework's own refusal is the reason a person reads
        return reason(exc)


class FrameworkBackend:
    """The backend of one framework's Adam, as every adapter writes it.

    The probe: ``describe()`` (each adapter's own) builds the :class:`BackendInfo` once, and
    it is kept; a framework that is missing or cannot start (``BackendUnavailable``) is a
    BackendInfo with ``installed=False`` that says why and how to install it (the install
    table's entry for the backend) — not kept, so an install in between counts. A variant the
    probe tries and the framework refuses (:meth:`try_variants`) is kept with its reason, and
    a case on it is unsupported with that reason (:meth:`check_refused`).

    ``open`` runs in one order: the variant checked, giving what the session needs of the
    framework (``framework_for``), the case checked (``check_case``: what it needs that the
    variant cannot give is unsupported), the session made (``session``, by default
    ``session_class(framework, problem, variant)``).
    """

    name: str
    #: the dtypes the backend tries: every dtype a variant may name, widest first, where the
    #: adapter says no fewer
    dtypes: Sequence[str] = ("float64", "float32", "float16", "bfloat16")
    #: the install table's entry where it is not the backend's own name
    install_name: str | None = None
    #: the session a case runs in, made as ``session_class(framework, problem, variant)``
    #: (where ``session`` is not the adapter's own)
    session_class: Callable[..., Session]

    def __init__(self) -> None:
        self._info: BackendInfo | None = None
        self._refusals: dict[Variant, str] = {}

    @property
    def install_hint(self) -> str | None:
        return INSTALL_HINTS.get(self.install_name or self.name)

    # --- the probe ------------------------------------------------------------------------

    def describe(self) -> BackendInfo:
        raise NotImplementedError

    def unavailable(self, exc: BackendUnavailable) -> BackendInfo:
        """What the probe says where the framework is missing or cannot start."""
        return BackendInfo(name=self.name, installed=False, install_hint=self.install_hint,
                           description=str(exc))

    def probe(self) -> BackendInfo:
        if self._info is None:
            try:
                self._info = self.describe()
            except BackendUnavailable as exc:
                return self.unavailable(exc)
        return self._info

    def try_variants(self, info: BackendInfo, variants: Iterable[Variant],
                     refusal: Callable[[Variant], str | None], *, by_device: bool = False,
                     listed: bool = False) -> None:
        """Each variant tried in turn (``refusal``: the framework's reason, or None where it
        runs): added to ``info.variants`` where it runs, else kept with its reason and listed
        unsupported, one line a variant, or with ``by_device`` one line for an implementation
        on a device where every dtype is refused for one reason; ``listed``: in
        ``info.refused`` too. The variants come grouped by implementation and device."""
        for (name, device), group in itertools.groupby(variants, lambda v: (v.name, v.device)):
            tried = list(group)
            refused: dict[Variant, str] = {}
            for variant in tried:
                reason = refusal(variant)
                if reason is None:
                    info.variants.append(variant)
                    continue
                refused[variant] = self._refusals[variant] = reason
                if listed:
                    info.refused.append(Refusal(variant, reason))
            if by_device and len(refused) == len(tried) and len(set(refused.values())) == 1:
                info.unsupported.append(Unsupported(f"{name}/{device}",
                                                    next(iter(refused.values()))))
            else:
                info.unsupported.extend(Unsupported(v.id, r) for v, r in refused.items())

    def refuse_all(self, info: BackendInfo, variants: Iterable[Variant], what: str, reason: str
                   ) -> BackendInfo:
        """Every variant refused for one reason, listed unsupported once as ``what``."""
        info.unsupported.append(Unsupported(what, reason))
        info.refused = [Refusal(v, reason) for v in variants]
        for refusal in info.refused:
            self.refuse(refusal.variant, reason)
        return info

    def refuse(self, variant: Variant, reason: str) -> None:
        """Keep a variant refused, found otherwise than by :meth:`try_variants`."""
        self._refusals[variant] = reason

    def refusal(self, variant: Variant) -> str | None:
        """Why the probe found the variant refused, or None."""
        return self._refusals.get(variant)

    def check_refused(self, variant: Variant, who: str) -> None:
        """UnsupportedFeature where the probe found ``who`` refusing the variant."""
        self.probe()
        reason = self._refusals.get(variant)
        if reason is not None:
            raise UnsupportedFeature(f"{who} refuses {variant.id}: {reason}")

    # --- a session --------------------------------------------------------------------------

    def check_variant(self, variant: Variant, label: str, names: Sequence[str],
                      devices: Sequence[str] | None = None) -> None:
        """ValueError naming what a variant gets wrong for this backend (shown as ``label``).

        The runner only sends variants a backend listed; this guards direct callers.
        """
        if variant.backend != self.name:
            raise ValueError(f"variant {variant.id} belongs to backend {variant.backend!r}")
        for what, value, known in (("variant", variant.name, names),
                                   ("dtype", variant.dtype, self.dtypes),
                                   ("device", variant.device, devices)):
            if known is not None and value not in known:
                raise ValueError(f"unknown {label} {what} {value!r}; known: {', '.join(known)}")

    @staticmethod
    def check_device(variant: Variant, devices: Sequence[str], who: str) -> None:
        """UnsupportedFeature where ``who`` (the framework) has not the variant's device here."""
        if variant.device not in devices:
            raise UnsupportedFeature(f"{who} has no {variant.device!r} device here (devices: "
                                     f"{', '.join(devices)})")

    def framework_for(self, variant: Variant):
        """What a session of the variant needs of the framework, once the variant is checked
        (ValueError for one the backend does not have, UnsupportedFeature for one it cannot
        run here)."""
        raise NotImplementedError

    def check_case(self, problem: CaseSetup, variant: Variant) -> None:
        """UnsupportedFeature for what the case needs that the variant cannot give."""

    def session(self, framework, problem: CaseSetup, variant: Variant) -> Session:
        return self.session_class(framework, problem, variant)

    def open(self, problem: CaseSetup, variant: Variant) -> Session:
        framework = self.framework_for(variant)
        self.check_case(problem, variant)
        return self.session(framework, problem, variant)


def check_step(grads: Sequence, lrs: Sequence | None, parameters: int, groups: int, *,
               groups_word: str = "groups") -> None:
    """ValueError where a step is handed other than one gradient a parameter and (where lrs
    are given) one lr a group; ``groups_word``: how the message names the groups."""
    if len(grads) != parameters:
        raise ValueError(f"{len(grads)} gradients for {parameters} parameters")
    if lrs is not None and len(lrs) != groups:
        raise ValueError(f"{len(lrs)} learning rates for {groups} {groups_word}")
