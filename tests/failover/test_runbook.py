"""Runbooks run their steps once each, resume after a crash, gate on approvals and dry-run."""

from __future__ import annotations

import json
import os
import re
import runpy
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from multiregion.errors import InvalidInput, NotFound
from multiregion.failover.approvals import Approval, approve_as
from multiregion.failover.journal import (
    Journal,
    JournalConflict,
    dry_run_path,
    read_records,
    render_timeline,
    replay,
    timeline,
)
from multiregion.failover.notify import RunEvent
from multiregion.failover.runbook import Action, Runbook, RunContext, Step, StepResult

ROLES = {"incident_commander": "ana", "technical_lead": "bo"}
GRANT = approve_as("ana", "region-a is down for good")

# A runbook whose every action leaves one line in <work>/<step>.count, so that a test can tell
# how many times each ran, in this process or in a killed one.
SCRIPT = """
import sys, time
from pathlib import Path
from multiregion.failover.runbook import Runbook, Step, StepResult


def build(work):
    work = Path(work)

    def count(name):
        with open(work / f"{name}.count", "a") as f:
            f.write("x\\n")

    def open_incident(ctx):
        count("open")
        return StepResult("incident opened", {"status": "degraded"})

    def restore(ctx):
        count("restore")
        (work / f"restore.waiting.{ctx.attempt}").touch()
        while not (work / "release").exists():
            time.sleep(0.02)
        return StepResult("restored", {"backup": "b-42", "attempt": ctx.attempt})

    def swap(ctx):
        count("swap")
        return StepResult("routing swapped", {"routed_with": ctx.state["backup"]})

    def close_incident(ctx):
        count("close")
        ctx.state["status"] = "operational"

    return Runbook(
        "region-a-outage",
        [
            Step("update status", open_incident, role="incident_commander"),
            Step("restore data", restore, role="technical_lead"),
            Step("swap routing", swap, role="technical_lead"),
            Step("close incident", close_incident, role="incident_commander"),
        ],
        roles={"incident_commander": "ana", "technical_lead": "bo"},
    )


if __name__ == "__main__":
    build(sys.argv[2]).run(sys.argv[1])
"""


def counts(work: Path) -> dict[str, int]:
    return {
        path.name.removesuffix(".count"): len(path.read_text().splitlines())
        for path in work.glob("*.count")
    }


def wait_for(path: Path, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def counting(work: Path, name: str, result: StepResult | None = None) -> Action:
    def action(_ctx: RunContext) -> StepResult | None:
        with open(work / f"{name}.count", "a") as f:
            f.write("x\n")
        return result

    return action


class Recorder:
    def __init__(self) -> None:
        self.events: list[RunEvent] = []
        self.lock = threading.Lock()

    def notify(self, event: RunEvent) -> None:
        with self.lock:
            self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events if e.kind != "status"]


