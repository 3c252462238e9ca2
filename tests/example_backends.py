"""Third-party backends used by the tests, loaded as ``module:factory`` like a user's would be.

``EpsHatBackend`` is the README's example backend with one deliberate change: ε outside the
bias correction (the eps-hat dialect). The others crash, hang, are not installed, or build a
simulated kernel at first use.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np

from adamconf.adapters.base import (
    BackendInfo,
    FirstUseBuild,
    OptimizerState,
    Refusal,
    Unsupported,
    Variant,
)


class _Session:
    def __init__(self, problem, eps_hat: bool):
        self.groups = [g.config for g in problem.groups]
        self.owner = problem.group_of_param()
        self.theta = [p.copy() for p in problem.params]
        self.m = [np.zeros_like(p) for p in self.theta]
        self.v = [np.zeros_like(p) for p in self.theta]
        self.t, self.eps_hat = 0, eps_hat

    def step(self, grads, lrs=None):
        self.t += 1
        for i, grad in enumerate(grads):
            c = self.groups[self.owner[i]]
            lr = lrs[self.owner[i]] if lrs is not None else c.lr
            (b1, b2), g = c.betas, -grad if c.maximize else grad
            g = g + c.weight_decay * self.theta[i]
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            bc1, bc2 = 1 - b1 ** self.t, 1 - b2 ** self.t
            with np.errstate(all="ignore"):
                if self.eps_hat:
                    update = lr * np.sqrt(bc2) / bc1 * self.m[i] / (np.sqrt(self.v[i]) + c.eps)
                else:
                    update = lr * (self.m[i] / bc1) / (np.sqrt(self.v[i] / bc2) + c.eps)
            self.theta[i] = self.theta[i] - update

    def params(self):
        return [t.copy() for t in self.theta]

    def state(self):
        return OptimizerState(self.t, self.m, self.v, None)


class EpsHatBackend:
    name = "eps-hat-example"
    eps_hat = True

    def probe(self):
        return BackendInfo(self.name, True, {"example": "1"}, ["cpu"], ["float64"],
                           [Variant(self.name, "plain", "cpu", "float64")])

    def open(self, problem, variant):
        from adamconf.adapters.base import UnsupportedFeature

        if any(g.config.amsgrad for g in problem.groups) or problem.initial_state is not None:
            raise UnsupportedFeature("this example has no amsgrad and cannot resume")
        return _Session(problem, self.eps_hat)

    def construct(self, variant, *, lr, betas, eps, weight_decay, amsgrad=False,
                  maximize=False):
        # its own checks, as any implementation has (never the spec's validator)
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr >= 0:
            raise ValueError(f"Invalid learning rate: {lr!r}")
        if not eps >= 0:
            raise ValueError(f"Invalid epsilon value: {eps!r}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"Invalid betas: {betas!r}")
        if not weight_decay >= 0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay!r}")


class CorrectBackend(EpsHatBackend):
    name = "correct-example"
    eps_hat = False


class AbortingBackend(CorrectBackend):
    """Dies with SIGABRT on cases whose id-derived problem has a 0-d parameter."""

    name = "aborting-example"

    def open(self, problem, variant):
        if any(p.ndim == 0 for p in problem.params):
            os.abort()
        return super().open(problem, variant)


class HangingBackend(CorrectBackend):
    name = "hanging-example"

    def open(self, problem, variant):
        if problem.steps == 1:
            time.sleep(3600)
        return super().open(problem, variant)


class AcceptsEverythingBackend(CorrectBackend):
    name = "lenient-example"

    def construct(self, variant, **kwargs):
        return None


class NotInstalledBackend(CorrectBackend):
    name = "absent-example"

    def probe(self):
        return BackendInfo(self.name, False, install_hint="pip install absent-framework")


class NothingSupportedBackend(CorrectBackend):
    """Refuses every case: nothing can be judged, so it must never 'conform'."""

    name = "refuses-everything-example"

    def open(self, problem, variant):
        from adamconf.adapters.base import UnsupportedFeature

        raise UnsupportedFeature("this example supports nothing")


class FewSupportedBackend(CorrectBackend):
    """Runs only single-step cases: conforms on a few, unsupported on the rest."""

    name = "few-example"

    def open(self, problem, variant):
        from adamconf.adapters.base import UnsupportedFeature

        if problem.steps != 1:
            raise UnsupportedFeature("this example runs only single-step cases")
        return super().open(problem, variant)


class WhereAmIBackend(CorrectBackend):
    """The correct example, saying which interpreter its worker runs on and whether the
    spec's libraries are importable there (a worker needs only adamconf's adapters and
    numpy)."""

    name = "where-am-i-example"

    def probe(self):
        import importlib.util
        import sys

        info = super().probe()
        info.versions = {"python": sys.executable,
                         "mpmath": "importable" if importlib.util.find_spec("mpmath")
                         else "absent"}
        return info


class FirstUseBuildBackend(CorrectBackend):
    """Builds a simulated kernel at its first use, the way torch's extension builder does (for
    DeepSpeed's CPU Adam): in the folder ``$ADAMCONF_TEST_BUILD_DIR`` it creates ``lock``
    exclusively and holds it open while it "compiles" (``$ADAMCONF_TEST_BUILD_SECONDS`` of
    sleep), writes ``kernel.so``, and removes the lock in a ``finally``; a build that finds the
    lock waits for it to go, without end. ``$ADAMCONF_TEST_BUILD_IGNORES_SIGTERM`` makes its
    build deaf to SIGTERM, so that its own clean-up cannot run when it is stopped.
    ``$ADAMCONF_TEST_BUILD_TOOL`` compiles as torch does, through a tool (ninja's part: it
    runs the "compiler" in a process group of its own, writes its id to ``compiler.pid``, and
    stops it on SIGTERM)."""

    name = "first-use-build-example"

    def __init__(self) -> None:
        self._failure: str | None = None

    @staticmethod
    def _folder() -> Path:
        return Path(os.environ["ADAMCONF_TEST_BUILD_DIR"])

    def first_use_build(self):
        folder = self._folder()
        lock = folder / "lock"
        if (folder / "kernel.so").exists() and not lock.exists():
            return None
        return FirstUseBuild("a simulated kernel", locks=(str(lock),))

    def build(self) -> None:
        from adamconf.adapters.buildlock import stale_lock_reason

        folder = self._folder()
        folder.mkdir(parents=True, exist_ok=True)
        lock = folder / "lock"
        stale = stale_lock_reason(lock, "a simulated kernel")
        if stale is not None:
            self._failure = stale
            raise RuntimeError(stale)
        if os.environ.get("ADAMCONF_TEST_BUILD_IGNORES_SIGTERM"):
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL)
        except FileExistsError:  # another build holds it: wait, as torch's FileBaton does
            while lock.exists():
                time.sleep(0.1)
            return
        try:
            seconds = float(os.environ.get("ADAMCONF_TEST_BUILD_SECONDS", "0"))
            if os.environ.get("ADAMCONF_TEST_BUILD_TOOL"):
                import subprocess
                import sys

                subprocess.run([sys.executable, "-c", _TOOL, str(folder), str(seconds)],
                               check=True)
            else:
                time.sleep(seconds)
            (folder / "kernel.so").write_text("built\n")
        finally:
            os.close(fd)
            os.remove(lock)

    def probe(self):
        if self._failure is None and not (self._folder() / "kernel.so").exists():
            try:
                self.build()
            except RuntimeError:
                pass
        if self._failure is not None:
            variant = Variant(self.name, "plain", "cpu", "float64")
            return BackendInfo(self.name, True, {"example": "1"}, ["cpu"], ["float64"],
                               unsupported=[Unsupported("kernel", self._failure)],
                               refused=[Refusal(variant, self._failure)])
        return super().probe()

    def open(self, problem, variant):
        from adamconf.adapters.base import UnsupportedFeature

        if self._failure is not None:
            raise UnsupportedFeature(self._failure)
        return super().open(problem, variant)


# the build tool of FirstUseBuildBackend: a "compiler" in a process group of its own (as ninja
# runs each command), stopped when the tool gets SIGTERM
_TOOL = """
import os, signal, subprocess, sys, time
folder, seconds = sys.argv[1], sys.argv[2]
compiler = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"],
                            start_new_session=True)
with open(os.path.join(folder, "compiler.pid"), "w") as f:
    f.write(str(compiler.pid))
stopped = []
def stop(signum, frame):
    os.killpg(compiler.pid, signal.SIGTERM)
    stopped.append(signum)
signal.signal(signal.SIGTERM, stop)
while compiler.poll() is None:
    time.sleep(0.05)
sys.exit(1 if stopped else compiler.returncode)
"""
