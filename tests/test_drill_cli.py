"""`multiregion drill` on a local deployment: measured, failed back, pictured; bad input named."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from multiregion import cli
from multiregion.deployment import Deployment, load
from multiregion.faultproxy import ControlClient, FaultProxy
from multiregion.faultproxy import spec as proxied
from multiregion.testing.endpoints import LoopbackEndpoint, free_port, start_endpoints

SPEC = """
[deployment]
name = "shop"

[objectives]
rto_s = 10
rpo_s = 5

[[regions]]
name = "region-a"
endpoint = "{a}"

[[regions]]
name = "region-b"
endpoint = "{b}"

[route]
name = "app.drill-cli.test"
policy = "failover"
ttl = 1

[health_check]
protocol = "http"
port = {port}
interval_s = 0.1
timeout_s = 0.1
failure_threshold = 2

[router]
state_dir = "state/dns"

[store]
path = "state/store"
replication = "sync"
witness = "witness"
"""


def drill(
    config: Path, capsys: pytest.CaptureFixture[str], fault: str, *argv: str
) -> tuple[int, Any]:
    """``apply`` then ``drill --fault fault`` (0.3 s steady, 10 s timeout unless ``argv`` says
    otherwise): the exit code and the JSON report."""
    assert cli.main(["apply", "--config", str(config)]) == 0
    capsys.readouterr()
    base = ["drill", "--config", str(config), "--fault", fault, "--steady", "0.3", "--json"]
    code = cli.main([*base, "--timeout", "10", *argv])  # a later --timeout wins
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def endpoints() -> Iterator[list[LoopbackEndpoint]]:
    started = start_endpoints(2)
    yield started
    for endpoint in started:
        endpoint.close()


@pytest.fixture
def config(tmp_path: Path, endpoints: list[LoopbackEndpoint]) -> Path:
    path = tmp_path / "deploy.toml"
    a, b = endpoints
    path.write_text(SPEC.format(a=a.address, b=b.address, port=a.port))
    return path


def test_a_drill_from_the_command_line(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["apply", "--config", str(config)]) == 0
    capsys.readouterr()
    svg = tmp_path / "timeline.svg"
    code = cli.main(
        [
            "drill",
            "--config",
            str(config),
            "--fault",
            "force-down",
            "--steady",
            "0.5",
            "--timeout",
            "10",
            "--svg",
            str(svg),
            "--json",
            "--journal",
            str(tmp_path / "journal.json"),
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    # the same drill as a Chaos Toolkit journal (the shape chaostoolkit-lib writes)
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["status"] == "completed"
    assert journal["deviated"] is False
    assert journal["steady_states"]["before"]["steady_state_met"] is True
    assert journal["run"][0]["output"]["rto_s"] == report["rto_s"]
    assert journal["run"][0]["activity"]["name"] == report["fault"]
    assert journal["rollbacks"][0]["status"] == "succeeded"  # the failback
    assert journal["duration"] > 0
    assert report["outcome"] == "recovered"
    assert report["region"] == "region-a"
    assert report["dns_switch_s"] is not None
    assert report["rto_met"] is True
    assert report["rpo_met"] is True
    assert report["lost_writes"] == 0  # sync replication
    assert report["failback"]["ok"] is True
    assert report["passed"] is True
    assert svg.read_text().startswith("<svg")
    assert report["svg"] == str(svg.resolve())
    kept = Path(report["kept"])
    assert kept.parent == tmp_path / "state" / "drills"  # next to the spec
    assert json.loads(kept.read_text())["rto_s"] == report["rto_s"]


def test_a_route_that_is_not_applied_is_named(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["drill", "--config", str(config), "--timeout", "1"]) == 2
    assert "multiregion apply" in capsys.readouterr().err


def test_an_unknown_region_is_named(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["apply", "--config", str(config)]) == 0
    assert cli.main(["drill", "--config", str(config), "--region", "region-z"]) == 2
    assert "region-z" in capsys.readouterr().err


def test_a_store_outage_health_checks_cannot_see_is_reported_as_not_recovered(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its store replica down but its service still answering: the health checks see nothing,
    the write region does not move, writes never recover, and the RTO objective is missed."""
    assert cli.main(["apply", "--config", str(config)]) == 0
    capsys.readouterr()
    code = cli.main(
        [
            "drill",
            "--config",
            str(config),
            "--fault",
            "store-outage",
            "--steady",
            "0.3",
            "--timeout",
            "1.5",
            "--json",
            "--svg",
            str(tmp_path / "outage.svg"),
        ]
    )
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["outcome"] == "not recovered"
    assert report["rto_met"] is False
    assert report["promote_s"] is None
    assert report["write_rto_s"] is None
    assert report["passed"] is False
    assert report["failback"]["ok"] is True

    # kept, and listed with the objectives; the picture marks it as not recovered
    assert cli.main(["drills", "list", "--config", str(config), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    [entry] = listed["drills"]
    assert entry["fault"] == report["fault"]
    assert entry["outcome"] == "not recovered"
    assert entry["objective_rto_s"] == 10
    picture = Path(listed["svg"]).read_text()
    assert picture.startswith("<svg")
    assert "<title>not recovered</title>" in picture
    assert cli.main(["drills", "list", "--config", str(config)]) == 0
    assert "missed" in capsys.readouterr().out


def test_drills_list_without_a_kept_drill_says_how_to_run_one(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["drills", "list", "--config", str(config)]) == 2
    assert "multiregion drill" in capsys.readouterr().err


ACTIVE_ACTIVE = {
    'policy = "failover"': 'policy = "weighted"',
    'replication = "sync"\nwitness = "witness"': (
        'replication = "async"\nlag_s = 0.1\nmulti_writer = true'
    ),
}


@pytest.fixture
def behind_proxy(
    request: pytest.FixtureRequest, tmp_path: Path, endpoints: list[LoopbackEndpoint]
) -> Iterator[tuple[Path, str]]:
    """The spec's regions served by the fault proxy, the apps (the endpoints) behind it; a
    failover route with a sync store, or a weighted one with a multi-writer store."""
    a, b = endpoints
    front = free_port([a.address, b.address])
    path = tmp_path / "deploy.toml"
    text = SPEC.format(a=a.address, b=b.address, port=front)
    if getattr(request, "param", "active-passive") == "active-active":
        for old, new in ACTIVE_ACTIVE.items():
            assert old in text
            text = text.replace(old, new)
    path.write_text(text)
    with FaultProxy() as proxy:
        for region, (listen, upstream) in proxied.listeners(load(path), a.port).items():
            proxy.add_listener(region, listen, upstream)
        yield path, proxy.serve_control()


@pytest.mark.parametrize("behind_proxy", ["active-passive", "active-active"], indirect=True)
def test_a_region_outage_through_the_fault_proxy_recovers(
    behind_proxy: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The primary blackholed and its replica failed: probes time out, DNS stops answering it,
    requests and writes succeed again, and the drill fails back. Active-passive: the controller
    promotes the standby. Active-active: traffic shifts by health alone, with a share of errors
    while it does, and the replicas converge once the region is healed."""
    config, control = behind_proxy
    code, report = drill(
        config, capsys, "region-outage", "--proxy", control, "--svg", str(tmp_path / "o.svg")
    )
    assert code == 0, report
    assert report["outcome"] == "recovered"
    assert report["fault"].startswith("region-a blackholed + store replica in region-a")
    assert report["detection_s"] is not None
    assert report["write_rto_s"] is not None
    assert report["rto_met"] is True
    assert report["failback"]["ok"] is True
    assert ControlClient(control).listeners()[0]["toxics"] == []  # nothing left behind
    if report["mode"] == "active-passive":
        assert report["to_region"] == "region-b"
        assert report["detection_s"] <= report["promote_s"]
        assert report["converged_s"] is None
    else:
        assert report["to_region"] is None  # no write region to move
        assert report["promote_s"] is None
        assert report["detection_s"] <= report["dns_switch_s"] <= report["rto_s"]
        # users sent to region-a while DNS still named it failed (how many is down to chance)
        assert 0 <= report["error_rate_during_fault"] < 1
        assert report["converged_s"] is not None
        assert report["phases"]["decision"]["predicted_s"] is None


def test_a_brownout_that_fails_every_request_is_detected_and_recovers(
    behind_proxy: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Latency and 503s from the proxy itself: users saw the errors, the health checks too."""
    config, control = behind_proxy
    code, report = drill(
        config,
        capsys,
        "brownout",
        *("--latency", "0.05", "--jitter", "0.01", "--error-rate", "1"),
        *("--proxy", control, "--no-history", "--svg", str(tmp_path / "brownout.svg")),
    )
    assert code == 0, report
    assert report["fault"] == "brownout of region-a: +0.05s latency, 100% 503s"
    assert report["outcome"] == "recovered"
    assert report["detection_s"] is not None
    assert report["kept"] is None
    assert report["error_rate_during_fault"] > 0  # DNS sent users to region-a until it moved


def test_a_dry_run_prints_the_plan_and_injects_nothing(
    behind_proxy: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    config, control = behind_proxy
    assert cli.main(["apply", "--config", str(config)]) == 0
    capsys.readouterr()
    argv = ["drill", "--config", str(config), "--fault", "region-outage", "--proxy", control]
    assert cli.main([*argv, "--dry-run", "--lease", "7", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["fault"] == "region-a blackholed + store replica in region-a unreachable"
    assert plan["lease_s"] == 7
    assert plan["predicted_s"]["detection"] == pytest.approx(0.25)  # 0.1 x (2 - 1/2) + 0.1
    assert ControlClient(control).listeners()[0]["toxics"] == []
    assert not (config.parent / "state" / "drills").exists()
    assert cli.main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "inject: region-a blackholed" in out
    assert "revert by themselves" in out


def test_a_proxied_fault_without_a_proxy_says_how_to_start_one(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["apply", "--config", str(config)]) == 0
    assert cli.main(["drill", "--config", str(config), "--fault", "brownout"]) == 2
    assert "multiregion faultproxy" in capsys.readouterr().err


def test_a_partition_stops_the_cut_off_write_region_from_writing(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Users still reach region-a but its replication and fencing links are cut: its side is a
    minority, so it refuses writes rather than split the store; health sees nothing, so the
    drill does not recover, and after healing region-a writes again."""
    code, report = drill(
        config,
        capsys,
        "partition",
        *("--timeout", "1", "--journal", str(tmp_path / "journal.json")),
        *("--svg", str(tmp_path / "cut.svg")),
    )
    assert code == 1
    assert report["fault"] == "replication from region-a cut (users still reach it)"
    assert report["outcome"] == "not recovered"
    assert report["detection_s"] is None  # health checks see nothing
    assert report["write_rto_s"] is None  # no write acknowledged on the minority side
    assert report["error_rate_during_fault"] == 0  # users were served all along
    assert report["failback"]["ok"] is True
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert (journal["status"], journal["deviated"]) == ("failed", True)
    with Deployment.from_file(config) as deployment:
        assert deployment.store.write_region == "region-a"
        deployment.store.put("after/partition", {"ok": True})  # healed: it writes again


def test_a_drill_killed_mid_fault_leaves_no_fault_once_its_lease_ran_out(
    behind_proxy: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The dead-man switch end to end: ``multiregion drill`` in a process of its own, SIGKILLed
    while its brownout holds; nobody renews the lease and the proxy reverts by itself."""
    config, control = behind_proxy
    assert cli.main(["apply", "--config", str(config)]) == 0
    lease_s = 0.6
    argv = [sys.executable, "-m", "multiregion", "drill", "--config", str(config)]
    argv += ["--fault", "brownout", "--proxy", control, "--lease", str(lease_s)]
    argv += ["--steady", "0.2", "--timeout", "30", "--no-history"]
    argv += ["--latency", "0.01", "--jitter", "0", "--error-rate", "0.01"]  # health sees nothing
    drill = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = ControlClient(control)
    try:
        deadline = time.monotonic() + 15
        while not client.listeners()[0]["toxics"]:  # the brownout is in place
            assert drill.poll() is None, "the drill ended before its fault"
            assert time.monotonic() < deadline, "the fault never came"
            time.sleep(0.05)
        time.sleep(lease_s * 1.5)  # renewed: it outlives its first lease
        assert {t["kind"] for t in client.listeners()[0]["toxics"]} == {"latency", "http_errors"}
    finally:
        os.kill(drill.pid, signal.SIGKILL)
        drill.wait(timeout=5)
    killed = time.monotonic()
    while client.listeners()[0]["toxics"]:
        assert time.monotonic() - killed < lease_s + 1.5, "the fault outlived its lease"
        time.sleep(0.02)
    assert time.monotonic() - killed >= lease_s / 2  # the lease ended it, not the drill
