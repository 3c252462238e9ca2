"""Adams that deviate from the documentation on purpose: the dialect-naming tests and the
identification benchmark run them.

Each is written here in plain NumPy, independently of the reference's step description
(``adamconf.reference.step``) and of the sharpness emulator: a deviation is a keyword of
:class:`DeviantAdam`, and the implementation computes in the parameter's dtype as a
hand-written kernel would (hyperparameters as Python floats, rounded where they meet an
array). The suite must name each one from its trajectories alone.
"""

from __future__ import annotations

import numpy as np

from adamconf.adapters.base import BackendInfo, OptimizerState, Variant

__all__ = ["DeviantAdam"]

_DTYPES = {"float64": np.float64, "float32": np.float32, "float16": np.float16}


class _Session:
    def __init__(self, problem, dtype: str, dev: dict):
        self.store = _DTYPES[dtype]
        # opmath: a 16-bit step computed in float32 and stored in the dtype; compute: a
        # float64 step computed in float32, every operation, stored back as float64
        self.dt = np.float32 if dev.get("opmath") or dev.get("compute") else self.store
        self.dev = dev
        self.groups = [g.config for g in problem.groups]
        # the largest lr of each group (its schedule's peak), as optimi's max_lr is set
        self.max_lr = [max([g.config.lr, *(g.lrs if g.lrs is not None else ())])
                       for g in problem.groups]
        self.owner = problem.group_of_param()
        self.theta = [p.astype(self.store).astype(self.dt) for p in problem.params]
        self.m = [np.zeros(p.shape, self.dt) for p in problem.params]
        self.v = [np.zeros(p.shape, self.dt) for p in problem.params]
        self.vmax = [np.zeros(p.shape, self.dt) for p in problem.params]
        self.t = 0
        self.products = [[1.0, 1.0] for _ in self.groups]  # running β^t, in float32

    def _keep(self, x):
        """State as stored: bfloat16 or float32 where the deviation says so."""
        if self.dev.get("state") == "float32":
            return x.astype(np.float32).astype(self.dt)
        if self.dev.get("state") == "bfloat16":
            import ml_dtypes  # a test dependency; only this deviation needs it

            return x.astype(ml_dtypes.bfloat16).astype(self.dt)
        return x

    def step(self, grads, lrs=None):
        dev, dt = self.dev, self.dt
        self.t += 1
        t = self.t + dev.get("step_offset", 0)
        for gi, c in enumerate(self.groups):
            if dev.get("betapow") == "float32":
                f32 = np.float32
                self.products[gi] = [float(f32(self.products[gi][0]) * f32(c.betas[0])),
                                     float(f32(self.products[gi][1]) * f32(c.betas[1]))]
        for i, grad in enumerate(grads):
            gi = self.owner[i]
            c = self.groups[gi]
            lr = float(lrs[gi]) if lrs is not None else c.lr
            b1, b2 = c.betas
            eps, wd = c.eps, c.weight_decay
            held = dev.get("hyper")  # hyperparameters held as float32 ("lr": the lr only)
            if held:
                f32 = np.float32
                lr = float(f32(lr))
                if held == "all":
                    b1, b2, eps, wd = (float(f32(x)) for x in (b1, b2, eps, wd))
            theta = self.theta[i]
            g = grad.astype(dt)
            mode = dev.get("wd", "l2")
            with np.errstate(all="ignore"):
                if wd and mode in ("decoupled", "decoupled-nolr", "decoupled-lr0",
                                   "decoupled-lr-ratio"):
                    rate = {"decoupled": lr, "decoupled-nolr": 1.0, "decoupled-lr0": c.lr,
                            "decoupled-lr-ratio": lr / top if (top := self.max_lr[gi])
                            else 1.0}[mode]
                    theta = theta * dt(1.0 - rate * wd)
                if mode == "maximize-after-wd":
                    if wd:
                        g = g + dt(wd) * theta
                    if c.maximize:
                        g = -g
                else:
                    if c.maximize:
                        g = -g
                    if wd and mode == "l2":
                        g = g + dt(wd) * theta
                # β held in the dtype, 1 − β computed from it (as tensors of the dtype are)
                beta1, beta2 = dt(b1), dt(b2)
                m = self._keep(beta1 * self.m[i] + (dt(1) - beta1) * g)
                v = self._keep(beta2 * self.v[i] + (dt(1) - beta2) * (g * g))
                if dev.get("bias", True):
                    if dev.get("betapow") == "float32":
                        bc1 = 1.0 - self.products[gi][0]
                        bc2 = 1.0 - self.products[gi][1]
                    else:
                        bc1, bc2 = 1.0 - b1 ** t, 1.0 - b2 ** t
                else:
                    bc1 = bc2 = 1.0
                ams = dev.get("ams", "max-hat") if c.amsgrad else "off"
                if ams == "paper":
                    bc1 = bc2 = 1.0
                eps_mode = dev.get("eps", "outside")
                # the max that drops NaN (fmax), or the IEEE one that propagates it
                maximum = np.fmax if dev.get("nan") == "drop" else np.maximum
                if ams == "max-hat":
                    self.vmax[i] = self._keep(maximum(self.vmax[i], v / dt(bc2)))
                    second_hat, second_raw = self.vmax[i], self.vmax[i] * dt(bc2)
                elif ams in ("max-raw", "paper"):
                    self.vmax[i] = self._keep(maximum(self.vmax[i], v))
                    second_hat, second_raw = self.vmax[i] / dt(bc2), self.vmax[i]
                else:
                    second_hat, second_raw = v / dt(bc2), v
                if eps_mode == "hat":
                    step = dt(lr * np.sqrt(bc2) / bc1)
                    update = step * (m / (np.sqrt(second_raw) + dt(eps)))
                else:
                    if eps_mode == "inside-sqrt":
                        denominator = np.sqrt(second_hat + dt(eps))
                    elif eps_mode == "floor":
                        denominator = np.maximum(np.sqrt(second_hat), dt(eps))
                    else:
                        denominator = np.sqrt(second_hat) + dt(eps)
                    update = dt(lr) * ((m / dt(bc1)) / denominator)
                theta = theta + update if dev.get("flip_update") else theta - update
                if wd and mode == "after":
                    theta = theta * dt(1.0 - lr * wd)
                if dev.get("theta") == "float32":  # returned through float32
                    theta = theta.astype(np.float32).astype(dt)
            store = self.store
            self.theta[i], self.m[i], self.v[i] = (x.astype(store).astype(dt)
                                                   for x in (theta, m, v))
            self.vmax[i] = self.vmax[i].astype(store).astype(dt)

    def params(self):
        return [t.astype(np.float64) for t in self.theta]

    def state(self):
        if not self.dev.get("expose_state", True):
            return None
        ams = self.dev.get("ams", "max-hat")
        return OptimizerState(self.t, [x.astype(np.float64) for x in self.m],
                              [x.astype(np.float64) for x in self.v],
                              [x.astype(np.float64) for x in self.vmax],
                              vmax_kind="raw" if ams in ("max-raw", "paper") else "hat")


