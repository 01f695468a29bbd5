"""Unit tests of the runtime's loguru setup and of the log hooks, with stand-in cells."""

from __future__ import annotations

import io
import json
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from loguru import logger
from loguru._logger import Core, Logger  # private: the only way to get an isolated core

from minions_actors import ActorSystem, Minion
from minions_actors.observability.log_hooks import LoggingHooks
from minions_actors.observability.logs import (
    GRU_CLASS,
    GRU_PATH,
    LogOptions,
    LogSetup,
)


@dataclass
class FakeCell:
    path: str = "parent/worker"
    cls_name: str = "Worker"


class ListSink:
    """Collects loguru records; only runtime ones unless ``everything``."""

    def __init__(self, everything: bool = False) -> None:
        self.records: list[Any] = []
        self.everything = everything

    def __call__(self, message: Any) -> None:
        record = message.record
        if self.everything or record["extra"].get("minions"):
            self.records.append(record)


def isolated_logger() -> Any:
    """A loguru logger with its own core and no handler, as a user might inject."""
    return Logger(
        core=Core(),
        exception=None,
        depth=0,
        record=False,
        lazy=False,
        colors=False,
        raw=False,
        capture=True,
        patchers=[],
        extra={},
    )


@pytest.fixture
def sink() -> Any:
    s = ListSink()
    handler_id = logger.add(s, level="DEBUG")
    yield s
    logger.remove(handler_id)


def setup_of(logger: Any = None, log_sinks: Any = (), **options: Any) -> LogSetup:
    """A LogSetup with the logging options of ActorSystem.start() (LogOptions' names)."""
    return LogSetup(logger=logger, log_sinks=log_sinks, options=LogOptions(**options))


def quiet_setup(**kwargs: Any) -> LogSetup:
    kwargs.setdefault("file_logs", False)
    kwargs.setdefault("stderr_logs", False)
    return setup_of(**kwargs)


def crash() -> ValueError:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        return exc


def test_every_hook_record_carries_minion_extras(sink: ListSink) -> None:
    hooks = LoggingHooks(quiet_setup().log)
    cell = FakeCell()
    hooks.system_started(object())
    hooks.minion_started(cell, False)
    hooks.minion_crashed(cell, crash(), "message")
    hooks.minion_restarting(cell, 0.5, "crash")
    hooks.lifecycle_error(cell, crash(), "on_stop")
    hooks.escalated(cell, crash())
    hooks.dead_letter(cell, "hello", True)
    hooks.snapshot_error(cell, crash(), True)
    hooks.minion_stopped(cell, "stop")
    hooks.system_stopping(object(), None)
    hooks.system_stopped(object(), None)
    assert len(sink.records) == 11
    for record in sink.records:
        assert record["extra"]["minions"] is True
        assert "minion" in record["extra"]
        assert "minion_class" in record["extra"]
    cell_records = sink.records[1:-2]
    assert {r["extra"]["minion"] for r in cell_records} == {"parent/worker"}
    assert {r["extra"]["minion_class"] for r in cell_records} == {"Worker"}
    assert sink.records[0]["extra"]["minion"] == GRU_PATH
    assert sink.records[0]["extra"]["minion_class"] == GRU_CLASS


def test_levels_and_tracebacks(sink: ListSink) -> None:
    hooks = LoggingHooks(quiet_setup().log)
    cell = FakeCell()
    exc = crash()
    hooks.minion_crashed(cell, exc, "message")
    hooks.minion_restarting(cell, 0.1, "crash")
    hooks.lifecycle_error(cell, exc, "on_stop")
    hooks.escalated(cell, exc)
    hooks.system_started(object())
    hooks.system_stopped(object(), None)
    levels = [r["level"].name for r in sink.records]
    assert levels == ["ERROR", "WARNING", "ERROR", "ERROR", "INFO", "INFO"]
    crashed = sink.records[0]
    assert crashed["exception"] is not None
    assert crashed["exception"].value is exc
    assert "message" in crashed["message"]


def test_crash_logged_once_at_error(sink: ListSink) -> None:
    hooks = LoggingHooks(quiet_setup().log)
    hooks.minion_crashed(FakeCell(), crash(), "on_start")
    errors = [r for r in sink.records if r["level"].no >= 40]
    assert len(errors) == 1


