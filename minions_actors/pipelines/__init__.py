"""Pipelines: supervised event sources that feed minions with back-pressure and a persisted
position. :class:`Pipeline` is the base (:mod:`minions_actors.pipelines.base` explains its
turns and delivery), :class:`FileTail` a ready-made source, :class:`AsyncPipeline` one fed
by an async generator on the event loop (:mod:`minions_actors.pipelines.stream`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from minions_actors.pipelines.base import Batch, Pipeline, PipelineError

if TYPE_CHECKING:  # imported at first use (hashlib, asyncio): a start needs neither
    from minions_actors.pipelines.file_tail import FileTail
    from minions_actors.pipelines.stream import AsyncPipeline

__all__ = ["AsyncPipeline", "Batch", "FileTail", "Pipeline", "PipelineError"]

_LAZY = {"AsyncPipeline": "minions_actors.pipelines.stream",
         "FileTail": "minions_actors.pipelines.file_tail"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
