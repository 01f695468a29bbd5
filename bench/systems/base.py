"""The adapter interface every benchmarked system implements (unsupported scenarios skip)."""

from __future__ import annotations

from pathlib import Path

from bench.common import Skip

Metrics = dict[str, float]


class System:
    """One benchmarked system. Each method runs one repetition of one scenario.

    Every method starts what it needs and stops it again before returning (no state is
    carried between repetitions, so runs of different systems can alternate). A method the
    system cannot run raises :class:`~bench.common.Skip` with the reason.
    """

    key = "base"
    label = "base"
    slow = False
    """True for process-based peers: message counts are scaled down for them."""
    max_actors = 10**9
    """The largest actor count this system runs in the scaling scenario."""

    def check(self) -> None:
        """Raise Skip when the system is not installed or cannot run here."""

    def close(self) -> None:
        """Release what lives across repetitions (e.g. a Ray runtime)."""

    def _nope(self, what: str) -> Skip:
        return Skip(f"{self.label} has no {what} benchmark adapter")

    def tell(self, n: int) -> Metrics:
        """``n`` one-way messages from one sender to one actor: {"rate": msg/s}."""
        raise self._nope("tell")

    def tell_multi(self, n: int, senders: int) -> Metrics:
        """``n`` one-way messages from ``senders`` threads to one actor: {"rate": msg/s}."""
        raise self._nope("multi-sender tell")

    def ask(self, n: int) -> Metrics:
        """``n`` sequential request/replies: {"p50": us, "p99": us}."""
        raise self._nope("ask")

    def pingpong(self, n: int) -> Metrics:
        """``n`` round trips between two actors: {"rate": round trips/s}."""
        raise self._nope("ping-pong")

    def sleep_each(self, n: int, seconds: float) -> Metrics:
        """Start ``n`` actors that each await one sleep of ``seconds`` (one message each):
        {"total": s until every sleep ended, "spawn": s until the actors were created,
        "after": s from then until every sleep ended}."""
        raise self._nope("sleep-each")

    def fanout(self, n: int) -> Metrics:
        """Start ``n`` actors (until all run), ask each once, wait for every answer:
        {"spawn": s, "rate": answered asks/s}."""
        raise self._nope("fan-out")

    def spawn_stop(self, n: int) -> Metrics:
        """Start ``n`` actors (until all run) then stop them: {"spawn": s, "stop": s}."""
        raise self._nope("spawn/stop")

    def memory(self, n: int) -> Metrics:
        """Run in a fresh process: RSS growth per idle actor, {"kib": KiB per actor}."""
        raise self._nope("memory")

    def restart(self, n: int) -> Metrics:
        """``n`` crash/restart cycles: {"p50": us, "p99": us} from crash to serving."""
        raise self._nope("restart")

    def persistent_tell(self, n: int, tmp: Path) -> Metrics:
        """Tell throughput of a persistent actor, until durable: {"rate": msg/s}."""
        raise self._nope("persistent tell")

    def writer(self, rows: int, tmp: Path) -> Metrics:
        """Snapshot rows written per second: {"rate": rows/s}."""
        raise self._nope("snapshot writer")

    def workflow(self, workflows: int, steps: int, tmp: Path) -> Metrics:
        """Checkpointed workflow steps per second: {"rate": steps/s}."""
        raise self._nope("workflow")

    def million(self, n: int) -> Metrics:
        """In a fresh process: spawn ``n`` actors, one message each, stop all:
        {"total": s, "spawn": s, "tell": s, "stop": s, "peak_mib": peak RSS in MiB}."""
        raise self._nope("million-actor")

    def scaling(self, actors: int, n: int) -> Metrics:
        """``n`` tells round-robin over ``actors`` actors from one sender: {"rate": msg/s}."""
        raise self._nope("scaling")
