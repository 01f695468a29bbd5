"""The cell: one minion's mailbox, thread and current incarnation, kept across restarts.

A :class:`Cell` outlives the :class:`~minions_actors.Minion` instances it runs. Its thread
loops over the mailbox and hands each message to the current incarnation; when that
incarnation crashes the cell reports to its supervisor (the parent cell) and waits for a
directive (restart, stop-and-wait, terminate) while the mailbox keeps filling. Runtime
messages travel in a separate priority queue so supervision never waits behind user
messages. Supervision *decisions* come from :mod:`minions_actors.supervision`.

This module holds the cell's state, identity, sending and spawning; the rest is one module
per concern, assigned to :class:`Cell` as methods: :mod:`.loop` (the dedicated and pooled
loops, the hot loop), :mod:`.special` (asks, proxy calls, stop and extension messages),
:mod:`.incarnation` (start, crash, end, terminate; runtime messages), :mod:`.supervisor`
(acting on children's exits), :mod:`.deadletters` and :mod:`.finalize` (the end, death
watch). :mod:`.context` is what they share.
"""

from __future__ import annotations

import functools
import itertools
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from minions_actors.errors import DuplicateName, MinionStopped
from minions_actors.runtime import deadletters, finalize, incarnation, loop, special, supervisor
from minions_actors.runtime import messages as m
from minions_actors.runtime.asyncness import is_async
from minions_actors.runtime.blocking import blocking
from minions_actors.runtime.context import NOTHING_HELD, current_cell
from minions_actors.runtime.dispatch import DEDICATED, Dispatcher, WorkerPool, choose
from minions_actors.runtime.extensions import NO_PARTS
from minions_actors.runtime.finalize import NO_CELLS
from minions_actors.runtime.mailbox import HALT_MARK, WAKE, Mailbox, Overflow, make_mailbox
from minions_actors.runtime.ref import MinionRef
from minions_actors.runtime.spawning import check_async_spawn, check_spawn, check_spawn_options
from minions_actors.runtime.special import proxy_message
from minions_actors.runtime.supervision import History, RestartType, Strategy
from minions_actors.support.events import LazyEvent

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from minions_actors.observability.hooks import Hooks
    from minions_actors.runtime.async_cell import AsyncCell
    from minions_actors.runtime.host import Host
    from minions_actors.runtime.loophost import LoopHost
    from minions_actors.runtime.minion import Minion
    from minions_actors.runtime.placement import Placement

__all__ = ["Cell", "current_cell", "proxy_message"]


@functools.cache
def _async_cell() -> type[AsyncCell]:
    """The async minions' cell class (its module builds on this one)."""
    from minions_actors.runtime.async_cell import AsyncCell

    return AsyncCell


def _loop_dispatcher(pool: WorkerPool, host: LoopHost) -> Dispatcher:
    """The async minions' dispatcher of a system (one, kept by its loop host)."""
    if host.dispatcher is None:
        from minions_actors.runtime.async_dispatch import LoopDispatcher

        host.dispatcher = LoopDispatcher(pool, host)
    return host.dispatcher  # type: ignore[no-any-return]

_anonymous = itertools.count(1)
_cell_ids = itertools.count(1)
# urns have pykka's shape (uuid4 URNs): a random prefix per process, then a counter that
# makes each cell unique (no os.urandom call per spawn)
_URN_PREFIX = uuid.uuid4().urn[:-12]
_COND_LOCK = threading.Lock()
_CHILDREN_LOCK = threading.Lock()
_WATCH_LOCK = threading.Lock()
#: a leaf minion's children: one shared empty dict, replaced by its own at the first spawn
NO_CHILDREN: dict[str, Any] = {}


