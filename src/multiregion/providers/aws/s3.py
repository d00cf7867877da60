"""BackupBucket on S3.

Conditions are S3's own: ``If-None-Match: *`` for create-only and ``If-Match: <etag>`` for
compare-and-swap, on PutObject, CompleteMultipartUpload and DeleteObject. The library's
SHA-256 of the whole object travels as user metadata (``integrity.METADATA_KEY``) and is checked
on every read; S3 also gets a SHA-256 per request or per part (``ChecksumSHA256``) so that it
rejects bytes damaged on the way in. Large objects go up and down in parts, several at once,
holding at most ``concurrency`` parts in memory.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import IO, Any

from botocore.exceptions import BotoCoreError, ClientError

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
from multiregion.providers.aws.errors import translate_error, translated
from multiregion.providers.aws.session import Connection

MIB = 1024 * 1024
MIN_PART = 5 * MIB
MAX_PART = 5 * 1024 * MIB
MAX_PARTS = 10_000
MAX_METADATA_BYTES = 2048
"""User metadata S3 keeps per object (keys and values, UTF-8)."""
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MODES = frozenset({"COMPLIANCE", "GOVERNANCE"})


def _bucket_name(value: object) -> str:
    if not isinstance(value, str) or not _BUCKET.match(value) or ".." in value:
        raise InvalidInput("bucket", f"{value!r} is not an S3 bucket name")
    return value


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


class _Source:
    """Random access to the bytes being uploaded, safe to share between part uploads."""

    def __init__(self, file: IO[bytes], size: int) -> None:
        self._file = file
        self._lock = threading.Lock()
        self.size = size

    def read_at(self, offset: int, length: int) -> bytes:
        with self._lock:
            self._file.seek(offset)
            return self._file.read(length)


class S3Bucket(BackupBucket):
    """A BackupBucket on one S3 bucket.

    ``legal_hold=True`` (with ``retention=True``) places an Object Lock legal hold on every
    object written; it stays until released outside the library (``PutObjectLegalHold``).
    ``kms_key_id`` (a KMS key id, alias or ARN) encrypts every object at rest with that
    customer-managed key (SSE-KMS: ``x-amz-server-side-encryption: aws:kms`` on PutObject and
    CreateMultipartUpload); reads need ``kms:Decrypt`` on it, nothing else changes.
    ``match_any_on_delete=False`` is for a backend that does not honour ``If-Match: *`` on
    DeleteObject as S3 documents (plain moto 5.2.5; ``testing.emulators.aws.MotoServer`` does).

    ``retention=True`` declares that the bucket has Object Lock enabled (``create=True`` then
    creates it so); ``put(retain_until=...)`` is refused otherwise. ``part_size`` and
    ``concurrency`` bound the memory of transfers to about their product.
    """

    def __init__(
        self,
        *,
        bucket: str,
        region: str = "us-east-1",
        create: bool = False,
        retention: bool = False,
        retention_mode: str = "COMPLIANCE",
        part_size: int = 8 * MIB,
        concurrency: int = 4,
        page_size: int = 1000,
        endpoint_url: str | None = None,
        max_attempts: int = 5,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        match_any_on_delete: bool = True,
        kms_key_id: str | None = None,
        legal_hold: bool = False,
    ) -> None:
        self.bucket = _bucket_name(bucket)
        self.kms_key_id = None if kms_key_id is None else validate.key("kms_key_id", kms_key_id)
        self.region = validate.region("region", region)
        self.retention_mode = validate.one_of("retention_mode", retention_mode, _MODES)
        self.part_size = validate.int_range("part_size", part_size, MIN_PART, MAX_PART)
        self.concurrency = validate.int_range("concurrency", concurrency, 1, 64)
        self.page_size = validate.int_range("page_size", page_size, 1, 1000)
        if not isinstance(retention, bool):
            raise InvalidInput("retention", "must be True or False")
        if not isinstance(create, bool):
            raise InvalidInput("create", "must be True or False")
        if not isinstance(legal_hold, bool):
            raise InvalidInput("legal_hold", "must be True or False")
        if legal_hold and not retention:
            raise InvalidInput("legal_hold", "needs a bucket with Object Lock (retention=True)")
        if not isinstance(match_any_on_delete, bool):
            raise InvalidInput("match_any_on_delete", "must be True or False")
        self.match_any_on_delete = match_any_on_delete
        connection = Connection(
            endpoint_url=endpoint_url,
            max_attempts=max_attempts,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
        )
        self.capabilities = BucketCapabilities(
            conditional_delete=True,
            retention=retention,
            legal_hold=legal_hold,
            native_checksum="sha256",
            max_metadata_bytes=MAX_METADATA_BYTES - integrity.METADATA_ENTRY_BYTES,
        )
        self._s3 = connection.client(
            "s3", self.region, "bucket", max_pool_connections=max(10, self.concurrency * 2)
        )
        if create:
            self._create_bucket()

    def __repr__(self) -> str:
        return f"S3Bucket(bucket={self.bucket!r}, region={self.region!r})"

    def _create_bucket(self) -> None:
        args: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        if self.capabilities.retention:
            args["ObjectLockEnabledForBucket"] = True
        try:
            self._s3.create_bucket(**args)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                raise translate_error(exc, "CreateBucket") from exc
        except BotoCoreError as exc:
            raise translate_error(exc, "CreateBucket") from exc

    # ------------------------------------------------------------------ writes

    def _put(self, key: str, data: bytes | IO[bytes], write: Write) -> ObjectInfo:
        with transfer.rewindable(data, self.part_size) as (file, digest):
            source = _Source(file, digest.size)
            return self._upload(key, source, digest.hexdigest(), self._write_args(write), None)

    def _upload_file(
        self, path: Path, key: str, write: Write, progress: Progress | None
    ) -> ObjectInfo:
        with transfer.source_file(path) as file:
            digest = transfer.digest_of(file)
            source = _Source(file, digest.size)
            return self._upload(key, source, digest.hexdigest(), self._write_args(write), progress)

    def _write_args(self, write: Write) -> dict[str, Any]:
        """Everything a write sends besides the bytes."""
        args: dict[str, Any] = {"Metadata": write.metadata, "ChecksumAlgorithm": "SHA256"}
        if self.capabilities.legal_hold:
            args["ObjectLockLegalHoldStatus"] = "ON"
        if self.kms_key_id is not None:
            args["ServerSideEncryption"] = "aws:kms"
            args["SSEKMSKeyId"] = self.kms_key_id
        if write.create_only:
            args["IfNoneMatch"] = "*"
        if write.if_match is not None:
            args["IfMatch"] = write.if_match
        if write.retain_until is not None:
            args["ObjectLockMode"] = self.retention_mode
            args["ObjectLockRetainUntilDate"] = datetime.datetime.fromtimestamp(
                math.ceil(write.retain_until), datetime.UTC
            )
        return args

    def _upload(
        self,
        key: str,
        source: _Source,
        sha256: str,
        args: dict[str, Any],
        progress: Progress | None,
    ) -> ObjectInfo:
        args["Metadata"] = {**args["Metadata"], integrity.METADATA_KEY: sha256}
        conditions: dict[str, str] = {
            c: args.pop(c) for c in ("IfNoneMatch", "IfMatch") if c in args
        }
        if self.capabilities.retention and "IfNoneMatch" not in conditions:
            self._refuse_retained(key)
        try:
            if source.size <= self.part_size:
                body = source.read_at(0, source.size)
                with translated("PutObject"):
                    etag = self._s3.put_object(
                        Bucket=self.bucket,
                        Key=key,
                        Body=body,
                        ChecksumSHA256=_b64_sha256(body),
                        **args,
                        **conditions,
                    )["ETag"]
                if progress is not None:
                    progress(source.size)
            else:
                # S3 enforces both conditions on CompleteMultipartUpload (moto only
                # If-None-Match); checking first also saves sending every part in vain.
                if "IfMatch" in conditions:
                    self._head(key, IfMatch=conditions["IfMatch"])
                elif "IfNoneMatch" in conditions and self._exists(key):
                    raise PreconditionFailed(f"{key} exists")
                etag = self._multipart(key, source, args, conditions, progress)
        except NotFound as exc:
            if "IfMatch" in conditions:
                raise PreconditionFailed(f"{key}: no object to match") from exc
            raise
        except PreconditionFailed as exc:
            if "IfNoneMatch" in conditions:
                raise AlreadyExists(f"{key} already exists") from exc
            raise
        metadata = {k: v for k, v in args["Metadata"].items() if k != integrity.METADATA_KEY}
        until = args.get("ObjectLockRetainUntilDate")
        return ObjectInfo(
            key=key,
            size=source.size,
            version=etag,
            sha256=sha256,
            updated_at=time.time(),  # this machine's clock; head() gives S3's LastModified
            metadata=metadata,
            retain_until=until.timestamp() if until is not None else None,
        )

    def _multipart(
        self,
        key: str,
        source: _Source,
        args: dict[str, Any],
        conditions: dict[str, str],
        progress: Progress | None,
    ) -> str:
        part_size = max(self.part_size, math.ceil(source.size / MAX_PARTS))
        with translated("CreateMultipartUpload"):
            upload_id = self._s3.create_multipart_upload(Bucket=self.bucket, Key=key, **args)[
                "UploadId"
            ]
        try:
            offsets = range(0, source.size, part_size)

            def send(number: int, offset: int) -> tuple[dict[str, Any], int]:
                body = source.read_at(offset, part_size)
                checksum = _b64_sha256(body)
                with translated("UploadPart"):
                    etag = self._s3.upload_part(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=body,
                        ChecksumSHA256=checksum,
                    )["ETag"]
                part = {"PartNumber": number, "ETag": etag, "ChecksumSHA256": checksum}
                return part, len(body)

            parts = self._run_bounded(
                [partial(send, n, o) for n, o in enumerate(offsets, start=1)], progress
            )
            with translated("CompleteMultipartUpload"):
                etag: str = self._s3.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": sorted(parts, key=lambda p: p["PartNumber"])},
                    **conditions,
                )["ETag"]
            return etag
        except BaseException:
            with suppress(BotoCoreError, ClientError):
                self._s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

    def _run_bounded(
        self, tasks: list[Callable[[], tuple[Any, int]]], progress: Progress | None
    ) -> list[Any]:
        """Runs ``tasks`` with at most ``concurrency`` in flight, so at most that many parts are
        in memory; each task returns its result and the bytes it moved, reported to
        ``progress`` from this thread."""
        results: list[Any] = []
        pending: set[Future[tuple[Any, int]]] = set()

        def collect(finished: set[Future[tuple[Any, int]]]) -> None:
            for future in finished:
                result, moved = future.result()
                results.append(result)
                if progress is not None:
                    progress(moved)

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            try:
                for task in tasks:
                    if len(pending) >= self.concurrency:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        collect(finished)
                    pending.add(pool.submit(task))
                finished, pending = wait(pending)
                collect(finished)
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        return results

    # ------------------------------------------------------------------ reads

    def _head(self, key: str, **conditions: str) -> ObjectInfo:
        with translated("HeadObject"):
            response = self._s3.head_object(Bucket=self.bucket, Key=key, **conditions)
        return self._info(key, response)

    def _info(self, key: str, response: Mapping[str, Any]) -> ObjectInfo:
        metadata = dict(response.get("Metadata", {}))
        sha256 = metadata.pop(integrity.METADATA_KEY, "")
        until = response.get("ObjectLockRetainUntilDate")
        return ObjectInfo(
            key=key,
            size=int(response["ContentLength"]),
            version=str(response["ETag"]),
            sha256=sha256,
            updated_at=response["LastModified"].timestamp(),
            metadata=metadata,
            retain_until=until.timestamp() if until is not None else None,
        )

    def _exists(self, key: str) -> bool:
        try:
            self._head(key)
        except NotFound:
            return False
        return True

    def _refuse_retained(self, key: str) -> ObjectInfo | None:
        """S3 lets a new version or a delete marker cover a retained or held version; a backup
        under retention or legal hold must stay the object's current content, so the library
        refuses both. Returns what it read (None for no object)."""
        with translated("HeadObject"):
            try:
                response = self._s3.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                    return None
                raise
        info = self._info(key, response)
        if info.retain_until is not None and info.retain_until > time.time():
            raise PreconditionFailed(f"{key} is under retention until {info.retain_until:.0f}")
        if response.get("ObjectLockLegalHoldStatus") == "ON":
            raise PreconditionFailed(f"{key} is under a legal hold")
        return info

    def _stream(self, key: str, chunk_size: int) -> Iterator[bytes]:
        with translated("GetObject"):
            response = self._s3.get_object(Bucket=self.bucket, Key=key)
        expected = response.get("Metadata", {}).get(integrity.METADATA_KEY)
        return integrity.verified(self._body(response["Body"], chunk_size), expected, key)

    @staticmethod
    def _body(body: Any, chunk_size: int) -> Iterator[bytes]:
        try:
            with translated("GetObject"):
                yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects from ListObjectsV2 pages (UTF-8 byte order is code point order).

        A listing carries key, size, ETag and time but neither user metadata nor the stored
        SHA-256: those are ``{}`` and ``""`` here, and ``head`` reads them (one request each).
        """
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": self.page_size}
        )
        with translated("ListObjectsV2"):
            for page in pages:
                for entry in page.get("Contents", []):
                    yield ObjectInfo(
                        key=entry["Key"],
                        size=int(entry["Size"]),
                        version=str(entry["ETag"]),
                        sha256="",
                        updated_at=entry["LastModified"].timestamp(),
                    )

    # ------------------------------------------------------------------ delete

    def _delete(self, key: str, if_match: str | None) -> None:
        """One DeleteObject carrying ``If-Match`` (the given ETag, or ``*``): S3 then answers
        404 NoSuchKey for a missing key and 412 for a stale ETag, where a plain DELETE answers
        204 whatever was there (conditional deletes, AWS S3 user guide). Two cases head first:
        an Object Lock bucket, where a DELETE without a version id lays a delete marker over a
        retained version and succeeds, which its answer cannot tell; and a backend that takes
        ``*`` for a literal ETag (``match_any_on_delete=False``: plain moto 5.2.5 answers 412)."""
        condition = "*" if if_match is None else if_match
        if self.capabilities.retention or (if_match is None and not self.match_any_on_delete):
            info = self._refuse_retained(key)
            if info is None:
                raise NotFound(f"{key} does not exist")
            if if_match is None:
                condition = info.version
        try:
            with translated("DeleteObject"):
                self._s3.delete_object(Bucket=self.bucket, Key=key, IfMatch=condition)
        except PreconditionFailed as exc:
            if condition != "*":
                raise
            raise PreconditionFailed(
                f"the endpoint answered 412 to If-Match: * on DeleteObject, which S3 takes as "
                f"'{key} exists' (plain moto 5.2.5 does this): for such an endpoint set "
                "match_any_on_delete=False"
            ) from exc

    # ------------------------------------------------------------------ download

    def _download_file(self, key: str, target: Path, progress: Progress | None) -> ObjectInfo:
        """Ranged GETs pinned to one ETag write into a temporary file beside ``target``, hashed
        in offset order as the parts land and renamed into place only when it matches."""
        info = self._head(key)
        with transfer.replacing(target, "w+b") as out:
            sink = transfer.HashingSink(out.fileno())
            self._fetch_ranges(key, info, sink, progress)
            sink.check(info.sha256 or None, key)
        return info

    def _fetch_ranges(
        self, key: str, info: ObjectInfo, sink: transfer.HashingSink, progress: Progress | None
    ) -> None:
        def fetch(offset: int) -> tuple[None, int]:
            last = min(offset + self.part_size, info.size) - 1
            try:
                with translated("GetObject"):
                    response = self._s3.get_object(
                        Bucket=self.bucket,
                        Key=key,
                        Range=f"bytes={offset}-{last}",
                        IfMatch=info.version,
                    )
                    position = offset
                    for chunk in response["Body"].iter_chunks(1 << 20):
                        position += sink.write_at(chunk, position)
            except PreconditionFailed as exc:
                raise PreconditionFailed(f"{key} changed during the download") from exc
            return None, position - offset

        self._run_bounded(
            [partial(fetch, o) for o in range(0, info.size, self.part_size)], progress
        )
