"""Pipelines: supervised event sources that feed minions with back-pressure and a persisted
position.

A :class:`Pipeline` is a minion, so supervision, restarts, snapshots and shutdown order are
those of any minion. Its work runs in *turns*: each turn is one message it sends itself, so
a stop, a restart or a shutdown is handled between two turns and never waits for the source.
A turn does one of three things, in this order:

1. deliver what is left of the current batch (a subscriber's bounded mailbox was full: an
   event only goes to a mailbox with room, so a turn never waits in a send; the next turn
   looks again, and the time until there is room counts as back-pressure; nothing is
   dropped and nothing is buffered beyond the one batch);
2. wait (at most ``max_wait`` seconds per turn) until every subscriber has *handled* the
   batch, then commit the batch's position (the snapshot after this turn persists it,
   before the next ``produce()`` can crash);
3. call :meth:`Pipeline.produce` for the next batch. No events: the next turn comes after
   ``poll_interval`` seconds (a poll); events: the next turn comes at once.

Delivery is at least once: the committed position only moves past events every subscriber
has handled, and a subscriber's own snapshot for an event is queued before the pipeline's
position (one writer, in order), so after a crash, a restart or ``kill -9`` the pipeline
resumes at its last committed position and may deliver the events after it again.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING, Any, ClassVar

from minions_actors.errors import AskTimeout, MailboxFull, MinionStopped, PipelineError
from minions_actors.runtime.extensions import WORKFLOWS, used_by
from minions_actors.runtime.mailbox import RuntimeMessage
from minions_actors.runtime.minion import Minion

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.ref import MinionRef

__all__ = ["Batch", "Pipeline", "PipelineError"]

_generations = itertools.count(1)
_RETRY_FULL = 0.02  # seconds before another look at a full mailbox (a stop waits at most that)
_SLOW_SEND = 0.001  # a send that took longer waited for room (another sender filled it)
_ROOM_RECHECK = 0.02  # a turn at least this often while waiting for workflow room


@dataclass(frozen=True)
class Batch:
    """What :meth:`Pipeline.produce` returns: ``events`` and the ``position`` just after
    them (JSON data: an offset, a cursor, a last id)."""

    events: Sequence[Any]
    position: Any


class _Turn(RuntimeMessage):
    """The message a pipeline sends itself; like the runtime's own messages it never waits
    for room in the pipeline's bounded mailbox (it reaches ``on_receive``, though)."""

    __slots__ = ("generation",)

    def __init__(self, generation: int) -> None:
        self.generation = generation

    def __repr__(self) -> str:
        return "<pipeline turn>"


def _turn_later(cell: Cell, turn: _Turn) -> None:
    """Timer callback: the next poll, unless the pipeline is stopping meanwhile."""
    if cell.accepting:
        cell.ref.tell(turn)


