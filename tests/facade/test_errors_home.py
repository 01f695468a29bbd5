"""Every public exception class of the package is defined in minions_actors.errors (one home
for a user's ``except`` clauses), and the modules that document one re-export that class."""

from __future__ import annotations

import importlib
import pkgutil

import minions_actors
from minions_actors import errors


def _modules() -> list[str]:
    return [info.name for info in pkgutil.walk_packages(minions_actors.__path__,
                                                       "minions_actors.")
            if not info.name.endswith("__main__")]


def test_every_public_exception_is_defined_in_errors() -> None:
    outside = []
    for name in _modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if (isinstance(value, type) and issubclass(value, BaseException)
                    and not attr.startswith("_")
                    and value.__module__.startswith("minions_actors")
                    and value.__module__ != "minions_actors.errors"):
                outside.append(f"{name}.{attr} (defined in {value.__module__})")
    assert outside == []


def test_documented_paths_re_export_the_same_classes() -> None:
    from minions_actors.sidecar import SidecarCrashed, SidecarError
    from minions_actors.workflows import AbortWorkflow, WorkflowError, WorkflowTimeout

    assert (SidecarCrashed, SidecarError) == (errors.SidecarCrashed, errors.SidecarError)
    assert (AbortWorkflow, WorkflowError, WorkflowTimeout) == (
        errors.AbortWorkflow, errors.WorkflowError, errors.WorkflowTimeout)
    assert minions_actors.WorkflowError is errors.WorkflowError
