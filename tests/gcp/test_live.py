"""Opt-in runs of the bucket and store contracts against a real GCP project.

Set ``MULTIREGION_LIVE=gcp``, Application Default Credentials, ``MULTIREGION_GCP_PROJECT`` and
``MULTIREGION_GCP_BUCKET`` (an empty bucket the bucket contract may fill and empty again);
everything is skipped, saying why, otherwise.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from multiregion.testing.contract.bucket import BucketContract
from multiregion.testing.contract.harness import BucketHarness, StoreHarness
from multiregion.testing.contract.store import StoreContract
from multiregion.testing.plugin import require_live

pytestmark = pytest.mark.live


def _setting(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"live gcp run needs {name}")
    return value


class TestLiveGcsBucket(BucketContract):
    @pytest.fixture
    def bucket_harness(self) -> Iterator[BucketHarness]:
        require_live("gcp")
        from google.cloud.storage import Client

        from multiregion.providers.gcp.storage import CHUNK_UNIT, GcsBucket

        project, name = _setting("MULTIREGION_GCP_PROJECT"), _setting("MULTIREGION_GCP_BUCKET")
        bucket = GcsBucket(bucket=name, project=project, chunk_size=CHUNK_UNIT)
        raw = Client(project=project).bucket(name)
        if any(True for _ in raw.list_blobs(max_results=1)):
            pytest.skip(f"live gcp run needs {name} to be empty: the contract owns it")

        def corrupt(key: str) -> None:
            blob = raw.get_blob(key)
            assert blob is not None
            data = bytearray(blob.download_as_bytes())
            data[0] ^= 0xFF
            blob.upload_from_string(bytes(data))

        yield BucketHarness(bucket=bucket, corrupt=corrupt, part_size=CHUNK_UNIT)
        for blob in raw.list_blobs():
            blob.delete()


class TestLiveFirestoreStore(StoreContract):
    @pytest.fixture
    def store_harness(self) -> Iterator[StoreHarness]:
        require_live("gcp")
        from multiregion.providers.gcp.firestore import FirestoreStore

        project = _setting("MULTIREGION_GCP_PROJECT")
        location = os.environ.get("MULTIREGION_GCP_LOCATION", "nam5")
        collection = f"multiregion-live-{uuid.uuid4().hex[:12]}"

        def open_store() -> FirestoreStore:
            return FirestoreStore(project=project, collection=collection, location=location)

        store = open_store()
        yield StoreHarness(store=store, reopen=open_store, settle=lambda: None)
        for item in store.scan():
            store.delete(item.key)
        store.close()
