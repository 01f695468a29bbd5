"""Checking a spawn before anything is created: the class, its constructor's arguments,
the restart type, the name and the other options (each with an error that says what to
pass instead)."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from minions_actors.errors import SpawnError
from minions_actors.runtime.dispatch import DEDICATED_THREAD_RULE
from minions_actors.runtime.minion import Minion
from minions_actors.runtime.spawner import spawn
from minions_actors.runtime.supervision import RestartType, check_restart_type
from minions_actors.support.option_checks import Rule, choice, integer, seconds


@functools.lru_cache(maxsize=1024)
def _signature(cls: type) -> inspect.Signature | None:
    try:
        return inspect.signature(cls)
    except (TypeError, ValueError):
        return None


# the keyword options of spawn() itself, offered when a constructor keyword is close to one
SPAWN_OPTIONS = tuple(
    p.name for p in inspect.signature(spawn).parameters.values() if p.kind is p.KEYWORD_ONLY
)


def _option_hint(keywords: tuple[str, ...]) -> str:
    """' (did you mean ...?)' for the first keyword that looks like a misspelt spawn option."""
    for keyword in keywords:
        import difflib  # (only for a misspelt option: not at start-up)

        close = difflib.get_close_matches(keyword, SPAWN_OPTIONS, n=1)
        if close:
            return f" (did you mean {close[0]!r}? an option of spawn() itself)"
    return ""


@functools.lru_cache(maxsize=4096)
def _bind_error(cls: type, positional: int, keywords: tuple[str, ...]) -> str | None:
    """Why ``cls`` cannot be constructed with that many positional arguments and those
    keyword names (None: it can). Binding looks at the count and the names, never the
    values, so the answer is kept per shape: ``Signature.bind`` was ~10 us of each spawn."""
    name = cls.__name__
    if getattr(cls, "__init__", None) is Minion.__init__:  # (getattr: mypy rejects cls.__init__)
        # Minion.__init__ takes anything (pykka's Actor does too): refuse here, or a
        # misspelt spawn option would start the minion without it and say nothing
        if not positional and not keywords:
            return None
        got = (f"{positional} positional argument(s)" if positional else
               f"keyword {', '.join(map(repr, keywords))}{_option_hint(keywords)}")
        return (f"{name} takes no constructor arguments (it has no __init__ of its own), "
                f"got {got}")
    sig = _signature(cls)
    if sig is None:
        return None
    try:
        sig.bind(*range(positional), **dict.fromkeys(keywords))
    except TypeError as exc:
        shown = ", ".join(str(p.replace(annotation=p.empty)) for p in sig.parameters.values())
        takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
        unknown = () if takes_any else tuple(k for k in keywords if k not in sig.parameters)
        return (f"cannot construct {name}({shown}) with the arguments given to spawn(): "
                f"{exc}{_option_hint(unknown)}")
    return None


def _is_placement(value: object) -> bool:
    return callable(getattr(value, "stand_in", None)) and callable(getattr(value, "check", None))


#: the checks of spawn()'s options (name and restart have their own, below)
SPAWN_RULES: dict[str, Rule] = {
    "mailbox_size": integer(1, none="unbounded"),
    "mailbox_overflow": choice("block", "raise"),
    "mailbox_put_timeout": seconds(above=False, inf="wait for room forever"),
    "dedicated_thread": DEDICATED_THREAD_RULE,
    "placement": Rule("None (this process) or a placement such as ChildProcess(...) or "
                      "Ray(...)", (object,), _is_placement, bad_value=TypeError),
}
_DEFAULTS = (None, "block", 1.0, None, None)
_RULE_ITEMS = tuple(SPAWN_RULES.items())


def check_spawn_options(mailbox_size: object, mailbox_overflow: object,
                        mailbox_put_timeout: object, dedicated_thread: object,
                        placement: object) -> None:
    """Raise the option's ``ValueError``/``TypeError`` for a bad spawn option."""
    values = (mailbox_size, mailbox_overflow, mailbox_put_timeout, dedicated_thread, placement)
    if values == _DEFAULTS and type(mailbox_put_timeout) is float:  # 1 == 1.0 == True
        return  # the common spawn: nothing to check (spawn is on the hot path)
    for (name, rule), value in zip(_RULE_ITEMS, values, strict=True):
        rule.check(name, value)


def check_spawn(cls: type[Minion], args: tuple[Any, ...], kwargs: dict[str, Any],
                name: str | None, restart: str) -> RestartType:
    """Raise :class:`SpawnError` or :class:`ValueError` for a spawn that cannot work; return
    the checked restart type (the other options: :func:`check_spawn_options`)."""
    # (the MRO, not issubclass: Minion is an ABC, whose check is a Python call per spawn)
    if not (isinstance(cls, type) and Minion in cls.__mro__):
        raise SpawnError(f"spawn() takes a Minion subclass, got {cls!r}")
    if cls.__dict__.get("_minions_is_gru"):
        raise SpawnError("Gru is the root of the system and cannot be spawned")
    restart_type = check_restart_type(restart)
    error = _bind_error(cls, len(args), tuple(kwargs))
    if error is not None:
        raise SpawnError(error)
    cls.check_args(*args, **kwargs)
    if name is not None:
        check_name(name)
    return restart_type


def check_name(name: object) -> None:
    """Raise a clear ValueError unless ``name`` can name a minion."""
    if not isinstance(name, str) or not name or "/" in name or not name.isprintable():
        raise ValueError(
            f"a minion name is a non-empty str of printable characters without '/', got "
            f"{name!r} (paths are built from names: parent/child; a control character "
            f"such as a newline could forge log lines)"
        )


def check_async_spawn(cls: type[Minion], dedicated_thread: bool | None,
                      placement: object) -> None:
    """Refuse what an async minion cannot be: on a thread of its own, or placed away
    (its coroutines run on the system's event loop), and a bad ``max_concurrency``."""
    if dedicated_thread is None and placement is None and _plain_async_class(cls):
        return  # (the common spawn: the class's attributes were checked once)
    from minions_actors.runtime.asyncness import async_methods

    name = cls.__name__
    methods = ", ".join(async_methods(cls))
    if placement is not None:
        raise SpawnError(
            f"{name} is an async minion ({methods} are 'async def') and cannot be placed "
            f"(placement runs a minion's handlers in another process, where its coroutines "
            f"have no event loop): spawn it here, or give the placed work to a sync minion")
    if dedicated_thread is None:
        dedicated_thread = getattr(cls, "dedicated_thread", None)
    if dedicated_thread:
        raise SpawnError(
            f"{name} is an async minion ({methods} are 'async def'): its coroutines run on "
            f"the system's event loop, not on a thread of its own; drop dedicated_thread "
            f"(or write its handlers as plain 'def' to give it a thread)")
    MAX_CONCURRENCY_RULE.check(f"{name}.max_concurrency", getattr(cls, "max_concurrency", 1))


#: the check of the class attribute ``max_concurrency`` of async minions
MAX_CONCURRENCY_RULE = integer(1)


@functools.lru_cache(maxsize=1024)
def _plain_async_class(cls: type[Minion]) -> bool:
    """The async class asks for no thread of its own and has a good ``max_concurrency``."""
    if getattr(cls, "dedicated_thread", None):
        return False
    try:
        MAX_CONCURRENCY_RULE.check("max_concurrency", getattr(cls, "max_concurrency", 1))
    except (TypeError, ValueError):
        return False
    return True