def three_steps(work: Path, **options: object) -> Runbook:
    return Runbook(
        "drill",
        [
            Step("one", counting(work, "one", StepResult("first", {"a": 1}))),
            Step("two", counting(work, "two"), role="technical_lead", approval=True),
            Step("three", counting(work, "three")),
        ],
        roles=ROLES,
        **options,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- crash and resume


def test_a_runbook_killed_mid_step_resumes_without_repeating_finished_steps(
    tmp_path: Path,
) -> None:
    script = tmp_path / "dr.py"
    script.write_text(SCRIPT)
    journal = tmp_path / "run.jsonl"
    process = subprocess.Popen([sys.executable, str(script), str(journal), str(tmp_path)])
    try:
        wait_for(tmp_path / "restore.waiting.1")
        runbook = runpy.run_path(str(script))["build"](tmp_path)
        with pytest.raises(JournalConflict, match="in use by another process"):
            runbook.resume(journal)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL
    before = replay(read_records(journal))
    assert before.outcome == "interrupted"
    assert before.finished_steps == ("update status",)
    assert before.stopped_at == "restore data"
    assert counts(tmp_path) == {"open": 1, "restore": 1}

    (tmp_path / "release").touch()
    result = runbook.resume(journal)

    assert result.outcome == "finished"
    assert result.completed == ("update status", "restore data", "swap routing", "close incident")
    assert counts(tmp_path) == {"open": 1, "restore": 2, "swap": 1, "close": 1}
    assert (tmp_path / "restore.waiting.2").exists()
    assert dict(result.state) == {
        "status": "operational",
        "backup": "b-42",
        "attempt": 2,
        "routed_with": "b-42",
    }
    kinds = [r.kind for r in read_records(journal)]
    assert kinds.count("run-resumed") == 1
    assert kinds[-1] == "run-finished"
    # A finished run is never run again, by resume or by run.
    assert runbook.resume(journal).outcome == "finished"
    with pytest.raises(JournalConflict, match="finished run"):
        runbook.run(journal)
    assert counts(tmp_path) == {"open": 1, "restore": 2, "swap": 1, "close": 1}


def test_a_failing_step_stops_the_run_and_resume_retries_it(tmp_path: Path) -> None:
    seen: list[int] = []

    def flaky(ctx: RunContext) -> StepResult:
        seen.append(ctx.attempt)
        assert "half" not in ctx.state, "a failed attempt's state must not be committed"
        ctx.state["half"] = True
        if ctx.attempt == 1:
            raise RuntimeError("region-b API timed out")
        return StepResult("ok", {"done": True})

    runbook = Runbook(
        "flaky",
        [
            Step("first", counting(tmp_path, "first")),
            Step("flaky", flaky),
            Step("last", counting(tmp_path, "last")),
        ],
    )
    journal = tmp_path / "run.jsonl"
    failed = runbook.run(journal)
    assert failed.outcome == "failed"
    assert not failed.ok
    assert failed.stopped_at == "flaky"
    assert failed.error == "RuntimeError: region-b API timed out"
    assert counts(tmp_path) == {"first": 1}
    step_failed = [r for r in read_records(journal) if r.kind == "step-failed"]
    assert [(r.step, r.message) for r in step_failed] == [
        ("flaky", "RuntimeError: region-b API timed out")
    ]
    with pytest.raises(JournalConflict, match="resume it instead"):
        runbook.run(journal)

    finished = runbook.resume(journal)
    assert finished.outcome == "finished"
    assert seen == [1, 2]
    assert counts(tmp_path) == {"first": 1, "last": 1}
    assert finished.state == {"half": True, "done": True}


def test_state_that_is_not_json_fails_the_step(tmp_path: Path) -> None:
    def bad(ctx: RunContext) -> None:
        ctx.state["regions"] = {"a", "b"}

    result = Runbook("bad", [Step("bad", bad)]).run(tmp_path / "j.jsonl")
    assert result.outcome == "failed"
    assert result.error is not None
    assert "InvalidInput" in result.error
    assert "not JSON-serialisable" in result.error


def test_a_torn_last_record_is_dropped_and_the_run_resumes(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    runbook = Runbook(
        "torn", [Step("a", counting(tmp_path, "a")), Step("b", counting(tmp_path, "b"))]
    )
    with Journal(journal) as j:
        j.append("run-started", runbook="torn", steps=["a", "b"], roles={}, dry_run=False)
        j.append("step-started", step="a")
        j.append("step-finished", step="a", state={"x": 1})
    with open(journal, "ab") as f:
        f.write(b'{"seq": 4, "kind": "step-sta')  # the crash hit mid-write
    result = runbook.resume(journal)
    assert result.outcome == "finished"
    assert counts(tmp_path) == {"b": 1}
    assert result.state == {"x": 1}
    assert all(line.startswith(b"{") for line in journal.read_bytes().splitlines())


# --------------------------------------------------------------------------- refusals


def test_a_journal_of_another_runbook_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    original = Runbook("one", [Step("a", counting(tmp_path, "a")), Step("b", lambda _: None)])
    original.run(journal, approve=None)
    renamed = Runbook("two", [Step("a", counting(tmp_path, "a")), Step("b", lambda _: None)])
    reordered = Runbook("one", [Step("b", lambda _: None), Step("a", counting(tmp_path, "a"))])
    for other in (renamed, reordered):
        with pytest.raises(JournalConflict, match="was written for runbook 'one'"):
            other.resume(journal)
    assert counts(tmp_path) == {"a": 1}


def test_a_journal_in_use_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    runbook = three_steps(tmp_path)
    assert runbook.run(journal).outcome == "awaiting-approval"
    with Journal(journal):
        with pytest.raises(JournalConflict, match="in use"):
            runbook.run(journal)
        with pytest.raises(JournalConflict, match="in use"):
            runbook.resume(journal)
    assert counts(tmp_path) == {"one": 1}


def test_resume_without_a_journal_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no run to resume"):
        three_steps(tmp_path).resume(tmp_path / "nothing.jsonl")
    assert not (tmp_path / "nothing.jsonl").exists()


def test_a_missing_journal_folder_is_created(tmp_path: Path) -> None:
    journal = tmp_path / "fresh" / "deployment" / "runbook.jsonl"
    Runbook("r", [Step("one", counting(tmp_path, "one"))]).run(journal)
    assert "one" in {r.step for r in read_records(journal)}
    assert counts(tmp_path) == {"one": 1}


def test_bad_input_is_refused_naming_the_field(tmp_path: Path) -> None:
    def noop(_ctx: RunContext) -> None:
        return None

    (tmp_path / "file").write_text("")  # a journal folder that cannot be made

    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: Step("", noop), "step.name"),
        (lambda: Step("x", "not callable"), "step.action"),  # type: ignore[arg-type]
        (lambda: Step("x", noop, dry_run=3), "step.dry_run"),  # type: ignore[arg-type]
        (lambda: Runbook("", [Step("x", noop)]), "name"),
        (lambda: Runbook("r", []), "steps"),
        (lambda: Runbook("r", [Step("x", noop), Step("x", noop)]), "steps[1].name"),
        (lambda: Runbook("r", [Step("x", noop, role="cto")], roles=ROLES), "steps[0].role"),
        (lambda: Runbook("r", [Step("x", noop)], roles={"ic": ""}), "roles"),
        (lambda: Runbook("r", [Step("x", noop)], status_every_s=0), "status_every_s"),
        (lambda: Runbook("r", [Step("x", noop)], notify=object()), "notify"),  # type: ignore[arg-type]
        (lambda: Runbook("r", [Step("x", noop)]).run(tmp_path / "j", approve=1), "approve"),  # type: ignore[arg-type]
        (lambda: Runbook("r", [Step("x", noop)]).run(tmp_path / "file" / "j"), "journal_path"),
    ]
    for build, field in cases:
        with pytest.raises(InvalidInput) as caught:
            build()
        assert caught.value.field == field
    assert not (tmp_path / "j").exists()


