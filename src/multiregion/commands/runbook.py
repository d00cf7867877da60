"""``multiregion runbook run|resume|timeline|handover|token|report``: the recovery runbook.

The spec's ``[runbook]`` table names a Python file defining ``build(deployment) -> Runbook``
and the journal that lets a run resume after a crash: a file, or a key in the deployment's
store or bucket (``journal_in``), which another region can resume from. Approval gates ask on a
terminal; ``--approver NAME --reason TEXT`` grants them as NAME, ``--yes --reason TEXT`` as the
invoking user, ``--approvals-port`` takes signed tokens (``token`` signs one); each decision is
journaled with who and why. Otherwise a gate stops the run awaiting approval (resume later).
``report`` writes the post-incident report from the journal (and a drill's figures).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console
from rich.prompt import Confirm, Prompt

from multiregion.commands import output
from multiregion.commands.output import add_json
from multiregion.deployment import Deployment, RunbookSpec
from multiregion.errors import InvalidInput
from multiregion.failover import report as reports
from multiregion.failover.approvals import (
    SECRET_VARIABLE,
    Approval,
    ApprovalInbox,
    ApprovalTokens,
    Approver,
    TokenApprover,
    approve_as,
)
from multiregion.failover.journal import (
    FileJournal,
    JournalLocation,
    render_timeline,
    replay,
    timeline,
)
from multiregion.failover.notify import Broadcast, RunEvent
from multiregion.failover.roles import hand_over
from multiregion.failover.runbook import Runbook, RunContext, RunResult, Step
from multiregion.failover.shared_journal import BucketJournal, StoreJournal

EXIT_STOPPED = 1


def register(commands: argparse._SubParsersAction[Any]) -> None:
    group = commands.add_parser("runbook", help="run or resume the deployment's recovery runbook")
    actions = group.add_subparsers(dest="runbook_command", metavar="ACTION", required=True)
    for name, text, handler in (
        ("run", "start the runbook (a journal records every step)", run_runbook),
        ("resume", "carry on where a stopped or crashed run left off", resume_runbook),
        ("timeline", "show what the journal recorded, with step durations", show_timeline),
        ("handover", "give a role of the run to someone else (journaled)", handover),
        ("token", f"a signed approval token for a step of the run (${SECRET_VARIABLE})", token),
        ("report", "write the post-incident report (Markdown or HTML)", write_report),
    ):
        parser = actions.add_parser(name, help=text, description=text)
        parser.add_argument(
            "--config", required=True, metavar="FILE", help="the deployment spec (TOML)"
        )
        add_json(parser, _JSON_WHAT.get(name, "the run's outcome"))
        parser.set_defaults(handler=handler)
        if name in ("run", "resume"):
            parser.add_argument(
                "--approver", metavar="NAME", help="grant every approval gate as NAME"
            )
            parser.add_argument(
                "--yes", action="store_true", help="grant every gate as the invoking user"
            )
            parser.add_argument(
                "--reason", metavar="TEXT", help="why the gates are granted (journaled)"
            )
            parser.add_argument(
                "--dry-run", action="store_true", help="list what would run, run nothing"
            )
            parser.add_argument(
                "--approvals-port",
                type=int,
                metavar="PORT",
                help="take signed approval tokens POSTed to http://127.0.0.1:PORT/approvals "
                f"(secret in ${SECRET_VARIABLE}; 0 picks a free port)",
            )
            parser.add_argument(
                "--approval-wait",
                type=float,
                default=3600,
                metavar="SECONDS",
                help="with --approvals-port: how long a gate waits for its token (default 3600)",
            )
        elif name == "handover":
            parser.add_argument(
                "--role", required=True, metavar="ROLE", help="e.g. incident_commander"
            )
            parser.add_argument("--person", required=True, metavar="NAME", help="who takes it")
            parser.add_argument(
                "--by", metavar="NAME", help="who hands it over (default: the invoking user)"
            )
            parser.add_argument("--reason", required=True, metavar="TEXT", help="why")
        elif name == "token":
            parser.add_argument("--step", required=True, metavar="STEP", help="the gated step")
            parser.add_argument("--approver", required=True, metavar="NAME", help="who decides")
            parser.add_argument("--reason", required=True, metavar="TEXT", help="why")
            parser.add_argument("--deny", action="store_true", help="a denial, not a grant")
            parser.add_argument(
                "--ttl", type=float, default=900, metavar="SECONDS", help="valid for (900)"
            )
        elif name == "report":
            parser.add_argument(
                "--drill", metavar="FILE", help="a drill's JSON report (multiregion drill --json)"
            )
            parser.add_argument(
                "--format",
                choices=("markdown", "html"),
                default="markdown",
                help="Markdown (default) or an HTML page with the timeline drawn",
            )
            parser.add_argument(
                "--output", metavar="FILE", help="write the document there (default: stdout)"
            )
            parser.add_argument(
                "--restored-by",
                metavar="STEP",
                help="the step whose end gave users their service back: RTO ends there",
            )


_JSON_WHAT = {
    "timeline": "the timeline's entries",
    "handover": "the record written",
    "token": "the token and the run it is for",
    "report": "the report's figures",
}


def load_runbook(deployment: Deployment) -> Runbook:
    """The Runbook built by the file the spec names."""
    spec = _runbook_spec(deployment)
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
        self.console.print(event.text(), markup=False)


def _approver(args: argparse.Namespace, console: Console) -> Approver | None:
    """``--approver``/``--yes`` grant every gate, each recorded with who and the ``--reason``;
    on a terminal each gate is asked; otherwise a gate stops the run."""
    if args.approver is not None or args.yes:
        if not args.reason:
            raise InvalidInput("--reason", "say why the gates are granted; it is journaled")
        if args.approver is not None:
            return approve_as(args.approver, args.reason, via="command-line")
        return approve_as(getpass.getuser(), args.reason, via="--yes")
    if not console.is_terminal or not sys.stdin.isatty():
        return None
    me = getpass.getuser()

    def ask(step: Step, ctx: RunContext) -> Approval:
        who = f" ({step.role}: {ctx.person})" if step.role and ctx.person else ""
        granted = Confirm.ask(f"Approve step [bold]{step.name}[/]{who}?", console=console)
        reason = args.reason or Prompt.ask("Why?", console=console) or "(no reason given)"
        return Approval(granted, me, reason, "terminal")

    return ask


def journal_of(deployment: Deployment) -> JournalLocation:
    """Where the spec keeps the runbook's journal: a file, the store or the bucket."""
    spec = _runbook_spec(deployment)
    if spec.journal_in == "store":
        return StoreJournal(deployment.store, spec.journal)
    if spec.journal_in == "bucket":
        return BucketJournal(deployment.bucket, spec.journal)
    return FileJournal(spec.journal)


