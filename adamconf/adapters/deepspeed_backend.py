"""DeepSpeed: ``DeepSpeedCPUAdam``, its C++ CPU kernel, driven by the generic torch driver.

Variants on device ``cpu`` × dtype (whatever one trial step accepts):

- ``adam`` (``adamw_mode=False``): weight decay as L2, added to the gradient (the spec's);
- ``adamw`` (``adamw_mode=True``, DeepSpeed's default): decoupled weight decay.

Both with ``bias_correction=True`` and ``fp32_optimizer_states=True`` (the defaults). State is
torch's ``exp_avg``, ``exp_avg_sq`` and an int ``step`` per parameter. ``amsgrad`` is in the
signature, and the first step raises "DeepSpeedCPUAdam does not support the AMSGrad variant":
listed as unsupported. There is no ``maximize``.

Each construction takes ~2 s here: ``DeepSpeedCPUAdam.__init__`` calls py-cpuinfo's
``get_cpu_info()``, which runs a subprocess, to look for an AMD CPU (for a float16 warning).
The driver leaves that as it is, so a full run is slow (~1000 optimizers).

The kernel (``cpu_adam`` op) is compiled with the system's C++ compiler at first use (cached
under ``~/.cache/torch_extensions``, 2–4 minutes on two cores). That is a build phase of its
own (:meth:`first_use_build`, :meth:`build`): the worker runs it before the probe, within the
build budget (``--build-timeout``), not the per-case timeout; where it fails, the probe says
why. torch's extension builder serialises builds with a ``lock`` file in the build folder and
waits on it without end; one left by a build that was stopped, whose owner is gone, is named
with the command that clears it instead of being waited on.
"""

from __future__ import annotations

import os

from .base import FirstUseBuild, error_reason
from .buildlock import stale_lock_reason
from .torch_optimizer import Implementation, TorchOptimizerBackend

__all__ = ["DeepSpeedCPUAdamBackend"]

NAME = "deepspeed"


class DeepSpeedCPUAdamBackend(TorchOptimizerBackend):
    """``deepspeed.ops.adam.DeepSpeedCPUAdam`` with adamw_mode False (L2) and True."""

    def __init__(self) -> None:
        super().__init__(
            "deepspeed.ops.adam:DeepSpeedCPUAdam", name=NAME,
            devices=("cpu",),
            implementations={"adam": Implementation({"adamw_mode": False}),
                             "adamw": Implementation({"adamw_mode": True})},
            description="DeepSpeedCPUAdam (C++ cpu_adam kernel): adamw_mode False (L2 weight "
                        "decay) and True (decoupled)")
        self._built = False
        self._build_failure: str | None = None

    @staticmethod
    def _builder():
        from deepspeed.ops.op_builder import CPUAdamBuilder

        return CPUAdamBuilder()

    def _build_folder(self, builder) -> str | None:
        """Where torch's extension builder compiles the op at first use; None where DeepSpeed
        was installed with the op built (nothing to build here) or torch does not say."""
        from deepspeed.git_version_info import installed_ops

        if installed_ops.get(builder.name, False):
            return None
        from torch.utils import cpp_extension

        folder_of = getattr(cpp_extension, "_get_build_directory", None)
        return folder_of(builder.name, False) if folder_of is not None else None

    def first_use_build(self) -> FirstUseBuild | None:
        """The kernel's build, where it is not built yet here or a build holds its lock."""
        if self._built or self._build_failure:
            return None
        builder = self._builder()
        folder = self._build_folder(builder)
        if folder is None:
            return None
        lock = os.path.join(folder, "lock")
        built = os.path.exists(os.path.join(folder, f"{builder.name}.so"))
        if built and not os.path.exists(lock):
            return None  # loading the cached kernel takes seconds
        return FirstUseBuild(f"DeepSpeed's CPU Adam kernel (cpu_adam, compiled with the C++ "
                             f"compiler into {folder})", locks=(lock,))

    def build(self) -> None:
        """Build (or load) the kernel; a stale lock of torch's builder is named, not waited on.
        A failure is kept: the probe reports it, and it is not tried again in this process."""
        if self._built:
            return
        if self._build_failure:
            raise RuntimeError(self._build_failure)
        try:
            builder = self._builder()
            folder = self._build_folder(builder)
            stale = (stale_lock_reason(os.path.join(folder, "lock"), "DeepSpeed's CPU Adam kernel")
                     if folder is not None else None)
        except Exception as exc:
            self._build_failure = ("DeepSpeed's CPU Adam kernel cannot be found: "
                                   f"{error_reason(exc)}")
            raise RuntimeError(self._build_failure) from None
        if stale is not None:
            self._build_failure = stale
            raise RuntimeError(stale)
        try:
            builder.load()
        except Exception as exc:  # a failed build is the reason a person reads
            self._build_failure = (
                f"DeepSpeed's CPU Adam kernel (cpu_adam) could not be built or loaded: "
                f"{error_reason(exc)}; it needs a C++ compiler and ninja (see DeepSpeed's "
                "installation notes, DS_BUILD_CPU_ADAM=1)")
            raise RuntimeError(self._build_failure) from None
        self._built = True

    def prepare(self) -> str | None:
        try:
            self.build()
        except Exception:
            return self._build_failure
        return None
