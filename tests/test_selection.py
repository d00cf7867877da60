"""The neutral answer rules: eligibility, fail-open, and each policy's pick."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from multiregion.model import (
    Endpoint,
    EndpointStatus,
    Failover,
    Geo,
    HealthCheck,
    HealthState,
    Latency,
    Policy,
    Route,
    Weighted,
)
from multiregion.selection import choose

UP, DOWN, AUTO = EndpointStatus.UP, EndpointStatus.DOWN, EndpointStatus.AUTO
HEALTHY, UNHEALTHY, UNKNOWN = HealthState.HEALTHY, HealthState.UNHEALTHY, HealthState.UNKNOWN
CHECK = HealthCheck("http", 80, interval_s=1.0)

ENDPOINTS = (
    Endpoint("a", "region-a", "127.0.0.11"),
    Endpoint("b", "region-b", "127.0.0.12"),
    Endpoint("c", "region-c", "127.0.0.13"),
)


def route(policy: Policy, *, check: HealthCheck | None = CHECK) -> Route:
    return Route("app.example.test", ENDPOINTS, policy, ttl=30, health_check=check)


def names(
    r: Route,
    health: dict[str, HealthState] | None = None,
    overrides: dict[str, EndpointStatus] | None = None,
    *,
    seed: int = 1,
    client_region: str | None = None,
) -> list[str]:
    chosen = choose(
        r, health or {}, overrides or {}, rng=random.Random(seed), client_region=client_region
    )
    return [e.name for e in chosen]


FAILOVER = route(Failover("a", ["b", "c"]))


def test_failover_answers_the_primary_when_all_are_healthy() -> None:
    assert names(FAILOVER, {"a": HEALTHY, "b": HEALTHY, "c": HEALTHY}) == ["a"]


def test_failover_skips_unhealthy_endpoints_in_order() -> None:
    assert names(FAILOVER, {"a": UNHEALTHY}) == ["b"]
    assert names(FAILOVER, {"a": UNHEALTHY, "b": UNHEALTHY}) == ["c"]


def test_unknown_and_missing_health_count_as_healthy() -> None:
    assert names(FAILOVER, {"a": UNKNOWN}) == ["a"]
    assert names(FAILOVER, {}) == ["a"]


def test_health_is_ignored_without_a_health_check() -> None:
    unchecked = route(Failover("a", ["b", "c"]), check=None)
    assert names(unchecked, {"a": UNHEALTHY}) == ["a"]


def test_down_override_removes_a_healthy_endpoint() -> None:
    assert names(FAILOVER, {"a": HEALTHY}, {"a": DOWN}) == ["b"]


def test_up_override_keeps_an_unhealthy_endpoint() -> None:
    assert names(FAILOVER, {"a": UNHEALTHY}, {"a": UP}) == ["a"]


def test_auto_override_lets_health_decide() -> None:
    assert names(FAILOVER, {"a": UNHEALTHY}, {"a": AUTO}) == ["b"]


def test_failover_fails_open_when_no_endpoint_is_healthy() -> None:
    all_down = {"a": UNHEALTHY, "b": UNHEALTHY, "c": UNHEALTHY}
    assert names(FAILOVER, all_down) == ["a"]
    # fail-open still honours a forced DOWN
    assert names(FAILOVER, all_down, {"a": DOWN}) == ["b"]


def test_every_endpoint_forced_down_gives_an_empty_answer() -> None:
    assert names(FAILOVER, {}, {"a": DOWN, "b": DOWN, "c": DOWN}) == []
    weighted = route(Weighted({"a": 1, "b": 1, "c": 1}))
    assert names(weighted, {}, {"a": DOWN, "b": DOWN, "c": DOWN}) == []


def test_weighted_picks_by_weight() -> None:
    weighted = route(Weighted({"a": 3, "b": 1, "c": 0}))
    rng = random.Random(20261124)
    counts = Counter(choose(weighted, {}, {}, rng=rng)[0].name for _ in range(4000))
    assert counts["c"] == 0
    # expected 3000/1000; 5 standard deviations (~137) either side
    assert 2860 <= counts["a"] <= 3140
    assert counts["a"] + counts["b"] == 4000


def test_weighted_answers_one_endpoint_and_varies_between_picks() -> None:
    weighted = route(Weighted({"a": 1, "b": 1, "c": 1}))
    rng = random.Random(7)
    picks = [choose(weighted, {}, {}, rng=rng) for _ in range(60)]
    assert all(len(p) == 1 for p in picks)
    assert {p[0].name for p in picks} == {"a", "b", "c"}


def test_weighted_skips_unhealthy_and_down_endpoints() -> None:
    weighted = route(Weighted({"a": 1, "b": 1, "c": 1}))
    for seed in range(50):
        assert names(weighted, {"a": UNHEALTHY}, {"b": DOWN}, seed=seed) == ["c"]


def test_weighted_zero_weight_serves_only_when_no_weighted_endpoint_can() -> None:
    weighted = route(Weighted({"a": 2, "b": 0, "c": 0}))
    assert {names(weighted, seed=s)[0] for s in range(30)} == {"a"}
    fallback = {names(weighted, {}, {"a": DOWN}, seed=s)[0] for s in range(30)}
    assert fallback == {"b", "c"}


def test_weighted_fails_open_over_weighted_endpoints() -> None:
    weighted = route(Weighted({"a": 1, "b": 1, "c": 0}))
    all_down = {"a": UNHEALTHY, "b": UNHEALTHY, "c": UNHEALTHY}
    picked = {names(weighted, all_down, seed=s)[0] for s in range(40)}
    assert picked == {"a", "b"}


def test_latency_prefers_the_clients_region_then_route_order() -> None:
    latency = route(Latency())
    assert names(latency, client_region="region-b") == ["b"]
    assert names(latency, {"b": UNHEALTHY}, client_region="region-b") == ["a"]
    assert names(latency, client_region="elsewhere") == ["a"]
    assert names(latency) == ["a"]


def test_geo_matches_the_location_else_the_default() -> None:
    geo = route(Geo({"region-b": "b", "region-c": "c"}, default="a"))
    assert names(geo, client_region="region-b") == ["b"]
    assert names(geo, client_region="region-x") == ["a"]
    assert names(geo) == ["a"]
    assert names(geo, {"c": UNHEALTHY}, client_region="region-c") == ["a"]
    assert names(geo, {}, {"b": DOWN, "a": DOWN}, client_region="region-b") == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_choose_is_deterministic_for_a_seed(seed: int) -> None:
    weighted = route(Weighted({"a": 1, "b": 1, "c": 1}))
    first = [names(weighted, seed=seed) for _ in range(5)]
    assert len({tuple(n) for n in first}) == 1
