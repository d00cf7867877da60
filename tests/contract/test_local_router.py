"""The router contract on LocalRouter: a real DNS server on loopback, probes every 0.1 s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from multiregion.model import HealthCheck
from multiregion.providers.local.router import LocalRouter
from multiregion.testing.contract.harness import RouterHarness
from multiregion.testing.contract.router import RouterContract
from multiregion.testing.endpoints import LoopbackEndpoint, start_endpoints


def fast_check(port: int) -> HealthCheck:
    return HealthCheck("http", port, interval_s=0.1, timeout_s=0.1, failure_threshold=2)


class TestLocalRouter(RouterContract):
    @pytest.fixture
    def router_harness(self, tmp_path: Path) -> Iterator[RouterHarness]:
        started: list[LoopbackEndpoint] = []

        def endpoints(n: int) -> list[LoopbackEndpoint]:
            group = start_endpoints(n, "http")
            started.extend(group)
            return group

        with LocalRouter(tmp_path / "routing") as router:
            yield RouterHarness(
                router=router,
                endpoints=endpoints,
                check=fast_check,
                wait_s=3.0,
                health_driven=True,
                zone="app.example.test",
            )
        for endpoint in started:
            endpoint.close()

    def test_capabilities_are_failover_and_weighted(self, router_harness: RouterHarness) -> None:
        policies = {p.__name__ for p in router_harness.router.capabilities.policies}
        assert policies == {"Failover", "Weighted"}
