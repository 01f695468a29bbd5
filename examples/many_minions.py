"""One minion per device: 20,000 minions on the shared worker pool, one on its own thread.

Each device minion keeps its last reading; an aggregator asks them all. The pool runs them
on a few worker threads, so 20,000 minions add no thread; the one minion that blocks (a
reader polling a slow source) asks for a dedicated thread. Prints::

    20,000 devices, threads added: 0
    sum of the last readings: 399980000
    the reader runs on: Reader (minion:reader)
    clean shutdown: True
"""

from __future__ import annotations

import threading
import time
from typing import Any

from minions_actors import ActorSystem, Minion

DEVICES = 20_000


class Device(Minion):
    def __init__(self) -> None:
        super().__init__()
        self.last = 0

    def on_receive(self, message: Any) -> Any:
        if message == "last":
            return self.last
        self.last = message
        return None


class Reader(Minion):
    dedicated_thread = True  # its handler blocks: keep it off the shared pool

    def on_receive(self, message: Any) -> Any:
        time.sleep(0.01)  # stands for a blocking read from a socket or a device
        return threading.current_thread().name


def main() -> None:
    system = ActorSystem.start(state_store=None, metrics_port=None, file_logs=False,
                               stderr_logs=False, handle_signals=False)
    before = threading.active_count()
    devices = [system.spawn(Device, name=f"device-{i}") for i in range(DEVICES)]
    for i, device in enumerate(devices):
        device.tell(i * 2)
    futures = [device.ask("last", block=False) for device in devices]
    total = sum(f.get(timeout=30) for f in futures)
    print(f"{DEVICES:,} devices, threads added: {threading.active_count() - before}")
    print(f"sum of the last readings: {total}")
    reader = system.spawn(Reader, name="reader")
    print(f"the reader runs on: {reader.ask('read', timeout=5)}")
    print(f"clean shutdown: {system.shutdown()}")


if __name__ == "__main__":
    main()
