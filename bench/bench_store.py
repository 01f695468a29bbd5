"""Benchmark the state store's writer against a raw sqlite-utils ``insert_all`` (WAL).

Run ``python bench/bench_store.py [--quick]``. Prints, for the same number of rows:

* baseline: sqlite-utils ``insert_all(..., replace=True)`` in one transaction, WAL,
  ``synchronous=NORMAL`` (the fastest way sqlite-utils writes these rows);
* writer: rows/s of the store's writer thread inside its batches (``stats()``), after the
  rows were queued with ``save`` (the caller-side cost is printed separately);
* sustained: one producer thread saving while the writer commits concurrently, end to end
  until ``flush()`` returned;
* start-up: opening a store that holds the rows and loading 10,000 of them;

and the ratio writer/baseline. The target is >= 200,000 rows/s for the writer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loguru import logger
from sqlite_utils import Database

from minions_actors.persistence import SQLiteStateStore

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 rows, 1 repeat")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None)
    args = parser.parse_args()
    n = args.rows or (50_000 if args.quick else 200_000)
    repeat = args.repeat or (1 if args.quick else 3)
    logger.disable("minions_actors")  # keep the output to the numbers
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
    print(f"rows per run: {n:,} (best of {repeat}); python {sys.version.split()[0]}")
    print(f"baseline sqlite-utils insert_all, WAL:  {base:>10,.0f} rows/s")
    print(f"store writer (batched):                 {best_writer:>10,.0f} rows/s")
    print(f"ratio writer / baseline:                {best_writer / base:>10.2f}")
    print(f"caller cost of save():                  {save_us:>10.2f} us/save")
    print(f"sustained save+write (1 producer):      {sus[0]:>10,.0f} rows/s in {sus[1]} batches")
    print(f"open store ({size / 1e6:.1f} MB) + load {min(n, 10_000):,}:   {start_s:>10.3f} s")
    target = 200_000
    print(f"writer target >= {target:,} rows/s: {'OK' if best_writer >= target else 'MISSED'}")


if __name__ == "__main__":
    main()
