"""How many workers the pool gets and how many may serve its run queue at once: the GIL
lets one thread run Python at a time, a free-threaded build (PEP 703, GIL off) one per core.
"""

from __future__ import annotations

import os
import sys

MAX_DEFAULT = 64  # the default pool size's cap on a free-threaded build


def cores() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on every platform
        return os.cpu_count() or 1


def free_threaded() -> bool:
    """True on a free-threaded build running without the GIL (PEP 703)."""
    gil = getattr(sys, "_is_gil_enabled", None)
    return gil is not None and not gil()


def default_pool_size() -> int:
    """Workers for the CPU count: the GIL lets one run Python at a time, so a few more than
    one keep the CPU busy while others wait on I/O or locks (2 to 8); without the GIL each
    core runs a worker, so the pool follows the cores (one more, up to ``MAX_DEFAULT``)."""
    if free_threaded():
        return max(2, min(MAX_DEFAULT, cores() + 1))
    return max(2, min(8, cores() + 1))


def parallel_workers() -> int:
    """How many workers may serve the run queue at once (see ``WorkerPool._alone``): one
    under the GIL, where a second only splits the interpreter; one per core without it."""
    return max(1, cores()) if free_threaded() else 1
