"""The store contract on LocalStore: asynchronous (short lag) and synchronous replication."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from multiregion.providers.local.store import LocalStore
from multiregion.testing.contract.harness import StoreHarness
from multiregion.testing.contract.store import StoreContract

REGIONS = ["us-east-1", "eu-west-1", "ap-south-1"]


def _harness(
    tmp_path: Path, replication: str, lease_s: float | None = None
) -> Iterator[StoreHarness]:
    opened: dict[Path, list[LocalStore]] = {}

    def open_store(path: Path, *, multi_writer: bool = False) -> LocalStore:
        store = LocalStore(
            path,
            REGIONS,
            replication=replication,
            lag_s=0.05,
            multi_writer=multi_writer,
            lease_s=lease_s,
        )
        opened.setdefault(path, []).append(store)
        return store

    store = open_store(tmp_path / "store")

    def settle() -> None:
        for handles in opened.values():
            handles[0].settle(timeout_s=5)

    yield StoreHarness(
        store=store,
        reopen=lambda: open_store(tmp_path / "store"),
        settle=settle,
        multi_writer=lambda: open_store(tmp_path / "active", multi_writer=True),
        fail_region=store.fail_region,
        heal_region=store.heal_region,
    )
    for handles in opened.values():
        for handle in handles:
            handle.close()


class TestLocalStoreAsync(StoreContract):
    @pytest.fixture
    def store_harness(self, tmp_path: Path) -> Iterator[StoreHarness]:
        yield from _harness(tmp_path, "async")


class TestLocalStoreSync(StoreContract):
    @pytest.fixture
    def store_harness(self, tmp_path: Path) -> Iterator[StoreHarness]:
        yield from _harness(tmp_path, "sync")

    def test_capabilities_say_strong(self, store_harness: StoreHarness) -> None:
        assert store_harness.store.capabilities.strong


class TestLocalStoreLeases(StoreContract):
    """Write leases: the write region confirms its epoch once per lease, not per write."""

    @pytest.fixture
    def store_harness(self, tmp_path: Path) -> Iterator[StoreHarness]:
        yield from _harness(tmp_path, "async", lease_s=0.05)
