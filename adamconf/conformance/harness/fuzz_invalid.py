"""The invalid-value phase of ``adamconf fuzz``: every documented clause
(:data:`adamconf.reference.config.DOCUMENTED_ERRORS`) and then drawn values outside the
documented ranges (:func:`.strategies.invalid_hyperparameters`) must raise ``ValueError`` in
the reference and in the backend's constructor; what does not is an
:class:`InvalidFinding`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TextIO

from adamconf.conformance.harness.fuzz_property import OutOfTime

__all__ = ["InvalidFinding", "check_invalid"]


@dataclass
class InvalidFinding:
    """A documented-invalid value that was not refused with ValueError."""

    where: str  # "reference" or the variant's name/device
    parameter: str
    shown: str
    outcome: str  # "accepted", or the exception that was raised instead


def _documented_invalid():
    """The documented clauses (:data:`.config.DOCUMENTED_ERRORS`), as drawn arguments."""
    from adamconf.conformance.corpus.strategies import InvalidHyperparameters
    from adamconf.reference.config import DOCUMENTED_ERRORS

    out = []
    for error in DOCUMENTED_ERRORS:
        kwargs = {**error.hyperparameters, "amsgrad": False, "maximize": False}
        parameter = error.parameter
        if parameter == "lr" and not isinstance(error.value, (int, float)):
            parameter = "lr type"
        out.append(InvalidHyperparameters(parameter, error.value, kwargs))
    return out


def _checker(check_one, variant):
    """``item -> check_one(variant, item)`` as a plain function (what @given can wrap)."""
    def check(item) -> None:
        check_one(variant, item)

    return check


def check_invalid(process, variants, *, examples: int, settings_kwargs: dict,
                  seed: int | None, progress_stream: TextIO | None,
                  deadline: float | None = None) -> tuple[list[InvalidFinding], int]:
    """Each drawn invalid set of arguments, once per (variant name, device): must raise
    ValueError in the reference (GroupConfig) and in the backend's constructor."""
    from hypothesis import given
    from hypothesis import seed as hypothesis_seed
    from hypothesis import settings as hypothesis_settings
    from hypothesis.database import InMemoryExampleDatabase

    from adamconf.conformance.corpus.strategies import invalid_hyperparameters
    from adamconf.conformance.harness.worker import ReplyKind
    from adamconf.reference.config import GroupConfig

    findings: list[InvalidFinding] = []
    seen_reference: set[str] = set()
    checked = 0
    keys = []
    for variant in variants:
        if (variant.name, variant.device) not in [(v.name, v.device) for v in keys]:
            keys.append(variant)

    def check_one(where_variant, item) -> None:
        nonlocal checked
        if deadline is not None and time.monotonic() > deadline:
            raise OutOfTime()
        checked += 1
        shown = item.describe()
        try:
            GroupConfig(**item.kwargs)
            outcome = "accepted"
        except ValueError:
            outcome = None
        except Exception as exc:
            outcome = f"raised {type(exc).__name__}: {exc}"
        if outcome is not None and shown not in seen_reference:
            seen_reference.add(shown)
            findings.append(InvalidFinding("reference", item.parameter, shown, outcome))
        reply = process.request("construct", where_variant, item.kwargs)
        where = f"{where_variant.name}/{where_variant.device}"
        if reply.ok:
            findings.append(InvalidFinding(where, item.parameter, shown, "accepted"))
        elif reply.kind is ReplyKind.RAISED:
            if not reply.value_error:
                findings.append(InvalidFinding(where, item.parameter, shown,
                                               f"raised {reply.message[:200]}"))
        elif reply.kind is ReplyKind.ERROR:
            findings.append(InvalidFinding(where, item.parameter, shown,
                                           f"backend error: {reply.message[:200]}"))
        # "unsupported": the variant cannot build an optimizer here at all; nothing to judge

    for variant in keys:
        # nothing is kept; and hypothesis refuses any database for a derandomized test
        database = None if settings_kwargs["derandomize"] else InMemoryExampleDatabase()
        kwargs = {**settings_kwargs, "max_examples": max(examples, 1), "database": database}
        test = hypothesis_settings(**kwargs)(given(invalid_hyperparameters(variant.dtype))(
            _checker(check_one, variant)))
        if seed is not None:
            test = hypothesis_seed(seed)(test)
        try:
            for item in _documented_invalid():
                check_one(variant, item)
            if examples > 0:
                test()
        except OutOfTime:
            break
        if progress_stream is not None:
            progress_stream.write(f"  invalid hyperparameters on {variant.name}/"
                                  f"{variant.device}: {checked} checked\n")
    return findings, checked
