"""The Route 53 router against moto: the contract, plus read-backs with raw boto3.

moto never probes, so health-driven contract tests skip; resolve() still follows the health
checks' Disabled/Inverted state, which is how overrides work in Route 53's data plane.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from multiregion.errors import CorruptData, InvalidInput, PreconditionFailed
from multiregion.model import (
    Endpoint,
    EndpointStatus,
    Failover,
    Geo,
    HealthCheck,
    Latency,
    Route,
    Weighted,
)
from multiregion.providers.aws.route53 import Route53Router
from multiregion.testing.contract.harness import RouterHarness
from multiregion.testing.contract.router import RouterContract
from multiregion.testing.emulators.aws import MotoServer
from multiregion.testing.endpoints import LoopbackEndpoint, start_endpoints
from tests.aws.conftest import FAST

DOWN, AUTO = EndpointStatus.DOWN, EndpointStatus.AUTO


def _router(moto: MotoServer, zone: str, namespace: str = "default") -> Route53Router:
    return Route53Router(
        zone=zone, namespace=namespace, create_zone=True, endpoint_url=moto.url, seed=7, **FAST
    )


@pytest.fixture
def router_harness(moto: MotoServer) -> Iterator[RouterHarness]:
    started: list[LoopbackEndpoint] = []

    def endpoints(n: int) -> Sequence[LoopbackEndpoint]:
        started.extend(start_endpoints(n))
        return started[-n:]

    zone = f"z{uuid.uuid4().hex[:10]}.test"
    yield RouterHarness(
        router=_router(moto, zone),
        endpoints=endpoints,
        check=lambda port: HealthCheck("http", port, interval_s=10, failure_threshold=1),
        wait_s=1.0,
        health_driven=False,
        zone=zone,
    )
    for endpoint in started:
        endpoint.close()


class TestRoute53RouterContract(RouterContract):
    latency_regions = ("us-east-1", "eu-west-1")


def test_latency_records_need_aws_regions(router_harness: RouterHarness) -> None:
    router = router_harness.router
    servers = router_harness.endpoints(2)
    made_up = [
        Endpoint("primary", "region-a", servers[0].address),
        Endpoint("backup", "region-b", servers[1].address),
    ]
    with pytest.raises(InvalidInput) as excinfo:
        router.apply(Route(f"latency.{router_harness.zone}", made_up, Latency()))
    assert excinfo.value.field == "endpoint.region"
    endpoints = [
        Endpoint("primary", "us-east-1", servers[0].address),
        Endpoint("backup", "eu-west-1", servers[1].address),
    ]
    route = Route(f"latency.{router_harness.zone}", endpoints, Latency())
    router.apply(route)
    assert router.resolve(route.name, client_region="eu-west-1").endpoints == ("backup",)


@pytest.fixture
def zone(moto: MotoServer) -> str:
    return f"z{uuid.uuid4().hex[:10]}.test"


def _records(raw: Callable[..., Any], router: Route53Router, name: str) -> list[dict[str, Any]]:
    listed = raw("route53").list_resource_record_sets(HostedZoneId=router.zone_id)
    return [r for r in listed["ResourceRecordSets"] if r["Name"] == name + "."]


def test_failover_records_carry_the_library_checks(
    moto: MotoServer, raw: Callable[..., Any], zone: str
) -> None:
    router = _router(moto, zone)
    check = HealthCheck("http", 8080, path="/health", interval_s=10, failure_threshold=3)
    endpoints = [
        Endpoint("use1", "us-east-1", "192.0.2.1"),
        Endpoint("euw1", "eu-west-1", "192.0.2.2"),
        Endpoint("apse1", "ap-southeast-1", "192.0.2.3"),
    ]
    name = f"app.{zone}"
    route = Route(name, endpoints, Failover("use1", ["euw1", "apse1"]), health_check=check)
    router.apply(route)
    assert not router.plan(route)
    route53 = raw("route53")
    top = {r["SetIdentifier"]: r for r in _records(raw, router, name)}
    assert top["use1"]["Failover"] == "PRIMARY"
    assert top["use1"]["ResourceRecords"] == [{"Value": "192.0.2.1"}]
    assert top["euw1"]["Failover"] == "SECONDARY"
    assert top["euw1"]["AliasTarget"]["DNSName"].rstrip(".") == f"_fo1.{name}"
    assert top["euw1"]["AliasTarget"]["EvaluateTargetHealth"] is True
    chain = {r["SetIdentifier"]: r for r in _records(raw, router, f"_fo1.{name}")}
    assert (chain["euw1"]["Failover"], chain["apse1"]["Failover"]) == ("PRIMARY", "SECONDARY")
    for record, address in ((top["use1"], "192.0.2.1"), (chain["apse1"], "192.0.2.3")):
        stored = route53.get_health_check(HealthCheckId=record["HealthCheckId"])["HealthCheck"]
        config = stored["HealthCheckConfig"]
        assert (config["Type"], config["IPAddress"], config["Port"]) == ("HTTP", address, 8080)
        assert (config["ResourcePath"], config["FailureThreshold"]) == ("/health", 3)
        tags = route53.list_tags_for_resources(
            ResourceType="healthcheck", ResourceIds=[record["HealthCheckId"]]
        )["ResourceTagSets"][0]["Tags"]
        assert {"Key": "multiregion-route", "Value": name} in tags
    assert _records(raw, router, f"_multiregion.{name}")[0]["Type"] == "TXT"


def test_overrides_flip_the_health_check_and_keep_the_records(
    moto: MotoServer, raw: Callable[..., Any], zone: str
) -> None:
    router = _router(moto, zone)
    endpoints = [Endpoint("a", "us-east-1", "192.0.2.1"), Endpoint("b", "eu-west-1", "192.0.2.2")]
    name = f"ov.{zone}"
    router.apply(Route(name, endpoints, Failover("a", ["b"])))
    before = _records(raw, router, name)
    router.set_endpoint_status(name, "a", DOWN)
    assert _records(raw, router, name) == before
    primary = next(r for r in before if r["SetIdentifier"] == "a")
    config = raw("route53").get_health_check(HealthCheckId=primary["HealthCheckId"])["HealthCheck"][
        "HealthCheckConfig"
    ]
    assert (config["Type"], config["Disabled"], config["Inverted"]) == ("CALCULATED", True, True)
    router.set_endpoint_status(name, "a", EndpointStatus.UP)
    config = raw("route53").get_health_check(HealthCheckId=primary["HealthCheckId"])["HealthCheck"][
        "HealthCheckConfig"
    ]
    assert (config["Disabled"], config["Inverted"]) == (True, False)


def test_weighted_geo_records(moto: MotoServer, raw: Callable[..., Any], zone: str) -> None:
    router = _router(moto, zone)
    endpoints = [Endpoint("a", "us-east-1", "192.0.2.1"), Endpoint("b", "eu-west-1", "192.0.2.2")]
    weighted = Route(f"w.{zone}", endpoints, Weighted({"a": 3, "b": 1}))
    router.apply(weighted)
    weights = {r["SetIdentifier"]: r["Weight"] for r in _records(raw, router, f"w.{zone}")}
    assert weights == {"a": 3, "b": 1}
    geo = Route(f"g.{zone}", endpoints, Geo({"EU": "b", "US-CA": "a"}, default="a"))
    router.apply(geo)
    assert not router.plan(weighted)
    assert not router.plan(geo)
    located = {r["SetIdentifier"]: r["GeoLocation"] for r in _records(raw, router, f"g.{zone}")}
    assert located == {
        "b@EU": {"ContinentCode": "EU"},
        "a@US-CA": {"CountryCode": "US", "SubdivisionCode": "CA"},
        "a@*": {"CountryCode": "*"},
    }
    assert router.resolve(f"g.{zone}", client_region="eu").endpoints == ("b",)


@pytest.mark.parametrize(
    ("route", "field"),
    [
        (
            lambda zone: Route(f"w.{zone}", _two(), Weighted({"a": 1.5, "b": 1})),
            "policy.weights[a]",
        ),
        (
            lambda zone: Route(f"w.{zone}", _two(), Weighted({"a": 256, "b": 1})),
            "policy.weights[a]",
        ),
        (
            lambda zone: Route(f"g.{zone}", _two(), Geo({"Europe": "b"}, default="a")),
            "policy.locations",
        ),
        (
            lambda zone: Route(
                f"f.{zone}",
                _two(),
                Failover("a", ["b"]),
                health_check=HealthCheck("http", 80, interval_s=20),
            ),
            "health_check.interval_s",
        ),
        (lambda zone: Route("w.elsewhere.test", _two(), Weighted({"a": 1, "b": 1})), "name"),
    ],
)
def test_what_route53_refuses_is_refused_before_any_change(
    moto: MotoServer, raw: Callable[..., Any], zone: str, route: Callable[[str], Route], field: str
) -> None:
    router = _router(moto, zone)
    with pytest.raises(InvalidInput) as excinfo:
        router.apply(route(zone))
    assert excinfo.value.field == field
    listed = raw("route53").list_resource_record_sets(HostedZoneId=router.zone_id)
    assert {r["Type"] for r in listed["ResourceRecordSets"]} == {"NS", "SOA"}


def _two() -> list[Endpoint]:
    return [Endpoint("a", "us-east-1", "192.0.2.1"), Endpoint("b", "eu-west-1", "192.0.2.2")]


def test_delete_leaves_other_records_and_other_namespaces_alone(
    moto: MotoServer, raw: Callable[..., Any], zone: str
) -> None:
    router = _router(moto, zone)
    name = f"shared.{zone}"
    route53 = raw("route53")
    route53.change_resource_record_sets(
        HostedZoneId=router.zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": "MX",
                        "TTL": 300,
                        "ResourceRecords": [{"Value": "10 mail.example.test"}],
                    },
                }
            ]
        },
    )
    router.apply(Route(name, _two(), Failover("a", ["b"])))
    other = _router(moto, zone, namespace="someone-else")
    assert other.list() == []
    with pytest.raises(PreconditionFailed):
        other.apply(Route(name, _two(), Failover("b", ["a"])))
    checks_before = len(route53.list_health_checks()["HealthChecks"])
    router.delete(name)
    assert [r["Type"] for r in _records(raw, router, name)] == ["MX"]
    assert len(route53.list_health_checks()["HealthChecks"]) == checks_before - 2


def test_list_pages_through_a_large_zone(
    moto: MotoServer, raw: Callable[..., Any], zone: str
) -> None:
    router = _router(moto, zone)
    filler = [
        {
            "Action": "CREATE",
            "ResourceRecordSet": {
                "Name": f"filler{i:04d}.{zone}",
                "Type": "A",
                "TTL": 60,
                "ResourceRecords": [{"Value": "192.0.2.9"}],
            },
        }
        for i in range(450)
    ]
    raw("route53").change_resource_record_sets(
        HostedZoneId=router.zone_id, ChangeBatch={"Changes": filler}
    )
    router.apply(Route(f"zzz.{zone}", _two(), Failover("a", ["b"])))
    router.apply(Route(f"aaa.{zone}", _two(), Failover("a", ["b"])))
    assert router.list() == [f"aaa.{zone}", f"zzz.{zone}"]
    assert not router.plan(Route(f"zzz.{zone}", _two(), Failover("a", ["b"])))


def test_failover_chain_answers_in_order(moto: MotoServer, zone: str) -> None:
    router = _router(moto, zone)
    three = [*_two(), Endpoint("c", "ap-southeast-1", "192.0.2.3")]
    name = f"chain.{zone}"
    router.apply(Route(name, three, Failover("a", ["b", "c"])))
    assert router.resolve(name).endpoints == ("a",)
    router.set_endpoint_status(name, "a", DOWN)
    assert router.resolve(name).endpoints == ("b",)
    router.set_endpoint_status(name, "b", DOWN)
    answer = router.resolve(name)
    assert (answer.endpoints, answer.records) == (("c",), ("192.0.2.3",))


def test_drift_is_planned_and_repaired(
    moto: MotoServer, raw: Callable[..., Any], zone: str
) -> None:
    router = _router(moto, zone)
    name = f"drift.{zone}"
    route = Route(name, _two(), Failover("a", ["b"]))
    router.apply(route)
    primary = next(r for r in _records(raw, router, name) if r["SetIdentifier"] == "a")
    tampered = {**primary, "ResourceRecords": [{"Value": "198.51.100.7"}]}
    raw("route53").change_resource_record_sets(
        HostedZoneId=router.zone_id,
        ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": tampered}]},
    )
    plan = router.plan(route)
    assert [(c.action, c.subject) for c in plan.changes] == [("update", "records")]
    router.apply(route)
    restored = next(r for r in _records(raw, router, name) if r["SetIdentifier"] == "a")
    assert restored["ResourceRecords"] == [{"Value": "192.0.2.1"}]
    assert not router.plan(route)


def test_a_tampered_route_record_is_corrupt_data(
    moto: MotoServer, raw: Callable[..., Any], zone: str
) -> None:
    router = _router(moto, zone)
    name = f"tampered.{zone}"
    router.apply(Route(name, _two(), Failover("a", ["b"])))
    meta = _records(raw, router, f"_multiregion.{name}")[0]
    raw("route53").change_resource_record_sets(
        HostedZoneId=router.zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {**meta, "ResourceRecords": [{"Value": '"{not json"'}]},
                }
            ]
        },
    )
    with pytest.raises(CorruptData):
        router.get(name)
