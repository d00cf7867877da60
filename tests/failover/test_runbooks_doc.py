"""docs/runbooks.md stays true: its complete example runs, and its recovery resumed from the
other region runs as shown, through the command line, to its post-incident report."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from multiregion import cli
from multiregion.backup import Backups
from multiregion.deployment import Deployment

DOC = Path(__file__).parent.parent.parent / "docs" / "runbooks.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.S)


def test_the_complete_example_runs() -> None:
    example = next(b for b in blocks("python") if "What the deployment already has" in b)
    done = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "# Post-incident report: region-a-outage" in done.stdout
    assert "| ana | region-a lost power |" in done.stdout
    assert "promote region-a -> region-b (epoch 2)" in done.stdout


def test_the_recovery_resumed_from_the_other_region_runs_as_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = next(b for b in blocks("toml") if "journal_in" in b and "[deployment]" in b)
    spec += '\n[router]\nstate_dir = "state/routing"\n\n[bucket]\npath = "state/bucket"\n'
    (tmp_path / "deploy.toml").write_text(spec)
    recovery = next(b for b in blocks("python") if "def build(deployment)" in b)
    (tmp_path / "recovery.py").write_text(recovery)
    with Deployment.from_file(tmp_path / "deploy.toml") as deployment:
        deployment.store.put("order/1", {"total": 12})
        Backups(deployment.bucket).create(deployment.store)
        deployment.router.apply(deployment.spec.route)
    (tmp_path / "state" / "region-b.up").touch()  # the web tier is up: no wait
    base = ["--config", str(tmp_path / "deploy.toml")]
    assert cli.main(["runbook", "run", *base, "--yes", "--reason", "region-a is down"]) == 0
    out = capsys.readouterr().out
    assert "approved by" in out
    assert "journal: store:runbooks/region-a-outage" in out
    assert cli.main(["runbook", "report", *base]) == 0
    report = capsys.readouterr().out
    assert "| RTO | " in report
    assert "| 900.0 s | met |" in report
    assert "promote region-a -> region-b (epoch 2)" in report
