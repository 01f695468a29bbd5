"""The observer: a live web page of the running system, served at ``/observer`` on the
metrics HTTP server (docs/observer.md). Its static files ship in the package."""

from __future__ import annotations

from typing import Any

from minions_actors.observer.app import PREFIX, ObserverApp
from minions_actors.observer.events import EventRecorder
from minions_actors.observer.live import LiveSource

__all__ = ["PREFIX", "EventRecorder", "LiveSource", "ObserverApp", "attach"]


def attach(system: Any, metrics: Any, token: str | None) -> EventRecorder:
    """Mount the page on ``metrics``' server (before it starts) and return the recorder
    of recent events, a hook the system adds (it runs on events only, never per message)."""
    recorder = EventRecorder()
    metrics.routes[PREFIX] = ObserverApp(LiveSource(system, recorder), token)
    return recorder
