"""minions_actors: supervised, persistent actors for long-lived single-process Python systems.

Subclass :class:`Minion`, start everything with :meth:`ActorSystem.start`, and talk to minions
with ``tell``, ``ask`` and proxies. Gru, the root minion, supervises them with Erlang/OTP-style
strategies; state snapshots survive crashes and process restarts in SQLite.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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
from minions_actors.pipelines import Batch, Pipeline, PipelineError
from minions_actors.resources import Resource, ResourceError, ResourceUnavailable, uses
from minions_actors.runtime import snapshots as _snapshots  # noqa: F401  # registers snapshots
from minions_actors.runtime.minion import Gru, Minion, Terminated
from minions_actors.runtime.placement import Placement
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
from minions_actors.support.lazy import lazy_getattr
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

if TYPE_CHECKING:  # imported when first used (see __getattr__): a start needs none of them
    from minions_actors.pipelines import AsyncPipeline, FileTail
    from minions_actors.placement import ChildProcess, KeyedGroup, Ray
    from minions_actors.sidecar import Sidecar, SidecarCrashed, SidecarError

__version__ = "0.1.0"

#: Public names whose modules are imported at first use, not with the package: child
#: processes (multiprocessing), Ray, sidecars (subprocesses), the file and async pipelines.
_LAZY = {
    "AsyncPipeline": "minions_actors.pipelines",
    "FileTail": "minions_actors.pipelines",
    "ChildProcess": "minions_actors.placement",
    "KeyedGroup": "minions_actors.placement",
    "Ray": "minions_actors.placement",
    "Sidecar": "minions_actors.sidecar",
    "SidecarCrashed": "minions_actors.sidecar",
    "SidecarError": "minions_actors.sidecar",
}


__getattr__ = lazy_getattr(globals(), _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
