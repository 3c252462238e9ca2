"""What the two generic drivers (``torch-optimizer:``, ``optax-transform:``) share: they never
guess. Options are checked against the constructor's parameters; a feature a factory fixes is
declared by the user; the state's meaning and each keyword's effect are found by probes.

The probes run the implementation itself on a problem whose moments are exact in every dtype
(β1 = 1/2, β2 = 3/4, gradients of a few bits), so what its state holds can be read off: after
step 1, m = (1 − β1)·g = g/2 where the documented state is kept, and m̂ = m/(1 − β1) = g where
the bias-corrected one is. The numbers are written here by hand; nothing of the spec's code
runs in the implementation's process.
"""

from __future__ import annotations

import ast
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from .base import BackendUsageError, CaseSetup, GroupSetup, Hyperparameters

__all__ = ["STATE_MODES", "FEATURES", "FEATURE_SETTINGS", "UnquotedString", "parse_options",
           "check_options", "parse_features", "check_state_mode", "Signature", "signature_of",
           "package_versions", "probe_problem", "expected_state", "meaning", "StatePlan",
           "MEANING_WORDS", "state_note"]

#: how a generic driver treats the state it finds under the library's names: ``auto`` compares
#: what a probe shows to mean m, v (and the raw or documented max), ``compare`` compares it
#: whatever it means (the user vouches for it), ``ignore`` judges θ alone
STATE_MODES = ("auto", "compare", "ignore")
#: the features a case switches, by their torch and optax keyword names
FEATURES = ("weight_decay", "amsgrad", "maximize")
#: what a user may declare of a feature: ``always`` (the factory fixes it on: cases without it
#: are unsupported), ``never`` (fixed off: cases with it are unsupported), ``keyword`` (the
#: keyword of that name is the feature: passed as each case says and judged as the feature,
#: even where a probe finds it without effect)
FEATURE_SETTINGS = {"amsgrad": ("always", "never", "keyword"),
                    "maximize": ("always", "never", "keyword"),
                    "weight_decay": ("never", "keyword")}


class UnquotedString(str):
    """An option value that is not a Python literal (``x=maybe``): passed as a string only
    where the constructor's parameter takes one, else a usage error (a misspelt ``True`` must
    not reach the library as the string ``'Ture'``)."""


def parse_options(options: Mapping[str, object] | None, reserved: Iterable[str]
                  ) -> dict[str, object]:
    """``key=value`` options as constructor keywords: Python literals where they parse
    (``True``, ``32``, ``1e-3``, ``'text'``), else :class:`UnquotedString`. ValueError for a
    key that is not a keyword name or is a hyperparameter each case sets."""
    reserved = set(reserved)
    parsed: dict[str, object] = {}
    for key, value in (options or {}).items():
        if not key.isidentifier():
            raise ValueError(f"option {key!r} is not a keyword name")
        if key in reserved:
            hint = (f"; a factory that fixes it is declared with --feature {key}=always or "
                    f"{key}=never" if key in FEATURE_SETTINGS else "")
            raise ValueError(f"option {key!r} is a hyperparameter: each case sets it{hint}")
        if isinstance(value, str) and not isinstance(value, UnquotedString):
            try:
                parsed[key] = ast.literal_eval(value)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                parsed[key] = UnquotedString(value)
        else:
            parsed[key] = value
    return parsed


