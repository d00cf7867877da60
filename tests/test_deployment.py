"""Deployment specs: valid ones connect, wrong ones name the file, the key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from multiregion import Failover, InvalidInput, Weighted
from multiregion.deployment import Deployment, load, parse

SPEC = """
[deployment]
name = "shop"
provider = "local"

[objectives]
rto_s = 30
rpo_s = 5

[[regions]]
name = "region-a"
endpoint = "127.0.0.2"

[[regions]]
name = "region-b"
endpoint = "127.0.0.3"

[route]
name = "app.shop.test"
policy = "failover"
order = ["region-a", "region-b"]
ttl = 5

[health_check]
protocol = "http"
port = 8080
path = "/health"
interval_s = 1

[store]
path = "state/store"

[bucket]
path = "state/bucket"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deploy.toml"
    path.write_text(text)
    return path


def test_a_spec_reads_into_a_route_and_settings(tmp_path: Path) -> None:
    spec = load(write(tmp_path, SPEC))
    assert spec.name == "shop"
    assert spec.region_names == ("region-a", "region-b")
    assert spec.route.policy == Failover("region-a", ["region-b"])
    assert spec.route.ttl == 5
    assert spec.route.health_check is not None
    assert spec.route.health_check.interval_s == 1.0
    assert spec.objectives.rto_s == 30.0
    assert spec.providers == {
        "router": "local",
        "store": "local",
        "bucket": "local",
        "probe": "local",
    }
    # relative paths are taken from the spec's folder
    assert spec.settings["store"]["path"] == str(tmp_path / "state/store")
    assert spec.region_of("region-b") == "region-b"


def test_weighted_spec() -> None:
    data = load_dict()
    data["route"] = {
        "name": "app.shop.test",
        "policy": "weighted",
        "weights": {"region-a": 3, "region-b": 1},
    }
    spec = parse(data)
    assert spec.route.policy == Weighted({"region-a": 3, "region-b": 1})


def load_dict() -> dict:
    import tomllib

    return tomllib.loads(SPEC)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d["route"].update(ttl=-5), "route.ttl"),
        (lambda d: d["route"].update(name="nodots"), "route.name"),
        (lambda d: d["route"].update(order=["region-a", "region-x"]), "route.order"),
        (lambda d: d["route"].update(order=["region-a"]), "route.order"),
        (lambda d: d["route"].update(policy="random"), "route.policy"),
        (lambda d: d["route"].update(colour="blue"), "route"),
        (lambda d: d["health_check"].update(interval_s=0), "health_check.interval_s"),
        (lambda d: d["health_check"].update(protocol="icmp"), "health_check.protocol"),
        (lambda d: d["health_check"].update(retries=3), "health_check"),
        (lambda d: d["regions"][1].update(name="Region B"), "regions[1].name"),
        (lambda d: d["regions"][1].update(endpoint="not an address"), "regions[1].endpoint"),
        (lambda d: d["regions"][1].update(name="region-a"), "regions"),
        (lambda d: d.pop("regions"), "regions"),
        (lambda d: d.pop("route"), "route"),
        (lambda d: d["deployment"].pop("name"), "deployment.name"),
        (lambda d: d["store"].update(provider="nimbus"), "store.provider"),
        (lambda d: d["objectives"].update(rto_s=-1), "objectives.rto_s"),
        (lambda d: d.update(extras={}), ""),
    ],
)
def test_errors_name_the_source_and_key(change, key: str) -> None:
    data = load_dict()
    change(data)
    with pytest.raises(InvalidInput) as info:
        parse(data, source="deploy.toml")
    assert info.value.field == f"deploy.toml: {key}"


def test_a_missing_or_broken_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        load(tmp_path / "absent.toml")
    with pytest.raises(InvalidInput, match="not valid TOML") as info:
        load(write(tmp_path, "[deployment\nname="))
    assert info.value.field.endswith("deploy.toml")


def test_a_deployment_connects_the_local_parts(tmp_path: Path) -> None:
    with Deployment.from_file(write(tmp_path, SPEC)) as deployment:
        assert deployment.store.regions == ("region-a", "region-b")
        deployment.bucket.put("hello", b"world")
        assert deployment.bucket.get("hello") == b"world"
        assert deployment.store is deployment.store  # connected once
    assert (tmp_path / "state" / "bucket").is_dir()


def test_settings_a_provider_does_not_take_are_named(tmp_path: Path) -> None:
    data = load_dict()
    data["bucket"] = {"path": str(tmp_path / "b"), "colour": "blue"}
    deployment = Deployment.from_dict(data)
    with pytest.raises(InvalidInput, match="colour") as info:
        _ = deployment.bucket
    assert info.value.field == "<dict>: bucket"
