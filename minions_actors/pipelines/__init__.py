"""Pipelines: supervised event sources that feed minions with back-pressure and a persisted
position. :class:`Pipeline` is the base (:mod:`minions_actors.pipelines.base` explains its
turns and delivery), :class:`FileTail` a ready-made source, :class:`AsyncPipeline` one fed
by an async generator on the event loop (:mod:`minions_actors.pipelines.stream`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from minions_actors.pipelines.base import Batch, Pipeline, PipelineError
from minions_actors.support.lazy import lazy_getattr

if TYPE_CHECKING:  # imported at first use (hashlib, asyncio): a start needs neither
    from minions_actors.pipelines.file_tail import FileTail
    from minions_actors.pipelines.stream import AsyncPipeline

__all__ = ["AsyncPipeline", "Batch", "FileTail", "Pipeline", "PipelineError"]

_LAZY = {"AsyncPipeline": "minions_actors.pipelines.stream",
         "FileTail": "minions_actors.pipelines.file_tail"}


__getattr__ = lazy_getattr(globals(), _LAZY)
