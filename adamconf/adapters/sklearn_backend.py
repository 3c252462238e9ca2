"""scikit-learn: the Adam behind ``MLPClassifier``/``MLPRegressor(solver="adam")``.

That is ``sklearn.neural_network._stochastic_optimizers.AdamOptimizer``, a private class
(MLP builds it in ``_fit_stochastic``), driven here directly on the case's arrays with
``update_params(params, grads)``, which adds the update to each array in place.

What it computes (``_get_updates``), with t incremented first::

    m ← β1·m + (1 − β1)·g            v ← β2·v + (1 − β2)·g²
    γ_t ← γ·√(1 − β2^t)/(1 − β1^t)   θ ← θ − γ_t·m/(√v + ε)

ε is added to the raw √v, not to √v̂: the ``eps-hat`` dialect (Kingma & Ba §2's
"efficient" form), the same as MindSpore's and TF's Adam. β^t is a float64 pow.

Variant ``AdamOptimizer`` on ``cpu``, dtypes:

- float64, MLP's default;
- float32, what MLP runs in when given float32 data (``_validate_input`` keeps float32,
  and the optimizer builds ``ms``/``vs`` with ``zeros_like``). m and v are float32 (β is a Python
  float); γ_t is a NumPy float64 scalar, so the update is float64 until ``param += update``
  rounds it to float32.

What the optimizer has and has not:

- one set of hyperparameters for every array: param groups are one AdamOptimizer per
  group, stepped together (the step counters stay equal);
- lr schedules: ``learning_rate_init`` is read at every step (``learning_rate`` is
  recomputed from it, so setting ``learning_rate`` does nothing); the adapter sets
  ``learning_rate_init`` before each step. MLP never changes it for adam (its
  ``learning_rate`` schedules are for sgd only);
- no weight decay: MLP's ``alpha`` is an L2 term MLP adds to the coefficient gradients
  (``alpha·W/n_samples``, intercepts not decayed) before the optimizer sees them, not an
  optimizer option; cases with λ ≠ 0 are unsupported;
- no amsgrad, no maximize;
- resume: ``t``, ``ms`` and ``vs`` are documented attributes, set directly.

Validation: AdamOptimizer checks nothing (any lr, ε or β is accepted). The checks a user
meets are MLP's ``_parameter_constraints``, run by ``fit``/``partial_fit`` before the
optimizer is built: ``construct`` runs them (``MLPRegressor(...)._validate_params()``) and
then builds the optimizer. They raise ``InvalidParameterError`` (a ValueError and a
TypeError) and are stricter than documented: lr = 0 and ε = 0 are refused too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import BackendInfo, CaseSetup, OptimizerState, Unsupported, UnsupportedFeature, Variant
from .features import Lacking
from .framework import FrameworkBackend, check_step
from .install import importing

__all__ = ["SklearnBackend", "VARIANT_NAMES", "DTYPES"]

NAME = "sklearn"
ADAM = "AdamOptimizer"
VARIANT_NAMES = (ADAM,)
DTYPES = ("float64", "float32")
DEVICES = ("cpu",)

LACKING = Lacking.of("sklearn's AdamOptimizer", "weight_decay", "maximize", "amsgrad",
                     weight_decay=": MLP's alpha is an L2 term MLP adds to the coefficient "
                                  "gradients (alpha·W/n_samples) before the optimizer, not an "
                                  "optimizer option")


def _import_sklearn():
    with importing("scikit-learn", NAME):
        import sklearn
        from sklearn.neural_network import MLPRegressor, _stochastic_optimizers
    return sklearn, _stochastic_optimizers.AdamOptimizer, MLPRegressor


def _exactly(values, dtype: np.dtype, what: str) -> np.ndarray:
    with np.errstate(all="ignore"):
        converted = np.array(values, dtype=np.float64).astype(dtype)
        same = np.array_equal(converted.astype(np.float64), values, equal_nan=True)
    if not same:
        raise UnsupportedFeature(f"{what} is not exactly representable in {dtype}")
    return converted


class SklearnSession:
    """One AdamOptimizer per param group, each over that group's arrays."""

    def __init__(self, adam_cls, problem: CaseSetup, dtype: np.dtype) -> None:
        self._dtype = dtype
        self._params: list[list[np.ndarray]] = []
        self._rows = problem.group_ranges()
        self.optimizers = []
        for gi, (group, rows) in enumerate(zip(problem.groups, self._rows)):
            cfg = group.config
            arrays = [_exactly(p, dtype, f"param {i} (group {gi})")
                      for i, p in zip(rows, group.params)]
            self._params.append(arrays)
            self.optimizers.append(adam_cls(arrays, learning_rate_init=cfg.lr,
                                            beta_1=cfg.beta1, beta_2=cfg.beta2,
                                            epsilon=cfg.eps))
        if problem.initial_state is not None:
            init = problem.initial_state
            for rows, opt in zip(self._rows, self.optimizers):
                opt.t = init.step
                opt.ms = [_exactly(init.m[i], dtype, f"initial m of param {i}") for i in rows]
                opt.vs = [_exactly(init.v[i], dtype, f"initial v of param {i}") for i in rows]

    def step(self, grads: Sequence[np.ndarray], lrs: Sequence[float] | None = None) -> None:
        check_step(grads, lrs, sum(len(a) for a in self._params), len(self.optimizers))
        if lrs is not None:
            for opt, lr in zip(self.optimizers, lrs):
                opt.learning_rate_init = float(lr)  # read at every step (see the docstring)
        for arrays, rows, opt in zip(self._params, self._rows, self.optimizers):
            group_grads = [np.array(grads[i], dtype=np.float64).astype(self._dtype) for i in rows]
            with np.errstate(all="ignore"):  # IEEE outcomes are the suite's to judge
                opt.update_params(arrays, group_grads)

    def params(self) -> list[np.ndarray]:
        return [a.astype(np.float64) for arrays in self._params for a in arrays]

    def state(self) -> OptimizerState | None:
        if not self.optimizers:
            return None
        return OptimizerState(step=int(self.optimizers[0].t),
                              m=[np.array(m, dtype=np.float64) for o in self.optimizers
                                 for m in o.ms],
                              v=[np.array(v, dtype=np.float64) for o in self.optimizers
                                 for v in o.vs],
                              vmax=None)


