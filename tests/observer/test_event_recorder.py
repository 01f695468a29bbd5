"""The recorder of recent events stays bounded whatever the system does, and keeps no
message contents and no frame locals."""

from __future__ import annotations

from dataclasses import dataclass

from minions_actors.observer.events import EventRecorder

from .observer_apps import SECRET


@dataclass
class View:
    path: str
    cls_name: str = "Worker"
    handled: int = 0
    failed: int = 0
    busy_seconds: float = 0.0

    def mailbox_depth(self) -> int:
        return 0


def _raised(text: str) -> BaseException:
    password = SECRET  # a local of the failing frame: never in the traceback text
    try:
        raise ValueError(text + (password and ""))
    except ValueError as exc:
        return exc


def test_events_and_crashes_are_bounded() -> None:
    rec = EventRecorder(max_events=50, max_crashes=10)
    for i in range(1000):
        rec.minion_crashed(View(f"m{i}"), _raised(f"crash {i}"), "message")
        rec.minion_restarting(View(f"m{i}"), 0.1, "ValueError")
    events = rec.since(0, limit=10_000)
    assert len(events) == 50 and events[-1]["seq"] == rec.last_seq == 2000
    assert rec.last_crash("m989") is None and rec.last_crash("m999")["message"] == "crash 999"
    assert len(rec._crashes) == 10


def test_no_message_contents_and_no_locals() -> None:
    rec = EventRecorder()
    rec.dead_letter(View("a"), {"password": SECRET}, True)
    rec.minion_crashed(View("b"), _raised("boom"), "message")
    assert "dict" in rec.since(0)[0]["text"]
    crash = rec.last_crash("b")
    assert crash is not None and "_raised" in crash["traceback"]
    assert SECRET not in str(rec.since(0)) + str(crash)


def test_each_crash_of_a_storm_is_recorded_with_its_own_traceback() -> None:
    # the traceback is taken at the crash and formatted when first read (issue 22): the
    # text read is the latest crash's, with the source line of the frame that raised
    rec = EventRecorder()
    for i in range(3):
        rec.minion_crashed(View("m"), _raised(f"crash {i}"), "message")
    row = rec.last_crash("m", with_traceback=False)
    assert row is not None and row["message"] == "crash 2" and "traceback" not in row
    crash = rec.last_crash("m")
    assert crash is not None
    assert crash["traceback"].rstrip().endswith("ValueError: crash 2")
    assert 'raise ValueError(text + (password and ""))' in crash["traceback"]
    assert [e["kind"] for e in rec.since(0)] == ["crash"] * 3


def test_ordinary_stops_are_not_events() -> None:
    rec = EventRecorder()
    rec.minion_stopped(View("a"), "stopped")
    rec.minion_stopped(View("b"), "shutdown")
    rec.minion_stopped(View("c"), "escalation")
    assert [e["path"] for e in rec.since(0)] == ["c"]
