"""Backups move between providers: a store of one provider is backed up into another provider's
bucket and restored into a third provider's store, every item equal; a damaged backup in a cloud
bucket is refused before anything is written.

The hops are chosen so that every provider is a source store, a bucket and a target store at
least once, each time with three different providers, without the time of the full cube.
"""

from __future__ import annotations

import gzip
from typing import Any

import pytest

from multiregion.backup import Backups, content_digest
from multiregion.backup_encryption import EnvelopeKey
from multiregion.errors import CorruptData, InvalidInput
from multiregion.interfaces import BackupBucket, ReplicatedStore
from tests.crossprovider.conftest import OpenBucket, OpenStore

ITEMS = 200
"""A few hundred items; cosmosdb-server takes some 30 ms per write on two cores."""
CHUNK_ITEMS = 32
"""Several chunks per backup (200 items -> 7), so that chunking is crossed too."""

TENANTS = ("acme", "zoë", "東京", "a b", "a?b#c\\d", "ünïcödé/deep/er")
"""Key parts with '/', spaces, characters Cosmos ids refuse, and unicode within the BMP (keys
beyond the BMP are stated separately, below)."""


def dataset(count: int = ITEMS) -> dict[str, dict[str, Any]]:
    """Nested JSON values whose numbers every provider keeps exactly (non-integral floats,
    integers within 2**53)."""
    return {
        f"tenants/{TENANTS[i % len(TENANTS)]}/orders/{i:04d}": {
            "n": i,
            "neg": -i * 7,
            "price": i + 0.25,
            "name": f"Zoë #{i} \u2013 東京 \u201cquoted\u201d \\ /",
            "tags": ["a", "b", str(i)],
            "nested": {
                "ok": i % 2 == 0,
                "none": None,
                "deep": {"list": [[i, -i, 1.5], {"k": "v/é"}], "empty": {}, "nothing": []},
            },
        }
        for i in range(count)
    }


def contents(store: ReplicatedStore) -> dict[str, dict[str, Any]]:
    return {item.key: item.value for item in store.scan("")}


def assert_same_items(
    target: ReplicatedStore, source: ReplicatedStore, expected: dict[str, dict[str, Any]]
) -> None:
    assert content_digest(target) == content_digest(source)
    restored = contents(target)
    assert sorted(restored) == sorted(expected)
    for key in sorted(expected)[::17]:  # a sample, read one by one through the target's get
        assert target.get(key).value == expected[key], key
    assert restored == expected


ROUTES = [
    ("local", "azure", "gcp", "aws", "local"),
    ("aws", "local", "azure", "gcp", "aws"),
]
"""Store, bucket, store, bucket, store: each store is backed up and restored into the next, so
the hops are the triples (local, azure, gcp), (gcp, aws, local), (aws, local, azure) and
(azure, gcp, aws). Every provider is a source store, a bucket and a target store once, never
twice in a hop, and the slow Cosmos emulator is written to once (as a target, then read as a
source)."""


def _route_id(route: tuple[str, ...]) -> str:
    return "_".join(
        f"{provider}-{'store' if position % 2 == 0 else 'bucket'}"
        for position, provider in enumerate(route)
    )


