"""The system's registry of live cells, and finding a minion by its path."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from minions_actors.errors import MinionNotFound

if TYPE_CHECKING:
    from minions_actors.runtime.cell import Cell


class CellRegistry:
    """Every live cell of a system except Gru, in start order (what metrics, introspection
    and the shutdown read)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # re-entrant: a signal handler may shut down mid-spawn
        self._cells: dict[Cell, None] = {}

    def add(self, cell: Cell) -> None:
        with self.lock:
            self._cells[cell] = None

    def remove(self, cell: Cell) -> None:
        with self.lock:
            self._cells.pop(cell, None)

    def cells(self) -> list[Cell]:
        """A copy, oldest first."""
        with self.lock:
            return list(self._cells)

    def __len__(self) -> int:
        return len(self._cells)


def find_cell(root: Cell, path: str) -> Cell:
    """The live cell at ``path`` (``"name"`` or ``"parent/child"``) under ``root``, or
    :class:`~minions_actors.MinionNotFound` naming the children that do exist there."""
    cell = root
    walked: list[str] = []
    for part in path.strip("/").split("/"):
        with cell.children_lock:
            child = cell.children.get(part)
            siblings = sorted(cell.children)
        if child is None or child.terminated:
            where = "/".join(walked) or "the top level"
            raise MinionNotFound(
                f"no live minion at {path!r}: {part!r} is not among the children of "
                f"{where} ({', '.join(siblings) or 'none'})"
            )
        walked.append(part)
        cell = child
    return cell
