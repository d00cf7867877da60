"""The router and probe contracts on the Traffic Manager adapters against the project's fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from multiregion.model import HealthCheck
from multiregion.providers.azure.monitoring import TrafficManagerProbe
from multiregion.providers.azure.trafficmanager import TrafficManagerRouter
from multiregion.testing.contract.harness import ProbeHarness, RouterHarness
from multiregion.testing.contract.probe import ProbeContract
from multiregion.testing.contract.router import RouterContract
from multiregion.testing.endpoints import LoopbackEndpoint, start_endpoints
from multiregion.testing.fakes.trafficmanager import TrafficManagerFake
from tests.azure.conftest import arm_settings

WAIT_S = 3.0
"""At the fake's time scale a 10 s check with no tolerated failure decides in under 1 s."""


def quickest(protocol: str, port: int) -> HealthCheck:
    """The quickest check Traffic Manager runs: every 10 s, 5 s timeout, no failure tolerated."""
    return HealthCheck(protocol, port, interval_s=10, timeout_s=5, failure_threshold=1)


class TestTrafficManagerRouter(RouterContract):
    latency_regions = ("westeurope", "eastus")

    @pytest.fixture
    def router_harness(self, traffic_manager: TrafficManagerFake) -> Iterator[RouterHarness]:
        started: list[LoopbackEndpoint] = []

        def endpoints(n: int) -> list[LoopbackEndpoint]:
            group = start_endpoints(n, "http")
            started.extend(group)
            return group

        router = TrafficManagerRouter(**arm_settings(traffic_manager), seed=7)
        yield RouterHarness(
            router=router,
            endpoints=endpoints,
            check=lambda port: quickest("http", port),
            wait_s=WAIT_S,
        )
        for name in router.list():  # stops the fake probing this test's endpoints
            router.delete(name)
        router.close()
        for endpoint in started:
            endpoint.close()


class TestTrafficManagerProbe(ProbeContract):
    @pytest.fixture
    def probe_harness(self, traffic_manager: TrafficManagerFake) -> Iterator[ProbeHarness]:
        started: list[LoopbackEndpoint] = []

        def serve(protocol: str) -> LoopbackEndpoint:
            started.append(LoopbackEndpoint(protocol, "127.0.0.1"))
            return started[-1]

        probe = TrafficManagerProbe(**arm_settings(traffic_manager))
        yield ProbeHarness(probe=probe, serve=serve, check=quickest, wait_s=WAIT_S)
        for name in probe.list():
            probe.delete(name)
        probe.close()
        for endpoint in started:
            endpoint.close()
