"""An app for the SIGTERM test of resources: prints its lifecycle, then waits for signals.

Run: python -m minions_actors run tests.apps.resource_app:main
"""

from __future__ import annotations

from typing import Any

from minions_actors import ActorSystem, Minion, Resource, uses


class Db(Resource):
    name = "db"

    def open(self) -> None:
        print("open db", flush=True)

    def close(self) -> None:
        print("close db", flush=True)

    def query(self) -> int:
        return 42


class Cache(Resource):
    name = "cache"
    db = uses(Db)

    def open(self) -> None:
        print(f"open cache (db says {self.db.query()})", flush=True)

    def close(self) -> None:
        print("close cache", flush=True)


class User(Minion):
    cache = uses(Cache)

    def on_receive(self, message: Any) -> Any:
        return message

    def on_stop(self) -> None:
        print("on_stop user", flush=True)


def main() -> ActorSystem:
    system = ActorSystem.start(state_store=None, metrics_port=None, file_logs=False,
                               stderr_logs=False, resources=[Db(), Cache()])
    system.spawn(User, name="user").ask("ping", timeout=5)
    print("READY", flush=True)
    return system
