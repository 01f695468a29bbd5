"""The command line: ``python -m minions_actors`` (also installed as ``minions-actors``).

Commands: ``run pkg.module:function`` (start a system through a function and wait for it),
``demo``, ``inspect [--db DB] [--json]``, ``workflows [--db DB] [list|show|retry|discard]
[ID]``, ``--version``. Exit codes (:data:`EXIT_CODES`, documented in configuration.md):
0 done / clean shutdown, 1 failed, 2 bad usage, 3 the start failed, 4 nothing to do.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from minions_actors import __version__
from minions_actors.ops.cli_options import (
    DEFAULT_LIMIT,
    db_option,
    json_option,
    list_options,
    prog_name,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_START_FAILED, EXIT_NOTHING_TO_DO = 0, 1, 2, 3, 4
EXIT_CODES = {
    EXIT_OK: "done (run, demo: clean shutdown)",
    EXIT_FAILED: "failed: the system failed (escalation at Gru, minions that did not stop in "
    "time), or the store file cannot be read or changed (not a store, damaged, locked; "
    "discard --force while an application owns it)",
    EXIT_USAGE: "bad usage: wrong arguments, a target module or function that does not "
    "exist, no such file",
    EXIT_START_FAILED: "the start failed (run: the module or the function raised, its "
    "traceback is printed; demo: e.g. the metrics port is taken)",
    EXIT_NOTHING_TO_DO: "nothing to do: no such workflow, or its status does not allow the "
    "action (retrying a completed workflow)",
}


def _epilog() -> str:
    return "exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog_name(),
        description="Supervised, persistent actors for long-lived Python processes.",
        epilog=_epilog(),
    )
    parser.add_argument("--version", action="version", version=f"minions_actors {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_run(sub)
    _add_demo(sub)
    _add_workflows(sub)
    _add_inspect(sub)
    _add_observe(sub)
    return parser


def _add_run(sub: Any) -> None:
    run = sub.add_parser(
        "run", help="start a system through pkg.module:function and wait until it stops",
        description="Import pkg.module, call function() (it starts and returns an "
        "ActorSystem), then wait until the system stops: SIGTERM/SIGINT shut it down "
        "gracefully. The exit code tells a process supervisor how it ended.",
    )
    run.add_argument("target", help="pkg.module:function, importable from the working directory")


def _add_demo(sub: Any) -> None:
    demo = sub.add_parser(
        "demo", help="run a small supervised system that crashes, recovers and persists",
        description="A supervised system with embedded SQLite state, Prometheus metrics and "
        "file logs: a minion crashes, is restarted with its last good state, and the state "
        "survives into the next run of the demo.",
    )
    demo.add_argument("--db", default="minions.db", help="state file (default: minions.db)")
    demo.add_argument("--metrics-port", type=int, default=8081,
                      help="Prometheus port (default: 8081; 0 picks a free one)")
    demo.add_argument("--log-dir", default="logs", help="log directory (default: logs)")
    demo.add_argument("--forever", action="store_true",
                      help="keep running (ticking) until SIGTERM/SIGINT")


def _add_workflows(sub: Any) -> None:
    wf = sub.add_parser(
        "workflows",
        help="list, show, retry, discard, signal or cancel the workflows in a state file",
        description="List workflows (the default action: the --limit newest, optionally by "
        "--status and --since), show one, "
        "or act on one: 'retry ID' makes a failed or aborted workflow run again from the "
        "step where it stopped (it resumes the next time its minion starts: restart the app, "
        "or use system.retry_workflow() in a running one); 'discard ID' deletes it; "
        "'signal ID NAME' sends a signal; 'cancel ID' cancels a running workflow (both work "
        "while the application runs).",
        epilog="examples: workflows list --status failed --json; workflows retry order-7; "
        "workflows --db app.db discard order-7; workflows signal order-7 approval "
        "--payload '{\"ok\": true}'; workflows cancel order-7",
    )
    db_option(wf)
    list_options(wf)  # 'workflows --status failed' lists, as 'workflows list --status failed'
    json_option(wf)
    actions = wf.add_subparsers(dest="action", metavar="ACTION")
    texts = ("list workflows (default)", "show one workflow",
             "run a failed or aborted workflow again", "delete one workflow",
             "send a signal to a running workflow", "cancel a running workflow")
    for name, text in zip(_WORKFLOW_ACTIONS, texts, strict=True):
        action = actions.add_parser(name, help=text, description=text)
        # options after the action work too; SUPPRESS keeps the ones given before it
        db_option(action, default=argparse.SUPPRESS)
        if name == "list":
            list_options(action, default=argparse.SUPPRESS, limit=argparse.SUPPRESS)
        else:
            action.add_argument("workflow_id", metavar="ID", help="the workflow id")
        if name in ("list", "show"):
            json_option(action, default=argparse.SUPPRESS)
        if name == "discard":
            action.add_argument("--force", action="store_true",
                                help="discard even a running workflow (app stopped only)")
        _request_options(name, action)


def _request_options(name: str, action: Any) -> None:
    """The arguments of ``signal`` and ``cancel``."""
    if name == "signal":
        action.add_argument("signal", metavar="NAME", help="the signal's name")
        action.add_argument("--payload", metavar="JSON", default="null",
                            help="the signal's payload, a JSON value (default: null)")
    if name in ("signal", "cancel"):
        action.add_argument("--by", default="cli", help="who sends it (default: cli)")


def _add_inspect(sub: Any) -> None:
    insp = sub.add_parser("inspect", help="show the minions stored in a state file",
                          description="A readable table of the minions stored in a "
                          "minions.db: path, class, size and last update.")
    insp.add_argument("db_path", nargs="?", metavar="DB", help="same as --db")
    db_option(insp)
    json_option(insp)


def _add_observe(sub: Any) -> None:
    obs = sub.add_parser(
        "observe", help="serve the observer page, read-only, over a stopped app's state file",
        description="The web page a running app serves at /observer on its metrics port, "
        "over a state file instead: the stored minions as a tree, the workflows by status. "
        "Read-only (no actions); stops on SIGINT/SIGTERM.")
    db_option(obs)
    obs.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    obs.add_argument("--port", type=int, default=8082,
                     help="port (default: 8082; 0 picks a free one)")


def cmd_observe(db: str, host: str, port: int) -> int:
    from minions_actors.ops.observe import cmd_observe as serve

    return _store_command("observe", db, lambda: serve(db, host, port))


def _load_target(target: str) -> Any:
    module_name, sep, func_name = target.partition(":")
    if not sep or not module_name or not func_name:
        raise ValueError(f"expected pkg.module:function, got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:  # the target itself (not something it imports): usage
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise ValueError(str(exc)) from None
        raise
    try:
        return getattr(module, func_name)
    except AttributeError:
        raise ValueError(f"{module_name} has no attribute {func_name!r}") from None


def _print_user_traceback(what: str, exc: BaseException) -> None:
    """``what`` and the traceback of ``exc`` from the user's frames (file and line) on,
    without this module's frame."""
    tb = exc.__traceback__
    shown = traceback.format_exception(type(exc), exc, tb.tb_next if tb else None)
    print(f"{prog_name()} run: {what}:\n{''.join(shown).rstrip()}", file=sys.stderr)


