"""A crash storm in the log: the first crash of a kind with its traceback, repeats within
``log_crash_window`` as one short line each, the traceback again after the window; hooks
see every crash (issue 22: a traceback's formatting per restart made restarts 5x slower)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from loguru import logger

from minions_actors import ActorSystem, Hooks, Minion, OneForOne
from minions_actors.observability.log_hooks import LoggingHooks

TRACEBACK = "Traceback (most recent call last)"
WAIT = 10.0


class Storm(Minion):
    """Raises ValueError on "boom", TypeError on "other" (another place); answers "ping"."""

    def on_receive(self, message: Any) -> Any:
        if message == "boom":
            raise ValueError("boom")
        if message == "other":
            raise TypeError("other")
        return "pong"


class CrashCount(Hooks):
    def __init__(self) -> None:
        self.crashes: list[BaseException] = []

    def minion_crashed(self, cell: Any, exc: BaseException, phase: str) -> None:
        self.crashes.append(exc)


class Clock:
    """A monotonic clock the test moves by hand (no sleeping through a window)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TextSink:
    """A real loguru sink (a text stream, loguru's default format with the traceback) for
    the records bound with this test's marker."""

    def __init__(self, marker: str) -> None:
        self.stream = io.StringIO()
        self.marker = marker

    def add(self) -> int:
        return logger.add(self.stream, level="DEBUG", colorize=False,
                          filter=lambda r: r["extra"].get("test_marker") == self.marker)

    def lines(self, text: str) -> list[str]:
        return [line for line in self.stream.getvalue().splitlines() if text in line]

    def tracebacks(self) -> int:
        return self.stream.getvalue().count(TRACEBACK)


def _start(marker: str, execution: str, **options: Any) -> ActorSystem:
    return ActorSystem.start(
        state_store=None, metrics_port=None, handle_signals=False, file_logs=False,
        stderr_logs=False, execution=execution, logger=logger.bind(test_marker=marker),
        strategy=OneForOne(max_restarts=1000, within=60), **options)


def _crash(ref: Any, message: str = "boom") -> None:
    """Crash the minion and wait until it serves again (restarted)."""
    ref.tell(message)
    assert ref.ask("ping", timeout=WAIT) == "pong"


def _storm(marker: str, execution: str, crashes: int,
           **options: Any) -> tuple[TextSink, CrashCount]:
    """Crash one minion ``crashes`` times in a system of its own; its log and its hook."""
    sink = TextSink(marker)
    handler = sink.add()
    counter = CrashCount()
    system = _start(marker, execution, hooks=[counter], **options)
    try:
        ref = system.spawn(Storm, name="storm")
        for _ in range(crashes):
            _crash(ref)
    finally:
        system.shutdown()
        logger.remove(handler)
    return sink, counter


@pytest.mark.parametrize("execution", ["pooled", "dedicated"])
def test_a_crash_storm_logs_one_traceback_then_one_short_line_per_crash(
        execution: str) -> None:
    sink, counter = _storm(f"storm-{execution}", execution, 5)
    assert sink.tracebacks() == 1
    assert len(sink.lines("minion storm (Storm) crashed in message: ValueError('boom')")) == 1
    again = sink.lines("minion storm crashed again: ValueError at test_crash_storm_logs.py:")
    assert [line.split("(")[-1] for line in again] == [
        f"{n} time in 10 s, traceback as above)" for n in ("2nd", "3rd", "4th", "5th")]
    assert all("| ERROR" in line for line in again)
    # the first restart is a WARNING; a repeat's restart is folded into its line (DEBUG)
    restarts = sink.lines("minion storm restarting in")
    assert len(restarts) == 5
    assert ["WARNING" in line for line in restarts] == [True] + [False] * 4
    assert len(counter.crashes) == 5  # hooks (and metrics) see every crash


def test_the_traceback_comes_again_after_the_window_and_for_another_kind_of_crash() -> None:
    sink = TextSink("window-hooks")  # these hooks' records, not the system's own
    handler = sink.add()
    clock = Clock()
    hooks = LoggingHooks(logger.bind(test_marker=sink.marker), crash_window=10.0,
                         clock=clock)
    system = _start("window-system", "pooled", hooks=[hooks])
    try:
        ref = system.spawn(Storm, name="storm")
        _crash(ref)
        clock.now += 9.9
        _crash(ref)  # within the window: short
        assert sink.tracebacks() == 1
        clock.now += 0.2  # the window opened by the first crash has passed
        _crash(ref)
        assert sink.tracebacks() == 2
        _crash(ref)  # a new window: short again, counted from the crash logged in full
        assert sink.lines("crashed again")[-1].endswith("(2nd time in 10 s, traceback as above)")
        _crash(ref, "other")  # another exception at another place: in full
        assert sink.tracebacks() == 3
        other = system.spawn(Storm, name="other")
        _crash(other)  # another minion: in full
        assert sink.tracebacks() == 4
    finally:
        system.shutdown()
        logger.remove(handler)
    assert len(sink.lines("crashed again")) == 2


def test_a_zero_window_logs_every_traceback() -> None:
    sink, _ = _storm("zero", "pooled", 3, log_crash_window=0)
    assert sink.tracebacks() == 3
    assert sink.lines("crashed again") == []
    assert all("WARNING" in line for line in sink.lines("restarting in"))


def test_a_negative_window_is_refused() -> None:
    with pytest.raises(ValueError, match="log_crash_window must be >= 0 seconds"):
        ActorSystem.start(state_store=None, metrics_port=None, handle_signals=False,
                          file_logs=False, log_crash_window=-1)
