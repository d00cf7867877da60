"""BackupBucket on Cloud Storage.

Versions are object generations. Create-only is ``ifGenerationMatch=0`` and compare-and-swap is
``ifGenerationMatch=<generation>``, enforced by GCS on the upload itself. Objects larger than
``chunk_size`` go up as resumable uploads one chunk at a time, so memory stays bounded; GCS
checks each upload's CRC32C, and the library's SHA-256 of the whole object travels as custom
metadata (``integrity.METADATA_KEY``) and is checked on every read. A read (``get``,
``stream``, ``download_file``) is one streamed media request whose headers carry the generation
and the custom metadata; a download is hashed as it is written, never read back.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import time
from collections.abc import Iterator, Mapping
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any

from google.api_core.exceptions import from_http_response
from google.api_core.retry import Retry
from google.cloud.storage import Client
from google.cloud.storage.blob import _get_encryption_headers
from google.cloud.storage.retry import DEFAULT_RETRY

from multiregion import integrity, transfer, validate
from multiregion.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from multiregion.interfaces import BackupBucket, BucketCapabilities, Progress
from multiregion.interfaces.bucket import Write
from multiregion.model import ObjectInfo
from multiregion.providers.gcp import connection
from multiregion.providers.gcp.errors import translated

KIB = 1024
CHUNK_UNIT = 256 * KIB
"""Resumable upload chunks must be multiples of 256 KiB."""
MAX_METADATA_BYTES = 8 * KIB
"""Custom metadata GCS keeps per object (keys and values)."""
_META = "x-goog-meta-"
_SHA256_HEADER = _META + integrity.METADATA_KEY
_IDENTITY = {"Accept-Encoding": "identity"}
"""The stored bytes as they are: the SHA-256 is of those, not of a decompressed form."""
_HOLDS = {"temporary": "temporary_hold", "event-based": "event_based_hold"}
"""GCS's object holds by the name ``hold=`` takes, and the SDK's attribute for each."""
_KMS_KEY = re.compile(
    r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+(/cryptoKeyVersions/\d+)?$"
)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")


def _bucket_name(value: object) -> str:
    if not isinstance(value, str) or not _BUCKET.match(value) or ".." in value:
        raise InvalidInput("bucket", f"{value!r} is not a Cloud Storage bucket name")
    return value


def _kms_key_name(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _KMS_KEY.match(value):
        raise InvalidInput(
            "kms_key_name",
            "must be projects/P/locations/L/keyRings/R/cryptoKeys/K (a Cloud KMS key)",
        )
    return value


def _rfc3339(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _generation(if_match: str) -> int:
    """The generation in a version string; anything else can match no object."""
    if not if_match.isdigit():
        raise PreconditionFailed("if_match is not a generation of this bucket's objects")
    return int(if_match)


class _Counted:
    """A readable file that reports bytes read for the first time (a retried chunk is re-read
    after a seek and not counted twice)."""

    def __init__(self, file: IO[bytes], progress: Progress) -> None:
        self._file = file
        self._progress = progress
        self._reported = 0

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        end = self._file.tell()
        if end > self._reported:
            self._progress(end - self._reported)
            self._reported = end
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()


class GcsBucket(BackupBucket):
    """A BackupBucket on one Cloud Storage bucket.

    ``endpoint`` points at an emulator (fake-gcs-server) with anonymous credentials; without it
    Application Default Credentials are used. ``conditional_delete=False`` declares a backend
    that ignores ``ifGenerationMatch`` on delete (fake-gcs-server does): ``delete(if_match=)``
    then raises ``Unsupported`` instead of deleting unconditionally. ``retry_timeout_s`` bounds
    the SDK's own retries (0 disables them).
    """

    def __init__(
        self,
        *,
        bucket: str,
        project: str,
        location: str | None = None,
        create: bool = False,
        endpoint: str | None = None,
        credentials: Any = None,
        chunk_size: int = 8 * 1024 * KIB,
        page_size: int = 1000,
        timeout_s: float = 60.0,
        retry_timeout_s: float = 120.0,
        conditional_delete: bool = True,
        retention: bool = False,
        hold: str | None = None,
        kms_key_name: str | None = None,
        encryption_key: bytes | None = None,
    ) -> None:
        self.bucket = _bucket_name(bucket)
        self.project = connection.project_id(project)
        if location is not None:
            # GCS takes multi-regions and regions in either case: US, EU, eur4, us-central1.
            validate.region("location", location.lower() if isinstance(location, str) else location)
        self.chunk_size = validate.int_range("chunk_size", chunk_size, CHUNK_UNIT, 1 << 30)
        if self.chunk_size % CHUNK_UNIT:
            raise InvalidInput("chunk_size", "must be a multiple of 256 KiB")
        self.page_size = validate.int_range("page_size", page_size, 1, 1000)
        self.timeout_s = validate.seconds("timeout_s", timeout_s, 0, 3600)
        retry_s = validate.finite_non_negative("retry_timeout_s", retry_timeout_s)
        for name, flag in (
            ("create", create),
            ("conditional_delete", conditional_delete),
            ("retention", retention),
        ):
            if not isinstance(flag, bool):
                raise InvalidInput(name, "must be True or False")
        url = None if endpoint is None else connection.endpoint_url("endpoint", endpoint)
        emulated = url is not None and connection.is_loopback_url(url)
        self._retry: Retry | None = DEFAULT_RETRY.with_timeout(retry_s) if retry_s else None
        self.hold = None if hold is None else validate.one_of("hold", hold, frozenset(_HOLDS))
        self.kms_key_name = _kms_key_name(kms_key_name)
        if encryption_key is not None and (
            not isinstance(encryption_key, bytes) or len(encryption_key) != 32
        ):
            raise InvalidInput("encryption_key", "must be 32 bytes (AES-256)")
        if encryption_key is not None and kms_key_name is not None:
            raise InvalidInput("encryption_key", "give a KMS key or a customer key, not both")
        self._encryption_key = encryption_key
        self.capabilities = BucketCapabilities(
            conditional_delete=conditional_delete,
            retention=retention,
            legal_hold=hold is not None,
            native_checksum="crc32c",
            max_metadata_bytes=MAX_METADATA_BYTES - integrity.METADATA_ENTRY_BYTES,
        )
        options = {"api_endpoint": url.rstrip("/")} if url is not None else None
        self._client = Client(
            project=self.project,
            credentials=connection.credentials(emulated, credentials),
            client_options=options,
        )
        self._bucket = self._client.bucket(self.bucket)
        if create:
            with translated("buckets.insert"):
                self._client.create_bucket(
                    self._bucket,
                    location=location,
                    enable_object_retention=retention,
                    timeout=self.timeout_s,
                    retry=self._retry,
                )

    def __repr__(self) -> str:
        return f"GcsBucket(bucket={self.bucket!r}, project={self.project!r})"

    def _object(self, key: str) -> Any:
        """The SDK's Blob for ``key`` with this bucket's keys (CMEK name or customer key)."""
        return self._bucket.blob(
            key,
            chunk_size=self.chunk_size,
            encryption_key=self._encryption_key,
            kms_key_name=self.kms_key_name,
        )

    # ------------------------------------------------------------------ writes

    def _put(self, key: str, data: bytes | IO[bytes], write: Write) -> ObjectInfo:
        with transfer.rewindable(data, self.chunk_size) as (file, digest):
            return self._upload(key, file, digest.size, digest.hexdigest(), write, None)

    def _upload_file(
        self, path: Path, key: str, write: Write, progress: Progress | None
    ) -> ObjectInfo:
        with transfer.source_file(path) as file:
            digest = transfer.digest_of(file)
            return self._upload(key, file, digest.size, digest.hexdigest(), write, progress)

    def _upload(
        self,
        key: str,
        file: IO[bytes],
        size: int,
        sha256: str,
        write: Write,
        progress: Progress | None,
    ) -> ObjectInfo:
        generation = 0 if write.create_only else None
        if write.if_match is not None:
            generation = _generation(write.if_match)
        blob = self._object(key)
        blob.metadata = {**write.metadata, integrity.METADATA_KEY: sha256}
        if write.retain_until is not None:
            # objects.insert with retention {mode, retainUntilTime} (JSON API Objects resource)
            blob.retention.mode = "Unlocked"
            blob.retention.retain_until_time = datetime.datetime.fromtimestamp(
                math.ceil(write.retain_until), datetime.UTC
            )
        if self._guarded and not write.create_only:
            self._refuse_retained(key)
        file.seek(0)
        source: Any = file if progress is None else _Counted(file, progress)
        try:
            with translated("objects.insert"):
                blob.upload_from_file(
                    source,
                    size=size,
                    if_generation_match=generation,
                    checksum="crc32c",
                    timeout=self.timeout_s,
                    retry=self._retry,
                )
        except PreconditionFailed as exc:
            if write.create_only:
                raise AlreadyExists(f"{key} already exists") from exc
            raise PreconditionFailed(
                f"{key}: the stored generation is not {write.if_match}"
            ) from exc
        if self.hold is not None:
            self._place_hold(blob)
        return self._info(blob)

    def _place_hold(self, blob: Any) -> None:
        """objects.patch of ``temporaryHold`` / ``eventBasedHold`` on the generation just
        written. The JSON API takes both on insert too, but google-cloud-storage sends only
        its own list of writable fields with an upload, so a held write costs one request
        more, and for that round trip the object is not yet held."""
        setattr(blob, _HOLDS[self.hold or ""], True)
        with translated("objects.patch"):
            blob.patch(
                if_generation_match=blob.generation, timeout=self.timeout_s, retry=self._retry
            )

    @property
    def _guarded(self) -> bool:
        return self.capabilities.retention or self.capabilities.legal_hold

    def _refuse_retained(self, key: str) -> None:
        """GCS refuses to overwrite or delete an object under retention or a hold with 403,
        which reads as an access error; the library says ``PreconditionFailed`` before trying."""
        try:
            blob = self._blob(key)
        except NotFound:
            return
        info = self._info(blob)
        if info.retain_until is not None and info.retain_until > time.time():
            raise PreconditionFailed(f"{key} is under retention until {info.retain_until:.0f}")
        if blob.temporary_hold or blob.event_based_hold:
            raise PreconditionFailed(f"{key} is under a hold")

    # ------------------------------------------------------------------ reads

    def _info(self, blob: Any) -> ObjectInfo:
        metadata = dict(blob.metadata or {})
        sha256 = metadata.pop(integrity.METADATA_KEY, "")
        until = (blob._properties.get("retention") or {}).get("retainUntilTime")
        return ObjectInfo(
            key=blob.name,
            size=int(blob.size or 0),
            version=str(blob.generation),
            sha256=sha256,
            updated_at=blob.updated.timestamp(),
            metadata=metadata,
            retain_until=_rfc3339(until) if until else None,
        )

    def _blob(self, key: str) -> Any:
        with translated("objects.get"):
            blob = self._bucket.get_blob(
                key,
                encryption_key=self._encryption_key,
                timeout=self.timeout_s,
                retry=self._retry,
            )
        if blob is None:
            raise NotFound(f"{key} does not exist")
        return blob

    def _head(self, key: str) -> ObjectInfo:
        return self._info(self._blob(key))

    def _stream(self, key: str, chunk_size: int) -> Iterator[bytes]:
        response = self._media(key)
        expected = response.headers.get(_SHA256_HEADER)
        return integrity.verified(self._pieces(response, chunk_size), expected, key)

    def _media(self, key: str) -> Any:
        """One media GET (``alt=media``) of the live generation, streamed.

        GCS answers it with the object's generation, hashes and custom metadata as headers
        (``x-goog-generation``, ``x-goog-hash``, ``x-goog-meta-*``, as the Go SDK's reader
        reads them), so a read costs one request where ``get_blob`` + ranged reads cost three.
        The request goes through the SDK's own authorised session and retry policy."""
        url = self._object(key)._get_download_url(self._client)
        session = self._client._http
        headers = {**_IDENTITY, **_get_encryption_headers(self._encryption_key)}

        def call() -> Any:
            response = session.request(
                "GET", url, stream=True, timeout=self.timeout_s, headers=headers
            )
            if response.status_code >= 400:
                response.close()
                raise from_http_response(response)  # type: ignore[no-untyped-call]
            return response

        with translated("objects.get"):
            return self._retry(call)() if self._retry is not None else call()

    @staticmethod
    def _pieces(response: Any, chunk_size: int) -> Iterator[bytes]:
        try:
            with translated("objects.get"):
                yield from response.iter_content(chunk_size)
        finally:
            response.close()

    @staticmethod
    def _media_info(key: str, headers: Mapping[str, str], size: int) -> ObjectInfo:
        metadata = {
            name[len(_META) :].lower(): value
            for name, value in headers.items()
            if name.lower().startswith(_META)
        }
        sha256 = metadata.pop(integrity.METADATA_KEY, "")
        modified = headers.get("Last-Modified")
        return ObjectInfo(
            key=key,
            size=size,
            version=str(headers.get("x-goog-generation", "")),
            sha256=sha256,
            updated_at=parsedate_to_datetime(modified).timestamp() if modified else 0.0,
            metadata=metadata,
        )

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        """GCS lists in UTF-8 byte order, which is code point order; listings carry metadata."""
        blobs = self._client.list_blobs(
            self._bucket,
            prefix=prefix or None,
            page_size=self.page_size,
            timeout=self.timeout_s,
            retry=self._retry,
        )
        with translated("objects.list"):
            for blob in blobs:
                yield self._info(blob)

    # ------------------------------------------------------------------ delete

    def _delete(self, key: str, if_match: str | None) -> None:
        generation = None if if_match is None else _generation(if_match)
        if self._guarded:
            self._refuse_retained(key)
        with translated("objects.delete"):
            self._bucket.delete_blob(
                key, if_generation_match=generation, timeout=self.timeout_s, retry=self._retry
            )

    # ------------------------------------------------------------------ download

    def _download_file(self, key: str, target: Path, progress: Progress | None) -> ObjectInfo:
        """Streams into a temporary file beside ``target``, renamed into place once verified."""
        response = self._media(key)
        expected = response.headers.get(_SHA256_HEADER)
        size = 0
        with transfer.replacing(target) as out:
            for piece in integrity.verified(self._pieces(response, self.chunk_size), expected, key):
                out.write(piece)
                size += len(piece)
                if progress is not None:
                    progress(len(piece))
        return self._media_info(key, response.headers, size)
