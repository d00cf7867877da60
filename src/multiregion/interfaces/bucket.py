"""The backup bucket interface: object storage with an end-to-end SHA-256 on every read.

The public methods check and normalise every argument, and the capability flags, before any
I/O, then call the adapter's hook of the same name with a leading underscore (``put`` calls
``_put``). An adapter implements the hooks only: what reaches them is already valid.
"""

from __future__ import annotations

import abc
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

import attrs

from multiregion import integrity, validate
from multiregion.closing import Closing
from multiregion.errors import InvalidInput, Unsupported
from multiregion.model import ObjectInfo

Progress = Callable[[int], None]
"""Called with the number of bytes moved since the last call."""

MAX_CHUNK = 1 << 30


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
    max_metadata_bytes: int = validate.MAX_METADATA_BYTES
    """Most bytes of user metadata (names plus values) one object holds, beside the library's
    own checksum entry: the service's limit less that entry."""


@attrs.frozen
class Write:
    """A write's conditions and what it stores besides the bytes, as the hooks receive them:
    ``create_only`` and ``if_match`` never both set, ``if_match`` a non-empty version,
    ``metadata`` valid names and values within ``max_metadata_bytes`` (a fresh dict the hook
    may keep), ``retain_until`` a time in the future and only on a bucket with ``retention``."""

    create_only: bool = False
    if_match: str | None = None
    metadata: dict[str, str] = attrs.Factory(dict)
    retain_until: float | None = None


