"""``FileTail``: a pipeline that tails a text file the way ``tail -F`` does (see the class)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any, ClassVar

from minions_actors.pipelines.base import Batch, Pipeline

if TYPE_CHECKING:
    from minions_actors.runtime.ref import MinionRef

__all__ = ["FileTail"]

_HEAD = 1024  # bytes of a file's start that tell it from a file rewritten in place


class FileTail(Pipeline):
    """Tails a text file the way ``tail -F`` does: each complete line is an event (a str
    without its newline); a line still being written is waited for; a missing file is
    waited for, and so is one it cannot read (a WARNING names the path and the error once).

    Rotations are followed: when the path names another file (renamed and created again,
    or deleted and created again) and that file has data, the tail reads what is left in
    the old one, an unterminated last line included, then the new one from its start. A
    file emptied or rewritten in place (copytruncate) is read again from its start.

    The position names the file: ``{"dev", "inode", "offset", "head"}`` (``head``: a hash
    of the file's first bytes, up to 1 KiB, as read). After a restart, the file with that
    identity and head is resumed at the offset, at the path or renamed next to it (the
    rotated file is read to its end first); otherwise the file at the path is read from the
    start. A bare int (an offset, stored by earlier versions) resumes the file at the path;
    anything else is logged (WARNING) and the file at the path is read from its start.
    """

    batch_size: ClassVar[int] = 100
    poll_interval: ClassVar[float] = 0.2

    def __init__(self, file_path: str | os.PathLike[str],
                 subscribers: Sequence[str | MinionRef[Any]]) -> None:
        super().__init__()
        self.file_path = os.fspath(file_path)
        self.subscribers = list(subscribers)

    def open(self, position: Any) -> None:
        self._file: IO[bytes] | None = None
        self._stored = position  # looked for once, at the first open
        self._id = (0, 0)  # (st_dev, st_ino) of the open file
        self._offset = 0
        self._head = b""  # the file's first min(offset, _HEAD) bytes
        self._denied: tuple[str, str] | None = None  # (path, error) last warned about

    def produce(self) -> Batch | None:
        if self._file is None and not self._open_first():
            return None
        lines, moved = self._read_lines(), False
        if self._rewritten():  # what was read may be the new content's: read it from 0
            self._offset, self._head, moved = 0, b"", True
            lines = self._read_lines()
        elif not lines and self._rotated():  # end of data, and another file at the path
            lines, moved = self._drain(), True
            self.close()
            self._open(self.file_path, 0)
        if not lines and not moved:
            return None
        return Batch(lines, self._position())

    def close(self) -> None:
        file, self._file = getattr(self, "_file", None), None
        if file is not None:
            file.close()

    # ------------------------------------------------------------------ the file
    def _open(self, path: str, offset: int) -> bool:
        """Open ``path`` at ``offset`` (its first bytes become the head); False if missing
        or unreadable (a directory, permission denied: waited for like a missing file)."""
        try:
            self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        except FileNotFoundError:
            return False
        except OSError as exc:
            self._unreadable(path, exc)
            return False
        self._denied = None
        fd = self._file.fileno()
        st = os.fstat(fd)
        self._id = (st.st_dev, st.st_ino)
        self._offset = offset if 0 <= offset <= st.st_size else 0
        self._head = os.pread(fd, min(self._offset, _HEAD), 0)
        return True

    def _unreadable(self, path: str, exc: OSError) -> None:
        """Warn once per path and error (not at every poll) that the file cannot be read."""
        error = f"{type(exc).__name__}: {exc.strerror or exc}"
        if self._denied != (path, error):
            self._denied = (path, error)
            self.system.log.bind(minion=self.path).warning(
                "pipeline {}: cannot read {} ({}); trying again every {}s, as for a missing "
                "file", self.path, path, error, self.poll_interval)

    def _open_first(self) -> bool:
        """Open the stored position's file where it is now, at its offset; else the file
        at the path from its start (a bare int offset: the file at the path, as before)."""
        stored, self._stored = self._stored, None
        if isinstance(stored, dict) and type(stored.get("offset")) is int:
            offset, identity = stored["offset"], (stored.get("dev"), stored.get("inode"))
            for candidate in _candidates(self.file_path, identity[1]):
                if self._open(candidate, offset):
                    if (self._id, self._offset, _digest(self._head)) == (
                            identity, offset, stored.get("head")):
                        return True
                    self.close()
        elif type(stored) is int:
            return self._open(self.file_path, stored)
        elif stored is not None:  # at least once: reading again beats skipping
            self.system.log.bind(minion=self.path).warning(
                "pipeline {}: stored position {!r} is not a FileTail position; {} is read "
                "from its start", self.path, stored, self.file_path)
        return self._open(self.file_path, 0)

    def _read_lines(self) -> list[str]:
        assert self._file is not None
        self._file.seek(self._offset)
        lines: list[str] = []
        for _ in range(self.batch_size):
            line = self._file.readline()
            if not line.endswith(b"\n"):
                break  # end of file, or a line still being written: wait for the rest
            if len(self._head) < _HEAD:
                self._head += line[:_HEAD - len(self._head)]
            self._offset += len(line)
            lines.append(line[:-1].decode("utf-8", "replace"))
        return lines

    def _rewritten(self) -> bool:
        """Emptied or rewritten in place: shorter than the offset, or other first bytes."""
        assert self._file is not None
        fd = self._file.fileno()
        return (os.fstat(fd).st_size < self._offset
                or os.pread(fd, len(self._head), 0) != self._head)

    def _rotated(self) -> bool:
        """The path names another file, which has data: its writer moved on to it (while
        the new file is empty or missing, the old one may still grow, so it is kept)."""
        try:
            st = os.stat(self.file_path)
        except OSError:  # missing, or its directory unreadable: the old file may still grow
            return False
        return (st.st_dev, st.st_ino) != self._id and st.st_size > 0

    def _drain(self) -> list[str]:
        """What is left in the old file, read once the switch is decided: its lines and an
        unterminated last one (its writer has moved to the new file: nothing will end it)."""
        assert self._file is not None
        self._file.seek(self._offset)
        rest = self._file.read()
        self._offset += len(rest)
        parts = rest.removesuffix(b"\n").split(b"\n") if rest else []
        return [part.decode("utf-8", "replace") for part in parts]

    def _position(self) -> dict[str, Any] | None:
        if self._file is None:  # the new file vanished at once: the next one from its start
            return None
        dev, inode = self._id
        return {"dev": dev, "inode": inode, "offset": self._offset, "head": _digest(self._head)}



def _digest(head: bytes) -> str:
    return hashlib.blake2b(head, digest_size=16).hexdigest()


def _candidates(path: str, inode: Any) -> list[str]:
    """Where the stored file may be now: at the path, or renamed in the same directory (a
    rotation while the process was down); the caller checks identity and head."""
    found = [path]
    try:
        with os.scandir(os.path.dirname(path) or ".") as entries:
            for entry in entries:
                if entry.inode() == inode and entry.path != path and entry.is_file():
                    found.append(entry.path)
    except OSError:
        pass  # no directory to look in: only the path
    return found
