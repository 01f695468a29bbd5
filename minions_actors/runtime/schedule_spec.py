"""Durable schedules' definitions and their arithmetic: checking what a minion asks for,
when a single, periodic or cron schedule is next due, and which fires the missed-fire policy
delivers when slots passed while the schedule was not armed (the process was down, the
minion stopped or restarting) or while the minion was busy.

Times are wall-clock unix seconds (``time.time()``): a monotonic clock does not survive the
process. Cron expressions are read by cronsim (Debian cron's semantics, DST included), in
the schedule's IANA time zone (``zoneinfo``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from minions_actors.runtime.snapshots import to_json
from minions_actors.runtime.timers import check_seconds as check_seconds

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from cronsim import CronSim

Missed = Literal["once", "skip", "catch_up"]
MISSED: tuple[str, ...] = ("once", "skip", "catch_up")
#: catch_up's default bound: at most this many missed fires are delivered at once
MAX_CATCH_UP = 10
_EPS = 1e-6  # (cron slots are whole seconds; a float clock may sit a hair before one)


@dataclass(frozen=True)
class Spec:
    """One schedule's definition (what ``start_*`` was given), stored as JSON."""

    kind: str  # "single", "periodic" or "cron"
    message: Any  # a JSON value (a workflow schedule: None)
    seconds: float = 0.0  # single: the delay; periodic: the interval
    first: float = 0.0  # periodic: the delay of the first fire
    cron: str | None = None
    tz: str = "UTC"
    missed: str = "once"
    max_catch_up: int = MAX_CATCH_UP
    workflow: str | None = None  # a scheduled workflow: the workflow's name
    context: dict[str, Any] | None = None  # and the context it starts with

    def as_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}

    @classmethod
    def of(cls, data: dict[str, Any]) -> Spec:
        return cls(**{f: data[f] for f in cls.__dataclass_fields__ if f in data})


def check_key(what: str, key: object) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"{what}: a durable schedule's key is a non-empty str (it is stored), "
                        f"got {key!r}")
    return key


def check_message(what: str, message: object) -> None:
    """The message is stored: it must come back from JSON unchanged."""
    problem = to_json(message)[1]
    if problem is not None:
        where, kind = problem
        raise TypeError(f"{what}: the message is stored as JSON and cannot be at {where!r} "
                        f"({kind}); use dicts with str keys, lists, str, numbers, bool, None")


def check_policy(what: str, missed: object, max_catch_up: object) -> None:
    if missed not in MISSED:
        raise ValueError(f"{what}: missed must be one of {', '.join(map(repr, MISSED))}, "
                         f"got {missed!r}")
    if isinstance(max_catch_up, bool) or not isinstance(max_catch_up, int) or max_catch_up < 1:
        raise ValueError(f"{what}: max_catch_up must be an int >= 1, got {max_catch_up!r}")


def check_cron(what: str, expr: object, tz: object, now: float) -> None:
    """A clear error for an expression cronsim refuses, an unknown zone, or one that never
    fires; nothing is changed by the caller then."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from cronsim import CronSimError

    if not isinstance(tz, str) or not tz:
        raise TypeError(f"{what}: tz is an IANA time zone name such as 'Europe/Paris' or "
                        f"'UTC', got {tz!r}")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{what}: unknown time zone {tz!r}: use an IANA name such as "
                         f"'Europe/Paris' or 'UTC' (the tz database: tzdata)") from exc
    if not isinstance(expr, str):
        raise TypeError(f"{what}: a cron expression is a str, got {expr!r}")
    try:
        it = _cron(expr, datetime.fromtimestamp(now, zone))
        next(it)
    except CronSimError as exc:
        raise ValueError(f"{what}: invalid cron expression {expr!r}: {exc} (five fields "
                         "'minute hour day month weekday', or six with seconds first)") from exc
    except StopIteration:
        raise ValueError(f"{what}: the cron expression {expr!r} never fires in the next "
                         "50 years") from None


def first_due(spec: Spec, now: float) -> float | None:
    """When a schedule started at ``now`` is first due (None: a cron that never fires)."""
    if spec.kind == "single":
        return now + spec.seconds
    if spec.kind == "periodic":
        return now + spec.first
    return _cron_after(spec, now)


def zone(spec: Spec) -> ZoneInfo:
    """The schedule's time zone (UTC for single and periodic ones)."""
    from zoneinfo import ZoneInfo  # (here: a start without cron schedules never needs it)

    return ZoneInfo(spec.tz)


def _cron(expr: str, start: datetime, reverse: bool = False) -> CronSim:
    """cronsim's iterator over ``expr``'s slots; cronsim is imported at the first cron
    schedule, not at start-up."""
    from cronsim import CronSim

    return CronSim(expr, start, reverse=reverse)


def _cron_after(spec: Spec, t: float) -> float | None:
    try:
        return next(_cron(spec.cron or "", datetime.fromtimestamp(t, zone(spec)))).timestamp()
    except StopIteration:
        return None


def _cron_newest(spec: Spec, since: float, now: float, limit: int) -> list[float]:
    """The newest ``limit`` cron slots in ``[since, now]``, newest first."""
    found: list[float] = []
    it = _cron(spec.cron or "", datetime.fromtimestamp(now + _EPS, zone(spec)), reverse=True)
    for slot in it:
        t = slot.timestamp()
        if t < since - _EPS or len(found) >= limit:
            break
        found.append(t)
    return found


def _periodic_newest(spec: Spec, since: float, now: float, limit: int
                     ) -> tuple[list[float], float]:
    """The newest ``limit`` slots in ``[since, now]`` (newest first) and the next after now."""
    step = spec.seconds
    count = math.floor((now - since) / step) + 1 if now >= since else 0
    latest = since + (count - 1) * step
    newest = [latest - i * step for i in range(min(count, limit))]
    return newest, (latest + step if count else since)


@dataclass(frozen=True)
class Due:
    """What one wake-up of a schedule delivers: its fires (slot times, oldest first), how
    many slots were dropped by the policy (at least), and when it is due next (None: done)."""

    fires: list[float]
    dropped: int
    next_due: float | None


def due(spec: Spec, next_due: float, now: float, armed_at: float) -> Due:
    """The fires of a schedule due at ``next_due`` woken at ``now``, by its ``missed``
    policy. A slot is missed when it passed before this incarnation armed the schedule
    (``armed_at``: downtime) or when a newer slot is due as well (a busy minion)."""
    limit = spec.max_catch_up if spec.missed == "catch_up" else 1
    if spec.kind == "single":
        slots, after = ([next_due] if next_due <= now + _EPS else []), None
    elif spec.kind == "periodic":
        slots, after_p = _periodic_newest(spec, next_due, now, limit + 1)
        after = after_p
    else:
        slots = _cron_newest(spec, next_due, now, limit + 1)
        after = _cron_after(spec, now) if slots else next_due
    if not slots:
        return Due([], 0, next_due)
    on_time = slots[0] >= armed_at - _EPS
    if spec.missed == "skip" and not on_time:
        return Due([], len(slots), after)
    fires = list(reversed(slots[:limit]))
    return Due(fires, len(slots) - len(fires), after)
