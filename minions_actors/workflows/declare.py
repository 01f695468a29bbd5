"""Declaring workflows on a minion class: :class:`Workflow` (its steps) and :class:`Retry`
(how a failing step is tried again), checked when the class is created."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from minions_actors.errors import WorkflowError
from minions_actors.runtime.supervision import Backoff
from minions_actors.workflows.waits import Sleep, WaitSignal, WaitStep


@dataclass(frozen=True)
class Retry:
    """How often a failing step is tried, how long to wait between tries, and for which
    exceptions. ``attempts`` counts every try (1 = no retry)."""

    attempts: int = 3
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=0.1, maximum=30.0))
    on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise ValueError(f"Retry attempts must be an int >= 1, got {self.attempts!r}")
        if not isinstance(self.on, tuple) or not all(
            isinstance(c, type) and issubclass(c, BaseException) for c in self.on
        ):
            raise TypeError(f"Retry on= takes a tuple of exception classes, got {self.on!r}")

    def retries(self, exc: BaseException, attempts_so_far: int) -> bool:
        return isinstance(exc, self.on) and attempts_so_far < self.attempts


class Workflow:
    """Declare a workflow on a :class:`~minions_actors.Minion` class.

    ``steps`` are names of the minion's methods, run in order; each takes the context dict
    and may change it in place or return a new dict. A step may also be a :class:`Sleep` or
    a :class:`WaitSignal` (a durable wait). ``retry`` applies to every step unless
    ``step_retry`` names a different policy for a step.
    """

    def __init__(
        self, *steps: str | WaitStep, retry: Retry | None = None,
        step_retry: Mapping[str, Retry] | None = None,
    ) -> None:
        if not steps or not all(
            (isinstance(s, str) and s) or isinstance(s, Sleep | WaitSignal) for s in steps
        ):
            raise ValueError("a Workflow needs one or more steps: method names (str), "
                             "Sleep(...) or WaitSignal(...)")
        #: a waiting step by its index; ``steps`` holds its name (never a method's)
        self.waits: dict[int, WaitStep] = {
            i: s for i, s in enumerate(steps) if isinstance(s, Sleep | WaitSignal)}
        self.steps: tuple[str, ...] = tuple(
            s if isinstance(s, str) else s.name for s in steps)
        self.retry = retry or Retry()
        self.step_retry = dict(step_retry or {})
        unknown = set(self.step_retry) - set(steps)
        if unknown:
            raise ValueError(f"step_retry names steps that are not in the workflow: {unknown}")
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def check(self, owner: type) -> None:
        """Raise TypeError when a step is not a method of ``owner`` (at class creation)."""
        missing = [s for i, s in enumerate(self.steps)
                   if i not in self.waits and not callable(getattr(owner, s, None))]
        if missing:
            raise TypeError(
                f"workflow {owner.__name__}.{self.name} names steps that are not methods of "
                f"{owner.__name__}: {', '.join(missing)}"
            )

    def retry_for(self, step: str) -> Retry:
        return self.step_retry.get(step, self.retry)

    def __repr__(self) -> str:
        return f"Workflow({', '.join(map(repr, self.steps))})"


def workflows_of(cls: type) -> dict[str, Workflow]:
    """The workflows a minion class declares, by name."""
    found: dict[str, Workflow] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Workflow):
                found[name] = value
    return found


def unknown_workflow(describe: str, cls: type, name: str) -> WorkflowError:
    """The error for starting a workflow ``cls`` does not declare, saying why when a method
    of the same name hides it (``charge = Workflow(...)`` then ``def charge``)."""
    known = ", ".join(sorted(workflows_of(cls))) or "none"
    text = f"{describe} has no workflow {name!r} (it declares: {known})"
    if callable(getattr(cls, name, None)):
        text += (
            f"; {cls.__name__}.{name} is a method: if the class body declares "
            f"`{name} = Workflow(...)`, a method named {name!r} defined after it (a step?) "
            f"replaced it. Give the workflow a name that no method uses"
        )
    return WorkflowError(text)
