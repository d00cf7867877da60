"""The pytest plugin: fixtures that do nothing until a test asks for them, ready to use."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from multiregion import AlreadyExists, Endpoint, Failover, HealthCheck, InvalidInput, Route
from multiregion.interfaces import BackupBucket, ReplicatedStore, TrafficRouter
from multiregion.testing.plugin import CloudDnsSetup, TrafficManagerSetup

pytest_plugins = ["pytester"]

ROUTE = Route(
    "app.example.test",
    [Endpoint("primary", "region-a", "127.0.0.2"), Endpoint("standby", "region-b", "127.0.0.3")],
    Failover("primary", ["standby"]),
    ttl=5,
)


def test_the_local_fixtures_work_in_tmp_path(
    multiregion_router: TrafficRouter,
    multiregion_store: ReplicatedStore,
    multiregion_bucket: BackupBucket,
    tmp_path: Path,
) -> None:
    multiregion_router.apply(ROUTE)
    assert multiregion_router.resolve(ROUTE.name).records == ("127.0.0.2",)  # real DNS
    multiregion_store.put("order/1", {"total": 3})
    assert multiregion_store.get("order/1", region="region-b").value == {"total": 3}
    multiregion_bucket.put("backup", b"bytes")
    assert multiregion_bucket.get("backup") == b"bytes"
    assert {p.name for p in tmp_path.iterdir()} >= {"multiregion-store", "multiregion-bucket"}


def test_the_traffic_manager_fixture_is_a_connected_router(
    multiregion_traffic_manager: TrafficManagerSetup,
) -> None:
    router = multiregion_traffic_manager.router
    router.apply(ROUTE)
    assert router.get(ROUTE.name).policy == ROUTE.policy
    assert router.list() == [ROUTE.name]
    assert "credential" not in repr(multiregion_traffic_manager)


def test_the_cloud_dns_fixture_has_its_zone_and_a_connected_router(
    multiregion_cloud_dns: CloudDnsSetup,
) -> None:
    setup = multiregion_cloud_dns
    endpoints = [Endpoint("primary", "us-east1", "127.0.0.2")]
    endpoints += [Endpoint("standby", "europe-west1", "127.0.0.3")]
    route = Route(
        f"app.{setup.dns_name}",
        endpoints,
        ROUTE.policy,
        ttl=30,
        health_check=HealthCheck("http", 80, interval_s=30, expected_status=(200, 200)),
    )
    setup.router.apply(route)
    assert setup.router.get(route.name).endpoints == route.endpoints
    with pytest.raises(AlreadyExists):
        setup.fake.create_zone(setup.project, setup.zone, setup.dns_name)
    with pytest.raises(InvalidInput):
        setup.fake.create_zone(setup.project, "Not A Zone", "x.test")


USER_TEST = """
    from multiregion import Endpoint, Failover, Route

    def test_my_code(multiregion_router, multiregion_store):
        a, b = Endpoint("a", "region-a", "127.0.0.2"), Endpoint("b", "region-b", "127.0.0.3")
        route = Route("shop.example.test", [a, b], Failover("a", ["b"]), ttl=5)
        multiregion_router.apply(route)
        assert multiregion_router.resolve(route.name).records == ("127.0.0.2",)
        multiregion_store.put("cart/1", {"items": 2})
        assert multiregion_store.get("cart/1", region="region-b").value == {"items": 2}

    def test_no_marker_is_added(pytestconfig):
        assert [m for m in pytestconfig.getini("markers") if "multiregion" in m.lower()] == []
"""


def test_a_users_project_gets_fixtures_and_no_marker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=textwrap.dedent(USER_TEST))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
