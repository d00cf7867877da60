"""What only the Traffic Manager adapters promise, read back with the raw management SDK."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.mgmt.trafficmanager import TrafficManagerManagementClient

from multiregion import registry
from multiregion.errors import (
    AuthError,
    InvalidInput,
    MultiregionError,
    NotFound,
    Unavailable,
    Unsupported,
)
from multiregion.model import (
    Endpoint,
    EndpointStatus,
    Failover,
    Geo,
    HealthCheck,
    Latency,
    ProbeTarget,
    Route,
    Weighted,
)
from multiregion.providers.azure.monitoring import TrafficManagerProbe
from multiregion.providers.azure.profiles import profile_name
from multiregion.providers.azure.trafficmanager import TrafficManagerRouter
from multiregion.testing.endpoints import LoopbackEndpoint
from multiregion.testing.fakes.trafficmanager import FakeCredential, TrafficManagerFake
from tests.azure.conftest import SUBSCRIPTION, arm_settings

ENDPOINTS = (
    Endpoint("primary", "westeurope", "127.0.0.10"),
    Endpoint("backup", "northeurope", "127.0.0.11"),
    Endpoint("third", "eastus", "127.0.0.12"),
)
CHECK = HealthCheck(
    "https", 8443, "/health", interval_s=30, timeout_s=10, failure_threshold=4, host="app.test"
)


@pytest.fixture
def settings(traffic_manager: TrafficManagerFake) -> dict[str, Any]:
    return arm_settings(traffic_manager)


@pytest.fixture
def router(settings: dict[str, Any]) -> Iterator[TrafficManagerRouter]:
    built = TrafficManagerRouter(**settings, seed=1)
    yield built
    for name in built.list():
        built.delete(name)
    built.close()


@pytest.fixture
def raw(traffic_manager: TrafficManagerFake) -> Iterator[TrafficManagerManagementClient]:
    client = TrafficManagerManagementClient(
        traffic_manager.credential(),
        SUBSCRIPTION,
        base_url=traffic_manager.url,
        connection_verify=traffic_manager.ca_path,
    )
    yield client
    client.close()


def read(raw: TrafficManagerManagementClient, settings: dict[str, Any], name: str) -> Any:
    return raw.profiles.get(settings["resource_group"], profile_name("route", name))


def endpoints_of(profile: Any) -> dict[str, Any]:
    return {e.name: e.properties for e in profile.properties.endpoints}


def test_failover_is_a_priority_profile_monitored_by_the_check(
    router: TrafficManagerRouter, raw: TrafficManagerManagementClient, settings: dict[str, Any]
) -> None:
    route = Route(
        "app.example.test",
        ENDPOINTS,
        Failover("backup", ["third", "primary"]),
        ttl=20,
        health_check=CHECK,
    )
    router.apply(route)
    profile = read(raw, settings, route.name)
    props = profile.properties
    assert props.traffic_routing_method == "Priority"
    assert props.dns_config.ttl == 20
    monitor = props.monitor_config
    assert (monitor.protocol, monitor.port, monitor.path) == ("HTTPS", 8443, "/health")
    assert (monitor.interval_in_seconds, monitor.timeout_in_seconds) == (30, 10)
    assert monitor.tolerated_number_of_failures == 3
    assert [(h.name, h.value) for h in monitor.custom_headers] == [("Host", "app.test")]
    found = endpoints_of(profile)
    assert {n: p.priority for n, p in found.items()} == {"backup": 1, "third": 2, "primary": 3}
    assert {p.target for p in found.values()} == {e.target for e in ENDPOINTS}
    assert all(
        p.endpoint_status == "Enabled" and p.always_serve == "Disabled" for p in found.values()
    )
    assert profile.tags["multiregion-route"] == route.name


def test_weights_and_zero_weight(
    router: TrafficManagerRouter, raw: TrafficManagerManagementClient, settings: dict[str, Any]
) -> None:
    route = Route("w.example.test", ENDPOINTS, Weighted({"primary": 5, "backup": 1000, "third": 0}))
    router.apply(route)
    found = endpoints_of(read(raw, settings, route.name))
    assert {n: p.weight for n, p in found.items() if n != "third"} == {"primary": 5, "backup": 1000}
    assert found["third"].endpoint_status == "Disabled"
    # no health check: every endpoint is always served
    assert found["primary"].always_serve == "Enabled"
    assert router.get(route.name) == route
    assert router.endpoint_status(route.name)["third"] is EndpointStatus.AUTO
    with pytest.raises(Unsupported):
        router.set_endpoint_status(route.name, "third", EndpointStatus.UP)


@pytest.mark.parametrize(
    ("weight", "field"), [(1.5, "policy.weights[primary]"), (1001, "policy.weights[primary]")]
)
def test_weights_traffic_manager_cannot_hold_are_refused(
    router: TrafficManagerRouter, weight: float, field: str
) -> None:
    route = Route("w.example.test", ENDPOINTS[:2], Weighted({"primary": weight, "backup": 1}))
    with pytest.raises(InvalidInput) as excinfo:
        router.apply(route)
    assert excinfo.value.field == field
    assert router.list() == []


def test_latency_and_geo_profiles(
    router: TrafficManagerRouter, raw: TrafficManagerManagementClient, settings: dict[str, Any]
) -> None:
    latency = Route("lat.example.test", ENDPOINTS, Latency())
    router.apply(latency)
    profile = read(raw, settings, latency.name)
    assert profile.properties.traffic_routing_method == "Performance"
    locations = {n: p.endpoint_location for n, p in endpoints_of(profile).items()}
    assert locations == {"primary": "westeurope", "backup": "northeurope", "third": "eastus"}
    assert router.resolve(latency.name, client_region="eastus").endpoints == ("third",)

    geo = Route(
        "geo.example.test", ENDPOINTS[:2], Geo({"DE": "backup", "GEO-AS": "backup"}, "primary")
    )
    router.apply(geo)
    profile = read(raw, settings, geo.name)
    assert profile.properties.traffic_routing_method == "Geographic"
    mapping = {n: sorted(p.geo_mapping) for n, p in endpoints_of(profile).items()}
    assert mapping == {"primary": ["WORLD"], "backup": ["DE", "GEO-AS"]}
    assert router.get(geo.name) == geo
    assert router.resolve(geo.name, client_region="de").endpoints == ("backup",)
    assert router.resolve(geo.name, client_region="fr").endpoints == ("primary",)


def test_overrides_are_endpoint_status_and_always_serve(
    router: TrafficManagerRouter, raw: TrafficManagerManagementClient, settings: dict[str, Any]
) -> None:
    route = Route(
        "o.example.test", ENDPOINTS[:2], Failover("primary", ["backup"]), health_check=CHECK
    )
    router.apply(route)
    router.set_endpoint_status(route.name, "primary", EndpointStatus.DOWN)
    router.set_endpoint_status(route.name, "backup", EndpointStatus.UP)
    found = endpoints_of(read(raw, settings, route.name))
    assert (found["primary"].endpoint_status, found["primary"].always_serve) == (
        "Disabled",
        "Disabled",
    )
    assert (found["backup"].endpoint_status, found["backup"].always_serve) == ("Enabled", "Enabled")
    assert found["primary"].endpoint_monitor_status == "Disabled"
    assert found["backup"].endpoint_monitor_status == "Unmonitored"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"interval_s": 20, "timeout_s": 10}, "health_check.interval_s"),
        ({"interval_s": 10, "timeout_s": 10}, "health_check.timeout_s"),
        ({"interval_s": 30, "timeout_s": 4}, "health_check.timeout_s"),
        ({"interval_s": 30, "timeout_s": 7.5}, "health_check.timeout_s"),
        ({"success_threshold": 2}, "health_check.success_threshold"),
    ],
)
def test_checks_traffic_manager_cannot_run_are_refused(
    router: TrafficManagerRouter, settings: dict[str, Any], changes: dict[str, Any], field: str
) -> None:
    check = attrs.evolve(CHECK, **changes)
    route = Route(
        "c.example.test", ENDPOINTS[:2], Failover("primary", ["backup"]), health_check=check
    )
    with pytest.raises(InvalidInput) as excinfo:
        router.apply(route)
    assert excinfo.value.field == field
    probe = TrafficManagerProbe(**settings)
    with pytest.raises(InvalidInput) as excinfo:
        probe.ensure(ProbeTarget("t", "127.0.0.1", check))
    assert excinfo.value.field == field
    assert router.list() == []
    assert probe.list() == []


def test_expected_failover_follows_microsofts_formula(router: TrafficManagerRouter) -> None:
    route = Route(
        "e.example.test", ENDPOINTS[:2], Failover("primary", ["backup"]), ttl=60, health_check=CHECK
    )
    # (30 s interval + 10 s timeout) x (3 tolerated failures + 1) + 60 s TTL
    assert router.expected_failover_s(route) == 220
    quick = attrs.evolve(CHECK, interval_s=10, timeout_s=5, failure_threshold=1)
    assert router.expected_failover_s(attrs.evolve(route, health_check=quick)) == 75


def test_probe_profile_and_status_read_back(
    settings: dict[str, Any], raw: TrafficManagerManagementClient
) -> None:
    probe = TrafficManagerProbe(**settings)
    with LoopbackEndpoint("tcp", "127.0.0.1") as endpoint:
        check = HealthCheck("tcp", endpoint.port, interval_s=10, timeout_s=9, failure_threshold=10)
        probe_id = probe.ensure(ProbeTarget("db", "127.0.0.1", check))
        profile = raw.profiles.get(settings["resource_group"], profile_name("probe", "db"))
        assert profile.id == probe_id
        monitor = profile.properties.monitor_config
        assert (monitor.protocol, monitor.port, monitor.path) == ("TCP", endpoint.port, None)
        assert monitor.tolerated_number_of_failures == 9
        deadline = time.monotonic() + 3
        while probe.status("db").detail != "Online" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert probe.status("db").healthy
        assert probe.expected_detection_s(check) == (10 + 9) * 10
        probe.delete("db")
    with pytest.raises(ResourceNotFoundError):
        raw.profiles.get(settings["resource_group"], profile_name("probe", "db"))
    with pytest.raises(NotFound):
        probe.status("db")


def test_a_wrong_token_is_an_auth_error(settings: dict[str, Any]) -> None:
    router = TrafficManagerRouter(**{**settings, "credential": FakeCredential("stolen")})
    with pytest.raises(AuthError) as excinfo:
        router.list()
    assert "stolen" not in str(excinfo.value)


def test_a_stopped_service_is_unavailable(tmp_path: Path) -> None:
    with TrafficManagerFake() as fake:
        ca = tmp_path / "ca.pem"
        shutil.copy(fake.ca_path, ca)
        router = TrafficManagerRouter(**{**arm_settings(fake), "connection_verify": str(ca)})
    with pytest.raises(Unavailable):
        router.list()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"subscription_id": ""}, "subscription_id"),
        ({"resource_group": "bad/group"}, "resource_group"),
        ({"endpoint": "http://management.example.com"}, "endpoint"),
        (
            {"endpoint": "https://management.example.com", "connection_verify": False},
            "connection_verify",
        ),
        ({"credential": "secret"}, "credential"),
        ({"connection_verify": "/nonexistent/ca.pem"}, "connection_verify"),
        ({"retries": -1}, "retries"),
    ],
)
def test_bad_settings_are_refused(
    settings: dict[str, Any], changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        TrafficManagerRouter(**{**settings, **changes})
    assert excinfo.value.field == field


def test_the_registry_builds_router_and_probe(settings: dict[str, Any]) -> None:
    router = registry.router("azure", **settings)
    probe = registry.probe("azure", **settings)
    assert isinstance(router, TrafficManagerRouter)
    assert isinstance(probe, TrafficManagerProbe)
    assert router.list() == probe.list() == []


def test_a_profile_changed_outside_the_library_is_reported(
    router: TrafficManagerRouter, raw: TrafficManagerManagementClient, settings: dict[str, Any]
) -> None:
    route = Route("x.example.test", ENDPOINTS[:2], Failover("primary", ["backup"]))
    router.apply(route)
    profile = read(raw, settings, route.name)
    tags = {k: v for k, v in profile.tags.items() if not k.startswith("multiregion-layout-")}
    raw.profiles.update(
        settings["resource_group"], profile_name("route", route.name), {"tags": tags}
    )
    with pytest.raises(MultiregionError, match="changed outside"):
        router.get(route.name)


def test_200_endpoints_fit_arms_50_tags(
    router: TrafficManagerRouter, raw: TrafficManagerManagementClient, settings: dict[str, Any]
) -> None:
    regions = ("westeurope", "northeurope", "eastus", "swedencentral", "japaneast")
    endpoints = [
        Endpoint(f"endpoint-{i:03d}-{'x' * 40}", regions[i % 5], f"192.0.2.{i % 250}")
        for i in range(200)
    ]
    weights = {e.name: 1 + i % 7 for i, e in enumerate(endpoints)}
    weights[endpoints[3].name] = 0
    route = Route("many.example.test", endpoints[::-1], Weighted(weights))
    router.apply(route)
    profile = read(raw, settings, route.name)
    assert len(profile.tags) <= 50
    assert all(len(v) <= 256 for v in profile.tags.values())
    assert router.get(route.name) == route
    assert not router.plan(route)


@pytest.mark.parametrize(
    ("route", "field"),
    [
        (
            Route("l.example.test", [Endpoint("a", "europe-west1", "192.0.2.1")], Latency()),
            "endpoint.region",
        ),
        (
            Route("l.example.test", [Endpoint("a", "west-europe", "192.0.2.1")], Latency()),
            "endpoint.region",
        ),
        (
            Route("g.example.test", ENDPOINTS[:2], Geo({"EU": "backup"}, "primary")),
            "policy.locations[EU]",
        ),
        (
            Route("g.example.test", ENDPOINTS[:2], Geo({"XX": "backup"}, "primary")),
            "policy.locations[XX]",
        ),
        (
            Route("g.example.test", ENDPOINTS[:2], Geo({"US-XX": "backup"}, "primary")),
            "policy.locations[US-XX]",
        ),
    ],
)
def test_regions_and_geographic_codes_traffic_manager_refuses_are_refused(
    router: TrafficManagerRouter, route: Route, field: str
) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        router.apply(route)
    assert excinfo.value.field == field
    assert router.list() == []


def test_newer_regions_and_subdivision_codes_are_taken(router: TrafficManagerRouter) -> None:
    endpoints = [
        Endpoint("a", "polandcentral", "192.0.2.1"),
        Endpoint("b", "italynorth", "192.0.2.2"),
    ]
    for route in (
        Route("l.example.test", endpoints, Latency()),
        Route("g.example.test", endpoints, Geo({"GB-SCT": "b", "GEO-EU": "b", "US-CA": "a"}, "a")),
    ):
        router.apply(route)
        assert router.get(route.name) == route
