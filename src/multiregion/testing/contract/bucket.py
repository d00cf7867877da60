"""The BackupBucket contract: what every bucket adapter does, stated once.

A provider runs it by subclassing ``BucketContract`` in a test module and defining a
``bucket_harness`` fixture that returns a ``BucketHarness`` with an empty bucket. Where the
bucket's capabilities lack something, the test asserts that asking for it raises
``Unsupported`` (and changes nothing) instead of skipping.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from multiregion.errors import (
    AlreadyExists,
    CorruptData,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Unsupported,
)
from multiregion.interfaces import BackupBucket
from multiregion.model import ObjectInfo
from multiregion.testing.contract.harness import BucketHarness
from multiregion.testing.contract.hooks import hooks_blocked

PAGED_OBJECTS = 1050
"""More than one page of a cloud listing (1000), so adapters must follow continuation."""
HOOKS = (
    "_put",
    "_get",
    "_stream",
    "_head",
    "_list",
    "_delete",
    "_upload_file",
    "_download_file",
)
"""The adapter's side of ``BackupBucket``: every service call happens in one of these."""
CLOCK_SKEW_S = 300.0
"""How far an emulator's or service's ``updated_at`` may be from this machine's clock."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _keys(bucket: BackupBucket, prefix: str = "") -> list[str]:
    return [info.key for info in bucket.list(prefix)]


class _ReadOnly:
    """A stream with nothing but ``read`` (no seek, no len), like a pipe or socket."""

    def __init__(self, data: bytes, piece: int = 7001) -> None:
        self._source = io.BytesIO(data)
        self._piece = piece

    def read(self, size: int = -1) -> bytes:
        return self._source.read(self._piece if size < 0 else min(size, self._piece))


def _invalid(
    bucket: BackupBucket, field: str, call: Callable[..., Any], *args: Any, **kwargs: Any
) -> None:
    """``call(*args, **kwargs)`` raises ``InvalidInput`` naming ``field``, before any hook of
    ``bucket`` runs."""
    with hooks_blocked(bucket, HOOKS), pytest.raises(InvalidInput) as caught:
        call(*args, **kwargs)
    assert caught.value.field == field, f"expected the error to name {field!r}: {caught.value}"


class BucketContract:
    """Subclass in a test module (``class TestMyBucket(BucketContract)``) and define
    the ``bucket_harness`` fixture."""

    # ------------------------------------------------------------------- round trips

    def test_put_get_head_round_trip_with_metadata(self, bucket_harness: BucketHarness) -> None:
        bucket = bucket_harness.bucket
        data = os.urandom(10_000)
        metadata = {"app": "billing", "backup-id": "nightly 2026-11-24T01:00Z"}
        info = bucket.put("backups/db.dump", data, metadata=metadata)
        assert isinstance(info, ObjectInfo)
        assert info.key == "backups/db.dump"
        assert info.size == len(data)
        assert info.sha256 == _sha(data)
        assert info.version
        assert abs(info.updated_at - time.time()) < CLOCK_SKEW_S
        assert dict(info.metadata) == metadata
        assert bucket.get("backups/db.dump") == data
        head = bucket.head("backups/db.dump")
        assert (head.key, head.size, head.version, head.sha256) == (
            info.key,
            info.size,
            info.version,
            info.sha256,
        )
        assert dict(head.metadata) == metadata
        assert head.retain_until is None

    def test_put_from_streams(self, bucket_harness: BucketHarness) -> None:
        bucket = bucket_harness.bucket
        data = os.urandom(300_000)
        assert bucket.put("from/bytesio", io.BytesIO(data)).sha256 == _sha(data)
        pipe: Any = _ReadOnly(data)
        assert bucket.put("from/read-only", pipe).size == len(data)
        assert bucket.get("from/bytesio") == data
        assert bucket.get("from/read-only") == data

    def test_empty_object(self, bucket_harness: BucketHarness) -> None:
        bucket = bucket_harness.bucket
        info = bucket.put("empty", b"")
        assert (info.size, info.sha256) == (0, _sha(b""))
        assert bucket.get("empty") == b""
        assert b"".join(bucket.stream("empty")) == b""

    def test_overwrite_replaces_content_metadata_and_version(
        self, bucket_harness: BucketHarness
    ) -> None:
        bucket = bucket_harness.bucket
        first = bucket.put("k", b"one", metadata={"n": "1"})
        second = bucket.put("k", b"two!")
        assert second.version != first.version
        assert bucket.get("k") == b"two!"
        head = bucket.head("k")
        assert (head.size, head.version, dict(head.metadata)) == (4, second.version, {})

    def test_missing_object_raises_not_found(
        self, bucket_harness: BucketHarness, tmp_path: Path
    ) -> None:
        bucket = bucket_harness.bucket
        with pytest.raises(NotFound):
            bucket.get("nope")
        with pytest.raises(NotFound):
            bucket.head("nope")
        with pytest.raises(NotFound):
            b"".join(bucket.stream("nope"))
        restore = tmp_path / "restore"
        restore.mkdir()
        with pytest.raises(NotFound):
            bucket.download_file("nope", restore / "out")
        assert list(restore.iterdir()) == []

    # ------------------------------------------------------------------- conditions

    def test_create_only(self, bucket_harness: BucketHarness) -> None:
        bucket = bucket_harness.bucket
        first = bucket.put("lock", b"first", create_only=True)
        with pytest.raises(AlreadyExists):
            bucket.put("lock", b"second", create_only=True)
        assert bucket.get("lock") == b"first"
        assert bucket.head("lock").version == first.version

    def test_if_match_compare_and_swap(self, bucket_harness: BucketHarness) -> None:
        bucket = bucket_harness.bucket
        v1 = bucket.put("cas", b"v1")
        v2 = bucket.put("cas", b"v2", if_match=v1.version)
        assert v2.version != v1.version
        with pytest.raises(PreconditionFailed):
            bucket.put("cas", b"stale", if_match=v1.version)
        assert bucket.get("cas") == b"v2"
        assert bucket.put("cas", b"v3", if_match=v2.version).size == 2
        assert bucket.get("cas") == b"v3"

    def test_if_match_on_absent_object_fails_and_creates_nothing(
        self, bucket_harness: BucketHarness
    ) -> None:
        bucket = bucket_harness.bucket
        version = bucket.put("elsewhere", b"x").version
        with pytest.raises(PreconditionFailed):
            bucket.put("absent", b"x", if_match=version)
        with pytest.raises(NotFound):
            bucket.head("absent")

    # ------------------------------------------------------------------- delete

    def test_delete(self, bucket_harness: BucketHarness) -> None:
        bucket = bucket_harness.bucket
        bucket.put("gone", b"x")
        bucket.delete("gone")
        with pytest.raises(NotFound):
            bucket.head("gone")
        with pytest.raises(NotFound):
            bucket.delete("gone")
        assert _keys(bucket) == []

    def test_conditional_delete(self, bucket_harness: BucketHarness) -> None:
        bucket = bucket_harness.bucket
        v1 = bucket.put("cd", b"v1")
        v2 = bucket.put("cd", b"v2")
        if not bucket.capabilities.conditional_delete:
            with hooks_blocked(bucket, HOOKS), pytest.raises(Unsupported):
                bucket.delete("cd", if_match=v2.version)
            assert bucket.get("cd") == b"v2"
            return
        with pytest.raises(PreconditionFailed):
            bucket.delete("cd", if_match=v1.version)
        assert bucket.get("cd") == b"v2"
        bucket.delete("cd", if_match=v2.version)
        with pytest.raises(NotFound):
            bucket.head("cd")

    # ------------------------------------------------------------------- listing

    def test_list_in_key_order_with_prefix(self, bucket_harness: BucketHarness) -> None:
        bucket = bucket_harness.bucket
        # '-' sorts before '/' and '0' after it: a listing walking folders would misplace them.
        keys = ["a", "a-b", "a/b", "a/c/d", "a0", "b", "B"]
        for key in random.Random(7).sample(keys, len(keys)):
            bucket.put(key, key.encode())
        assert _keys(bucket) == sorted(keys)
        assert _keys(bucket, "a/") == ["a/b", "a/c/d"]
        assert _keys(bucket, "a") == ["a", "a-b", "a/b", "a/c/d", "a0"]
        assert _keys(bucket, "a/c/d") == ["a/c/d"]
        assert _keys(bucket, "zzz") == []
        listed = {info.key: info for info in bucket.list()}
        for key in keys:
            head = bucket.head(key)
            assert (listed[key].size, listed[key].version) == (head.size, head.version)

    def test_list_pages_through_many_objects(self, bucket_harness: BucketHarness) -> None:
        bucket = bucket_harness.bucket
        keys = [f"many/{i:05d}" for i in range(PAGED_OBJECTS)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:  # in no particular order
            list(
                pool.map(
                    lambda key: bucket.put(key, b"."), random.Random(11).sample(keys, len(keys))
                )
            )
        bucket.put("other", b".")
        assert _keys(bucket, "many/") == keys
        assert _keys(bucket, "many/001") == keys[100:200]
        assert len(_keys(bucket)) == PAGED_OBJECTS + 1

    # ------------------------------------------------------------------- streaming and files

    def test_stream_in_chunks(self, bucket_harness: BucketHarness) -> None:
        bucket = bucket_harness.bucket
        data = os.urandom(2500)
        bucket.put("s", data)
        chunks = list(bucket.stream("s", chunk_size=1000))
        assert len(chunks) >= 3
        assert all(0 < len(c) <= 1000 for c in chunks)
        assert b"".join(chunks) == data
        _invalid(bucket, "chunk_size", lambda: list(bucket.stream("s", chunk_size=0)))

    def test_upload_and_download_file_in_parts(
        self, bucket_harness: BucketHarness, tmp_path: Path
    ) -> None:
        bucket = bucket_harness.bucket
        size = 3 * bucket_harness.part_size + 12_345
        source = tmp_path / "source.bin"
        digest = hashlib.sha256()
        with source.open("wb") as f:
            for _ in range(size // 65_536):
                block = os.urandom(65_536)
                digest.update(block)
                f.write(block)
            tail = os.urandom(size % 65_536)
            digest.update(tail)
            f.write(tail)
        uploaded: list[int] = []
        info = bucket.upload_file(
            source, "big/file.bin", metadata={"kind": "full"}, progress=uploaded.append
        )
        assert (info.size, info.sha256) == (size, digest.hexdigest())
        assert sum(uploaded) == size
        head = bucket.head("big/file.bin")
        assert (head.size, head.sha256, dict(head.metadata)) == (
            size,
            info.sha256,
            {"kind": "full"},
        )

        downloaded: list[int] = []
        target = tmp_path / "restored.bin"
        got = bucket.download_file("big/file.bin", target, progress=downloaded.append)
        assert (got.size, got.version) == (size, head.version)
        assert sum(downloaded) == size
        assert target.stat().st_size == size
        check = hashlib.sha256()
        with target.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                check.update(block)
        assert check.hexdigest() == digest.hexdigest()

        with pytest.raises(AlreadyExists):
            bucket.upload_file(source, "big/file.bin", create_only=True)
        with pytest.raises(PreconditionFailed):
            bucket.upload_file(source, "big/file.bin", if_match="not-the-version")

    # ------------------------------------------------------------------- integrity

    def test_corruption_is_detected_on_every_read(
        self, bucket_harness: BucketHarness, tmp_path: Path
    ) -> None:
        bucket = bucket_harness.bucket
        data = os.urandom(5000)
        bucket.put("fragile", data)
        bucket_harness.corrupt("fragile")
        with pytest.raises(CorruptData):
            bucket.get("fragile")
        with pytest.raises(CorruptData):
            for _ in bucket.stream("fragile", chunk_size=1024):
                pass
        restore = tmp_path / "restore"
        restore.mkdir()
        with pytest.raises(CorruptData):
            bucket.download_file("fragile", restore / "fragile")
        assert list(restore.iterdir()) == [], "a failed download must leave nothing behind"

    # ------------------------------------------------------------------- retention

    def test_retention(self, bucket_harness: BucketHarness) -> None:
        bucket = bucket_harness.bucket
        until = math.floor(time.time()) + 3600
        if not bucket.capabilities.retention:
            with hooks_blocked(bucket, HOOKS), pytest.raises(Unsupported):
                bucket.put("kept", b"x", retain_until=until)
            with pytest.raises(NotFound):
                bucket.head("kept")
            return
        info = bucket.put("kept", b"x", retain_until=until)
        assert info.retain_until is not None
        assert abs(info.retain_until - until) <= 1
        head = bucket.head("kept")
        assert head.retain_until is not None
        assert abs(head.retain_until - until) <= 1
        with pytest.raises(PreconditionFailed):
            bucket.delete("kept")
        with pytest.raises(PreconditionFailed):
            bucket.put("kept", b"overwritten")
        assert bucket.get("kept") == b"x"

    # ------------------------------------------------------------------- invalid input

    def test_invalid_keys(self, bucket_harness: BucketHarness) -> None:
        bucket = bucket_harness.bucket
        bad: tuple[Any, ...] = ("", 123, None, "tab\there", "x" * 1025, "lone \ud800")
        for key in bad:
            _invalid(bucket, "key", bucket.put, key, b"x")
            _invalid(bucket, "key", bucket.get, key)
            _invalid(bucket, "key", bucket.stream, key)
            _invalid(bucket, "key", bucket.head, key)
            _invalid(bucket, "key", bucket.delete, key)
        number: Any = 42
        _invalid(bucket, "prefix", lambda: list(bucket.list(number)))
        _invalid(bucket, "prefix", bucket.list, "lone \ud800")
        assert _keys(bucket) == []

    def test_invalid_metadata_writes_nothing(self, bucket_harness: BucketHarness) -> None:
        bucket = bucket_harness.bucket
        bad: list[Any] = [
            "name=value",
            {"Upper": "x"},
            {"under_score": "x"},
            {"": "x"},
            {"n": 1},
            {"n": "caf\u00e9"},
            {"n": "line\nbreak"},
            {"multiregion-sha256": "0" * 64},
            {"multiregion-other": "names starting multiregion- are the library's"},
            {"big": "x" * 10_000},
        ]
        for metadata in bad:
            _invalid(bucket, "metadata", bucket.put, "meta", b"x", metadata=metadata)
        assert _keys(bucket) == []

    def test_invalid_data_and_options_write_nothing(
        self, bucket_harness: BucketHarness, tmp_path: Path
    ) -> None:
        bucket = bucket_harness.bucket
        bad: tuple[Any, ...] = ("text", 42, None, io.StringIO("text"))
        for data in bad:
            _invalid(bucket, "data", bucket.put, "d", data)
        _invalid(bucket, "if_match", lambda: bucket.put("d", b"x", if_match=""))
        _invalid(bucket, "if_match", lambda: bucket.put("d", b"x", create_only=True, if_match="v"))
        tomorrow: Any = "tomorrow"
        _invalid(bucket, "retain_until", lambda: bucket.put("d", b"x", retain_until=tomorrow))
        _invalid(bucket, "retain_until", lambda: bucket.put("d", b"x", retain_until=math.nan))
        # in the past: refused as such, whether or not the bucket has retention
        _invalid(
            bucket, "retain_until", lambda: bucket.put("d", b"x", retain_until=time.time() - 60)
        )
        yes: Any = "yes"
        _invalid(bucket, "create_only", lambda: bucket.put("d", b"x", create_only=yes))
        _invalid(bucket, "path", lambda: bucket.upload_file(tmp_path / "missing", "d"))
        assert _keys(bucket) == []

    def test_metadata_up_to_the_declared_limit(self, bucket_harness: BucketHarness) -> None:
        """``max_metadata_bytes`` is what the service really holds: that much is stored and
        read back, one byte more is refused before anything is sent."""
        bucket = bucket_harness.bucket
        limit = bucket.capabilities.max_metadata_bytes
        fits = {"m": "x" * (limit - 1)}
        bucket.put("meta", b"kept", metadata=fits)
        assert dict(bucket.head("meta").metadata) == fits
        _invalid(bucket, "metadata", bucket.put, "meta", b"lost", metadata={"m": "x" * limit})
        assert bucket.get("meta") == b"kept"

    def test_invalid_file_arguments_touch_nothing(
        self, bucket_harness: BucketHarness, tmp_path: Path
    ) -> None:
        bucket = bucket_harness.bucket
        source = tmp_path / "source.bin"
        source.write_bytes(b"data")
        folder = tmp_path / "restore"
        folder.mkdir()
        not_callable: Any = 42
        _invalid(bucket, "path", bucket.upload_file, folder, "d")
        _invalid(bucket, "path", bucket.upload_file, "nul\0byte", "d")
        _invalid(bucket, "key", bucket.upload_file, source, "lone \ud800")
        _invalid(bucket, "progress", bucket.upload_file, source, "d", progress=not_callable)
        assert _keys(bucket) == []
        stored = bucket.put("d", b"data")
        _invalid(bucket, "path", bucket.download_file, "d", folder)
        _invalid(bucket, "path", bucket.download_file, "d", tmp_path / "missing" / "out")
        _invalid(bucket, "path", bucket.download_file, "d", "nul\0byte")
        _invalid(
            bucket, "progress", bucket.download_file, "d", folder / "out", progress=not_callable
        )
        assert list(folder.iterdir()) == []
        _invalid(bucket, "if_match", bucket.delete, "d", if_match="")
        assert bucket.head("d").version == stored.version
