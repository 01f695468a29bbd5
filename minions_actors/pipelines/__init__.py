"""Pipelines: supervised event sources that feed minions with back-pressure and a persisted
position. :class:`Pipeline` is the base (:mod:`minions_actors.pipelines.base` explains its
turns and delivery), :class:`FileTail` a ready-made source."""

from minions_actors.pipelines.base import Batch, Pipeline, PipelineError
from minions_actors.pipelines.file_tail import FileTail

__all__ = ["Batch", "FileTail", "Pipeline", "PipelineError"]
