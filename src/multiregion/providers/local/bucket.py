"""A directory as a BackupBucket: atomic writes, a SHA-256 per object, locks across processes.

Layout under the bucket directory:

- a key's ``/``-separated segments become directories named ``d.<segment>`` and a file named
  ``o.<segment>``, so ``a`` and ``a/b`` can both exist and a directory walk sorted per level
  yields keys in key order without an index. Keys are refused (``InvalidInput``) when they hold
  a backslash, start or end with ``/``, have an empty, ``.`` or ``..`` segment, a segment longer
  than 253 bytes, or text that is not valid UTF-8: nothing can name a file outside the bucket.
- each object is one file: the content, then a JSON trailer (version, size, SHA-256,
  updated_at, metadata, retain_until), then a 16-byte footer (trailer length and a magic).
  Content and metadata are one file, so one ``os.replace`` publishes both at once and a reader
  holding the open file sees one consistent version even while it is being replaced.
- ``.tmp/`` holds objects being written (same file system, so the rename is atomic); a crash
  leaves at most an orphan there, never a partial object under a key. Orphans older than
  ``STALE_TMP_S`` are removed when a bucket is opened.
- ``.lock`` is taken with ``fcntl.flock`` (opened afresh per operation, so it excludes threads
  as well as processes) around every precondition check and the rename or unlink that follows.

POSIX only (``fcntl``). Retention is enforced by the library, not the file system: anyone
with write access to the directory can still remove the files. Keys differing only in case
collide on case-insensitive file systems.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import struct
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO

from multiregion import integrity, transfer, validate
from multiregion.errors import (
    AlreadyExists,
    AuthError,
    CorruptData,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Unavailable,
)
from multiregion.interfaces import BackupBucket, BucketCapabilities, Progress
from multiregion.interfaces.bucket import Write
from multiregion.model import ObjectInfo

MAX_SEGMENT_BYTES = 253
"""A file name is at most 255 bytes; two go to the ``o.``/``d.`` tag."""
STALE_TMP_S = 24 * 3600.0
"""A write that has not finished in a day was cut short by a crash."""

_FOOTER = struct.Struct(">Q8s")
_MAGIC = b"mrobj\x00v1"
_MAX_TRAILER = 64 * 1024
_OBJECT, _DIR = "o", "d"
_TMP_PREFIX = "put-"


def _os_error(exc: OSError, subject: str) -> Exception:
    """The library's error for a failed file operation (the caller chains the original)."""
    if isinstance(exc, PermissionError):
        return AuthError(f"{subject}: permission denied")
    return Unavailable(f"{subject}: {exc.strerror or type(exc).__name__}")


