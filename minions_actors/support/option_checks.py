"""One check per option: what it accepts, written once, for both the error and the docs.

A :class:`Rule` holds the phrase that says which values an option takes (``allowed``); the
error for a bad value is ``"<option> must be <allowed>, got <value>"``, and the row of
docs/configuration.md for the option quotes the same phrase (a test compares them). A value
of the wrong type is a ``TypeError``, a value of the right type out of range a ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Rule", "check_all", "choice", "flag", "integer", "seconds"]

_NUMBER = (int, float)


@dataclass(frozen=True, slots=True)
class Rule:
    """What one option accepts."""

    allowed: str  #: the phrase the error and the docs both use
    types: tuple[type, ...]  #: a value of another type is a TypeError (bool is no number)
    valid: Callable[[Any], bool] | None = None  #: the range, for a value of the right type
    bad_value: type[Exception] = ValueError  #: raised when ``valid`` says no

    def check(self, name: str, value: Any) -> None:
        """Raise the option's error unless ``value`` is allowed."""
        if not isinstance(value, self.types) or (
                isinstance(value, bool) and bool not in self.types):
            raise TypeError(self.message(name, value))
        if value is not None and self.valid is not None and not self.valid(value):
            raise self.bad_value(self.message(name, value))

    def message(self, name: str, value: Any) -> str:
        return f"{name} must be {self.allowed}, got {value!r}"


def check_all(rules: Mapping[str, Rule], values: Mapping[str, Any]) -> None:
    """Check every option of ``values`` that has a rule."""
    for name, rule in rules.items():
        if name in values:
            rule.check(name, values[name])


def seconds(*, above: bool, inf: str | None = None) -> Rule:
    """A duration: ``> 0`` (``above``) or ``>= 0`` seconds, finite unless ``inf`` says what
    an infinite one means."""
    bound = "> 0" if above else ">= 0"
    what = f"{bound} seconds" + (f" (inf: {inf})" if inf else " (a finite number)")
    if above:
        return Rule(what, _NUMBER, lambda v: v > 0 and (inf is not None or math.isfinite(v)))
    return Rule(what, _NUMBER, lambda v: v >= 0 and (inf is not None or math.isfinite(v)))


def integer(low: int, high: int | None = None, *, none: str | None = None) -> Rule:
    """An int from ``low`` (to ``high``); ``none``: what None means, when it is allowed."""
    what = f"an int >= {low}" + (f" and <= {high}" if high is not None else "")
    if none is not None:
        what = f"{what}, or None ({none})"
    types: tuple[type, ...] = (int,) if none is None else (int, type(None))
    return Rule(what, types, lambda v: low <= v and (high is None or v <= high))


def flag(*, none: str | None = None) -> Rule:
    """True or False (or None, meaning ``none``)."""
    if none is None:
        return Rule("True or False", (bool,))
    return Rule(f"True, False or None ({none})", (bool, type(None)))


def choice(*values: str) -> Rule:
    """One of a few strings."""
    shown = [repr(v) for v in values]
    what = " or ".join([", ".join(shown[:-1]), shown[-1]] if len(shown) > 1 else shown)
    return Rule(what, (str,), lambda v: v in values)