class BackupBucket(Closing):
    """Object storage for backups, with an end-to-end SHA-256 verified on every read."""

    capabilities: BucketCapabilities

    # ------------------------------------------------------------------ public methods

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
        ``PreconditionFailed`` unless the stored version is that one. ``retain_until`` (a
        time in the future) raises ``Unsupported`` unless the capabilities say ``retention``."""
        key = _key(key)
        source = validate.data(data)
        write = self._checked_write(create_only, if_match, metadata, retain_until)
        return self._put(key, source, write)

    def get(self, key: str) -> bytes:
        """The whole object, verified. Raises ``NotFound``, or ``CorruptData`` on a mismatch."""
        return self._get(_key(key))

    def stream(self, key: str, chunk_size: int = integrity.DEFAULT_CHUNK) -> Iterator[bytes]:
        """The object in chunks; the last ``next`` raises ``CorruptData`` on a mismatch,
        so a consumer must not act on the bytes before the iterator is exhausted."""
        key = _key(key)
        return self._stream(key, validate.int_range("chunk_size", chunk_size, 1, MAX_CHUNK))

    def head(self, key: str) -> ObjectInfo:
        """Metadata only. Raises ``NotFound``."""
        return self._head(_key(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order, paging as needed."""
        checked = validate.prefix("prefix", prefix)
        return self._list(validate.utf8_text("prefix", checked))

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        """Remove an object. Raises ``NotFound``, or ``PreconditionFailed`` on a stale version
        or an object under retention; ``if_match`` raises ``Unsupported`` unless the
        capabilities say ``conditional_delete``."""
        key = _key(key)
        if if_match is not None:
            validate.version("if_match", if_match)
            if not self.capabilities.conditional_delete:
                raise Unsupported(
                    f"{type(self).__name__}: this backend does not enforce delete(if_match=)"
                )
        self._delete(key, if_match)

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
        """Upload a file in parts with bounded memory; conditions as for ``put``."""
        source = validate.file_path("path", path)
        key = _key(key)
        write = self._checked_write(create_only, if_match, metadata, None)
        validate.progress(progress)
        if not source.is_file() or not os.access(source, os.R_OK):
            raise InvalidInput("path", f"{validate.shown(str(source))} is not a readable file")
        return self._upload_file(source, key, write, progress)

    def download_file(
        self, key: str, path: str | Path, *, progress: Progress | None = None
    ) -> ObjectInfo:
        """Download to ``path`` with bounded memory; the file appears only once verified."""
        key = _key(key)
        target = validate.file_path("path", path)
        validate.progress(progress)
        if target.is_dir():
            raise InvalidInput("path", f"{validate.shown(str(target))} is a directory")
        if not target.parent.is_dir():
            raise InvalidInput(
                "path", f"{validate.shown(str(target.parent))} is not an existing directory"
            )
        return self._download_file(key, target, progress)

    def close(self) -> None:
        """Release connections."""

    def _checked_write(
        self,
        create_only: bool,
        if_match: str | None,
        metadata: Mapping[str, str] | None,
        retain_until: float | None,
    ) -> Write:
        """The write's arguments checked (``write_conditions``, metadata within this bucket's
        limit, retention in the future and declared) before any I/O."""
        validate.write_conditions(create_only, if_match)
        until = None
        if retain_until is not None:
            until = validate.finite_non_negative("retain_until", retain_until)
            if until <= time.time():
                raise InvalidInput("retain_until", "must be in the future")
            if not self.capabilities.retention:
                raise Unsupported(
                    f"{type(self).__name__} was not declared with retention "
                    "(retention=True, on a bucket or container that enforces it)"
                )
        return Write(
            create_only=create_only,
            if_match=if_match,
            metadata=validate.metadata("metadata", metadata, self.capabilities.max_metadata_bytes),
            retain_until=until,
        )

    # ------------------------------------------------------------------ hooks

    @abc.abstractmethod
    def _put(self, key: str, data: bytes | IO[bytes], write: Write) -> ObjectInfo:
        """Store ``data`` under ``key`` as ``write`` says.

        Checked already: ``key`` is 1-1024 bytes of UTF-8 text without control characters;
        ``data`` is bytes or a binary stream (anything with ``read``, read it once, to its end);
        ``write`` as its class says. Left to the hook: the conditions against what is stored
        (``AlreadyExists``, ``PreconditionFailed``, also for an object under retention or a
        legal hold), and key rules of its own service."""

    def _get(self, key: str) -> bytes:
        """The whole object, verified (``key`` checked as for ``_put``); by default the joined
        ``_stream``. Override where the service reads faster in one piece."""
        return b"".join(self._stream(key, integrity.DEFAULT_CHUNK))

    @abc.abstractmethod
    def _stream(self, key: str, chunk_size: int) -> Iterator[bytes]:
        """The object in pieces of 1 to ``chunk_size`` bytes (checked: 1 to 2**30), its
        SHA-256 checked after the last (``integrity.verified``). ``NotFound`` may come from
        the call or from the first ``next``."""

    @abc.abstractmethod
    def _head(self, key: str) -> ObjectInfo:
        """The object's info (``key`` checked as for ``_put``). Raises ``NotFound``."""

    @abc.abstractmethod
    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix`` (``""`` or text valid as a key), in key
        order (code point order), following the service's pages."""

    @abc.abstractmethod
    def _delete(self, key: str, if_match: str | None) -> None:
        """Remove ``key``; ``if_match`` is None or a non-empty version, given only where
        ``conditional_delete`` holds. Raises ``NotFound``, ``PreconditionFailed`` for a stale
        version or an object under retention or a legal hold."""

    @abc.abstractmethod
    def _upload_file(
        self, path: Path, key: str, write: Write, progress: Progress | None
    ) -> ObjectInfo:
        """Upload the file at ``path`` (a regular file that was readable when checked) as
        ``_put`` stores data, in parts with bounded memory; ``write.retain_until`` is None.
        ``progress`` (None or a callable) gets the bytes sent, adding up to the file's size."""

    @abc.abstractmethod
    def _download_file(self, key: str, path: Path, progress: Progress | None) -> ObjectInfo:
        """Download ``key`` to ``path``, whose directory exists and which is not a directory
        itself, with bounded memory: write beside it and rename into place only once the
        SHA-256 matches (``transfer.replacing``), leaving nothing behind on any error.
        ``progress`` gets the bytes received, adding up to the object's size."""


def _key(value: object) -> str:
    return validate.key("key", value, utf8=True)
