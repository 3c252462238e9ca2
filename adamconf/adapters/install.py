"""How each backend's framework is installed: one table, by backend name.

An adapter's probe says it where its framework is missing (``BackendInfo.install_hint``, the
``BackendUnavailable`` message); the registry says it where a backend's worker cannot start at
all. Both read this table.
"""

from __future__ import annotations

import contextlib

from .base import BackendUnavailable

__all__ = ["INSTALL_HINTS", "not_installed", "importing"]

INSTALL_HINTS: dict[str, str] = {
    "numpy": "numpy is a dependency of adamconf: pip install adamconf",
    "torch": "pip install 'adamconf[torch]' (or pip install torch)",
    "mindspore": "pip install 'adamconf[mindspore]' (or pip install mindspore)",
    "jax": "pip install 'adamconf[jax]' (or pip install jax optax)",
    "sklearn": "pip install 'adamconf[sklearn]' (or pip install scikit-learn)",
    "tinygrad": "pip install 'adamconf[tinygrad]' (or pip install tinygrad); its CPU device "
                "needs clang on PATH (e.g. apt-get install clang)",
    "mlx": "pip install 'adamconf[mlx]' (or pip install 'mlx[cpu]' on Linux, mlx on macOS)",
    "autograd": "pip install 'adamconf[autograd]' (or pip install autograd)",
    "optimi": "pip install 'adamconf[optimi]' (or pip install torch torch-optimi)",
    "bitsandbytes": "pip install 'adamconf[bitsandbytes]' (or pip install torch bitsandbytes)",
    "deepspeed": "pip install 'adamconf[deepspeed]' (or pip install torch deepspeed; its CPU "
                 "Adam kernel is compiled at first use and needs a C++ compiler)",
    "tensorflow": "pip install 'adamconf[tensorflow]' (or pip install tensorflow-cpu)",
    "paddle": "pip install 'adamconf[paddle]' (or pip install paddlepaddle)",
    "keras": "pip install 'adamconf[keras]' (or pip install keras and one of tensorflow, jax, "
             "torch)",
    "keras-tensorflow": "pip install 'adamconf[keras]' (or pip install keras tensorflow-cpu)",
    "keras-jax": "pip install 'adamconf[keras]' (or pip install keras jax)",
    "keras-torch": "pip install 'adamconf[keras]' (or pip install keras torch)",
}


def not_installed(framework: str, exc: ImportError, backend: str) -> BackendUnavailable:
    """The error an adapter raises where importing its framework failed: what is missing, why
    (the ImportError), and how to install it."""
    return BackendUnavailable(f"{framework} is not installed ({exc}); {INSTALL_HINTS[backend]}")


@contextlib.contextmanager
def importing(framework: str, backend: str):
    """Where an import inside fails, :func:`not_installed` is raised instead (the ImportError
    is its cause, not shown twice)."""
    try:
        yield
    except ImportError as exc:
        raise not_installed(framework, exc, backend) from None