def _runbook_spec(deployment: Deployment) -> RunbookSpec:
    spec = deployment.spec.runbook
    if spec is None:
        raise InvalidInput(f"{deployment.spec.source}: runbook", "the spec has no [runbook] table")
    return spec


def _drive(args: argparse.Namespace, resume: bool) -> int:
    console = output.console(stderr=args.json)  # with --json, stdout is the result only
    with Deployment.from_file(args.config) as deployment, contextlib.ExitStack() as stack:
        runbook = load_runbook(deployment)
        journal = journal_of(deployment)
        approve = _approver(args, console)
        if args.approvals_port is not None:
            if approve is not None and (args.approver is not None or args.yes):
                raise InvalidInput("--approvals-port", "cannot go with --approver or --yes")
            inbox = stack.enter_context(
                ApprovalInbox(ApprovalTokens.from_env(), port=_port(args.approvals_port))
            )
            output.console(stderr=True).print(f"approval tokens: POST to {inbox.url}")
            approve = TokenApprover(inbox, wait_s=args.approval_wait)
        shown = _ConsoleNotifier(console)
        runbook.notifier = shown if runbook.notifier is None else Broadcast(runbook.notifier, shown)
        start = runbook.resume if resume else runbook.run
        result = start(journal, dry_run=args.dry_run, approve=approve)
    if args.json:
        output.emit(args, _result_json(result), "")
    else:
        _summarise(result, console)
    return 0 if result.ok else EXIT_STOPPED