class Cell:
    """Runtime state of one minion; see the module docstring."""

    # slots: a million idle minions are a million cells (a dict each would double them)
    __slots__ = (
        "__weakref__", "_built", "_finalized", "_halt_dropped", "_held", "_id", "_interrupted",
        "_mark_passed", "_parked", "_stop_requested", "_stop_requests", "_stopped",
        "_strategy_override", "_sys", "_sys_cond_", "_terminate_requested", "_up_cond_",
        "_watch_closed", "after", "args", "busy_seconds", "children", "closing", "cls",
        "cls_name", "dead_letters", "dispatcher", "failed", "handled", "hooks", "inbox",
        "incarnation", "instance", "kwargs", "last_instance", "name", "parent", "parts", "path",
        "placement", "pooled", "ref", "restart", "restart_history", "restarts", "sched",
        "stop_reason", "system", "terminated", "thread", "watchers", "watching",
    )
    # One lock for every cell's children and one for every death watch, not two per cell:
    # a million leaf minions would carry two million locks (each tracked by the cyclic GC)
    # for sections that are short, never nested, and rare beside the messages.
    children_lock = _CHILDREN_LOCK
    watch_lock = _WATCH_LOCK

    def __init__(
        self,
        system: Host,
        parent: Cell | None,
        cls: type[Minion],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: str,
        restart: RestartType = "permanent",
        mailbox_size: int | None = None,
        mailbox_overflow: Overflow = "block",
        mailbox_put_timeout: float = 1.0,
        strategy: Strategy | None = None,
        dispatcher: Dispatcher | None = None,
        placement: Placement | None = None,
    ) -> None:
        self.system = system
        self.hooks: Hooks = system.hooks
        self.parent = parent
        self.cls = cls
        self.cls_name = cls.__name__
        self.args = args
        self.kwargs = kwargs
        self.name: str = name
        self.path: str = (
            "" if parent is None
            else name if parent.parent is None
            else f"{parent.path}/{name}"
        )
        self.restart = restart
        self._id = next(_cell_ids)  # the urn is built from it when asked (most never are)
        self.dispatcher: Dispatcher = dispatcher or system.dispatcher
        self.thread: threading.Thread | None = None  # a dedicated thread, when it has one
        self.sched = threading.Lock()  # held while queued or running on the pool
        self.pooled: bool = self.dispatcher.pooled
        self.inbox: Mailbox = make_mailbox(mailbox_size, mailbox_overflow, mailbox_put_timeout,
                                           self if self.pooled else None)
        self._strategy_override = strategy
        self.placement = placement  # None: the instance is built and runs here
        self._init_state()
        self.ref: MinionRef[Any] = MinionRef(self)

    def _init_state(self) -> None:
        """The state a new cell starts with: no instance, children, watches or counts yet."""
        self.instance: Minion | None = None
        self.last_instance: Minion | None = None  # the newest one, maybe still in __init__
        self._built = False  # an instance was live once: not starting any more (observer)
        self._up_cond_: threading.Condition | None = None  # built when a proxy waits
        self.incarnation = 0
        self.children: dict[str, Cell] = NO_CHILDREN  # (replaced under children_lock)
        self.restart_history: History = ()  # of this incarnation's children
        # copied on write under watch_lock: most minions never watch nor are watched
        self.watchers: frozenset[Cell] = NO_CELLS
        self.watching: frozenset[Cell] = NO_CELLS
        self._watch_closed = False
        # the extensions' parts (runtime.extensions) and what runs after each message
        self.parts: Mapping[str, Any] = NO_PARTS  # CellPart by extension key
        self.after: Callable[[Minion], None] | None = None

        # counters read by metrics at scrape time (written only by this cell's thread)
        self.handled = 0
        self.failed = 0
        self.busy_seconds = 0.0
        self.restarts = 0
        self.dead_letters = 0

        self.terminated = False  # no more messages will be handled, ever
        # the stopped event: False, True once finalised, or the LazyEvent that someone
        # asked for (most minions are never waited on: one object less for the cyclic GC)
        self._stopped: LazyEvent | bool = False
        self.stop_reason = ""
        self._sys: list[Any] = []  # runtime messages: rare, few, a list is lighter than a deque
        self._sys_cond_: threading.Condition | None = None  # built on first runtime message
        self._terminate_requested = False
        self._stop_requested = False  # ref.stop(): no restart, whatever happens next
        self._interrupted = False  # a BaseException stopped the system: handle nothing more
        # a shutdown began: only minions may still send (their on_stop exchanges), and the
        # backlog queued before HALT_MARK is dropped, not handled (see halt())
        self.closing = False
        self._mark_passed = False
        self._halt_dropped: tuple[int, Any] = (0, None)  # (count, last): reported at the end
        self._held: Any = NOTHING_HELD
        self._stop_requests: tuple[m.StopRequest, ...] = ()  # (grown by its own thread only)
        self._parked: m.Restart | None = None  # a pooled restart waiting for its backoff
        self._finalized = False

    # ----------------------------------------------------------------- descriptions
    @property
    def urn(self) -> str:
        """pykka's ``actor_urn``: a uuid4 URN, unique per cell (a process-wide random
        prefix and the cell's number)."""
        return f"{_URN_PREFIX}{self._id:012x}"

    @property
    def strategy(self) -> Strategy:
        """The strategy this cell applies to its children."""
        return self._strategy_override or self.cls.strategy

    @property
    def accepting(self) -> bool:
        """False when a message sent now, from this thread, would never be handled: the
        minion stopped or was told to, or a shutdown began and the sender is not a minion
        (only the minions' last exchanges are still served, see :meth:`halt`)."""
        if self.terminated or self._terminate_requested:
            return False
        return not self.closing or current_cell() is not None

    @property
    def is_root(self) -> bool:
        return self.parent is None

    def _stop_deadline(self) -> float:
        """When a stop starting now must be done (each minion gets ``stop_timeout``)."""
        return time.monotonic() + self.system.stop_timeout

    def describe(self) -> str:
        return f"minion {self.path or 'gru'!r} ({self.cls_name})"

    def mailbox_depth(self) -> int:
        return self.inbox.qsize()

    def __repr__(self) -> str:
        return f"<Cell {self.path or 'gru'} {self.cls_name} #{self.incarnation}>"

    # ----------------------------------------------------------------- sending
    @property
    def _sys_cond(self) -> threading.Condition:
        """The condition runtime messages signal; most cells only need it at shutdown, so
        it is built lazily (a Condition costs more than the rest of a spawn)."""
        return self._sys_cond_ or self._lazy_condition("_sys_cond_")

    def _lazy_condition(self, attr: str) -> threading.Condition:
        """Build the condition stored in ``attr`` once, whichever thread asks first."""
        with _COND_LOCK:
            cond: threading.Condition | None = getattr(self, attr)
            if cond is None:
                cond = threading.Condition(threading.Lock())
                setattr(self, attr, cond)
        return cond

    def send_system(self, msg: Any) -> None:
        """Queue a runtime message ahead of user messages and wake the cell."""
        if self.pooled:  # nobody waits on a condition: the wake-up schedules the cell
            self._queue_system(msg)  # (list.append is atomic; the flags are set first)
        else:
            with self._sys_cond:
                self._queue_system(msg)
                self._sys_cond.notify()
        self.inbox.put(WAKE)

    def _queue_system(self, msg: Any) -> None:
        if isinstance(msg, m.Terminate):
            self._terminate_requested = True
        elif isinstance(msg, m.StopPending):
            self._stop_requested = True
        sysq = self._sys
        if sysq is m.NO_SYSTEM_MESSAGES:  # an async cell's first: its own list, built once
            with _COND_LOCK:  # (two senders at once: one list, both messages in it)
                if self._sys is m.NO_SYSTEM_MESSAGES:
                    self._sys = [msg]
                    return
                sysq = self._sys
        sysq.append(msg)

    def halt(self) -> None:
        """A shutdown began: refuse messages from outside the runtime from now on and drop
        the backlog (what is queued before the mark) in bulk instead of chewing through it.
        Messages that minions send after the mark (a younger sibling's ``on_stop`` asking
        this one) are still handled until this minion's own stop, as in OTP."""
        self.closing = True
        self.inbox.put(HALT_MARK)  # the mark is queued before the Halt that looks for it
        self.send_system(m.Halt())

    @property
    def stopping(self) -> bool:
        """True once the minion was told to terminate or a shutdown halted it."""
        return self._terminate_requested or self.closing

    @property
    def stop_pending(self) -> bool:
        """True once ``ref.stop()`` was called or the minion is stopping: a handler that
        loops (a pipeline's turn) returns early so that the stop is handled next."""
        return self._stop_requested or self.stopping

    # ----------------------------------------------------------------- proxies
    def on_own_thread(self) -> bool:
        """True on this minion's thread (where waiting for its instance would deadlock)."""
        return current_cell() is self

    def wait_for_instance(self) -> bool:
        """Block until an instance is live (True) or the minion stopped for good (False)."""
        hurry = getattr(self.dispatcher, "start_now", None)
        if hurry is not None and self.instance is None:
            hurry(self)  # (an async minion queued to start on this loop thread: now)
        cond = self._up_cond_ or self._lazy_condition("_up_cond_")
        with blocking(), cond:
            while self.instance is None and not self.terminated:
                cond.wait()
        return self.instance is not None

    def _instance_changed(self) -> None:
        """Wake proxies waiting in :meth:`wait_for_instance` (cheap when none waits)."""
        cond = self._up_cond_
        if cond is not None:
            with cond:
                cond.notify_all()

    # ----------------------------------------------------------------- children
    # Supervision is carried out by runtime.supervisor (decided by supervision.decide).
    children_in_order = supervisor.children_in_order
    _stop_children = supervisor.stop_children
    _abandon = supervisor.abandon
    _supervise = supervisor.supervise
    _restart_children = supervisor.restart_children
    _wait_unless_terminating = supervisor.wait_unless_terminating
    _give_up = supervisor.give_up

    def spawn_child(
        self,
        cls: type[Minion],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        name: str | None,
        restart: str,
        mailbox_size: int | None,
        mailbox_overflow: Overflow,
        mailbox_put_timeout: float,
        dedicated_thread: bool | None = None,
        placement: Placement | None = None,
    ) -> MinionRef[Any]:
        """Create, register and start a child cell; return its ref at once."""
        restart_type = check_spawn(cls, args, kwargs, name, restart)
        check_spawn_options(mailbox_size, mailbox_overflow, mailbox_put_timeout,
                            dedicated_thread, placement)
        factory: Callable[..., Cell] = Cell
        if is_async(cls):  # its coroutines run on the loop, its turns on the pool
            factory = _async_cell()
            check_async_spawn(cls, dedicated_thread, placement)
            dispatcher: Dispatcher = _loop_dispatcher(self.system.worker_pool,
                                                      self.system.loop_host)
        elif placement is not None:
            placement.check(cls)
            dispatcher = DEDICATED  # a placed minion's batches block on its mailbox
        else:
            dispatcher = choose(self.system.dispatcher, self.system.worker_pool, cls,
                                dedicated_thread)
        self.system.check_accepting()
        with self.children_lock:
            if self.terminated or self._terminate_requested:
                raise MinionStopped(f"{self.describe()} is stopping and cannot spawn children")
            if name is None:
                name = f"{cls.__name__.lower()}-{next(_anonymous)}"
            if self.children is NO_CHILDREN:
                self.children = {}
            if name in self.children:
                where = f"under {self.path!r}" if self.path else "at the top level"
                raise DuplicateName(
                    f"a minion named {name!r} is already running {where}; "
                    f"pick another name or stop the existing one first"
                )
            child = factory(
                self.system, self, cls, args, kwargs, name, restart_type,
                mailbox_size, mailbox_overflow, mailbox_put_timeout, dispatcher=dispatcher,
                placement=placement,
            )
            self.children[name] = child
        self.system.register_cell(child)
        child.dispatcher.start(child)
        return child.ref

    # ----------------------------------------------------------------- the thread
    def running(self) -> bool:
        """True until the cell's loop has finished (its thread or its last turn)."""
        return self.dispatcher.running(self)

    def join(self, timeout: float | None) -> None:
        """Wait up to ``timeout`` seconds for the cell's loop to finish."""
        self.dispatcher.join(self, timeout)

    def where(self) -> str:
        """Where this minion's handlers run (a thread's name), for error messages."""
        return self.dispatcher.where(self)


    # The rest of the cell lives in one module per concern (functions taking the cell,
    # assigned here as methods: a method call costs the same as before the split).
    # ----------------------------------------------------------------- runtime.loop
    run_forever = loop.run_forever
    run_turn = loop.run_turn
    pool_turn = loop.pool_turn  # (what the pool's workers run for their sync minions)
    has_work = loop.has_work
    _next_system = loop.next_system
    _is_parked = loop.is_parked
    _backoff_left = loop.backoff_left
    _park = loop.park
    _wake = loop.wake
    _step = loop.step
    _guarded = loop.guarded
    _dispatch_one = loop.dispatch_one
    _handle_told = loop.handle_told
    _invoke = loop.invoke
    # what an extension's message handler may use (runtime.extensions.Handler)
    invoke = loop.invoke
    run_after = loop.run_after
    crash = incarnation.crash
    # ----------------------------------------------------------------- runtime.special
    _dispatch_special = special.dispatch_special
    _proxy_message = staticmethod(special.forward_proxy)
    # ----------------------------------------------------------------- runtime.incarnation
    _start_incarnation = incarnation.start_incarnation
    _attach = incarnation.attach
    _blank = incarnation.blank
    _initialise = incarnation.initialise
    _end_incarnation = incarnation.end_incarnation
    _crash = incarnation.crash
    _adopt = incarnation.adopt
    _stop_system = incarnation.stop_system
    _report_down = incarnation.report_down
    _terminate = incarnation.terminate
    _handle_system = incarnation.handle_system
    # ----------------------------------------------------------------- runtime.deadletters
    dead_letter = deadletters.dead_letter
    _release = deadletters.release
    count_dead_letter = deadletters.count_dead_letter
    refuse = deadletters.refuse
    _settle = deadletters.settle
    drain_dead_letters = deadletters.drain_dead_letters
    _drop_backlog = deadletters.drop_backlog
    _drop_to_mark = deadletters.drop_to_mark
    _drain = deadletters.drain
    stopped_error = deadletters.stopped_error
    # ----------------------------------------------------------------- runtime.finalize
    _finalize = finalize.finalize
    stopped_event = property(finalize.stopped_event)
    _set_stopped = finalize.set_stopped
    watch = finalize.watch
    unwatch = finalize.unwatch
