"""The store contract on the Cosmos DB adapter against cosmosdb-server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from multiregion.providers.azure.cosmos import CosmosStore
from multiregion.testing.contract.harness import StoreHarness
from multiregion.testing.contract.store import StoreContract
from multiregion.testing.emulators.azure import COSMOS_KEY, RegionProxy
from tests.azure.conftest import REGIONS, fresh_name

DATABASE = "multiregion-tests"


def opener(proxies: dict[str, RegionProxy], **settings: Any) -> Callable[[], CosmosStore]:
    """Opens handles on one fresh container, each region through its own endpoint."""
    container = fresh_name("store-")

    def open_store() -> CosmosStore:
        return CosmosStore(
            proxies[REGIONS[0]].url,
            DATABASE,
            container,
            REGIONS,
            key=COSMOS_KEY,
            region_endpoints={region: proxy.url for region, proxy in proxies.items()},
            timeout_s=2,
            retries=1,
            **settings,
        )

    return open_store


LEASE = {"lease_s": 0.3, "clock_drift_s": 0.05}
"""Write leases short enough that the contract's promotes wait little."""


def harness(proxies: dict[str, RegionProxy], **settings: Any) -> Iterator[StoreHarness]:
    handles: list[CosmosStore] = []

    def track(open_store: Callable[[], CosmosStore]) -> Callable[[], CosmosStore]:
        def opened() -> CosmosStore:
            handles.append(open_store())
            return handles[-1]

        return opened

    reopen = track(opener(proxies, **settings))
    yield StoreHarness(
        store=reopen(),
        reopen=reopen,
        # One server holds the account: every region reads the same data at once.
        settle=lambda: None,
        multi_writer=track(opener(proxies, multi_writer=True, **settings)),
        fail_region=lambda region: proxies[region].stop(),
        heal_region=lambda region: proxies[region].start(),
    )
    for handle in handles:
        handle.close()


class TestCosmosStore(StoreContract):
    @pytest.fixture
    def store_harness(self, region_proxies: dict[str, RegionProxy]) -> Iterator[StoreHarness]:
        yield from harness(region_proxies)


class TestCosmosStoreLeased(StoreContract):
    """The same contract with write leases instead of a read before every write."""

    @pytest.fixture
    def store_harness(self, region_proxies: dict[str, RegionProxy]) -> Iterator[StoreHarness]:
        yield from harness(region_proxies, **LEASE)
