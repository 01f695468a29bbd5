"""The cell: one minion's mailbox, thread and current incarnation, kept across restarts.

A :class:`Cell` outlives the :class:`~minions_actors.Minion` instances it runs. Its thread
loops over the mailbox and hands each message to the current incarnation; when that
incarnation crashes the cell reports to its supervisor (the parent cell) and waits for a
directive (restart, stop-and-wait, terminate) while the mailbox keeps filling. Runtime
messages travel in a separate priority queue so supervision never waits behind user
messages. Supervision *decisions* come from :mod:`minions_actors.supervision`.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import queue
import threading
import time
import uuid
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from pykka.messages import ProxyCall, ProxyGetAttr, ProxySetAttr

from minions_actors.errors import (
    DuplicateName,
    MailboxFull,
    MinionStopped,
    StateStoreError,
    StateStoreWriteFailed,
    SystemNotRunning,
    WorkflowError,
)
from minions_actors.observability.hooks import (
    PHASE_INIT,
    PHASE_MESSAGE,
    PHASE_ON_START,
    PHASE_RESTORE,
    PHASE_RUNTIME,
    PHASE_SNAPSHOT,
)
from minions_actors.runtime import messages as m
from minions_actors.runtime import supervisor
from minions_actors.runtime.batching import run_batched
from minions_actors.runtime.blocking import blocking
from minions_actors.runtime.dispatch import DEDICATED, NOTHING, Dispatcher, WorkerPool, choose
from minions_actors.runtime.extensions import CellWorkflows, Extensions
from minions_actors.runtime.mailbox import (
    HALT_MARK,
    WAKE,
    Mailbox,
    Overflow,
    WakeUp,
    make_mailbox,
)
from minions_actors.runtime.snapshots import Snapshotter, is_persistent
from minions_actors.runtime.spawning import check_spawn
from minions_actors.runtime.supervision import (
    History,
    RestartType,
    Strategy,
)
from minions_actors.support.events import LazyEvent
from minions_actors.support.signals import block_shutdown_signals

if TYPE_CHECKING:
    from minions_actors.observability.hooks import Hooks
    from minions_actors.runtime.host import Host
    from minions_actors.runtime.minion import Minion
    from minions_actors.runtime.placement import Placement
    from minions_actors.runtime.ref import MinionRef

_NOTHING: Any = object()
_NO_CELLS: frozenset[Any] = frozenset()
_FOREVER = 1 << 62  # a dedicated thread's budget: it handles messages until told otherwise
_SPECIAL = frozenset({m.Ask, WakeUp, ProxyCall, ProxyGetAttr, ProxySetAttr, m.StopRequest,
                      m.ExitRequest, m.RunStep, m.StartWorkflow})
_PROXY = (ProxyCall, ProxyGetAttr, ProxySetAttr)
# A StartWorkflow ask that fails with these is refused (the asker gets the error); the
# minion did nothing wrong and does not crash.
_REFUSED_START = (WorkflowError, StateStoreError)
_anonymous = itertools.count(1)
_current = threading.local()  # .cell: the cell whose thread this is (unset elsewhere)


def current_cell() -> Cell | None:
    """The cell whose thread this is, or None outside minions' threads (a thread-local:
    no lock, safe in a signal handler)."""
    return getattr(_current, "cell", None)
_cell_ids = itertools.count(1)
# urns have pykka's shape (uuid4 URNs): a random prefix per process, then a counter that
# makes each cell unique (no os.urandom call per spawn)
_URN_PREFIX = uuid.uuid4().urn[:-12]
_COND_LOCK = threading.Lock()
_DEAD_LETTER_LOCK = threading.Lock()  # dead letters are counted from any thread, rarely
# Messages that are answered or released rather than counted when a minion stops.
_NOT_DEAD_LETTERS = (m.Ask, m.StopRequest, WakeUp, m.ExitRequest, m.RunStep)

def _phase_of(exc: BaseException) -> str:
    """The crash phase of a failed call through ``_invoke``: its snapshot was refused by a
    sync-mode store (``"snapshot"``), or the handler raised (``"message"``)."""
    return PHASE_SNAPSHOT if isinstance(exc, StateStoreWriteFailed) else PHASE_MESSAGE


def _answer(future: Any, value: Any) -> None:
    """Answer an ask from any thread (the store's writer, for a durable workflow start);
    a future answered already (its asker got an error) stays as it is."""
    with contextlib.suppress(queue.Full):
        future.set(value)


@functools.lru_cache(maxsize=1024)
def _class_info(cls: type[Minion]) -> tuple[bool, bool]:
    """(persistent, declares workflows) for a minion class, computed once per class."""
    support = Extensions.workflows
    return is_persistent(cls), support is not None and support.declared(cls)


def _bind_base(inst: Minion) -> None:
    """Set the attributes ``Minion.__init__`` sets (imported here: minion imports this module)."""
    from minions_actors.runtime.minion import Minion

    Minion.__init__(inst)


def _get_attr_path(root: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        root = getattr(root, name)
    return root


def proxy_message(inst: Any, msg: Any) -> Any:
    """Carry out a proxy message on ``inst``: call, read or set the attribute at its path."""
    if isinstance(msg, ProxyCall):
        return _get_attr_path(inst, msg.attr_path)(*msg.args, **msg.kwargs)
    if isinstance(msg, ProxyGetAttr):
        return _get_attr_path(inst, msg.attr_path)
    parent = _get_attr_path(inst, msg.attr_path[:-1])
    setattr(parent, msg.attr_path[-1], msg.value)
    return None


class Cell:
    """Runtime state of one minion; see the module docstring."""

    # slots: a million idle minions are a million cells (a dict each would double them)
    __slots__ = (
        "__weakref__", "_finalized", "_halt_dropped", "_held", "_interrupted", "_mark_passed",
        "_parked", "_stop_requested", "_stop_requests", "_strategy_override", "_sys",
        "_sys_cond_", "_terminate_requested", "_up_cond_", "_watch_closed", "args",
        "busy_seconds", "children", "children_lock", "closing", "cls", "cls_name",
        "dead_letters", "dispatcher", "failed", "handled", "hooks", "inbox", "incarnation",
        "instance", "kwargs", "last_instance", "name", "parent", "path", "placement", "pooled",
        "ref",
        "restart", "restart_history", "restarts", "sched", "snapshots", "stop_reason",
        "stopped_event", "system", "terminated", "thread", "urn", "watch_lock", "watchers",
        "watching", "workflows",
    )

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
        from minions_actors.runtime.ref import MinionRef

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
        self.urn: str = f"{_URN_PREFIX}{next(_cell_ids):012x}"
        self.dispatcher: Dispatcher = dispatcher or system.dispatcher
        self.thread: threading.Thread | None = None  # a dedicated thread, when it has one
        self.sched = threading.Lock()  # held while queued or running on the pool
        self.pooled = isinstance(self.dispatcher, WorkerPool)
        self.inbox: Mailbox = make_mailbox(mailbox_size, mailbox_overflow, mailbox_put_timeout,
                                           self if self.pooled else None)
        self._strategy_override = strategy
        self.placement = placement  # None: the instance is built and runs here

        self.instance: Minion | None = None
        self.last_instance: Minion | None = None  # the newest one, maybe still in __init__
        self._up_cond_: threading.Condition | None = None  # built when a proxy waits
        self.incarnation = 0
        self.children: dict[str, Cell] = {}
        self.children_lock = threading.Lock()
        self.restart_history: History = ()  # of this incarnation's children
        # copied on write under watch_lock: most minions never watch nor are watched
        self.watchers: frozenset[Cell] = _NO_CELLS
        self.watching: frozenset[Cell] = _NO_CELLS
        self.watch_lock = threading.Lock()
        self._watch_closed = False
        self.snapshots: Snapshotter | None = None
        self.workflows: CellWorkflows | None = None

        # counters read by metrics at scrape time (written only by this cell's thread)
        self.handled = 0
        self.failed = 0
        self.busy_seconds = 0.0
        self.restarts = 0
        self.dead_letters = 0

        self.terminated = False  # no more messages will be handled, ever
        self.stopped_event = LazyEvent()  # set once the cell is fully finalised
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
        self._held: Any = _NOTHING
        self._stop_requests: list[m.StopRequest] = []
        self._parked: m.Restart | None = None  # a pooled restart waiting for its backoff
        self._finalized = False
        self.ref: MinionRef[Any] = MinionRef(self)

    # ----------------------------------------------------------------- descriptions
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
        return not self.closing or getattr(_current, "cell", None) is not None

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
        self._sys.append(msg)

    def halt(self) -> None:
        """A shutdown began: refuse messages from outside the runtime from now on and drop
        the backlog (what is queued before the mark) in bulk instead of chewing through it.
        Messages that minions send after the mark (a younger sibling's ``on_stop`` asking
        this one) are still handled until this minion's own stop, as in OTP."""
        self.closing = True
        self.inbox.put(HALT_MARK)  # the mark is queued before the Halt that looks for it
        self.send_system(m.Halt())

    def dead_letter(self, message: Any) -> None:
        """Account for a message that reached a stopped minion (never raises)."""
        if isinstance(message, _NOT_DEAD_LETTERS):
            self._release(message)
        else:
            self.count_dead_letter(message)

    def _release(self, message: Any) -> None:
        """Answer an ask that will never be handled; runtime messages need nothing (a stop
        waiter watches the stopped event; a RunStep's workflow resumes at the next start)."""
        if isinstance(message, m.Ask):
            message.future.set_exception(exc_info=(MinionStopped, self.stopped_error(), None))

    def count_dead_letter(self, message: Any, count: int = 1) -> None:
        """Count dead letters (from any thread) and report them: one message through the
        ``dead_letter`` hook (``first`` exactly once per minion), several at once through
        ``messages_dropped``."""
        with _DEAD_LETTER_LOCK:
            first = self.dead_letters == 0
            self.dead_letters += count
        if count == 1:
            self.hooks.dead_letter(self, message, first)
        else:
            self.hooks.messages_dropped(self, count)

    def drain_dead_letters(self) -> None:
        """From a sender's thread: what raced into the mailbox of a minion that just stopped
        is a dead letter like any later tell, one each."""
        self._drain(self.dead_letter)

    def _drop_backlog(self, held: Any) -> None:
        """At the stop: ``held`` (taken out, not handled) and everything still queued are
        dead letters, counted in bulk (one hook call, however long the backlog)."""
        dropped: list[Any] = []
        self._drain(dropped.append, held)
        count, last = self._halt_dropped  # what a shutdown's halt dropped: one report for all
        if dropped:
            count, last = count + len(dropped), dropped[-1]
        if count:
            self.count_dead_letter(last, count)

    def _drop_to_mark(self) -> None:
        """Handle a Halt: drop (in bulk) or release everything queued before HALT_MARK.
        A stop request in the backlog still stops the minion, after the drop."""
        item, self._held = self._held, _NOTHING
        dropped, last = 0, None  # a count, not a list: the backlog may be long
        get = self.inbox.get_nowait
        while not self._mark_passed:
            if item is HALT_MARK:
                self._mark_passed = True
            elif item.__class__ is m.StopRequest and self.instance is not None:
                self._stop_requests.append(item)
                self._terminate_requested = True  # the stop runs once the drop is done
            elif isinstance(item, _NOT_DEAD_LETTERS):
                self._release(item)
            elif item is not _NOTHING:
                dropped, last = dropped + 1, item
            if not self._mark_passed:
                try:
                    item = get()
                except queue.Empty:  # the mark went by in a handler already: nothing left
                    break
        if dropped:
            self._halt_dropped = (dropped, last)
        if self._stop_requests and not self.terminated:
            self._terminate(self._stop_deadline(), "stopped")

    def _drain(self, dead: Callable[[Any], Any], item: Any = _NOTHING) -> None:
        """Empty the mailbox (after ``item``): answer or release what needs it, pass user
        messages to ``dead``."""
        get = self.inbox.get_nowait
        while True:
            if item is not _NOTHING:
                if isinstance(item, _NOT_DEAD_LETTERS):
                    self._release(item)
                else:
                    dead(item)
            try:
                item = get()
            except queue.Empty:
                return

    def stopped_error(self) -> MinionStopped:
        """The error for a request to a stopped minion: pykka's text ("<ref> not found"),
        which code written for pykka may match; why and what to do is a note (3.11+)."""
        err = MinionStopped(f"{self.ref} not found")
        add_note = getattr(err, "add_note", None)
        if add_note is not None:
            add_note(f"{self.describe()} is stopped ({self.stop_reason or 'stopping'}); "
                     f"spawn it again or look up its replacement with system.get(path)")
        return err

    @property
    def stopping(self) -> bool:
        """True once the minion was told to terminate or a shutdown halted it."""
        return self._terminate_requested or self.closing

    # ----------------------------------------------------------------- proxies
    def on_own_thread(self) -> bool:
        """True on this minion's thread (where waiting for its instance would deadlock)."""
        return getattr(_current, "cell", None) is self

    def wait_for_instance(self) -> bool:
        """Block until an instance is live (True) or the minion stopped for good (False)."""
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
        if placement is not None:
            placement.check(cls)
        # a placed minion's batches block on its mailbox: it keeps a thread of its own
        dispatcher = DEDICATED if placement is not None else choose(
            self.system.dispatcher, self.system.worker_pool, cls, dedicated_thread)
        self.system.check_accepting()
        with self.children_lock:
            if self.terminated or self._terminate_requested:
                raise MinionStopped(f"{self.describe()} is stopping and cannot spawn children")
            if name is None:
                name = f"{cls.__name__.lower()}-{next(_anonymous)}"
            if name in self.children:
                where = f"under {self.path!r}" if self.path else "at the top level"
                raise DuplicateName(
                    f"a minion named {name!r} is already running {where}; "
                    f"pick another name or stop the existing one first"
                )
            child = Cell(
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

    def run_forever(self) -> None:
        """A dedicated thread's loop: handle messages until the minion stops for good."""
        block_shutdown_signals()
        _current.cell = self
        try:
            self._guarded(self._start_incarnation)
            while not self.terminated:
                self._guarded(self._step)
        finally:
            self._finalize()

    def run_turn(self, throughput: int) -> bool:
        """One turn on a pool worker: runtime messages, then up to ``throughput`` user
        messages, never waiting. True when mail is left for another turn."""
        if self._finalized:
            return False
        _current.cell = self
        try:
            if self.incarnation == 0:
                self._guarded(self._start_incarnation)
            budget = throughput
            while not self.terminated:
                if self._sys:
                    if self._is_parked():
                        return False
                    self._guarded(self._next_system)
                elif self.instance is None or self._interrupted or self._terminate_requested:
                    return False
                elif budget <= 0:
                    return True
                else:
                    left = self._guarded(self._process_messages, self.inbox.get_nowait,
                                         budget, self._linger)
                    if left is not None:  # None: a runtime fault, handled as a crash
                        if left < 0:  # the mailbox is empty
                            return False
                        budget = left
            self._finalize()
            return False
        finally:
            _current.cell = None

    def _linger(self) -> Any:
        """A pooled turn emptied the mailbox: the pool may wait a little for the next
        message (see ``dispatch.LINGER``); ``_NOTHING`` when none came."""
        got = self.dispatcher.linger(self.inbox)  # type: ignore[attr-defined]  # pooled only
        return _NOTHING if got is NOTHING else got

    def has_work(self) -> bool:
        """After a pooled turn: is there something this cell can do now?"""
        if self._finalized:
            return False
        if self._sys:
            return not self._is_parked()
        if self.instance is None or self._interrupted or self._terminate_requested:
            return self.incarnation == 0
        return not self.inbox.empty()

    def _next_system(self) -> None:
        self._handle_system(self._sys.pop(0))

    def _is_parked(self) -> bool:
        """A pooled restart waits for its backoff (the timer wakes the cell): nothing to
        do until then, unless a stop cuts the backoff short."""
        parked = self._parked
        if parked is None or not self._sys or self._sys[0] is not parked:
            return False
        if self._backoff_left(parked) > 0:
            return True
        self._parked = None
        return False

    def _backoff_left(self, msg: m.Restart) -> float:
        if self._terminate_requested or self._stop_requested or self.closing:
            return 0.0
        return msg.start_at - time.monotonic()

    def _park(self, msg: m.Restart) -> bool:
        """On the pool, wait for a restart's backoff without holding a worker."""
        left = self._backoff_left(msg)
        if left <= 0:
            return False
        self._sys.insert(0, msg)
        if self._parked is not msg:
            self._parked = msg
            self.system.timer.call_later(left, self._wake)
        return True

    def _wake(self) -> None:
        self.inbox.put(WAKE)

    def _step(self) -> None:
        if self._sys:
            self._handle_system(self._sys.pop(0))
        elif self.instance is None or self._interrupted or self._terminate_requested:
            with self._sys_cond:
                while not self._sys:
                    self._sys_cond.wait()
        else:
            self._process_messages(self.inbox.get, _FOREVER)

    def _guarded(self, step: Callable[..., Any], *args: Any) -> Any:
        """Run one step of the loop and return its result; an error outside a handler (a
        runtime or store fault) is reported and, when an incarnation is live, treated as its
        crash, so supervision applies instead of the cell vanishing with its children."""
        try:
            return step(*args)
        except BaseException as exc:
            self.hooks.lifecycle_error(self, exc, "runtime")
            if self.instance is not None:
                self._crash(exc, PHASE_RUNTIME)
            return None

    def _process_messages(self, get: Callable[[], Any], budget: int,
                          linger: Callable[[], Any] | None = None) -> int:
        """The hot loop: runs until a runtime message arrives, the incarnation ends or
        ``budget`` messages were handled; returns the budget left, or -1 when ``get``
        (a pooled turn's non-blocking one) found the mailbox empty and ``linger`` brought
        no message either."""
        inst = self.instance
        assert inst is not None
        while True:
            if self._held is not _NOTHING:
                msg, self._held = self._held, _NOTHING
                budget -= 1
                if not self._dispatch_one(inst, msg):
                    return budget
            batched = getattr(inst, "_minion_receive_batch", None)  # a placed minion's
            if batched is not None:  # stand-in (on a dedicated thread: it waits for mail)
                run_batched(self, inst, batched, _SPECIAL)
                return budget
            try:
                return self._hot_loop(inst, get, budget)
            except queue.Empty:
                self._held = _NOTHING if linger is None else linger()
                if self._held is _NOTHING:
                    return -1
                if self._sys or budget <= 0:  # the turn loop takes it from here
                    return max(budget, 0)

    def _hot_loop(self, inst: Minion, get: Callable[[], Any], budget: int) -> int:
        """Handle messages until a runtime message, the end of the incarnation or of the
        budget (returned); ``queue.Empty`` from ``get`` propagates."""
        sysq = self._sys
        receive = inst.on_receive
        snaps = self.snapshots
        after = snaps.after_message if snaps is not None else None
        special = _SPECIAL
        while budget > 0:
            msg = get()
            if sysq:
                if msg is not WAKE:
                    self._held = msg
                return budget
            budget -= 1
            if msg.__class__ in special:
                if not self._dispatch_special(inst, msg):
                    return budget
                continue
            t0 = perf_counter()
            try:
                receive(msg)
            except BaseException as exc:
                self.busy_seconds += perf_counter() - t0
                self.failed += 1
                self._crash(exc, "message")
                return budget
            self.busy_seconds += perf_counter() - t0
            self.handled += 1
            if after is not None:
                try:
                    after(inst)
                except StateStoreWriteFailed as exc:  # sync durability: not acknowledged
                    self._crash(exc, "snapshot")
                    return budget
        return budget

    def _dispatch_one(self, inst: Minion, msg: Any) -> bool:
        """Handle any one message outside the hot loop; False when the incarnation ended."""
        if msg.__class__ in _SPECIAL:
            return self._dispatch_special(inst, msg)
        ok, value = self._invoke(inst, inst.on_receive, msg)
        if not ok:
            self._crash(value, _phase_of(value))
        return ok

    def _invoke(
        self, inst: Minion, handler: Callable[[Any], Any], arg: Any,
        passthrough: type[BaseException] | tuple[type[BaseException], ...] | None = None,
    ) -> tuple[bool, Any]:
        """Run one handler call outside the hot loop (which inlines the same steps): time
        it, count it, snapshot after success. Returns (True, result) or (False, exception);
        the caller crashes the incarnation. ``passthrough`` exceptions are re-raised
        untouched (a rejected request, not a failure of the minion)."""
        t0 = perf_counter()
        try:
            result = handler(arg)
        except BaseException as exc:
            if passthrough is not None and isinstance(exc, passthrough):
                raise
            self.busy_seconds += perf_counter() - t0
            self.failed += 1
            return False, exc
        self.busy_seconds += perf_counter() - t0
        self.handled += 1
        if self.snapshots is not None:
            try:
                self.snapshots.after_message(inst)
            except StateStoreWriteFailed as exc:  # sync durability: not acknowledged
                return False, exc
        return True, result

    def _dispatch_special(self, inst: Minion, msg: Any) -> bool:
        """Handle one message that is not a plain tell; False when the incarnation ended."""
        cls = msg.__class__
        if cls is WakeUp:
            if msg is HALT_MARK:  # reached before its Halt: the backlog is already gone
                self._mark_passed = True
            return True
        if cls is m.Ask:
            inner = msg.message
            starting = inner.__class__ is m.StartWorkflow
            handler: Callable[[Any], Any] = (
                functools.partial(self._proxy_message, inst) if isinstance(inner, _PROXY)
                # a start is answered by the runner once its record is durable
                else functools.partial(self.start_workflow,
                                       answer=functools.partial(_answer, msg.future))
                if starting
                else inst.on_receive
            )
            try:
                ok, value = self._invoke(inst, handler, inner,
                                         passthrough=_REFUSED_START if starting else None)
            except _REFUSED_START:  # a bad request or a start the store refused: no crash
                msg.future.set_exception()
                return True
            if not ok:
                with contextlib.suppress(queue.Full):  # a start may be answered already
                    msg.future.set_exception(exc_info=(type(value), value, value.__traceback__))
                self._crash(value, _phase_of(value))
                return False
            if not starting:
                msg.future.set(value)
            return True
        if cls in _PROXY:  # proxy .defer(): a tell of a method call
            ok, value = self._invoke(inst, functools.partial(self._proxy_message, inst), msg)
            if not ok:
                self._crash(value, _phase_of(value))
            return ok
        if cls is m.RunStep:
            assert self.workflows is not None
            self.workflows.run_step(inst, msg)
            if self.snapshots is not None:
                try:
                    self.snapshots.after_message(inst)
                except StateStoreWriteFailed as exc:  # sync durability: not acknowledged
                    self._crash(exc, "snapshot")
                    return False
            return True
        if cls is m.StartWorkflow:  # told, not asked: report a failed request, do not crash
            try:
                self.start_workflow(msg)
            except Exception as exc:
                self.hooks.lifecycle_error(self, exc, "start_workflow")
            return True
        if cls is m.StopRequest:
            self._stop_requests.append(msg)
            self._terminate(self._stop_deadline(), "stopped")
            return False
        if cls is m.ExitRequest:
            self._end_incarnation(crashed=False)
            self._report_down(None)
            return False
        return True  # pragma: no cover - _SPECIAL and this function list the same classes

    @staticmethod
    def _proxy_message(inst: Minion, msg: Any) -> Any:
        forward = getattr(inst, "_minion_forward", None)  # a placed minion's stand-in
        if forward is not None:
            return forward(msg)
        return proxy_message(inst, msg)

    def start_workflow(self, request: m.StartWorkflow,
                       answer: Callable[[Any], None] | None = None) -> Any:
        if self.workflows is None:
            support = Extensions.workflows
            if support is None:
                raise WorkflowError(f"{self.describe()}: workflows are not available")
            raise support.unknown(self.describe(), self.cls, request.name)
        return self.workflows.start(request.name, request.workflow_id, request.context, answer)

    # ----------------------------------------------------------------- incarnations
    def _start_incarnation(self) -> bool:
        """Construct, restore and start a new instance; a failure counts as a crash."""
        self.incarnation += 1
        self.restart_history = ()
        phase = PHASE_INIT
        restored = False
        inst: Minion | None = None
        try:
            self.system.prepare_incarnation(self)  # opens the class's resources, if any
            inst = self._blank()
            self._initialise(inst)
            phase = PHASE_RESTORE
            if self.snapshots is None and _class_info(self.cls)[0]:
                self.snapshots = Snapshotter(self, self.system.store)
            if self.snapshots is not None:
                outcome = self.snapshots.restore_into(inst)
                if outcome is None:  # the snapshot was quarantined: start from scratch
                    phase = PHASE_INIT
                    inst = self._blank()
                    self._initialise(inst)
                    phase = PHASE_RESTORE
                restored = bool(outcome)
            if self.workflows is None and _class_info(self.cls)[1]:
                assert Extensions.workflows is not None  # declared() said so
                self.workflows = Extensions.workflows.runner(self)
                self.workflows.resume()
            phase = PHASE_ON_START
            self.instance = inst
            self._instance_changed()
            inst.on_start()
        except BaseException as exc:
            self.instance = inst
            self._crash(exc, phase)
            return False
        if self.parent is not None:
            self.hooks.minion_started(self, restored)
        return True

    def _blank(self) -> Minion:
        """A new, not yet initialised instance, already ``last_instance`` (a proxy made
        inside ``__init__`` introspects it; a crash in ``__init__`` still gets its
        ``on_failure``)."""
        placement = self.placement
        inst: Minion = (self.cls.__new__(self.cls) if placement is None
                        else placement.stand_in(self.cls))
        inst.__dict__["_minion_cell"] = self
        # the base attributes first, so a subclass that forgets super().__init__() works
        _bind_base(inst)
        self.last_instance = inst
        return inst

    def _initialise(self, inst: Minion) -> None:
        """Run ``__init__`` with the spawn arguments."""
        inst.__init__(*self.args, **self.kwargs)  # type: ignore[misc]

    def _end_incarnation(self, crashed: bool, exc: BaseException | None = None) -> None:
        """Stop the children, then run ``on_stop`` (or ``on_failure`` after a crash)."""
        inst, self.instance = self.instance, None
        self._stop_children(self._stop_deadline(), "parent-restart")
        if inst is None:
            return
        try:
            if crashed and exc is not None:
                inst.on_failure(type(exc), exc, exc.__traceback__)
            elif not crashed:
                inst.on_stop()
        except BaseException as err:
            self.hooks.lifecycle_error(self, err, "on_failure" if crashed else "on_stop")

    def _crash(self, exc: BaseException, phase: str) -> None:
        if isinstance(exc, SystemNotRunning) and not self.system.accepting:
            # spawning children while the system shuts down: a race with shutdown, not a bug
            self._end_incarnation(crashed=False)
            self._report_down(None)
            return
        if not isinstance(exc, Exception):
            self._stop_system(exc, phase)
            return
        self.hooks.minion_crashed(self, exc, phase)
        self._end_incarnation(crashed=True, exc=exc)
        self._report_down(exc)

    def _stop_system(self, exc: BaseException, phase: str) -> None:
        """KeyboardInterrupt, SystemExit and other non-``Exception`` errors stop the whole
        system, as in pykka: a restart would swallow a Ctrl-C or a ``sys.exit()``. The
        minion handles nothing more; the shutdown stops it in the usual order (its
        ``on_stop`` runs if its instance was built). ``SystemExit(0)`` is a clean exit,
        not a crash."""
        clean = isinstance(exc, SystemExit) and exc.code in (0, None)
        if not clean:
            self.hooks.minion_crashed(self, exc, phase)
        if phase in (PHASE_INIT, PHASE_RESTORE):
            self.instance = None  # nothing was started, so nothing to stop
        self._interrupted = True
        self.system.root_failed(None if clean else exc)

    def _report_down(self, exc: BaseException | None) -> None:
        if self.parent is None:
            self.system.root_failed(exc)
        else:
            self.parent.send_system(m.ChildDown(self, self.incarnation, exc))

    def _terminate(self, deadline: float, reason: str) -> None:
        self.stop_reason = self.stop_reason or reason  # also tells the parent we are stopping
        if deadline <= time.monotonic():
            # we come late (a stuck handler): our supervisor has moved on without us, so our
            # own subtree gets a stop_timeout rather than no time at all
            deadline = self._stop_deadline()
        inst, self.instance = self.instance, None
        self._stop_children(deadline, reason)
        if inst is not None:
            try:
                inst.on_stop()
            except BaseException as err:
                self.hooks.lifecycle_error(self, err, "on_stop")
        self.terminated = True

    # ----------------------------------------------------------------- runtime messages
    def _handle_system(self, msg: Any) -> None:
        if isinstance(msg, m.ChildDown):
            self._supervise(msg)
        elif isinstance(msg, m.Terminate):
            self._terminate(msg.deadline, msg.reason)
        elif isinstance(msg, m.Halt):
            self._drop_to_mark()
        elif isinstance(msg, m.StopInstance):
            if self.instance is not None:
                self._end_incarnation(crashed=False)
            msg.done.set()
        elif isinstance(msg, m.StopPending):
            if self.instance is None:  # crashed or waiting to restart: stop right away
                self._terminate(self._stop_deadline(), "stopped")
        elif isinstance(msg, m.Restart):
            if self.thread is None and self._park(msg):
                return
            with self._sys_cond:  # the backoff; a stop or terminate request cuts it short
                while not (self._terminate_requested or self._stop_requested or self.closing):
                    left = msg.start_at - time.monotonic()
                    if left <= 0:
                        break
                    self._sys_cond.wait(left)
            try:
                if self._stop_requested and not self._terminate_requested:
                    self._terminate(self._stop_deadline(), "stopped")
                elif not (self._terminate_requested or self.closing):
                    msg.failed = not self._start_incarnation()
            finally:
                if msg.started is not None:
                    msg.started.set()

    # ----------------------------------------------------------------- the end
    def _finalize(self) -> None:
        self._finalized = True
        self.terminated = True
        self.instance = None
        self._instance_changed()
        while self._sys:  # runtime messages we will never handle: release their waiters
            pending = self._sys.pop(0)
            if isinstance(pending, m.StopInstance):
                pending.done.set()
            elif isinstance(pending, m.Restart) and pending.started is not None:
                pending.started.set()
        parent = self.parent
        if parent is not None:
            with parent.children_lock:
                if parent.children.get(self.name) is self:
                    del parent.children[self.name]
        held, self._held = self._held, _NOTHING
        self._drop_backlog(held)
        with self.watch_lock:
            self._watch_closed = True
            watchers, self.watchers = self.watchers, _NO_CELLS
            watching, self.watching = self.watching, _NO_CELLS
        for target in watching:
            with target.watch_lock:
                target.watchers = target.watchers - {self}
        if watchers:
            from minions_actors.runtime.minion import Terminated

            note = Terminated(self.ref, self.path, self.stop_reason or "stopped")
            for watcher in watchers:
                try:
                    watcher.ref.tell(note)
                except MailboxFull as exc:  # the watcher is not keeping up: say so, go on
                    self.hooks.lifecycle_error(watcher, exc, "death-watch")
        if self.parent is not None:
            self.hooks.minion_stopped(self, self.stop_reason or "stopped")
            self.system.unregister_cell(self)
        self.stopped_event.set()

    # ----------------------------------------------------------------- death watch
    def watch(self, target: Cell) -> None:
        """Deliver ``Terminated`` to this cell when ``target`` stops for good."""
        with target.watch_lock:
            alive = not target._watch_closed
            if alive:
                target.watchers = target.watchers | {self}
        if alive:
            with self.watch_lock:
                self.watching = self.watching | {target}
        else:
            from minions_actors.runtime.minion import Terminated

            self.ref.tell(Terminated(target.ref, target.path, target.stop_reason or "stopped"))

    def unwatch(self, target: Cell) -> None:
        with target.watch_lock:
            target.watchers = target.watchers - {self}
        with self.watch_lock:
            self.watching = self.watching - {target}
