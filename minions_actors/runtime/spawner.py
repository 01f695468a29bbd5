"""``spawn()``: the one definition of its options, shared by ``Minion.spawn`` (a child),
``ActorSystem.spawn`` (a top-level minion under Gru) and ``runtime.host.SystemAPI``.

The two classes take this function as their method; the protocol copies its signature
(``support.signatures.signature_of``), so that type checkers and the API reference see the
same options everywhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.mailbox import Overflow
    from minions_actors.runtime.minion import Minion
    from minions_actors.runtime.placement import Placement
    from minions_actors.runtime.ref import MinionRef


class Spawns(Protocol):
    """What a class that takes :func:`spawn` as its method provides."""

    def _spawning_cell(self) -> Cell:
        """The cell whose children new minions become (raise when spawning is refused)."""
        ...


def spawn(
    self: Spawns,
    /,
    cls: type[Minion],
    *args: Any,
    name: str | None = None,
    restart: str = "permanent",
    mailbox_size: int | None = None,
    mailbox_overflow: Overflow = "block",
    mailbox_put_timeout: float = 1.0,
    dedicated_thread: bool | None = None,
    placement: Placement | None = None,
    **kwargs: Any,
) -> MinionRef[Any]:
    """Start a minion and return its ref at once: ``system.spawn`` starts a top-level
    minion supervised by Gru, ``self.spawn`` inside a minion a child that this minion
    supervises (its path is ``self.path/name``).

    ``args``/``kwargs`` go to the class's constructor (checked now: a mismatch raises
    :class:`~minions_actors.SpawnError`). The minion is built and started where it runs (a
    pool worker or its dedicated thread); a failure there is a crash handled by its
    supervisor's strategy. ``restart`` is
    ``"permanent"``, ``"transient"`` or ``"temporary"``. ``mailbox_size`` bounds the
    mailbox; when full, ``tell`` waits up to ``mailbox_put_timeout`` seconds
    (``mailbox_overflow="block"``) or fails at once (``"raise"``) with
    :class:`~minions_actors.MailboxFull`. ``dedicated_thread=True`` runs it on a
    thread of its own, ``False`` on the worker pool (default: the class's
    ``dedicated_thread``, else the system's ``execution`` mode). ``placement`` says
    where the minion's code runs: in this process (None, the default) or in a child
    process (:class:`~minions_actors.ChildProcess`, on a dedicated thread here); the
    ref, supervision and state stay here.
    """
    return self._spawning_cell().spawn_child(
        cls, args, kwargs, name=name, restart=restart, mailbox_size=mailbox_size,
        mailbox_overflow=mailbox_overflow, mailbox_put_timeout=mailbox_put_timeout,
        dedicated_thread=dedicated_thread, placement=placement,
    )
