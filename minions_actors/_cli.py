"""The command line: ``python -m minions_actors`` (also installed as ``minions-actors``).

Commands: ``run pkg.module:function`` (start a system through a function and wait for it),
``demo``, ``inspect minions.db``, ``workflows minions.db [retry|discard ID]``, ``--version``.
Exit codes: 0 clean shutdown, 1 the system failed (escalation at Gru or an unclean stop),
2 bad usage or import, 3 the start failed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_START_FAILED = 0, 1, 2, 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m minions_actors",
        description="Supervised, persistent actors for long-lived Python processes.",
        epilog="Exit codes: 0 clean shutdown, 1 the system failed (escalation at Gru), "
        "2 bad usage or import error, 3 the start failed.",
    )
    parser.add_argument("--version", action="version", version=f"minions_actors {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run", help="start a system through pkg.module:function and wait until it stops",
        description="Import pkg.module, call function() (it starts and returns an "
        "ActorSystem), then wait until the system stops: SIGTERM/SIGINT shut it down "
        "gracefully. The exit code tells a process supervisor how it ended.",
    )
    run.add_argument("target", help="pkg.module:function, importable from the working directory")

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

    wf = sub.add_parser(
        "workflows", help="list, retry or discard the workflows stored in a state file",
        description="List workflows (optionally by --status), or act on one: 'retry ID' "
        "makes a failed or aborted workflow run again from the step where it stopped (it "
        "resumes the next time its minion starts: restart the app, or use "
        "system.retry_workflow() in a running one); 'discard ID' deletes it.",
    )
    wf.add_argument("db", nargs="?", default="minions.db", help="default: minions.db")
    wf.add_argument("action", nargs="?", choices=["list", "retry", "discard"], default="list")
    wf.add_argument("workflow_id", nargs="?", help="the workflow id, for retry and discard")
    wf.add_argument("--status", choices=["running", "completed", "aborted", "failed"])
    wf.add_argument("--force", action="store_true", help="discard even a running workflow")

    insp = sub.add_parser("inspect", help="show the minions stored in a state file",
                          description="A readable table of the minions stored in a "
                          "minions.db: path, class, size and last update.")
    insp.add_argument("db", nargs="?", default="minions.db", help="default: minions.db")
    return parser


def _load_target(target: str) -> Any:
    module_name, sep, func_name = target.partition(":")
    if not sep or not module_name or not func_name:
        raise ValueError(f"expected pkg.module:function, got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    try:
        return getattr(module, func_name)
    except AttributeError:
        raise ValueError(f"{module_name} has no attribute {func_name!r}") from None


def cmd_run(target: str) -> int:
    """Run ``target``; return the exit code for the process supervisor."""
    from .system import ActorSystem

    try:
        func = _load_target(target)
    except (ImportError, ValueError) as exc:
        print(f"minions_actors run: cannot load {target!r}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = func()
    except Exception as exc:
        print(f"minions_actors run: {target} failed to start: {exc!r}", file=sys.stderr)
        running = ActorSystem.current()
        if running is not None:
            running.shutdown()
        return EXIT_START_FAILED
    system = result if isinstance(result, ActorSystem) else ActorSystem.current()
    if system is None:
        print(f"minions_actors run: {target} returned {result!r} and no ActorSystem is "
              f"running; the function must start one and return it", file=sys.stderr)
        return EXIT_START_FAILED
    try:
        system.wait()
    except KeyboardInterrupt:  # handle_signals=False and Ctrl-C: still shut down cleanly
        system.shutdown()
    if system.failure is not None:
        print(f"minions_actors run: the system failed: {system.failure}", file=sys.stderr)
    elif system.exit_code:
        print("minions_actors run: the shutdown was not clean (minions did not stop in "
              "time, or accepted snapshots were lost); see the log", file=sys.stderr)
    return system.exit_code


def cmd_inspect(db: str) -> int:
    from ._inspect import render_inspect

    try:
        print(render_inspect(db))
    except Exception as exc:
        print(f"minions_actors inspect: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def cmd_workflows(db: str, action: str, workflow_id: str | None, status: str | None,
                  force: bool) -> int:
    from ._inspect import discard_workflow_in_file, render_workflows, retry_workflow_in_file

    try:
        if action == "list":
            print(render_workflows(db, status=status))
            return EXIT_OK
        if not workflow_id:
            print(f"minions_actors workflows: '{action}' needs a workflow id", file=sys.stderr)
            return EXIT_USAGE
        if action == "retry":
            rec = retry_workflow_in_file(db, workflow_id)
            print(f"workflow {rec.workflow_id} ({rec.workflow_name}, minion {rec.minion_path}) "
                  f"will resume at step {rec.step_name!r} when its minion next starts")
        else:
            rec = discard_workflow_in_file(db, workflow_id, force=force)
            print(f"workflow {rec.workflow_id} ({rec.status}) discarded")
    except Exception as exc:
        print(f"minions_actors workflows: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m minions_actors`` and ``minions-actors``."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "run":
        return cmd_run(args.target)
    if args.command == "inspect":
        return cmd_inspect(args.db)
    if args.command == "workflows":
        return cmd_workflows(args.db, args.action, args.workflow_id, args.status, args.force)
    if args.command == "demo":
        from .demo import quiet_stderr, run_demo

        quiet_stderr()

        return run_demo(db=args.db, metrics_port=args.metrics_port, log_dir=args.log_dir,
                        forever=args.forever)
    parser.print_help()
    return EXIT_USAGE
