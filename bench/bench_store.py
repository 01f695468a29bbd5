"""Benchmark the state store's writer against a raw sqlite-utils ``insert_all`` (WAL).

Run ``python bench/bench_store.py [--quick]``. Prints, for the same number of rows:

* baseline: sqlite-utils ``insert_all(..., replace=True)`` in one transaction, WAL,
  ``synchronous=NORMAL`` (the fastest way sqlite-utils writes these rows);
* writer: rows/s of the store's writer thread inside its batches (``stats()``), after the
  rows were queued with ``save`` (the caller-side cost is printed separately);
* sustained: one producer thread saving while the writer commits concurrently, end to end
  until ``flush()`` returned;
* start-up: opening a store that holds the rows and loading 10,000 of them;
* checkpoint round trip: ``save_workflow(record, on_durable=cb)`` until ``cb`` runs (the
  record is committed), one at a time: p50/p99 latency, batched and sync;
* checkpoints/s with 1,000 concurrent chains: each chain's ``on_durable`` saves its next
  checkpoint at once (as a workflow engine does); batched (callbacks on the writer thread)
  and sync (one thread per chain, ``save_workflow`` blocks until committed);

and the ratio writer/baseline. The targets are >= 200,000 rows/s for the writer and
>= 20,000 checkpoints/s with 1,000 chains (batched).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loguru import logger
from sqlite_utils import Database

from minions_actors.persistence import Durability, SQLiteStateStore, WorkflowRecord

COLUMNS = ["path", "minion_class", "state_json", "size_bytes", "updated_at"]


def _rows(n: int) -> list[tuple[str, str, str, int, float]]:
    now = time.time()
    out = []
    for i in range(n):
        text = json.dumps({"count": i, "name": f"m{i}"})
        out.append((f"user/m{i}", "Counter", text, len(text), now))
    return out


def _fresh(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def baseline(path: Path, rows: list[tuple[str, str, str, int, float]]) -> float:
    """Rows/s of sqlite-utils insert_all (list mode, replace) in one WAL transaction."""
    _fresh(path)
    db = Database(path)
    db.enable_wal()
    db.execute("PRAGMA synchronous = NORMAL")
    table = db.table("minion_snapshots")
    table.create(
        {
            "path": str,
            "minion_class": str,
            "state_json": str,
            "size_bytes": int,
            "updated_at": float,
        },
        pk="path",
    )
    started = time.perf_counter()
    with db.atomic():
        table.insert_all([COLUMNS, *rows], replace=True, batch_size=1000)
    elapsed = time.perf_counter() - started
    db.close()
    return len(rows) / elapsed


def writer(path: Path, rows: list[tuple[str, str, str, int, float]]) -> tuple[float, float]:
    """(writer rows/s inside batches, caller-side microseconds per save)."""
    _fresh(path)
    store = SQLiteStateStore(path, batch_interval=3600)  # one batch, written on flush()
    started = time.perf_counter()
    for p, cls, text, _size, _ts in rows:
        store.save(p, cls, text)
    save_us = (time.perf_counter() - started) / len(rows) * 1e6
    assert store.flush(timeout=120)
    st = store.stats()
    store.close()
    assert st.rows_written == len(rows), st
    return st.rows_written / st.batch_seconds_sum, save_us


def sustained(path: Path, rows: list[tuple[str, str, str, int, float]]) -> tuple[float, int]:
    """(rows/s end to end with the writer running concurrently, number of batches)."""
    _fresh(path)
    store = SQLiteStateStore(path)  # default 50 ms batch window
    started = time.perf_counter()
    for p, cls, text, _size, _ts in rows:
        store.save(p, cls, text)
    assert store.flush(timeout=120)
    elapsed = time.perf_counter() - started
    st = store.stats()
    store.close()
    return len(rows) / elapsed, st.batches


def startup(path: Path, n_load: int) -> float:
    """Seconds to open the store written above and load ``n_load`` minions."""
    started = time.perf_counter()
    store = SQLiteStateStore(path)
    for i in range(n_load):
        assert store.load(f"user/m{i}") is not None
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def _checkpoint(k: int) -> WorkflowRecord:
    now = time.time()
    return WorkflowRecord(
        workflow_id=f"order-{k}",
        minion_path=f"user/shop{k % 50}",
        minion_class="Shop",
        workflow_name="checkout",
        status="running",
        next_step=0,
        step_name="reserve",
        context_json=json.dumps({"order": k, "items": [1, 2, 3], "total": 42.5}),
        created_at=now,
        updated_at=now,
    )


def round_trip(path: Path, durability: Durability, n: int) -> tuple[float, float]:
    """(p50, p99) seconds from ``save_workflow`` to its ``on_durable``, one at a time."""
    _fresh(path)
    store = SQLiteStateStore(path, durability=durability)  # default 50 ms batch window
    rec = _checkpoint(0)
    done = threading.Event()
    latencies: list[float] = []
    started = 0.0

    def on_durable() -> None:
        latencies.append(time.perf_counter() - started)
        done.set()

    for step in range(n):
        rec.next_step = step
        rec.updated_at = time.time()
        done.clear()
        started = time.perf_counter()
        store.save_workflow(rec, on_durable=on_durable)
        if not done.wait(30):
            raise SystemExit("on_durable was not called within 30 s")
    store.close()
    q = statistics.quantiles(latencies, n=100)
    return q[49], q[98]


def chains_batched(path: Path, n_chains: int, seconds: float) -> tuple[float, int]:
    """(checkpoints/s, batches): every on_durable saves the chain's next checkpoint."""
    _fresh(path)
    store = SQLiteStateStore(path)
    stop = threading.Event()
    counted = [0]

    def start(k: int) -> None:
        rec = _checkpoint(k)

        def on_durable() -> None:  # runs on the writer thread, right after the commit
            counted[0] += 1
            if not stop.is_set():
                rec.next_step += 1
                rec.updated_at = time.time()
                store.save_workflow(rec, on_durable=on_durable)

        store.save_workflow(rec, on_durable=on_durable)

    began = time.perf_counter()
    for k in range(n_chains):
        start(k)
    time.sleep(seconds)  # the measuring window
    stop.set()
    done = counted[0]
    elapsed = time.perf_counter() - began
    assert store.flush(timeout=60)
    batches = store.stats().batches
    store.close()
    return done / elapsed, batches


