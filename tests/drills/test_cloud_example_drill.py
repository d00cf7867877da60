"""``multiregion drill`` on the active-passive example's AWS spec, as it ships, on moto: the
same commands as on the local spec, with ``multiregion faultproxy --emulators`` in front of
each region's app and of each region's DynamoDB endpoint. One cloud here (moto starts in a
second); every cloud and every fault run in ``benches/drill_clouds.py``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from multiregion import cli
from multiregion.deployment import load
from multiregion.faultproxy import spec as proxied
from multiregion.testing.emulators.aws import CREDENTIALS_ENV
from tests.drills.local_example import EXAMPLE, behind_proxy


@pytest.fixture(scope="module")
def aws_example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    previous = boto3.DEFAULT_SESSION
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS_ENV.items():
            patch.setenv(name, value)
        try:
            with behind_proxy(tmp_path_factory.mktemp("aws-example"), "aws") as config:
                assert cli.main(["apply", "--config", str(config)]) == 0
                yield config
        finally:
            boto3.DEFAULT_SESSION = previous


def drill(config: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, Any]:
    capsys.readouterr()
    code = cli.main(["drill", "--config", str(config), *extra, "--json", "--no-history"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else err


def test_the_aws_example_is_drilled_on_moto_as_the_local_one_is(
    aws_example: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """One test (one moto) for the plan, the partition moto cannot do, and the outage."""
    code, plan = drill(aws_example, capsys, "--fault", "region-outage", "--dry-run")
    assert code == 0, plan
    assert plan["fault"] == "us-east-1 blackholed + us-east-1's store replica blackholed"
    # Route 53's 10 s x 3 check at moto's time scale (0.05), not the spec's 55 s
    assert 0.5 < plan["predicted_s"]["detection"] < 3
    assert plan["predicted_s"]["first_request"] < 5

    code, err = drill(aws_example, capsys, "--fault", "partition")
    assert code == 2
    assert "moto has no DynamoDB global tables" in err

    code, report = drill(
        aws_example,
        capsys,
        *("--fault", "region-outage", "--steady", "0.3", "--timeout", "20", "--no-failback"),
        *("--svg", str(tmp_path / "outage.svg")),
    )
    print(json.dumps({k: v for k, v in report.items() if k != "events"}, indent=1))
    assert code == 0, report
    assert report["outcome"] == "recovered"
    assert report["to_region"] == "us-west-2"
    assert report["rto_met"] is True
    # health found it (the library's probes: moto never probes) and the controller moved
    assert 0 < report["detection_s"] <= report["promote_s"]
    phases = report["phases"]
    assert all(phases[p]["measured_s"] is not None for p in ("detection", "first_request"))
    # moto's tables never replicate: what was written in us-east-1 is missing in us-west-2
    assert report["lost_writes"] > 0
    # the fault was reverted: nothing left on the proxy, which fronts both stores too
    client = proxied.announced(load(aws_example))
    assert client is not None
    listeners = client.listeners()
    assert all(not entry["toxics"] for entry in listeners)
    assert {"us-east-1.store", "us-west-2.store"} <= {entry["name"] for entry in listeners}


def test_a_cloud_spec_without_its_emulators_is_refused_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "deploy.gcp.toml"
    shutil.copy(EXAMPLE / config.name, config)
    assert cli.main(["faultproxy", "--config", str(config)]) == 2
    assert "--emulators: on gcp the endpoints are load balancers" in capsys.readouterr().err
    assert not (tmp_path / "state").exists()  # nothing announced