def test_dead_letters_warn_only_first(sink: ListSink) -> None:
    hooks = LoggingHooks(quiet_setup().log)
    cell = FakeCell()
    hooks.dead_letter(cell, {"secret": "x"}, True)
    for _ in range(5):
        hooks.dead_letter(cell, {"secret": "x"}, False)
    levels = [r["level"].name for r in sink.records]
    assert levels == ["WARNING"] + ["DEBUG"] * 5
    assert all("secret" not in r["message"] for r in sink.records)


def test_snapshot_errors_error_only_first(sink: ListSink) -> None:
    hooks = LoggingHooks(quiet_setup().log)
    cell = FakeCell()
    hooks.snapshot_error(cell, crash(), True)
    hooks.snapshot_error(cell, crash(), False)
    hooks.snapshot_error(cell, crash(), False)
    assert [r["level"].name for r in sink.records] == ["ERROR", "DEBUG", "DEBUG"]


def test_nothing_at_info_for_routine_minion_life(sink: ListSink) -> None:
    hooks = LoggingHooks(quiet_setup().log)
    cell = FakeCell()
    for _ in range(10):
        hooks.minion_started(cell, True)
        hooks.minion_stopped(cell, "stop")
    assert all(r["level"].no < 20 for r in sink.records)


def test_system_failure_is_an_error(sink: ListSink) -> None:
    hooks = LoggingHooks(quiet_setup().log)
    hooks.system_stopping(object(), RuntimeError("gave up"))
    hooks.system_stopped(object(), RuntimeError("gave up"))
    assert [r["level"].name for r in sink.records] == ["WARNING", "ERROR"]


def test_gru_cell_gets_the_gru_path(sink: ListSink) -> None:
    hooks = LoggingHooks(quiet_setup().log)
    hooks.lifecycle_error(FakeCell(path="", cls_name="Gru"), crash(), "store-close")
    assert sink.records[0]["extra"]["minion"] == GRU_PATH


def test_workflow_id_is_bound_when_given(sink: ListSink) -> None:
    hooks = LoggingHooks(quiet_setup().log)
    hooks.for_cell(FakeCell(), workflow_id="order-42").info("step done")
    assert sink.records[0]["extra"]["workflow_id"] == "order-42"
    assert sink.records[0]["extra"]["minion"] == "parent/worker"


def test_injected_logger_fields_appear() -> None:
    user = isolated_logger()
    s = ListSink()
    user.add(s)
    setup = quiet_setup(logger=user.bind(app="shop"))
    LoggingHooks(setup.log).minion_restarting(FakeCell(), 1.0, "crash")
    assert len(s.records) == 1
    assert s.records[0]["extra"]["app"] == "shop"
    assert s.records[0]["extra"]["minion"] == "parent/worker"


def test_no_sinks_when_everything_is_off() -> None:
    setup = setup_of(file_logs=False, stderr_logs=False, log_sinks=())
    setup.install()
    assert setup.handler_ids == ()
    setup.close()


def test_close_removes_only_our_sinks_and_is_idempotent() -> None:
    user_logger = isolated_logger()
    mine, theirs = ListSink(everything=True), ListSink(everything=True)
    user_logger.add(theirs)
    setup = quiet_setup(logger=user_logger, log_sinks=[mine])
    setup.install()
    assert len(setup.handler_ids) == 1
    setup.log.info("during")
    setup.close()
    setup.close()
    setup.log.info("after")
    user_logger.info("user after")
    assert [r["message"] for r in mine.records] == ["during"]
    assert [r["message"] for r in theirs.records] == ["during", "after", "user after"]


def test_log_sinks_accept_tuples_and_dicts() -> None:
    user_logger = isolated_logger()
    warn_only, by_dict, plain = ListSink(), ListSink(), ListSink()
    setup = quiet_setup(
        logger=user_logger,
        log_sinks=[(warn_only, {"level": "WARNING"}), {"sink": by_dict, "level": "DEBUG"}, plain],
    )
    setup.install()
    try:
        hooks = LoggingHooks(setup.log)
        hooks.minion_started(FakeCell(), False)  # DEBUG
        hooks.minion_restarting(FakeCell(), 0.0, "crash")  # WARNING
    finally:
        setup.close()
    assert [r["level"].name for r in warn_only.records] == ["WARNING"]
    assert [r["level"].name for r in by_dict.records] == ["DEBUG", "WARNING"]
    assert len(plain.records) == 2  # a bare sink gets loguru's default level (DEBUG)


