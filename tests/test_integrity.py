from __future__ import annotations

import hashlib
import io

import pytest

from multiregion import CorruptData, InvalidInput
from multiregion.integrity import chunks, sha256_hex, verified


def test_chunks_of_bytes_and_streams_are_the_same() -> None:
    data = bytes(range(256)) * 10
    assert b"".join(chunks(data, 100)) == data
    assert [len(c) for c in chunks(io.BytesIO(data), 1000)] == [1000, 1000, 560]
    assert list(chunks(b"", 10)) == []


def test_chunks_refuse_text() -> None:
    with pytest.raises(InvalidInput) as info:
        list(chunks(io.StringIO("text")))
    assert info.value.field == "data"
    with pytest.raises(InvalidInput):
        list(chunks("text"))  # type: ignore[arg-type]


def test_verified_passes_good_bytes_and_refuses_bad_ones_at_the_end() -> None:
    data = b"backup" * 1000
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
    assert b"".join(verified(chunks(data, 64), sha256_hex(data), "k")) == data
    bad = bytearray(data)
    bad[-1] ^= 1
    stream = verified(chunks(bytes(bad), 64), sha256_hex(data), "k")
    with pytest.raises(CorruptData, match="k: content SHA-256"):
        list(stream)
    with pytest.raises(CorruptData, match="no SHA-256"):
        list(verified([data], None, "k"))
