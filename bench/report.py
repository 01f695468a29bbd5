"""The benchmark's results: rows of repetitions, ratios to peers, targets, tables.

Split from :mod:`bench.run` (which measures) so that reading the figures needs no runner.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from bench.scenarios import Metric, Scenario, Target


class HasRows(Protocol):
    """What the reports read of a run: its rows by (scenario, metric, system)."""

    rows: dict[tuple[str, str, str], Row]


@dataclass
class Row:
    """All repetitions of one metric of one system in one scenario."""

    scenario: str
    title: str
    metric: str
    label: str
    unit: str
    higher_is_better: bool
    system: str
    system_label: str
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)


def advantage(ours: float, theirs: float, higher_is_better: bool) -> float:
    """How many times better minions_actors is than a peer (> 1: better)."""
    if higher_is_better:
        return ours / theirs if theirs else float("inf")
    return theirs / ours if ours else float("inf")


def fmt(value: float, unit: str) -> str:
    """A compact human form of ``value`` in ``unit``."""
    if unit == "us":
        if value >= 1000:
            return f"{value / 1000:.2f} ms"
        return f"{value:.1f} us" if value < 100 else f"{value:.0f} us"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    if unit in ("KiB", "MiB"):
        return f"{value:.1f} {unit}" if value < 1000 else f"{value:.0f} {unit}"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"


def table_rows(runner: HasRows, scenarios: list[Scenario]) -> list[list[str]]:
    """Rows of the results table: scenario, metric, system, median, min-max, advantage."""
    out = []
    for scen in scenarios:
        for m in scen.metrics:
            ours = runner.rows.get((scen.key, m.key, scen.us))
            for key in scen.systems:
                row = runner.rows.get((scen.key, m.key, key))
                if row is None:
                    continue
                if key == scen.us:
                    ratio = "-"
                elif ours is not None:
                    ratio = f"{advantage(ours.median, row.median, m.higher_is_better):.2f}x"
                else:
                    ratio = "n/a"
                out.append([
                    scen.title, f"{m.label} ({m.unit})", row.system_label,
                    fmt(row.median, m.unit),
                    f"{fmt(min(row.values), m.unit)} - {fmt(max(row.values), m.unit)}", ratio,
                ])
    return out


def evaluate(
    runner: HasRows, goals: list[Target], scenarios: list[Scenario]
) -> list[dict[str, Any]]:
    """Each target with its measured value and met/missed (or n/a when not measured)."""
    metrics: dict[tuple[str, str], Metric] = {
        (s.key, m.key): m for s in scenarios for m in s.metrics
    }
    us = {s.key: s.us for s in scenarios}
    out = []
    for goal in goals:
        metric = metrics.get((goal.scenario, goal.metric))
        ours = runner.rows.get((goal.scenario, goal.metric, us.get(goal.scenario, "")))
        entry: dict[str, Any] = {"target": goal.label, "measured": None, "status": "n/a"}
        if metric is None or ours is None:
            out.append(entry)
            continue
        if goal.peer is not None:
            peer = runner.rows.get((goal.peer_scenario or goal.scenario, goal.metric,
                                    goal.peer))
            if peer is None:
                out.append(entry)
                continue
            value = advantage(ours.median, peer.median, metric.higher_is_better)
            met = value >= goal.threshold
            entry["measured"] = value
            entry["shown"] = (f"{value:.2f}x ({fmt(ours.median, metric.unit)} vs "
                              f"{fmt(peer.median, metric.unit)})")
        else:
            value = ours.median
            met = value >= goal.threshold if metric.higher_is_better else value < goal.threshold
            entry["measured"] = value
            entry["shown"] = fmt(value, metric.unit)
        entry["status"] = "met" if met else "MISSED"
        out.append(entry)
    return out


def result_rows(runner: HasRows, scenarios: list[Scenario]) -> list[dict[str, Any]]:
    """Every row for the JSON file, with its advantage over the scenario's own system."""
    us = {s.key: s.us for s in scenarios}
    out = []
    for r in runner.rows.values():
        ours = runner.rows.get((r.scenario, r.metric, us[r.scenario]))
        out.append({
            **asdict(r), "median": r.median, "min": min(r.values), "max": max(r.values),
            "advantage": (None if ours is None or ours is r
                          else advantage(ours.median, r.median, r.higher_is_better)),
        })
    return out


def render(header: list[str], rows: list[list[str]], markdown: bool) -> str:
    """A plain-text (aligned) or Markdown table."""
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    prev = None
    for r in rows:
        shown = list(r)
        if prev is not None and r[0] == prev[0] and r[1] == prev[1]:
            shown[0] = shown[1] = ""
        lines.append("  ".join(c.ljust(w) for c, w in zip(shown, widths, strict=True)).rstrip())
        prev = r
    return "\n".join(lines)


RESULT_HEADER = ["scenario", "metric", "system", "median", "min - max", "minions advantage"]
TARGET_HEADER = ["target", "measured", "status"]
