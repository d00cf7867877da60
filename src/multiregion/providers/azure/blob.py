"""The BackupBucket on Azure Blob Storage (block blobs in one container).

Objects up to one block go up in a single Put Blob; larger ones are staged block by block,
``max_concurrency`` blocks in flight, and committed with one Put Block List that carries the
conditions (``If-None-Match: *`` for create-only, ``If-Match`` for compare-and-swap) and the
SHA-256 the library computed while the bytes passed. A failed commit leaves only uncommitted
blocks, which Azure discards; readers never see a partial object.

The SHA-256 is kept in the metadata name ``multiregion_sha256``: Azure metadata names must be
C# identifiers, so the library's ``-`` becomes ``_`` (user names never hold ``_``, which keeps
the mapping reversible) and a name starting with a digit gets a leading ``_``.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import datetime
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from azure.core import MatchConditions
from azure.storage.blob import (
    BlobBlock,
    BlobClient,
    BlobImmutabilityPolicyMode,
    BlobProperties,
    BlobServiceClient,
    ImmutabilityPolicy,
)

from multiregion import integrity, redact, transfer, validate
from multiregion.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PreconditionFailed,
)
from multiregion.interfaces import BackupBucket, BucketCapabilities, Progress
from multiregion.interfaces.bucket import Write
from multiregion.model import ObjectInfo
from multiregion.providers.azure.credentials import endpoint_url, is_loopback, token_credential
from multiregion.providers.azure.errors import translated

SHA256_METADATA = integrity.METADATA_KEY.replace("-", "_")
_SCOPE = re.compile(r"^[A-Za-z0-9]{3,63}$")
"""Encryption scope names: 3-63 letters and digits."""
_CONTAINER = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


class BlobBucket(BackupBucket):
    """Objects in the Blob container ``container`` of the account at ``account_url``.

    ``credential`` is any TokenCredential (``DefaultAzureCredential()`` when omitted);
    ``account_key`` uses Shared Key instead (Azurite's development key, for instance).
    ``encryption_scope`` encrypts every block and blob with that scope's key (a
    customer-managed Key Vault key when the scope is so defined). ``retention=True`` declares a
    container with version-level immutability: ``put(retain_until=)`` sets an unlocked
    immutability policy, and ``legal_hold=True`` sets a legal hold on every write as well.
    """

    def __init__(
        self,
        account_url: str,
        container: str,
        *,
        credential: Any = None,
        account_key: str | None = None,
        create: bool = True,
        block_size: int = 8 * 1024 * 1024,
        max_concurrency: int = 4,
        timeout_s: float = 30.0,
        retries: int = 3,
        retention: bool = False,
        legal_hold: bool = False,
        encryption_scope: str | None = None,
    ) -> None:
        self._account_url = endpoint_url("account_url", account_url)
        if not isinstance(container, str) or not _CONTAINER.match(container):
            raise InvalidInput("container", f"{container!r} is not a Blob container name")
        self._container_name = container
        self.block_size = validate.int_range("block_size", block_size, 64 * 1024, 100 * 1024**2)
        self._concurrency = validate.int_range("max_concurrency", max_concurrency, 1, 64)
        timeout = validate.seconds("timeout_s", timeout_s, 0, 600)
        retries = validate.int_range("retries", retries, 0, 10)
        for name, flag in (
            ("create", create),
            ("retention", retention),
            ("legal_hold", legal_hold),
        ):
            if not isinstance(flag, bool):
                raise InvalidInput(name, "must be True or False")
        if legal_hold and not retention:
            raise InvalidInput("legal_hold", "needs a container with immutability (retention=True)")
        self.legal_hold = legal_hold
        if encryption_scope is not None and (
            not isinstance(encryption_scope, str) or not _SCOPE.match(encryption_scope)
        ):
            raise InvalidInput("encryption_scope", f"{encryption_scope!r} is not a scope name")
        self._scope = encryption_scope
        if account_key is not None and credential is not None:
            raise InvalidInput("account_key", "give either an account key or a credential")
        if account_key is not None:
            if not isinstance(account_key, str) or not account_key:
                raise InvalidInput("account_key", "must be the storage account key")
            from azure.core.credentials import AzureNamedKeyCredential

            auth: Any = AzureNamedKeyCredential(_account_name(self._account_url), account_key)
        else:
            auth = token_credential(credential)
        self.capabilities = BucketCapabilities(
            conditional_delete=True,
            retention=retention,
            legal_hold=legal_hold,
            native_checksum=None,
        )
        self._service = BlobServiceClient(
            self._account_url,
            credential=auth,
            max_single_get_size=self.block_size,
            max_chunk_get_size=self.block_size,
            max_block_size=self.block_size,
            connection_timeout=timeout,
            read_timeout=timeout,
            retry_total=retries,
        )
        self._container = self._service.get_container_client(container)
        if create:
            with contextlib.suppress(AlreadyExists), translated(f"create container {container}"):
                self._container.create_container()

    def __repr__(self) -> str:
        return f"BlobBucket({redact.url(self._account_url)!r}, {self._container_name!r})"

    def _blob(self, key: str) -> BlobClient:
        return self._container.get_blob_client(key)

    # ----------------------------------------------------------------------- reads

    def _head(self, key: str) -> ObjectInfo:
        return _info(key, self._properties(key))

    def _properties(self, key: str) -> BlobProperties:
        with translated(f"head {key!r}"):
            return self._blob(key).get_blob_properties()

    def _get(self, key: str) -> bytes:
        with translated(f"get {key!r}"):
            downloader = self._blob(key).download_blob(max_concurrency=self._concurrency)
            data: bytes = downloader.readall()
        digest = integrity.Digest()
        digest.update(data)
        digest.check(downloader.properties.metadata.get(SHA256_METADATA), key)
        return data

    def _stream(self, key: str, chunk_size: int) -> Iterator[bytes]:
        with translated(f"stream {key!r}"):
            downloader = self._blob(key).download_blob()
        expected = downloader.properties.metadata.get(SHA256_METADATA)
        return integrity.verified(self._pieces(key, downloader.chunks(), chunk_size), expected, key)

    @staticmethod
    def _pieces(key: str, chunks: Iterator[bytes], chunk_size: int) -> Iterator[bytes]:
        """The downloaded blocks re-cut to at most ``chunk_size`` bytes."""
        with translated(f"stream {key!r}"):
            for block in chunks:
                view = memoryview(block)
                for start in range(0, len(view), chunk_size):
                    yield bytes(view[start : start + chunk_size])

    def _list(self, prefix: str) -> Iterator[ObjectInfo]:
        with translated(f"list {prefix!r}"):
            for properties in self._container.list_blobs(
                name_starts_with=prefix or None, include=["metadata"]
            ):
                yield _info(properties.name, properties)

    # ----------------------------------------------------------------------- writes

    def _put(self, key: str, data: bytes | IO[bytes], write: Write) -> ObjectInfo:
        size = len(data) if isinstance(data, bytes | bytearray | memoryview) else None
        return self._write(key, integrity.chunks(data, self.block_size), size, write, None)

    def _upload_file(
        self, path: Path, key: str, write: Write, progress: Progress | None
    ) -> ObjectInfo:
        with transfer.source_file(path) as f:
            size = os.fstat(f.fileno()).st_size
            return self._write(key, integrity.chunks(f, self.block_size), size, write, progress)

    def _immutability(self, retain_until: float | None) -> dict[str, Any]:
        """The version-level immutability policy (and legal hold) a write sets:
        ``x-ms-immutability-policy-until-date`` / ``-mode: unlocked`` and ``x-ms-legal-hold``
        on Put Blob and Put Block List (Blob REST API)."""
        extra: dict[str, Any] = {"legal_hold": True} if self.legal_hold else {}
        if retain_until is not None:
            extra["immutability_policy"] = ImmutabilityPolicy(
                expiry_time=datetime.datetime.fromtimestamp(math.ceil(retain_until), datetime.UTC),
                policy_mode=BlobImmutabilityPolicyMode.UNLOCKED,
            )
        return extra

    def _write(
        self,
        key: str,
        pieces: Iterable[bytes],
        size: int | None,
        write: Write,
        progress: Progress | None,
    ) -> ObjectInfo:
        """One Put Blob for what fits a block, else blocks staged and committed. ``size``, when
        known, spares reading two blocks ahead to tell which; each block is hashed after it is
        handed to the stager, so that the hash overlaps its upload."""
        create_only, if_match = write.create_only, write.if_match
        if create_only or if_match is not None or self.capabilities.retention:
            self._admit(key, create_only, if_match)  # fail before streaming; enforced at commit
        blob = self._blob(key)
        metadata = {_to_azure(name): text for name, text in write.metadata.items()}
        extra = self._immutability(write.retain_until)
        conditions: dict[str, Any] = {}
        if create_only:
            conditions = {"match_condition": MatchConditions.IfMissing}
        elif if_match is not None:
            conditions = {"etag": if_match, "match_condition": MatchConditions.IfNotModified}
        digest = integrity.Digest()
        source = iter(pieces)
        single: bytes | None = None
        if size is None or size <= self.block_size:
            first = next(source, b"")
            second = next(source, None)
            if second is None:
                single = digest.update(first)
            else:
                source = _chain((first, second), source)
        operation = f"put {key!r}"
        try:
            if single is not None:
                metadata[SHA256_METADATA] = digest.hexdigest()
                with translated(operation):
                    result = blob.upload_blob(
                        single,
                        length=len(single),
                        overwrite=not create_only,
                        metadata=metadata,
                        **conditions,
                        encryption_scope=self._scope,
                        **extra,
                    )
                if progress is not None:
                    progress(len(single))
            else:
                blocks = self._stage(blob, key, source, digest, progress)
                metadata[SHA256_METADATA] = digest.hexdigest()
                with translated(operation):
                    result = blob.commit_block_list(
                        [*blocks],
                        metadata=metadata,
                        encryption_scope=self._scope,
                        **conditions,
                        **extra,
                    )
        except NotFound as exc:
            # If-Match on an absent blob
            raise PreconditionFailed(
                f"{operation}: if_match given but no object is stored"
            ) from exc
        policy = extra.get("immutability_policy")
        return ObjectInfo(
            key=key,
            size=digest.size,
            version=_etag(result["etag"]),
            sha256=digest.hexdigest(),
            updated_at=result["last_modified"].timestamp(),
            metadata=write.metadata,
            retain_until=policy.expiry_time.timestamp() if policy is not None else None,
        )

    def _stage(
        self,
        blob: BlobClient,
        key: str,
        pieces: Iterator[bytes],
        digest: integrity.Digest,
        progress: Progress | None,
    ) -> Sequence[BlobBlock]:
        """Stages every piece as a block, at most ``max_concurrency`` in flight (and in memory)."""
        upload = uuid.uuid4().hex
        blocks: list[BlobBlock] = []
        pending: collections.deque[tuple[Future[Any], int]] = collections.deque()
        with ThreadPoolExecutor(self._concurrency, thread_name_prefix="blob-stage") as pool:

            def settle(keep: int) -> None:
                while len(pending) > keep:
                    future, size = pending.popleft()
                    with translated(f"put {key!r}"):
                        future.result()
                    if progress is not None:
                        progress(size)

            try:
                for index, piece in enumerate(pieces):
                    block_id = base64.b64encode(f"{upload}-{index:08d}".encode()).decode()
                    blocks.append(BlobBlock(block_id=block_id))
                    settle(self._concurrency - 1)
                    future = pool.submit(
                        blob.stage_block,
                        block_id,
                        piece,
                        length=len(piece),
                        encryption_scope=self._scope,
                    )
                    pending.append((future, len(piece)))
                    digest.update(piece)
                settle(0)
            except BaseException:
                for future, _size in pending:
                    future.cancel()
                raise
        return blocks

    def _admit(self, key: str, create_only: bool, if_match: str | None) -> None:
        try:
            properties = self._properties(key)
        except NotFound:
            if if_match is not None:
                raise PreconditionFailed(f"{key}: if_match given but no object is stored") from None
            return
        if create_only:
            raise AlreadyExists(f"{key}: an object is already stored")
        if if_match is not None and _etag(properties.etag) != if_match:
            raise PreconditionFailed(f"{key}: stored version differs from if_match")
        _refuse_retained(key, properties)

    def _delete(self, key: str, if_match: str | None) -> None:
        """One Delete Blob; on a container with immutability, a HEAD first: Azure refuses to
        delete a blob under an immutability policy with 409, which reads as a conflict, and
        the library says ``PreconditionFailed`` instead."""
        if self.capabilities.retention:
            _refuse_retained(key, self._properties(key))
        conditions: dict[str, Any] = {}
        if if_match is not None:
            conditions = {"etag": if_match, "match_condition": MatchConditions.IfNotModified}
        with translated(f"delete {key!r}"):
            self._blob(key).delete_blob(**conditions)

    def _download_file(self, key: str, target: Path, progress: Progress | None) -> ObjectInfo:
        hook = None if progress is None else _Deltas(progress)
        with translated(f"download {key!r}"):
            downloader = self._blob(key).download_blob(
                max_concurrency=self._concurrency, progress_hook=hook
            )
        info = _info(key, downloader.properties)
        with transfer.replacing(target, "w+b") as out:
            sink = transfer.HashingSink(out.fileno())
            with translated(f"download {key!r}"):
                downloader.readinto(sink)  # type: ignore[arg-type]  # seek, tell, write suffice
            sink.check(info.sha256 or None, key)
        return info

    def close(self) -> None:
        self._service.close()


class _Deltas:
    """Turns the SDK's cumulative progress (from worker threads) into byte counts moved."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._seen = 0
        self._lock = threading.Lock()

    def __call__(self, current: int, _total: int | None) -> None:
        with self._lock:
            delta, self._seen = current - self._seen, max(current, self._seen)
            if delta > 0:
                self._progress(delta)