class SklearnBackend(FrameworkBackend):
    """scikit-learn's AdamOptimizer (MLP's solver="adam")."""

    name = NAME
    dtypes = DTYPES

    def describe(self) -> BackendInfo:
        sklearn, _, _ = _import_sklearn()
        info = BackendInfo(
            name=NAME, installed=True,
            versions={"scikit-learn": sklearn.__version__, "numpy": np.__version__},
            devices=list(DEVICES), dtypes=list(DTYPES), install_hint=self.install_hint,
            variants=[Variant(NAME, ADAM, device, dtype) for device in DEVICES
                      for dtype in DTYPES],
            unsupported=[
                *LACKING.unsupported(),
                Unsupported("float16, bfloat16", "MLP accepts float64 and float32 data only"),
            ],
            description="sklearn.neural_network._stochastic_optimizers.AdamOptimizer (what "
                        "MLP uses for solver='adam'), one per group; lr set through "
                        "learning_rate_init; construct validates as MLP does")
        return info

    def framework_for(self, variant: Variant):
        """AdamOptimizer and MLPRegressor (whose checks are the ones a user meets)."""
        _, adam_cls, mlp_cls = _import_sklearn()
        self.check_variant(variant, "sklearn", VARIANT_NAMES, DEVICES)
        return adam_cls, mlp_cls

    def check_case(self, problem: CaseSetup, variant: Variant) -> None:
        LACKING.check_case(problem)

    def session(self, framework, problem: CaseSetup, variant: Variant) -> SklearnSession:
        adam_cls, _ = framework
        return SklearnSession(adam_cls, problem, np.dtype(variant.dtype))

    def construct(self, variant: Variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False) -> None:
        adam_cls, mlp_cls = self.framework_for(variant)
        LACKING.check_construct(weight_decay, amsgrad, maximize)
        beta1, beta2 = betas
        # the checks fit() runs before MLP builds its AdamOptimizer (which checks nothing)
        mlp_cls(solver="adam", learning_rate_init=lr, beta_1=beta1, beta_2=beta2,
                epsilon=eps)._validate_params()
        adam_cls([np.zeros(2, dtype=variant.dtype)], learning_rate_init=lr, beta_1=beta1,
                 beta_2=beta2, epsilon=eps)
