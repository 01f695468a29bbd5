"""Steps that wait: :class:`Sleep` (a durable timer) and :class:`WaitSignal` (a named signal
with an optional timeout), declared in a :class:`~minions_actors.Workflow` beside method
names, and the messages that reach a waiting workflow (a signal, a cancel)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from minions_actors.errors import WorkflowError
from minions_actors.runtime.mailbox import RuntimeMessage


def check_seconds(value: Any, what: str) -> float:
    """``value`` as a delay in seconds, or ValueError: a finite number >= 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} must be a number of seconds, got {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{what} must be a finite number of seconds >= 0, got {value!r}")
    return seconds


@dataclass(frozen=True)
class Sleep:
    """A step that waits ``seconds`` (or as many seconds as ``context[seconds]`` holds, when
    a str) without holding a thread; a restart resumes the wait with the time left."""

    seconds: float | str

    def __post_init__(self) -> None:
        if isinstance(self.seconds, str):
            if not self.seconds:
                raise ValueError("Sleep takes seconds or a non-empty context key")
        else:
            object.__setattr__(self, "seconds", check_seconds(self.seconds, "Sleep seconds"))

    @property
    def name(self) -> str:
        if isinstance(self.seconds, str):
            return f"sleep context[{self.seconds!r}]"
        return f"sleep {self.seconds:g}s"

    def duration(self, context: dict[str, Any]) -> float:
        """How long this sleep lasts for ``context`` (WorkflowError when its key is bad)."""
        if not isinstance(self.seconds, str):
            return self.seconds
        try:
            return check_seconds(context.get(self.seconds), f"context[{self.seconds!r}]")
        except ValueError as exc:
            raise WorkflowError(f"{self.name}: {exc}") from None


@dataclass(frozen=True)
class WaitSignal:
    """A step that waits for the signal ``signal`` (``system.signal_workflow``) for at most
    ``timeout`` seconds (None: for ever). Then ``context[key]`` (``key`` defaults to the
    signal's name) is ``{"payload": ..., "timed_out": False}`` or, after the timeout,
    ``{"payload": None, "timed_out": True}``; the next step decides what to do."""

    signal: str
    timeout: float | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.signal, str) or not self.signal:
            raise ValueError(f"WaitSignal needs a signal name (a non-empty str), "
                             f"got {self.signal!r}")
        if self.timeout is not None:
            object.__setattr__(self, "timeout", check_seconds(self.timeout, "WaitSignal timeout"))
        if self.key is not None and (not isinstance(self.key, str) or not self.key):
            raise ValueError(f"WaitSignal key must be a non-empty str, got {self.key!r}")

    @property
    def name(self) -> str:
        return f"signal {self.signal}"

    @property
    def into(self) -> str:
        return self.key or self.signal


#: a step that waits, as declared
WaitStep = Sleep | WaitSignal


class SignalArrived(RuntimeMessage):
    """Internal: a signal for ``workflow_id`` is in the store's inbox."""

    __slots__ = ("workflow_id",)

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id


class CancelWorkflow(RuntimeMessage):
    """Internal: cancel ``workflow_id`` (told from the inbox, asked by the API)."""

    __slots__ = ("by", "workflow_id")

    def __init__(self, workflow_id: str, by: str) -> None:
        self.workflow_id = workflow_id
        self.by = by
