"""Deployment specs: valid ones connect, wrong ones name the file, the key and the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multiregion import Failover, InvalidInput, Weighted, specfile
from multiregion.deployment import Deployment, load, parse
from multiregion.specfile import SpecError

EXAMPLES = Path(__file__).parent.parent / "examples"

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


def test_settings_a_provider_does_not_take_are_refused_before_anything_is_built(
    tmp_path: Path,
) -> None:
    data = load_dict()
    data["bucket"] = {"path": str(tmp_path / "b"), "colour": "blue"}
    with pytest.raises(InvalidInput, match="colour") as info:
        Deployment.from_dict(data)
    assert info.value.field == "<dict>: bucket"
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(
    ("change", "path", "meant"),
    [
        (lambda d: d["store"].update(lag_sec=1), "store", "lag_s"),
        (
            lambda d: d["health_check"].update(failure_treshold=3),
            "health_check",
            "failure_threshold",
        ),
        (lambda d: d.update(stor={"path": "x"}), "", "store"),
        (lambda d: d["route"].update(tll=5), "route", "ttl"),
        (lambda d: d["regions"][0].update(endpiont="127.0.0.9"), "regions[0]", "endpoint"),
    ],
)
def test_a_near_miss_name_is_reported_with_the_name_meant(change, path: str, meant: str) -> None:
    data = load_dict()
    change(data)
    with pytest.raises(SpecError) as info:
        parse(data, source="deploy.toml")
    assert info.value.field == f"deploy.toml: {path}"
    assert f"did you mean {meant!r}?" in info.value.problem


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda d: d["health_check"].update(port="8080"), "health_check.port"),
        (lambda d: d["health_check"].update(interval_s=True), "health_check.interval_s"),
        (lambda d: d["route"].update(ttl="5"), "route.ttl"),
        (lambda d: d["route"].update(order="region-a"), "route.order"),
        (lambda d: d["store"].update(lag_s="fast"), "store.lag_s"),
        (lambda d: d["store"].update(replicate=1), "store.replicate"),
        (lambda d: d["regions"][1].update(endpoint=3), "regions[1].endpoint"),
        (lambda d: d.update(regions={"name": "region-a"}), "regions"),
        (lambda d: d.update(bucket={"part_size": 4096}), "bucket.path"),
        (lambda d: d["route"].update(order=[1, "region-b"]), "route.order[0]"),
    ],
)
def test_a_wrong_type_is_refused_at_its_table_path(change, path: str) -> None:
    data = load_dict()
    change(data)
    with pytest.raises(SpecError) as info:
        parse(data, source="deploy.toml")
    assert [p.path for p in info.value.problems] == [path]


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = SPEC.replace("interval_s = 1", "interval_s = 1\nfailure_treshold = 3")
    text = text.replace('path = "state/store"', 'path = "state/store"\nlag_sec = 1')
    text = text.replace("ttl = 5", 'ttl = "5"')
    with pytest.raises(SpecError) as info:
        load(write(tmp_path, text))
    assert sorted(p.path for p in info.value.problems) == ["health_check", "route.ttl", "store"]
    assert "3 problems" in str(info.value)


def test_the_shipped_json_schema_is_the_one_the_model_makes() -> None:
    assert specfile.shipped_schema() == specfile.render_schema(), (
        "an adapter's settings or a spec table changed: run `make schema`"
    )


def test_the_json_schema_accepts_the_examples_and_refuses_a_near_miss() -> None:
    import tomllib

    jsonschema = pytest.importorskip("jsonschema")
    checker = jsonschema.Draft202012Validator(json.loads(specfile.shipped_schema()))
    for example in sorted(EXAMPLES.glob("*/deploy.*.toml")):
        data = tomllib.loads(example.read_text())
        assert list(checker.iter_errors(data)) == [], example
        load(example)  # and the loader agrees
    data = load_dict()
    data["health_check"]["failure_treshold"] = 3
    assert list(checker.iter_errors(data))


def test_the_spec_repr_shows_no_key() -> None:
    data = load_dict()
    data["store"] = {
        "provider": "azure",
        "endpoint": "https://a.documents.azure.com/",
        "database": "d",
        "container": "c",
        "key": "CANARY-COSMOS-KEY",
    }
    spec = parse(data)
    assert spec.settings["store"]["key"] == "CANARY-COSMOS-KEY"
    assert "CANARY" not in repr(spec)


@pytest.mark.parametrize(("provider", "journal_in"), [("local", "file"), ("aws", "bucket")])
def test_a_runbook_journal_defaults_to_where_a_lost_write_region_cannot_block_it(
    tmp_path: Path, provider: str, journal_in: str
) -> None:
    """Not the store: a recovery from the loss of its write region could not write there."""
    text = SPEC if provider == "local" else SPEC.split("[store]")[0]
    text = text.replace('provider = "local"', f'provider = "{provider}"', 1)
    spec = load(write(tmp_path, text + '\n[runbook]\nfile = "recovery.py"\n'))
    assert spec.runbook is not None
    assert spec.runbook.journal_in == journal_in