def chains_sync(path: Path, n_chains: int, seconds: float) -> tuple[float, int]:
    """(checkpoints/s, batches) with one thread per chain saving in sync mode."""
    _fresh(path)
    store = SQLiteStateStore(path, durability="sync")
    stop = threading.Event()
    counts = [0] * n_chains

    def chain(k: int) -> None:
        rec = _checkpoint(k)
        while not stop.is_set():
            rec.next_step += 1
            rec.updated_at = time.time()
            store.save_workflow(rec)
            counts[k] += 1

    threads = [threading.Thread(target=chain, args=(k,), daemon=True) for k in range(n_chains)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)  # the measuring window
    stop.set()
    done = sum(counts)
    elapsed = time.perf_counter() - began
    for t in threads:
        t.join(60)
    batches = store.stats().batches
    store.close()
    return done / elapsed, batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 rows, 1 repeat")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--chains", type=int, default=1000)
    parser.add_argument("--only-checkpoints", action="store_true", help="skip the row benchmarks")
    args = parser.parse_args()
    n = args.rows or (50_000 if args.quick else 200_000)
    repeat = args.repeat or (1 if args.quick else 3)
    logger.disable("minions_actors")  # keep the output to the numbers
    print(f"python {sys.version.split()[0]}")
    checkpoints(args.chains, quick=args.quick)
    if args.only_checkpoints:
        return
    rows = _rows(n)
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        path = Path(tmp) / "bench.db"
        base = max(baseline(path, rows) for _ in range(repeat))
        results = [writer(path, rows) for _ in range(repeat)]
        best_writer = max(r[0] for r in results)
        save_us = min(r[1] for r in results)
        sus = max(sustained(path, rows) for _ in range(repeat))
        start_s = min(startup(path, min(n, 10_000)) for _ in range(repeat))
        size = os.path.getsize(path)
    print(f"rows per run: {n:,} (best of {repeat})")
    print(f"baseline sqlite-utils insert_all, WAL:  {base:>10,.0f} rows/s")
    print(f"store writer (batched):                 {best_writer:>10,.0f} rows/s")
    print(f"ratio writer / baseline:                {best_writer / base:>10.2f}")
    print(f"caller cost of save():                  {save_us:>10.2f} us/save")
    print(f"sustained save+write (1 producer):      {sus[0]:>10,.0f} rows/s in {sus[1]} batches")
    print(f"open store ({size / 1e6:.1f} MB) + load {min(n, 10_000):,}:   {start_s:>10.3f} s")
    target = 200_000
    print(f"writer target >= {target:,} rows/s: {'OK' if best_writer >= target else 'MISSED'}")


def checkpoints(n_chains: int, quick: bool) -> None:
    """Print the workflow checkpoint numbers (round trip latency, chains throughput)."""
    n_trips = 500 if quick else 2000
    seconds = 1.0 if quick else 3.0
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        path = Path(tmp) / "wf.db"
        for durability in ("batched", "sync"):
            p50, p99 = round_trip(path, durability, n_trips)
            print(
                f"checkpoint round trip ({durability:7}, {n_trips:,}x):  "
                f"p50 {p50 * 1e3:7.3f} ms   p99 {p99 * 1e3:7.3f} ms"
            )
        rate_b, batches_b = chains_batched(path, n_chains, seconds)
        print(
            f"checkpoints/s, {n_chains:,} chains (batched):  {rate_b:>10,.0f}/s "
            f"({batches_b:,} commits in {seconds:.0f} s)"
        )
        rate_s, batches_s = chains_sync(path, n_chains, seconds)
        print(
            f"checkpoints/s, {n_chains:,} chains (sync):     {rate_s:>10,.0f}/s "
            f"({batches_s:,} commits in {seconds:.0f} s, one thread per chain)"
        )
    target = 20_000
    print(f"chains target >= {target:,}/s (batched): {'OK' if rate_b >= target else 'MISSED'}")


if __name__ == "__main__":
    main()
