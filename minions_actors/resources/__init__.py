"""User resources: shared dependencies with a lifecycle (an HTTP session, a database pool).

Subclass :class:`Resource` (``open``/``close``, optionally ``health_check``), register an
instance with the system (``ActorSystem.start(resources=[...])`` or
``system.resources.add(...)``) and declare it on the minion classes that use it::

    class Fetcher(Minion):
        api = uses("api")          # filled in by the runtime: self.api.get(...)

The runtime opens a resource just before the first minion that declares it is built, after
the resources it declares itself (``uses`` works on resources too: dependency order), and
closes it once the last of its users has stopped for good, its own dependencies after it
(reverse order): during a shutdown, as the minions stop. What a minion gets is a *handle*:
every public method call through it is counted and timed per resource and method, and a
failure is logged with the resource's name and the calling minion's path, never with the
call's arguments. The registry itself lives in :mod:`minions_actors.resources.registry`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable
from time import perf_counter
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, overload

from minions_actors.errors import ResourceError, ResourceUnavailable
from minions_actors.runtime.supervision import Backoff
from minions_actors.support.option_checks import seconds

if TYPE_CHECKING:
    from minions_actors.resources.registry import Entry

__all__ = ["Resource", "ResourceError", "ResourceUnavailable", "uses"]

R = TypeVar("R")


class Resource:
    """Base class of user resources; override :meth:`open`, :meth:`close` and, optionally,
    :meth:`health_check`. Every other public method is measured when called through a
    minion's handle. Methods are called from many minion threads: keep them thread-safe.

    Any of them may be ``async def``: ``open``/``close``/``health_check`` then run on the
    system's event loop (bounded as the sync ones are; cancelled past the bound), and an
    async method called through a handle returns a coroutine that async minions await on
    that same loop (measured until it ends).
    """

    name: ClassVar[str] = ""
    """The name the resource is registered under by default (else the class name, lower
    case); ``system.resources.add(resource, name=...)`` overrides it."""

    health_interval: ClassVar[float | None] = None
    """Seconds between two :meth:`health_check` calls while open (None: never checked)."""

    reopen_backoff: ClassVar[Backoff] = Backoff(initial=0.5, maximum=30.0)
    """How long to wait before each attempt to reopen an unhealthy resource."""

    open_timeout: ClassVar[float] = 10.0
    """Seconds one :meth:`open` may take (it runs on a thread of its own): past it, the
    start of the minion that needed it fails and the call is left behind on its thread."""

    def open(self) -> Awaitable[None] | None:
        """Acquire what the resource holds (connect, log in). Raise to fail the start of
        the minions that need it."""

    def close(self) -> Awaitable[None] | None:
        """Release it. Bounded by the system's ``stop_timeout``; an exception is logged."""

    def health_check(self) -> bool | Awaitable[bool]:
        """True when usable. False or an exception: the resource is closed and reopened with
        :attr:`reopen_backoff` while calls raise :class:`ResourceUnavailable`."""
        return True


#: What the base class defines: lifecycle hooks, never measured as calls.
_LIFECYCLE = frozenset(n for n in vars(Resource) if not n.startswith("_"))


#: ``open_timeout``, a class attribute, checked as the options of ``start()`` are
OPEN_TIMEOUT_RULE = seconds(above=True)


def check_open_timeout(cls: type[Resource]) -> None:
    """``open_timeout`` is a positive, finite number of seconds (how long one open() may
    take); the error names the class."""
    OPEN_TIMEOUT_RULE.check(f"{cls.__name__}.open_timeout", cls.open_timeout)


def default_name(cls: type[Resource]) -> str:
    return cls.name or cls.__name__.lower()


@functools.lru_cache(maxsize=256)
def public_methods(cls: type) -> frozenset[str]:
    """The methods measured on a resource class: a bounded label set, fixed per class."""
    return frozenset(
        n for n in dir(cls)
        if not n.startswith("_") and n not in _LIFECYCLE and callable(getattr(cls, n, None))
        and not isinstance(getattr(cls, n, None), (type, Uses))
    )


