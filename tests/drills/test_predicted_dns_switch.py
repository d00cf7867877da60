"""The predicted DNS switch of a router whose expected failover time is its documented worst
case (Traffic Manager's: (interval + timeout) x (tolerated failures + 1) + TTL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from multiregion import Endpoint, HealthCheck, Route, Weighted
from multiregion.drill.phases import Effects, predict
from multiregion.providers.local.router import LocalRouter

ROUTE = Route(
    name="aa.drill.test",
    endpoints=[Endpoint("a", "region-a", "127.0.0.2"), Endpoint("b", "region-b", "127.0.0.3")],
    policy=Weighted({"a": 1, "b": 1}),
    ttl=30,
    health_check=HealthCheck("http", 8080, interval_s=10, timeout_s=5, failure_threshold=3),
)


class WorstAsExpected(LocalRouter):
    def _expected_failover_s(self, route: Route) -> float:
        return self._worst_failover_s(route)


def test_the_predicted_dns_switch_is_never_past_the_routers_worst_case(tmp_path: Path) -> None:
    outage = Effects(health_sees=True, requests_fail=True, requests_hang=True)
    with WorstAsExpected(tmp_path / "dns", serve=False) as router:
        found = predict(router, ROUTE, outage, 0, confirm=None, time_scale=0.05)
        worst = (router.worst_failover_s(ROUTE) - ROUTE.ttl) * 0.05
    # without the bound: (worst - TTL / 2) x 0.05, 0.75 s past the worst
    assert found["dns_switch"] == pytest.approx(worst)
    assert found["first_request"] == pytest.approx(worst)  # no tick, requests fail: no cache