def test_dict_sink_without_sink_key_is_rejected() -> None:
    setup = quiet_setup(logger=isolated_logger(), log_sinks=[{"level": "INFO"}])
    with pytest.raises(ValueError, match="sink"):
        setup.install()
    assert setup.handler_ids == ()


def test_file_sink_is_owner_only(tmp_path: Path) -> None:
    setup = setup_of(logger=isolated_logger(), log_dir=tmp_path / "logs", stderr_logs=False)
    setup.install()
    try:
        LoggingHooks(setup.log).system_started(object())
    finally:
        setup.close()
    path = tmp_path / "logs" / "minions.log"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text(encoding="utf-8")
    assert "minions system started" in text
    assert "| gru - minions system started" in text  # no location: the runtime logged it


def test_rotated_files_are_owner_only(tmp_path: Path) -> None:
    setup = setup_of(logger=isolated_logger(), log_dir=tmp_path, stderr_logs=False,
                     log_rotation="1 KB")
    setup.install()
    try:
        for i in range(40):
            setup.log.info("line {} {}", i, "x" * 100)
    finally:
        setup.close()
    files = list(tmp_path.iterdir())
    assert len(files) > 1  # rotation happened
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}


def test_existing_log_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "minions.log"
    path.write_text("old\n", encoding="utf-8")
    path.chmod(0o644)
    setup = setup_of(logger=isolated_logger(), log_dir=tmp_path, stderr_logs=False)
    setup.install()
    setup.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_json_file_lines_parse(tmp_path: Path) -> None:
    setup = setup_of(logger=isolated_logger(), log_dir=tmp_path, stderr_logs=False, json_logs=True)
    setup.install()
    try:
        hooks = LoggingHooks(setup.log)
        hooks.system_started(object())
        hooks.minion_crashed(FakeCell(), crash(), "message")
    finally:
        setup.close()
    lines = (tmp_path / "minions.log").read_text(encoding="utf-8").splitlines()
    docs = [json.loads(line) for line in lines]
    assert len(docs) == 2
    crashed = docs[1]["record"]
    assert crashed["level"]["name"] == "ERROR"
    assert crashed["extra"]["minion"] == "parent/worker"
    assert crashed["exception"]["type"] == "ValueError"


def test_file_sink_takes_application_records_too(tmp_path: Path) -> None:
    user_logger = isolated_logger()
    setup = setup_of(logger=user_logger, log_dir=tmp_path, stderr_logs=False)
    setup.install()
    try:
        user_logger.info("app says hi")
    finally:
        setup.close()
    assert "app says hi" in (tmp_path / "minions.log").read_text(encoding="utf-8")


def test_default_handler_is_swapped_for_a_standin_and_put_back() -> None:
    # A core whose first handler (id 0) stands for loguru's default one: while the setup is
    # installed, runtime records reach that stream only through the runtime's own sink, at
    # its level; application records still reach it. Twice: the handler put back by the
    # first close() (with a new id) is recognised by the second setup.
    user_logger = isolated_logger()
    stream = io.StringIO()
    assert user_logger.add(stream, format="{message}") == 0
    for round_ in range(2):
        setup = setup_of(logger=user_logger, file_logs=False, stderr_logs=True,
                         log_level="WARNING", log_sinks=[(stream, {"format": "sink {message}"})])
        setup.install()
        try:
            setup.log.debug("runtime debug")
            setup.log.warning("runtime warning")
            user_logger.debug("app debug")
        finally:
            setup.close()
        user_logger.debug("app after close")
        text = stream.getvalue()
        stream.truncate(0)
        stream.seek(0)
        # the default stream gets the app's records; the runtime's only via the runtime's
        # own sinks (here the explicit log_sinks entry; stderr is elsewhere)
        assert text.count("runtime debug") == text.count("sink runtime debug") == 1, round_
        assert text.count("runtime warning") == text.count("sink runtime warning") == 1
        assert "app debug" in text and "app after close" in text
    assert 0 not in user_logger._core.handlers  # it was swapped and put back with a new id


