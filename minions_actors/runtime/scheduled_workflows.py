"""Scheduled workflows (``self.schedules.start_workflow_cron``): each scheduled time starts
the minion's workflow once, under an id derived from the time (an idempotency key), with
its start record queued in the same store batch as the schedule's next due time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from minions_actors.runtime.schedule_spec import Spec, zone

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion


def slot_workflow_id(path: str, key: str, slot: float) -> str:
    """The id of the workflow a workflow schedule starts for ``slot`` (unix time): the
    minion's path, the schedule's key and the slot in UTC, e.g.
    ``reports:nightly@2026-12-07T03:00:00Z``."""
    when = datetime.fromtimestamp(round(slot, 3), UTC)
    return f"{path}:{key}@{when.isoformat(timespec='seconds').replace('+00:00', 'Z')}"


def start_slot_workflow(cell: Cell, inst: Minion, key: str, spec: Spec, slot: float,
                         consume: Any, store: Any) -> bool:
    """Start the slot's workflow; its record is queued before the row's change, so the
    row never says "fired" while the workflow is unknown (a refire finds it by id).
    False when the start failed (reported): nothing was consumed, the time fires again."""
    when = datetime.fromtimestamp(slot, zone(spec)).isoformat()
    context = {**(spec.context or {}), "schedule": {"key": key, "slot": when}}
    wid = slot_workflow_id(cell.path, key, slot)
    try:
        with store.batch():
            inst.start_workflow(spec.workflow or "", wid, context)
            if consume is not None:
                consume()
    except Exception as exc:
        cell.hooks.lifecycle_error(cell, exc, "scheduled-workflow")
        return False
    return True


def workflow_names(cls: type) -> set[str]:
    # (the runtime names no workflows class: a declared workflow is a ``Workflow`` attribute)
    return {name for name in dir(cls) if type(getattr(cls, name, None)).__name__ == "Workflow"}
