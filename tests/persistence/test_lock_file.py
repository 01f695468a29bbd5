"""The store's lock file (``<store>.lock``): opened without following what is planted there,
nothing held after a failed open, removed by a clean stop without letting two owners in.
Real files, real second processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from minions_actors import ActorSystem
from minions_actors.errors import StateStoreError
from minions_actors.persistence import SQLiteStateStore

from ..conftest import QUIET

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", ["symlink", "hard link"])
def test_a_link_planted_as_the_lock_file_is_refused_and_its_target_untouched(
    tmp_path: Path, kind: str
) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("do not truncate me\n")
    lock = tmp_path / "minions.db.lock"
    if kind == "symlink":
        lock.symlink_to(precious)
    else:
        os.link(precious, lock)
    what = "a symbolic link" if kind == "symlink" else "a hard link with 2 names"
    with pytest.raises(StateStoreError, match=f"its lock file '{lock}' is {what}; .* remove it"):
        SQLiteStateStore(tmp_path / "minions.db", open_timeout=0.1)
    assert precious.read_text() == "do not truncate me\n"
    lock.unlink()  # removing it, as the message says, is the fix
    SQLiteStateStore(tmp_path / "minions.db", open_timeout=0.1).close()


def test_a_fifo_planted_as_the_lock_file_is_refused_without_hanging(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "minions.db.lock")
    with pytest.raises(StateStoreError, match="is not a regular file"):
        SQLiteStateStore(tmp_path / "minions.db", open_timeout=0.1)


def test_the_lock_file_is_owner_only_and_holds_the_pid(tmp_path: Path) -> None:
    lock = tmp_path / "minions.db.lock"
    lock.write_text("a longer leftover line from a crashed owner\n")
    lock.chmod(0o644)
    with SQLiteStateStore(tmp_path / "minions.db"):
        assert lock.stat().st_mode & 0o777 == 0o600
        assert lock.read_text() == f"{os.getpid()}\n"


FULL_CHILD = textwrap.dedent(
    """
    import resource, sys
    from minions_actors.persistence import SQLiteStateStore
    # the size limit makes the pid write fail as on a full disk (EFBIG instead of ENOSPC:
    # Python ignores SIGXFSZ)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
    try:
        SQLiteStateStore(sys.argv[1], open_timeout=0.2)
    except Exception as exc:
        print(type(exc).__name__)
        print(exc)
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    SQLiteStateStore(sys.argv[1], open_timeout=0.2).close()
    print("retry opened")
    """
)


def test_a_full_disk_at_open_is_state_store_full_and_a_retry_succeeds(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", FULL_CHILD, str(tmp_path / "m.db")], cwd=ROOT,
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    kind, message, retry = proc.stdout.splitlines()
    assert kind == "StateStoreFull", proc.stdout
    assert "cannot write its lock file" in message and "RLIMIT_FSIZE" in message, message
    assert retry == "retry opened"  # nothing was left held by the failed open


def test_a_clean_stop_removes_the_lock_file(tmp_path: Path) -> None:
    db = tmp_path / "minions.db"
    system = ActorSystem.start(**{**QUIET, "state_store": str(db)})
    assert (tmp_path / "minions.db.lock").exists()
    assert system.shutdown(timeout=10)
    assert sorted(os.listdir(tmp_path)) == ["minions.db"]


RACER = textwrap.dedent(
    """
    import os, sys, time
    from minions_actors.errors import StateStoreLocked
    from minions_actors.persistence.store_file import OwnerLock
    db, mark, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    owned = 0
    deadline = time.monotonic() + 120
    while owned < rounds and time.monotonic() < deadline:
        try:
            lock = OwnerLock(db, 5.0)
        except StateStoreLocked:
            continue
        fd = os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY)  # fails if two own it
        os.close(fd)
        os.unlink(mark)
        lock.release()
        owned += 1
    print(owned)
    """
)


def test_removing_the_lock_file_never_lets_two_owners_in(tmp_path: Path) -> None:
    # Between an owner's removal of the file and its close, another process may hold the
    # removed file open and lock it next: it must see the file is gone and not own the store.
    db, mark = tmp_path / "m.db", tmp_path / "owned"
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(db), str(mark), "300"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) for _ in range(3)]
    results = [r.communicate(timeout=180) for r in racers]
    for racer, (out, err) in zip(racers, results, strict=True):
        assert racer.returncode == 0, err
        assert out.strip() == "300", (out, err)


def test_read_only_tools_leave_no_lock_file_behind(tmp_path: Path) -> None:
    db = tmp_path / "minions.db"
    with SQLiteStateStore(db) as store:
        store.save("a", "A", '{"a": 1}')
    proc = subprocess.run([sys.executable, "-m", "minions_actors", "inspect", str(db)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["minions.db"]


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_a_lock_file_made_by_roots_reader_belongs_to_the_stores_owner(tmp_path: Path) -> None:
    # if root's `inspect` is killed mid-read, the app's user must still be able to own it
    from minions_actors.persistence.store_file import read_only_connection

    db = tmp_path / "minions.db"
    SQLiteStateStore(db).close()
    os.chown(db, 12345, 12345)
    conn = read_only_connection(str(db), 5.0)
    try:
        assert (tmp_path / "minions.db.lock").stat().st_uid == 12345
    finally:
        conn.close()
    assert sorted(os.listdir(tmp_path)) == ["minions.db"]
