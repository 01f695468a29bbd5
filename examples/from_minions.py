"""The quickstart of the ``minions`` package (PyPI ``minions`` 0.0.2), ported to minions_actors.

The original wires four pieces on one asyncio loop: a ``Pipeline[Heartbeat]`` whose
``async def produce_event()`` emits a heartbeat, a ``Resource`` that stores them (started
with ``async def startup()``), a ``Minion[Heartbeat, WorkflowCtx]`` whose ordered
``@minion_step`` coroutines run once per event, and ``gru = await Gru.create()`` followed
by ``await gru.start_minion(minion_module, config_file, pipeline_module)``.

Here the same program is:

- ``Heartbeats``, a ``Pipeline``: ``produce()`` returns a ``Batch`` of events and the position
  after them, which is persisted, so a second run continues after the last heartbeat;
- ``HeartbeatStore``, a ``Resource`` registered with the system and declared with ``uses``;
- ``Printer``, an async minion: its ``on_receive`` coroutine starts one durable ``Workflow``
  per heartbeat (the heartbeat's number is the workflow id: a heartbeat delivered twice runs
  once), checkpointed to SQLite before each step; the steps are plain methods, which run on
  the worker pool (a workflow step cannot be a coroutine);
- ``async with ActorSystem.start_async(...)``: the system runs the async minions on this
  program's own event loop and shuts down when the block ends.

docs/coming-from-minions.md lists every difference. Run it: the second run resumes.

Run: python examples/from_minions.py
"""

import asyncio
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from minions_actors import ActorSystem, Batch, Minion, Pipeline, Resource, Workflow, uses


@dataclass(frozen=True)
class Heartbeat:  # a message: any Python object (only a workflow's context must be JSON)
    seq: int
    timestamp: float


class HeartbeatStore(Resource):
    """Opened before the first minion that uses it starts, closed after the last one stops."""

    name = "heartbeat_store"

    def open(self) -> None:  # the original's `async def startup()`
        self._lock = threading.Lock()  # a resource is shared: keep it thread-safe
        self.seen: list[int] = []

    def close(self) -> None:  # the original's `async def shutdown()`
        print("  heartbeat store: closed")

    def save(self, seq: int) -> None:  # a public method: counted and timed per call
        with self._lock:
            self.seen.append(seq)


class Heartbeats(Pipeline):
    """The original's `produce_event()` slept a second and returned one event, forever."""

    subscribers = ["printer"]
    poll_interval = 0.01  # the wait after a produce() that found nothing

    def __init__(self, until: int) -> None:  # the original read its config from a file
        super().__init__()
        self.until = until

    def open(self, position: int | None) -> None:
        self.seq = position or 0  # None the first time; then the last committed position

    def produce(self) -> Batch | None:
        if self.seq >= self.until:
            return None
        self.seq += 1
        return Batch([Heartbeat(self.seq, time.time())], self.seq)


class Printer(Minion):
    store = uses(HeartbeatStore)  # the original: a class annotation `store: HeartbeatStore`
    on_heartbeat = Workflow("record", "report")  # the original: @minion_step, in source order

    async def on_receive(self, event: Heartbeat) -> None:
        self.start_workflow("on_heartbeat", f"heartbeat-{event.seq}",
                            {"user_id": "heartbeat-worker", "seq": event.seq, "retries": 0})

    # Steps are plain methods: they run on the worker pool, one message each, so a step may
    # call sync code (this resource, a database driver) without holding up the event loop.
    def record(self, ctx: dict) -> None:  # the original: self.event and self.context
        self.store.save(ctx["seq"])
        ctx["retries"] += 1

    def report(self, ctx: dict) -> None:
        ctx["line"] = f"[{ctx['user_id']}] heartbeat {ctx['seq']}"


async def settled(system: ActorSystem, workflow_id: str) -> dict:
    while system.workflow(workflow_id) is None:  # its heartbeat is not produced yet
        await asyncio.sleep(0.01)
    # wait_workflow blocks: run it on a thread so that the loop (and the minions) go on
    info = await asyncio.to_thread(system.wait_workflow, workflow_id, timeout=10)
    return info.context


async def run(state_file: Path, until: int) -> None:
    store = HeartbeatStore()
    async with ActorSystem.start_async(state_store=state_file, metrics_port=None,
                                       file_logs=False, stderr_logs=False,
                                       handle_signals=False, resources=[store]) as system:
        system.spawn(Printer, name="printer")
        system.spawn(Heartbeats, until, name="heartbeats")
        for seq in range(1, until + 1):
            print(" ", (await settled(system, f"heartbeat-{seq}"))["line"])
        print("  saved by the store in this run:", sorted(store.seen))
        print("  workflows completed in the file:", len(system.workflows(status="completed")))
    print("  clean shutdown:", system.exit_code == 0)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state_file = Path(tmp) / "minions.db"
        print("run 1:")
        await run(state_file, until=3)
        print("run 2 (the same state file, two more heartbeats):")
        await run(state_file, until=5)


asyncio.run(main())
