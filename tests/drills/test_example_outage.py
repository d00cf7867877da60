"""``multiregion drill --fault region-outage`` on examples/active_passive as a user runs it: the
fault proxy in front of both regions (``multiregion faultproxy``), each region's app behind it,
and the drill finding the proxy through its announcement. The spec's own health check and TTL
are kept; only ports and state move so that runs never collide."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from multiregion import cli
from tests.drills.local_example import behind_proxy


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Path]:
    with behind_proxy(tmp_path) as config:
        yield config


def test_a_region_outage_of_the_example_recovers_within_its_objectives(
    example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["apply", "--config", str(example)]) == 0
    capsys.readouterr()
    code = cli.main(
        [
            *("drill", "--config", str(example), "--fault", "region-outage"),
            *("--steady", "0.3", "--timeout", "15", "--no-failback", "--json"),
            *("--svg", str(tmp_path / "outage.svg")),
        ]
    )
    report = json.loads(capsys.readouterr().out)
    print(json.dumps({k: v for k, v in report.items() if k != "events"}, indent=1))
    assert code == 0, report
    assert report["outcome"] == "recovered"
    assert report["to_region"] == "region-b"
    assert report["rto_met"] is True
    assert report["rto_s"] <= report["worst_rto_s"]
    assert report["promote_s"] is not None
    ratio = report["phases"]["first_request"]["ratio"]
    assert 0.5 < ratio < 2, report["phases"]  # the bench holds it to 0.8-1.2, unloaded
