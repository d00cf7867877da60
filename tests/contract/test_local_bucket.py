"""The bucket contract on LocalBucket, plus what only a directory-backed bucket promises."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from multiregion.errors import (
    AlreadyExists,
    CorruptData,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from multiregion.providers.local.bucket import STALE_TMP_S, LocalBucket
from multiregion.testing.contract.bucket import BucketContract
from multiregion.testing.contract.harness import BucketHarness

PART = 256 * 1024


def _flip_first_byte(path: Path) -> None:
    with path.open("r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 0xFF]))


@pytest.fixture
def bucket(tmp_path: Path) -> LocalBucket:
    return LocalBucket(tmp_path / "bucket", region="local-1", part_size=PART)


@pytest.fixture
def bucket_harness(bucket: LocalBucket) -> BucketHarness:
    return BucketHarness(
        bucket=bucket,
        corrupt=lambda key: _flip_first_byte(bucket.object_path(key)),
        part_size=PART,
    )


class TestLocalBucket(BucketContract):
    pass


# --------------------------------------------------------------------------- keys and layout


@pytest.mark.parametrize(
    "key", ["../escape", "a/../../b", "/etc/passwd", "a\\b", "a//b", "dir/", "./x", "\udc80"]
)
def test_keys_that_could_escape_or_are_ambiguous_are_refused(bucket: LocalBucket, key: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        bucket.put(key, b"x")
    assert caught.value.field == "key"
    assert list(bucket.list()) == []


def test_objects_stay_inside_the_bucket_and_a_key_can_also_be_a_folder(bucket: LocalBucket) -> None:
    bucket.put("a", b"file")
    bucket.put("a/b", b"nested")
    for key in ("a", "a/b"):
        assert bucket.object_path(key).is_relative_to(bucket.root)
    assert (bucket.get("a"), bucket.get("a/b")) == (b"file", b"nested")


def test_delete_removes_emptied_folders(bucket: LocalBucket) -> None:
    bucket.put("x/y/z", b"1")
    bucket.put("x/keep", b"2")
    bucket.delete("x/y/z")
    assert not (bucket.root / "d.x" / "d.y").exists()
    assert [i.key for i in bucket.list()] == ["x/keep"]


def test_long_segments_are_refused_but_long_keys_with_short_segments_work(
    bucket: LocalBucket,
) -> None:
    with pytest.raises(InvalidInput, match="segment"):
        bucket.put("s" * 254, b"x")
    key = "/".join(["s" * 200] * 5)
    bucket.put(key, b"deep")
    assert bucket.get(key) == b"deep"


def test_bad_constructor_arguments(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    for kwargs, field in (
        ({"path": tmp_path / "file"}, "path"),
        ({"path": 3}, "path"),
        ({"path": tmp_path / "b", "region": "Not A Region"}, "region"),
        ({"path": tmp_path / "b", "part_size": 0}, "part_size"),
    ):
        with pytest.raises(InvalidInput) as caught:
            LocalBucket(**kwargs)
        assert caught.value.field == field


# --------------------------------------------------------------------------- versions and retention


def test_rewriting_identical_bytes_still_changes_the_version(bucket: LocalBucket) -> None:
    first = bucket.put("same", b"bytes")
    second = bucket.put("same", b"bytes")
    assert first.version != second.version
    with pytest.raises(PreconditionFailed):
        bucket.put("same", b"bytes", if_match=first.version)


def test_retention_ends_at_its_time(bucket: LocalBucket) -> None:
    bucket.put("short", b"x", retain_until=time.time() + 0.3)
    with pytest.raises(PreconditionFailed):
        bucket.delete("short")
    time.sleep(0.35)
    bucket.put("short", b"y")
    bucket.delete("short")
    with pytest.raises(NotFound):
        bucket.head("short")


def test_a_damaged_trailer_is_corrupt_data_but_can_be_deleted(bucket: LocalBucket) -> None:
    bucket.put("t", b"content")
    path = bucket.object_path("t")
    path.write_bytes(path.read_bytes()[:-3])
    for read in (bucket.head, bucket.get):
        with pytest.raises(CorruptData):
            read("t")
    with pytest.raises(CorruptData):
        list(bucket.list())
    with pytest.raises(AlreadyExists):
        bucket.put("t", b"new", create_only=True)
    bucket.delete("t")
    assert list(bucket.list()) == []


def test_failed_download_keeps_an_existing_destination(bucket: LocalBucket, tmp_path: Path) -> None:
    bucket.put("k", b"fresh content")
    _flip_first_byte(bucket.object_path("k"))
    target = tmp_path / "existing"
    target.write_bytes(b"previous")
    with pytest.raises(CorruptData):
        bucket.download_file("k", target)
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bucket", "existing"]


# --------------------------------------------------------------------------- crashes and races


class _Failing:
    """Yields one chunk, then fails like a dropped connection."""

    def __init__(self) -> None:
        self.calls = 0

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 1:
            raise ConnectionResetError("source went away")
        return b"partial" * 1000


def test_a_failing_source_leaves_the_old_object_and_no_temporary_file(
    bucket: LocalBucket,
) -> None:
    old = bucket.put("k", b"old")
    with pytest.raises(ConnectionResetError):
        bucket.put("k", _Failing())  # type: ignore[arg-type]
    assert bucket.head("k").version == old.version
    assert list((bucket.root / ".tmp").iterdir()) == []


def _crash_mid_write(root: str) -> None:
    class Crash:
        def read(self, size: int = -1) -> bytes:
            os._exit(3)  # the process dies with part of the object written

    LocalBucket(root).put("k", Crash())  # type: ignore[arg-type]


def test_opening_a_bucket_sweeps_writes_abandoned_long_ago(bucket: LocalBucket) -> None:
    abandoned = bucket.root / ".tmp" / "put-crashed"
    recent = bucket.root / ".tmp" / "put-in-progress"
    for path in (abandoned, recent):
        path.write_bytes(b"partial")
    old = time.time() - STALE_TMP_S - 60
    os.utime(abandoned, (old, old))
    LocalBucket(bucket.root)
    assert sorted(p.name for p in (bucket.root / ".tmp").iterdir()) == ["put-in-progress"]


def test_a_process_dying_mid_write_leaves_the_old_object(bucket: LocalBucket) -> None:
    old = bucket.put("k", b"old")
    bucket.put("k2", os.urandom(10))
    child = multiprocessing.get_context("fork").Process(
        target=_crash_mid_write, args=(bucket.root,)
    )
    child.start()
    child.join(10)
    assert child.exitcode == 3
    assert bucket.get("k") == b"old"
    assert bucket.head("k").version == old.version
    assert [i.key for i in bucket.list()] == ["k", "k2"]


def test_threads_racing_create_only_have_one_winner(bucket: LocalBucket) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8)

    def racer(n: int) -> None:
        barrier.wait()
        try:
            bucket.put("leader", f"{n}".encode(), create_only=True)
            results.append("won")
        except AlreadyExists:
            results.append("lost")

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == ["lost"] * 7 + ["won"]


def _increment(root: str, times: int) -> None:
    bucket = LocalBucket(root)
    for _ in range(times):
        while True:
            info = bucket.head("counter")
            value = int(bucket.get("counter"))
            try:
                bucket.put("counter", b"%d" % (value + 1), if_match=info.version)
                break
            except PreconditionFailed:
                continue


def test_processes_doing_compare_and_swap_lose_no_update(bucket: LocalBucket) -> None:
    bucket.put("counter", b"0")
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_increment, args=(str(bucket.root), 25)) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    assert bucket.get("counter") == b"75"


def test_list_is_lazy(bucket: LocalBucket) -> None:
    for key in ("a", "b"):
        bucket.put(key, b"x")
    listing: Iterator[object] = bucket.list()
    first = next(listing)
    bucket.delete("b")
    assert [first, *listing] == [bucket.head("a")]