class DeviantAdam:
    """A backend whose variants are this deviant Adam, one per dtype (``"float32"``, or
    several joined by commas)."""

    def __init__(self, dtype: str = "float32", **deviations):
        self.dtypes = dtype.split(",")
        self.dtype = self.dtypes[0]
        self.dev = deviations
        self.name = "deviant-" + "-".join(f"{k}={v}" for k, v in sorted(deviations.items()))

    def probe(self):
        return BackendInfo(self.name, True, {"deviant": "1"}, ["cpu"], list(self.dtypes),
                           [Variant(self.name, "deviant", "cpu", d) for d in self.dtypes])

    def open(self, problem, variant):
        from adamconf.adapters.base import UnsupportedFeature

        if problem.initial_state is not None:
            raise UnsupportedFeature("this test implementation does not resume")
        return _Session(problem, variant.dtype, self.dev)

    def construct(self, variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False):
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr >= 0:
            raise ValueError(f"Invalid learning rate: {lr!r}")
        if not eps >= 0:
            raise ValueError(f"Invalid epsilon value: {eps!r}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Invalid betas: {betas!r}")
        if not weight_decay >= 0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay!r}")


def eps_hat_decoupled() -> DeviantAdam:
    """ε-hat with decoupled decay in float64 and float32: a factory by import path
    (``adamconf.conformance.tools.deviant:eps_hat_decoupled``) for runs in a worker."""
    return DeviantAdam("float64,float32", eps="hat", wd="decoupled")


def step_off_by_one() -> DeviantAdam:
    """The step count one ahead (t + 1 in the bias corrections) in float32: a factory by
    import path (``adamconf.conformance.tools.deviant:step_off_by_one``) for a fuzzing
    campaign to find."""
    return DeviantAdam("float32", step_offset=1)
