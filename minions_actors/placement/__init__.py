"""Where a minion's code runs: in the process (the default), in a child process, on a Ray
cluster. The ref, the supervisor, the state store and the metrics stay home; only handler
calls travel."""

from minions_actors.placement.child_process import ChildProcess
from minions_actors.placement.keyed import KeyedGroup
from minions_actors.placement.on_ray import Ray
from minions_actors.runtime.placement import Placement

__all__ = ["ChildProcess", "KeyedGroup", "Placement", "Ray"]
