"""The documented import path of the Prometheus metrics (defined in
:mod:`minions_actors.observability.metrics`)."""

from minions_actors.observability.metrics import *  # noqa: F403
from minions_actors.observability.metrics import __all__ as __all__
