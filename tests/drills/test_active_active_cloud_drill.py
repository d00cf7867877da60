"""``multiregion drill`` on the active-active example's AWS spec (Route 53 weighted records, a
multi-writer DynamoDB global table), as it ships, on moto behind ``multiregion faultproxy
--emulators``: the same command as on ``deploy.local.toml``. Every cloud and fault run in
``benches/drill_clouds.py``."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from multiregion import cli
from multiregion.deployment import load
from multiregion.faultproxy import spec as proxied
from multiregion.testing.emulators.aws import CREDENTIALS_ENV
from tests.drills.local_example import EXAMPLE, behind_proxy

ACTIVE_ACTIVE = EXAMPLE.parent / "active_active"


def test_the_weighted_aws_example_sheds_the_failed_region_on_moto(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in CREDENTIALS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", boto3.DEFAULT_SESSION)  # restored after
    with behind_proxy(tmp_path, "aws", ACTIVE_ACTIVE) as config:
        assert cli.main(["apply", "--config", str(config)]) == 0
        capsys.readouterr()
        code = cli.main(
            [
                *("drill", "--config", str(config), "--fault", "region-outage"),
                *("--steady", "0.3", "--timeout", "20", "--json", "--no-history"),
                *("--svg", str(tmp_path / "outage.svg")),
            ]
        )
        out, err = capsys.readouterr()
        assert out.strip(), err
        report = json.loads(out)
        print(json.dumps({k: v for k, v in report.items() if k != "events"}, indent=1))
        assert code == 0, report
        assert report["mode"] == "active-active"
        assert report["fault"] == "us-east-1 blackholed + us-east-1's store replica blackholed"
        assert report["outcome"] == "recovered"
        assert report["to_region"] is None  # nothing promoted: the weighted answer shed it
        # DNS stopped naming us-east-1 only once health (the library's probes) found it failed
        assert 0 < report["detection_s"] <= report["dns_switch_s"] <= report["rto_s"]
        assert 0 <= report["error_rate_during_fault"] <= 1
        assert report["acknowledged_writes"] > 0
        assert report["failback"]["ok"] is True
        # writes went to each region's own replica, and moto never replicates: the key both
        # regions updated still differs between them after healing
        assert report["conflicts"] >= 1
        assert report["converged_s"] is None
        client = proxied.announced(load(config))
        assert client is not None
        assert all(not entry["toxics"] for entry in client.listeners())
