"""``multiregion runbook run|resume|timeline``: the deployment's recovery runbook.

The spec's ``[runbook]`` table names a Python file defining ``build(deployment) -> Runbook``
and the journal that lets a run resume after a crash. Approval gates ask on a terminal, are
granted by ``--yes``, and otherwise stop the run awaiting approval (resume later).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console
from rich.prompt import Confirm

from multiregion.commands import output
from multiregion.commands.output import add_json
from multiregion.deployment import Deployment
from multiregion.errors import InvalidInput
from multiregion.failover.journal import render_timeline, timeline
from multiregion.failover.notify import Broadcast, RunEvent
from multiregion.failover.runbook import Approver, Runbook, RunContext, RunResult, Step

EXIT_STOPPED = 1


def register(commands: argparse._SubParsersAction[Any]) -> None:
    group = commands.add_parser("runbook", help="run or resume the deployment's recovery runbook")
    actions = group.add_subparsers(dest="runbook_command", metavar="ACTION", required=True)
    for name, text, handler in (
        ("run", "start the runbook (a journal records every step)", run_runbook),
        ("resume", "carry on where a stopped or crashed run left off", resume_runbook),
        ("timeline", "show what the journal recorded, with step durations", show_timeline),
    ):
        parser = actions.add_parser(name, help=text, description=text)
        parser.add_argument(
            "--config", required=True, metavar="FILE", help="the deployment spec (TOML)"
        )
        add_json(parser, "the run's outcome" if name != "timeline" else "the timeline's entries")
        if name != "timeline":
            parser.add_argument("--yes", action="store_true", help="grant every approval gate")
            parser.add_argument(
                "--dry-run", action="store_true", help="list what would run, run nothing"
            )
        parser.set_defaults(handler=handler)


def load_runbook(deployment: Deployment) -> Runbook:
    """The Runbook built by the file the spec names."""
    spec = deployment.spec.runbook
    if spec is None:
        raise InvalidInput(f"{deployment.spec.source}: runbook", "the spec has no [runbook] table")
    path = Path(spec.file)
    if not path.is_file():
        raise InvalidInput(f"{deployment.spec.source}: runbook.file", f"no such file {path}")
    module_spec = importlib.util.spec_from_file_location(f"multiregion_runbook_{path.stem}", path)
    if module_spec is None or module_spec.loader is None:
        raise InvalidInput(f"{deployment.spec.source}: runbook.file", f"cannot load {path}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    build = getattr(module, "build", None)
    if not callable(build):
        raise InvalidInput(f"{deployment.spec.source}: runbook.file", f"{path} has no build()")
    runbook = build(deployment)
    if not isinstance(runbook, Runbook):
        raise InvalidInput(
            f"{deployment.spec.source}: runbook.file", "build() must return a Runbook"
        )
    return runbook


class _ConsoleNotifier:
    """Shows each runbook event as it happens."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def notify(self, event: RunEvent) -> None:
        self.console.print(event.text())


def _approver(args: argparse.Namespace, console: Console) -> Approver | None:
    if args.yes:
        return lambda step, ctx: True
    if not console.is_terminal or not sys.stdin.isatty():
        return None

    def ask(step: Step, ctx: RunContext) -> bool:
        who = f" ({step.role}: {ctx.person})" if step.role and ctx.person else ""
        return Confirm.ask(f"Approve step [bold]{step.name}[/]{who}?", console=console)

    return ask


def _drive(args: argparse.Namespace, resume: bool) -> int:
    console = output.console(stderr=args.json)  # with --json, stdout is the result only
    with Deployment.from_file(args.config) as deployment:
        runbook = load_runbook(deployment)
        assert deployment.spec.runbook is not None
        journal = deployment.spec.runbook.journal
        shown = _ConsoleNotifier(console)
        runbook.notifier = shown if runbook.notifier is None else Broadcast(runbook.notifier, shown)
        start = runbook.resume if resume else runbook.run
        result = start(journal, dry_run=args.dry_run, approve=_approver(args, console))
    if args.json:
        output.emit(args, _result_json(result), "")
    else:
        _summarise(result, console)
    return 0 if result.ok else EXIT_STOPPED


def _result_json(result: RunResult) -> dict[str, Any]:
    return {
        "runbook": result.runbook,
        "outcome": result.outcome,
        "ok": result.ok,
        "completed": list(result.completed),
        "stopped_at": result.stopped_at,
        "error": result.error,
        "journal": str(result.journal),
        "plan": list(result.plan),
    }


def _summarise(result: RunResult, console: Console) -> None:
    for line in result.plan:
        console.print(f"  would run: {line}")
    tail = f" at {result.stopped_at}" if result.stopped_at else ""
    error = f": {result.error}" if result.error else ""
    console.print(f"runbook {result.runbook}: {result.outcome}{tail}{error}")
    console.print(f"journal: {result.journal}")


def run_runbook(args: argparse.Namespace) -> int:
    return _drive(args, resume=False)


def resume_runbook(args: argparse.Namespace) -> int:
    return _drive(args, resume=True)


def show_timeline(args: argparse.Namespace) -> int:
    with Deployment.from_file(args.config) as deployment:
        spec = deployment.spec.runbook
        if spec is None:
            raise InvalidInput(f"{deployment.spec.source}: runbook", "the spec has no [runbook]")
        entries = timeline(spec.journal)
    output.emit(args, [attrs.asdict(e) for e in entries], render_timeline(entries))
    return 0
