"""Durable schedules of persistent minions (``self.schedules``): timers that survive a
restart and the process's death, stored beside the minion's snapshot in the state store.

Each schedule is one row of the store (``minion_schedules``: path, key, definition, next
due time), written by the store's writer in the same batches as snapshots: one row write
when it is started, one per wake-up that fires (or skips), one when it is cancelled. The
part (:class:`Schedules`) is attached to every persistent minion's cell at its first
incarnation and re-arms the stored rows at each incarnation, so schedules fire again after
a restart, a stop and a new spawn of the same path, or a new process. When a row's time is
reached, a :class:`ScheduleEntry` goes through the timer thread into the mailbox (a runtime
message); delivering it runs the handler for each fire the ``missed`` policy gives
(:mod:`.schedule_spec`), then queues the row's new next due time, in the same transaction as
the snapshot of that handler (``store.batch()``), so a ``kill -9`` never keeps one without
the other. A handler that raises still consumes its fire (as a message that crashed a
minion is not delivered again).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

from minions_actors.errors import MinionsError
from minions_actors.runtime import schedule_spec as sp
from minions_actors.runtime.extensions import Handler, part_of, register
from minions_actors.runtime.mailbox import RuntimeMessage
from minions_actors.runtime.scheduled_workflows import slot_workflow_id as slot_workflow_id
from minions_actors.runtime.scheduled_workflows import start_slot_workflow, workflow_names
from minions_actors.runtime.snapshots import is_persistent
from minions_actors.runtime.timers import tell
from minions_actors.support.timer import Cancellable

if TYPE_CHECKING:
    import contextlib

    from minions_actors.records import StoredSchedule
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion

SCHEDULES = "schedules"  # the part's key in ``cell.parts``
_RETRY = 1.0  # seconds before a scheduled workflow whose start failed is tried again


class ScheduleStore(Protocol):
    """What the part needs of the state store (``persistence.ScheduleStore``)."""

    def save_schedule(self, path: str, key: str, minion_class: str | None,
                      spec_json: str | None, next_due: float = 0.0) -> None: ...

    def schedules(self, path: str | None = None) -> list[StoredSchedule]: ...

    def batch(self) -> contextlib.AbstractContextManager[None]: ...


@dataclass(frozen=True)
class Fire:
    """The fire being handled (``self.schedules.firing``): its schedule's key, the slot it
    is for (an aware datetime in the schedule's zone; UTC for single and periodic ones) and
    how late it is handled (seconds)."""

    key: str
    slot: datetime
    late: float


@dataclass
class _Row:
    spec: sp.Spec
    text: str  # the definition as stored (compared when the key is started again)
    next_due: float
    retry: float = 0.0  # a workflow start failed: the least delay before the next try


class ScheduleEntry(Cancellable, RuntimeMessage):
    """One armed schedule: on the timer thread's heap, then (when due) in the mailbox."""

    __slots__ = ("incarnation", "key", "owner", "pending")

    def __init__(self, owner: Schedules, incarnation: int, key: str) -> None:
        self.dead = self.armed = self.pending = False
        self.owner, self.incarnation, self.key = owner, incarnation, key

    def __call__(self) -> None:
        cell = self.owner._cell
        if cell.terminated or cell.incarnation != self.incarnation or self.pending:
            return
        self.pending = True
        cell.inbox.put(self)


class Schedules:
    """A persistent minion's durable schedules (``self.schedules``). Call its methods from
    the minion's own handlers and hooks; each change is queued to the state store at once."""

    __slots__ = ("_armed", "_armed_at", "_cell", "_loaded", "_rows", "_timer", "firing")
    after = None  # (an extension part's: nothing runs after each message)

    def __init__(self, cell: Cell) -> None:
        self._cell = cell
        self._timer = cell.system.timer
        self._rows: dict[str, _Row] = {}
        self._armed: dict[str, ScheduleEntry] = {}
        self._armed_at = 0.0
        self._loaded = False
        self.firing: Fire | None = None

    # ------------------------------------------------------------ the part's hooks
    def incarnation(self, inst: Minion) -> bool:
        """Arm every stored schedule of this path (the first time: read from the store)."""
        store = self._store_or_none()
        if store is None:
            return False
        if not self._loaded:
            self._loaded = True
            for row in store.schedules(self._cell.path):
                try:
                    spec = sp.Spec.of(json.loads(row.spec_json))
                except (ValueError, TypeError) as exc:
                    self._cell.hooks.lifecycle_error(self._cell, exc, "schedule-restore")
                    continue
                self._rows[row.key] = _Row(spec, row.spec_json, row.next_due)
        self._armed_at = time.time()
        for key in self._rows:
            self._arm(key)
        return False

    def ended(self) -> None:
        """A restart or a stop: disarm (the rows stay; the next incarnation arms them)."""
        armed = list(self._armed.values())
        self._armed.clear()
        if armed:
            self._timer.cancel(armed, 0)
            self._timer.count_schedules(-len(armed))

    # ------------------------------------------------------------ the public API
    def start_single(self, key: str, message: Any, delay: float, *,
                     missed: sp.Missed = "once") -> None:
        """Send ``message`` to this minion once, ``delay`` seconds from now, also after a
        restart or a new process (``missed="skip"``: not when it fell due while down)."""
        what = f"schedules.start_single({key!r})"
        seconds = sp.check_seconds(f"{what}: delay", delay, zero=True)
        self._start(what, key, sp.Spec("single", message, seconds=seconds, missed=missed))

    def start_periodic(self, key: str, message: Any, interval: float, *,
                       initial_delay: float | None = None, missed: sp.Missed = "once",
                       max_catch_up: int = sp.MAX_CATCH_UP) -> None:
        """Send ``message`` every ``interval`` seconds (fixed rate: slots at
        ``start + initial_delay + k * interval``), the first after ``initial_delay``
        (default ``interval``). Missed slots follow ``missed`` (see the docs)."""
        what = f"schedules.start_periodic({key!r})"
        step = sp.check_seconds(f"{what}: interval", interval, zero=False)
        first = step if initial_delay is None else sp.check_seconds(
            f"{what}: initial_delay", initial_delay, zero=True)
        self._start(what, key, sp.Spec("periodic", message, seconds=step, first=first,
                                       missed=missed, max_catch_up=max_catch_up))

    def start_cron(self, key: str, message: Any, cron: str, *, tz: str = "UTC",
                   missed: sp.Missed = "once", max_catch_up: int = sp.MAX_CATCH_UP) -> None:
        """Send ``message`` at each time the cron expression ``cron`` matches in time zone
        ``tz`` (an IANA name). An invalid expression or zone is a ``ValueError``."""
        what = f"schedules.start_cron({key!r})"
        sp.check_cron(what, cron, tz, time.time())
        self._start(what, key, sp.Spec("cron", message, cron=cron, tz=tz, missed=missed,
                                       max_catch_up=max_catch_up))

    def start_workflow_cron(self, key: str, workflow: str, cron: str, *, tz: str = "UTC",
                            context: Mapping[str, Any] | None = None,
                            missed: sp.Missed = "once",
                            max_catch_up: int = sp.MAX_CATCH_UP) -> None:
        """Start this minion's workflow ``workflow`` at each time ``cron`` matches, once per
        scheduled time: its id is :func:`slot_workflow_id` (path, key, slot), an idempotency
        key, so a slot fired again after a crash finds its workflow instead of a new one.
        The context is ``context`` plus ``"schedule": {"key", "slot"}`` (ISO time)."""
        from minions_actors.runtime.extensions import Extensions

        what = f"schedules.start_workflow_cron({key!r})"
        sp.check_cron(what, cron, tz, time.time())
        runner = Extensions.workflows
        if runner is None or not runner.used_by(self._cell.cls) or \
                workflow not in workflow_names(self._cell.cls):
            raise ValueError(f"{what}: {self._cell.describe()} declares no workflow "
                             f"{workflow!r}")
        self._start(what, key, sp.Spec("cron", None, cron=cron, tz=tz, missed=missed,
                                       max_catch_up=max_catch_up, workflow=workflow,
                                       context=dict(context or {})))

    def cancel(self, key: str) -> bool:
        """Cancel schedule ``key`` and delete its row; False when there is none."""
        row = self._rows.pop(key, None)
        if row is None:
            return False
        self._disarm(key)
        self._save(key, None)
        return True

    def cancel_all(self) -> None:
        """Cancel every durable schedule of this minion."""
        for key in list(self._rows):
            self.cancel(key)

    def is_active(self, key: str) -> bool:
        return key in self._rows

    def keys(self) -> list[str]:
        """The keys of the stored schedules: those read from the store (by key), then
        those started since, in the order they were first started."""
        return list(self._rows)

    def next_fire(self, key: str) -> datetime | None:
        """When schedule ``key`` is next due (UTC), or None when there is no such key."""
        row = self._rows.get(key)
        return None if row is None else datetime.fromtimestamp(row.next_due, UTC)

    # ------------------------------------------------------------ inside
    def _store(self, what: str) -> ScheduleStore:
        store = self._store_or_none()
        if store is None:
            cell = self._cell
            why = ("it is not persistent (define snapshot() and restore())"
                   if not is_persistent(cell.cls) else "the system has no state store "
                   "(ActorSystem.start(state_store=...)), or the store keeps no schedules")
            raise MinionsError(f"{what}: {cell.describe()} cannot keep durable schedules: "
                               f"{why}; use self.timers for timers that end with the "
                               "incarnation")
        return store

    def _store_or_none(self) -> ScheduleStore | None:
        store = self._cell.system.store
        if store is None or not is_persistent(self._cell.cls) or \
                not callable(getattr(store, "save_schedule", None)):
            return None
        return cast("ScheduleStore", store)

    def _start(self, what: str, key: str, spec: sp.Spec) -> None:
        sp.check_key(what, key)
        sp.check_message(what, spec.message)
        sp.check_policy(what, spec.missed, spec.max_catch_up)
        if spec.context is not None:
            sp.check_message(f"{what} context", spec.context)
        self._store(what)
        text = json.dumps(spec.as_json(), separators=(",", ":"), sort_keys=True)
        old = self._rows.get(key)
        if old is not None and old.text == text:
            return  # the same definition (on_start at each start): its progress is kept
        now = time.time()
        next_due = sp.first_due(spec, now)
        assert next_due is not None  # (check_cron found a slot)
        self._rows[key] = _Row(spec, text, next_due)
        self._save(key, self._rows[key])
        self._disarm(key)
        self._arm(key)

    def _save(self, key: str, row: _Row | None) -> None:
        store = self._store("schedules")
        cell = self._cell
        if row is None:
            store.save_schedule(cell.path, key, None, None)
        else:
            store.save_schedule(cell.path, key, cell.cls_name, row.text, row.next_due)

    def _arm(self, key: str) -> None:
        cell = self._cell
        if cell.terminated:
            return
        entry = ScheduleEntry(self, cell.incarnation, key)
        self._armed[key] = entry
        row = self._rows[key]
        delay, row.retry = max(row.retry, row.next_due - time.time()), 0.0
        self._timer.arm(time.monotonic() + delay, entry)
        self._timer.count_schedules(1)

    def _disarm(self, key: str) -> None:
        entry = self._armed.pop(key, None)
        if entry is not None:
            self._timer.cancel((entry,), 0)
            self._timer.count_schedules(-1)

    def deliver(self, cell: Cell, inst: Minion, entry: ScheduleEntry) -> bool:
        """The entry reached the minion: run each fire its policy gives, then store the
        row's next due time (with the last fire's snapshot); False when the incarnation
        ended."""
        key = entry.key
        if entry.dead or entry.incarnation != cell.incarnation or \
                self._armed.get(key) is not entry:
            return True
        row = self._rows[key]
        now = time.time()
        due = sp.due(row.spec, row.next_due, now, self._armed_at)
        if not due.fires and due.next_due == row.next_due:  # woken early (a clock step)
            entry.pending = False
            self._timer.arm(time.monotonic() + max(0.0, row.next_due - now), entry)
            return True
        self._disarm(key)
        if due.next_due is None:
            del self._rows[key]
        else:
            row.next_due = due.next_due
        ok = self._fire_all(cell, inst, key, row, due)
        if ok and key in self._rows and self._rows[key] is row and key not in self._armed:
            self._arm(key)
        return ok

    def _fire_all(self, cell: Cell, inst: Minion, key: str, row: _Row, due: sp.Due) -> bool:
        """Run the fires; the row's change goes with the last one's snapshot."""
        last = len(due.fires) - 1
        store = self._store("schedules")
        consumed = False

        def consume() -> None:
            nonlocal consumed
            if consumed:
                return
            consumed = True
            now = self._rows.get(key)
            if now is row:  # (a handler that started or cancelled the key saved that)
                self._save(key, row)
            elif now is None and due.next_due is None:
                self._save(key, None)  # a single one, done

        if last < 0 or (_is_async(cell) and row.spec.workflow is None):
            consume()  # (an async handler ends in a later turn: consumed at its start)
        ok = True
        for i, slot in enumerate(due.fires):
            if row.spec.workflow is not None:
                if not start_slot_workflow(cell, inst, key, row.spec, slot,
                                           consume if i == last else None, store):
                    row.next_due, row.retry = slot, _RETRY  # (this time fires again)
                    consumed = True  # (the stored row keeps an earlier time: refires)
                    break
                continue
            self.firing = Fire(key, datetime.fromtimestamp(slot, sp.zone(row.spec)),
                               max(0.0, time.time() - slot))
            self._timer.stats.observe(self.firing.late)
            try:
                ok = self._fire_one(cell, inst, key, row, slot,
                                    consume if i == last else None, store)
            finally:
                self.firing = None
            if not ok:
                break
        consume()  # (a handler that raised: its fire is consumed all the same)
        return ok

    def _fire_one(self, cell: Cell, inst: Minion, key: str, row: _Row, slot: float,
                  consume: Any, store: ScheduleStore) -> bool:
        message = json.loads(json.dumps(row.spec.message))  # (a fresh copy each fire)
        if consume is None:
            return tell(cell, inst, message)
        after = cell.after

        def with_row(inst: Minion) -> None:
            with store.batch():  # the snapshot and the row: one transaction
                if after is not None:
                    after(inst)
                consume()

        cell.after = with_row
        try:
            return tell(cell, inst, message)
        finally:
            cell.after = after


def _is_async(cell: Cell) -> bool:
    return getattr(cell.__class__, "_start", None) is not None


def schedules(cell: Cell) -> Schedules:
    """The cell's durable schedules (attached at the first incarnation of a persistent
    class; attached on use for another, whose calls then raise a clear error)."""
    part: Schedules = part_of(cell, EXTENSION)
    return part


def _deliver(cell: Cell, inst: Minion, entry: ScheduleEntry) -> bool:
    return entry.owner.deliver(cell, inst, entry)


class SchedulesExtension:
    """Attached to persistent classes' cells (their stored schedules are re-armed)."""

    key = SCHEDULES
    told: Mapping[type, Handler] = {ScheduleEntry: _deliver}
    asked: Mapping[type, Handler] = {}

    def used_by(self, cls: type) -> bool:
        return is_persistent(cls)  # type: ignore[arg-type]

    def check_class(self, cls: type) -> None:
        pass

    def attach(self, cell: Cell) -> Schedules:
        return Schedules(cell)


EXTENSION = SchedulesExtension()
register(EXTENSION)