def cmd_run(target: str) -> int:
    """Run ``target``; return the exit code for the process supervisor."""
    from minions_actors.system import ActorSystem

    try:
        func = _load_target(target)
    except ValueError as exc:
        print(f"{prog_name()} run: cannot load {target!r}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # the module raised while being imported: the user's code
        _print_user_traceback(f"{target} failed to import", exc)
        return EXIT_START_FAILED
    try:
        result = func()
    except Exception as exc:
        _print_user_traceback(f"{target} failed to start", exc)
        running = ActorSystem.current()
        if running is not None:
            running.shutdown()
        return EXIT_START_FAILED
    system = result if isinstance(result, ActorSystem) else ActorSystem.current()
    if system is None:
        print(f"{prog_name()} run: {target} returned {result!r} and no ActorSystem is "
              f"running; the function must start one and return it", file=sys.stderr)
        return EXIT_START_FAILED
    try:
        system.wait()
    except KeyboardInterrupt:  # handle_signals=False and Ctrl-C: still shut down cleanly
        system.shutdown()
    if system.failure is not None:
        print(f"{prog_name()} run: the system failed: {system.failure}", file=sys.stderr)
    elif system.exit_code:
        print(f"{prog_name()} run: the shutdown was not clean (minions did not stop in "
              "time, or accepted snapshots were lost); see the log", file=sys.stderr)
    return system.exit_code


def _print_json_lines(objects: Sequence[dict[str, Any]]) -> None:
    # ensure_ascii: control characters (ESC, C1, bidi) arrive escaped, never raw
    for obj in objects:
        print(json.dumps(obj, ensure_ascii=True, sort_keys=True))


def _store_command(name: str, db: str, action: Callable[[], int]) -> int:
    """Run one store command, turning its errors into a message and an exit code."""
    import sqlite3

    from minions_actors.errors import (
        StateStoreError,
        WorkflowRecordNotFound,
        WorkflowStatusConflict,
    )
    from minions_actors.persistence.sqlite_common import classify_sqlite_error

    try:
        return action()
    except (WorkflowRecordNotFound, WorkflowStatusConflict) as exc:
        message, code = exc.args[0] if exc.args else str(exc), EXIT_NOTHING_TO_DO
    except ValueError as exc:  # e.g. an unknown status
        message, code = str(exc), EXIT_USAGE
    except StateStoreError as exc:
        message = str(exc)
        code = EXIT_FAILED if os.path.isfile(db) else EXIT_USAGE  # no such file: a typo
    except sqlite3.Error as exc:  # a damaged page the open-time check did not reach
        message, code = str(classify_sqlite_error(exc, os.path.abspath(db))), EXIT_FAILED
    _note(name, str(message))
    return code


def _note(name: str, text: str) -> None:
    """One line on stderr, prefixed with the program and command, escaped."""
    from minions_actors.support.text import printable

    print(f"{prog_name()} {name}: {printable(text)}", file=sys.stderr)


def cmd_inspect(db: str, as_json: bool = False) -> int:
    from minions_actors.ops.inspect import format_inspect, read_minions
    from minions_actors.ops.inspect_schedules import with_schedules

    def show() -> int:
        listing = read_minions(db)
        if as_json:
            _print_json_lines(with_schedules(listing.minions, listing.schedules))
        else:
            print(format_inspect(listing))
        for warning in listing.not_utf8:
            _note("inspect", "warning: " + warning)
        return EXIT_OK

    return _store_command("inspect", db, show)


def _list_workflows(db: str, status: str | None, since: float | None, limit: int,
                    as_json: bool) -> int:
    from minions_actors.ops import inspect as ins

    listing = ins.read_workflows(db, status, since=since, limit=limit or None)
    if as_json:
        _print_json_lines([ins.workflow_json(r) for r in listing.records])
        if listing.matched > len(listing.records):
            _note("workflows", f"showing the newest {len(listing.records)} of "
                  f"{listing.matched} workflows; --limit N shows more, --limit 0 all")
    else:
        print(ins.format_workflows(listing, status, since))
    for warning in listing.not_utf8:
        _note("workflows", "warning: " + warning)
    return EXIT_OK


def _show_workflow(db: str, workflow_id: str, as_json: bool) -> int:
    from minions_actors.errors import WorkflowRecordNotFound
    from minions_actors.ops import inspect as ins

    listing = ins.read_workflows(db, workflow_id=workflow_id)
    if not listing.records:
        raise WorkflowRecordNotFound(f"no workflow {workflow_id!r} in {db!r}")
    if as_json:
        _print_json_lines([ins.workflow_json(listing.records[0], context=True)])
    else:
        print(ins.render_workflow(listing.records[0]))
    for warning in listing.not_utf8:
        _note("workflows", "warning: " + warning)
    return EXIT_OK


def cmd_workflows(db: str, action: str, workflow_id: str | None = None,
                  status: str | None = None, force: bool = False,
                  as_json: bool = False, *, since: float | None = None,
                  limit: int = DEFAULT_LIMIT, request: dict[str, Any] | None = None) -> int:
    from minions_actors.ops import inspect as ins

    def act() -> int:
        if action == "list":
            return _list_workflows(db, status, since, limit, as_json)
        assert workflow_id is not None  # argparse requires it for these actions
        if action == "show":
            return _show_workflow(db, workflow_id, as_json)
        if action == "retry":
            rec = ins.retry_workflow_in_file(db, workflow_id)
            text = (f"workflow {rec.workflow_id} ({rec.workflow_name}, minion "
                    f"{rec.minion_path}) will resume at step {rec.step_name!r} when its "
                    "minion next starts")
        elif action in ("signal", "cancel"):
            text = _request(db, action, workflow_id, request or {})
        else:
            rec = ins.discard_workflow_in_file(db, workflow_id, force=force)
            text = f"workflow {rec.workflow_id} ({rec.status}) discarded"
        print(ins.printable(text))
        return EXIT_OK

    return _store_command("workflows", db, act)


def _request(db: str, action: str, workflow_id: str, request: dict[str, Any]) -> str:
    """``signal`` or ``cancel``: what was done, in a sentence."""
    from minions_actors.ops import workflow_requests as req

    by = request.get("by") or "cli"
    if action == "signal":
        name = request["signal"]
        try:
            rec = req.signal_workflow_in_file(db, workflow_id, name, request["payload"],
                                              sent_by=by)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--payload is not JSON ({exc}); nothing was sent") from None
        return (f"signal {name!r} stored for workflow {rec.workflow_id} (at step "
                f"{rec.step_name!r}); its WaitSignal step takes it")
    rec, applied = req.cancel_workflow_in_file(db, workflow_id, by=by)
    if applied:
        return f"workflow {rec.workflow_id} cancelled by {by} (at step {rec.step_name!r})"
    if req.wait_cancelled(db, workflow_id, timeout=5.0):
        return (f"workflow {rec.workflow_id} cancelled by {by} (at step {rec.step_name!r}; "
                "applied by the running application)")
    return (f"cancel of workflow {rec.workflow_id} requested; the running application "
            "applies it when the workflow's minion runs (not within 5 s)")


_WORKFLOW_ACTIONS = ("list", "show", "retry", "discard", "signal", "cancel")


def _old_workflows_syntax(argv: Sequence[str]) -> str | None:
    """A hint for ``workflows wf.db retry ID`` (the store file was positional before)."""
    if len(argv) < 2 or argv[0] != "workflows" or argv[1].startswith("-"):
        return None
    db = argv[1]
    if db in _WORKFLOW_ACTIONS or not (db.endswith(".db") or os.path.isfile(db)):
        return None
    rest = " ".join(argv[2:]) or "list"
    return f"the store file is given with --db: workflows --db {db} {rest}"


def _die_on_closed_pipe() -> None:
    """Let SIGPIPE end a printing command quietly, as it ends ``cat`` (``... | head -1``):
    Python ignores it and raises BrokenPipeError instead. Not for ``run``/``demo``, whose
    sockets must not kill the application."""
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m minions_actors`` and ``minions-actors``."""
    parser = _parser()
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    hint = _old_workflows_syntax(argv)
    if hint is not None:
        parser.error(hint)
    args = parser.parse_args(argv)
    if from_command_line and args.command not in ("run", "demo"):
        _die_on_closed_pipe()
    if args.command == "run":
        return cmd_run(args.target)
    if args.command == "inspect":
        if args.db_path is not None and args.db != "minions.db" and args.db_path != args.db:
            parser.error(f"inspect: two files given ({args.db_path!r} and --db {args.db!r})")
        return cmd_inspect(args.db_path or args.db, args.json)
    if args.command == "workflows":
        return cmd_workflows(
            args.db, args.action or "list", getattr(args, "workflow_id", None),
            args.status, getattr(args, "force", False), args.json,
            since=args.since, limit=args.limit,
            request={k: getattr(args, k, None) for k in ("signal", "payload", "by")},
        )
    if args.command == "observe":
        return cmd_observe(args.db, args.host, args.port)
    if args.command == "demo":
        from minions_actors.ops.demo import quiet_stderr, run_demo

        quiet_stderr()

        return run_demo(db=args.db, metrics_port=args.metrics_port, log_dir=args.log_dir,
                        forever=args.forever)
    parser.print_help()
    return EXIT_USAGE
