"""The one error a user can fix: bad input or a missing environment, said in one line."""

__all__ = ["UsageError"]


class UsageError(ValueError):
    """Bad input or environment; the message names the problem and the fix.

    The CLI prints it as one line and exits 2; the Python API lets it through.
    """
