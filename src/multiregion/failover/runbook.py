"""The recovery procedure of a DR plan as code: ordered, idempotent steps driven from a journal.

Every step start, finish, failure and approval is fsynced to the journal before the run moves
on, so a run killed anywhere resumes where it stopped: finished steps are skipped, a step that
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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from multiregion import validate
from multiregion.errors import InvalidInput, NotFound
from multiregion.failover.journal import (
    Journal,
    JournalConflict,
    Record,
    RunState,
    dry_run_path,
    read_records,
    replay,
)
from multiregion.failover.notify import Notifier, RunEvent, deliver

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


@attrs.define
class RunContext:
    """What a step sees: the shared JSON state, the roles, and a way to write to the timeline."""

    runbook: str
    step: Step
    state: dict[str, Any]
    roles: Mapping[str, str]
    dry_run: bool
    attempt: int
    """1 on the first try of the step, more when it is re-run after a crash or a failure."""
    _sink: Callable[[str, str], None] = attrs.field(repr=False, alias="sink")

    @property
    def person(self) -> str | None:
        """Who holds the step's role."""
        return self.roles.get(self.step.role) if self.step.role else None

    def log(self, message: str) -> None:
        """A note in the journal's timeline, and a notification."""
        self._sink(self.step.name, str(message))


Approver = Callable[[Step, RunContext], bool]
"""Called before a step with ``approval=True``; only a return of True lets the step run."""