def test_runtime_stderr_sink_takes_only_runtime_records_at_its_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A core without handler 0: the runtime adds its own stderr sink, runtime records only.
    user_logger = isolated_logger()
    setup = setup_of(logger=user_logger, file_logs=False, stderr_logs=True)
    setup.install()
    try:
        assert len(setup.handler_ids) == 1
        setup.log.info("runtime line")
        user_logger.info("app line")
    finally:
        setup.close()
    err = capsys.readouterr().err
    assert "runtime line" in err
    assert "app line" not in err


def test_no_default_handler_comes_back_after_the_application_removed_all() -> None:
    user_logger = isolated_logger()
    assert user_logger.add(io.StringIO()) == 0  # stands for loguru's default handler
    setup = setup_of(logger=user_logger, file_logs=False, stderr_logs=False)
    setup.install()
    user_logger.remove()  # the application drops every handler while the system runs
    setup.close()
    assert user_logger._core.handlers == {}


def _doc_default(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def test_logging_options_have_one_definition() -> None:
    """ActorSystem.start()'s logging keywords and docs/configuration.md follow LogOptions."""
    import dataclasses
    import inspect

    from minions_actors import ActorSystem

    params = inspect.signature(ActorSystem.start).parameters
    doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    for f in dataclasses.fields(LogOptions):
        assert params[f.name].default == f.default, f.name
        assert f"| `{f.name}` | `{_doc_default(f.default)}` |" in doc, f.name


def test_debug_records_follow_sinks_added_and_removed_later() -> None:
    """Runtime DEBUG records are skipped while no sink takes them (the stand-in for loguru's
    default handler never does), and written again once a DEBUG sink is added."""
    user_logger = isolated_logger()
    everything = ListSink(everything=True)
    user_logger.add(everything, level="INFO")
    setup = quiet_setup(logger=user_logger)
    setup.install()
    try:
        hooks = LoggingHooks(setup.log)
        hooks.minion_started(FakeCell(), False)
        assert not hooks.debug_wanted()
        late = ListSink()
        handler_id = user_logger.add(late, level="DEBUG")
        hooks.minion_started(FakeCell(), False)
        hooks.minion_stopped(FakeCell(), "stopped")
        user_logger.remove(handler_id)
        hooks.minion_stopped(FakeCell(), "stopped")
    finally:
        setup.close()
    assert [r["message"] for r in late.records] == [
        "minion parent/worker started", "minion parent/worker stopped (stopped)"]
    assert everything.records == []


def test_runtime_lines_name_the_minion_not_the_logging_code(tmp_path: Path) -> None:
    # Every runtime line used to say where the runtime logged it ("log_hooks:minion_crashed:86"):
    # noise to an operator. The minion's path says who; the application's lines keep
    # their location, including those written through system.log.
    class Boom(Minion):
        def on_receive(self, message: Any) -> Any:
            raise ValueError("boom")

    system = ActorSystem.start(state_store=None, metrics_port=None, handle_signals=False,
                               stderr_logs=False, log_dir=tmp_path)
    try:
        boom = system.spawn(Boom, name="boom", restart="temporary")
        boom.tell("go")
        assert boom.actor_stopped.wait(10)  # crashed (and logged), not restarted
        system.log.warning("through the system's logger")
        logger.info("an application record")
    finally:
        system.shutdown()
    lines = (tmp_path / "minions.log").read_text(encoding="utf-8").splitlines()
    heads = {line.split(" - ", 1)[1]: line.split(" - ", 1)[0] for line in lines if " - " in line}
    crashed = next(h for m, h in heads.items() if m.startswith("minion boom (Boom) crashed"))
    assert crashed.endswith("| ERROR    | boom"), crashed
    assert heads["minions system started"].endswith("| INFO     | gru")
    assert not [h for h in heads.values() if "minions_actors." in h]
    here = "test_logs:test_runtime_lines_name_the_minion_not_the_logging_code:"
    assert here in heads["through the system's logger"]
    assert here in heads["an application record"]