def _etag(value: object) -> str:
    """Azure's ETag in one form (quoted): listings give it bare, properties quoted."""
    text = str(value)
    return text if text.startswith('"') else f'"{text}"'


def _chain(head: Iterable[bytes], rest: Iterator[bytes]) -> Iterator[bytes]:
    yield from head
    yield from rest


def _info(key: str, properties: BlobProperties) -> ObjectInfo:
    stored = dict(properties.metadata or {})
    sha256 = stored.pop(SHA256_METADATA, "")
    policy = getattr(properties, "immutability_policy", None)
    expiry = getattr(policy, "expiry_time", None)
    return ObjectInfo(
        key=key,
        size=int(properties.size),
        version=_etag(properties.etag),
        sha256=sha256,
        updated_at=properties.last_modified.timestamp(),
        metadata={_from_azure(name): value for name, value in stored.items()},
        retain_until=expiry.timestamp() if expiry is not None else None,
    )


def _refuse_retained(key: str, properties: BlobProperties) -> None:
    """Azure refuses to overwrite or delete a blob under an immutability policy or a legal hold
    with 409 (a conflict to the SDK); the library says ``PreconditionFailed`` first."""
    info = _info(key, properties)
    if info.retain_until is not None and info.retain_until > time.time():
        raise PreconditionFailed(f"{key} is under retention until {info.retain_until:.0f}")
    if getattr(properties, "has_legal_hold", False):
        raise PreconditionFailed(f"{key} is under a legal hold")


def _to_azure(name: str) -> str:
    azure = name.replace("-", "_")
    return f"_{azure}" if azure[0].isdigit() else azure


def _from_azure(name: str) -> str:
    return name.removeprefix("_").replace("_", "-")


def _account_name(account_url: str) -> str:
    """The account of a Blob URL: the host's first label, or the first path segment on an
    emulator's IP address (``http://127.0.0.1:10000/devstoreaccount1``)."""
    parts = urlsplit(account_url)
    if is_loopback(account_url):
        return parts.path.strip("/").split("/")[0]
    return (parts.hostname or "").split(".")[0]
