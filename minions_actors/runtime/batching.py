"""The message loop of a minion whose instance takes tells in batches (a placed minion).

A call to where a placed minion runs (a child process, a Ray actor) costs far more than the
handler, so consecutive plain tells waiting in the mailbox go in one call, up to the
instance's ``_minion_max_batch``. Anything else (an ask, a proxy call, a runtime message)
ends the batch, so the order of the mailbox is kept. The instance reports how many
messages of the batch succeeded and the error of the one that failed; the snapshot it
returns is the state after the last successful one. As for a local minion, the failing
message is dropped and the minion crashes; the messages after it in the batch, already
taken from the mailbox, are *carried* to the next incarnation and handled first, so no
queued message is lost (a temporary or stopping minion has no next incarnation: they are
dead letters, as what is left in its mailbox). When the call itself fails (the process or
the actor died), the whole batch is carried and handled again one message at a time, so
that the culprit crashes alone (it crashes twice: once in the batch, once on its own).
"""

from __future__ import annotations

import queue
import weakref
from collections.abc import Callable, Sequence
from time import perf_counter
from typing import TYPE_CHECKING, Any

from minions_actors.errors import RefusedUnsent, StateStoreWriteFailed
from minions_actors.runtime.mailbox import WAKE

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion

#: (messages, ...) -> (how many succeeded, the failing message's exception or None)
ReceiveBatch = Callable[[Sequence[Any]], tuple[int, BaseException | None]]

_NOTHING: Any = object()
_carried: weakref.WeakKeyDictionary[Cell, list[Any]] = weakref.WeakKeyDictionary()


def run_batched(cell: Cell, inst: Minion, receive_batch: ReceiveBatch, special: Any) -> None:
    """The hot loop for a batching instance: runs until a runtime message arrives or the
    incarnation ends (as ``Cell._process_messages``)."""
    carried = _carried.pop(cell, None)
    if carried:
        for i, msg in enumerate(carried):
            if not cell._dispatch_one(inst, msg):
                if i + 1 < len(carried):
                    _carried[cell] = carried[i + 1:]
                return
    get, get_nowait = cell.inbox.get, cell.inbox.get_nowait
    sysq = cell._sys
    limit = max(1, int(getattr(inst, "_minion_max_batch", 1)))
    while True:
        msg = get()
        if sysq:
            if msg is not WAKE:
                cell._held = msg
            return
        if msg.__class__ in special:
            if not cell._dispatch_special(inst, msg):
                return
            continue
        batch, after = [msg], _NOTHING
        while len(batch) < limit:
            try:
                nxt = get_nowait()
            except queue.Empty:
                break
            if sysq or nxt is WAKE or nxt.__class__ in special:
                after = nxt
                break
            batch.append(nxt)
        if not _handle(cell, inst, receive_batch, batch, after):
            return
        if after is not _NOTHING:
            if after is not WAKE:
                cell._held = after  # handled first when the loop resumes
            return


def _handle(cell: Cell, inst: Minion, receive_batch: ReceiveBatch, batch: list[Any],
            after: Any) -> bool:
    """Run one batch; False when the incarnation crashed (the rest is carried). A message
    refused before it was sent (the sender's error) is a dead letter; the batch goes on."""
    while True:
        done, error, rest = _call(cell, inst, receive_batch, batch)
        if not isinstance(error, RefusedUnsent):
            break
        cell.refuse(batch[done], error)
        if not rest:
            return True
        batch = rest
    if error is None:
        return True
    cell.failed += 1
    if after is not _NOTHING and after is not WAKE:
        rest.append(after)
    if rest:
        if cell.restart == "temporary" or cell.stopping:  # no next incarnation: dead letters
            cell._settle(rest)
        else:
            _carried[cell] = rest
    cell._crash(error, "snapshot" if isinstance(error, StateStoreWriteFailed) else "message")
    return False


def _call(cell: Cell, inst: Minion, receive_batch: ReceiveBatch,
          batch: list[Any]) -> tuple[int, BaseException | None, list[Any]]:
    """One call with a batch: (how many succeeded, the error, what is left after it)."""
    t0 = perf_counter()
    try:
        done, error = receive_batch(batch)
        rest = batch[done + 1:]
    except BaseException as exc:
        # The call itself failed (the process or actor died): which message did it is not
        # known, and the state of those before it is gone with it. All of them are handled
        # again by the next incarnation, one at a time, where the culprit crashes alone.
        done, error = 0, exc
        rest = batch if len(batch) > 1 else []
    cell.busy_seconds += perf_counter() - t0
    cell.handled += done
    then = cell.after  # an extension's (a snapshot), or None
    if then is not None and done:
        try:
            then(inst)
        except StateStoreWriteFailed as exc:  # sync durability: not acknowledged
            if isinstance(error, RefusedUnsent):
                cell.refuse(batch[done], error)
            error = exc if error is None or isinstance(error, RefusedUnsent) else error
    return done, error, rest


def take_carried(cell: Cell) -> list[Any]:
    """The messages carried to the next incarnation, taken away (a cell that stops for
    good answers or counts them with its backlog)."""
    if not _carried:  # (most stops: no weak reference made to look for nothing)
        return []
    return _carried.pop(cell, None) or []