@attrs.frozen
class RunResult:
    """How a run (or a resume, or a dry run) ended; ``plan`` holds a dry run's lines."""

    runbook: str
    outcome: Outcome
    journal: Path
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

    ``roles`` maps a role to a person, e.g. ``{"incident_commander": "ana"}``. ``notify``
    receives an event on run start, every step start/finish/failure, approval waits and run
    end, and every ``status_every_s`` while a step runs.
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
        journal_path: str | os.PathLike[str],
        *,
        dry_run: bool = False,
        approve: Approver | None = None,
    ) -> RunResult:
        """Run from the first step, journaling to ``journal_path``, which must be new or empty.

        With ``dry_run`` no action runs: the plan goes to ``dry_run_path(journal_path)``.
        """
        _check_approver(approve)
        if dry_run:
            return self._plan(journal_path, RunState(outcome="new"))
        with Journal(journal_path) as journal:
            found = replay(journal.records)
            if found.outcome == "finished":
                raise JournalConflict(f"journal {journal.path} is of a finished run; use a new one")
            if found.outcome != "new":
                raise JournalConflict(
                    f"journal {journal.path} holds an unfinished run ({found.outcome}); "
                    "resume it instead"
                )
            journal.append(
                "run-started",
                message=f"runbook {self.name!r} started: {len(self.steps)} steps",
                runbook=self.name,
                steps=list(self.step_names),
                roles=self.roles,
                dry_run=False,
                pid=os.getpid(),
            )
            self._emit("run-started", f"{len(self.steps)} steps", done=0)
            return self._drive(journal, replay(journal.records), approve)

    def resume(
        self,
        journal_path: str | os.PathLike[str],
        *,
        dry_run: bool = False,
        approve: Approver | None = None,
    ) -> RunResult:
        """Carry on the run journaled at ``journal_path``: finished steps are skipped, the step
        that was interrupted, failed or awaiting approval comes next. A finished run is returned
        as it is. With ``dry_run``, plans the steps left without running them."""
        _check_approver(approve)
        if dry_run:
            return self._plan(
                journal_path, self._matching(read_records(journal_path), journal_path)
            )
        if not Path(journal_path).is_file():
            raise NotFound(f"journal {journal_path} holds no run to resume")
        with Journal(journal_path) as journal:
            found = self._matching(journal.records, journal.path)
            if found.outcome == "finished":
                return self._result(journal, found)
            done = len(found.finished_steps)
            journal.append(
                "run-resumed",
                message=f"resumed after {found.outcome}; {done}/{len(self.steps)} steps done",
                pid=os.getpid(),
            )
            self._emit("run-resumed", f"after {found.outcome}", done=done)
            return self._drive(journal, found, approve)

    def _matching(self, records: Iterable[Record], path: str | os.PathLike[str]) -> RunState:
        found = replay(records)
        if found.outcome == "new":
            raise NotFound(f"journal {path} holds no run to resume")
        if found.dry_run:
            raise JournalConflict(f"journal {path} is a dry run's; it cannot be resumed")
        if found.runbook != self.name or found.steps != self.step_names:
            raise JournalConflict(
                f"journal {path} was written for runbook {found.runbook!r} with steps "
                f"{list(found.steps)}, not {self.name!r} with {list(self.step_names)}"
            )
        return found

    # ------------------------------------------------------------------ the run

    def _drive(self, journal: Journal, found: RunState, approve: Approver | None) -> RunResult:
        committed: dict[str, Any] = dict(found.state)
        done = list(found.finished_steps)
        for step in self.steps:
            if step.name in done:
                continue
            attempt = found.attempts.get(step.name, 0) + 1
            ctx = self._context(
                journal, step, committed, attempt=attempt, done=len(done), dry_run=False
            )
            if step.approval and step.name not in found.granted:
                refusal = self._ask(journal, step, ctx, approve, len(done))
                if refusal is not None:
                    return self._stop(journal, step, refusal[0], refusal[1], len(done))
            journal.append(
                "step-started",
                step=step.name,
                role=step.role,
                message=f"attempt {ctx.attempt}" + (f" by {ctx.person}" if ctx.person else ""),
            )
            self._emit("step-started", f"attempt {ctx.attempt}", step=step, done=len(done))
            with self._status_ticker(step, len(done)):
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
        journal: Journal,
        step: Step,
        ctx: RunContext,
        approve: Approver | None,
        done: int,
    ) -> tuple[Outcome, str] | None:
        """None when approved, else how the run stops."""
        who = f" from {ctx.person} ({step.role})" if ctx.person else ""
        if approve is None:
            message = f"awaiting approval{who}; resume with an approver"
            journal.append("approval-waiting", step=step.name, role=step.role, message=message)
            self._emit("approval-waiting", message, step=step, done=done)
            return "awaiting-approval", message
        try:
            granted = approve(step, ctx) is True
            reason = "denied by the approver"
        except Exception as exc:  # noqa: BLE001 - an approver that cannot decide denies
            granted, reason = False, f"approver raised {type(exc).__name__}: {exc}"
        kind = "approval-granted" if granted else "approval-denied"
        message = "approved" if granted else reason
        journal.append(kind, step=step.name, role=step.role, message=message)
        self._emit(kind, message, step=step, done=done)
        return None if granted else ("denied", reason)

    def _stop(
        self, journal: Journal, step: Step, outcome: Outcome, message: str, done: int
    ) -> RunResult:
        journal.append("run-stopped", step=step.name, message=message, outcome=outcome)
        self._emit("run-stopped", f"{outcome} at {step.name}: {message}", step=step, done=done)
        return self._result(journal, replay(journal.records))

    def _result(self, journal: Journal, found: RunState) -> RunResult:
        return RunResult(
            runbook=self.name,
            outcome=_OUTCOMES[found.outcome],
            journal=journal.path,
            completed=found.finished_steps,
            stopped_at=found.stopped_at,
            error=found.error,
            state=found.state,
        )

    def _context(
        self,
        journal: Journal,
        step: Step,
        state: Mapping[str, Any],
        *,
        attempt: int,
        done: int,
        dry_run: bool,
    ) -> RunContext:
        def sink(step_name: str, message: str) -> None:
            journal.append("note", step=step_name, role=step.role, message=message)
            if not dry_run:
                self._emit("note", message, step=step, done=done)

        return RunContext(
            runbook=self.name,
            step=step,
            state=copy.deepcopy(dict(state)),
            roles=dict(self.roles),
            dry_run=dry_run,
            attempt=attempt,
            sink=sink,
        )

    # ------------------------------------------------------------------ dry run

    def _plan(self, journal_path: str | os.PathLike[str], found: RunState) -> RunResult:
        lines = []
        with Journal(dry_run_path(journal_path), fresh=True) as journal:
            journal.append(
                "run-started",
                message=f"dry run of {self.name!r}: nothing is executed",
                runbook=self.name,
                steps=list(self.step_names),
                roles=self.roles,
                dry_run=True,
                pid=os.getpid(),
            )
            for step in self.steps:
                if step.name in found.finished_steps:
                    continue
                ctx = self._context(journal, step, found.state, attempt=1, done=0, dry_run=True)
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
                journal=journal.path,
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
            person=self.roles.get(role) if role else None,
            done=done,
            total=len(self.steps),
        )
        deliver(self.notifier, event)

    @contextlib.contextmanager
    def _status_ticker(self, step: Step, done: int) -> Iterator[None]:
        """While the step runs, a status event every ``status_every_s`` from a timer thread."""
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
                    f"step {step.name} running for {time.monotonic() - began:.1f} s, "
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
        raise InvalidInput("approve", "must be callable as approve(step, ctx) -> bool")
