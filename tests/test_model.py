"""Value types refuse bad input with InvalidInput naming the field, before anything else runs."""

from __future__ import annotations

import math

import pytest

from multiregion import (
    Endpoint,
    Failover,
    FencingToken,
    Geo,
    HealthCheck,
    InvalidInput,
    Latency,
    Route,
    Weighted,
)
from multiregion.errors import MultiregionError


def endpoints() -> list[Endpoint]:
    return [Endpoint("a", "eu-west-1", "192.0.2.1"), Endpoint("b", "us-east-1", "192.0.2.2")]


def test_route_normalises_name_and_keeps_values() -> None:
    route = Route(
        name="App.Example.COM.", endpoints=endpoints(), policy=Failover("a", ["b"]), ttl=0
    )
    assert route.name == "app.example.com"
    assert route.policy.order == ("a", "b")
    assert route.ttl == 0
    assert [e.record_type for e in route.endpoints] == ["A", "A"]


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Route(name="localhost", endpoints=endpoints(), policy=Latency()), "name"),
        (lambda: Route(name="bad_-.example.com", endpoints=endpoints(), policy=Latency()), "name"),
        (
            lambda: Route(name="a." + "x" * 64 + ".com", endpoints=endpoints(), policy=Latency()),
            "name",
        ),
        (lambda: Route(name=5, endpoints=endpoints(), policy=Latency()), "name"),
        (lambda: Route(name="a.example.com", endpoints=[], policy=Latency()), "endpoints"),
        (
            lambda: Route(name="a.example.com", endpoints=endpoints(), policy=Latency(), ttl=-1),
            "ttl",
        ),
        (
            lambda: Route(name="a.example.com", endpoints=endpoints(), policy=Latency(), ttl=2**31),
            "ttl",
        ),
        (
            lambda: Route(name="a.example.com", endpoints=endpoints(), policy=Latency(), ttl=1.5),
            "ttl",
        ),
        (
            lambda: Route(name="a.example.com", endpoints=endpoints(), policy=Failover("a", ["c"])),
            "policy",
        ),
        (
            lambda: Route(name="a.example.com", endpoints=endpoints(), policy=Failover("a", [])),
            "policy.backups",
        ),
        (
            lambda: Route(name="a.example.com", endpoints=endpoints(), policy=Failover("a", ["a"])),
            "policy.backups",
        ),
        (
            lambda: Route(name="a.example.com", endpoints=endpoints(), policy=Weighted({"a": 1})),
            "policy.weights",
        ),
        (lambda: Route(name="a.example.com", endpoints=endpoints(), policy="failover"), "policy"),
        (
            lambda: Route(
                name="a.example.com",
                endpoints=[Endpoint("a", "r1", "192.0.2.1"), Endpoint("a", "r2", "192.0.2.2")],
                policy=Latency(),
            ),
            "endpoints",
        ),
        (
            lambda: Route(
                name="a.example.com",
                endpoints=[Endpoint("a", "r1", "192.0.2.1"), Endpoint("b", "r2", "b.example.net")],
                policy=Latency(),
            ),
            "endpoints",
        ),
        (
            lambda: Route(
                name="a.example.com",
                endpoints=[Endpoint("a", "r1", "192.0.2.1"), Endpoint("b", "r1", "192.0.2.2")],
                policy=Latency(),
            ),
            "endpoints",
        ),
        (lambda: Endpoint("a b", "r1", "192.0.2.1"), "endpoint.name"),
        (lambda: Endpoint("a", "Region 1", "192.0.2.1"), "endpoint.region"),
        (lambda: Endpoint("a", "r1", "not a host"), "endpoint.target"),
        (lambda: Weighted({"a": -1.0}), "policy.weights[a]"),
        (lambda: Weighted({"a": math.inf}), "policy.weights[a]"),
        (lambda: Weighted({"a": math.nan}), "policy.weights[a]"),
        (lambda: Weighted({"a": True}), "policy.weights[a]"),
        (lambda: Weighted({"a": 0.0}), "policy.weights"),
        (lambda: Weighted({}), "policy.weights"),
        (lambda: Geo({}, default="a"), "policy.locations"),
        (lambda: FencingToken(-1, "r1"), "fence.epoch"),
    ],
)
def test_bad_routes_are_refused_naming_the_field(build, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        build()
    assert info.value.field == field
    assert str(info.value).startswith(field + ":")
    assert isinstance(info.value, MultiregionError)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"protocol": "ftp"}, "health_check.protocol"),
        ({"port": 0}, "health_check.port"),
        ({"port": 65536}, "health_check.port"),
        ({"interval_s": 0}, "health_check.interval_s"),
        ({"interval_s": -1}, "health_check.interval_s"),
        ({"interval_s": math.nan}, "health_check.interval_s"),
        ({"interval_s": "10"}, "health_check.interval_s"),
        ({"interval_s": 1, "timeout_s": 2}, "health_check.timeout_s"),
        ({"failure_threshold": 0}, "health_check.failure_threshold"),
        ({"failure_threshold": 11}, "health_check.failure_threshold"),
        ({"success_threshold": 0}, "health_check.success_threshold"),
        ({"path": "health"}, "health_check.path"),
        ({"expected_status": (300, 200)}, "health_check.expected_status"),
    ],
)
def test_bad_health_checks_are_refused_naming_the_field(kwargs: dict, field: str) -> None:
    settings = {"protocol": "http", "port": 80, **kwargs}
    with pytest.raises(InvalidInput) as info:
        HealthCheck(**settings)
    assert info.value.field == field


def test_health_check_defaults_and_detection_times() -> None:
    check = HealthCheck("http", 8080, interval_s=2, failure_threshold=3)
    assert check.timeout_s == 2.0  # never longer than the interval
    assert HealthCheck("tcp", 1).timeout_s == 5.0
    assert check.expected_detection_s() == pytest.approx(2 * 2.5 + 2)
    assert check.worst_detection_s() == pytest.approx(2 * 3 + 2)
    slower = HealthCheck("http", 8080, interval_s=2, failure_threshold=5)
    assert slower.expected_detection_s() > check.expected_detection_s()


def test_endpoint_record_types() -> None:
    assert Endpoint("a", "r1", "2001:db8::1").record_type == "AAAA"
    assert Endpoint("a", "r1", "2001:DB8:0::1").target == "2001:db8::1"
    assert Endpoint("a", "r1", "lb.Example.net.").record_type == "CNAME"
    assert Endpoint("a", "r1", "lb.Example.net.").target == "lb.example.net"


def test_weighted_and_geo_are_order_independent() -> None:
    assert Weighted({"b": 1, "a": 2}) == Weighted({"a": 2.0, "b": 1.0})
    assert Weighted({"a": 2, "b": 0}).weight("b") == 0.0
    geo = Geo({"EU": "a", "NA": "b"}, default="a")
    assert geo == Geo({"NA": "b", "EU": "a"}, default="a")
    assert geo.referenced() == ("a", "b", "a")
