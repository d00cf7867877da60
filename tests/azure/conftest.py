"""Azure emulators for the adapter tests, started once per session on loopback ports.

Azurite serves Blob Storage; one cosmosdb-server holds the Cosmos DB account, reached through
one proxy per region so that a single region can fail. Tests isolate themselves by fresh
container names.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from multiregion.testing.emulators.azure import Azurite, CosmosServer, RegionProxy
from multiregion.testing.fakes.trafficmanager import TrafficManagerFake
from tests.azure.iam import azure_iam_calls  # noqa: F401  (the roles cover every request)

REGIONS = ("eastus", "westus")


def pytest_configure(config: pytest.Config) -> None:
    # cosmosdb-server's certificate is self-signed; azure-cosmos skips verification for
    # 127.0.0.1 only, and urllib3 warns about it on every request.
    config.addinivalue_line("filterwarnings", "ignore::urllib3.exceptions.InsecureRequestWarning")


def fresh_name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with Azurite() as server:
        yield server


@pytest.fixture(scope="session")
def cosmos_server() -> Iterator[CosmosServer]:
    with CosmosServer() as server:
        yield server


@pytest.fixture(scope="session")
def _region_proxies(cosmos_server: CosmosServer) -> Iterator[dict[str, RegionProxy]]:
    proxies = {region: RegionProxy(cosmos_server.port).start() for region in REGIONS}
    yield proxies
    for proxy in proxies.values():
        proxy.stop()


@pytest.fixture
def region_proxies(_region_proxies: dict[str, RegionProxy]) -> Iterator[dict[str, RegionProxy]]:
    """The per-region endpoints, every one serving again after the test."""
    yield _region_proxies
    for proxy in _region_proxies.values():
        proxy.stop()
        proxy.start()


TIME_SCALE = 0.05
"""The fake probes a 10 s check every 0.5 s (timeout 0.25 s): quick, yet calm on a busy machine."""
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="session")
def traffic_manager() -> Iterator[TrafficManagerFake]:
    with TrafficManagerFake(time_scale=TIME_SCALE) as fake:
        yield fake


def arm_settings(fake: TrafficManagerFake) -> dict[str, Any]:
    """Router and probe settings for the fake, each test in a resource group of its own."""
    return {
        "subscription_id": SUBSCRIPTION,
        "resource_group": fresh_name("rg-"),
        "credential": fake.credential(),
        "endpoint": fake.url,
        "connection_verify": fake.ca_path,
        "retries": 0,
        "timeout_s": 5,
    }
