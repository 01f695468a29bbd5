"""Prometheus families of user resources and pipelines (see :mod:`minions_actors.resources`
and :mod:`minions_actors.pipelines`).

:class:`~minions_actors.observability.metrics.MetricsHooks` owns one
:class:`ResourceMetrics` (attribute ``extensions``) and exports its families with the others.
Labels are bounded: ``resource`` is a registered resource name, ``method`` one of the public
methods its class defines (fixed when it is registered), ``pipeline`` a pipeline minion's
path (a handful per process).
Errors of user resources are also counted, by name, in ``minions_resource_errors_total``
next to the runtime's own resources (``state_store``, ``metrics``).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

__all__ = ["EXTENSION_FAMILIES", "ResourceMetrics"]

#: The families exported here: name (as exposed, without sample suffixes) -> type.
EXTENSION_FAMILIES: dict[str, str] = {
    "minions_resource_calls_total": "counter",
    "minions_resource_call_errors_total": "counter",
    "minions_resource_call_seconds": "histogram",
    "minions_pipeline_events_total": "counter",
    "minions_pipeline_produce_errors_total": "counter",
    "minions_pipeline_backpressure_seconds_total": "counter",
}

_CALL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ResourceMetrics:
    """The counters and histogram of resource calls and pipelines (not registered here:
    the owner exports :meth:`metrics` through its registry)."""

    def __init__(self) -> None:
        rm = ["resource", "method"]
        self.calls = Counter(
            "minions_resource_calls", "Calls of public resource methods (errors included).",
            rm, registry=None,
        )
        self.call_errors = Counter(
            "minions_resource_call_errors",
            "Calls of public resource methods that raised (also while unavailable).",
            rm, registry=None,
        )
        self.call_seconds = Histogram(
            "minions_resource_call_seconds", "Latency of public resource method calls.",
            rm, buckets=_CALL_BUCKETS, registry=None,
        )
        self.events = Counter(
            "minions_pipeline_events", "Events a pipeline produced and handed to its "
            "subscribers.", ["pipeline"], registry=None,
        )
        self.produce_errors = Counter(
            "minions_pipeline_produce_errors",
            "produce() calls that raised (each one a crash of the pipeline).",
            ["pipeline"], registry=None,
        )
        self.backpressure_seconds = Counter(
            "minions_pipeline_backpressure_seconds",
            "Seconds a pipeline waited for room in a full subscriber mailbox.",
            ["pipeline"], registry=None,
        )

    def metrics(self) -> list[Any]:
        return [self.calls, self.call_errors, self.call_seconds, self.events,
                self.produce_errors, self.backpressure_seconds]

    def method(self, resource: str, method: str) -> tuple[Any, Any, Any]:
        """The (calls, errors, seconds) children of one resource method, created at 0."""
        return (self.calls.labels(resource, method), self.call_errors.labels(resource, method),
                self.call_seconds.labels(resource, method))

    def pipeline(self, path: str) -> tuple[Any, Any, Any]:
        """The (events, produce errors, back-pressure seconds) children of one pipeline."""
        return (self.events.labels(path), self.produce_errors.labels(path),
                self.backpressure_seconds.labels(path))
