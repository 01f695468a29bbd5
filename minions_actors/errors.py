"""Every exception minions_actors raises, in one place, each with a message that says what to do."""

from __future__ import annotations

import threading
from typing import Any

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


class AskDeadlock(MinionsError, RuntimeError):
    """A minion waited for its own reply (``ask`` or a future's ``get`` on its own thread),
    or its wait would close an ask cycle (``a`` asks ``b``, whose handler asks ``a``, or
    longer): the reply could only come after the waiting handler returns, so the wait is
    refused at once, whatever its timeout, in the minion that would close the cycle. Also
    a blocking ``ask``, ``get``, ``stop`` or ``shutdown`` on the event loop that runs the
    async minions, when what it waits for needs that loop."""


class CancelSwallowed(MinionsError):
    """An async minion's coroutine went on after a stop or restart cancelled it (it caught
    ``asyncio.CancelledError``); reported as a warning through ``lifecycle_error``."""


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


# ---- workflows (re-exported by minions_actors.workflows)
class AbortWorkflow(Exception):
    """Raise inside a step to end the workflow cleanly with status ``"aborted"``."""


class WorkflowError(MinionsError):
    """A workflow request that cannot be honoured (unknown name, id, or wrong status)."""


class WorkflowTimeout(WorkflowError, TimeoutError):
    """``wait_workflow`` gave up: the workflow was still running when the timeout passed."""


class WorkflowCancelled(WorkflowError):
    """The workflow was cancelled (``system.cancel_workflow`` or the CLI): given to the
    ``workflow_finished`` hook and logged; its record is ``cancelled`` with ``cancelled_by``."""


# ---- sidecars (re-exported by minions_actors.sidecar)
class ResourceError(MinionsError):
    """A resource is not registered, or could not be opened: the minions that need it do
    not start (a crash in phase ``init``, handled by their supervisor's strategy)."""


class ResourceUnavailable(ResourceError):
    """A call reached a resource that is closed, or reopening after a failed health check."""


class PipelineError(MinionsError):
    """A pipeline cannot run: no subscribers, or a subscriber that is not (or no longer)
    running. Raised in the pipeline, so it is a crash its supervisor handles."""


class SidecarError(MinionsError):
    """A sidecar call failed without the child dying: something could not be pickled, the
    function raised an exception that cannot be pickled, or the target could not be loaded
    in the child. The message says which."""


class MessageRefused(MinionsError):
    """A minion refused a message before any handler saw it, because of the message itself
    (a placed minion's message that cannot be pickled): the sender's error, not the
    minion's. An ``ask`` (or proxy call) raises it; a told message is a dead letter,
    logged at WARNING. The minion runs on: it is not a crash."""


class UnpicklableMessage(MessageRefused, SidecarError):
    """A message, or a proxy call's arguments, for a minion placed in another process
    cannot be pickled (a lambda, a lock, an open file...); the text names its type."""



class RefusedUnsent(UnpicklableMessage):
    """The one refusal the cell takes as the sender's error: raised by the runtime itself
    (a placed minion's stand-in) before the message was sent or any handler ran. A
    :class:`MessageRefused` that a handler raises, or a remote handler's own re-raised at
    home, is a crash of that minion like any other exception. Catch
    :class:`UnpicklableMessage`: this class is how the runtime tells the two apart."""

class SidecarCrashed(SidecarError):
    """The sidecar's child process died (segfault, ``os._exit``, OOM kill...) or did not
    answer within ``call_timeout`` and was killed.

    Raised in the sidecar minion, so it is a crash: the supervisor restarts the minion,
    which starts a fresh process. ``pid`` and ``exitcode`` (negative: the signal number, as
    in :attr:`multiprocessing.Process.exitcode`; None when it had to be killed) say which
    process ended and how.
    """

    def __init__(
        self, message: str, *, target: str = "", pid: int | None = None,
        exitcode: int | None = None,
    ) -> None:
        super().__init__(message)
        self.target = target
        self.pid = pid
        self.exitcode = exitcode

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_crashed,
                (str(self), self.target, self.pid, self.exitcode, type(self)))


class PlacementError(MinionsError):
    """A placement (``spawn(..., placement=...)``) cannot be used as asked: an option is
    wrong, an optional dependency is missing, or placed code used something that stays in
    the home process (``self.spawn``, ``self.system``...)."""


class ChildProcessCrashed(SidecarCrashed):
    """The child process of a minion placed with ``placement=ChildProcess()`` died or timed
    out. A :class:`SidecarCrashed` (a sidecar is the function-shaped case of the same
    mechanism), so one ``except`` covers both."""


class RemoteTraceback(Exception):
    """Carries the child's formatted traceback as the ``__cause__`` of a re-raised error."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f"\n\nTraceback in the process that ran it:\n{self.text}"


class SnapshotFailed(MinionsError):
    """``snapshot()`` raised where the code runs; re-raised at home by the stand-in's
    ``snapshot()`` so the snapshotter reports it as for a local minion."""


class RayActorLost(MinionsError):
    """The Ray actor of a minion placed with ``placement=Ray(...)`` died (``RayActorError``:
    the actor process or its node is gone), timed out or was abandoned at a stop. A crash
    of the minion: its supervisor restarts it as a new actor with its last snapshot."""


class StillRunning(TimeoutError):
    """A user's call the runtime bounds (a resource's ``open()`` or ``close()``) did not
    return within its bound; it is left running on its daemon thread (``thread``). Its text
    is the runtime's own, safe to log, unlike what the call itself may raise."""

    thread: threading.Thread | None = None


class RestartedByObserver(MinionsError):
    """The crash an operator asked for with the restart button of the observer page: the
    minion's supervisor then applies its strategy, as to any crash."""


def _rebuild_crashed(
    message: str, target: str, pid: int | None, exitcode: int | None,
    cls: type[SidecarCrashed] = SidecarCrashed,
) -> SidecarCrashed:
    return cls(message, target=target, pid=pid, exitcode=exitcode)