@contextlib.contextmanager
def _mapped(subject: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise _os_error(exc, subject) from exc


def _segments(key: str) -> list[str]:
    """The key's path segments, or ``InvalidInput`` if the key cannot name a file safely."""
    if "\\" in key:
        raise InvalidInput("key", "must not contain a backslash")
    segments = key.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidInput(
                "key", f"{key!r}: segments between '/' must not be empty, '.' or '..'"
            )
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise InvalidInput(
                "key", f"each '/'-separated segment is at most {MAX_SEGMENT_BYTES} bytes here"
            )
    return segments


def _retain_until(value: object) -> float | None:
    return None if value is None else validate.finite_non_negative("retain_until", value)


def _read_info(f: BinaryIO, key: str) -> ObjectInfo:
    """The trailer of an open object file; ``CorruptData`` if it is not one."""
    end = os.fstat(f.fileno()).st_size
    if end < _FOOTER.size:
        raise CorruptData(f"{key}: the object file is truncated")
    f.seek(end - _FOOTER.size)
    length, magic = _FOOTER.unpack(f.read(_FOOTER.size))
    if magic != _MAGIC or length > min(_MAX_TRAILER, end - _FOOTER.size):
        raise CorruptData(f"{key}: the object file has no valid trailer")
    content_size = end - _FOOTER.size - length
    f.seek(content_size)
    try:
        fields = json.loads(f.read(length))
        info = ObjectInfo(
            key=key,
            size=int(fields["size"]),
            version=str(fields["version"]),
            sha256=str(fields["sha256"]),
            updated_at=float(fields["updated_at"]),
            metadata={str(k): str(v) for k, v in fields["metadata"].items()},
            retain_until=_retain_until(fields["retain_until"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError, InvalidInput) as exc:
        raise CorruptData(f"{key}: the object's trailer cannot be read") from exc
    if info.size != content_size:
        raise CorruptData(f"{key}: {content_size} bytes stored, the trailer says {info.size}")
    return info


def _trailer(info: ObjectInfo) -> bytes:
    fields: dict[str, Any] = {
        "size": info.size,
        "version": info.version,
        "sha256": info.sha256,
        "updated_at": info.updated_at,
        "metadata": dict(info.metadata),
        "retain_until": info.retain_until,
    }
    raw = json.dumps(fields, sort_keys=True).encode()
    return raw + _FOOTER.pack(len(raw), _MAGIC)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: str | Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class LocalBucket(BackupBucket):
    """A BackupBucket in a local directory (created if missing); see the module docstring."""

    capabilities = BucketCapabilities(
        conditional_delete=True, retention=True, native_checksum="sha256"
    )

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        region: str | None = None,
        part_size: int = integrity.DEFAULT_CHUNK,
    ) -> None:
        self.root = validate.file_path("path", path).absolute()
        self.region = None if region is None else validate.region("region", region)
        self.part_size = validate.int_range("part_size", part_size, 1, 1 << 30)
        """Bytes read or written per step (and per ``progress`` call) by upload/download."""
        self._tmp = self.root / ".tmp"
        self._lock = self.root / ".lock"
        try:
            self._tmp.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise InvalidInput("path", f"{self.root} is not a directory") from exc
        except OSError as exc:
            raise _os_error(exc, str(self.root)) from exc
        self._sweep()

    def _sweep(self) -> None:
        """Removes what crashed writers left in ``.tmp``."""
        cutoff = time.time() - STALE_TMP_S
        with contextlib.suppress(OSError), os.scandir(self._tmp) as found:
            for entry in found:
                if entry.name.startswith(_TMP_PREFIX) and entry.stat().st_mtime < cutoff:
                    _remove(entry.path)

    def __repr__(self) -> str:
        return f"LocalBucket({str(self.root)!r}, region={self.region!r})"

    def object_path(self, key: str) -> Path:
        """The file that holds ``key`` (whether or not it exists yet)."""
        *dirs, name = _segments(validate.key("key", key, utf8=True))
        return self.root.joinpath(*(f"{_DIR}.{d}" for d in dirs), f"{_OBJECT}.{name}")

    # ----------------------------------------------------------------------- reads

    def _open(self, key: str) -> BinaryIO:
        path = self.object_path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise NotFound(f"{key}: no such object") from exc
        except OSError as exc:
            raise _os_error(exc, key) from exc

    def _head(self, key: str) -> ObjectInfo:
        with self._open(key) as f, _mapped(key):
            return _read_info(f, key)

    def _get(self, key: str) -> bytes:
        with self._open(key) as f, _mapped(key):
            info = _read_info(f, key)
            f.seek(0)
            data = f.read(info.size)
        if integrity.sha256_hex(data) != info.sha256:
            raise CorruptData(f"{key}: content does not match its SHA-256; refusing the bytes")
        return data

    def _stream(self, key: str, chunk_size: int) -> Iterator[bytes]:
        return self._verified(key, chunk_size)[1]

    def _verified(self, key: str, chunk_size: int) -> tuple[ObjectInfo, Iterator[bytes]]:
        """The object's info and its content, read from one open file (so one version)."""
        f = self._open(key)
        try:
            with _mapped(key):
                info = _read_info(f, key)
        except BaseException:
            f.close()
            raise
        return info, integrity.verified(self._content(f, info, chunk_size), info.sha256, key)

    @staticmethod
    def _content(f: BinaryIO, info: ObjectInfo, chunk_size: int) -> Iterator[bytes]:
        """The content bytes of an open object file, then closes it."""
        with f:
            f.seek(0)
            left = info.size
            while left:
                with _mapped(info.key):
                    piece = f.read(min(chunk_size, left))
                if not piece:
                    raise CorruptData(f"{info.key}: the object file ended early")
                left -= len(piece)
                yield piece

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        for key, path in self._walk(self.root, "", prefix):
            try:
                f = open(path, "rb")  # noqa: SIM115
            except FileNotFoundError:
                continue  # deleted since the directory was read
            except OSError as exc:
                raise _os_error(exc, key) from exc
            with f, _mapped(key):
                yield _read_info(f, key)

    def _walk(self, directory: Path, parent: str, prefix: str) -> Iterator[tuple[str, Path]]:
        """(key, file) under ``directory`` in key order: each level sorted, directories by
        their segment plus '/', which is where their keys fall among their siblings'."""
        entries = []
        try:
            with os.scandir(directory) as found:
                for entry in found:
                    tag, dot, segment = entry.name.partition(".")
                    if dot and tag == _OBJECT:
                        entries.append((parent + segment, False, Path(entry.path)))
                    elif dot and tag == _DIR:
                        entries.append((parent + segment + "/", True, Path(entry.path)))
        except FileNotFoundError:
            return  # emptied and removed since the parent was read
        except OSError as exc:
            raise _os_error(exc, parent or "/") from exc
        entries.sort()
        for name, is_dir, path in entries:
            if not is_dir and name.startswith(prefix):
                yield name, path
            elif is_dir and (name.startswith(prefix) or prefix.startswith(name)):
                yield from self._walk(path, name, prefix)

    # ----------------------------------------------------------------------- writes

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with _mapped("lock"):
            fd = os.open(self._lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            with _mapped("lock"):
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _admit(
        self, key: str, *, create_only: bool, if_match: str | None, deleting: bool
    ) -> ObjectInfo | None:
        """The stored object's info if the write or delete may go ahead; raises otherwise."""
        try:
            with self._open(key) as f, _mapped(key):
                current: ObjectInfo | None = _read_info(f, key)
        except NotFound:
            current = None
        except CorruptData:
            # Unreadable trailer: the object exists, but no version or retention can match.
            if create_only:
                raise AlreadyExists(f"{key}: an object is already stored") from None
            if if_match is not None:
                raise
            return None
        if current is None:
            if deleting:
                raise NotFound(f"{key}: no such object")
            if if_match is not None:
                raise PreconditionFailed(f"{key}: if_match given but no object is stored")
            return None
        if create_only:
            raise AlreadyExists(f"{key}: an object is already stored")
        if if_match is not None and current.version != if_match:
            raise PreconditionFailed(f"{key}: stored version differs from if_match")
        if current.retain_until is not None and current.retain_until > time.time():
            raise PreconditionFailed(f"{key}: under retention until {current.retain_until:.0f}")
        return current

    def _put(self, key: str, data: bytes | IO[bytes], write: Write) -> ObjectInfo:
        path = self.object_path(key)
        return self._write(key, path, integrity.chunks(data), write, None)

    def _upload_file(
        self, path: Path, key: str, write: Write, progress: Progress | None
    ) -> ObjectInfo:
        target = self.object_path(key)
        with transfer.source_file(path) as f:
            return self._write(key, target, integrity.chunks(f, self.part_size), write, progress)

    def _write(
        self,
        key: str,
        path: Path,
        pieces: Iterable[bytes],
        write: Write,
        progress: Progress | None,
    ) -> ObjectInfo:
        # Fail fast before streaming; checked again under the lock, where it counts.
        self._admit(key, create_only=write.create_only, if_match=write.if_match, deleting=False)
        with _mapped(key):
            fd, tmp = tempfile.mkstemp(dir=self._tmp, prefix=_TMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as out:
                digest = integrity.Digest()
                for piece in pieces:
                    with _mapped(key):
                        out.write(digest.update(piece))
                    if progress is not None:
                        progress(len(piece))
                with _mapped(key):
                    out.flush()
                    os.fsync(out.fileno())
                with self._locked():
                    self._admit(
                        key, create_only=write.create_only, if_match=write.if_match, deleting=False
                    )
                    info = ObjectInfo(
                        key=key,
                        size=digest.size,
                        version=uuid.uuid4().hex,
                        sha256=digest.hexdigest(),
                        updated_at=time.time(),
                        metadata=write.metadata,
                        retain_until=write.retain_until,
                    )
                    with _mapped(key):
                        out.write(_trailer(info))
                        out.flush()
                        os.fsync(out.fileno())
                        path.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(tmp, path)
                        _fsync_dir(path.parent)
        except BaseException:
            _remove(tmp)
            raise
        return info

    def _delete(self, key: str, if_match: str | None) -> None:
        path = self.object_path(key)
        with self._locked():
            self._admit(key, create_only=False, if_match=if_match, deleting=True)
            with _mapped(key):
                path.unlink()
            parent = path.parent
            while parent != self.root:
                try:
                    parent.rmdir()
                except OSError:
                    break  # not empty: it holds other keys
                parent = parent.parent

    def _download_file(self, key: str, target: Path, progress: Progress | None) -> ObjectInfo:
        self.object_path(key)  # the key's segments checked before any I/O
        with transfer.replacing(target, guard=lambda: _mapped(str(target))) as out:
            info, chunks = self._verified(key, self.part_size)
            for piece in chunks:
                with _mapped(str(target)):
                    out.write(piece)
                if progress is not None:
                    progress(len(piece))
            with _mapped(str(target)):
                out.flush()  # no fsync, as on every bucket: the rename publishes the file
        return info
