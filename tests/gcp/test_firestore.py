"""FirestoreStore on the Firestore emulator: the store contract, read-backs through the raw
client, and what regions, promote and replication_lag mean on one logical database."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from multiregion.errors import InvalidInput, PreconditionFailed
from multiregion.providers.gcp.firestore import LOCATIONS, META_ID, FirestoreStore, doc_id
from multiregion.testing.contract.harness import StoreHarness
from multiregion.testing.contract.store import StoreContract
from multiregion.testing.emulators.gcp import FirestoreEmulator
from tests.gcp.conftest import PROJECT, fresh_name


def open_store(emulator: FirestoreEmulator, collection: str, **settings: Any) -> FirestoreStore:
    return FirestoreStore(
        project=PROJECT,
        collection=collection,
        emulator_host=emulator.host,
        timeout_s=10,
        retry_timeout_s=5,
        **settings,
    )


def raw_client(emulator: FirestoreEmulator) -> firestore.Client:
    client = firestore.Client(project=PROJECT, credentials=AnonymousCredentials())
    client._emulator_host = emulator.host
    return client


@pytest.fixture
def collection() -> str:
    return fresh_name("coll")


@pytest.fixture
def store_harness(firestore_emulator: FirestoreEmulator, collection: str) -> Iterator[StoreHarness]:
    opened = [open_store(firestore_emulator, collection)]

    def reopen() -> FirestoreStore:
        opened.append(open_store(firestore_emulator, collection))
        return opened[-1]

    yield StoreHarness(store=opened[0], reopen=reopen, settle=lambda: None)
    for store in opened:
        store.close()


class TestFirestoreStore(StoreContract):
    pass


LEASE = {"lease_s": 0.3, "clock_drift_s": 0.05}
"""Write leases short enough that the contract's promotes wait little."""


class TestFirestoreStoreLeased(StoreContract):
    """The same contract with write leases instead of a transaction per write."""

    @pytest.fixture
    def store_harness(
        self, firestore_emulator: FirestoreEmulator, collection: str
    ) -> Iterator[StoreHarness]:
        opened = [open_store(firestore_emulator, collection, **LEASE)]

        def reopen() -> FirestoreStore:
            opened.append(open_store(firestore_emulator, collection, **LEASE))
            return opened[-1]

        yield StoreHarness(store=opened[0], reopen=reopen, settle=lambda: None)
        for store in opened:
            store.close()


def test_a_leased_writer_reads_the_meta_document_once_per_lease(
    firestore_emulator: FirestoreEmulator, collection: str
) -> None:
    """With a lease, writes are not checked against the meta document each time (the writer
    keeps its region after the document changed under it, until the lease runs out); without
    one, every write's transaction reads it and sees the change at once."""
    leased = open_store(firestore_emulator, collection, lease_s=0.6, clock_drift_s=0.05)
    strict = open_store(firestore_emulator, collection)
    raw = raw_client(firestore_emulator)
    try:
        assert (strict.promote_delay_s, leased.promote_delay_s) == (0.0, 0.65)
        token = leased.fence()
        assert leased.put("k", {"n": 1}, fence=token).region == "us-central1"
        # What a promote writes, without raising the epoch.
        raw.collection(collection).document(META_ID).set({"epoch": 0, "region": "us-central2"})
        assert leased.put("k", {"n": 2}, fence=token).region == "us-central1"
        assert strict.put("k", {"n": 3}).region == "us-central2"
        time.sleep(0.6)
        with pytest.raises(PreconditionFailed):
            leased.put("k", {"n": 4}, fence=token)
        assert leased.put("k", {"n": 5}).region == "us-central2"
    finally:
        raw.close()
        leased.close()
        strict.close()


def test_a_promote_outlasts_the_old_writers_lease(
    firestore_emulator: FirestoreEmulator, collection: str
) -> None:
    old_writer = open_store(firestore_emulator, collection, **LEASE)
    promoter = open_store(firestore_emulator, collection, **LEASE)
    try:
        old = old_writer.fence()
        old_writer.put("k", {"by": "old"}, fence=old)
        started = time.monotonic()
        new = promoter.promote("us-central2")
        assert time.monotonic() - started >= promoter.promote_delay_s
        stored = raw_client(firestore_emulator).collection(collection).document(META_ID).get()
        assert stored.to_dict()["writable_at"] <= time.time()
        with pytest.raises(PreconditionFailed):
            old_writer.put("k", {"by": "stale"}, fence=old)
        assert promoter.put("k", {"by": "new"}, fence=new).region == "us-central2"
    finally:
        old_writer.close()
        promoter.close()


