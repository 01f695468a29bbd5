"""Ray placement on a simulated multi-node cluster (``ray.cluster_utils.Cluster``: several
raylets on this machine): a node dies, the minion comes back on another with its state."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from typing import Any

import pytest

from minions_actors import ActorSystem, Ray, RayActorLost

from ..apps.placed_minions import Where
from ..conftest import QUIET
from .test_sidecar import Events

pytestmark = [
    pytest.mark.ray,
    pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                       reason="ray is not installed: pip install -e '.[ray]'"),
    pytest.mark.timeout(240),
]


@pytest.fixture
def cluster() -> Iterator[Any]:
    """A head node for the driver and two worker nodes that offer the resource "pool"."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before import: loopback only
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1, resources={"pool": 1}) for _ in range(2)]
    ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
    cluster.wait_for_nodes()
    try:
        yield cluster, nodes
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_a_lost_node_is_a_crash_and_the_minion_comes_back_on_another_node(
    cluster: Any,
) -> None:
    ray_cluster, nodes = cluster
    events = Events()
    system = ActorSystem.start(hooks=[events], **QUIET)
    try:
        ref = system.spawn(Where, name="roamer",
                           placement=Ray(num_cpus=0, resources={"pool": 1}, call_timeout=60))
        assert ref.ask(5, timeout=120) == 5
        first = ref.ask("where", timeout=60)
        [doomed] = [n for n in nodes if n.node_id == first["node"]]
        ray_cluster.remove_node(doomed)  # the node and its actor are gone
        # noticed without a message: the actor stops answering the watcher's pings
        events.rec.wait_for(lambda evs: events.crashes("roamer"), timeout=120)
        [(phase, exc)] = events.crashes("roamer")
        assert phase == "placement" and isinstance(exc, RayActorLost)
        again = ref.ask("where", timeout=120)
        assert again["node"] != first["node"]
        assert ref.ask("count", timeout=60) == 5  # restored from the home store
    finally:
        assert system.shutdown(timeout=30)
