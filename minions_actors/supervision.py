"""The public home of the supervision strategies (defined in
:mod:`minions_actors.runtime.supervision`; this path is the documented one)."""

from minions_actors.runtime.supervision import (
    Backoff,
    OneForAll,
    OneForOne,
    RestartType,
    RestForOne,
    Strategy,
    time_to_give_up,
)

__all__ = ["Backoff", "OneForAll", "OneForOne", "RestForOne", "RestartType", "Strategy",
           "time_to_give_up"]
