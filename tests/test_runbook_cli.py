"""`multiregion runbook`: a spec names the runbook; approvals stop a run, resume finishes it."""

from __future__ import annotations

import getpass
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from multiregion import cli
from multiregion.deployment import Deployment
from multiregion.failover.journal import read_records
from multiregion.failover.shared_journal import StoreJournal
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


@pytest.fixture
def store_config(config: Path) -> Path:
    """The same deployment with its journal in the replicated store."""
    text = config.read_text().replace(
        'journal = "state/run.journal"', 'journal = "runbooks/recovery"\njournal_in = "store"'
    )
    config.write_text(text)
    return config


def test_yes_is_an_approval_by_the_invoking_user_with_a_reason(
    store_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["runbook", "run", "--config", str(store_config)]
    assert cli.main([*args, "--yes"]) == 2  # never silently: --yes needs a reason
    assert "--reason" in capsys.readouterr().err
    assert marks(store_config) == {}
    assert cli.main([*args, "--yes", "--reason", "region-a lost power", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["outcome"], result["journal"]) == ("finished", "store:runbooks/recovery")
    with Deployment.from_file(store_config) as deployment:
        records = StoreJournal(deployment.store, "runbooks/recovery").read()
    granted = next(r for r in records if r.kind == "approval-granted")
    assert dict(granted.data) == {
        "approver": getpass.getuser(),
        "reason": "region-a lost power",
        "via": "--yes",
    }


def test_handover_and_the_post_incident_report(
    store_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--config", str(store_config)]
    assert cli.main(["runbook", "run", *base]) == 1  # stops at the gate
    assert (
        cli.main(
            [
                "runbook",
                "handover",
                *base,
                "--role",
                "technical_lead",
                "--person",
                "cy",
                "--by",
                "bo",
                "--reason",
                "bo is off shift",
            ]
        )
        == 0
    )
    assert "technical_lead: bo -> cy" in capsys.readouterr().out
    assert (
        cli.main(["runbook", "resume", *base, "--approver", "ana", "--reason", "region-b verified"])
        == 0
    )
    capsys.readouterr()
    assert cli.main(["runbook", "report", *base]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("# Post-incident report: regional-recovery")
    assert "| technical_lead | bo | cy |" in markdown
    assert "| ana | region-b verified |" in markdown
    assert re.search(r"\| RTO \| [\d.]+ s \| 30\.0 s \| met \|", markdown)  # [objectives]
    page = store_config.parent / "report.html"
    drill = store_config.parent / "drill.json"
    drill.write_text(json.dumps({"rto_s": 45.0, "rpo_s": 1.0, "objective_rto_s": 30.0}))
    assert (
        cli.main(
            [
                "runbook",
                "report",
                *base,
                "--format",
                "html",
                "--output",
                str(page),
                "--drill",
                str(drill),
                "--json",
            ]
        )
        == 0
    )
    figures = json.loads(capsys.readouterr().out)
    assert figures["rto"]["met"] is False
    assert figures["rto"]["achieved_s"] == 45.0
    assert "<svg" in page.read_text()
    assert cli.main(["runbook", "report", *base, "--drill", str(page)]) == 2
    assert "--drill" in capsys.readouterr().err


def test_a_gate_granted_by_a_signed_token_posted_to_the_run(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "an-approval-secret-of-more-than-32-bytes"
    monkeypatch.setenv("MULTIREGION_APPROVAL_SECRET", secret)
    base = ["--config", str(config)]
    command = [sys.executable, "-m", "multiregion", "runbook", "run", *base]
    waiting = subprocess.Popen(
        [*command, "--approvals-port", "0", "--approval-wait", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert waiting.stderr is not None
        url = ""
        while not url and (line := waiting.stderr.readline()):
            url = line.partition("approval tokens: POST to ")[2].strip()
        assert url.startswith("http://127.0.0.1:")
        journal = config.parent / "state" / "run.journal"
        deadline = time.monotonic() + 30
        while "approval-waiting" not in [r.kind for r in read_records(journal)]:
            assert time.monotonic() < deadline, "the run never reached its gate"
            time.sleep(0.05)
        token_args = ["runbook", "token", *base, "--step", "swap-routing", "--approver", "ana"]
        assert cli.main([*token_args, "--reason", "region-b verified", "--json"]) == 0
        token = json.loads(capsys.readouterr().out)["token"]
        request = urllib.request.Request(url, token.encode(), method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
        out, err = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, err
    assert "approved by ana (webhook): region-b verified" in out
    assert secret not in out + err
    assert token not in out + err + journal.read_text()
    assert marks(config) == {"routing": "1", "status": "1", "verify": "1"}
    monkeypatch.setenv("MULTIREGION_APPROVAL_SECRET", "short")
    assert cli.main([*token_args, "--reason", "again"]) == 2
    assert "MULTIREGION_APPROVAL_SECRET" in capsys.readouterr().err
