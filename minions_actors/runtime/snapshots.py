"""Per-minion snapshot handling: take, encode, compare, hand to the store, restore.

Snapshots attach to cells as an extension (:data:`SNAPSHOTS`, registered when this module
is imported; see :mod:`.extensions`): a persistent minion's cell gets a
:class:`Snapshotter`, whose :meth:`Snapshotter.after_message` runs after each successfully
handled message (the only persistence work on the message path: ``snapshot()`` plus JSON
encoding, then a non-blocking hand-off to the store's writer) and whose
:meth:`Snapshotter.restore_into` runs when the cell builds a new incarnation. The newest
good snapshot is also kept in memory, so a crash rolls the minion back to its state after
its last successful message even without a store.
"""

from __future__ import annotations

import json
import json.scanner
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

from minions_actors.errors import SnapshotError, StateStoreWriteFailed
from minions_actors.runtime.extensions import Handler, register

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell
    from minions_actors.runtime.minion import Minion

def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _c_encoder() -> Callable[[Any], str] | None:
    """One prebuilt C encoder (json's ``encode()`` builds a new one per call: 2x the cost),
    or None where CPython's private accelerator is missing (``json.encoder`` then sets
    ``c_make_encoder`` to None) or has another shape."""
    import json.encoder as stdlib

    make = getattr(stdlib, "c_make_encoder", None)
    quote = getattr(stdlib, "c_encode_basestring", None)
    if make is None or quote is None:
        return None
    try:
        iterencode = make(None, _not_json, quote, None, ":", ",", False, False, False)
    except TypeError:  # a different signature in some future CPython
        return None

    def encode(value: Any) -> str:
        return "".join(iterencode(value, 0))

    return encode


def _stdlib_encoder() -> Callable[[Any], str]:
    """The public-API encoder with the same output (the fallback)."""
    return json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


_encode: Callable[[Any], str] = _c_encoder() or _stdlib_encoder()

# json's own scanner, called directly: ``json.loads`` adds three Python frames and two
# regular-expression matches around it (about a third of a small context's decode)
_scan: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
    json.JSONDecoder())  # type: ignore[arg-type]  # (typeshed names the wrong type)


