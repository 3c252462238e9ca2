"""bitsandbytes: ``bnb.optim.Adam`` with 32-bit state, driven by the generic torch driver.

One variant, ``32bit`` (``optim_bits=32``), × device (``cpu``; ``cuda`` when present) × dtype
(whatever one trial step accepts). bitsandbytes keeps m and v as ``state1`` and ``state2``
(float32) and the step as an int in ``optimizer.state[p]``: those are read as m, v, step.

``amsgrad`` is in ``bnb.optim.Adam``'s signature and documented ("Whether to use the AMSGrad
variant"), but the constructor never passes it on (``optim/adam.py``): it is accepted and
ignored, which the driver's probe finds and notes. Since the library documents the keyword as
the feature, the adapter declares it so (``amsgrad=keyword``): its amsgrad cases are judged as
amsgrad, and fail (``ams-ignored``), where a class that merely swallows the keyword would have
them unsupported. There is no ``maximize``.

No 8-bit variant: the 8-bit state (``optim_bits=8``) is blockwise-quantised, lossy by design
(its error is a fixed relative fraction of each block's absolute maximum, not a rounding any
dtype's bound allows), so no case could ever pass; and bitsandbytes keeps 32-bit state for
tensors under ``min_8bit_size`` = 4096 elements, which every corpus case is: an "8-bit"
variant would silently be this one.
"""

from __future__ import annotations

from collections.abc import Mapping

from .torch_optimizer import Implementation, TorchOptimizerBackend

__all__ = ["BitsAndBytesBackend"]

NAME = "bitsandbytes"


class BitsAndBytesBackend(TorchOptimizerBackend):
    """``bitsandbytes.optim.Adam(optim_bits=32)``."""

    state_keys: Mapping[str, str] = {"step": "step", "m": "state1", "v": "state2"}
    declared: Mapping[str, str] = {"amsgrad": "keyword"}  # documented as the AMSGrad variant

    def __init__(self) -> None:
        super().__init__(
            "bitsandbytes.optim:Adam", name=NAME,
            implementations={"32bit": Implementation({"optim_bits": 32})},
            description="bitsandbytes.optim.Adam with optim_bits=32 (state1 = m, state2 = v)")
