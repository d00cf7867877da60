"""The reference deployments in examples/: every spec loads, and the local active-passive one
runs end to end through the ``multiregion`` command."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from multiregion import Failover, Weighted
from multiregion.deployment import load
from multiregion.providers.local.dataplane import LocalDataPlane

from .conftest import EXAMPLES, Run

PATTERNS = {"active_passive": Failover, "active_active": Weighted}
PROVIDERS = ("local", "aws", "azure", "gcp")


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("example", sorted(PATTERNS))
def test_every_example_spec_loads(example: str, provider: str) -> None:
    spec = load(EXAMPLES / example / f"deploy.{provider}.toml")
    assert set(spec.providers.values()) == {provider}
    assert isinstance(spec.route.policy, PATTERNS[example])
    assert spec.route.health_check is not None
    assert len(spec.regions) == 2
    assert spec.settings["store"], "every example configures its store"


def test_every_example_has_its_files() -> None:
    for example in PATTERNS:
        files = {p.name for p in (EXAMPLES / example).iterdir()}
        assert {"README.md", "app.py", *(f"deploy.{p}.toml" for p in PROVIDERS)} <= files


def post_order(address: str, port: int) -> int:
    conn = http.client.HTTPConnection(address, port, timeout=5)
    try:
        conn.request("POST", "/orders", body=json.dumps({"item": "widget"}))
        return conn.getresponse().status
    finally:
        conn.close()


def test_local_active_passive_example_end_to_end(active_passive: Path, run: Run) -> None:
    config = str(active_passive)
    spec = load(config)
    check = spec.route.health_check
    assert check is not None
    addresses = {r.name: r.endpoint for r in spec.regions}

    applied = run("apply", "--config", config)
    assert applied.code == 0
    assert "+ policy: failover region-a > region-b" in applied.out
    assert "expected failover time: 5.5s" in applied.out

    # what `multiregion serve` runs, announced in the router's state directory
    with LocalDataPlane(spec.settings["router"]["state_dir"]):
        before = run("status", "--config", config, "--json").json()
        assert before["store"]["write_region"] == "region-a"
        assert before["answer"]["records"] == [addresses["region-a"]]
        assert [e["health"] for e in before["endpoints"]] == ["healthy", "healthy"]
        assert "(multiregion serve)" in before["dns"]
        epoch = before["store"]["fence_epoch"]
        assert post_order(addresses["region-b"], check.port) == 503

        moved = run("failover", "--config", config, "--to", "region-b", "--reason", "drill")
        assert moved.code == 0
        assert f"failover region-a -> region-b: fence epoch {epoch + 1}, switchover" in moved.out
        assert "(drill)" in moved.out

        after = run("status", "--config", config, "--json").json()
        assert after["store"]["write_region"] == "region-b"
        assert after["store"]["fence_epoch"] == epoch + 1
        overrides = {e["region"]: e["override"] for e in after["endpoints"]}
        assert overrides == {"region-a": "down", "region-b": "auto"}
        assert after["answer"]["records"] == [addresses["region-b"]]
        assert post_order(addresses["region-b"], check.port) == 201
        assert post_order(addresses["region-a"], check.port) == 503

        back = run("failback", "--config", config, "--json")
        assert back.code == 0
        move = back.json()
        assert (move["action"], move["from"], move["to"]) == ("failback", "region-b", "region-a")
        assert move["fence_epoch"] == epoch + 2
        assert move["graceful"] is True
        assert move["overridden"] == []

        final = run("status", "--config", config, "--json").json()
        assert final["store"]["write_region"] == "region-a"
        assert {e["override"] for e in final["endpoints"]} == {"auto"}
        assert final["answer"]["records"] == [addresses["region-a"]]
