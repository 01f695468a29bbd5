"""Subprocess helper for the state-store tests (run as
``python tests/persistence/_store_child.py MODE ...``).

Modes:
  loop DB DURABILITY START  save a few paths with i = START+1, START+2, ...; print "F <i>"
                      after each flush() that returned True (batched) or "S <i>" after each
                      save (sync); run until killed.
  wfloop DB DURABILITY START  run CHAINS workflow chains; chain k saves next_step = START+1,
                      START+2, ... and prints "W <k> <step>" from on_durable (batched: each
                      callback saves the chain's next checkpoint; sync: the main thread loops);
                      snapshots are saved meanwhile so batches mix both; run until killed.
  noclose DB          save and return from the main thread without close(): must still exit.
  lock DB             hold an exclusive write lock (BEGIN EXCLUSIVE) until a line on stdin.
  open DB             drop root's file-permission override, try to open and save; print JSON.
"""

from __future__ import annotations

import ctypes
import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

PATHS = [f"crash/m{k}" for k in range(8)]
CHAINS = 16


def _drop_capabilities() -> None:
    """Clear all capabilities so that even root obeys file modes (as any other user does)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        ]

    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def loop(db: str, durability: str, start: int) -> None:
    from minions_actors.persistence import SQLiteStateStore

    store = SQLiteStateStore(db, durability=durability, batch_interval=0.01)  # type: ignore[arg-type]
    print("R", flush=True)
    i = start
    while True:
        i += 1
        for p in PATHS:
            store.save(p, "Crash", json.dumps({"i": i, "pad": "x" * (i % 97)}))
        if durability == "sync":
            print(f"S {i}", flush=True)
        elif i % 50 == 0 and store.flush(timeout=10):
            print(f"F {i}", flush=True)


def wfloop(db: str, durability: str, start: int) -> None:
    import threading
    from functools import partial

    from minions_actors.persistence import SQLiteStateStore, WorkflowRecord

    store = SQLiteStateStore(db, durability=durability, batch_interval=0.01)  # type: ignore[arg-type]
    out = threading.Lock()
    print("R", flush=True)

    def record(k: int, step: int) -> WorkflowRecord:
        return WorkflowRecord(
            workflow_id=f"wf{k}", minion_path=f"crash/m{k % 8}", minion_class="Crash",
            workflow_name="chain", status="running", next_step=step, step_name=f"s{step}",
            context_json=json.dumps({"step": step, "pad": "y" * (step % 61)}),
            created_at=1.0 + k, updated_at=float(step),
        )

    def acked(k: int, step: int) -> None:
        with out:
            sys.stdout.write(f"W {k} {step}\n")
            sys.stdout.flush()

    if durability == "sync":
        step = start
        while True:
            step += 1
            for k in range(CHAINS):
                store.save_workflow(record(k, step), on_durable=partial(acked, k, step))
            store.save(PATHS[step % 8], "Crash", json.dumps({"i": step}))

    def chain(k: int, step: int) -> None:
        def on_durable() -> None:
            acked(k, step)
            chain(k, step + 1)  # the next checkpoint, saved from the writer thread

        store.save_workflow(record(k, step), on_durable=on_durable)

    for k in range(CHAINS):
        chain(k, start + 1)
    i = start
    while True:
        i += 1
        store.save(PATHS[i % 8], "Crash", json.dumps({"i": i}))
        if i % 1000 == 0:
            store.flush(timeout=10)


def lock(db: str) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    sys.stdin.readline()
    conn.execute("ROLLBACK")
    conn.close()
    print("released", flush=True)


def open_probe(db: str) -> None:
    from minions_actors.persistence import SQLiteStateStore

    _drop_capabilities()
    try:
        store = SQLiteStateStore(db)
        store.save("probe", "Probe", "{}")
        ok = store.flush(timeout=5)
        store.close(timeout=5)
        print(json.dumps({"error": None, "flushed": ok}))
    except Exception as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "loop":
        loop(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif mode == "wfloop":
        wfloop(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif mode == "noclose":
        import threading
        import time

        from minions_actors.persistence import SQLiteStateStore

        forgotten = SQLiteStateStore(sys.argv[2], batch_interval=30.0)
        forgotten.save("left/behind", "Left", '{"written": true}')
        second = SQLiteStateStore(sys.argv[2] + ".second", batch_interval=30.0)
        second.save("second", "Second", "{}")

        def worker() -> None:
            """Like a minion thread that keeps working after the main thread returned."""
            while threading.main_thread().is_alive():
                time.sleep(0.01)
            time.sleep(0.5)
            forgotten.save("late/worker", "Late", '{"after_main": true}')

        threading.Thread(target=worker, name="worker").start()
    elif mode == "lock":
        lock(sys.argv[2])
    elif mode == "open":
        open_probe(sys.argv[2])
    else:
        raise SystemExit(f"unknown mode {mode}")
