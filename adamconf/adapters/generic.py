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
import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from .base import (
    BackendInfo,
    BackendUnavailable,
    BackendUsageError,
    CaseSetup,
    Hyperparameters,
    Session,
    Unsupported,
    UnsupportedFeature,
    Variant,
    error_reason,
)
from .framework import FrameworkBackend, trial_problem

__all__ = ["STATE_MODES", "FEATURE_SETTINGS", "UnquotedString", "parse_options",
           "check_options", "parse_features", "check_state_mode", "Signature", "signature_of",
           "package_versions", "probe_problem", "expected_state", "meaning", "StatePlan",
           "MEANING_WORDS", "state_note", "Trial", "run_trial", "GenericDriver"]

#: how a generic driver treats the state it finds under the library's names: ``auto`` compares
#: what a probe shows to mean m, v (and the raw or documented max), ``compare`` compares it
#: whatever it means (the user vouches for it), ``ignore`` judges θ alone
STATE_MODES = ("auto", "compare", "ignore")
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
PROBE_CONFIG = Hyperparameters(0.125, PROBE_BETAS, 1e-8, 0.0)
# a first gradient that the second one does not reach: v̂ falls, so the documented max of v̂
# (and the max of raw v) changes the update, and amsgrad has an effect where it is kept
PROBE_GRADS = ((1.0, 0.5), (0.125, 0.25), (0.125, 0.25))
PROBE_WEIGHT_DECAY = 0.5


def probe_problem(*, weight_decay: bool = False, amsgrad: bool = False, maximize: bool = False,
                  steps: int = len(PROBE_GRADS)) -> CaseSetup:
    """The trial problem (its parameter) stepped a few times, exact in every dtype; with a
    feature on, a trajectory that the feature changes (the documented update differs)."""
    return trial_problem(PROBE_CONFIG, grads=PROBE_GRADS[:steps], amsgrad=amsgrad,
                         maximize=maximize,
                         weight_decay=PROBE_WEIGHT_DECAY if weight_decay else 0.0)


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


@dataclass(frozen=True)
class Trial:
    """A few steps of a probe problem: θ after each step (flattened) and what the state held
    under the names the driver reads (``readings``, one dict a step: m, v, vmax → one array a
    parameter, or None where a name is missing)."""

    thetas: list[np.ndarray]
    readings: list[dict[str, list[np.ndarray] | None]]
    held: tuple = ()  # the keys of the state per parameter after the last step

    def reading(self, name: str) -> list[np.ndarray] | None:
        """One reading per step, every parameter flattened into one array; None if absent."""
        if any(r[name] is None for r in self.readings):
            return None
        return [np.concatenate([a.reshape(-1) for a in r[name]]) for r in self.readings]

    def same_trajectory(self, other: Trial) -> bool:
        return len(self.thetas) == len(other.thetas) and all(
            np.array_equal(a, b, equal_nan=True)
            for a, b in zip(self.thetas, other.thetas, strict=True))


def run_trial(open_session: Callable[[CaseSetup], Session], problem: CaseSetup,
              held: Callable[[Session], tuple] | None = None) -> tuple[Trial | None, str | None]:
    """The problem's steps on the session ``open_session`` makes: θ and the state's readings
    (``session.readings()``) after each, and what ``held`` says the state keeps; or the
    implementation's refusal as a reason."""
    thetas, readings = [], []
    try:
        session = open_session(problem)
        for k in range(problem.steps):
            session.step([g[k] for g in problem.grads],
                         [group.lr_at(k) for group in problem.groups])
            thetas.append(np.concatenate([p.reshape(-1) for p in session.params()]))
            readings.append(session.readings())
        session.state()
        kept = () if held is None else held(session)
    except UnsupportedFeature as exc:
        return None, str(exc)
    except Exception as exc:  # the implementation's own refusal is the reason a person reads
        return None, error_reason(exc)
    return Trial(thetas, readings, kept), None


#: the value a feature's probe passes, as its notes show it
SHOWN_ON = {"weight_decay": "0.5", "amsgrad": "True", "maximize": "True"}
#: what a declared setting means, as the notes say it
DECLARED_WORDS = {"always": "always on: cases without it are unsupported",
                  "never": "never on: cases with it are unsupported",
                  "keyword": "the keyword of that name: passed as each case says and judged as "
                             "the feature"}


