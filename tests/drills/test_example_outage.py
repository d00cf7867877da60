"""``multiregion drill --fault region-outage`` on examples/active_passive as a user runs it: the
fault proxy in front of both regions (``multiregion faultproxy``), each region's app behind it,
and the drill finding the proxy through its announcement. The spec's own health check and TTL
are kept; only ports and state move so that runs never collide."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from multiregion import cli
from multiregion.deployment import Deployment, load
from multiregion.errors import NotFound, Unavailable
from multiregion.faultproxy import ControlClient
from multiregion.faultproxy import spec as proxied
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


def test_a_drill_killed_mid_outage_leaves_no_fault_once_its_lease_ran_out(example: Path) -> None:
    """``kill -9`` of ``multiregion drill --fault region-outage`` while region-a is blackholed
    and its replica failed: the blackhole is the proxy's, and the failed replica is behind the
    proxy's lever (``region-a.store``), so both revert by themselves once the lease runs out."""
    lease_s = 0.6
    argv = [sys.executable, "-m", "multiregion", "drill", "--config", str(example)]
    argv += ["--fault", "region-outage", "--lease", str(lease_s), "--steady", "0.2"]
    argv += ["--timeout", "30", "--no-history"]
    client = proxied.announced(load(example))
    assert client is not None
    assert cli.main(["apply", "--config", str(example)]) == 0
    drill = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while held(client) != {"region-a": ["blackhole"], "region-a.store": ["engage"]}:
            assert drill.poll() is None, "the drill ended before its fault"
            assert time.monotonic() < deadline, f"the fault never came: {held(client)}"
            time.sleep(0.05)
        with Deployment.from_file(example) as deployment, pytest.raises(Unavailable):
            deployment.store.get("anything", region="region-a")
    finally:
        os.kill(drill.pid, signal.SIGKILL)
        drill.wait(timeout=5)
    killed = time.monotonic()
    while held(client):
        assert time.monotonic() - killed < lease_s + 1.5, "the fault outlived its lease"
        time.sleep(0.02)
    with Deployment.from_file(example) as deployment, pytest.raises(NotFound):
        deployment.store.get("anything", region="region-a")  # answered: the replica is back


def held(client: ControlClient) -> dict[str, list[str]]:
    return {
        entry["name"]: [toxic["kind"] for toxic in entry["toxics"]]
        for entry in client.listeners()
        if entry["toxics"]
    }
