"""Backups round-trip, carry only changes when incremental, and refuse damage before writing."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest

from multiregion import CorruptData, InvalidInput, NotFound
from multiregion.backup import Backups, content_digest
from multiregion.providers.local.bucket import LocalBucket
from multiregion.providers.local.store import LocalStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    with LocalStore(tmp_path / "source", ["region-a", "region-b"], replication="sync") as s:
        yield s


@pytest.fixture
def target(tmp_path: Path) -> Iterator[LocalStore]:
    with LocalStore(tmp_path / "target", ["eu-west"], replicate=False) as s:
        yield s


@pytest.fixture
def backups(tmp_path: Path) -> Backups:
    return Backups(LocalBucket(tmp_path / "bucket"), chunk_items=7)


def fill(store: LocalStore, count: int) -> None:
    store.put_many({f"order/{i:05d}": {"n": i, "tags": ["a", "b"]} for i in range(count)})


def test_full_backup_restores_every_item_into_another_store(
    store: LocalStore, target: LocalStore, backups: Backups
) -> None:
    fill(store, 50)
    manifest = backups.create(store, region="region-b")
    assert manifest.kind == "full"
    assert (manifest.item_count, manifest.changed, manifest.deleted) == (50, 50, 0)
    assert len(manifest.chunks) == 8  # 50 items in chunks of 7
    assert manifest.source["region"] == "region-b"
    assert backups.restore(manifest.backup_id, target) == 50
    assert content_digest(target) == content_digest(store)
    assert target.get("order/00042").value == {"n": 42, "tags": ["a", "b"]}


def test_incremental_backups_carry_only_changes_and_restore_the_same_state(
    store: LocalStore, target: LocalStore, backups: Backups
) -> None:
    fill(store, 30)
    full = backups.create(store)
    store.put("order/00003", {"n": 3, "changed": True})
    store.delete("order/00010")
    store.delete("order/00029")
    store.put("zzz/new", {"new": 1})
    incremental = backups.create(store, incremental_from=full.backup_id)
    assert incremental.kind == "incremental"
    assert incremental.base == full.backup_id
    assert (incremental.changed, incremental.deleted, incremental.item_count) == (2, 2, 29)
    again = backups.create(store, incremental_from=incremental.backup_id)
    assert (again.changed, again.deleted) == (0, 0)
    assert [m.backup_id for m in backups.chain(again.backup_id)] == [
        full.backup_id,
        incremental.backup_id,
        again.backup_id,
    ]
    # the target holds a stale copy of a deleted key: the chain removes it
    target.put("order/00010", {"stale": True})
    assert backups.restore(again.backup_id, target) == 29
    assert content_digest(target) == content_digest(store)


def test_a_flipped_byte_is_refused_and_nothing_is_written(
    tmp_path: Path, store: LocalStore, target: LocalStore
) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    backups = Backups(bucket, chunk_items=10)
    fill(store, 25)
    manifest = backups.create(store)
    last = manifest.chunks[-1].key
    data = bytearray(gzip.decompress(bucket.get(last)))
    data[5] ^= 0x01
    bucket.put(last, gzip.compress(bytes(data)))  # a consistent object, but not the backup's
    with pytest.raises(CorruptData, match="SHA-256 differs from the manifest"):
        backups.restore(manifest.backup_id, target)
    assert list(target.scan("")) == []


def test_a_missing_chunk_is_refused_and_nothing_is_written(
    tmp_path: Path, store: LocalStore, target: LocalStore
) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    backups = Backups(bucket, chunk_items=10)
    fill(store, 25)
    manifest = backups.create(store)
    bucket.delete(manifest.chunks[1].key)
    with pytest.raises(CorruptData, match="missing from the backup"):
        backups.restore(manifest.backup_id, target)
    assert list(target.scan("")) == []


def test_a_backup_without_manifest_is_incomplete(
    tmp_path: Path, store: LocalStore, target: LocalStore
) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    backups = Backups(bucket)
    fill(store, 3)
    manifest = backups.create(store)
    bucket.delete(f"backups/{manifest.backup_id}/manifest.json")
    with pytest.raises(NotFound, match="missing or incomplete"):
        backups.restore(manifest.backup_id, target)
    assert backups.list() == []


def test_a_missing_base_breaks_the_chain(
    tmp_path: Path, store: LocalStore, target: LocalStore
) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    backups = Backups(bucket)
    fill(store, 3)
    full = backups.create(store)
    store.put("x/1", {"a": 1})
    incremental = backups.create(store, incremental_from=full.backup_id)
    bucket.delete(f"backups/{full.backup_id}/manifest.json")
    with pytest.raises(CorruptData, match=r"base .* is missing"):
        backups.restore(incremental.backup_id, target)
    assert list(target.scan("")) == []


def test_verify_restores_into_a_scratch_store(
    tmp_path: Path, store: LocalStore, backups: Backups
) -> None:
    fill(store, 20)
    manifest = backups.create(store)
    with LocalStore(tmp_path / "scratch", ["scratch"], replicate=False) as scratch:
        assert backups.verify(manifest.backup_id, scratch) == 20
        with pytest.raises(InvalidInput) as info:
            backups.verify(manifest.backup_id, scratch)
        assert info.value.field == "scratch"


def test_retention_keeps_the_newest_and_what_they_need(store: LocalStore, backups: Backups) -> None:
    fill(store, 5)
    first = backups.create(store)
    second = backups.create(store)
    store.put("x/1", {"a": 1})
    third = backups.create(store, incremental_from=second.backup_id)
    deleted = backups.prune(keep_last=1)
    assert deleted == [first.backup_id]  # second stays: third needs it
    assert [m.backup_id for m in backups.list()] == [second.backup_id, third.backup_id]
    assert backups.prune(older_than_s=3600) == []
    with pytest.raises(InvalidInput):
        backups.prune()


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "b")
    with pytest.raises(InvalidInput) as info:
        Backups(bucket, prefix="no-slash")
    assert info.value.field == "prefix"
    with pytest.raises(InvalidInput) as info:
        Backups(bucket, chunk_items=0)
    assert info.value.field == "chunk_items"