# --------------------------------------------------------------------------- approvals


def test_approval_denied_stops_the_run_and_granted_on_resume_carries_on(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    recorder = Recorder()
    runbook = three_steps(tmp_path, notify=recorder)
    asked: list[tuple[str, str | None]] = []

    def deny(step: Step, ctx: RunContext) -> Approval:
        asked.append((step.name, ctx.person))
        return Approval(False, "ana", "region-a may come back")

    denied = runbook.run(journal, approve=deny)
    assert denied.outcome == "denied"
    assert denied.stopped_at == "two"
    assert asked == [("two", "bo")]
    assert counts(tmp_path) == {"one": 1}
    assert "approval-denied" in recorder.kinds()

    granted = runbook.resume(journal, approve=GRANT)
    assert granted.outcome == "finished"
    assert counts(tmp_path) == {"one": 1, "two": 1, "three": 1}
    kinds = [r.kind for r in read_records(journal)]
    assert kinds.index("approval-denied") < kinds.index("approval-granted")
    assert recorder.kinds()[-1] == "run-finished"


def test_without_an_approver_the_run_waits_for_approval(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    recorder = Recorder()
    runbook = three_steps(tmp_path, notify=recorder)
    waiting = runbook.run(journal)
    assert waiting.outcome == "awaiting-approval"
    assert waiting.stopped_at == "two"
    assert counts(tmp_path) == {"one": 1}
    wait_event = next(e for e in recorder.events if e.kind == "approval-waiting")
    assert (wait_event.step, wait_event.person, wait_event.role) == ("two", "bo", "technical_lead")
    again = runbook.resume(journal)  # still no approver: still waiting, nothing else ran
    assert again.outcome == "awaiting-approval"
    assert counts(tmp_path) == {"one": 1}

    def approver_that_crashes(_step: Step, _ctx: RunContext) -> Approval:
        raise RuntimeError("pager down")

    crashed = runbook.resume(journal, approve=approver_that_crashes)
    assert crashed.outcome == "denied"
    assert crashed.error == "approver raised RuntimeError: pager down"
    assert runbook.resume(journal, approve=GRANT).outcome == "finished"


def test_a_granted_approval_stands_when_the_step_is_retried(tmp_path: Path) -> None:
    attempts: list[int] = []

    def once_failing(ctx: RunContext) -> None:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise OSError("disk full")

    runbook = Runbook("gate", [Step("gated", once_failing, approval=True)])
    journal = tmp_path / "run.jsonl"
    assert runbook.run(journal, approve=GRANT).outcome == "failed"
    assert runbook.resume(journal).outcome == "finished"  # no approver needed again
    assert attempts == [1, 2]


# --------------------------------------------------------------------------- dry run


def test_a_dry_run_runs_no_action_and_never_blocks_the_real_run(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    recorder = Recorder()
    described: list[bool] = []

    def describe(ctx: RunContext) -> str:
        described.append(ctx.dry_run)
        ctx.log("would look up the latest backup")
        return f"restore the latest backup (status {ctx.state.get('status', 'unknown')})"

    def explode(_ctx: RunContext) -> None:
        raise AssertionError("a dry run must not run an action")

    def steps(action: Callable[[RunContext], StepResult | None]) -> list[Step]:
        return [
            Step("status", action, description="post 'degraded' to the status page"),
            Step("restore", action, role="technical_lead", dry_run=describe),
            Step("swap", action, role="incident_commander", approval=True),
        ]

    dry = Runbook("dr", steps(explode), roles=ROLES, notify=recorder)
    result = dry.run(journal, dry_run=True)
    assert result.outcome == "planned"
    assert result.ok
    assert result.plan == (
        "status: post 'degraded' to the status page",
        "restore: restore the latest backup (status unknown)",
        "swap: (no description) [needs approval from ana]",
    )
    assert described == [True]
    assert recorder.events == []
    assert not journal.exists()
    plan_records = read_records(dry_run_path(journal))
    assert [r.kind for r in plan_records].count("plan") == 3
    assert any(r.kind == "note" and "latest backup" in r.message for r in plan_records)

    # The real run is not blocked by the dry run, and a dry run can be repeated.
    real = Runbook(
        "dr",
        steps(lambda ctx: StepResult("", {"status": "degraded"})),
        roles=ROLES,
    )
    assert real.run(journal).outcome == "awaiting-approval"
    again = real.resume(journal, dry_run=True)
    assert again.plan == ("swap: (no description) [needs approval from ana]",)
    assert again.completed == ("status", "restore")
    assert replay(read_records(journal)).outcome == "awaiting-approval"
    with pytest.raises(JournalConflict, match="dry run"):
        real.resume(dry_run_path(journal))


# --------------------------------------------------------------- notifications, timeline


def test_events_and_periodic_status_while_a_step_runs(tmp_path: Path) -> None:
    recorder = Recorder()

    def slow(ctx: RunContext) -> StepResult:
        ctx.log("copying chunk 1 of 3")
        time.sleep(0.45)
        return StepResult("restored 3 chunks")

    runbook = Runbook(
        "status",
        [Step("quick", lambda ctx: None), Step("slow", slow, role="technical_lead")],
        roles=ROLES,
        notify=recorder,
        status_every_s=0.1,
    )
    assert runbook.run(tmp_path / "run.jsonl").outcome == "finished"
    assert recorder.kinds() == [
        "run-started",
        "step-started",
        "step-finished",
        "step-started",
        "note",
        "step-finished",
        "run-finished",
    ]
    statuses = [e for e in recorder.events if e.kind == "status"]
    assert len(statuses) >= 2
    assert all(e.step == "slow" and e.person == "bo" for e in statuses)
    assert all(
        re.fullmatch(r"running step slow for \d+\.\d s, steps done 1/2", e.message)
        for e in statuses
    )
    finish = recorder.events[-1]
    assert (finish.done, finish.total) == (2, 2)
    # The ticker stopped with the step: nothing arrives afterwards.
    count = len(recorder.events)
    time.sleep(0.25)
    assert len(recorder.events) == count


def test_the_timeline_has_every_record_with_step_durations(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"

    def slow(_ctx: RunContext) -> StepResult:
        time.sleep(0.2)
        return StepResult("restored backup b-1")

    runbook = Runbook(
        "timeline",
        [Step("status", lambda ctx: None, role="incident_commander"), Step("restore", slow)],
        roles=ROLES,
    )
    runbook.run(journal)
    entries = timeline(journal)
    assert [e.kind for e in entries] == [
        "run-started",
        "step-started",
        "step-finished",
        "step-started",
        "step-finished",
        "run-finished",
    ]
    restored = entries[4]
    assert restored.step == "restore"
    assert restored.message == "restored backup b-1"
    assert restored.duration_s is not None
    assert 0.2 <= restored.duration_s < 2
    assert entries[1].role == "incident_commander"
    assert entries[1].message == "attempt 1 by ana"
    total = entries[-1].duration_s
    assert total is not None
    assert total >= restored.duration_s
    text = render_timeline(entries)
    lines = text.splitlines()
    assert len(lines) == 6
    assert "restore" in lines[4]
    assert "restored backup b-1" in lines[4]
    assert f"{restored.duration_s:.1f}s" in lines[4]
    assert "incident_commander" in lines[1]


def test_journal_records_are_json_lines_with_roles(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    three_steps(tmp_path).run(journal, approve=GRANT)
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert records[0]["data"]["roles"] == ROLES
    assert records[0]["data"]["by"].endswith(f":{os.getpid()}")
    assert records[0]["data"]["steps"] == ["one", "two", "three"]
    finished = [r for r in records if r["kind"] == "step-finished"]
    assert finished[0]["data"]["state"] == {"a": 1}
