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

from minions_actors.observability.families import Family, create_families, exposed_families

__all__ = ["EXTENSION_FAMILIES", "ResourceMetrics"]

_CALL_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_METHOD = ("resource", "method")
_PIPELINE = ("pipeline",)


class ResourceMetrics:
    """The counters and histogram of resource calls and pipelines (not registered here:
    the owner exports :meth:`metrics` through its registry)."""

    calls = Family(Counter, "minions_resource_calls",
                   "Calls of public resource methods (errors included).", _METHOD)
    call_errors = Family(Counter, "minions_resource_call_errors", "Calls of public resource "
                         "methods that raised (also while unavailable).", _METHOD)
    call_seconds = Family(Histogram, "minions_resource_call_seconds",
                          "Latency of public resource method calls.", _METHOD, _CALL_BUCKETS)
    events = Family(Counter, "minions_pipeline_events",
                    "Events a pipeline produced and handed to its subscribers.", _PIPELINE)
    produce_errors = Family(Counter, "minions_pipeline_produce_errors",
                            "produce() calls that raised (each one a crash of the pipeline).",
                            _PIPELINE)
    backpressure_seconds = Family(Counter, "minions_pipeline_backpressure_seconds",
                                  "Seconds a pipeline waited for room in a full subscriber "
                                  "mailbox.", _PIPELINE)

    def __init__(self) -> None:
        self._metrics = create_families(self)

    def metrics(self) -> list[Any]:
        return list(self._metrics)

    def method(self, resource: str, method: str) -> tuple[Any, Any, Any]:
        """The (calls, errors, seconds) children of one resource method, created at 0."""
        return (self.calls.labels(resource, method), self.call_errors.labels(resource, method),
                self.call_seconds.labels(resource, method))

    def pipeline(self, path: str) -> tuple[Any, Any, Any]:
        """The (events, produce errors, back-pressure seconds) children of one pipeline."""
        return (self.events.labels(path), self.produce_errors.labels(path),
                self.backpressure_seconds.labels(path))


#: The families exported here: name (as exposed, without sample suffixes) -> type.
EXTENSION_FAMILIES: dict[str, str] = exposed_families(ResourceMetrics)
