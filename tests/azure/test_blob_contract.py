"""The bucket contract on the Blob Storage adapter against Azurite."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from azure.storage.blob import ContainerClient

from multiregion.providers.azure.blob import BlobBucket
from multiregion.testing.contract.bucket import BucketContract
from multiregion.testing.contract.harness import BucketHarness
from multiregion.testing.emulators.azure import AZURITE_KEY, Azurite
from tests.azure.conftest import fresh_name

BLOCK = 256 * 1024
"""Small blocks, so that a test file of a few blocks stays small and quick."""


def corrupter(container: ContainerClient) -> Callable[[str], None]:
    """Flips one byte of a blob's content with the raw SDK, keeping its metadata (and SHA-256)."""

    def corrupt(key: str) -> None:
        blob = container.get_blob_client(key)
        downloaded = blob.download_blob()
        data = bytearray(downloaded.readall())
        data[len(data) // 2] ^= 0xFF
        blob.upload_blob(bytes(data), overwrite=True, metadata=downloaded.properties.metadata)

    return corrupt


class TestBlobBucket(BucketContract):
    @pytest.fixture
    def bucket_harness(self, azurite: Azurite) -> Iterator[BucketHarness]:
        bucket = BlobBucket(
            azurite.account_url,
            fresh_name("bucket-"),
            account_key=AZURITE_KEY,
            block_size=BLOCK,
            timeout_s=10,
            retries=1,
        )
        raw = ContainerClient(
            azurite.account_url,
            bucket._container_name,
            credential={"account_name": "devstoreaccount1", "account_key": AZURITE_KEY},
        )
        yield BucketHarness(bucket=bucket, corrupt=corrupter(raw), part_size=BLOCK)
        raw.close()
        bucket.close()
