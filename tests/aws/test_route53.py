"""The Route 53 router against moto: the contract, plus read-backs with raw boto3.

moto never probes, so health-driven contract tests skip; resolve() still follows the health
checks' Disabled/Inverted state, which is how overrides work in Route 53's data plane.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from multiregion.errors import CorruptData, InvalidInput, MultiregionError, PreconditionFailed
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
from multiregion.providers.aws.healthchecks import RateLimit, check_config
from multiregion.providers.aws.route53 import Route53Router
from multiregion.providers.aws.route53_rules import data as route53_rules_data
from multiregion.testing.contract.harness import RouterHarness
from multiregion.testing.contract.router import RouterContract
from multiregion.testing.endpoints import LoopbackEndpoint, start_endpoints
from tests.aws.conftest import FAST
from tests.aws.route53_rules import Route53Rules

DOWN, AUTO = EndpointStatus.DOWN, EndpointStatus.AUTO


def _router(route53_rules: Route53Rules, zone: str, namespace: str = "default") -> Route53Router:
    return Route53Router(
        zone=zone,
        namespace=namespace,
        create_zone=True,
        endpoint_url=route53_rules.url,
        seed=7,
        **FAST,
    )


@pytest.fixture
def router_harness(route53_rules: Route53Rules) -> Iterator[RouterHarness]:
    started: list[LoopbackEndpoint] = []

    def endpoints(n: int) -> Sequence[LoopbackEndpoint]:
        started.extend(start_endpoints(n))
        return started[-n:]

    zone = f"z{uuid.uuid4().hex[:10]}.test"
    yield RouterHarness(
        router=_router(route53_rules, zone),
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
def zone(route53_rules: Route53Rules) -> str:
    return f"z{uuid.uuid4().hex[:10]}.test"


def _records(raw: Callable[..., Any], router: Route53Router, name: str) -> list[dict[str, Any]]:
    listed = raw("route53").list_resource_record_sets(HostedZoneId=router.zone_id)
    return [r for r in listed["ResourceRecordSets"] if r["Name"] == name + "."]


def test_failover_records_carry_the_library_checks(
    route53_rules: Route53Rules, raw: Callable[..., Any], zone: str
) -> None:
    router = _router(route53_rules, zone)
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
    route53_rules: Route53Rules, raw: Callable[..., Any], zone: str
) -> None:
    router = _router(route53_rules, zone)
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


def test_weighted_geo_records(
    route53_rules: Route53Rules, raw: Callable[..., Any], zone: str
) -> None:
    router = _router(route53_rules, zone)
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
    route53_rules: Route53Rules,
    raw: Callable[..., Any],
    zone: str,
    route: Callable[[str], Route],
    field: str,
) -> None:
    router = _router(route53_rules, zone)
    with pytest.raises(InvalidInput) as excinfo:
        router.apply(route(zone))
    assert excinfo.value.field == field
    listed = raw("route53").list_resource_record_sets(HostedZoneId=router.zone_id)
    assert {r["Type"] for r in listed["ResourceRecordSets"]} == {"NS", "SOA"}


def _two() -> list[Endpoint]:
    return [Endpoint("a", "us-east-1", "192.0.2.1"), Endpoint("b", "eu-west-1", "192.0.2.2")]


def test_delete_leaves_other_records_and_other_namespaces_alone(
    route53_rules: Route53Rules, raw: Callable[..., Any], zone: str
) -> None:
    router = _router(route53_rules, zone)
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
    other = _router(route53_rules, zone, namespace="someone-else")
    assert other.list() == []
    with pytest.raises(PreconditionFailed):
        other.apply(Route(name, _two(), Failover("b", ["a"])))
    checks_before = len(route53.list_health_checks()["HealthChecks"])
    router.delete(name)
    assert [r["Type"] for r in _records(raw, router, name)] == ["MX"]
    assert len(route53.list_health_checks()["HealthChecks"]) == checks_before - 2


def test_list_pages_through_a_large_zone(
    route53_rules: Route53Rules, raw: Callable[..., Any], zone: str
) -> None:
    router = _router(route53_rules, zone)
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


def test_failover_chain_answers_in_order(route53_rules: Route53Rules, zone: str) -> None:
    router = _router(route53_rules, zone)
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
    route53_rules: Route53Rules, raw: Callable[..., Any], zone: str
) -> None:
    router = _router(route53_rules, zone)
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
    route53_rules: Route53Rules, raw: Callable[..., Any], zone: str
) -> None:
    router = _router(route53_rules, zone)
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


# --------------------------------------------------------------------------- Route 53's rules


def _our_checks(raw: Callable[..., Any], router: Route53Router) -> list[dict[str, Any]]:
    pages = raw("route53").get_paginator("list_health_checks").paginate()
    return [
        c
        for page in pages
        for c in page["HealthChecks"]
        if c["CallerReference"].startswith(router._prefix)
    ]


def _kinds(raw: Callable[..., Any], router: Route53Router, name: str) -> set[str]:
    keys = ("Failover", "Weight", "Region", "GeoLocation")
    return {next(k for k in keys if k in r) for r in _records(raw, router, name)}


def test_a_policy_change_replaces_the_records_in_one_batch(
    route53_rules: Route53Rules, raw: Callable[..., Any], zone: str
) -> None:
    """Route 53 refuses mixed routing policies under one name and type, and an UPSERT of a
    record into another policy: each change is one batch of DELETEs then CREATEs."""
    router = _router(route53_rules, zone)
    name = f"moving.{zone}"
    policies = [
        (Failover("a", ["b"]), {"Failover"}),
        (Weighted({"a": 1, "b": 2}), {"Weight"}),
        (Latency(), {"Region"}),
        (Weighted({"a": 2, "b": 1}), {"Weight"}),
        (Failover("b", ["a"]), {"Failover"}),
    ]
    for policy, kinds in policies:
        batches = route53_rules.count("ChangeResourceRecordSets")
        route = Route(name, _two(), policy)
        router.apply(route)
        assert route53_rules.count("ChangeResourceRecordSets") == batches + 1
        assert _kinds(raw, router, name) == kinds
        assert not router.plan(route)
        assert router.get(name) == route


def test_the_spec_fits_route53_limits_at_250_locations(
    route53_rules: Route53Rules, raw: Callable[..., Any], zone: str
) -> None:
    countries = route53_rules_data()["countries"]
    locations = [*countries, "EU", "AS", "NA"][:250]
    assert len(locations) == 250
    name = f"world.{zone}"
    route = Route(
        name,
        _two(),
        Geo({loc: ("a" if i % 2 else "b") for i, loc in enumerate(locations)}, default="a"),
    )
    router = _router(route53_rules, zone)
    router.apply(route)
    assert router.get(name) == route
    assert not router.plan(route)
    values = _records(raw, router, f"_multiregion.{name}")[0]["ResourceRecords"]
    assert all(len(v["Value"]) <= 4000 for v in values)
    assert len(_records(raw, router, name)) == 251


def test_a_refused_batch_leaves_no_health_check_behind(
    route53_rules: Route53Rules, raw: Callable[..., Any], zone: str
) -> None:
    router = _router(route53_rules, zone, namespace=zone)
    name = f"blocked.{zone}"
    blocker = {
        "Name": name,
        "Type": "A",
        "TTL": 60,
        "ResourceRecords": [{"Value": "192.0.2.50"}],
    }
    route53 = raw("route53")
    change = {"Action": "CREATE", "ResourceRecordSet": blocker}
    route53.change_resource_record_sets(
        HostedZoneId=router.zone_id, ChangeBatch={"Changes": [change]}
    )
    route = Route(name, _two(), Weighted({"a": 1, "b": 1}))
    for _attempt in range(2):  # a simple record there: Route 53 refuses weighted ones
        with pytest.raises(MultiregionError):
            router.apply(route)
        assert _our_checks(raw, router) == []
    change["Action"] = "DELETE"
    route53.change_resource_record_sets(
        HostedZoneId=router.zone_id, ChangeBatch={"Changes": [change]}
    )
    router.apply(route)
    assert len(_our_checks(raw, router)) == 2


def test_concurrent_applies_share_their_health_checks(
    route53_rules: Route53Rules, raw: Callable[..., Any], zone: str
) -> None:
    """CallerReference derives from route, endpoint and settings: a second apply that
    creates the same checks gets the first one's back from Route 53, not new ones."""
    first, second = (_router(route53_rules, zone, namespace=zone) for _ in "12")
    route = Route(f"twice.{zone}", _two(), Weighted({"a": 1, "b": 1}))
    route53_rules.batch_barrier = threading.Barrier(2, timeout=60)
    try:
        with ThreadPoolExecutor(2) as pool:
            done = [pool.submit(r.apply, route) for r in (first, second)]
            for future in done:
                future.result()
    finally:
        route53_rules.batch_barrier = None
    assert len(_our_checks(raw, first)) == 2
    assert not first.plan(route)


