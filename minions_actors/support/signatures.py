"""Typed signature copies: one definition of a list of keyword options, shared by the
methods that take it.

A method decorated with :func:`options_of` (or :func:`signature_of`) is seen by type
checkers, IDEs and ``inspect.signature`` (hence the API reference) with the parameters of
its source, so that the names, types and defaults of the options are written once and a
misspelt option is a type error where the source has no ``**kwargs``. At run time the
decorator only sets ``__signature__``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def options_of(
    options: Callable[P, Any],
) -> Callable[[Callable[..., R]], Callable[Concatenate[Any, P], R]]:
    """Give a method (or classmethod) the parameters of ``options`` (typically a frozen
    ``kw_only`` dataclass) after its own first one, keeping its own return type."""

    def apply(method: Callable[..., R]) -> Callable[Concatenate[Any, P], R]:
        own = inspect.signature(method)
        first = next(iter(own.parameters.values()))
        params = [first, *inspect.signature(options).parameters.values()]
        method.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
        return method

    return apply


def signature_of(
    source: Callable[Concatenate[Any, P], R],
) -> Callable[[Callable[..., Any]], Callable[Concatenate[Any, P], R]]:
    """Give a method the whole signature of the method ``source`` (for a protocol that
    declares a method a base class defines)."""

    def apply(method: Callable[..., Any]) -> Callable[Concatenate[Any, P], R]:
        method.__signature__ = inspect.signature(source)  # type: ignore[attr-defined]
        method.__doc__ = method.__doc__ or source.__doc__
        return method

    return apply
