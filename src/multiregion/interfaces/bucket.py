"""The backup bucket interface: object storage with an end-to-end SHA-256 on every read."""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

import attrs

from multiregion.model import ObjectInfo

Progress = Callable[[int], None]
"""Called with the number of bytes moved since the last call."""


@attrs.frozen
class BucketCapabilities:
    conditional_delete: bool = True
    """``delete(if_match=...)`` is enforced by the service."""
    retention: bool = False
    """``put(retain_until=...)`` makes the object undeletable until then."""
    legal_hold: bool = False
    """Writes place a legal hold (S3 Object Lock, Blob, GCS temporary hold; opened with
    ``legal_hold=True``): delete and overwrite raise ``PreconditionFailed`` until it is
    released outside the library."""
    native_checksum: str | None = None
    """The checksum the service itself keeps (``sha256``, ``crc32c``, ``md5``), if any."""


class BackupBucket(abc.ABC):
    """Object storage for backups, with an end-to-end SHA-256 verified on every read."""

    capabilities: BucketCapabilities

    @abc.abstractmethod
    def put(
        self,
        key: str,
        data: bytes | IO[bytes],
        *,
        create_only: bool = False,
        if_match: str | None = None,
        metadata: Mapping[str, str] | None = None,
        retain_until: float | None = None,
    ) -> ObjectInfo:
        """Store an object. ``create_only`` raises ``AlreadyExists``; ``if_match`` raises
        ``PreconditionFailed`` unless the stored version is that one."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """The whole object, verified. Raises ``NotFound``, or ``CorruptData`` on a mismatch."""

    @abc.abstractmethod
    def stream(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The object in chunks; the last ``next`` raises ``CorruptData`` on a mismatch,
        so a consumer must not act on the bytes before the iterator is exhausted."""

    @abc.abstractmethod
    def head(self, key: str) -> ObjectInfo:
        """Metadata only. Raises ``NotFound``."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order, paging as needed."""

    @abc.abstractmethod
    def delete(self, key: str, *, if_match: str | None = None) -> None:
        """Remove an object. Raises ``NotFound``, or ``PreconditionFailed`` on a stale version
        or an object under retention."""

    @abc.abstractmethod
    def upload_file(
        self,
        path: str | Path,
        key: str,
        *,
        create_only: bool = False,
        if_match: str | None = None,
        metadata: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> ObjectInfo:
        """Upload a file in parts with bounded memory."""

    @abc.abstractmethod
    def download_file(
        self, key: str, path: str | Path, *, progress: Progress | None = None
    ) -> ObjectInfo:
        """Download to ``path`` with bounded memory; the file appears only once verified."""

    def close(self) -> None:  # noqa: B027
        """Release connections."""