def _lat(zone: str, region: str) -> Route:
    endpoints = [Endpoint("a", region, "192.0.2.1"), Endpoint("b", "us-east-1", "192.0.2.2")]
    return Route(f"lat.{zone}", endpoints, Latency())


def _geo(zone: str, location: str) -> Route:
    return Route(f"geo.{zone}", _two(), Geo({location: "b"}, default="a"))


@pytest.mark.parametrize(
    ("route", "code", "field"),
    [
        *((_lat, r, None) for r in ("eusc-de-east-1", "us-gov-west-1", "cn-northwest-1")),
        *((_lat, r, "endpoint.region") for r in ("xx-fake-1", "eu-west-9")),
        *((_geo, c, None) for c in ("UA", "US-DC", "AN")),
        *((_geo, c, "policy.locations") for c in ("ZZ", "US-ZZ", "FR-75", "EU-DE")),
    ],
)
def test_regions_and_geo_codes_are_the_ones_route53_documents(
    route53_rules: Route53Rules,
    zone: str,
    route: Callable[[str, str], Route],
    code: str,
    field: str | None,
) -> None:
    router = _router(route53_rules, zone)
    if field is None:
        router.apply(route(zone, code))
        assert router.get(route(zone, code).name) == route(zone, code)
    else:
        with pytest.raises(InvalidInput) as excinfo:
            router.plan(route(zone, code))
        assert excinfo.value.field == field