class Uses(Generic[R]):
    """Descriptor made by :func:`uses`: on an instance it gives the resource's handle."""

    def __init__(self, target: str | type[R]) -> None:
        if isinstance(target, str):
            if not target:
                raise ValueError("uses() takes a resource name or a Resource subclass")
            self.resource_name = target
        elif isinstance(target, type) and issubclass(target, Resource):
            self.resource_name = default_name(target)
        else:
            raise TypeError(f"uses() takes a resource name or a Resource subclass, "
                            f"got {target!r}")
        self.attr = ""

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr

    @overload
    def __get__(self, inst: None, owner: type) -> Uses[R]: ...

    @overload
    def __get__(self, inst: object, owner: type) -> R: ...

    def __get__(self, inst: object | None, owner: type) -> Any:
        if inst is None:
            return self
        from minions_actors.resources.registry import registry_of_user

        registry, user = registry_of_user(inst)
        return registry.handle(self.resource_name, user)

    def __repr__(self) -> str:
        return f"uses({self.resource_name!r})"


@overload
def uses(target: type[R]) -> Uses[R]: ...


@overload
def uses(target: str) -> Uses[Any]: ...


def uses(target: str | type[R]) -> Uses[Any]:
    """Declare, as a class attribute of a minion (or of a resource), that it uses the
    resource registered under ``target`` (a name, or a :class:`Resource` subclass meaning
    its default name). The runtime opens it before the minion is built; on an instance
    the attribute is a measured handle to it (typed as the class, for ``uses(Class)``)."""
    return Uses(target)


@functools.lru_cache(maxsize=1024)
def declared(cls: type) -> tuple[str, ...]:
    """The resource names ``cls`` declares with :func:`uses` (in declaration order)."""
    attrs: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):  # a subclass may override (or drop) a declaration
        attrs.update(vars(klass))
    return tuple(dict.fromkeys(v.resource_name for v in attrs.values() if isinstance(v, Uses)))



@functools.lru_cache(maxsize=1024)
def declares_any(cls: type) -> bool:
    """True when ``cls`` declares a resource (once per class: declarations are class
    attributes, set when the class is created)."""
    return bool(declared(cls))


class Handle:
    """What a user reads from its ``uses`` attribute: the resource, with every public method
    call counted, timed and (when it fails) logged. Other attributes pass through."""

    __slots__ = ("_entry", "_user")

    def __init__(self, entry: Entry, user: str) -> None:
        self._entry = entry
        self._user = user

    def __getattr__(self, attr: str) -> Any:
        entry = self._entry
        value = getattr(entry.resource, attr)
        if attr not in entry.methods:
            return value
        measured = _measured_async if inspect.iscoroutinefunction(value) else _measured
        return functools.partial(measured, entry, attr, value, self._user)

    def __repr__(self) -> str:
        return f"<handle of resource {self._entry.name!r} for {self._user}>"


def _measured(entry: Entry, method: str, fn: Any, user: str, *args: Any, **kwargs: Any) -> Any:
    """One measured call (see :class:`Handle`); the arguments are never logged."""
    t0 = perf_counter()
    try:
        entry.check_available()
        return fn(*args, **kwargs)
    except Exception as exc:
        _failed(entry, method, user, exc)
        raise
    finally:
        _count(entry, method, t0)


async def _measured_async(entry: Entry, method: str, fn: Any, user: str, *args: Any,
                          **kwargs: Any) -> Any:
    """One measured call of an ``async def`` method: timed until its coroutine ends."""
    t0 = perf_counter()
    try:
        entry.check_available()
        return await fn(*args, **kwargs)
    except Exception as exc:
        _failed(entry, method, user, exc)
        raise
    finally:
        _count(entry, method, t0)


def _failed(entry: Entry, method: str, user: str, exc: Exception) -> None:
    errors = entry.series(method)[1]
    if errors is not None:
        errors.inc()
    entry.call_failed(method, user, exc)


def _count(entry: Entry, method: str, t0: float) -> None:
    calls, _, seconds = entry.series(method)
    if calls is not None:
        calls.inc()
        seconds.observe(perf_counter() - t0)
