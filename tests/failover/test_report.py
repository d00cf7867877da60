"""The post-incident report: timeline, RTO/RPO against objectives, decisions and who made them,
lessons learned and action items, as Markdown and as HTML with the timeline drawn in SVG."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from multiregion import Endpoint, Failover, Route
from multiregion.errors import InvalidInput, NotFound
from multiregion.failover import report
from multiregion.failover.approvals import approve_as
from multiregion.failover.controller import ActivePassiveController
from multiregion.failover.journal import read_records
from multiregion.failover.roles import INCIDENT_COMMANDER, hand_over
from multiregion.failover.runbook import Runbook, RunContext, Step, StepResult
from multiregion.model import FencingToken, HealthState
from multiregion.providers.local.router import LocalRouter
from multiregion.providers.local.store import LocalStore
from tests.failover.test_runbook import ROLES


def incident(tmp_path: Path) -> Path:
    """A run that was stopped by a failing step, handed over, resumed and finished."""
    journal = tmp_path / "run.jsonl"

    def promote(ctx: RunContext) -> StepResult:
        token = FencingToken(3, "region-b", forced=True)
        ctx.record_promote(token, from_region="region-a", reason="no quorum: region-a is gone")
        return StepResult("region-b takes writes")

    def restore(ctx: RunContext) -> StepResult:
        if ctx.attempt == 1:
            raise RuntimeError("backup <script>alert(1)</script> unreadable")
        return StepResult("restored", {"rpo_s": 2.5})

    runbook = Runbook(
        "region-a-outage",
        [
            Step("update status", lambda ctx: None, role=INCIDENT_COMMANDER),
            Step("promote store", promote, role="technical_lead", approval=True),
            Step("restore data", restore, role="technical_lead"),
        ],
        roles=ROLES,
    )
    grant = approve_as("ana", "region-a lost power", via="--yes")
    assert runbook.run(journal, approve=grant).outcome == "failed"
    hand_over(journal, INCIDENT_COMMANDER, "cy", by="ana", reason="end of shift")
    assert runbook.resume(journal).outcome == "finished"
    return journal


def test_the_report_of_a_run_holds_the_facts_and_the_decisions(tmp_path: Path) -> None:
    journal = incident(tmp_path)
    found = report.build(read_records(journal), rto_objective_s=0.0001, rpo_objective_s=5)
    assert found.outcome == "finished"
    assert found.rto.met is False  # the run took longer than 0.1 ms
    assert found.rto.source == "journal: run started to run finished"
    assert (found.rpo.achieved_s, found.rpo.met) == (2.5, True)
    assert found.roles_at_start[INCIDENT_COMMANDER] == "ana"
    assert found.roles_at_end[INCIDENT_COMMANDER] == "cy"
    restore = next(s for s in found.steps if s.name == "restore data")
    assert (restore.attempts, restore.outcome) == (2, "finished")
    decisions = [(d.what, d.by, d.reason, d.flagged) for d in found.decisions]
    assert decisions == [
        ("approved step 'promote store' (via --yes)", "ana", "region-a lost power", False),
        (
            "promote region-a -> region-b (epoch 3) [forced promote]",
            "bo",
            "no quorum: region-a is gone",
            True,
        ),
        ("incident_commander -> cy (from ana)", "ana", "end of shift", False),
    ]
    items = found.action_items()
    assert any(i.startswith("RTO of ") and "missed its objective of 0.0 s" in i for i in items)
    assert any("'restore data' ran 2 times" in i for i in items)
    assert any("forced promote" in i and "divergence log" in i for i in items)

    markdown = report.to_markdown(found)
    for heading in (
        "## Recovery objectives",
        "## Decisions and who made them",
        "## Timeline",
        "## Lessons learned",
        "### What went wrong",
        "## Action items",
    ):
        assert heading in markdown
    assert re.search(r"\| RTO \| [\d.]+ s \| 0\.0 s \| MISSED \|", markdown)
    assert "| RPO | 2.5 s | 5.0 s | met |" in markdown
    assert "| ana | region-a lost power |" in markdown
    assert markdown.count("_to fill in_") >= 4

    page = report.to_html(found)
    assert page.count("<svg") == 1
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert page.count("<rect") == 4  # status, promote, restore failed, restore finished
    assert 'fill="#c33"' in page  # the forced promote and the failed attempt stand out


def test_drill_figures_are_the_rto_and_rpo_when_given(tmp_path: Path) -> None:
    records = read_records(incident(tmp_path))
    drill = {
        "rto_s": 41.0,
        "rpo_s": 0.0,
        "objective_rto_s": 30.0,
        "objective_rpo_s": 5.0,
        "fault": "blackhole",
        "region": "region-a",
        "outcome": "recovered",
    }
    found = report.build(records, drill=drill)
    assert (found.rto.achieved_s, found.rto.objective_s, found.rto.met) == (41.0, 30.0, False)
    assert (found.rpo.achieved_s, found.rpo.met) == (0.0, True)
    markdown = report.to_markdown(found)
    assert "Drill: fault `blackhole` on region-a, outcome recovered." in markdown
    assert "RTO of 41.0 s missed its objective of 30.0 s" in markdown
    never = report.build(records, drill={**drill, "rto_s": None, "outcome": "timed-out"})
    assert (never.rto.met, never.rto.verdict()) == (False, "MISSED")
    assert "RTO: the service never came back: find what held it" in never.action_items()
    restored = report.build(records, restored_by="promote store")
    assert restored.rto.source == "journal: run started to 'promote store' finished"
    assert restored.rto.achieved_s is not None
    assert report.build(records).rto.achieved_s is not None
    assert restored.rto.achieved_s < (report.build(records).rto.achieved_s or 0)
    with pytest.raises(InvalidInput, match="restored_by"):
        report.build(records, restored_by="no such step")
    with pytest.raises(NotFound):
        report.build([])
    with pytest.raises(InvalidInput, match="drill"):
        report.build(records, drill=[1, 2])  # type: ignore[arg-type]


def test_a_move_that_overrode_a_guard_rail_is_journaled_and_flagged(tmp_path: Path) -> None:
    route = Route(
        name="app.shop.test",
        endpoints=[Endpoint("a", "region-a", "127.0.0.2"), Endpoint("b", "region-b", "127.0.0.3")],
        policy=Failover("a", ["b"]),
        ttl=5,
    )
    router = LocalRouter(tmp_path / "routing", serve=False)
    store = LocalStore(tmp_path / "store", ["region-a", "region-b"], replication="sync")
    try:
        router.apply(route)
        controller = ActivePassiveController(
            router,
            route.name,
            store=store,
            health=lambda: {"region-a": HealthState.UNHEALTHY, "region-b": HealthState.UNHEALTHY},
        )

        def fail_over(ctx: RunContext) -> StepResult:
            move = ctx.record_move(controller.failover("region-b", "region-a down", force=True))
            return StepResult(f"moved at epoch {move.fence.epoch if move.fence else '-'}")

        journal = tmp_path / "run.jsonl"
        Runbook("forced", [Step("fail over", fail_over, role="technical_lead")], roles=ROLES).run(
            journal
        )
    finally:
        router.close()
        store.close()
    move = next(r for r in read_records(journal) if r.kind == "move")
    assert move.data["action"] == "failover"
    assert move.data["graceful"] is True  # region-a's replica still answered: a switchover
    assert move.data["epoch"] == 2
    assert move.data["by"] == "bo"
    assert len(move.data["overridden"]) == 1
    assert "unhealthy" in move.data["overridden"][0]
    assert "[overrode: its health checks report region-b unhealthy" in move.message
    found = report.build(read_records(journal))
    flagged = [d for d in found.decisions if d.flagged]
    assert len(flagged) == 1
    assert flagged[0].what.startswith("failover region-a -> region-b (epoch 2) [overrode: ")
    assert any("check the divergence log" in item for item in found.action_items())
