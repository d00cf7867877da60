"""File plumbing shared by the BackupBucket adapters: spooled writes, source and target files."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO

from multiregion import integrity
from multiregion.errors import CorruptData, InvalidInput


@contextlib.contextmanager
def rewindable(
    data: bytes | IO[bytes], spool_bytes: int
) -> Iterator[tuple[IO[bytes], integrity.Digest]]:
    """``data`` as a file that can be read again from any offset (retries, concurrent parts),
    with its SHA-256 and size: bytes as they are, a stream copied once into a spool kept in
    memory up to ``spool_bytes`` and on disk beyond."""
    digest = integrity.Digest()
    if isinstance(data, bytes):
        digest.update(data)
        yield io.BytesIO(data), digest
        return
    with tempfile.SpooledTemporaryFile(max_size=spool_bytes) as spool:
        for chunk in digest.passing(integrity.chunks(data)):
            spool.write(chunk)
        yield spool, digest


def source_file(path: Path) -> IO[bytes]:
    """``path`` opened for reading; a file that became unreadable since the interface checked
    it (removed, replaced, its permissions changed) is ``InvalidInput`` naming ``path``."""
    try:
        return path.open("rb")
    except OSError as exc:
        raise InvalidInput("path", f"{str(path)!r} cannot be read: {exc.strerror}") from exc


def digest_of(file: IO[bytes]) -> integrity.Digest:
    """SHA-256 and size of what is left to read in ``file``, read to its end."""
    digest = integrity.Digest()
    for _ in digest.passing(integrity.chunks(file)):
        pass
    return digest


@contextlib.contextmanager
def replacing(
    target: Path,
    mode: str = "wb",
    guard: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> Iterator[IO[bytes]]:
    """A temporary file beside ``target``, open in ``mode``, for the body to fill and verify.

    If the body returns, the file is closed and renamed onto ``target``; if anything raises,
    it is removed and ``target`` is left as it was. ``guard`` wraps the creation and the
    rename (an adapter's own mapping of ``OSError``).
    """
    with guard():
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, mode) as out:
            yield out
        with guard():
            os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


READ_BACK = 1 << 20
"""Bytes read back at a time to hash a piece that was written ahead of a gap."""


class HashingSink:
    """A write-only, seekable view of an open file that hashes the bytes in offset order as
    they are written, however they arrive: concurrent ranged downloads write pieces out of
    order. A piece written ahead of a gap is hashed once the gap fills, read back from the page
    cache, so memory stays bounded; nothing is read back, or copied, when pieces arrive in
    order.

    Writes go straight to the file descriptor (``os.pwrite``): no Python buffer to flush, and
    no ``fsync``: the caller's atomic rename publishes the file, durability is the OS's."""

    def __init__(self, fd: int) -> None:
        """``fd`` must be open for reading and writing (``"w+b"``)."""
        self._fd = fd
        self._lock = threading.Lock()
        self._position = 0
        self._hashed = 0
        self._ahead: dict[int, int] = {}
        self._buffer = bytearray(READ_BACK)
        self.digest = integrity.Digest()

    # the file API the SDKs call (azure-storage-blob's readinto: seek, tell, write)
    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence != os.SEEK_SET:
            raise ValueError("HashingSink seeks from the start only")
        self._position = offset
        return offset

    def tell(self) -> int:
        return self._position

    def write(self, data: bytes) -> int:
        written = self.write_at(data, self._position)
        self._position += written
        return written

    def write_at(self, data: bytes, offset: int) -> int:
        """Writes ``data`` at ``offset`` (safe from several threads)."""
        view = memoryview(data)
        done = 0
        while done < len(view):
            done += os.pwrite(self._fd, view[done:], offset + done)
        with self._lock:
            if offset == self._hashed:
                self.digest.update(view)
                self._hashed += len(view)
                while self._hashed in self._ahead:
                    self._catch_up(self._ahead.pop(self._hashed))
            elif offset > self._hashed:
                self._ahead[offset] = len(view)
            else:
                raise ValueError(f"a piece at {offset} rewrites bytes already hashed")
        return len(view)

    def _catch_up(self, length: int) -> None:
        """Hashes ``length`` bytes written ahead at the hashed offset, read back from the page
        cache in pieces into one reused buffer: no allocation the size of a part."""
        view = memoryview(self._buffer)
        end = self._hashed + length
        while self._hashed < end:
            got = os.preadv(self._fd, [view[: end - self._hashed]], self._hashed)
            if not got:
                raise CorruptData(f"the download ended at {self._hashed}, before {end}")
            self.digest.update(view[:got])
            self._hashed += got

    def check(self, expected: str | None, key: str) -> None:
        """``CorruptData`` unless every byte arrived, without gaps, and hashes to ``expected``."""
        if self._ahead:
            raise CorruptData(f"{key}: the download left a gap at {self._hashed}")
        self.digest.check(expected, key)
