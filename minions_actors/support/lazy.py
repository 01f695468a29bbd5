"""Public names of a package imported at first use (PEP 562): a start needs none of them, and
their modules pull in what a start should not pay for (multiprocessing, subprocesses, hashlib,
asyncio)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_getattr(namespace: dict[str, Any], lazy: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``name`` from ``lazy[name]`` (a module path) when
    first looked up, and keeps it in ``namespace`` (the package's globals) so the next lookup
    is a plain one."""

    def __getattr__(name: str) -> Any:
        module = lazy.get(name)
        if module is None:
            raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
