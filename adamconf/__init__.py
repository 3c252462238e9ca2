"""adamconf: a verified reference of Adam and a conformance suite for its implementations.

The public face::

    from adamconf import Adam    # the NumPy production Adam (adamconf.adapters.numpy_adam)
    from adamconf import check   # run a backend over the golden cases, judged by the bound
    from adamconf import fuzz    # hypothesis-generated cases against a backend
    import adamconf.reference    # the executable spec: adamconf.reference.run(problem)

``import adamconf`` imports no framework (adapters import theirs lazily) and none of the
names above until one is used.
"""

__version__ = "0.2.0"

__all__ = ["Adam", "check", "fuzz", "findings", "__version__"]

_LAZY = {
    "Adam": ("adamconf.adapters.numpy_adam", "Adam"),
    "check": ("adamconf.conformance.api", "check"),
    "fuzz": ("adamconf.conformance.api", "fuzz"),
    "findings": ("adamconf.conformance.api", "write_findings"),
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'adamconf' has no attribute {name!r}")
