"""The options the CLI's commands share, the parsing of ``--since`` and ``--limit``, and the
program's name as it was run (``minions-actors`` or ``python -m minions_actors``)."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

from minions_actors.records import WORKFLOW_STATUSES

#: How many workflows ``workflows list`` shows unless told (``--limit 0``: all).
DEFAULT_LIMIT = 100
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGO = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def prog_name() -> str:
    """``minions-actors`` when run as the console script, else ``python -m minions_actors``."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return name if name and not name.endswith(".py") else "python -m minions_actors"


def since_time(text: str) -> float:
    """``--since``: an age (``30m``, ``2h``, ``7d``, ``1w``) or an ISO date or time (UTC unless
    it gives an offset), as unix time."""
    ago = _AGO.fullmatch(text.strip())
    if ago:
        return time.time() - float(ago.group(1)) * _UNITS[ago.group(2)]
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an age (30m, 2h, 7d, 1w) nor an ISO date or time "
            "(2026-12-01, 2026-12-01T08:00, 2026-12-01T08:00+01:00; UTC unless given)"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def limit_count(text: str) -> int:
    """``--limit``: a count of 0 (no limit) or more."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (0 or more; 0: no limit)")
    return n


def db_option(parser: argparse.ArgumentParser, default: Any = "minions.db") -> None:
    parser.add_argument("--db", default=default, metavar="PATH",
                        help="the state store file (default: minions.db)")


def json_option(parser: argparse.ArgumentParser, default: Any = False) -> None:
    parser.add_argument("--json", action="store_true", default=default,
                        help="JSON Lines: one JSON object per record per line (for jq)")


def list_options(parser: argparse.ArgumentParser, default: Any = None,
                 limit: Any = DEFAULT_LIMIT) -> None:
    """``--status``, ``--since`` and ``--limit`` (defaults SUPPRESSed after the action keep
    the values given before it)."""
    parser.add_argument("--status", choices=WORKFLOW_STATUSES,
                        default=default, help="only workflows with this status")
    parser.add_argument("--since", type=since_time, default=default, metavar="WHEN",
                        help="only workflows updated since WHEN: an age (30m, 2h, 7d) or an "
                        "ISO date or time (UTC unless it gives an offset)")
    parser.add_argument("--limit", type=limit_count, default=limit, metavar="N",
                        help=f"show the N newest matching workflows (default: {DEFAULT_LIMIT}; "
                        "0: all)")