def from_json(text: str) -> Any:
    """``json.loads(text)`` for the compact JSON :func:`to_json` writes; any other text
    (surrounding whitespace, an error to report) goes to ``json.loads`` itself."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)

#: The exact types that round-trip through JSON unchanged (``_plain``'s fast path).
_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})
_INF = (float("inf"), float("-inf"))


def is_persistent(cls: type[Minion]) -> bool:
    """A minion class is persistent when it overrides both ``snapshot`` and ``restore``."""
    from minions_actors.runtime.minion import Minion

    return cls.snapshot is not Minion.snapshot and cls.restore is not Minion.restore


def _plain(value: Any) -> bool:
    """Fast check that an encodable value decodes back equal: only dicts with str keys,
    lists and the exact scalar types. False is not an error yet: :func:`find_unserialisable`
    decides (it accepts subclasses such as OrderedDict or IntEnum, which decode equal).
    Only called once the C encoder succeeded, so ``value`` has no cycle."""
    t = value.__class__
    if t is dict:
        for key, item in value.items():
            if key.__class__ is not str:
                return False
            if item.__class__ in _PLAIN_SCALARS or _plain(item):
                continue
            return False
        return True
    if t is list:
        for item in value:
            if item.__class__ in _PLAIN_SCALARS or _plain(item):
                continue
            return False
        return True
    return t in _PLAIN_SCALARS


def find_unserialisable(value: Any) -> tuple[str, str] | None:
    """Locate the first value that JSON cannot hold or would change: (key path such as
    ``items[2].when``, what is wrong), or None when ``value`` round-trips unchanged.

    Iterative, so a circular or very deep structure is reported instead of overflowing
    the stack. Dict keys must be str (JSON would turn ``1`` into ``"1"``), tuples would come
    back as lists, floats must be finite.
    """
    todo: list[tuple[Any, str, tuple[int, ...]]] = [(value, "", ())]
    while todo:
        item, where, parents = todo.pop()
        if isinstance(item, (dict, list, tuple)) and id(item) in parents:
            return (where, f"circular reference to an enclosing {type(item).__name__}")
        if isinstance(item, dict):
            inner = (*parents, id(item))
            children = []
            for key, sub in item.items():
                if not isinstance(key, str):
                    back = f": it would come back as {json.dumps(key)!r}" if isinstance(
                        key, (int, float, type(None))) else ""
                    return (f"{where}[{key!r}]" if where else repr(key),
                            f"{type(key).__name__} key (JSON object keys are str{back})")
                children.append((sub, f"{where}.{key}" if where else key, inner))
            todo.extend(reversed(children))
        elif isinstance(item, tuple):
            return (where or "<root>", "tuple (it would come back as a list)")
        elif isinstance(item, list):
            inner = (*parents, id(item))
            todo.extend((sub, f"{where}[{i}]", inner) for i, sub in reversed(list(enumerate(item))))
        elif isinstance(item, float) and (item != item or item in _INF):
            return (where or "<root>", f"float {item!r}")
        elif not isinstance(item, (str, int, float, type(None))):
            return (where or "<root>", type(item).__name__)
    return None


def to_json(value: Any) -> tuple[str | None, tuple[str, str] | None]:
    """``(text, None)`` when ``value`` round-trips through JSON unchanged, else
    ``(None, (where, what))``: the one check shared by snapshots and workflow contexts."""
    try:
        text = _encode(value)
    except (TypeError, ValueError, RecursionError) as exc:
        return None, find_unserialisable(value) or ("<unknown>", f"{type(exc).__name__}: {exc}")
    if _plain(value):
        return text, None
    found = find_unserialisable(value)
    return (None, found) if found else (text, None)


def encode_snapshot(cell: Cell, state: Any) -> str:
    """Encode ``state`` as compact JSON, or raise :class:`SnapshotError` naming the field.

    The hot path: :func:`to_json` inlined (one C encode plus the :func:`_plain` walk)."""
    try:
        text: str = _encode(state)
    except (TypeError, ValueError, RecursionError) as exc:
        problem = find_unserialisable(state) or ("<unknown>", f"{type(exc).__name__}: {exc}")
    else:
        if _plain(state):
            return text
        found = find_unserialisable(state)
        if found is None:
            return text
        problem = found
    where, kind = problem
    raise SnapshotError(
        f"{cell.describe()}: snapshot() returned a value that JSON cannot store unchanged "
        f"at {where!r}: {kind}. Return only dicts with str keys, lists, str, int, finite "
        f"float, bool and None, without cycles (convert datetimes to ISO strings, sets and "
        f"tuples to lists, int keys to str). The previous snapshot is kept and the minion "
        f"keeps running."
    )


class SnapshotStore(Protocol):
    """The part of :class:`minions_actors.persistence.StateStore` that snapshots use (the
    runtime names no persistence class: any state store fits)."""

    def load(self, path: str) -> str | None: ...

    def save(self, path: str, minion_class: str, state_json: str) -> None: ...


class Snapshotter:
    """The persistence hook of one persistent minion (lives as long as its cell)."""

    __slots__ = ("_error_key", "_store", "cell", "last")

    def __init__(self, cell: Cell, store: SnapshotStore | None) -> None:
        self.cell = cell
        self._store = store
        self.last: str | None = store.load(cell.path) if store is not None else None
        self._error_key: str | None = None

    @property
    def after(self) -> Callable[[Minion], None]:
        return self.after_message

    def restore_into(self, instance: Minion) -> bool | None:
        """Give a new incarnation the newest good state; True when there was one, False
        when there was none, None when ``restore()`` raised and the class's
        ``restore_failure = "quarantine"`` moved the snapshot aside (start a fresh instance).
        With the default ``"crash"`` the exception propagates: a crash in ``restore``."""
        if self.last is None:
            return False
        try:
            instance.restore(json.loads(self.last))
        except Exception as exc:
            policy = getattr(self.cell.cls, "restore_failure", "crash")
            if policy not in ("crash", "quarantine"):
                raise TypeError(
                    f"{self.cell.cls_name}.restore_failure must be 'crash' or 'quarantine', "
                    f"got {policy!r}"
                ) from exc
            if policy == "crash":
                raise
            self._quarantine(exc)
            return None
        return True

    def _quarantine(self, exc: Exception) -> None:
        """Set the unloadable snapshot aside (in the store when it can), report, forget it."""
        if self._store is not None:
            move = getattr(self._store, "quarantine", None)
            if move is None:
                raise SnapshotError(
                    f"{self.cell.describe()}: restore() raised ({exc!r}) and "
                    f"{type(self._store).__name__} has no quarantine(path, error) method, so "
                    "the snapshot cannot be set aside; it is kept and the minion crashes."
                ) from exc
            move(self.cell.path, f"{type(exc).__name__}: {exc}")
        self.last = None
        self.cell.hooks.snapshot_quarantined(self.cell, exc)

    def after_message(self, instance: Minion) -> None:
        """Take a snapshot after a successful message; store it when it changed.

        Raises :class:`StateStoreWriteFailed` (only a sync-mode store does) when the snapshot
        could not be made durable: the message then counts as failed."""
        try:
            text = encode_snapshot(self.cell, instance.snapshot())
        except Exception as exc:
            self._report(str(exc), exc)
            return
        if text == self.last:
            return
        before, self.last = self.last, text  # the newest good state: a crash rolls back to it
        if self._store is not None:
            try:
                self._store.save(self.cell.path, self.cell.cls_name, text)
            except StateStoreWriteFailed:
                # Sync durability: the message is not acknowledged; the caller crashes the
                # minion, whose restart restores what is stored.
                self.last = before
                raise
            except Exception as exc:
                self._report(f"store: {exc}", exc)
                return
        self._error_key = None

    def _report(self, key: str, exc: BaseException) -> None:
        """Report a snapshot problem; ``first`` is True when it differs from the last one."""
        first = key != self._error_key
        self._error_key = key
        self.cell.hooks.snapshot_error(self.cell, exc, first)

    incarnation = restore_into


class SnapshotExtension:
    """Snapshots as a cell extension: persistent classes get a :class:`Snapshotter`."""

    key = "snapshots"
    told: dict[type, Handler] = {}
    asked: dict[type, Handler] = {}

    @staticmethod
    def used_by(cls: type) -> bool:
        return is_persistent(cast("type[Minion]", cls))

    @staticmethod
    def check_class(cls: type) -> None:
        """Nothing to check: ``restore_failure`` is checked when a restore fails."""

    @staticmethod
    def attach(cell: Cell) -> Snapshotter:
        return Snapshotter(cell, cell.system.store)


SNAPSHOTS = SnapshotExtension()
register(SNAPSHOTS)
