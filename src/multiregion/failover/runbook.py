"""The recovery procedure of a DR plan as code: ordered, idempotent steps driven from a journal.

Every step start, finish, failure and approval (with who decided and why) is written durably to
the journal before the run moves on, a file or the deployment's store or bucket
(``journal.FileJournal``, ``shared_journal``), so a run killed anywhere resumes where it
stopped, from this process or another one in another region: finished steps are skipped, a step that
was started but not finished runs again (which is why steps must be idempotent; ``ctx.attempt``
tells a step it is being retried). A step's changes to the shared state are committed with its
``step-finished`` record, so a retried step sees the state as it was before its first attempt.
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import attrs

from multiregion import validate
from multiregion.errors import InvalidInput, NotFound
from multiregion.failover.approvals import Approval, Approver
from multiregion.failover.journal import (
    JournalConflict,
    JournalLocation,
    OpenJournal,
    Record,
    RunState,
    location,
    replay,
    writer_id,
)
from multiregion.failover.notify import Notifier, RunEvent, deliver

if TYPE_CHECKING:
    from multiregion.failover.controller import Move
    from multiregion.model import FencingToken

JournalArg = str | os.PathLike[str] | JournalLocation
"""A journal: a file path, or a location such as ``StoreJournal``/``BucketJournal``."""

Outcome = Literal["finished", "failed", "denied", "awaiting-approval", "planned"]
_OUTCOMES: dict[str, Outcome] = {
    "finished": "finished",
    "failed": "failed",
    "denied": "denied",
    "awaiting-approval": "awaiting-approval",
}


Action = Callable[["RunContext"], "StepResult | None"]


@attrs.frozen
class StepResult:
    """What a step reports: a line for the timeline and keys to merge into the shared state."""

    message: str = ""
    updates: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


def _step_name(_instance: Any, _attribute: Any, value: Any) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        raise InvalidInput("step.name", "must be non-empty text of at most 100 characters")
    if any(ord(c) < 32 for c in value):
        raise InvalidInput("step.name", f"{value!r} must not contain control characters")


def _callable(field: str, *, optional: bool = False) -> Callable[[Any, Any, Any], None]:
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if not (callable(value) or (optional and value is None)):
            raise InvalidInput(field, f"must be callable, not {type(value).__name__}")

    return check


@attrs.frozen
class Step:
    """One idempotent step; ``action(ctx)`` may return a StepResult.

    ``role`` names who carries it out (a key of the runbook's roles); ``approval`` makes the run
    ask the approver before the step starts; ``dry_run(ctx)`` describes what the step would do
    (``description`` is used when it is not given).
    """

    name: str = attrs.field(validator=_step_name)
    action: Action = attrs.field(validator=_callable("step.action"))
    role: str | None = attrs.field(default=None, kw_only=True)
    approval: bool = attrs.field(default=False, kw_only=True)
    description: str = attrs.field(default="", kw_only=True)
    dry_run: Callable[[RunContext], str] | None = attrs.field(
        default=None, kw_only=True, validator=_callable("step.dry_run", optional=True)
    )


Sink = Callable[[str, str, Mapping[str, Any]], None]
"""(kind, message, data): a record of the step in the journal, and a notification."""


@attrs.define
class RunContext:
    """What a step sees: the shared JSON state, the roles, and a way to write to the timeline."""

    runbook: str
    run_id: str
    """Tells this run from other runs of the same runbook (approval tokens are bound to it)."""
    step: Step
    state: dict[str, Any]
    roles: Mapping[str, str]
    """Who holds each role now, hand-overs included."""
    dry_run: bool
    attempt: int
    """1 on the first try of the step, more when it is re-run after a crash or a failure."""
    _sink: Sink = attrs.field(repr=False, alias="sink")

    @property
    def person(self) -> str | None:
        """Who holds the step's role."""
        return self.roles.get(self.step.role) if self.step.role else None

    def log(self, message: str) -> None:
        """A note in the journal's timeline, and a notification."""
        self._sink("note", str(message), {})

    def record_move(self, move: Move) -> Move:
        """Journal a move a controller made for this step (``failover``/``failback``): whether
        it was graceful, the guard rails ``force`` overrode, and a forced fencing token.
        Returns ``move``: ``ctx.record_move(controller.failover("region-b", force=True))``."""
        decision, fence = move.decision, move.fence
        self._record(
            f"{decision.action} {decision.from_region} -> {decision.to_region}: {decision.reason}",
            action=decision.action,
            from_region=decision.from_region,
            to_region=decision.to_region,
            reason=decision.reason,
            graceful=move.graceful,
            overridden=list(move.overridden),
            notes=list(move.notes),
            epoch=fence.epoch if fence is not None else None,
            forced=fence.forced if fence is not None else False,
        )
        return move

    def record_promote(self, token: FencingToken, *, from_region: str, reason: str) -> FencingToken:
        """Journal a promote the step made on the store itself, forced or not; returns
        ``token``."""
        self._record(
            f"promote {from_region} -> {token.region}: {reason}",
            action="promote",
            from_region=from_region,
            to_region=token.region,
            reason=reason,
            graceful=False,
            overridden=[],
            notes=[],
            epoch=token.epoch,
            forced=token.forced,
        )
        return token

    def _record(self, message: str, **data: Any) -> None:
        if data["forced"] or data["overridden"]:
            message += " [FORCED]" if data["forced"] else ""
            message += "".join(f" [overrode: {rail}]" for rail in data["overridden"])
        self._sink("move", message, {**data, "by": self.person})


@attrs.frozen
class RunResult:
    """How a run (or a resume, or a dry run) ended; ``plan`` holds a dry run's lines."""

    runbook: str
    outcome: Outcome
    journal: str
    """The journal's name: its path, or ``store:KEY``/``bucket:PREFIX``."""
    completed: tuple[str, ...]
    stopped_at: str | None = None
    error: str | None = None
    state: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    plan: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.outcome in ("finished", "planned")


class Runbook:
    """A named, ordered list of steps with the people holding each role.

    ``roles`` maps a role to a person, e.g. ``{"incident_commander": "ana"}`` (``roles``
    module: hand-overs during a run). ``notify`` receives an event on run start, every step
    start/finish/failure, approval waits and decisions, moves and run end, and every
    ``status_every_s`` while a step runs or waits for its approval.
    """

    def __init__(
        self,
        name: str,
        steps: Sequence[Step],
        *,
        roles: Mapping[str, str] | None = None,
        notify: Notifier | None = None,
        status_every_s: float | None = None,
    ) -> None:
        if not isinstance(name, str) or not name.strip() or any(ord(c) < 32 for c in name):
            raise InvalidInput("name", "must be non-empty text without control characters")
        self.name = name
        self.roles = self._checked_roles(roles)
        if isinstance(steps, Step) or not isinstance(steps, Sequence) or not steps:
            raise InvalidInput("steps", "must be a non-empty list of Step")
        seen: set[str] = set()
        for position, step in enumerate(steps):
            if not isinstance(step, Step):
                raise InvalidInput(f"steps[{position}]", "must be a Step")
            if step.name in seen:
                raise InvalidInput(f"steps[{position}].name", f"{step.name!r} appears twice")
            seen.add(step.name)
            if step.role is not None and step.role not in self.roles:
                raise InvalidInput(
                    f"steps[{position}].role", f"{step.role!r} is not one of the runbook's roles"
                )
        self.steps = tuple(steps)
        if notify is not None and not callable(getattr(notify, "notify", None)):
            raise InvalidInput("notify", "must have a notify(event) method")
        self.notifier = notify
        if status_every_s is not None:
            status_every_s = validate.seconds("status_every_s", status_every_s, 0, 86400)
        self.status_every_s = status_every_s
        self._holders = dict(self.roles)
        self._run_id: str | None = None

    @staticmethod
    def _checked_roles(roles: Mapping[str, str] | None) -> dict[str, str]:
        if roles is None:
            return {}
        if not isinstance(roles, Mapping):
            raise InvalidInput("roles", "must map role names to people")
        for role, person in roles.items():
            if not isinstance(role, str) or not role or not isinstance(person, str) or not person:
                raise InvalidInput("roles", f"{role!r}: role and person must be non-empty text")
        return dict(roles)

    def __repr__(self) -> str:
        return f"Runbook({self.name!r}, {len(self.steps)} steps)"

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(step.name for step in self.steps)

    # ------------------------------------------------------------------ entry points

    def run(
        self,
        journal: JournalArg,
        *,
        dry_run: bool = False,
        approve: Approver | None = None,
    ) -> RunResult:
        """Run from the first step, journaling to ``journal`` (a path, or a ``StoreJournal`` or
        ``BucketJournal``), which must be new or empty.

        With ``dry_run`` no action runs: the plan goes to the journal's ``dry_run()`` location.
        """
        _check_approver(approve)
        where = location(journal)
        if dry_run:
            return self._plan(where, RunState(outcome="new"))
        with where.open() as opened:
            found = replay(opened.records)
            if found.outcome == "finished":
                raise JournalConflict(f"journal {opened.name} is of a finished run; use a new one")
            if found.outcome != "new":
                raise JournalConflict(
                    f"journal {opened.name} holds an unfinished run ({found.outcome}); "
                    "resume it instead"
                )
            self._run_id = uuid.uuid4().hex
            opened.append(
                "run-started",
                message=f"runbook {self.name!r} started: {len(self.steps)} steps",
                runbook=self.name,
                run_id=self._run_id,
                steps=list(self.step_names),
                roles=self.roles,
                dry_run=False,
                by=writer_id(),
            )
            self._holders = dict(self.roles)
            self._emit("run-started", f"{len(self.steps)} steps", done=0)
            return self._drive(opened, replay(opened.records), approve)

    def resume(
        self,
        journal: JournalArg,
        *,
        dry_run: bool = False,
        approve: Approver | None = None,
    ) -> RunResult:
        """Carry on the run journaled at ``journal``, from this process or another one, in
        this region or another: finished steps are skipped, the step that was interrupted,
        failed or awaiting approval comes next. A finished run is returned as it is. With
        ``dry_run``, plans the steps left without running them."""
        _check_approver(approve)
        where = location(journal)
        if dry_run:
            return self._plan(where, self._matching(where.read(), where.name))
        if not where.read():  # opening a file journal would create it
            raise NotFound(f"journal {where.name} holds no run to resume")
        with where.open() as opened:
            found = self._matching(opened.records, opened.name)
            if found.outcome == "finished":
                return self._result(opened, found)
            done = len(found.finished_steps)
            opened.append(
                "run-resumed",
                message=f"resumed after {found.outcome}; {done}/{len(self.steps)} steps done",
                by=writer_id(),
            )
            self._holders, self._run_id = dict(found.roles), found.run_id
            self._emit("run-resumed", f"after {found.outcome}", done=done)
            return self._drive(opened, found, approve)

    def _matching(self, records: Iterable[Record], name: str) -> RunState:
        found = replay(records)
        if found.outcome == "new":
            raise NotFound(f"journal {name} holds no run to resume")
        if found.dry_run:
            raise JournalConflict(f"journal {name} is a dry run's; it cannot be resumed")
        if found.runbook != self.name or found.steps != self.step_names:
            raise JournalConflict(
                f"journal {name} was written for runbook {found.runbook!r} with steps "
                f"{list(found.steps)}, not {self.name!r} with {list(self.step_names)}"
            )
        return found

    # ------------------------------------------------------------------ the run

    def _drive(self, journal: OpenJournal, found: RunState, approve: Approver | None) -> RunResult:
        committed: dict[str, Any] = dict(found.state)
        done = list(found.finished_steps)
        for step in self.steps:
            if step.name in done:
                continue
            self._holders = dict(replay(journal.records).roles)  # hand-overs made meanwhile
            attempt = found.attempts.get(step.name, 0) + 1
            ctx = self._context(
                journal,
                step,
                committed,
                run_id=found.run_id,
                attempt=attempt,
                dry_run=False,
                done=len(done),
            )
            if step.approval and step.name not in found.granted:
                with self._status_ticker(step, len(done), "waiting for approval of"):
                    refusal = self._ask(journal, step, ctx, approve, len(done))
                if refusal is not None:
                    return self._stop(journal, step, refusal[0], refusal[1], len(done))
            journal.append(
                "step-started",
                step=step.name,
                role=step.role,
                message=f"attempt {ctx.attempt}" + (f" by {ctx.person}" if ctx.person else ""),
                by=writer_id(),
            )
            self._emit("step-started", f"attempt {ctx.attempt}", step=step, done=len(done))
            with self._status_ticker(step, len(done), "running"):
                try:
                    result = step.action(ctx)
                    committed = _commit(step, ctx, result)
                except Exception as exc:  # noqa: BLE001 - any failure is journaled and stops the run
                    error = f"{type(exc).__name__}: {exc}"
                    journal.append("step-failed", step=step.name, role=step.role, message=error)
                    self._emit("step-failed", error, step=step, done=len(done))
                    return self._stop(journal, step, "failed", error, len(done))
            message = result.message if result is not None else ""
            journal.append(
                "step-finished", step=step.name, role=step.role, message=message, state=committed
            )
            done.append(step.name)
            self._emit("step-finished", message or "done", step=step, done=len(done))
        journal.append("run-finished", message=f"all {len(self.steps)} steps done")
        self._emit("run-finished", f"all {len(self.steps)} steps done", done=len(done))
        return self._result(journal, replay(journal.records))

    def _ask(
        self,
        journal: OpenJournal,
        step: Step,
        ctx: RunContext,
        approve: Approver | None,
        done: int,
    ) -> tuple[Outcome, str] | None:
        """None when approved, else how the run stops. The wait is journaled first, so the
        report shows how long the gate held the run."""
        who = f" from {ctx.person} ({step.role})" if ctx.person else ""
        waiting = f"awaiting approval{who}"
        journal.append("approval-waiting", step=step.name, role=step.role, message=waiting)
        self._emit("approval-waiting", waiting, step=step, done=done)
        if approve is None:
            return "awaiting-approval", f"{waiting}; resume with an approver"
        decision: Approval | str | None
        try:
            decision = approve(step, ctx)
        except Exception as exc:  # noqa: BLE001 - an approver that cannot decide denies
            decision = f"approver raised {type(exc).__name__}: {exc}"
        if decision is None:
            return "awaiting-approval", f"{waiting}; no decision came"
        if isinstance(decision, Approval):
            kind = "approval-granted" if decision.granted else "approval-denied"
            verb = "approved" if decision.granted else "denied"
            message = f"{verb} by {decision.by} ({decision.via}): {decision.reason}"
            journal.append(
                kind, step=step.name, role=step.role, message=message, **decision.to_json()
            )
        else:
            kind = "approval-denied"
            message = (
                decision
                if isinstance(decision, str)
                else f"the approver returned {decision!r}, not an Approval naming who decided"
            )
            journal.append(kind, step=step.name, role=step.role, message=message)
        self._emit(kind, message, step=step, done=done)
        return None if kind == "approval-granted" else ("denied", message)

    def _stop(
        self, journal: OpenJournal, step: Step, outcome: Outcome, message: str, done: int
    ) -> RunResult:
        journal.append("run-stopped", step=step.name, message=message, outcome=outcome)
        self._emit("run-stopped", f"{outcome} at {step.name}: {message}", step=step, done=done)
        return self._result(journal, replay(journal.records))

    def _result(self, journal: OpenJournal, found: RunState) -> RunResult:
        return RunResult(
            runbook=self.name,
            outcome=_OUTCOMES[found.outcome],
            journal=journal.name,
            completed=found.finished_steps,
            stopped_at=found.stopped_at,
            error=found.error,
            state=found.state,
        )

    def _context(
        self,
        journal: OpenJournal,
        step: Step,
        state: Mapping[str, Any],
        *,
        run_id: str | None,
        attempt: int,
        done: int,
        dry_run: bool,
    ) -> RunContext:
        def sink(kind: str, message: str, data: Mapping[str, Any]) -> None:
            journal.append(kind, step=step.name, role=step.role, message=message, **data)
            if not dry_run:
                self._emit(kind, message, step=step, done=done)

        return RunContext(
            runbook=self.name,
            run_id=run_id or "",
            step=step,
            state=copy.deepcopy(dict(state)),
            roles=dict(self._holders),
            dry_run=dry_run,
            attempt=attempt,
            sink=sink,
        )

    # ------------------------------------------------------------------ dry run

    def _plan(self, where: JournalLocation, found: RunState) -> RunResult:
        lines = []
        self._holders = dict(found.roles or self.roles)
        with where.dry_run().open(fresh=True) as journal:
            journal.append(
                "run-started",
                message=f"dry run of {self.name!r}: nothing is executed",
                runbook=self.name,
                steps=list(self.step_names),
                roles=self._holders,
                dry_run=True,
                by=writer_id(),
            )
            for step in self.steps:
                if step.name in found.finished_steps:
                    continue
                ctx = self._context(
                    journal,
                    step,
                    found.state,
                    run_id=found.run_id,
                    attempt=1,
                    done=0,
                    dry_run=True,
                )
                try:
                    text = step.dry_run(ctx) if step.dry_run else step.description
                except Exception as exc:  # noqa: BLE001 - a describer's failure is reported
                    text = f"cannot describe: {type(exc).__name__}: {exc}"
                text = str(text) or "(no description)"
                if step.approval:
                    text += f" [needs approval{f' from {ctx.person}' if ctx.person else ''}]"
                journal.append("plan", step=step.name, role=step.role, message=text)
                lines.append(f"{step.name}: {text}")
            journal.append("run-finished", message=f"{len(lines)} steps planned")
            return RunResult(
                runbook=self.name,
                outcome="planned",
                journal=journal.name,
                completed=found.finished_steps,
                state=found.state,
                plan=tuple(lines),
            )

    # ------------------------------------------------------------------ notifications

    def _emit(self, kind: str, message: str, *, step: Step | None = None, done: int) -> None:
        if self.notifier is None:
            return
        role = step.role if step is not None else None
        event = RunEvent(
            kind=kind,
            runbook=self.name,
            message=message,
            at=time.time(),
            step=step.name if step is not None else None,
            role=role,
            person=self._holders.get(role) if role else None,
            done=done,
            total=len(self.steps),
            run_id=self._run_id,
        )
        deliver(self.notifier, event)

    @contextlib.contextmanager
    def _status_ticker(self, step: Step, done: int, doing: str) -> Iterator[None]:
        """While the step runs or waits for its approval, a status event every
        ``status_every_s`` from a timer thread."""
        if self.notifier is None or self.status_every_s is None:
            yield
            return
        every = self.status_every_s
        stop = threading.Event()
        began = time.monotonic()

        def tick() -> None:
            while not stop.wait(every):
                self._emit(
                    "status",
                    f"{doing} step {step.name} for {time.monotonic() - began:.1f} s, "
                    f"steps done {done}/{len(self.steps)}",
                    step=step,
                    done=done,
                )

        thread = threading.Thread(target=tick, name=f"runbook-status-{self.name}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()


def _commit(step: Step, ctx: RunContext, result: StepResult | None) -> dict[str, Any]:
    """The state after a step: its changes to ``ctx.state`` plus its result's updates."""
    if result is not None and not isinstance(result, StepResult):
        raise InvalidInput(f"step {step.name!r} result", "must be a StepResult or None")
    state = dict(ctx.state)
    if result is not None:
        state.update(result.updates)
    return validate.document(f"state after step {step.name!r}", state)


def _check_approver(approve: Approver | None) -> None:
    if approve is not None and not callable(approve):
        raise InvalidInput("approve", "must be callable as approve(step, ctx) -> Approval | None")
