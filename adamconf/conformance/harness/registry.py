"""Finding backends: built-in names, the ``adamconf.backends`` entry points, ``module:factory``."""

from __future__ import annotations

import importlib
import sys
from importlib import metadata

from adamconf.adapters.base import Backend
from adamconf.adapters.install import INSTALL_HINTS  # one table, the adapters' own

__all__ = ["BUILTIN", "INSTALL_HINTS", "UnknownBackend", "load_backend", "known_backends"]

BUILTIN: dict[str, str] = {
    "numpy": "adamconf.adapters.numpy_backend:NumpyBackend",
    "torch": "adamconf.adapters.torch_backend:TorchBackend",
    "mindspore": "adamconf.adapters.mindspore_backend:MindSporeBackend",
    "jax": "adamconf.adapters.jax_backend:JaxBackend",
    "sklearn": "adamconf.adapters.sklearn_backend:SklearnBackend",
    "tinygrad": "adamconf.adapters.tinygrad_backend:TinygradBackend",
    "mlx": "adamconf.adapters.mlx_backend:MlxBackend",
    "autograd": "adamconf.adapters.autograd_backend:AutogradBackend",
    "optimi": "adamconf.adapters.optimi_backend:OptimiBackend",
    "bitsandbytes": "adamconf.adapters.bitsandbytes_backend:BitsAndBytesBackend",
    "deepspeed": "adamconf.adapters.deepspeed_backend:DeepSpeedCPUAdamBackend",
    "tensorflow": "adamconf.adapters.tensorflow_backend:TensorFlowBackend",
    "paddle": "adamconf.adapters.paddle_backend:PaddleBackend",
    "keras": "adamconf.adapters.keras_backend:KerasBackend",
    "keras-tensorflow": "adamconf.adapters.keras_backend:KerasTensorFlowBackend",
    "keras-jax": "adamconf.adapters.keras_backend:KerasJaxBackend",
    "keras-torch": "adamconf.adapters.keras_backend:KerasTorchBackend",
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


def load_backend(spec: str, options: dict[str, str] | None = None, *,
                 state: str | None = None, features: dict[str, str] | None = None) -> Backend:
    """A backend by built-in or plug-in name, by 'package.module:factory', or a generic one:
    'torch-optimizer:package.module:Class', 'optax-transform:package.module:factory'.

    The factory is called with no arguments; a class is a factory. For the generic backends
    only: ``options`` (``key=value`` strings) are extra constructor keywords, ``state`` how
    the state is compared (``auto``, ``compare``, ``ignore``), ``features`` what the class or
    factory fixes (``{'amsgrad': 'always'}``).
    """
    # generic backends: prefix → the factory called with (target, options)
    generic = {"torch-optimizer": "adamconf.adapters.torch_optimizer:torch_optimizer_backend",
               "optax-transform": "adamconf.adapters.optax_transform:optax_transform_backend"}
    prefix, _, rest = spec.partition(":")
    if prefix in generic and spec not in known_backends():
        # the target's top-level package is looked for, not imported (importing is for the
        # backend, in its worker), so that a typo is one clear message here
        import importlib.util

        module_name, _, attr = rest.partition(":")
        what = "Class" if prefix == "torch-optimizer" else "factory"
        if not module_name or not attr or ":" in attr:
            raise UnknownBackend(f"backend spec {spec!r} must look like "
                                 f"'{prefix}:package.module:{what}'")
        if "" not in sys.path:  # like `python -m`: a module in the working folder is found
            sys.path.insert(0, "")
        try:
            found = importlib.util.find_spec(module_name.partition(".")[0])
        except (ImportError, ValueError):
            found = None
        if found is None:
            top = module_name.partition(".")[0]
            raise UnknownBackend(f"cannot find package {top!r} for backend spec {spec!r}; is "
                                 "it installed, or on PYTHONPATH?")
        try:
            backend = _resolve(generic[prefix])(rest, options, state=state or "auto",
                                                features=features)
        except ValueError as exc:  # a malformed option, state or feature
            raise UnknownBackend(f"backend spec {spec!r}: {exc}") from None
        target = spec
    else:
        if options:
            raise UnknownBackend(f"backend {spec!r} takes no options (only the generic "
                                 "torch-optimizer:… and optax-transform:… backends do)")
        if features or state not in (None, "auto"):
            given = "--feature" if features else f"--state {state}"
            raise UnknownBackend(f"backend {spec!r} takes no {given}: its adapter knows what "
                                 "its state holds and which features it has (only the generic "
                                 "torch-optimizer:… and optax-transform:… backends are told)")
        names = known_backends()
        target = names.get(spec, spec if ":" in spec else None)
        if target is None:
            raise UnknownBackend(f"unknown backend {spec!r}; known: {', '.join(sorted(names))}, "
                                 "or give a third-party one as 'package.module:factory', "
                                 "'torch-optimizer:package.module:Class' or "
                                 "'optax-transform:package.module:factory'")
        backend = _resolve(target)()
    for attr in ("name", "probe", "open"):
        if not hasattr(backend, attr):
            raise UnknownBackend(f"{target} did not give a backend: the object it returned has "
                                 f"no {attr!r} (see the Backend protocol in the README)")
    return backend
