"""CloudDnsRouter on the Cloud DNS + Compute fake: the router contract, read-backs of record
sets and health checks through the raw REST clients, and what Cloud DNS cannot express."""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import pytest

from multiregion.errors import InvalidInput, Unsupported
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
from multiregion.providers.gcp.clouddns import CloudDnsRouter
from multiregion.testing.contract.harness import RouterHarness
from multiregion.testing.contract.router import RouterContract
from multiregion.testing.endpoints import LoopbackEndpoint, start_endpoints
from multiregion.testing.fakes.clouddns import CloudDnsFake
from tests.gcp.conftest import create_zone, fresh_project, raw_apis

ZONE = "routes-zone"
DOMAIN = "app.example.test"


def gcp_check(port: int) -> HealthCheck:
    return HealthCheck(
        "http", port, interval_s=30, timeout_s=10, failure_threshold=2, expected_status=(200, 200)
    )


def open_router(fake: CloudDnsFake, project: str) -> CloudDnsRouter:
    host, port = fake.dns_address
    return CloudDnsRouter(
        project=project,
        zone=ZONE,
        endpoint=fake.url,
        nameserver=f"{host}:{port}",
        num_retries=0,
        timeout_s=10,
    )


@pytest.fixture
def project(clouddns_fake: CloudDnsFake) -> str:
    project = fresh_project()
    create_zone(clouddns_fake, project, ZONE, DOMAIN)
    return project


@pytest.fixture
def router(clouddns_fake: CloudDnsFake, project: str) -> CloudDnsRouter:
    return open_router(clouddns_fake, project)


@pytest.fixture
def servers() -> Iterator[list[LoopbackEndpoint]]:
    started: list[LoopbackEndpoint] = []
    yield started
    for endpoint in started:
        endpoint.close()


@pytest.fixture
def router_harness(
    clouddns_fake: CloudDnsFake, router: CloudDnsRouter, servers: list[LoopbackEndpoint]
) -> Iterator[RouterHarness]:
    def endpoints(n: int) -> Sequence[LoopbackEndpoint]:
        group = start_endpoints(n, "http")
        servers.extend(group)
        return group

    yield RouterHarness(
        router=router,
        endpoints=endpoints,
        check=gcp_check,
        wait_s=4.0,
        zone=DOMAIN,
        regions=("us-east1", "europe-west1", "asia-east1"),
    )
    for name in router.list():
        router.delete(name)


class TestCloudDnsRouter(RouterContract):
    geo_location = "europe-west3"


def _rrset(fake: CloudDnsFake, project: str, name: str, rtype: str) -> dict[str, Any]:
    dns, _ = raw_apis(fake)
    found = dns.resourceRecordSets().list(project=project, managedZone=ZONE, name=name).execute()
    [rrset] = [r for r in found["rrsets"] if r["type"] == rtype]
    return dict(rrset)


def _failover_route(servers: list[LoopbackEndpoint], check: HealthCheck | None) -> Route:
    servers.extend(start_endpoints(2, "http"))
    return Route(
        f"www.{DOMAIN}",
        [Endpoint("primary", "us-east1", servers[0].address),
         Endpoint("backup", "europe-west1", servers[1].address)],
        Failover("primary", ["backup"]),
        ttl=30,
        health_check=check,
    )  # fmt: skip


def test_failover_is_primary_backup_with_a_compute_check(
    clouddns_fake: CloudDnsFake,
    project: str,
    router: CloudDnsRouter,
    servers: list[LoopbackEndpoint],
) -> None:
    route = _failover_route(servers, None)
    route = Route(route.name, route.endpoints, route.policy, 30, gcp_check(servers[0].port))
    router.apply(route)
    rrset = _rrset(clouddns_fake, project, f"www.{DOMAIN}.", "A")
    policy = rrset["routingPolicy"]
    check_name = policy["healthCheck"].rsplit("/", 1)[-1]
    assert policy["primaryBackup"]["primaryTargets"]["externalEndpoints"] == [servers[0].address]
    [backup] = policy["primaryBackup"]["backupGeoTargets"]["items"]
    assert backup["location"] == "europe-west1"
    assert backup["healthCheckedTargets"]["externalEndpoints"] == [servers[1].address]
    assert policy["primaryBackup"]["trickleTraffic"] == 0.0
    _, compute = raw_apis(clouddns_fake)
    check = compute.healthChecks().get(project=project, healthCheck=check_name).execute()
    assert (check["type"], check["checkIntervalSec"], check["unhealthyThreshold"]) == (
        "HTTP",
        30,
        2,
    )
    assert check["httpHealthCheck"]["port"] == servers[0].port
    assert len(check["sourceRegions"]) == 3
    meta = _rrset(clouddns_fake, project, f"_multiregion.www.{DOMAIN}.", "TXT")
    assert meta["rrdatas"]

    router.set_endpoint_status(route.name, "primary", EndpointStatus.DOWN)
    forced = _rrset(clouddns_fake, project, f"www.{DOMAIN}.", "A")
    assert forced == {**forced, "rrdatas": [servers[1].address]}
    assert "routingPolicy" not in forced

    router.delete(route.name)
    with pytest.raises(Exception, match="not found"):
        compute.healthChecks().get(project=project, healthCheck=check_name).execute()


