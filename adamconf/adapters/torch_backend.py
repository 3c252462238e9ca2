"""PyTorch: ``torch.optim.Adam`` in each of its implementations, driven step by step.

The generic torch driver (:mod:`.torch_optimizer`) with a fixed class and these variants.

Variants (``Variant.name``), each × device (``cpu``, ``cuda`` when present) × dtype
(float64, float32, float16, bfloat16):

- ``for-loop`` (``foreach=False``), ``foreach`` (``foreach=True``), ``fused`` (``fused=True``),
  ``capturable`` (``foreach=False, capturable=True``), ``foreach-capturable``
  (``foreach=True, capturable=True``): lr a Python float, set between steps through
  ``param_groups[i]['lr']`` as an LR scheduler does.
- the same five with ``-tensor-lr``: lr a 0-d tensor, changed in place with ``fill_`` (what
  torch asks of a tensor lr, so that a captured graph sees the new value). The tensor holds
  the exact binary64 lr (float64), except for ``fused`` on CUDA, whose kernel reads the lr
  as float32 (``lr.const_data_ptr<float>()`` in ``fused_adam_impl.cu``): there it is float32.
- ``differentiable`` (``foreach=False, differentiable=True``): the step as part of an autograd
  graph, on non-leaf parameters that require grad (what the flag is for). Its arithmetic is
  the capturable one on every device: β^t, the bias corrections and lr/bc1 as tensors, with
  the step count a float32 tensor (so in float32 even in a float64 run).

Whatever torch refuses (``capturable`` on CPU, a tensor lr with ``foreach`` and no
``capturable``, ``fused`` on a device or dtype without a kernel) is found by trying one
step at probe time and listed as unsupported with torch's own message.

What torch computes (``torch/optim/adam.py``; ``aten/src/ATen/native/cpu/FusedAdamKernel.cpp``):
the documented update, except that amsgrad keeps the max of raw v
(``max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq)``, then ``√(max/(1−β2^t)) + ε``): the
``ams-rawmax`` dialect. The adapter does not correct it; the suite judges. State is
``optimizer.state[p]``: ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq`` (raw) and ``step``,
a float32 tensor per parameter (float64 if torch's default dtype is float64).
Resume goes through torch's ``load_state_dict``, with v̂max converted to the raw max.
"""

from __future__ import annotations

from .torch_optimizer import Implementation, TorchOptimizerBackend

__all__ = ["TorchBackend", "IMPLEMENTATIONS"]

NAME = "torch"

# implementation name → the constructor flags that select it
IMPLEMENTATIONS: dict[str, dict[str, bool]] = {
    "for-loop": {"foreach": False},
    "foreach": {"foreach": True},
    "fused": {"fused": True},
    "capturable": {"foreach": False, "capturable": True},
    "foreach-capturable": {"foreach": True, "capturable": True},
}
TENSOR_LR_SUFFIX = "-tensor-lr"
DIFFERENTIABLE = "differentiable"


def _implementations() -> dict[str, Implementation]:
    variants = {}
    for base, flags in IMPLEMENTATIONS.items():
        variants[base] = Implementation(flags)
        # fused CUDA reads a tensor lr as float32 (fused_adam_impl.cu)
        float32_on = ("cuda",) if flags.get("fused") else ()
        variants[base + TENSOR_LR_SUFFIX] = Implementation(flags, tensor_lr=True,
                                                           float32_lr_on=float32_on)
    variants[DIFFERENTIABLE] = Implementation({"foreach": False, "differentiable": True},
                                              leaf_params=False)
    return variants


class TorchBackend(TorchOptimizerBackend):
    """``torch.optim.Adam``: for-loop, foreach, fused, capturable, differentiable; float or
    tensor lr."""

    def __init__(self) -> None:
        super().__init__(
            "torch.optim:Adam", name=NAME, implementations=_implementations(),
            description="torch.optim.Adam; implementations selected by foreach / fused / "
                        "capturable / differentiable, lr a float or a 0-d tensor")

    def versions(self, torch) -> dict[str, str]:
        return {"torch": torch.__version__,
                "cuda": str(torch.version.cuda) if torch.version.cuda else "none"}