class Pipeline(Minion):
    """Base class of pipelines: override :meth:`produce` (and :meth:`open`/:meth:`close`
    for the source), list the ``subscribers`` (paths or refs), spawn it like a minion.

    Do not override ``on_start``/``on_stop``/``on_receive``/``snapshot``/``restore``
    without calling ``super()``: the turns and the position live there.
    """

    subscribers: Sequence[str | MinionRef[Any]] = ()
    """Who receives every event, in this order: minion paths (looked up at each start, so
    a restarted subscriber is found again) or refs. Set it on the class or in ``__init__``."""

    poll_interval: ClassVar[float] = 1.0
    """Seconds between two calls of :meth:`produce` when the last one had no events."""

    max_wait: ClassVar[float] = 0.1
    """The longest one turn waits for subscribers to handle a batch before yielding."""

    position: Any = None
    """The committed position: restored after a restart, given to :meth:`open`."""

    # ------------------------------------------------------------------ user hooks
    def open(self, position: Any) -> None:
        """Open the source and seek to ``position`` (None: from the start)."""

    def produce(self) -> Batch | None:
        """Return the next events available now and the position after them (a
        :class:`Batch`), or None when there is nothing. May block briefly (a read with a
        timeout well under ``stop_timeout``). An exception is a crash of the pipeline."""
        raise NotImplementedError(f"{type(self).__name__} must define produce()")

    def close(self) -> None:
        """Close the source (after a stop, and after a crash before the restart)."""

    # ------------------------------------------------------------------ minion hooks
    def snapshot(self) -> Any:
        return {"position": self.position}

    def restore(self, state: Any) -> None:
        self.position = state.get("position") if isinstance(state, dict) else None

    def on_start(self) -> None:
        self._targets = [self._resolve(s) for s in self.subscribers]
        if not self._targets:
            raise PipelineError(f"pipeline {self.path!r} has no subscribers: set "
                                "subscribers = [paths or refs] on the class or in __init__")
        self._outbox: deque[tuple[MinionRef[Any], Any, bool]] = deque()
        self._acks: list[Any] = []
        self._pending: Any = self.position
        self._blocked_at: float | None = None
        self._room_wake = self._room_recheck = False  # a wake-up for workflow room is set
        metrics = self.system.metrics
        self._series = None if metrics is None else metrics.extensions.pipeline(self.path)
        self.open(self.position)
        self._generation = next(_generations)  # turns of an older incarnation are ignored
        self._next_turn(0.0)

    def on_stop(self) -> None:
        self.close()

    def on_failure(self, *exc_info: Any) -> None:
        self.close()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, _Turn):
            if message.generation == self._generation:
                self._turn()
            return None
        return super().on_receive(message)

    # ------------------------------------------------------------------ turns
    def _turn(self) -> None:
        if self._minion_cell.stop_pending:  # a stop or a shutdown is next: nothing more
            return
        if self._outbox and not self._deliver():
            return
        if self._acks:
            if not self._handled(perf_counter() + self.max_wait):
                self._next_turn(0.0)
            elif self._skipped():  # answered after a dropped backlog: no proof
                self._next_turn(_RETRY_FULL)  # (this pipeline's own halt comes next)
            else:
                # every subscriber handled the batch: commit its position in a turn of its
                # own, so the snapshot after it keeps the commit even if produce() crashes
                self._acks = []
                self.position = self._pending
                self._next_turn(0.0)
            return
        batch = self._produce()
        if batch is None or not batch.events:
            if batch is not None:
                self.position = self._pending = batch.position
            self._next_turn(self.poll_interval)
            return
        self._pending = batch.position
        last = len(batch.events) - 1
        for i, event in enumerate(batch.events):
            for target in self._targets:
                self._outbox.append((target, event, i == last))
        if self._series is not None:
            self._series[0].inc(len(batch.events))
        if self._deliver():
            self._next_turn(0.0)

    def _produce(self) -> Batch | None:
        try:
            batch = self.produce()
        except Exception:
            if self._series is not None:
                self._series[1].inc()
            raise
        if batch is not None and not isinstance(batch, Batch):
            raise TypeError(f"{type(self).__name__}.produce() must return a Batch or None, "
                            f"got {type(batch).__name__}")
        return batch

    def _deliver(self) -> bool:
        """Hand the outbox over, never waiting in a send: an event goes only to a mailbox
        with room, and when one is full the next turn tries again, so a stop is handled in
        between however slow the subscriber. The last event of a batch is asked (its answer
        says the subscriber handled everything before it). False when a mailbox was full."""
        outbox = self._outbox
        while outbox:
            if self._minion_cell.stop_pending:  # what is not handed over stays uncommitted
                return False
            target, event, last = outbox[0]
            if target._cell.closing:  # a shutdown halted it: it drops what it has queued
                self._next_turn(_RETRY_FULL)  # of the batch, so nothing after that either
                return False  # (handled after a dropped one, an event would skip it)
            if not target.is_alive():
                raise PipelineError(f"subscriber {target.path!r} of pipeline {self.path!r} "
                                    "stopped for good; the pipeline restarts and looks it up")
            t0 = perf_counter()
            if not self._workflow_room(target):
                self._waited(t0, keep=True)
                return False
            if _full(target) or not self._send(target, event, last):
                self._waited(t0, keep=True)
                self._next_turn(_RETRY_FULL)
                return False
            self._waited(t0, keep=False)
            outbox.popleft()
        return True

    def _workflow_room(self, target: MinionRef[Any]) -> bool:
        """False while ``target``'s workflows and the messages waiting in its mailbox (each
        may start one) reach its ``max_workflows_in_flight``: the back-pressure covers the
        workflows' completion, not only their start. A turn comes when one ends (and at
        least every ``_ROOM_RECHECK`` seconds: the mailbox may drain without one ending)."""
        theirs = target._cell  # the subscriber's workflows, if any, are one of its parts
        intake = getattr(theirs.parts.get(WORKFLOWS), "intake", None)
        if intake is None:  # none, or not attached yet (its first incarnation is under way)
            if all(extension.key != WORKFLOWS for extension in used_by(theirs.cls)):
                return True
        elif intake.has_room(_queued(target)):
            return True
        cell, turn = self._minion_cell, _Turn(self._generation)
        if intake is not None and not self._room_wake:
            self._room_wake = True

            def wake() -> None:
                self._room_wake = False
                _turn_later(cell, turn)

            if intake.when_room(wake):  # only the mailbox is full: the recheck comes
                self._room_wake = False
        if not self._room_recheck:  # the subscriber may stop for good meanwhile
            self._room_recheck = True

            def recheck() -> None:
                self._room_recheck = False
                _turn_later(cell, turn)

            self.system.timer.call_later(_ROOM_RECHECK, recheck)
        return False

    def _send(self, target: MinionRef[Any], event: Any, last: bool) -> bool:
        """False when the mailbox refused (another sender took the room meanwhile)."""
        try:
            if last:
                self._acks.append(target.ask(event, block=False))
            else:
                target.tell(event)
        except MailboxFull:
            return False
        return True

    def _waited(self, t0: float, *, keep: bool) -> None:
        """Count the time spent waiting for room: since the wait began (a full mailbox in an
        earlier turn) or, for a send that had to wait itself, since ``t0``. ``keep``: the
        mailbox is still full, the wait goes on."""
        now = perf_counter()
        start = self._blocked_at
        if start is None and (keep or now - t0 > _SLOW_SEND):
            start = t0
        if start is not None and self._series is not None:
            self._series[2].inc(max(0.0, now - start))
        self._blocked_at = now if keep else None

    def _handled(self, deadline: float) -> bool:
        """True once every subscriber answered the last ask of the batch (a subscriber that
        crashed on it answered too: its supervisor has the event, not the pipeline). An
        ask answered :class:`MinionStopped` was dropped unhandled (a stop, a shutdown's
        halt): the batch is not committed, and delivered again after the restart."""
        for future in self._acks:
            try:
                future.get(timeout=max(0.0, deadline - perf_counter()))
            except AskTimeout:
                return False
            except MinionStopped:
                if self._minion_cell.stop_pending or self._halted():  # a stop is next:
                    return False  # nothing committed
                raise PipelineError(
                    f"a subscriber of pipeline {self.path!r} stopped before it handled the "
                    "batch; the pipeline restarts and delivers it again") from None
            except Exception:
                pass
        return True

    def _halted(self) -> bool:
        """A shutdown halted a subscriber: it drops the backlog queued before its halt's
        mark and still handles what minions send after it, so a batch's events may straddle
        the mark (those before it dropped) and the pipeline sends it nothing more."""
        return any(target._cell.closing for target in self._targets)

    def _skipped(self) -> bool:
        """A halted subscriber dropped a backlog: the batch's last event, answered, may have
        come after its halt's mark and the events before it (the backlog) were not handled.
        (Answered before the drop, the last event was before the mark: none skipped.)"""
        return any(target._cell.closing and target._cell._halt_dropped[0]
                   for target in self._targets)

    def _next_turn(self, delay: float) -> None:
        turn = _Turn(self._generation)
        if delay <= 0:
            self.ref.tell(turn)
        else:
            cell = self._minion_cell
            self.system.timer.call_later(delay, lambda: _turn_later(cell, turn))

    def _resolve(self, subscriber: str | MinionRef[Any]) -> MinionRef[Any]:
        path = subscriber if isinstance(subscriber, str) else subscriber.path
        ref = self.system.find(path)
        if ref is None:
            raise PipelineError(f"subscriber {path!r} of pipeline {self.path!r} is not "
                                "running; spawn it before the pipeline (the pipeline's "
                                "supervisor retries with backoff)")
        return ref


def _queued(target: MinionRef[Any]) -> int:
    box: Any = target.actor_inbox
    return int(box.qsize())


def _full(target: MinionRef[Any]) -> bool:
    """A bounded mailbox without room: a send would wait in the put, where no stop is seen
    (runtime messages in it count too: they are handled at once, so it errs on waiting)."""
    box: Any = target.actor_inbox  # the minion's Mailbox (pykka types it as its own inbox)
    size = getattr(box, "size", None)
    return size is not None and box.qsize() >= size
