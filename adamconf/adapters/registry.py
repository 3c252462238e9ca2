"""Finding backends: built-in names, the ``adamconf.backends`` entry points, ``module:factory``."""

from __future__ import annotations

import importlib
import sys
from importlib import metadata

from .base import Backend

__all__ = ["BUILTIN", "INSTALL_HINTS", "UnknownBackend", "load_backend", "known_backends"]

BUILTIN: dict[str, str] = {
    "numpy": "adamconf.adapters.numpy_backend:NumpyBackend",
    "torch": "adamconf.adapters.torch_backend:TorchBackend",
    "mindspore": "adamconf.adapters.mindspore_backend:MindSporeBackend",
    "jax": "adamconf.adapters.jax_backend:JaxBackend",
    "tensorflow": "adamconf.adapters.tensorflow_backend:TensorFlowBackend",
    "paddle": "adamconf.adapters.paddle_backend:PaddleBackend",
    "keras": "adamconf.adapters.keras_backend:KerasBackend",
    "keras-tensorflow": "adamconf.adapters.keras_backend:KerasTensorFlowBackend",
    "keras-jax": "adamconf.adapters.keras_backend:KerasJaxBackend",
    "keras-torch": "adamconf.adapters.keras_backend:KerasTorchBackend",
}

INSTALL_HINTS: dict[str, str] = {
    "numpy": "numpy is a dependency of adamconf: pip install adamconf",
    "torch": "pip install 'adamconf[torch]' (or pip install torch)",
    "mindspore": "pip install 'adamconf[mindspore]' (or pip install mindspore)",
    "jax": "pip install 'adamconf[jax]' (or pip install jax optax)",
    "tensorflow": "pip install 'adamconf[tensorflow]' (or pip install tensorflow-cpu)",
    "paddle": "pip install 'adamconf[paddle]' (or pip install paddlepaddle)",
    "keras": "pip install 'adamconf[keras]' (or pip install keras and tensorflow, jax or torch)",
    "keras-tensorflow": "pip install 'adamconf[keras]' (or pip install keras tensorflow-cpu)",
    "keras-jax": "pip install 'adamconf[keras]' (or pip install keras jax)",
    "keras-torch": "pip install 'adamconf[keras]' (or pip install keras torch)",
}

ENTRY_POINT_GROUP = "adamconf.backends"


class UnknownBackend(ValueError):
    """A backend name or spec that cannot be resolved; the message lists the known ones."""


def _entry_points() -> dict[str, metadata.EntryPoint]:
    try:
        return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    except Exception:  # a broken distribution's metadata must not break the built-ins
        return {}


def known_backends() -> dict[str, str]:
    """Name → 'module:factory' for the built-ins and every installed plug-in."""
    names = dict(BUILTIN)
    for name, ep in _entry_points().items():
        names.setdefault(name, ep.value)
    return names


def _resolve(target: str):
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise UnknownBackend(f"backend spec {target!r} must look like 'package.module:factory'")
    if "" not in sys.path:  # like `python -m`: a module in the working folder is found
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise UnknownBackend(f"cannot import module {module_name!r} for backend spec "
                                 f"{target!r}: {exc}; is it on PYTHONPATH?") from None
        raise
    factory = module
    for part in attr.split("."):
        try:
            factory = getattr(factory, part)
        except AttributeError:
            raise UnknownBackend(f"module {module_name!r} has no attribute {attr!r} "
                                 f"(backend spec {target!r})") from None
    return factory


def load_backend(spec: str) -> Backend:
    """A backend by built-in or plug-in name, or by 'package.module:factory'.

    The factory is called with no arguments; a class is a factory.
    """
    names = known_backends()
    target = names.get(spec, spec if ":" in spec else None)
    if target is None:
        raise UnknownBackend(f"unknown backend {spec!r}; known: {', '.join(sorted(names))}, or "
                             "give a third-party one as 'package.module:factory'")
    backend = _resolve(target)()
    for attr in ("name", "probe", "open"):
        if not hasattr(backend, attr):
            raise UnknownBackend(f"{target} did not give a backend: the object it returned has "
                                 f"no {attr!r} (see the Backend protocol in the README)")
    return backend
