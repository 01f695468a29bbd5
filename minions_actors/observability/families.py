"""Declaring Prometheus families once: a :class:`Family` class attribute gives a family's
kind, name, help and labels; :func:`create_families` builds an instance's metrics from them
and :func:`exposed_families` lists their exposed names and types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

#: the label of families counted per minion class
CLASS_LABELS = ("minion_class",)

_TYPES = {Counter: "counter", Gauge: "gauge", Histogram: "histogram"}


class Family:
    """One family, declared as a class attribute (counters get ``_total`` when exposed).

    :func:`create_families` puts the instance's own metric into the instance attribute of
    the same name, which then shadows this declaration (a non-data descriptor).
    """

    def __init__(self, kind: type[Counter | Gauge | Histogram], name: str,
                 documentation: str, labels: Sequence[str] = CLASS_LABELS,
                 buckets: Sequence[float] | None = None) -> None:
        self.kind, self.name, self.documentation = kind, name, documentation
        self.labels, self.buckets = tuple(labels), buckets
        self.attr = ""

    def __set_name__(self, owner: type, attr: str) -> None:
        self.attr = attr

    def __get__(self, obj: object | None, owner: type) -> Any:
        if obj is None:
            return self
        raise AttributeError(f"{owner.__name__}.{self.attr} is made by create_families()")

    def create(self) -> Any:
        """A new metric, not registered (its owner exports it through its registry)."""
        if self.buckets is not None and self.kind is Histogram:
            return Histogram(self.name, self.documentation, self.labels, registry=None,
                             buckets=self.buckets)
        return self.kind(self.name, self.documentation, self.labels, registry=None)

    @property
    def exposed(self) -> tuple[str, str]:
        """(name as exposed without sample suffixes, Prometheus type)."""
        kind = _TYPES[self.kind]
        return (f"{self.name}_total" if kind == "counter" else self.name), kind


def families_of(cls: type) -> list[Family]:
    """The families ``cls`` declares, in declaration order."""
    return [f for f in vars(cls).values() if isinstance(f, Family)]


def create_families(obj: object) -> list[Any]:
    """Give ``obj`` a new metric for each family its class declares; return them in order."""
    metrics = []
    for family in families_of(type(obj)):
        metric = family.create()
        setattr(obj, family.attr, metric)
        metrics.append(metric)
    return metrics


def exposed_families(cls: type) -> dict[str, str]:
    """Exposed name -> Prometheus type of every family ``cls`` declares."""
    return dict(f.exposed for f in families_of(cls))
