"""End-to-end SHA-256 for bucket objects, shared by every BackupBucket adapter.

The library computes the digest while the bytes stream up, stores it with the object
(metadata key ``METADATA_KEY``), and recomputes it on every read, because emulators and even
services accept wrong checksums or serve a damaged copy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

from multiregion.errors import CorruptData, InvalidInput

_Bytes = TypeVar("_Bytes", bytes, memoryview)

METADATA_KEY = "multiregion-sha256"
METADATA_ENTRY_BYTES = len(METADATA_KEY) + 64
"""What the library's entry (name and hex digest) takes of an object's metadata."""
DEFAULT_CHUNK = 1 << 20


def chunks(data: bytes | IO[bytes], chunk_size: int = DEFAULT_CHUNK) -> Iterator[bytes]:
    """The bytes of ``data`` in pieces of at most ``chunk_size``, read lazily from a stream."""
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), chunk_size):
            yield bytes(view[start : start + chunk_size])
        return
    if not hasattr(data, "read"):
        raise InvalidInput("data", f"must be bytes or a binary stream, not {type(data).__name__}")
    while True:
        piece = data.read(chunk_size)
        if not piece:
            return
        if not isinstance(piece, bytes | bytearray):
            raise InvalidInput("data", "the stream must yield bytes (open files in 'rb' mode)")
        yield bytes(piece)


class Digest:
    """SHA-256 and byte count over chunks as they pass."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def update(self, chunk: _Bytes) -> _Bytes:
        self._hash.update(chunk)
        self.size += len(chunk)
        return chunk

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def passing(self, pieces: Iterable[bytes]) -> Iterator[bytes]:
        """Yields ``pieces`` unchanged while hashing them."""
        for piece in pieces:
            yield self.update(piece)

    def check(self, expected: str | None, key: str) -> None:
        """Raise ``CorruptData`` unless the bytes seen hash to ``expected``."""
        if expected is None:
            raise CorruptData(f"{key}: no SHA-256 was stored with the object; cannot verify it")
        actual = self.hexdigest()
        if actual != expected:
            raise CorruptData(
                f"{key}: content SHA-256 {actual[:16]}... does not match "
                f"the stored {expected[:16]}...; refusing the bytes"
            )


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verified(pieces: Iterable[bytes], expected: str | None, key: str) -> Iterator[bytes]:
    """Yields ``pieces``; after the last one, raises ``CorruptData`` if they do not match."""
    digest = Digest()
    yield from digest.passing(pieces)
    digest.check(expected, key)
