"""autograd: ``autograd.misc.optimizers.adam``, a function that runs a whole training loop.

``adam(grad, x0, callback=None, num_iters=100, step_size=0.001, b1=0.9, b2=0.999,
eps=1e-8)`` calls ``grad(x, i)`` at the start of iteration i (i from 0) and then, on the
flattened float64 vector of all parameters::

    m ← (1 − β1)·g + β1·m            v ← (1 − β2)·g² + β2·v
    m̂ ← m/(1 − β1^(i+1))             v̂ ← v/(1 − β2^(i+1))
    x ← x − step_size·m̂/(√v̂ + ε)

the documented update (ε outside √v̂, both moments bias-corrected, β^t a float64 pow).

Driving it step by step: the loop runs in a thread of its own with ``num_iters`` = the
case's steps. Its ``grad(x, i)`` hands ``x`` (the parameters after i steps) to the session
and waits for the gradient of step i + 1, which ``Session.step`` supplies; the parameters
after the last step are ``adam``'s return value. The library computes every update; the
adapter only passes values in and out.

Variant ``misc.optimizers.adam`` on ``cpu`` in float64, the only dtype there is: m and v
are ``np.zeros`` (float64) whatever the parameters' dtype, and they promote x.

What it cannot express, each refused (never faked):

- an lr that changes between steps: ``step_size`` is one number for the whole run, read
  as is at every iteration (no schedule argument, no hook);
- weight decay, amsgrad, maximize: not arguments of ``adam``;
- resume: m and v start at zero and the step at 1 inside the function; there is no
  argument to pass them in;
- param groups: one ``adam`` run per group (each with its own hyperparameters), stepped
  together.

Validation: none; ``adam`` accepts any lr, ε and β (a str lr fails in NumPy's multiply).
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Sequence

import numpy as np

from .base import BackendInfo, CaseSetup, OptimizerState, Unsupported, UnsupportedFeature, Variant
from .features import Lacking
from .framework import FrameworkBackend, check_step
from .install import importing

__all__ = ["AutogradBackend", "VARIANT_NAMES", "DTYPES"]

NAME = "autograd"
ADAM = "misc.optimizers.adam"
VARIANT_NAMES = (ADAM,)
DTYPES = ("float64",)
DEVICES = ("cpu",)
WAIT_SECONDS = 600.0  # one step of a loop on a few elements; the harness has its own timeout

NO_SCHEDULE = ("autograd's adam takes one step_size for the whole run (no schedule argument, "
               "no hook between iterations)")
LACKING = Lacking.of("autograd's adam", "weight_decay", "amsgrad", "maximize",
                     weight_decay=" argument")
NO_RESUME = ("autograd's adam starts m and v at zero and the step at 1 inside the function: "
             "there is no argument to resume them")
_STOP = object()


def _import_autograd():
    with importing("autograd", NAME):
        import autograd
        from autograd.misc.optimizers import adam
    return autograd, adam


def _version(autograd) -> str:
    try:
        from importlib import metadata

        return metadata.version("autograd")
    except Exception:
        return getattr(autograd, "__version__", "unknown")


class _StopLoop(Exception):
    """Ends an abandoned loop's thread."""


class _AdamLoop:
    """One ``adam`` call in a thread, advanced one iteration per ``advance``."""

    def __init__(self, adam, params: list[np.ndarray], steps: int, *, lr, b1, b2, eps) -> None:
        self.lr = lr
        # the thread sees the two queues only, never self: dropping the session frees it
        grads_in: queue.Queue = queue.Queue()
        out: queue.Queue = queue.Queue()
        self._grads, self._out = grads_in, out
        self._steps_left = steps
        x0 = [np.array(p, dtype=np.float64) for p in params]

        def grad(x, i):
            out.put(("x", x))
            g = grads_in.get()
            if g is _STOP:
                raise _StopLoop
            return g

        def main():
            try:
                result = adam(grad, x0, num_iters=steps, step_size=lr, b1=b1, b2=b2, eps=eps)
            except _StopLoop:
                return
            except BaseException as exc:  # reported by the session's next wait
                out.put(("error", exc))
                return
            out.put(("done", result))

        self._thread = threading.Thread(target=main, name="autograd-adam", daemon=True)
        self._thread.start()
        # ends the thread if the session is dropped before the loop is done
        weakref.finalize(self, grads_in.put, _STOP)
        self.x = self._wait()  # grad(x0, 0), or the return value when there are no steps

    def _wait(self) -> list[np.ndarray]:
        try:
            kind, value = self._out.get(timeout=WAIT_SECONDS)
        except queue.Empty:
            raise RuntimeError(f"autograd's adam did not reach its next iteration in "
                               f"{WAIT_SECONDS:.0f} s") from None
        if kind == "error":
            raise value
        return list(value)

    def advance(self, grads: list[np.ndarray]) -> None:
        if self._steps_left <= 0:
            raise RuntimeError("autograd's adam was started for fewer steps than asked for")
        self._steps_left -= 1
        self._grads.put(grads)
        self.x = self._wait()


