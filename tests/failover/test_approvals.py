"""Approvals record who approved and why; webhook approvals are signed, bound to one step of one
run and expire; status updates go on while a gate waits; no secret or token leaks."""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from multiregion.errors import AuthError, InvalidInput
from multiregion.failover.approvals import (
    Approval,
    ApprovalInbox,
    ApprovalTokens,
    TokenApprover,
    approve_as,
)
from multiregion.failover.journal import read_records
from multiregion.failover.notify import RunEvent
from multiregion.failover.runbook import RunResult
from tests.failover.test_runbook import Recorder, counts, three_steps

SECRET = b"approval-secret-0123456789abcdef-XYZ"


def post(url: str, token: str) -> int:
    request = urllib.request.Request(url, token.encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_an_approval_records_who_approved_and_why(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    runbook = three_steps(tmp_path)
    nameless = runbook.run(journal, approve=lambda step, ctx: True)  # type: ignore[arg-type,return-value]
    assert nameless.outcome == "denied"  # a bare True names nobody: it is no approval
    assert "not an Approval naming who decided" in (nameless.error or "")
    assert counts(tmp_path) == {"one": 1}
    done = runbook.resume(journal, approve=approve_as("ana", "region-a lost power", via="--yes"))
    assert done.outcome == "finished"
    granted = next(r for r in read_records(journal) if r.kind == "approval-granted")
    assert granted.step == "two"
    assert dict(granted.data) == {
        "approver": "ana",
        "reason": "region-a lost power",
        "via": "--yes",
    }
    assert granted.message == "approved by ana (--yes): region-a lost power"
    with pytest.raises(InvalidInput, match=r"approval\.reason"):
        Approval(True, "ana", "")


def test_tokens_are_signed_bound_to_a_step_of_a_run_and_expire() -> None:
    now = [1000.0]
    tokens = ApprovalTokens(SECRET, ttl_s=60, clock=lambda: now[0])
    approval = Approval(True, "ana", "restore verified")
    token = tokens.issue(runbook="rb", run_id="run-1", step="swap", approval=approval)
    assert tokens.verify(token, runbook="rb", run_id="run-1", step="swap") == Approval(
        True, "ana", "restore verified", "webhook"
    )
    for other in ({"run_id": "run-2"}, {"step": "promote"}, {"runbook": "other"}):
        wanted = {"runbook": "rb", "run_id": "run-1", "step": "swap", **other}
        with pytest.raises(AuthError, match="issued for another"):
            tokens.verify(token, **wanted)
    body, signature = token.split(".")
    forged = ApprovalTokens(b"another-secret-0123456789abcdef-XYZ").issue(
        runbook="rb", run_id="run-1", step="swap", approval=approval
    )
    for bad in (f"{body}.{signature[:-2]}AA", forged, "nonsense", ""):
        with pytest.raises(AuthError, match=r"bad signature|malformed"):
            tokens.verify(bad, runbook="rb", run_id="run-1", step="swap")
    now[0] += 61
    with pytest.raises(AuthError, match="expired"):
        tokens.verify(token, runbook="rb", run_id="run-1", step="swap")
    with pytest.raises(InvalidInput, match="secret"):
        ApprovalTokens(b"short")
    assert SECRET.decode() not in repr(tokens)


def test_a_webhook_approval_arrives_while_status_updates_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = ApprovalTokens(SECRET, ttl_s=300)
    recorder = Recorder()
    journal = tmp_path / "run.jsonl"
    runbook = three_steps(tmp_path, notify=recorder, status_every_s=0.05)
    results: list[RunResult] = []
    with ApprovalInbox(tokens) as inbox:
        worker = threading.Thread(
            target=lambda: results.append(
                runbook.run(journal, approve=TokenApprover(inbox, wait_s=15))
            )
        )
        worker.start()
        try:
            waiting = _wait_for_event(recorder, "approval-waiting")
            assert waiting.run_id
            approval = Approval(True, "bo", "region-b is healthy")

            def issued(step: str, run_id: str = waiting.run_id or "", clock: float = 0) -> str:
                source = ApprovalTokens(SECRET, ttl_s=5, clock=lambda: clock) if clock else tokens
                return source.issue(runbook="drill", run_id=run_id, step=step, approval=approval)

            assert post(inbox.url, issued("two", clock=1.0)) == 403  # expired long ago
            assert post(inbox.url, issued("two")[:-3] + "abc") == 403
            assert post(inbox.url, issued("three")) == 202  # good signature, wrong step
            assert post(inbox.url, issued("two", run_id="an-earlier-run")) == 202
            _wait_for_event(recorder, "status", after=waiting)
            assert counts(tmp_path) == {"one": 1}  # none of those let the step run
            good = issued("two")
            assert post(inbox.url, good) == 202
        finally:
            worker.join(timeout=30)
    assert [r.outcome for r in results] == ["finished"]
    assert counts(tmp_path) == {"one": 1, "two": 1, "three": 1}
    statuses = [e.message for e in recorder.events if e.kind == "status"]
    assert any(m.startswith("waiting for approval of step two for ") for m in statuses)
    granted = next(r for r in read_records(journal) if r.kind == "approval-granted")
    assert dict(granted.data) == {
        "approver": "bo",
        "reason": "region-b is healthy",
        "via": "webhook",
    }
    text = journal.read_text() + caplog.text + repr(inbox) + repr(TokenApprover(inbox))
    for secret in (SECRET.decode(), good, good.split(".")[1]):
        assert secret not in text
    assert "expired" in caplog.text
    assert "another step" in caplog.text


def test_an_approver_with_no_decision_leaves_the_run_awaiting(tmp_path: Path) -> None:
    with ApprovalInbox(ApprovalTokens(SECRET)) as inbox:
        result = three_steps(tmp_path).run(
            tmp_path / "run.jsonl", approve=TokenApprover(inbox, wait_s=0.1)
        )
    assert result.outcome == "awaiting-approval"
    assert "no decision came" in (result.error or "")
    with pytest.raises(InvalidInput, match="host"):
        ApprovalInbox(ApprovalTokens(SECRET), host="0.0.0.0")


def _wait_for_event(recorder: Recorder, kind: str, after: RunEvent | None = None) -> RunEvent:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with recorder.lock:
            events = list(recorder.events)
        start = events.index(after) + 1 if after in events else 0
        found = [e for e in events[start:] if e.kind == kind]
        if found:
            return found[0]
        time.sleep(0.01)
    raise AssertionError(f"no {kind} event")
