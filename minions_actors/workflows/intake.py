"""The bound on one minion's workflows in flight: a start beyond it is saved (durable, so
nothing is lost) but its steps wait, in start order, until a running workflow ends; and
whoever feeds the minion (a pipeline) can wait for room rather than start more."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

#: Workflows one minion runs at once unless its class sets ``max_workflows_in_flight``: a
#: minion's steps share its turns, so more at once only makes each one take longer.
DEFAULT_MAX_IN_FLIGHT = 128


def check_limit(owner: str, limit: object) -> int | None:
    """The class's ``max_workflows_in_flight``, checked: an int >= 1, or None (no bound)."""
    if limit is None or (isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1):
        return limit
    raise TypeError(f"{owner}.max_workflows_in_flight must be an int >= 1 or None (no "
                    f"bound), got {limit!r}")


class Intake:
    """Which workflows run (``active``) and which wait for a slot (``parked``). Changed on
    the minion's turns; read by feeders on their own threads, hence the lock."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.active: set[str] = set()
        self.parked: deque[str] = deque()
        self._waiters: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def admit(self, workflow_id: str) -> bool:
        """Count a new or resumed workflow in: True when it may run now, False when parked."""
        with self._lock:
            if self.limit is None or len(self.active) < self.limit:
                self.active.add(workflow_id)
                return True
            self.parked.append(workflow_id)
            return False

    def reenter(self, workflow_id: str) -> bool:
        """A waiting workflow (which gave its slot up) goes on: True when it holds a slot
        (already or now), False when it is parked (once) until one frees."""
        with self._lock:
            if workflow_id in self.active:
                return True
            if workflow_id in self.parked:
                return False
            if self.limit is None or len(self.active) < self.limit:
                self.active.add(workflow_id)
                return True
            self.parked.append(workflow_id)
            return False

    def release(self, workflow_id: str) -> list[str]:
        """A workflow ended (or was discarded): the parked ids that may run now."""
        with self._lock:
            if workflow_id in self.active:
                self.active.discard(workflow_id)
            elif workflow_id in self.parked:
                self.parked.remove(workflow_id)
            admitted: list[str] = []
            while self.parked and (self.limit is None or len(self.active) < self.limit):
                admitted.append(self.parked.popleft())
                self.active.update(admitted[-1:])
            waiters: list[Callable[[], None]] = []
            if self._waiters and self._low():
                waiters, self._waiters = self._waiters, []
        for wake in waiters:
            wake()
        return admitted

    def _low(self) -> bool:
        """Half the slots free: a feeder woken now hands over many events in one go (one
        wake-up per ending workflow cost the pipeline a turn each)."""
        return not self.parked and (self.limit is None or
                                    len(self.active) <= self.limit // 2)

    def _room(self, queued: int) -> bool:
        return not self.parked and (self.limit is None or
                                    len(self.active) + queued < self.limit)

    def has_room(self, queued: int = 0) -> bool:
        """True when one more workflow would run at once (none waits for a slot), counting
        ``queued`` messages not yet handled (each may start one) as running."""
        with self._lock:
            return self._room(queued)

    def when_room(self, wake: Callable[[], None]) -> bool:
        """True when half the slots are free now; else ``wake`` is called (once, on the
        minion's thread) as soon as they are."""
        with self._lock:
            if self._low():
                return True
            self._waiters.append(wake)
            return False