@pytest.mark.parametrize("address", ["10.1.2.3", "127.0.0.1", "169.254.1.1", "::1", "224.0.0.1"])
def test_health_checks_on_unreachable_addresses_are_refused_outside_emulators(
    address: str,
) -> None:
    check = HealthCheck("http", 80, interval_s=10)
    with pytest.raises(InvalidInput) as excinfo:
        check_config(address, check)
    assert excinfo.value.field == "target"
    assert check_config(address, check, private_ok=True)["IPAddress"] == address
    assert check_config("8.8.8.8", check)["IPAddress"] == "8.8.8.8"


def test_an_update_of_a_100_endpoint_route_sends_no_needless_check_call(
    route53_rules: Route53Rules, zone: str
) -> None:
    router = _router(route53_rules, zone)
    endpoints = [Endpoint(f"e{i}", "us-east-1", f"198.51.100.{i + 1}") for i in range(100)]
    weights = {e.name: 1 for e in endpoints}
    route = Route(f"hundred.{zone}", endpoints, Weighted(weights), ttl=60)
    router.apply(route)
    assert route53_rules.max_overlap("CreateHealthCheck") >= 2  # sent concurrently
    update = Route(route.name, endpoints, Weighted(weights), ttl=30)
    before = Counter(c.operation for c in route53_rules.calls)
    router.plan(update)
    planned = Counter(c.operation for c in route53_rules.calls) - before
    before = Counter(c.operation for c in route53_rules.calls)
    router.apply(update)
    sent = Counter(c.operation for c in route53_rules.calls) - before
    for operation in ("CreateHealthCheck", "UpdateHealthCheck", "GetHealthCheck"):
        assert sent[operation] == 0, sent
    assert sent["ChangeResourceRecordSets"] == 1
    # apply works from what its plan read: the records are listed once, not again
    assert sent["ListResourceRecordSets"] == planned["ListResourceRecordSets"] > 0, sent


def test_the_rate_limit_spaces_requests() -> None:
    limit = RateLimit(50.0)
    started = time.monotonic()
    for _ in range(21):
        limit.wait()
    assert time.monotonic() - started >= 0.39
