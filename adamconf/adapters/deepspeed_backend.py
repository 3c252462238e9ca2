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
under ``~/.cache/torch_extensions``); the probe builds it once, and where that fails, says so.
"""

from __future__ import annotations

from .base import error_reason
from .torch_optimizer import Implementation, TorchOptimizerBackend

__all__ = ["DeepSpeedCPUAdamBackend"]

NAME = "deepspeed"
INSTALL_HINT = ("pip install 'adamconf[deepspeed]' (or pip install torch deepspeed; its CPU Adam "
                "kernel is compiled at first use and needs a C++ compiler)")


class DeepSpeedCPUAdamBackend(TorchOptimizerBackend):
    """``deepspeed.ops.adam.DeepSpeedCPUAdam`` with adamw_mode False (L2) and True."""

    def __init__(self) -> None:
        super().__init__(
            "deepspeed.ops.adam:DeepSpeedCPUAdam", name=NAME, install_hint=INSTALL_HINT,
            devices=("cpu",),
            implementations={"adam": Implementation({"adamw_mode": False}),
                             "adamw": Implementation({"adamw_mode": True})},
            description="DeepSpeedCPUAdam (C++ cpu_adam kernel): adamw_mode False (L2 weight "
                        "decay) and True (decoupled)")

    def prepare(self) -> str | None:
        try:
            from deepspeed.ops.op_builder import CPUAdamBuilder

            CPUAdamBuilder().load()
        except Exception as exc:  # a failed build is the reason a person reads
            return (f"DeepSpeed's CPU Adam kernel (cpu_adam) could not be built or loaded: "
                    f"{error_reason(exc)}; it needs a C++ compiler and ninja (see DeepSpeed's "
                    "installation notes, DS_BUILD_CPU_ADAM=1)")
        return None