def test_documents_hold_the_key_the_json_and_the_region(
    firestore_emulator: FirestoreEmulator, collection: str
) -> None:
    store = open_store(firestore_emulator, collection)
    key = "users/é/" + "x" * 1000
    item = store.put(key, {"nested": [[1, 2]], "big": 2**70})
    snapshot = raw_client(firestore_emulator).collection(collection).document(doc_id(key)).get()
    assert snapshot.exists
    assert snapshot.get("key") == key
    assert json.loads(snapshot.get("json")) == {"nested": [[1, 2]], "big": 2**70}
    assert snapshot.get("region") == store.write_region
    assert snapshot.update_time.rfc3339() == item.version
    assert "/" not in doc_id(key)
    assert len(doc_id(key).encode()) <= 1500


def test_promote_writes_epoch_and_region_to_the_meta_document(
    firestore_emulator: FirestoreEmulator, collection: str
) -> None:
    store = open_store(firestore_emulator, collection, location="eur3")
    assert store.regions == LOCATIONS["eur3"]
    assert store.fence().epoch == 0
    token = store.promote("europe-west4")
    meta = raw_client(firestore_emulator).collection(collection).document(META_ID).get()
    assert meta.to_dict() == {"epoch": 1, "region": "europe-west4"}
    assert token.epoch == 1
    assert store.put("k", {}).region == "europe-west4"
    assert [i.key for i in store.scan()] == ["k"], "the meta document is not an item"


def test_a_write_racing_promote_is_refused(
    firestore_emulator: FirestoreEmulator, collection: str
) -> None:
    old_writer = open_store(firestore_emulator, collection)
    token = old_writer.fence()
    open_store(firestore_emulator, collection).promote("us-central2")
    with pytest.raises(PreconditionFailed):
        old_writer.put_many({f"k{n}": {"n": n} for n in range(10)}, fence=token)
    assert list(old_writer.scan()) == []


def test_regions_and_lag_on_one_logical_store(
    firestore_emulator: FirestoreEmulator, collection: str
) -> None:
    store = open_store(firestore_emulator, collection, location="us-east1")
    assert store.regions == ("us-east1",)
    assert store.capabilities.strong
    assert not store.capabilities.multi_writer
    assert store.replication_lag("us-east1") == 0.0
    custom = open_store(firestore_emulator, collection, regions=["asia-a", "asia-b"])
    assert custom.regions == ("asia-a", "asia-b")
    assert custom.write_region == "asia-a"


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"collection": "a/b"}, "collection"),
        ({"collection": "__x__"}, "collection"),
        ({"project": "P"}, "project"),
        ({"location": "Nowhere!"}, "location"),
        ({"regions": "us-east1"}, "regions"),
        ({"write_region": "mars-1"}, "write_region"),
        ({"emulator_host": "firestore.example.com:8080"}, "emulator_host"),
        ({"page_size": 0}, "page_size"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {
        "project": PROJECT,
        "collection": "c",
        "emulator_host": "127.0.0.1:9",
    }
    with pytest.raises(InvalidInput) as caught:
        FirestoreStore(**{**args, **settings})
    assert caught.value.field == field


def test_lone_surrogate_keys_are_refused(
    firestore_emulator: FirestoreEmulator, collection: str
) -> None:
    store = open_store(firestore_emulator, collection)
    with pytest.raises(InvalidInput) as caught:
        store.put("bad\udc80", {})
    assert caught.value.field == "key"


def test_a_stopped_emulator_is_unavailable(collection: str) -> None:
    from multiregion.errors import Unavailable
    from multiregion.testing.emulators.process import free_port

    store = FirestoreStore(
        project=PROJECT,
        collection=collection,
        emulator_host=f"127.0.0.1:{free_port()}",
        timeout_s=2,
        retry_timeout_s=0,
    )
    with pytest.raises(Unavailable):
        store.get("k")
