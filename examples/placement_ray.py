"""A persistent minion placed on a local Ray cluster: the same class, still supervised.

``Tally`` is an ordinary persistent minion; ``placement=Ray(num_cpus=0)`` runs it as a Ray
actor. Its ref, supervisor and state store stay in this process: each reply brings the
snapshot home. The example kills the actor behind the minion's back (as a lost node would):
the death is noticed within about a second, without a message (the actor stops answering
the watcher's pings), the minion crashes with RayActorLost, Gru restarts it as a new actor,
restored from the store, and it carries on. shutdown() kills the actors it placed.

Needs ray: pip install 'minions-actors[ray]'

Run: python examples/placement_ray.py
"""

import os
import threading

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only

import ray

from minions_actors import ActorSystem, Hooks, Minion, Ray


class Crashes(Hooks):
    """Hears of crashes (an observer, as logs and metrics are)."""

    def __init__(self):
        self.seen = threading.Event()
        self.error = None

    def minion_crashed(self, cell, exc, phase):
        self.error = exc
        self.seen.set()


class Tally(Minion):
    def __init__(self):
        super().__init__()
        self.total = 0

    def on_receive(self, message):
        if message == "actor":
            return ray.get_runtime_context().get_actor_id()
        if message == "total":
            return self.total
        self.total += message
        return None

    def snapshot(self):
        return {"total": self.total}

    def restore(self, state):
        self.total = state["total"]


if __name__ == "__main__":
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    crashes = Crashes()
    system = ActorSystem.start(state_store="tally.db", metrics_port=None, file_logs=False,
                               stderr_logs=False, hooks=[crashes])
    tally = system.spawn(Tally, name="tally", placement=Ray(num_cpus=0))
    for n in range(1, 101):
        tally.tell(n)  # batched: many tells travel in one actor call
    print("total:", tally.ask("total", timeout=60))
    first = tally.ask("actor", timeout=60)
    # placed actors are named "minion <path> #<incarnation> <id>"
    [name] = [n for n in ray.util.list_named_actors() if n.startswith("minion tally #")]
    ray.kill(ray.get_actor(name))
    if crashes.seen.wait(60):  # noticed while idle: no message needed
        print(f"the actor died: {type(crashes.error).__name__}, the minion is restarted")
    print("total after the restart:", tally.ask("total", timeout=60))
    print("a new actor:", tally.ask("actor", timeout=60) != first)
    print("clean shutdown:", system.shutdown())
    ray.shutdown()