class GenericDriver(FrameworkBackend):
    """What the two generic drivers share: the implementation named by an import path, its
    options, the features declared of it (by the user, or by an adapter for its library),
    what the probes found of each feature and of the state, and the notes that say so.

    A subclass's ``describe()`` probes; ``check_case`` refuses what a case needs and the
    implementation cannot be given or judged on."""

    #: how a target is written, for the error that shows it: (what it is, its last part)
    target_shape = ("torch optimizer", "Class")
    #: how the reasons name the implementation's side ("the library's state")
    kind = "library"
    #: what the max of v is taken to be where no probe saw it (``state="compare"``)
    vmax_kind = "raw"
    #: what the implementation calls m, v and the max of v, as the notes name them
    state_names: Mapping[str, str] = {}

    def __init__(self, target: str, options: Mapping[str, str] | None, *,
                 reserved: Iterable[str], name: str | None, state: str,
                 features: Mapping[str, str] | None, declared: Mapping[str, str] = {},
                 prefix: str) -> None:
        super().__init__()
        module_name, _, attr = target.partition(":")
        if not module_name or not attr:
            what, last = self.target_shape
            raise ValueError(f"{what} {target!r} must look like 'package.module:{last}'")
        self.target = target
        self.name = name or f"{prefix}:{target}"
        self.label = f"{module_name}.{attr}"
        self.options = parse_options(options, reserved)
        self.state_mode = check_state_mode(state)
        self._user_features = parse_features(features)
        self.features: dict[str, str] = {**declared, **self._user_features}
        self._features: dict[str, str] = {}  # feature → why a case that needs it is unsupported
        self._plans: dict[Variant, StatePlan] = {}
        self._notes: list[str] = []
        self._ignored_but_declared: set[str] = set()  # declared keywords found without effect

    def resolved(self):
        """The object the target names; BackendUnavailable saying what is missing."""
        module_name, _, attr = self.target.partition(":")
        try:
            found = importlib.import_module(module_name)
        except ImportError as exc:
            raise BackendUnavailable(f"cannot import {module_name!r} ({exc})") from None
        for part in attr.split("."):
            try:
                found = getattr(found, part)
            except AttributeError:
                raise BackendUnavailable(f"module {module_name!r} has no attribute "
                                         f"{attr!r}") from None
        return found

    def unavailable(self, exc: BackendUnavailable) -> BackendInfo:
        return BackendInfo(name=self.name, installed=False,
                           install_hint=f"{exc}; {self.install_hint}", description=str(exc))

    def candidates(self, devices: Iterable[str]) -> list[Variant]:
        """Every variant the implementation could run on these devices."""
        raise NotImplementedError

    def refuse_candidates(self, info: BackendInfo, devices: Iterable[str], reason: str
                          ) -> BackendInfo:
        """Every candidate refused for one reason: the implementation cannot be judged here."""
        return self.refuse_all(info, self.candidates(devices), self.label, reason)

    def check_options_against(self, signature: Signature | None) -> None:
        """The options checked against the signature: a usage error is raised, not listed."""
        check_options(self.options, signature, self.label)

    def add_versions(self, versions: dict[str, str], implementation, *packages: str
                     ) -> dict[str, str]:
        """``versions`` and those of the packages the implementation comes from: its target's,
        its own ``__module__``'s (a shim shows whose it is) and ``packages``."""
        modules = (self.target.partition(":")[0],
                   getattr(implementation, "__module__", "") or "", *packages)
        for name, version in package_versions(m for m in modules if m).items():
            versions.setdefault(name, version)
        return versions

    def _passes(self, feature: str) -> bool:
        """Whether the driver hands the implementation this feature's keyword."""
        raise NotImplementedError

    # --- what is declared ---------------------------------------------------------------

    def _declared_how(self, feature: str) -> str:
        setting = self.features[feature]
        if feature in self._user_features:
            return f"declared: --feature {feature}={setting}"
        return f"declared by the {self.name} adapter: {feature}={setting}"

    def declared_notes(self) -> list[str]:
        return [f"{feature} {DECLARED_WORDS[setting]} ({self._declared_how(feature)})"
                for feature, setting in self.features.items()
                if feature not in self._ignored_but_declared]  # its own note says it

    def check_declared(self, group_index: int, feature: str, needed) -> bool:
        """UnsupportedFeature where a declared setting rules the group out; whether the
        driver still has to see to the feature (needed, and not declared always on)."""
        setting = self.features.get(feature)
        if setting == "always" and not needed:
            raise UnsupportedFeature(
                f"group {group_index} runs without {feature}, and {self.label} always has it "
                f"({self._declared_how(feature)})")
        if not needed or setting == "always":
            return False
        if setting == "never":
            raise UnsupportedFeature(f"group {group_index} needs {feature}, and {self.label} "
                                     f"never has it ({self._declared_how(feature)})")
        return True

    # --- what the probes found ----------------------------------------------------------

    def judge_feature(self, info: BackendInfo, feature: str, trial: Trial | None, reason,
                      base: Trial, refused: str = "refuses") -> bool:
        """What a feature's probe shows, kept as the reason its cases are unsupported (and
        listed) or as a note; True where the keyword has an effect."""
        shown = f"{feature}={SHOWN_ON[feature]}"
        if trial is None:
            self._features[feature] = f"{self.label} {refused} {shown}: {reason}"
        elif trial.same_trajectory(base):
            ignored = (f"{self.label} accepts {shown} and ignores it: on a probe where the "
                       f"documented {feature} changes the update, θ is the same as without it")
            if self.features.get(feature) == "keyword":  # judged as the feature all the same
                self._ignored_but_declared.add(feature)
                self._notes.append(f"{feature}: {ignored}; its cases are judged as the feature "
                                   f"all the same ({self._declared_how(feature)})")
                return False
            self._features[feature] = f"accepted and ignored: {ignored}"
        else:
            return True
        info.unsupported.append(Unsupported(feature, self._features[feature]))
        return False

    def plans_state(self, compared: str) -> bool:
        """Whether the probes plan which readings of the state are compared (``state="auto"``);
        the note where the user chose (``compared``: what ``state="compare"`` compares)."""
        if self.state_mode == "ignore":
            self._notes.append("state not compared (state='ignore'): θ alone is judged")
            return False
        if self.state_mode == "compare":
            self._notes.append(f"state compared by its names whatever it holds "
                               f"(state='compare'): {compared}")
            return False
        return True

    def expected(self) -> dict[str, list[np.ndarray]]:
        """What each reading holds after each step of the probe problem (negated gradients
        where maximize is declared always on)."""
        return expected_state(maximize=self.features.get("maximize") == "always")

    def probes_max(self) -> bool:
        """Whether the max of v is there to probe: amsgrad declared always on, or passed and
        not refused or ignored."""
        amsgrad = self.features.get("amsgrad")
        return amsgrad == "always" or (amsgrad != "never" and "amsgrad" not in self._features
                                       and self._passes("amsgrad"))

    def _words(self, name: str) -> tuple[str, str]:
        """How the notes say what a reading may hold: this driver's convention first."""
        words = MEANING_WORDS[name]
        return words[::-1] if name == "vmax" and self.vmax_kind == "hat" else words

    def _neither(self, name: str, got: list[np.ndarray], documented: list[np.ndarray]) -> str:
        """Why a reading is not compared that holds no meaning the driver knows."""
        first, second = self._words(name)
        return f"{self.state_names[name]} holds neither {first} nor {second}"

    def plan(self, variant: Variant, trial: Trial, ams: Trial | None,
             want: Mapping[str, list[np.ndarray]]) -> None:
        """Which readings of the variant's state are compared, by what its probe's readings
        hold (``ams``: its probe with amsgrad, for the max; None where there is none), and why
        the others are not."""
        names, why, compare = self.state_names, [], {}
        for name in ("m", "v"):
            got = trial.reading(name)
            found = meaning(got, want[name], want[f"{name}_hat"])
            compare[name] = got is None or found == "documented"
            if found == "bias-corrected":
                why.append(f"{names[name]} holds {MEANING_WORDS[name][1]}, not {name}")
            elif got is not None and found is None:
                why.append(self._neither(name, got, want[name]))
        vmax, vmax_kind = None, self.vmax_kind
        got = ams.reading("vmax") if ams is not None else None
        if got is not None:
            other = "hat" if self.vmax_kind == "raw" else "raw"
            documented = want[f"vmax_{self.vmax_kind}"]
            found = meaning(got, documented, want[f"vmax_{other}"])
            if found is None:
                vmax = False
                why.append(self._neither("vmax", got, documented))
            else:
                vmax, vmax_kind = True, self.vmax_kind if found == "documented" else other
        self._plans[variant] = StatePlan(m=compare["m"], v=compare["v"], vmax=vmax,
                                         vmax_kind=vmax_kind, why_not=tuple(why))

    def note_plans(self, everything: int) -> None:
        """One note per distinct reason for not comparing state (see :func:`state_note`)."""
        self._notes.extend(state_note({v.id: p for v, p in self._plans.items()}, everything))

    def state_plan(self, variant: Variant | None) -> StatePlan | None:
        """Which readings of this variant's state are compared (None: none, θ alone)."""
        if self.state_mode == "ignore":
            return None
        return self._plans.get(variant) or StatePlan(vmax_kind=self.vmax_kind)

    def check_resume(self, variant: Variant | None) -> None:
        """UnsupportedFeature where the driver cannot fill the state from m, v and v̂max."""
        if self.state_mode == "ignore":
            raise UnsupportedFeature(f"resume: with state='ignore' the driver does not know "
                                     f"what the {self.kind}'s state holds, so it cannot fill "
                                     "it from m, v and v̂max")
        plan = self.state_plan(variant) if variant is not None else None
        if plan is not None and not (plan.m and plan.v):
            raise UnsupportedFeature(f"resume: {'; '.join(plan.why_not)}; the driver fills "
                                     "the state from m, v and v̂max only")

    def probed(self) -> BackendInfo:
        """The probe, where the implementation is there (else BackendUnavailable)."""
        info = self.probe()
        if not info.installed:
            raise BackendUnavailable(info.description)
        return info

    def check_listed(self, info: BackendInfo, variant: Variant) -> None:
        """UnsupportedFeature, with every reason the probe found, for a variant it did not
        list."""
        if variant not in info.variants:
            reasons = "; ".join(f"{u.what}: {u.reason}" for u in info.unsupported)
            raise UnsupportedFeature(f"{self.name} cannot run {variant.id}: {reasons}")