def test_weighted_is_wrr_and_geo_is_geo_with_regions(
    clouddns_fake: CloudDnsFake,
    project: str,
    router: CloudDnsRouter,
    servers: list[LoopbackEndpoint],
) -> None:
    route = _failover_route(servers, None)
    weighted = Route(f"w.{DOMAIN}", route.endpoints, Weighted({"primary": 3, "backup": 1}))
    router.apply(weighted)
    items = _rrset(clouddns_fake, project, f"w.{DOMAIN}.", "A")["routingPolicy"]["wrr"]["items"]
    assert [(i["weight"], i["rrdatas"]) for i in items] == [
        (1, [servers[1].address]),
        (3, [servers[0].address]),
    ]
    geo = Route(f"g.{DOMAIN}", route.endpoints, Geo({"europe-west1": "backup"}, "primary"))
    router.apply(geo)
    policy = _rrset(clouddns_fake, project, f"g.{DOMAIN}.", "A")["routingPolicy"]["geo"]
    assert [(i["location"], i["rrdatas"]) for i in policy["items"]] == [
        ("us-east1", [servers[0].address]),
        ("europe-west1", [servers[1].address]),
    ]
    assert router.resolve(geo.name, client_region="europe-west1").endpoints == ("backup",)
    assert router.resolve(geo.name, client_region="us-east1").endpoints == ("primary",)
    assert router.get(geo.name) == geo


def test_latency_and_inexpressible_routes_are_unsupported_and_write_nothing(
    clouddns_fake: CloudDnsFake,
    project: str,
    router: CloudDnsRouter,
    servers: list[LoopbackEndpoint],
) -> None:
    base = _failover_route(servers, None)
    servers.extend(start_endpoints(1, "http"))
    third = Endpoint("third", "asia-east1", servers[2].address)
    check = gcp_check(servers[0].port)
    refused = [
        Route(f"l.{DOMAIN}", base.endpoints, Latency()),
        Route(
            f"f.{DOMAIN}",
            [*base.endpoints, third],
            Failover("primary", ["backup", "third"]),
            health_check=check,
        ),
        Route(
            f"c.{DOMAIN}",
            [
                Endpoint("a", "us-east1", "a.origin.test"),
                Endpoint("b", "us-west1", "b.origin.test"),
            ],
            Failover("a", ["b"]),
            health_check=check,
        ),
        Route(f"g.{DOMAIN}", base.endpoints, Geo({"us-east1": "backup"}, "primary")),
    ]
    for route in refused:
        with pytest.raises(Unsupported):
            router.apply(route)
    assert router.list() == []
    dns, compute = raw_apis(clouddns_fake)
    assert compute.healthChecks().list(project=project).execute().get("items", []) == []
    rrsets = dns.resourceRecordSets().list(project=project, managedZone=ZONE).execute()["rrsets"]
    assert {r["type"] for r in rrsets} == {"SOA", "NS"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"interval_s": 10, "timeout_s": 5}, "health_check.interval_s"),
        ({"expected_status": (200, 299)}, "health_check.expected_status"),
    ],
)
def test_checks_compute_cannot_run_are_invalid_before_any_call(
    router: CloudDnsRouter, servers: list[LoopbackEndpoint], change: dict[str, Any], field: str
) -> None:
    base = _failover_route(servers, None)
    fields: dict[str, Any] = {"interval_s": 30, "timeout_s": 5, "expected_status": (200, 200)}
    check = HealthCheck("http", servers[0].port, **{**fields, **change})
    with pytest.raises(InvalidInput) as caught:
        router.apply(Route(base.name, base.endpoints, base.policy, health_check=check))
    assert caught.value.field == field
    assert router.list() == []


def test_geo_locations_must_be_regions(
    router: CloudDnsRouter, servers: list[LoopbackEndpoint]
) -> None:
    base = _failover_route(servers, None)
    with pytest.raises(InvalidInput) as caught:
        router.apply(Route(f"g.{DOMAIN}", base.endpoints, Geo({"DE": "backup"}, "primary")))
    assert caught.value.field == "policy.locations"


def test_names_outside_the_zone_are_refused(router: CloudDnsRouter) -> None:
    with pytest.raises(InvalidInput) as caught:
        router.get("www.elsewhere.test")
    assert caught.value.field == "name"


