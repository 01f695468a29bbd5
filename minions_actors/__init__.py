"""minions_actors: supervised, persistent actors for long-lived single-process Python systems.

Subclass :class:`Minion`, start everything with :meth:`ActorSystem.start`, and talk to minions
with ``tell``, ``ask`` and proxies. Gru, the root minion, supervises them with Erlang/OTP-style
strategies; state snapshots survive crashes and process restarts in SQLite.
"""

from __future__ import annotations

from minions_actors.errors import (
    AskDeadlock,
    AskTimeout,
    ChildProcessCrashed,
    DuplicateName,
    MailboxFull,
    MessageRefused,
    MetricsPortInUse,
    MinionNotFound,
    MinionsError,
    MinionStopped,
    PlacementError,
    RayActorLost,
    SnapshotError,
    SpawnError,
    StateStoreError,
    SupervisorGaveUp,
    SystemAlreadyRunning,
    SystemNotRunning,
    UnpicklableMessage,
)
from minions_actors.observability.hooks import Hooks
from minions_actors.pipelines import AsyncPipeline, Batch, FileTail, Pipeline, PipelineError
from minions_actors.placement import ChildProcess, KeyedGroup, Placement, Ray
from minions_actors.resources import Resource, ResourceError, ResourceUnavailable, uses
from minions_actors.runtime import snapshots as _snapshots  # noqa: F401  # registers snapshots
from minions_actors.runtime.minion import Gru, Minion, Terminated
from minions_actors.runtime.proxy import MinionProxy
from minions_actors.runtime.receive_timeout import ReceiveTimeout
from minions_actors.runtime.ref import MinionFuture, MinionRef
from minions_actors.runtime.supervision import (
    Backoff,
    OneForAll,
    OneForOne,
    RestartType,
    RestForOne,
    Strategy,
)
from minions_actors.runtime.timers import TimerScheduler
from minions_actors.sidecar import Sidecar, SidecarCrashed, SidecarError
from minions_actors.system import ActorSystem
from minions_actors.workflows import (
    AbortWorkflow,
    Retry,
    Sleep,
    StartWorkflow,
    WaitSignal,
    Workflow,
    WorkflowCancelled,
    WorkflowError,
    WorkflowInfo,
    WorkflowTimeout,
)

__version__ = "0.1.0"

__all__ = [
    "AbortWorkflow",
    "ActorSystem",
    "AskDeadlock",
    "AskTimeout",
    "AsyncPipeline",
    "Backoff",
    "Batch",
    "ChildProcess",
    "ChildProcessCrashed",
    "DuplicateName",
    "FileTail",
    "Gru",
    "Hooks",
    "KeyedGroup",
    "MailboxFull",
    "MessageRefused",
    "MetricsPortInUse",
    "Minion",
    "MinionFuture",
    "MinionNotFound",
    "MinionProxy",
    "MinionRef",
    "MinionStopped",
    "MinionsError",
    "OneForAll",
    "OneForOne",
    "Pipeline",
    "PipelineError",
    "Placement",
    "PlacementError",
    "Ray",
    "RayActorLost",
    "ReceiveTimeout",
    "Resource",
    "ResourceError",
    "ResourceUnavailable",
    "RestForOne",
    "RestartType",
    "Retry",
    "Sidecar",
    "SidecarCrashed",
    "SidecarError",
    "Sleep",
    "SnapshotError",
    "SpawnError",
    "StartWorkflow",
    "StateStoreError",
    "Strategy",
    "SupervisorGaveUp",
    "SystemAlreadyRunning",
    "SystemNotRunning",
    "Terminated",
    "TimerScheduler",
    "UnpicklableMessage",
    "WaitSignal",
    "Workflow",
    "WorkflowCancelled",
    "WorkflowError",
    "WorkflowInfo",
    "WorkflowTimeout",
    "__version__",
    "uses",
]
