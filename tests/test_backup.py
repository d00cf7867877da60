"""Backups round-trip, carry only changes when incremental, and refuse damage before writing."""

from __future__ import annotations

import gzip
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from multiregion import CorruptData, InvalidInput, NotFound, Unavailable
from multiregion.backup import Backups, ObjectEntry, content_digest, restore_test_action
from multiregion.backup_encryption import EnvelopeKey
from multiregion.providers.local.bucket import LocalBucket
from multiregion.providers.local.store import LocalStore
from multiregion.serverless import Dispatcher, Policy, Rule
from tests.serverless.payloads import load


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


# ---------------------------------------------------------------- damage and killed backups

FORMAT1 = Path(__file__).parent / "backup_format1"


def _object_file(bucket_dir: Path, key: str) -> Path:
    *folders, name = key.split("/")
    return bucket_dir.joinpath(*(f"d.{f}" for f in folders), f"o.{name}")


def test_a_damaged_manifest_is_skipped_with_a_warning_by_list_and_prune(
    tmp_path: Path, store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    backups = Backups(bucket)
    fill(store, 5)
    first, damaged, flipped, third = (backups.create(store) for _ in range(4))
    # a flipped byte on disk (the bucket's own SHA-256 catches it) ...
    on_disk = _object_file(tmp_path / "bucket", f"backups/{damaged.backup_id}/manifest.json")
    raw = bytearray(on_disk.read_bytes())
    raw[0] ^= 0x01
    on_disk.write_bytes(bytes(raw))
    # ... and a consistent object whose text is no longer a manifest
    key = f"backups/{flipped.backup_id}/manifest.json"
    text = bytearray(bucket.get(key))
    text[0] ^= 0x01
    bucket.put(key, bytes(text))
    with caplog.at_level("WARNING", logger="multiregion.backup"):
        listed = backups.list()
    assert [m.backup_id for m in listed] == [first.backup_id, third.backup_id]
    assert damaged.backup_id in caplog.text
    assert flipped.backup_id in caplog.text
    found = backups.inventory()
    assert sorted(d.backup_id for d in found.damaged) == sorted(
        [damaged.backup_id, flipped.backup_id]
    )
    assert backups.prune(keep_last=1) == [first.backup_id]
    assert [m.backup_id for m in backups.list()] == [third.backup_id]
    assert len(backups.inventory().damaged) == 2  # left for an operator to look at


def _killed_backup(tmp_path: Path, store_path: Path) -> None:
    """Runs a backup in a child process and kills it (SIGKILL) once it has uploaded chunks."""
    marker = tmp_path / "midway"
    script = f"""
import time
from pathlib import Path
from multiregion.backup import Backups
from multiregion.providers.local.bucket import LocalBucket
from multiregion.providers.local.store import LocalStore
from multiregion.serverless import Dispatcher, Policy, Rule
from tests.serverless.payloads import load

seen = 0
def progress(n):
    global seen
    seen += n
    if seen == 120:
        Path({str(marker)!r}).touch()
        time.sleep(120)

with LocalStore({str(store_path)!r}, ["region-a", "region-b"], replication="sync") as store:
    Backups(LocalBucket({str(tmp_path / "bucket")!r}), chunk_items=10).create(
        store, progress=progress
    )
"""
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        bucket = LocalBucket(tmp_path / "bucket")
        while time.monotonic() < deadline:
            if marker.exists() and Backups(bucket).inventory().incomplete:
                break
            assert child.poll() is None, "the backup process ended by itself"
            time.sleep(0.05)
        else:
            pytest.fail("the backup process uploaded nothing in 60 s")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


def test_prune_removes_the_chunks_of_a_killed_backup_after_a_grace_period(
    tmp_path: Path, store: LocalStore
) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    backups = Backups(bucket, chunk_items=10)
    fill(store, 200)
    kept = backups.create(store)
    _killed_backup(tmp_path, tmp_path / "source")
    [orphan] = backups.inventory().incomplete
    assert orphan.objects >= 1
    assert [m.backup_id for m in backups.list()] == [kept.backup_id]
    assert backups.prune(keep_last=1) == []  # within the grace period: maybe still running
    assert [i.backup_id for i in backups.inventory().incomplete] == [orphan.backup_id]
    assert backups.prune(keep_last=1, orphan_grace_s=0) == [orphan.backup_id]
    assert list(bucket.list(f"backups/{orphan.backup_id}/")) == []
    assert backups.inventory().incomplete == ()
    assert backups.check(kept.backup_id) == 200


def test_a_backup_written_by_format_1_still_restores(tmp_path: Path, target: LocalStore) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    for path in sorted(FORMAT1.rglob("*.gz")) + sorted(FORMAT1.rglob("manifest.json")):
        bucket.put(path.relative_to(FORMAT1).as_posix(), path.read_bytes())
    backups = Backups(bucket)
    newest = backups.latest()
    assert (newest.backup_id, newest.format_version) == ("20261202T090052Z-3c7c1ce6", 1)
    assert backups.restore(newest.backup_id, target) == 12
    restored = {item.key: item.value for item in target.scan("")}
    expected = {
        f"order/{i:03d}": {"n": i, "name": f"café {i}", "tags": ["a", i]} for i in range(12)
    }
    del expected["order/004"]
    expected["order/007"] = {"n": 7, "changed": True}
    expected["zz/new"] = {"x": 1.5}
    assert restored == expected


def test_chunks_keep_the_format_1_lines(tmp_path: Path, target: LocalStore) -> None:
    """One serialisation per item writes the very lines format 1 wrote (timestamps aside)."""
    backups = Backups(LocalBucket(tmp_path / "bucket"), chunk_items=5)
    old_full = FORMAT1 / "backups" / "20261202T090052Z-bb5fba37"
    old = [
        json.loads(line)
        for path in sorted(old_full.glob("chunk-*"))
        for line in gzip.decompress(path.read_bytes()).splitlines()
    ]
    target.put_many((record["k"], record["v"]) for record in old)
    manifest = backups.create(target)
    new_lines = [
        line
        for entry in manifest.chunks
        for line in gzip.decompress(backups.bucket.get(entry.key)).splitlines()
    ]
    old_lines = [
        line
        for path in sorted(old_full.glob("chunk-*"))
        for line in gzip.decompress(path.read_bytes()).splitlines()
    ]
    strip = re.compile(rb',"t":[0-9.e+-]+,')
    assert [strip.sub(b",", line) for line in new_lines] == [
        strip.sub(b",", line) for line in old_lines
    ]
    old_index = b"".join(gzip.decompress(p.read_bytes()) for p in sorted(old_full.glob("index-*")))
    new_index = b"".join(gzip.decompress(backups.bucket.get(e.key)) for e in manifest.index)
    assert new_index == old_index


# ---------------------------------------------------------------- client-side encryption


def test_envelope_encryption_seals_every_object_and_needs_the_key(
    tmp_path: Path, store: LocalStore, target: LocalStore
) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    key = EnvelopeKey.generate("backup-kek-1")
    assert key.secret.hex() not in repr(key)
    assert "backup-kek-1" in repr(key)
    fill(store, 30)
    manifest = Backups(bucket, chunk_items=10, encryption=key).create(store)
    assert manifest.encryption is not None
    assert manifest.encryption["key_id"] == "backup-kek-1"
    for entry in (*manifest.chunks, *manifest.index):
        stored = bucket.get(entry.key)
        with pytest.raises((OSError, EOFError)):  # not a readable gzip stream
            gzip.decompress(stored)
        assert b"order/" not in stored
    assert key.secret.hex() not in bucket.get(f"backups/{manifest.backup_id}/manifest.json").hex()
    with pytest.raises(InvalidInput, match="backup-kek-1") as info:
        Backups(bucket).restore(manifest.backup_id, target)
    assert info.value.field == "encryption"
    with pytest.raises(InvalidInput, match="not 'other'"):
        Backups(bucket, encryption=EnvelopeKey.generate("other")).restore(
            manifest.backup_id, target
        )
    impostor = EnvelopeKey.generate("backup-kek-1")
    with pytest.raises(CorruptData, match="does not decrypt"):
        Backups(bucket, encryption=impostor).restore(manifest.backup_id, target)
    assert list(target.scan("")) == []
    assert Backups(bucket, encryption=key).restore(manifest.backup_id, target) == 30
    assert content_digest(target) == content_digest(store)


def test_an_encrypted_object_moved_under_another_name_does_not_open(
    tmp_path: Path, store: LocalStore, target: LocalStore
) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    key = EnvelopeKey.generate("k")
    backups = Backups(bucket, chunk_items=10, encryption=key)
    fill(store, 20)
    manifest = backups.create(store)
    first, second = manifest.chunks
    moved = attrs.evolve(
        manifest, chunks=(ObjectEntry(first.key, second.sha256, first.lines), second)
    )
    bucket.put(first.key, bucket.get(second.key))  # the checksums in the manifest still agree
    bucket.put(f"backups/{manifest.backup_id}/manifest.json", moved.to_json())
    with pytest.raises(CorruptData, match="does not decrypt"):
        backups.restore(manifest.backup_id, target)


# ---------------------------------------------------------------- restore tests


def test_test_restore_records_the_last_verified_restore(
    tmp_path: Path, store: LocalStore, backups: Backups
) -> None:
    assert backups.last_verified() is None
    fill(store, 40)
    backups.create(store)
    store.put("sentinel/x", {"alive": True})
    latest = backups.create(store)
    assert latest.sentinel == {"k": "order/00000", "h": latest.sentinel["h"]}
    with LocalStore(tmp_path / "scratch", ["scratch"], replicate=False) as scratch:
        record = backups.test_restore(scratch, sentinel="sentinel/x", max_age_s=3600)
    assert (record.backup_id, record.item_count) == (latest.backup_id, 41)
    assert backups.last_verified() == record
    assert not record.overdue()
    assert record.overdue(now=record.verified_at + 3601)
    assert record.age_s(now=record.verified_at + 10) == pytest.approx(10)


def test_a_failed_restore_test_records_nothing(
    tmp_path: Path, store: LocalStore, backups: Backups
) -> None:
    fill(store, 20)
    manifest = backups.create(store)
    with (
        LocalStore(tmp_path / "s1", ["scratch"], replicate=False) as scratch,
        pytest.raises(CorruptData, match="sentinel 'missing/key'"),
    ):
        backups.test_restore(scratch, sentinel="missing/key")
    backups.bucket.delete(manifest.chunks[0].key)
    with (
        LocalStore(tmp_path / "s2", ["scratch"], replicate=False) as scratch,
        pytest.raises(CorruptData, match="missing from the backup"),
    ):
        backups.test_restore(scratch)
    assert backups.last_verified() is None


# ---------------------------------------------------------------- speed at flat memory


class _SlowBucket(LocalBucket):
    """A LocalBucket whose puts take a while and count how many run at once."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def put(self, key: str, data: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.05)
            return super().put(key, data, **kwargs)
        finally:
            with self.lock:
                self.running -= 1


def test_chunks_are_uploaded_in_parallel_at_most_concurrency_at_once(
    tmp_path: Path, store: LocalStore, target: LocalStore
) -> None:
    bucket = _SlowBucket(tmp_path / "bucket")
    fill(store, 120)
    manifest = Backups(bucket, chunk_items=10, concurrency=3).create(store)
    assert 2 <= bucket.most <= 3
    assert [e.key.rsplit("/", 1)[1] for e in manifest.chunks] == [
        f"chunk-{n:06d}.jsonl.gz" for n in range(1, 13)
    ]
    assert Backups(bucket).restore(manifest.backup_id, target) == 120
    assert content_digest(target) == content_digest(store)


def test_chunks_are_compressed_at_a_fast_level(store: LocalStore, backups: Backups) -> None:
    """gzip's XFL byte says 2 for the slowest level (9), which the first format used."""
    fill(store, 20)
    manifest = backups.create(store)
    header = backups.bucket.get(manifest.chunks[0].key)[:10]
    assert header[:2] == b"\x1f\x8b"
    assert header[8] != 2
    with pytest.raises(InvalidInput) as info:
        Backups(backups.bucket, compression_level=10)
    assert info.value.field == "compression_level"


def test_a_failed_upload_stops_the_backup_and_writes_no_manifest(
    tmp_path: Path, store: LocalStore
) -> None:
    class Failing(LocalBucket):
        def put(self, key: str, data: Any, **kwargs: Any) -> Any:
            if key.endswith("chunk-000003.jsonl.gz"):
                raise Unavailable("the bucket went away")
            return super().put(key, data, **kwargs)

    bucket = Failing(tmp_path / "bucket")
    fill(store, 100)
    with pytest.raises(Unavailable):
        Backups(bucket, chunk_items=10).create(store)
    inventory = Backups(bucket).inventory()
    assert inventory.backups == ()
    assert len(inventory.incomplete) == 1


def test_a_scheduled_restore_test_runs_as_a_serverless_rule(
    tmp_path: Path, store: LocalStore, backups: Backups
) -> None:
    """The action a schedule fires (here through the serverless Dispatcher): restore the
    latest backup into a fresh scratch store, check it, record it."""
    fill(store, 30)
    latest = backups.create(store)
    action = restore_test_action(backups, sentinel="order/00029", max_age_s=86400)
    with LocalStore(tmp_path / "ledger", ["region-a"], replicate=False) as ledger:
        handler = Dispatcher(Policy([Rule("ServerCpu*", action)]), ledger_store=ledger)
        outcome = handler.handle(load("aws_eventbridge_alarm.json"))
    assert outcome.status == "ran"
    assert outcome.detail == f"restore test of {latest.backup_id}: 30 items verified"
    record = backups.last_verified()
    assert record is not None
    assert (record.backup_id, record.max_age_s) == (latest.backup_id, 86400)
    with pytest.raises(InvalidInput) as info:
        restore_test_action(backups, max_age_s=-1)
    assert info.value.field == "max_age_s"
