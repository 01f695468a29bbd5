"""Per-minion snapshot handling: take, encode, compare, hand to the store, restore.

A :class:`Snapshotter` is attached to a persistent minion's cell. The cell calls
:meth:`Snapshotter.after_message` after each successfully handled message (the only
persistence work on the message path: ``snapshot()`` plus JSON encoding, then a
non-blocking hand-off to the store's writer) and :meth:`Snapshotter.restore_into` when it
builds a new incarnation. The newest good snapshot is also kept in memory, so a crash rolls
the minion back to its state after its last successful message even without a store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import SnapshotError

if TYPE_CHECKING:
    from ._cell import Cell
    from .minion import Minion
    from .persistence import StateStore

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

_JSON_SCALARS = (str, int, float, bool, type(None))


def is_persistent(cls: type[Minion]) -> bool:
    """A minion class is persistent when it overrides both ``snapshot`` and ``restore``."""
    from .minion import Minion

    return cls.snapshot is not Minion.snapshot and cls.restore is not Minion.restore


def find_unserialisable(value: Any, where: str = "") -> tuple[str, str] | None:
    """Locate the first value JSON cannot hold: (key path such as ``items[2].when``, type)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return (f"{where}[{key!r}]" if where else repr(key), f"key {type(key).__name__}")
            found = find_unserialisable(item, f"{where}.{key}" if where else key)
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = find_unserialisable(item, f"{where}[{index}]")
            if found:
                return found
        return None
    if (isinstance(value, float) and value != value) or value in (float("inf"), float("-inf")):
        return (where or "<root>", f"float {value!r}")
    if isinstance(value, _JSON_SCALARS):
        return None
    return (where or "<root>", type(value).__name__)


def encode_snapshot(cell: Cell, state: Any) -> str:
    """Encode ``state`` as compact JSON, or raise :class:`SnapshotError` naming the field."""
    try:
        return _encode(state)
    except (TypeError, ValueError, RecursionError) as exc:
        found = find_unserialisable(state)
        where, kind = found if found else ("<unknown>", type(exc).__name__)
        raise SnapshotError(
            f"{cell.describe()}: snapshot() returned a value that is not JSON-serialisable "
            f"at {where!r} ({kind}). Return only dicts with str keys, lists, str, int, "
            f"finite float, bool and None (convert datetimes to ISO strings, sets to lists). "
            f"The previous snapshot is kept and the minion keeps running."
        ) from exc


class Snapshotter:
    """The persistence hook of one persistent minion (lives as long as its cell)."""

    __slots__ = ("_error_key", "_store", "cell", "last")

    def __init__(self, cell: Cell, store: StateStore | None) -> None:
        self.cell = cell
        self._store = store
        self.last: str | None = store.load(cell.path) if store is not None else None
        self._error_key: str | None = None

    def restore_into(self, instance: Minion) -> bool:
        """Give a new incarnation the newest good state; True when there was one."""
        if self.last is None:
            return False
        instance.restore(json.loads(self.last))
        return True

    def after_message(self, instance: Minion) -> None:
        """Take a snapshot after a successful message; store it when it changed."""
        try:
            text = encode_snapshot(self.cell, instance.snapshot())
        except Exception as exc:
            self._report(str(exc), exc)
            return
        if text == self.last:
            return
        self.last = text  # the newest good state: a crash rolls back to it
        if self._store is not None:
            try:
                self._store.save(self.cell.path, self.cell.cls_name, text)
            except Exception as exc:
                self._report(f"store: {exc}", exc)
                return
        self._error_key = None

    def _report(self, key: str, exc: BaseException) -> None:
        """Report a snapshot problem; ``first`` is True when it differs from the last one."""
        first = key != self._error_key
        self._error_key = key
        self.cell.hooks.snapshot_error(self.cell, exc, first)
