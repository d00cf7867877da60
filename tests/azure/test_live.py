"""The store and bucket contracts against a real Azure account: opt-in, skipped otherwise.

Set ``MULTIREGION_LIVE=azure`` and sign in as DefaultAzureCredential expects (``az login``,
environment variables or a managed identity), then name the resources:

- ``MULTIREGION_AZURE_BLOB_URL``: ``https://<account>.blob.core.windows.net`` (Storage Blob Data
  Contributor); each test creates and deletes a container of its own.
- ``MULTIREGION_AZURE_COSMOS_URL``: ``https://<account>.documents.azure.com:443/``,
  ``MULTIREGION_AZURE_COSMOS_REGIONS``: ``westeurope=West Europe,northeurope=North Europe`` and
  ``MULTIREGION_AZURE_COSMOS_KEY``: each test creates a container of its own, which Entra ID
  data-plane roles cannot do (an application would be given an existing container instead).

The router and probe contracts do not run live: Traffic Manager cannot probe loopback servers.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from multiregion.testing.contract.bucket import BucketContract
from multiregion.testing.contract.harness import BucketHarness, StoreHarness
from multiregion.testing.contract.store import StoreContract
from multiregion.testing.plugin import require_live

REPLICATION_BOUND_S = 5.0
"""Cosmos DB exposes no replication position: settle waits this long for the replicas."""


def _setting(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"MULTIREGION_LIVE=azure needs {name}")
    return value


def _credential() -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


class TestLiveBlobBucket(BucketContract):
    @pytest.fixture
    def bucket_harness(self) -> Iterator[BucketHarness]:
        require_live("azure")
        from azure.storage.blob import ContainerClient

        from multiregion.providers.azure.blob import BlobBucket
        from tests.azure.test_blob_contract import corrupter

        url, credential = _setting("MULTIREGION_AZURE_BLOB_URL"), _credential()
        name = f"mr-live-{uuid.uuid4().hex[:12]}"
        bucket = BlobBucket(url, name, credential=credential, block_size=4 * 1024 * 1024)
        raw = ContainerClient(url, name, credential=credential)
        yield BucketHarness(bucket=bucket, corrupt=corrupter(raw), part_size=4 * 1024 * 1024)
        raw.delete_container()
        raw.close()
        bucket.close()


class TestLiveCosmosStore(StoreContract):
    @pytest.fixture
    def store_harness(self) -> Iterator[StoreHarness]:
        require_live("azure")
        from multiregion.providers.azure.cosmos import CosmosStore

        url, key = (
            _setting("MULTIREGION_AZURE_COSMOS_URL"),
            _setting("MULTIREGION_AZURE_COSMOS_KEY"),
        )
        pairs = [p.split("=", 1) for p in _setting("MULTIREGION_AZURE_COSMOS_REGIONS").split(",")]
        locations = {region.strip(): name.strip() for region, name in pairs}
        container = f"mr-live-{uuid.uuid4().hex[:12]}"
        opened: list[CosmosStore] = []

        def open_store() -> CosmosStore:
            opened.append(
                CosmosStore(
                    url,
                    "multiregion-tests",
                    container,
                    list(locations),
                    key=key,
                    locations=locations,
                )
            )
            return opened[-1]

        settle: Callable[[], None] = lambda: time.sleep(REPLICATION_BOUND_S)  # noqa: E731
        yield StoreHarness(store=open_store(), reopen=open_store, settle=settle)
        for store in opened:
            store.close()
        from azure.cosmos import CosmosClient

        with CosmosClient(url, credential=key) as client:
            client.get_database_client("multiregion-tests").delete_container(container)