@dataclass(frozen=True)
class Signature:
    """The keyword parameters a constructor names, and whether it takes ``**kwargs``."""

    parameters: Mapping[str, inspect.Parameter]
    var_keyword: bool

    def names(self, name: str) -> bool:
        return name in self.parameters

    def described(self) -> str:
        shown = [p for p in self.parameters.values()
                 if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        return ", ".join(p.name for p in shown) + (", **kwargs" if self.var_keyword else "")


def signature_of(function: Callable) -> Signature | None:
    """The constructor's signature, or None where Python cannot read one."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return None
    var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    named = {n: p for n, p in parameters.items()
             if p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)}
    return Signature(named, var_keyword)


def _takes_a_string(parameter: inspect.Parameter) -> bool:
    """Whether a parameter is meant to take a string: its default is one, or its annotation
    names str (``str``, ``str | None``, ``Literal['a', 'b']``)."""
    if isinstance(parameter.default, str):
        return True
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return False
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return "str" in text or "Literal" in text


def check_options(options: Mapping[str, object], signature: Signature | None, label: str
                  ) -> None:
    """BackendUsageError for an option the constructor does not name (where it takes no
    ``**kwargs``: its parameters are listed) and for an unquoted word where the parameter
    does not take a string."""
    if signature is None:
        return
    for key, value in options.items():
        parameter = signature.parameters.get(key)
        if parameter is None and not signature.var_keyword:
            raise BackendUsageError(
                f"--option {key}: {label} has no parameter {key!r}; its parameters: "
                f"{signature.described()}")
        if isinstance(value, UnquotedString):
            if parameter is not None and _takes_a_string(parameter):
                continue
            if parameter is None:
                what = f"{label} takes it through **kwargs, so what it means cannot be read"
            else:
                default = ("" if parameter.default is inspect.Parameter.empty
                           else f", default {parameter.default!r}")
                shown = parameter.annotation
                annotation = ("" if shown is inspect.Parameter.empty else
                              f": {getattr(shown, '__name__', None) or shown}")
                what = f"{label}'s parameter is {key}{annotation}{default}"
            raise BackendUsageError(
                f"--option {key}={value}: {value!r} is not a Python literal and {what}; write "
                f"a literal (True, False, None, a number) or quote a string: "
                f"--option \"{key}='{value}'\"")


def parse_features(features: Mapping[str, str] | None) -> dict[str, str]:
    """Declared features (``{'amsgrad': 'always'}``); ValueError naming what may be said."""
    parsed = {}
    for name, setting in (features or {}).items():
        if name not in FEATURE_SETTINGS:
            raise ValueError(f"--feature {name}={setting}: unknown feature {name!r}; known: "
                             f"{', '.join(FEATURE_SETTINGS)}")
        if setting not in FEATURE_SETTINGS[name]:
            raise ValueError(f"--feature {name}={setting}: say {name}="
                             + f" or {name}=".join(FEATURE_SETTINGS[name]))
        parsed[name] = setting
    return parsed


def check_state_mode(state: str) -> str:
    if state not in STATE_MODES:
        raise ValueError(f"--state {state}: say one of {', '.join(STATE_MODES)}")
    return state


def package_versions(module_names: Iterable[str]) -> dict[str, str]:
    """Distribution (or package) name → version of each module's top-level package: the class's
    own ``__module__`` included, so a class reached through a shim module still shows whose
    it is."""
    from importlib import metadata

    distributions = metadata.packages_distributions()
    versions: dict[str, str] = {}
    for module_name in module_names:
        top = module_name.partition(".")[0]
        version = getattr(sys.modules.get(top), "__version__", None)
        names = distributions.get(top, [])
        if version is None:
            for name in names:
                try:
                    versions.setdefault(name, metadata.version(name))
                    break
                except metadata.PackageNotFoundError:
                    continue
        else:
            versions.setdefault(names[0] if names else top, str(version))
    return versions


# --- the probes -----------------------------------------------------------------------------

PROBE_BETAS = (0.5, 0.75)
PROBE_LR = 0.125
PROBE_THETA = (1.0, -0.5)
# a first gradient that the second one does not reach: v̂ falls, so the documented max of v̂
# (and the max of raw v) changes the update, and amsgrad has an effect where it is kept
PROBE_GRADS = ((1.0, 0.5), (0.125, 0.25), (0.125, 0.25))
PROBE_WEIGHT_DECAY = 0.5


def probe_problem(*, weight_decay: bool = False, amsgrad: bool = False, maximize: bool = False,
                  steps: int = len(PROBE_GRADS)) -> CaseSetup:
    """One parameter of two elements and a few steps, exact in every dtype; with a feature on,
    a trajectory that the feature changes (the documented update differs)."""
    config = Hyperparameters(PROBE_LR, PROBE_BETAS, 1e-8,
                             PROBE_WEIGHT_DECAY if weight_decay else 0.0, amsgrad, maximize)
    return CaseSetup(groups=(GroupSetup(config, (np.array(PROBE_THETA),)),),
                     grads=(np.array(PROBE_GRADS[:steps]),))


def expected_state(steps: int = len(PROBE_GRADS), maximize: bool = False
                   ) -> dict[str, list[np.ndarray]]:
    """What each reading of the state holds after each step of :func:`probe_problem` (no weight
    decay), in the documented meaning and bias-corrected: m, m̂, v, v̂ and the max of raw v and
    of v̂. Exact: every value here has a few bits."""
    beta1, beta2 = PROBE_BETAS
    m = v = np.zeros(2)
    vmax_raw = vmax_hat = np.zeros(2)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("m", "m_hat", "v", "v_hat", "vmax_raw",
                                                        "vmax_hat")}
    for t, grad in enumerate(PROBE_GRADS[:steps], start=1):
        g = -np.array(grad) if maximize else np.array(grad)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        v_hat = v / (1 - beta2 ** t)
        vmax_raw, vmax_hat = np.maximum(vmax_raw, v), np.maximum(vmax_hat, v_hat)
        for key, value in (("m", m), ("m_hat", m / (1 - beta1 ** t)), ("v", v), ("v_hat", v_hat),
                           ("vmax_raw", vmax_raw), ("vmax_hat", vmax_hat)):
            out[key].append(value.copy())
    return out


def _close(got: list[np.ndarray], want: list[np.ndarray]) -> bool:
    # the values are exact in every dtype; 2^-6 leaves room for an ordering that rounds in
    # bfloat16, far from the factors 4/3 and more that tell the meanings apart
    if len(got) != len(want):
        return False
    for g, w in zip(got, want, strict=True):
        g = np.asarray(g, dtype=np.float64).reshape(-1)
        if g.shape != w.shape or not np.all(np.isfinite(g)):
            return False
        if np.any(np.abs(g - w) > 2.0 ** -6 * np.abs(w)):
            return False
    return True


def meaning(got: list[np.ndarray] | None, documented: list[np.ndarray],
            corrected: list[np.ndarray]) -> str | None:
    """``'documented'``, ``'bias-corrected'``, or None (neither, or nothing read)."""
    if not got:
        return None
    if _close(got, documented):
        return "documented"
    if _close(got, corrected):
        return "bias-corrected"
    return None


#: how the notes name what a reading holds
MEANING_WORDS = {"m": ("m", "m̂ = m/(1 − β1^t)"), "v": ("v", "v̂ = v/(1 − β2^t)"),
                 "vmax": ("the max of raw v", "the max of v̂")}


@dataclass(frozen=True)
class StatePlan:
    """Which readings of a variant's state are compared, and why the others are not.
    ``vmax``: True where a probe found the max and what it holds, False where it holds
    something else, None where no probe saw one (compared by the library's convention)."""

    m: bool = True
    v: bool = True
    vmax: bool | None = None
    vmax_kind: str = "raw"
    why_not: tuple[str, ...] = ()  # one phrase per reading not compared


def state_note(plans: Mapping[str, StatePlan], everything: int) -> list[str]:
    """One note per distinct reason for not comparing state, naming the variants (or "every
    variant" where it is all ``everything`` of them)."""
    grouped: dict[tuple, list[str]] = {}
    for variant_id, plan in plans.items():
        if plan.why_not:
            grouped.setdefault((plan.why_not, plan.m, plan.v, plan.vmax is True,
                                plan.vmax_kind), []).append(variant_id)
    notes = []
    for (why, m, v, vmax, kind), ids in grouped.items():
        where = "every variant" if len(ids) == everything else ", ".join(ids)
        also = [q for q, on in (("m", m), ("v", v),
                                (f"the max (of {'v̂' if kind == 'hat' else 'raw v'})", vmax))
                if on]
        judged = "θ and " + " and ".join(also) + " are judged" if also else "θ alone is judged"
        notes.append(f"state not compared on {where}: {'; '.join(why)}; {judged}")
    return notes