def _port(value: int) -> int:
    if not 0 <= value <= 65535:
        raise InvalidInput("--approvals-port", f"{value} is not a port (0 to 65535)")
    return value


def _result_json(result: RunResult) -> dict[str, Any]:
    return {
        "runbook": result.runbook,
        "outcome": result.outcome,
        "ok": result.ok,
        "completed": list(result.completed),
        "stopped_at": result.stopped_at,
        "error": result.error,
        "journal": result.journal,
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
        entries = timeline(journal_of(deployment))
    output.emit(args, [attrs.asdict(e) for e in entries], render_timeline(entries))
    return 0


def handover(args: argparse.Namespace) -> int:
    with Deployment.from_file(args.config) as deployment:
        record = hand_over(
            journal_of(deployment),
            args.role,
            args.person,
            by=args.by or getpass.getuser(),
            reason=args.reason,
        )
    output.emit(args, attrs.asdict(record), f"{record.kind}: {record.message}")
    return 0


def token(args: argparse.Namespace) -> int:
    tokens = ApprovalTokens.from_env(ttl_s=args.ttl)
    with Deployment.from_file(args.config) as deployment:
        runbook = load_runbook(deployment)
        found = replay(journal_of(deployment).read())
    if found.run_id is None or found.outcome in ("new", "finished"):
        raise InvalidInput("--config", "the journal holds no run waiting for approvals")
    if args.step not in runbook.step_names:
        raise InvalidInput("--step", f"{args.step!r} is not a step of {runbook.name!r}")
    approval = Approval(not args.deny, args.approver, args.reason, "webhook")
    signed = tokens.issue(
        runbook=runbook.name, run_id=found.run_id, step=args.step, approval=approval
    )
    output.emit(args, {"token": signed, "run_id": found.run_id, "step": args.step}, signed)
    return 0


def write_report(args: argparse.Namespace) -> int:
    drill = None
    if args.drill is not None:
        try:
            drill = json.loads(Path(args.drill).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidInput("--drill", f"no such file {args.drill}") from None
        except ValueError as exc:
            raise InvalidInput("--drill", f"not a drill's JSON report: {exc}") from None
    with Deployment.from_file(args.config) as deployment:
        objectives = deployment.spec.objectives
        found = reports.build(
            journal_of(deployment).read(),
            rto_objective_s=objectives.rto_s,
            rpo_objective_s=objectives.rpo_s,
            drill=drill,
            restored_by=args.restored_by,
        )
    document = (reports.to_html if args.format == "html" else reports.to_markdown)(found)
    if args.output is not None:
        Path(args.output).write_text(document, encoding="utf-8")
    if args.json:
        output.emit(args, _report_json(found, args.output), "")
    elif args.output is None:
        sys.stdout.write(document)
    else:
        output.console().print(f"report written to {args.output}", markup=False)
    return 0


def _report_json(found: reports.PostIncidentReport, written: str | None) -> dict[str, Any]:
    return {
        "runbook": found.runbook,
        "run_id": found.run_id,
        "outcome": found.outcome,
        "rto": {**attrs.asdict(found.rto), "met": found.rto.met},
        "rpo": {**attrs.asdict(found.rpo), "met": found.rpo.met},
        "decisions": [attrs.asdict(d) for d in found.decisions],
        "action_items": found.action_items(),
        "output": written,
    }