def _hop(
    source: ReplicatedStore,
    bucket: BackupBucket,
    target: ReplicatedStore,
    data: dict[str, dict[str, Any]],
    provider: str,
) -> None:
    backups = Backups(bucket, chunk_items=CHUNK_ITEMS)
    manifest = backups.create(source, source={"provider": provider})
    assert (manifest.kind, manifest.item_count, manifest.changed, manifest.deleted) == (
        "full",
        ITEMS,
        ITEMS,
        0,
    )
    assert len(manifest.chunks) == -(-ITEMS // CHUNK_ITEMS)
    assert manifest.source == {
        "store": type(source).__name__,
        "region": source.write_region,
        "provider": provider,
    }
    stored = {info.key for info in bucket.list(f"backups/{manifest.backup_id}/")}
    assert stored == {
        *(entry.key for entry in (*manifest.chunks, *manifest.index)),
        f"backups/{manifest.backup_id}/manifest.json",
    }
    assert [m.backup_id for m in backups.list()] == [manifest.backup_id]
    assert backups.restore(manifest.backup_id, target) == ITEMS
    assert_same_items(target, source, data)


@pytest.mark.parametrize("route", ROUTES, ids=[_route_id(route) for route in ROUTES])
def test_backups_restore_into_other_providers_stores_with_every_item_equal(
    open_store: OpenStore, open_bucket: OpenBucket, route: tuple[str, ...]
) -> None:
    data = dataset()
    source = open_store(route[0])
    source.put_many(data)
    for position in range(1, len(route), 2):
        bucket, target = open_bucket(route[position]), open_store(route[position + 1])
        _hop(source, bucket, target, data, route[position - 1])
        source = target


def test_an_incremental_chain_restores_across_three_clouds(
    open_store: OpenStore, open_bucket: OpenBucket
) -> None:
    """Firestore backed up into Blob Storage, full then incremental, restored into DynamoDB."""
    source, bucket, target = open_store("gcp"), open_bucket("azure"), open_store("aws")
    data = dataset()
    source.put_many(data)
    backups = Backups(bucket, chunk_items=CHUNK_ITEMS)
    full = backups.create(source)
    keys = sorted(data)
    changed: dict[str, dict[str, Any]] = {
        keys[3]: {"changed": True, "n": 3.5},
        keys[150]: {"nested": {"x": ["é"]}},
    }
    deleted = [keys[10], keys[-1]]  # the last key: its tombstone comes after the scan ends
    added: dict[str, dict[str, Any]] = {"tenants/zoë/new/1": {"new": 1}, "zzz/東京": {"new": [2]}}
    source.put_many({**changed, **added})
    for key in deleted:
        source.delete(key)

    incremental = backups.create(source, incremental_from=full.backup_id)

    assert (incremental.kind, incremental.base) == ("incremental", full.backup_id)
    assert (incremental.changed, incremental.deleted, incremental.item_count) == (4, 2, ITEMS)
    expected = {k: v for k, v in {**data, **changed, **added}.items() if k not in deleted}
    target.put(deleted[0], {"stale": True})  # an old copy of a deleted key: the chain removes it
    assert backups.restore(incremental.backup_id, target) == ITEMS
    assert_same_items(target, source, expected)


# --------------------------------------------------------------------------- damage

DAMAGE_TARGETS = {"azure": "gcp", "gcp": "azure", "aws": "azure"}
"""A cloud bucket holding the damaged backup, and the other provider's store it is restored
into (refusals write nothing, so the slow Cosmos emulator costs nothing as a target)."""
DAMAGE_ITEMS = 60


def _damaged_setup(
    open_store: OpenStore, open_bucket: OpenBucket, bucket_provider: str
) -> tuple[Backups, str, str, ReplicatedStore]:
    """A local store backed up into the cloud bucket; returns the backups, the backup id, the
    key of its last chunk, and an empty store of another provider to restore into."""
    source = open_store("local")
    source.put_many(dataset(DAMAGE_ITEMS))
    backups = Backups(open_bucket(bucket_provider), chunk_items=25)
    manifest = backups.create(source)
    assert len(manifest.chunks) == 3
    assert backups.check(manifest.backup_id) == DAMAGE_ITEMS  # sound before the damage
    target = open_store(DAMAGE_TARGETS[bucket_provider])
    # the last chunk: had restore written while reading, the first chunks would be in the target
    return backups, manifest.backup_id, manifest.chunks[-1].key, target


@pytest.mark.parametrize("bucket_provider", sorted(DAMAGE_TARGETS))
def test_a_flipped_byte_in_a_cloud_bucket_is_refused_and_nothing_is_written(
    open_store: OpenStore, open_bucket: OpenBucket, bucket_provider: str
) -> None:
    backups, backup_id, chunk, target = _damaged_setup(open_store, open_bucket, bucket_provider)
    lines = bytearray(gzip.decompress(backups.bucket.get(chunk)))
    lines[lines.index(b'"n":') + 4] ^= 0x01  # one digit of a value: still valid JSON
    altered = gzip.compress(bytes(lines))
    backups.bucket.put(chunk, altered)  # through the adapter: the bucket's own checksum is right
    assert backups.bucket.get(chunk) == altered  # the bucket serves it without complaint

    with pytest.raises(CorruptData, match="SHA-256 differs from the manifest"):
        backups.restore(backup_id, target)
    assert list(target.scan("")) == []
    with pytest.raises(CorruptData, match="SHA-256 differs from the manifest"):
        backups.check(backup_id)


@pytest.mark.parametrize("bucket_provider", sorted(DAMAGE_TARGETS))
def test_a_missing_chunk_in_a_cloud_bucket_is_refused_and_nothing_is_written(
    open_store: OpenStore, open_bucket: OpenBucket, bucket_provider: str
) -> None:
    backups, backup_id, chunk, target = _damaged_setup(open_store, open_bucket, bucket_provider)
    backups.bucket.delete(chunk)

    with pytest.raises(CorruptData, match="missing from the backup"):
        backups.restore(backup_id, target)
    assert list(target.scan("")) == []


# --------------------------------------------------------------------------- exact values

CLOUD_STORES = ["azure", "gcp", "aws"]


@pytest.mark.parametrize("target_provider", CLOUD_STORES)
def test_integral_floats_and_big_integers_survive_a_restore(
    open_store: OpenStore, open_bucket: OpenBucket, target_provider: str
) -> None:
    source, target = open_store("local"), open_store(target_provider)
    data = {"numbers/1": {"float": 2.0, "big": 2**60, "list": [1.0, -0.5, 2**53 + 1]}}
    source.put_many(data)
    backups = Backups(open_bucket("local"))
    backups.restore(backups.create(source).backup_id, target)
    assert contents(target) == data
    assert [type(x) for x in target.get("numbers/1").value["list"]] == [float, float, int]
    assert content_digest(target) == content_digest(source)


@pytest.mark.parametrize("target_provider", CLOUD_STORES)
def test_keys_beyond_the_bmp_keep_code_point_order(
    open_store: OpenStore, open_bucket: OpenBucket, target_provider: str
) -> None:
    source, target = open_store("local"), open_store(target_provider)
    data = {key: {"key": key} for key in ("k/\uff21", "k/\U0001f600", "k/é", "k/z")}
    source.put_many(data)
    backups = Backups(open_bucket("local"))
    backups.restore(backups.create(source).backup_id, target)
    assert [item.key for item in target.scan("")] == sorted(data)
    assert content_digest(target) == content_digest(source)


@pytest.mark.parametrize("bucket_provider", ["aws", "azure", "gcp"])
def test_an_encrypted_backup_is_ciphertext_in_every_cloud_and_restores_with_the_key(
    open_store: OpenStore, open_bucket: OpenBucket, bucket_provider: str
) -> None:
    """Client-side envelope encryption: what each cloud stores is AES-GCM ciphertext (no gzip
    header, no key or value text), whatever that cloud's own encryption at rest; only the key
    opens it, in another store."""
    data = dataset(60)
    source, target = open_store("local"), open_store("local")
    source.put_many(data.items())
    bucket = open_bucket(bucket_provider)
    key = EnvelopeKey.generate("kek-2026")
    manifest = Backups(bucket, chunk_items=CHUNK_ITEMS, encryption=key).create(source)
    for entry in (*manifest.chunks, *manifest.index):
        stored = bucket.get(entry.key)
        with pytest.raises((OSError, EOFError)):  # not a readable gzip stream
            gzip.decompress(stored)
        assert b"tenants/" not in stored
        assert "Zoë".encode() not in stored
    with pytest.raises(InvalidInput, match="kek-2026"):
        Backups(bucket).restore(manifest.backup_id, target)
    assert next(target.scan(""), None) is None
    assert Backups(bucket, encryption=key).restore(manifest.backup_id, target) == 60
    assert contents(target) == data