class AutogradSession:
    """One ``adam`` loop per param group."""

    def __init__(self, adam, problem: CaseSetup) -> None:
        self._loops: list[_AdamLoop] = []
        self._rows = problem.group_ranges()
        for group in problem.groups:
            cfg = group.config
            self._loops.append(_AdamLoop(adam, list(group.params), problem.steps, lr=cfg.lr,
                                         b1=cfg.beta1, b2=cfg.beta2, eps=cfg.eps))

    def step(self, grads: Sequence[np.ndarray], lrs: Sequence[float] | None = None) -> None:
        check_step(grads, lrs, sum(len(rows) for rows in self._rows), len(self._loops))
        if lrs is not None:
            for gi, (loop, lr) in enumerate(zip(self._loops, lrs)):
                if float(lr) != loop.lr:
                    raise UnsupportedFeature(f"group {gi}: lr {lr} asked for, the run has "
                                             f"{loop.lr}: {NO_SCHEDULE}")
        for loop, rows in zip(self._loops, self._rows):
            loop.advance([np.array(grads[i], dtype=np.float64) for i in rows])

    def params(self) -> list[np.ndarray]:
        return [np.array(x, dtype=np.float64) for loop in self._loops for x in loop.x]

    def state(self) -> OptimizerState | None:
        return None  # m and v are local variables of the function


class AutogradBackend(FrameworkBackend):
    """``autograd.misc.optimizers.adam``, one loop per group, stepped through its grad callback."""

    name = NAME
    dtypes = DTYPES

    def describe(self) -> BackendInfo:
        autograd, _ = _import_autograd()
        info = BackendInfo(
            name=NAME, installed=True,
            versions={"autograd": _version(autograd), "numpy": np.__version__},
            devices=list(DEVICES), dtypes=list(DTYPES), install_hint=self.install_hint,
            variants=[Variant(NAME, ADAM, "cpu", "float64")],
            unsupported=[
                Unsupported("lr schedules", NO_SCHEDULE),
                *LACKING.unsupported(),
                Unsupported("resume", NO_RESUME),
                Unsupported("state", "m and v are local variables of adam: not readable"),
                Unsupported("float32, float16, bfloat16",
                            "m and v are float64 np.zeros and promote the parameters"),
            ],
            description="autograd.misc.optimizers.adam run in a thread, one iteration per "
                        "step through its grad(x, i) callback; one run per group")
        return info

    def framework_for(self, variant: Variant):
        _, adam = _import_autograd()
        self.check_variant(variant, "autograd", VARIANT_NAMES, DEVICES)
        return adam

    def check_case(self, problem: CaseSetup, variant: Variant) -> None:
        if problem.initial_state is not None:
            raise UnsupportedFeature(NO_RESUME)
        for gi, group in enumerate(problem.groups):
            cfg = group.config
            LACKING.check_group(gi, cfg)
            if group.lrs is not None and np.any(np.asarray(group.lrs) != cfg.lr):
                raise UnsupportedFeature(f"group {gi} changes its lr between steps: "
                                         f"{NO_SCHEDULE}")

    def session(self, adam, problem: CaseSetup, variant: Variant) -> AutogradSession:
        return AutogradSession(adam, problem)

    def construct(self, variant: Variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False) -> None:
        adam = self.framework_for(variant)
        LACKING.check_construct(weight_decay, amsgrad, maximize)
        beta1, beta2 = betas
        # one iteration, so that the values are used: adam checks nothing up front
        with np.errstate(all="ignore"):
            adam(lambda x, i: np.ones_like(x), np.zeros(2), num_iters=1, step_size=lr,
                 b1=beta1, b2=beta2, eps=eps)
