"""transfer.HashingSink: the hash of a file written piece by piece, in any order."""

from __future__ import annotations

import hashlib
import os
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from multiregion.errors import CorruptData
from multiregion.transfer import READ_BACK, HashingSink


def test_pieces_in_any_order_from_many_threads_hash_like_the_whole(tmp_path: Path) -> None:
    data = os.urandom(300_000)
    pieces = [(offset, data[offset : offset + 7_001]) for offset in range(0, len(data), 7_001)]
    random.Random(7).shuffle(pieces)
    with (tmp_path / "out").open("w+b") as out:
        sink = HashingSink(out.fileno())
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda p: sink.write_at(p[1], p[0]), pieces))
        sink.check(hashlib.sha256(data).hexdigest(), "out")
    assert (tmp_path / "out").read_bytes() == data


def test_seek_and_write_as_an_sdk_does(tmp_path: Path) -> None:
    with (tmp_path / "out").open("w+b") as out:
        sink = HashingSink(out.fileno())
        sink.write(b"abc")
        sink.seek(6)
        sink.write(b"ghi")
        assert sink.tell() == 9
        with pytest.raises(CorruptData, match="gap at 3"):
            sink.check(hashlib.sha256(b"abcdefghi").hexdigest(), "out")
        sink.seek(3)
        sink.write(b"def")
        sink.check(hashlib.sha256(b"abcdefghi").hexdigest(), "out")
        with pytest.raises(CorruptData, match="does not match"):
            sink.check(hashlib.sha256(b"other").hexdigest(), "out")


def test_a_piece_over_hashed_bytes_is_refused(tmp_path: Path) -> None:
    with (tmp_path / "out").open("w+b") as out:
        sink = HashingSink(out.fileno())
        sink.write_at(b"abcdef", 0)
        with pytest.raises(ValueError, match="rewrites"):
            sink.write_at(b"cd", 2)


def test_a_piece_ahead_larger_than_the_read_back_buffer(tmp_path: Path) -> None:
    data = os.urandom(3 * READ_BACK + 123)
    half = len(data) // 2
    with (tmp_path / "out").open("w+b") as out:
        sink = HashingSink(out.fileno())
        sink.write_at(data[half:], half)
        sink.write_at(data[:half], 0)
        sink.check(hashlib.sha256(data).hexdigest(), "out")
