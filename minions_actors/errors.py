"""Every exception minions_actors raises, in one place, each with a message that says what to do."""

from __future__ import annotations

import pykka


class MinionsError(Exception):
    """Base class of all minions_actors errors."""


class SystemAlreadyRunning(MinionsError):
    """A second :class:`ActorSystem` was started while one is running in this process."""


class SystemNotRunning(MinionsError):
    """An operation needs a running :class:`ActorSystem` (none was started, or it stopped)."""


class MinionNotFound(MinionsError, LookupError):
    """No live minion has the given path."""


class MinionStopped(MinionsError, pykka.ActorDeadError):
    """The minion was stopped, so an ``ask`` or proxy call cannot be answered."""


class AskTimeout(MinionsError, TimeoutError, pykka.Timeout):
    """An ``ask`` got no answer in time; the message names the minion and the timeout."""


class MailboxFull(MinionsError):
    """A bounded mailbox stayed full; see ``mailbox_size`` and ``mailbox_overflow``."""


class SpawnError(MinionsError, TypeError):
    """``spawn`` was called with arguments that cannot construct the minion class."""


class DuplicateName(MinionsError, ValueError):
    """A sibling with the same name is already alive under the same parent."""


class SupervisorGaveUp(MinionsError):
    """A supervisor exceeded its restart intensity and escalated to its own supervisor."""


class SnapshotError(MinionsError, TypeError):
    """``snapshot()`` returned something that cannot be stored as JSON."""


class StateStoreError(MinionsError):
    """The state store cannot be opened or written; the message names the file."""


class MetricsPortInUse(MinionsError, OSError):
    """The Prometheus endpoint could not bind its port because something else holds it."""


class StateStoreCorrupt(StateStoreError):
    """The state-store file is not a SQLite database or is damaged; move it away or restore it."""


class StateStoreReadOnly(StateStoreError, PermissionError):
    """The state-store file or its directory cannot be written by this process."""


class StateStoreLocked(StateStoreError):
    """Another process or connection holds the database's write lock."""


class StateStoreFull(StateStoreError):
    """The disk (or the store's ``max_size_bytes`` cap) is full, so snapshots cannot be written."""


class StateStoreWriteFailed(StateStoreError):
    """A sync-mode write was not committed (its commit failed or took longer than
    ``sync_timeout``), so the message that made it is not acknowledged: the asker gets this
    error and the minion is rolled back to its stored state (a crash, then a restart)."""


class StateStoreClosed(StateStoreError):
    """The state store was closed; open a new one to save again."""


class WorkflowRecordNotFound(StateStoreError, KeyError):
    """No workflow record with the given id is in the state store."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class WorkflowStatusConflict(StateStoreError, ValueError):
    """The workflow record's status does not allow the operation (e.g. retrying a running one)."""
