"""Durable workflows: ordered steps over a JSON context that survive crashes and restarts.

A minion declares a workflow as a class attribute, ``fulfil = Workflow("reserve", "charge",
"ship")``, whose steps are its own methods taking the context dict. Starting a workflow with
an id (an idempotency key) checkpoints it; each step runs as a message on the minion's thread
only after the checkpoint before it is durable, so after a crash or a ``kill -9`` the workflow
resumes at the step that was interrupted (steps run at least once). Step failures follow the
step's :class:`Retry` policy; they never crash the minion. :class:`Sleep` and
:class:`WaitSignal` steps wait durably without holding a thread.
"""

from __future__ import annotations

# defined in errors.py (every exception lives there), importable from here as documented
from minions_actors.errors import AbortWorkflow as AbortWorkflow
from minions_actors.errors import WorkflowCancelled as WorkflowCancelled
from minions_actors.errors import WorkflowError as WorkflowError
from minions_actors.errors import WorkflowTimeout as WorkflowTimeout
from minions_actors.records import WORKFLOW_STATUSES
from minions_actors.records import WorkflowInfo as WorkflowInfo
from minions_actors.runtime.extensions import Extensions, register
from minions_actors.runtime.messages import RunStep as RunStep
from minions_actors.runtime.messages import StartWorkflow as StartWorkflow
from minions_actors.workflows.declare import Retry as Retry
from minions_actors.workflows.declare import Workflow as Workflow
from minions_actors.workflows.declare import unknown_workflow as unknown_workflow
from minions_actors.workflows.declare import workflows_of as workflows_of
from minions_actors.workflows.extension import WorkflowExtension
from minions_actors.workflows.runner import WorkflowRunner as WorkflowRunner
from minions_actors.workflows.waiters import WorkflowWaiters as WorkflowWaiters
from minions_actors.workflows.waits import Sleep as Sleep
from minions_actors.workflows.waits import WaitSignal as WaitSignal

STATUSES = WORKFLOW_STATUSES  # the one tuple, in minions_actors.records


# the runtime reaches workflows through this extension (see runtime.extensions)
_support = WorkflowExtension()
Extensions.workflows = _support
register(_support)
