"""`multiregion runbook`: a spec names the runbook; approvals stop a run, resume finishes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from multiregion import cli
from tests.test_deployment import SPEC

RUNBOOK = """
from pathlib import Path
from multiregion.failover.runbook import Runbook, Step, StepResult

def build(deployment):
    marks = Path(deployment.spec.settings["bucket"]["path"]).parent / "marks"
    marks.mkdir(parents=True, exist_ok=True)

    def mark(name):
        def action(ctx):
            (marks / name).write_text(str(int((marks / name).read_text() or 0) + 1)
                                      if (marks / name).exists() else "1")
            return StepResult(f"{name} done", {name: True})
        return action

    return Runbook(
        "regional-recovery",
        [
            Step("update-status", mark("status"), role="incident_commander"),
            Step("swap-routing", mark("routing"), role="technical_lead", approval=True),
            Step("verify", mark("verify")),
        ],
        roles={"incident_commander": "ana", "technical_lead": "bo"},
    )
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(
        cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "multiregion.commands.runbook")
    )
    (tmp_path / "recovery.py").write_text(RUNBOOK)
    spec = tmp_path / "deploy.toml"
    spec.write_text(SPEC + '\n[runbook]\nfile = "recovery.py"\njournal = "state/run.journal"\n')
    return spec


def marks(config: Path) -> dict[str, str]:
    folder = config.parent / "state" / "marks"
    return {p.name: p.read_text() for p in sorted(folder.iterdir())} if folder.exists() else {}


def test_an_approval_gate_stops_the_run_and_resume_finishes_it(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["runbook", "run", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "awaiting-approval at swap-routing" in out
    assert marks(config) == {"status": "1"}
    # run again refuses: the journal is unfinished
    assert cli.main(["runbook", "run", "--config", str(config)]) == 2
    assert "resume" in capsys.readouterr().err
    assert (
        cli.main(
            ["runbook", "resume", "--config", str(config), "--yes", "--reason", "region-a lost"]
        )
        == 0
    )
    assert "regional-recovery: finished" in capsys.readouterr().out
    assert marks(config) == {"routing": "1", "status": "1", "verify": "1"}  # nothing twice
    assert cli.main(["runbook", "timeline", "--config", str(config)]) == 0
    timeline = capsys.readouterr().out
    for step in ("update-status", "swap-routing", "verify"):
        assert step in timeline


def test_dry_run_runs_nothing(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["runbook", "run", "--config", str(config), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("would run:") == 3
    assert marks(config) == {}


def test_a_spec_without_runbook_is_named(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(
        cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "multiregion.commands.runbook")
    )
    spec = tmp_path / "deploy.toml"
    spec.write_text(SPEC)
    assert cli.main(["runbook", "run", "--config", str(spec)]) == 2
    assert "no [runbook] table" in capsys.readouterr().err
