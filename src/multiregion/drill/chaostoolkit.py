"""A drill's report as a Chaos Toolkit journal, for teams whose experiments, reports and
dashboards already read those (``chaos report``, the journal consumers of their pipelines).

The shape follows the journal ``chaostoolkit-lib`` writes (``chaoslib/run.py``:
``initialize_run_journal`` and the end of ``Runner._run``): ``status`` is one of completed,
failed, aborted or interrupted; ``deviated`` says the steady state did not hold after the
method; ``run`` and ``rollbacks`` hold activity runs (``activity``, ``status``, ``output``,
``start``, ``end``, ``duration``, ``exception``). The drill maps onto it as: the steady-state
hypothesis is every region healthy before the fault (``before``) and recovered within the
objectives after it (``after``); the method is one action, the fault, whose output is the whole
report; the failback, when there was one, is the rollback.
"""

from __future__ import annotations

import platform
from datetime import datetime, timedelta
from typing import Any

from multiregion.drill.report import DrillReport

STATUS = {"recovered": "completed", "aborted": "interrupted"}
"""Any other outcome (not recovered, not steady) is a failed experiment."""


def journal(report: DrillReport) -> dict[str, Any]:
    start = datetime.fromisoformat(report.started_at)
    end = start + timedelta(seconds=report.duration_s)
    steady_before = report.outcome != "not steady"
    deviated = steady_before and report.outcome != "aborted" and not report.passed
    title = f"Drill of {report.route}: {report.fault}"
    after = {"steady_state_met": report.passed, "probes": []} if steady_before else None
    provider = {"type": "python", "module": "multiregion.drill.runner", "func": "Drill.run"}
    action = {"type": "action", "name": report.fault, "provider": provider}
    runs = [_run(action, start, end, "succeeded", report.to_dict())]
    rollbacks = []
    if report.failback.attempted:
        failback = {"type": "action", "name": "fail back", "provider": provider}
        rollbacks.append(
            _run(
                failback,
                end,
                end,
                "succeeded" if report.failback.ok else "failed",
                {"detail": report.failback.detail, "seconds": report.failback.seconds},
            )
        )
    return {
        "chaoslib-version": None,
        "platform": platform.platform(),
        "node": platform.node(),
        "experiment": {
            "title": title,
            "description": f"multiregion drill of {report.region} ({report.mode})",
            "steady-state-hypothesis": {
                "title": "every region healthy; recovered within the objectives"
            },
            "method": [action],
            "rollbacks": [r["activity"] for r in rollbacks],
        },
        "start": start.isoformat(),
        "end": end.isoformat(),
        "duration": report.duration_s,
        "status": STATUS.get(report.outcome, "failed"),
        "deviated": deviated,
        "steady_states": {
            "before": {"steady_state_met": steady_before, "probes": []},
            "after": after,
            "during": [],
        },
        "run": runs,
        "rollbacks": rollbacks,
    }


def _run(
    activity: dict[str, Any], start: datetime, end: datetime, status: str, output: Any
) -> dict[str, Any]:
    return {
        "activity": activity,
        "status": status,
        "output": output,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "duration": (end - start).total_seconds(),
        "exception": None,
    }
