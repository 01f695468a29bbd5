"""Whether a minion class is async: which of its handlers are coroutine functions.

One definition, read by spawn (an async class gets an
:class:`~minions_actors.runtime.async_cell.AsyncCell`) and by its checks.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

#: the hooks and handler a class may write as ``async def`` (beside its public methods)
HANDLERS = ("on_receive", "on_start", "on_stop", "on_failure")


@functools.lru_cache(maxsize=1024)
def async_methods(cls: type) -> tuple[str, ...]:
    """The names of ``cls``'s handlers, hooks and public methods that are coroutine
    functions (the base class's no-op hooks are plain functions: they never count)."""
    found = []
    for name in dir(cls):
        if name.startswith("_") and name not in HANDLERS:
            continue
        attr: Any = inspect.getattr_static(cls, name, None)
        if isinstance(attr, (staticmethod, classmethod)):
            attr = attr.__func__
        if inspect.iscoroutinefunction(attr) or inspect.isasyncgenfunction(attr):
            found.append(name)
    return tuple(found)


def is_async(cls: type) -> bool:
    """True when ``cls`` has an ``async def`` handler, hook or public method."""
    return bool(async_methods(cls))
