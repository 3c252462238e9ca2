"""The executable spec: Adam as documented for ``mindspore.experimental.optim.Adam``.

``run(problem)`` is the reference trajectory (mpmath, certified, correctly rounded to
float64); the problem types, the validated hyperparameters and the dialects live beside it.
This package imports nothing else of adamconf's.
"""

from adamconf.reference.engine import run_reference as run

__all__ = ["run"]