def test_meta_record_round_trips_overrides_for_a_second_handle(
    clouddns_fake: CloudDnsFake,
    project: str,
    router: CloudDnsRouter,
    servers: list[LoopbackEndpoint],
) -> None:
    route = _failover_route(servers, None)
    router.apply(route)
    router.set_endpoint_status(route.name, "backup", EndpointStatus.DOWN)
    other = open_router(clouddns_fake, project)
    assert other.get(route.name) == route
    assert other.endpoint_status(route.name)["backup"] is EndpointStatus.DOWN
    assert json.dumps(other.list()) == json.dumps([route.name])


def test_a_missing_zone_is_not_found_and_a_stopped_fake_unavailable() -> None:
    from multiregion.errors import NotFound, Unavailable

    with CloudDnsFake() as fake:
        router = open_router(fake, fresh_project())
        with pytest.raises(NotFound):
            router.list()
    with pytest.raises(Unavailable):
        router.list()


@pytest.mark.parametrize(
    ("policy", "regions", "check", "field"),
    [
        (
            Geo({"europe-west99": "backup"}, "primary"),
            ("us-east1", "europe-west1"),
            False,
            "policy.locations",
        ),
        (
            Geo({"eu-west-1": "backup"}, "primary"),
            ("us-east1", "europe-west1"),
            False,
            "policy.locations",
        ),
        (
            Geo({"europe-west3": "backup"}, "primary"),
            ("region-a", "europe-west1"),
            False,
            "endpoint.region",
        ),
        (Failover("primary", ["backup"]), ("us-east1", "westeurope"), True, "endpoint.region"),
    ],
)
def test_locations_must_be_google_cloud_regions(
    router: CloudDnsRouter,
    servers: list[LoopbackEndpoint],
    policy: Any,
    regions: tuple[str, str],
    check: bool,
    field: str,
) -> None:
    servers.extend(start_endpoints(2, "http"))
    endpoints = [
        Endpoint("primary", regions[0], servers[-2].address),
        Endpoint("backup", regions[1], servers[-1].address),
    ]
    health = gcp_check(servers[-2].port) if check else None
    with pytest.raises(InvalidInput) as caught:
        router.apply(Route(f"loc.{DOMAIN}", endpoints, policy, health_check=health))
    assert caught.value.field == field
    assert router.list() == []


def test_a_ttl_changed_out_of_band_is_planned_as_drift_and_repaired(
    clouddns_fake: CloudDnsFake,
    project: str,
    router: CloudDnsRouter,
    servers: list[LoopbackEndpoint],
) -> None:
    route = _failover_route(servers, None)
    router.apply(route)
    served = _rrset(clouddns_fake, project, f"www.{DOMAIN}.", "A")
    dns, _ = raw_apis(clouddns_fake)
    change = {"deletions": [served], "additions": [{**served, "ttl": 3600}]}
    dns.changes().create(project=project, managedZone=ZONE, body=change).execute()
    plan = router.plan(route)
    assert [(c.action, c.subject) for c in plan.changes] == [("update", "records")]
    assert router.apply(route) == plan
    assert _rrset(clouddns_fake, project, f"www.{DOMAIN}.", "A")["ttl"] == 30
    assert not router.plan(route)


def test_a_health_check_changed_out_of_band_is_planned_as_drift_and_repaired(
    clouddns_fake: CloudDnsFake,
    project: str,
    router: CloudDnsRouter,
    servers: list[LoopbackEndpoint],
) -> None:
    route = attrs.evolve(_failover_route(servers, None), health_check=gcp_check(servers[0].port))
    router.apply(route)
    check_name = _rrset(clouddns_fake, project, f"www.{DOMAIN}.", "A")["routingPolicy"][
        "healthCheck"
    ].rsplit("/", 1)[-1]
    _, compute = raw_apis(clouddns_fake)
    checks = compute.healthChecks()
    stored = checks.get(project=project, healthCheck=check_name).execute()
    changed = {**stored, "checkIntervalSec": 60}
    checks.update(project=project, healthCheck=check_name, body=changed).execute()
    plan = router.plan(route)
    assert [(c.action, c.subject) for c in plan.changes] == [("update", "health_check")]
    assert router.apply(route) == plan
    repaired = checks.get(project=project, healthCheck=check_name).execute()
    assert repaired["checkIntervalSec"] == 30
    assert not router.plan(route)


def test_one_router_answers_from_many_threads_at_once(
    router: CloudDnsRouter, servers: list[LoopbackEndpoint]
) -> None:
    """httplib2 is not thread-safe: a connection shared by threads mixes up their responses
    (an AttributeError out of the SDK) or hangs. Each thread has its own."""
    route = attrs.evolve(_failover_route(servers, None), name=f"threads.{DOMAIN}")
    router.apply(route)  # a name of its own: the fake's DNS server answers for every project
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: router.resolve(route.name), range(48)))
    assert {a.endpoints for a in answers} == {("primary",)}
