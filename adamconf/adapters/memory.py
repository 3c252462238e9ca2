"""The worker's memory, for recycling a backend process by what it has grown, not by count.

Frameworks that compile a graph per optimizer (MindSpore, JAX) keep what they compiled for
the life of the process. A worker that reports its resident set size with every reply lets
the runner replace it once it has grown past a limit, before the machine runs short.
"""

from __future__ import annotations

import os
import sys

__all__ = ["rss_bytes"]


def rss_bytes() -> int | None:
    """This process's resident set size in bytes now; None where it cannot be read.

    Linux: ``/proc/self/statm`` (second field, in pages). Elsewhere: the ``resource``
    module's peak RSS (``ru_maxrss``: kilobytes on Linux, bytes on macOS), which never
    shrinks but still tells growth. No psutil needed.
    """
    try:
        with open("/proc/self/statm", "rb") as statm:
            resident_pages = int(statm.read().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024
