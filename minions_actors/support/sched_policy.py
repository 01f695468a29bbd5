"""The scheduling policy of the runtime's threads that run handlers (pool workers and
dedicated minion threads): Linux's ``SCHED_BATCH`` under the GIL, when asked for with
``MINIONS_SCHED_BATCH=1``.

Why: a thread that wakes another (a caller putting an ask in a mailbox, a worker setting
the reply) still holds the GIL for a few microseconds. Under the default policy the kernel
often switches to the woken thread at once when both share a CPU; that thread can only
block again on the GIL, and the GIL's own hand-off (a condition signalled under its mutex)
repeats the dance: about five context switches per ask instead of two, and a p50 that
flips between runs with the scheduler's state. ``SCHED_BATCH`` differs from the default in
one respect only: a thread it wakes does not preempt the running one; it runs when that
one blocks or at the next tick (CPU shares are unchanged). Measured (one CPU, 3.11): ask
p50 25-47 -> 16 us, 5.2 -> 2.8 context switches per ask. Without the GIL a woken thread
can run at once, so the policy is left alone there.

While the pool sees a handler spin in pure Python (and shortens the switch interval, see
``pool_monitor.hurry_switches``), its workers go back to the default policy: the GIL then
changes hands every millisecond among many threads, and a woken worker that waited for
the next tick each time made the others' worst ask ~1.4x longer.

Opt-in (``MINIONS_SCHED_BATCH=1``), not the default: on a host whose CPUs are all busy
(other processes), a woken worker waits for the running thread to block or for the next
tick instead of preempting it, so asks' tails grow (measured with two CPU burners beside an
ask every 0.5 ms: p90 62-107 -> 121-180 us, p99 2.3-3.9 -> 3.3-8.4 ms), and threads and
processes a handler starts inherit the policy, which an application does not expect of a
library. A thread already under another policy (real-time, idle) is left as it is.
"""

from __future__ import annotations

import os
import sys

ENV = "MINIONS_SCHED_BATCH"


def _gil_enabled() -> bool:
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def wanted() -> bool:
    """Whether threads that run handlers should go under ``SCHED_BATCH`` here: Linux (the
    policy exists), a GIL, and asked for with ``MINIONS_SCHED_BATCH=1``."""
    return (hasattr(os, "SCHED_BATCH") and os.environ.get(ENV, "0").strip() == "1"
            and _gil_enabled())


def batch_this_thread() -> bool:
    """Put the calling thread under ``SCHED_BATCH`` when :func:`wanted` and it runs under
    the default policy; True when it did. A refusal (a seccomp filter) changes nothing."""
    if not wanted():
        return False
    try:
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            return False
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError:
        return False
    return True


def set_batch(threads: list[int], batch: bool) -> None:
    """Move the threads with these native ids between ``SCHED_BATCH`` (``batch``) and the
    default policy, leaving any under another policy, or all when not :func:`wanted`."""
    if not wanted():
        return
    old, new = (os.SCHED_OTHER, os.SCHED_BATCH) if batch else (os.SCHED_BATCH, os.SCHED_OTHER)
    for tid in threads:
        try:
            if os.sched_getscheduler(tid) == old:
                os.sched_setscheduler(tid, new, os.sched_param(0))
        except OSError:  # the thread ended meanwhile, or a filter refuses it
            pass
