"""An app for the sandbox test: what a service uses (SQLite state, file logs, the metrics
endpoint, a ChildProcess minion, a sidecar), run under the shipped unit's seccomp filter."""

from __future__ import annotations

import errno
import socket

from minions_actors import ActorSystem, ChildProcess
from minions_actors.sidecar import Sidecar

from .placed_minions import Ledger


def packet_socket() -> str:
    """What creating a raw packet socket gives: the unit does not allow AF_PACKET."""
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close()
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc))
    return "allowed"


def main() -> ActorSystem:
    system = ActorSystem.start(state_store="minions.db", metrics_port=0)
    ledger = system.spawn(Ledger, name="ledger", placement=ChildProcess(call_timeout=60))
    total = ledger.ask(5, timeout=60)
    factorial = system.spawn(Sidecar, "math:factorial", name="factorial", call_timeout=60.0)
    fact = factorial.ask(10, timeout=60)
    assert system.metrics is not None
    print(f"ready url={system.metrics.url} child={total} sidecar={fact} "
          f"packet={packet_socket()}", flush=True)
    return system
