"""Observability: the lifecycle hook protocol (:mod:`.hooks`) and the two observers the
system attaches to it, loguru logs (:mod:`.logs`) and Prometheus metrics (:mod:`.metrics`).

This layer sits below the runtime: the runtime calls hooks, and never the other way round.
"""
