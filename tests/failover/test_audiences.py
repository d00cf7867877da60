"""Each audience (engineering channel, leadership, status page) gets the events meant for it, in
its own words; status updates are spaced out per audience; bad templates are named."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from multiregion.errors import InvalidInput
from multiregion.failover.notify import (
    ENGINEERING,
    LEADERSHIP,
    STATUS_PAGE,
    Audience,
    Audiences,
    RunEvent,
)
from multiregion.failover.runbook import Runbook, RunContext, Step
from tests.failover.test_runbook import GRANT, ROLES, Recorder


def test_each_audience_gets_its_events_in_its_own_words(tmp_path: Path) -> None:
    engineering, leadership, status_page = Recorder(), Recorder(), Recorder()

    def slow(_ctx: RunContext) -> None:
        time.sleep(0.35)

    runbook = Runbook(
        "region-a-outage",
        [
            Step("restore data", slow, role="technical_lead"),
            Step("swap routing", lambda ctx: None, role="technical_lead", approval=True),
        ],
        roles=ROLES,
        notify=Audiences(
            Audience(ENGINEERING, engineering),
            Audience(LEADERSHIP, leadership, status_every_s=60),
            Audience(
                STATUS_PAGE,
                status_page,
                templates={"run-finished": "Resolved: $runbook is over ($done/$total)."},
            ),
        ),
        status_every_s=0.05,
    )
    assert runbook.run(tmp_path / "run.jsonl", approve=GRANT).outcome == "finished"

    assert {e.audience for e in engineering.events + leadership.events + status_page.events} == {
        ENGINEERING,
        LEADERSHIP,
        STATUS_PAGE,
    }
    assert "step-started" in engineering.kinds()
    started = next(e for e in engineering.events if e.kind == "step-started")
    assert started.message == (
        "[region-a-outage] step-started restore data (bo, technical_lead): attempt 1 (0/2)"
    )
    assert len([e for e in engineering.events if e.kind == "status"]) >= 2
    assert leadership.kinds() == [
        "run-started",
        "approval-waiting",
        "approval-granted",
        "run-finished",
    ]
    assert len([e for e in leadership.events if e.kind == "status"]) == 1  # one per minute
    assert leadership.events[0].message == "Recovery 'region-a-outage' started: 2 steps."
    waiting = next(e for e in leadership.events if e.kind == "approval-waiting")
    assert waiting.message == "Decision needed: step 'swap routing' waits for bo (technical_lead)."
    assert status_page.kinds() == ["run-started", "run-finished"]
    assert "another region" in status_page.events[0].message
    assert status_page.events[-1].message == "Resolved: region-a-outage is over (2/2)."


def test_templates_and_audiences_are_checked() -> None:
    recorder = Recorder()
    with pytest.raises(InvalidInput, match=r"leadership\.templates\['status'\].*secret"):
        Audience(LEADERSHIP, recorder, templates={"status": "$secret leaked"})
    with pytest.raises(InvalidInput, match="valid"):
        Audience(ENGINEERING, recorder, templates={"*": "$"})
    with pytest.raises(InvalidInput, match="notify"):
        Audience(ENGINEERING, object())  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="once"):
        Audiences(Audience(ENGINEERING, recorder), Audience(ENGINEERING, recorder))
    custom = Audience("oncall", recorder, kinds=["step-failed"])
    event = RunEvent("step-started", "rb", "attempt 1", 0.0)
    assert not custom.wants(event)
    assert custom.render(event).message == "attempt 1"  # no template: sent as it is
