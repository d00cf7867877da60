"""Snapshots of a ReplicatedStore in a BackupBucket, and verified restores.

Layout of one backup under ``<prefix><backup_id>/``::

    chunk-000001.jsonl.gz   items (and, in incrementals, tombstones) as JSON lines, key order
    index-000001.jsonl.gz   every key present at backup time with the SHA-256 of its value
    manifest.json           written last: counts, per-object SHA-256, the base of an incremental

A backup without its manifest is incomplete and refused. Everything streams: the store is
scanned in key order, chunks are cut at ``chunk_items``, and an incremental backup finds what
changed by merging the store's scan with the base's index, so memory stays flat however large
the store is. Each item is serialised once; its chunk and index lines are built from that text.
Full chunks are compressed, hashed and uploaded by ``concurrency`` worker threads while the
scan goes on (zlib and the network release the GIL), at most ``concurrency`` chunks in flight.

A restore first reads and checks every object of the chain (base first), then writes: a flipped
byte or a missing chunk is found before anything is written.

Format 2 (this code) adds to format 1 an optional ``encryption`` (client-side envelope
encryption, ``multiregion.backup_encryption``), the backup's ``digest`` (``content_digest`` of
what was scanned) and a ``sentinel`` (one key and its value's hash) that restore tests check.
Objects are laid out as in format 1, and format 1 backups still restore.
"""

from __future__ import annotations

import builtins
import contextlib
import gzip
import hashlib
import json
import logging
import math
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from json.encoder import encode_basestring_ascii
from typing import Any, Literal

import attrs

from multiregion import validate
from multiregion.backup_encryption import DataKey, KeyWrapper
from multiregion.errors import CorruptData, InvalidInput, NotFound
from multiregion.integrity import sha256_hex
from multiregion.interfaces import BackupBucket, ReplicatedStore
from multiregion.model import FencingToken

FORMAT_VERSION = 2
READABLE_FORMATS = frozenset({1, 2})
DEFAULT_PREFIX = "backups/"
MANIFEST = "manifest.json"
VERIFIED = "verified.json"
"""Under the prefix: the record of the last restore test (``Backups.test_restore``)."""
ORPHAN_GRACE_S = 24 * 3600.0
"""A backup folder without a manifest whose newest object is older than this was cut short
(a killed process) and ``prune`` removes it; a younger one may still be being written."""
RESTORE_TEST_MAX_AGE_S = 7 * 86400.0
"""How old the last verified restore may get before ``status`` warns, unless a test says."""
COMPRESSION_LEVEL = 3
"""gzip level of chunks: 3 is several times faster than 9 on JSON lines for a few % more bytes
(benches/backup_speed.py)."""

Progress = Callable[[int], None]
_log = logging.getLogger(__name__)
_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
"""One encoder for every value: ``json.dumps`` with arguments builds a new one per call."""


@attrs.frozen
class ObjectEntry:
    key: str
    sha256: str
    lines: int


@attrs.frozen
class Manifest:
    backup_id: str
    kind: Literal["full", "incremental"]
    created_at: float
    source: dict[str, Any] = attrs.field(hash=False)
    item_count: int
    """Items present in the store at backup time (what a restore of this backup yields)."""
    changed: int
    """Items written into this backup's chunks (all of them for a full backup)."""
    deleted: int
    chunks: tuple[ObjectEntry, ...]
    index: tuple[ObjectEntry, ...]
    base: str | None = None
    format_version: int = FORMAT_VERSION
    encryption: dict[str, str] | None = attrs.field(default=None, hash=False)
    """Envelope encryption: scheme, the wrapping key's id and the wrapped data key."""
    digest: str | None = None
    """``content_digest`` of the store as scanned (format 2)."""
    sentinel: dict[str, str] | None = attrs.field(default=None, hash=False)
    """One key of the backup and its value's SHA-256 (``{"k": ..., "h": ...}``; format 2)."""

    def to_json(self) -> bytes:
        data = attrs.asdict(self)
        return json.dumps(data, sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes, where: str) -> Manifest:
        try:
            data = json.loads(raw)
            if data.get("format_version") not in READABLE_FORMATS:
                raise CorruptData(f"{where}: format version {data.get('format_version')!r}")
            data["chunks"] = tuple(ObjectEntry(**c) for c in data["chunks"])
            data["index"] = tuple(ObjectEntry(**c) for c in data["index"])
            return cls(**data)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            raise CorruptData(f"{where}: manifest is not readable ({exc})") from exc


@attrs.frozen
class Damaged:
    """A backup whose manifest exists but cannot be read; listing and pruning skip it."""

    backup_id: str
    reason: str


@attrs.frozen
class Incomplete:
    """A backup folder without a manifest: being written, or cut short."""

    backup_id: str
    objects: int
    newest: float
    """``updated_at`` of its newest object."""


@attrs.frozen
class Inventory:
    """Everything under the prefix, one listing: complete backups (oldest first), damaged ones
    and incomplete folders."""

    backups: tuple[Manifest, ...]
    damaged: tuple[Damaged, ...]
    incomplete: tuple[Incomplete, ...]


@attrs.frozen
class RestoreTest:
    """The record of one restore test: which backup, when, how many items, how long."""

    backup_id: str
    verified_at: float
    item_count: int
    seconds: float
    max_age_s: float = RESTORE_TEST_MAX_AGE_S
    """The policy: how old this record may get before ``status`` warns."""

    def age_s(self, now: float | None = None) -> float:
        return max(0.0, (time.time() if now is None else now) - self.verified_at)

    def overdue(self, now: float | None = None) -> bool:
        return self.age_s(now) > self.max_age_s


def _value_hash(value: dict[str, Any]) -> str:
    return sha256_hex(_JSON.encode(value).encode())


def _digest_line(key: str, value_hash: str) -> bytes:
    return key.encode() + b"\0" + value_hash.encode() + b"\n"


Seal = Callable[[str, bytes], bytes]


class _Uploads:
    """Compresses, seals, hashes and uploads finished objects on worker threads, at most
    ``concurrency`` in flight; the first failure is raised on the caller's next call."""

    def __init__(self, bucket: BackupBucket, concurrency: int, level: int, seal: Seal | None):
        self.bucket, self.level, self.seal = bucket, level, seal
        self.concurrency = concurrency
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="backup-upload")
        self._pending: set[Future[ObjectEntry]] = set()

    def submit(self, key: str, lines: builtins.list[bytes]) -> Future[ObjectEntry]:
        while len(self._pending) >= self.concurrency:
            done, self._pending = wait(self._pending, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()
        future = self._pool.submit(self._send, key, lines)
        self._pending.add(future)
        return future

    def _send(self, key: str, lines: builtins.list[bytes]) -> ObjectEntry:
        data = gzip.compress(b"".join(lines), compresslevel=self.level, mtime=0)
        if self.seal is not None:
            data = self.seal(key, data)
        self.bucket.put(key, data, create_only=True)
        return ObjectEntry(key, sha256_hex(data), len(lines))

    def finish(self) -> None:
        finished = wait(self._pending).done
        self._pending = set()
        for future in finished:
            future.result()

    def close(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)


class _ObjectWriter:
    """Cuts a stream of JSON lines into objects of at most ``limit`` lines each."""

    def __init__(self, uploads: _Uploads, prefix: str, stem: str, limit: int) -> None:
        self.uploads, self.prefix, self.stem, self.limit = uploads, prefix, stem, limit
        self._sent: builtins.list[Future[ObjectEntry]] = []
        self._lines: builtins.list[bytes] = []

    def write(self, line: bytes) -> None:
        self._lines.append(line)
        if len(self._lines) >= self.limit:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        key = f"{self.prefix}{self.stem}-{len(self._sent) + 1:06d}.jsonl.gz"
        self._sent.append(self.uploads.submit(key, self._lines))
        self._lines = []

    @property
    def entries(self) -> tuple[ObjectEntry, ...]:
        """The objects sent, in order (after ``_Uploads.finish``)."""
        return tuple(future.result() for future in self._sent)


@attrs.define
class Backups:
    """Backups of stores kept in one bucket under ``prefix``.

    ``encryption`` (an ``EnvelopeKey`` or a KMS-backed ``KeyWrapper``) seals every object of
    new backups on the client and opens encrypted backups on restore. ``concurrency`` objects
    are compressed and uploaded at once while the scan continues.
    """

    bucket: BackupBucket
    prefix: str = DEFAULT_PREFIX
    chunk_items: int = 1000
    encryption: KeyWrapper | None = None
    concurrency: int = 4
    compression_level: int = COMPRESSION_LEVEL

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.prefix, str) or (self.prefix and not self.prefix.endswith("/")):
            raise InvalidInput("prefix", "must be empty or end with '/'")
        validate.int_range("chunk_items", self.chunk_items, 1, 1_000_000)
        validate.int_range("concurrency", self.concurrency, 1, 64)
        validate.int_range("compression_level", self.compression_level, 0, 9)
        if self.encryption is not None and not all(
            hasattr(self.encryption, name) for name in ("key_id", "wrap", "unwrap")
        ):
            raise InvalidInput("encryption", "must be an EnvelopeKey or another KeyWrapper")

    # ------------------------------------------------------------------ writing

    def create(
        self,
        store: ReplicatedStore,
        *,
        region: str | None = None,
        incremental_from: str | None = None,
        progress: Progress | None = None,
        source: dict[str, Any] | None = None,
    ) -> Manifest:
        """Snapshot ``store`` (read from ``region``, default its write region).

        With ``incremental_from``, only items that changed since that backup, and tombstones for
        keys removed since, are written; the chain restores to the same state as a full backup.
        """
        validate.instance("store", store, ReplicatedStore)
        validate.progress(progress)
        base = self.manifest(incremental_from) if incremental_from is not None else None
        read_region = region or store.write_region
        if read_region not in store.regions:
            raise InvalidInput(
                "region", f"{read_region!r} is not one of {', '.join(store.regions)}"
            )
        backup_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
        prefix = f"{self.prefix}{backup_id}/"
        data_key = DataKey.new() if self.encryption is not None else None
        uploads = _Uploads(
            self.bucket,
            self.concurrency,
            self.compression_level,
            data_key.seal if data_key is not None else None,
        )
        try:
            chunks = _ObjectWriter(uploads, prefix, "chunk", self.chunk_items)
            index = _ObjectWriter(uploads, prefix, "index", self.chunk_items * 4)
            counts = self._scan_into(store, read_region, base, chunks, index, progress)
            chunks.flush()
            index.flush()
            uploads.finish()
        finally:
            uploads.close()
        count, changed, deleted, digest, sentinel = counts
        manifest = Manifest(
            backup_id=backup_id,
            kind="full" if base is None else "incremental",
            created_at=time.time(),
            source={"store": type(store).__name__, "region": read_region, **(source or {})},
            item_count=count,
            changed=changed,
            deleted=deleted,
            chunks=chunks.entries,
            index=index.entries,
            base=base.backup_id if base is not None else None,
            encryption=(
                data_key.describe(self.encryption, backup_id)
                if data_key is not None and self.encryption is not None
                else None
            ),
            digest=digest,
            sentinel=sentinel,
        )
        self.bucket.put(f"{prefix}{MANIFEST}", manifest.to_json(), create_only=True)
        return manifest

    def _scan_into(
        self,
        store: ReplicatedStore,
        region: str,
        base: Manifest | None,
        chunks: _ObjectWriter,
        index: _ObjectWriter,
        progress: Progress | None,
    ) -> tuple[int, int, int, str, dict[str, str] | None]:
        """Writes the chunk and index lines of a scan; returns the item, changed and deleted
        counts, the content digest and the sentinel. Each value is serialised once."""
        previous = self._index_of(base) if base is not None else iter(())
        pending = next(previous, None)
        digest = hashlib.sha256()
        count = changed = deleted = 0
        sentinel: dict[str, str] | None = None
        for item in store.scan("", region=region):
            text = _JSON.encode(item.value).encode()
            value_hash = sha256_hex(text)
            key_json = _json_string(item.key)
            while pending is not None and pending["k"] < item.key:
                chunks.write(_tombstone(_json_string(pending["k"])))
                deleted += 1
                pending = next(previous, None)
            unchanged = False
            if pending is not None and pending["k"] == item.key:
                unchanged = pending["h"] == value_hash
                pending = next(previous, None)
            if not unchanged:
                stamp = _json_number(item.updated_at)
                chunks.write(b'{"k":%s,"t":%s,"v":%s}\n' % (key_json, stamp, text))
                changed += 1
            index.write(b'{"h":"%s","k":%s}\n' % (value_hash.encode(), key_json))
            digest.update(_digest_line(item.key, value_hash))
            if sentinel is None:
                sentinel = {"k": item.key, "h": value_hash}
            count += 1
            if progress is not None:
                progress(1)
        while pending is not None:
            chunks.write(_tombstone(_json_string(pending["k"])))
            deleted += 1
            pending = next(previous, None)
        return count, changed, deleted, digest.hexdigest(), sentinel

    def _index_of(self, manifest: Manifest) -> Iterator[dict[str, Any]]:
        return self._read_all(manifest, manifest.index)

    # ------------------------------------------------------------------ reading

    def _read_lines(self, entry: ObjectEntry, key: DataKey | None) -> Iterator[dict[str, Any]]:
        """The JSON lines of one backup object, after checking it against the manifest."""
        try:
            data = self.bucket.get(entry.key)
        except NotFound as exc:
            raise CorruptData(f"{entry.key}: missing from the backup") from exc
        if sha256_hex(data) != entry.sha256:
            raise CorruptData(f"{entry.key}: SHA-256 differs from the manifest")
        if key is not None:
            data = key.open(entry.key, data)
        try:
            lines = gzip.decompress(data).splitlines()
        except (OSError, EOFError) as exc:
            raise CorruptData(f"{entry.key}: not a gzip stream ({exc})") from exc
        if len(lines) != entry.lines:
            raise CorruptData(f"{entry.key}: {len(lines)} lines, the manifest says {entry.lines}")
        for line in lines:
            yield json.loads(line)

    def _read_all(
        self, manifest: Manifest, entries: Iterable[ObjectEntry]
    ) -> Iterator[dict[str, Any]]:
        key = None
        if manifest.encryption is not None:
            key = DataKey.recover(manifest.encryption, self.encryption, manifest.backup_id)
        for entry in entries:
            yield from self._read_lines(entry, key)

    def manifest(self, backup_id: str) -> Manifest:
        validate.key("backup_id", backup_id)
        key = f"{self.prefix}{backup_id}/{MANIFEST}"
        try:
            raw = self.bucket.get(key)
        except NotFound as exc:
            raise NotFound(f"backup {backup_id}: no manifest (missing or incomplete)") from exc
        manifest = Manifest.from_json(raw, key)
        if manifest.backup_id != backup_id:
            raise CorruptData(f"{key}: names backup {manifest.backup_id!r}")
        return manifest

    def inventory(self) -> Inventory:
        """Every backup folder under the prefix, from one listing. A manifest that cannot be
        read is reported (and logged) as ``Damaged`` and never hides the other backups."""
        folders: dict[str, builtins.list[float]] = {}
        complete: builtins.list[str] = []
        for info in self.bucket.list(self.prefix):
            backup_id, slash, name = info.key[len(self.prefix) :].partition("/")
            if not slash:
                continue  # the restore test record and other files beside the backups
            if name == MANIFEST:
                complete.append(backup_id)
            folders.setdefault(backup_id, []).append(info.updated_at)
        found, damaged = [], []
        for backup_id in complete:
            try:
                found.append(self.manifest(backup_id))
            except (CorruptData, InvalidInput, NotFound) as exc:
                _log.warning("backup %s is damaged and skipped: %s", backup_id, exc)
                damaged.append(Damaged(backup_id, str(exc)))
        incomplete = [
            Incomplete(backup_id, len(times), max(times))
            for backup_id, times in sorted(folders.items())
            if backup_id not in complete
        ]
        return Inventory(
            tuple(sorted(found, key=lambda m: (m.created_at, m.backup_id))),
            tuple(damaged),
            tuple(incomplete),
        )

    def list(self) -> builtins.list[Manifest]:
        """Complete, readable backups, oldest first (damaged ones are logged and skipped)."""
        return builtins.list(self.inventory().backups)

    def latest(self) -> Manifest:
        """The newest readable backup. Raises ``NotFound`` when there is none."""
        backups = self.list()
        if not backups:
            raise NotFound(f"no complete backup under {self.prefix!r}")
        return backups[-1]

    def chain(self, backup_id: str) -> builtins.list[Manifest]:
        """The full backup and the incrementals leading to ``backup_id``, oldest first."""
        chain = [self.manifest(backup_id)]
        while chain[-1].base is not None:
            base_id = chain[-1].base
            try:
                chain.append(self.manifest(base_id))
            except NotFound as exc:
                raise CorruptData(f"backup {backup_id}: its base {base_id} is missing") from exc
        return builtins.list(reversed(chain))

    def check(self, backup_id: str) -> int:
        """Read every object of the chain and check it against its manifest; returns the item
        count. Raises CorruptData on any damage."""
        chain = self.chain(backup_id)
        for manifest in chain:
            lines = sum(1 for _ in self._read_all(manifest, manifest.chunks))
            if lines != manifest.changed + manifest.deleted:
                raise CorruptData(f"backup {manifest.backup_id}: chunks hold {lines} lines")
            if sum(1 for _ in self._index_of(manifest)) != manifest.item_count:
                raise CorruptData(f"backup {manifest.backup_id}: index count differs")
        return chain[-1].item_count

    def restore(
        self,
        backup_id: str,
        store: ReplicatedStore,
        *,
        fence: FencingToken | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Write the backup's items into ``store`` (any provider, any region); returns how many
        items the backup holds. The whole chain is checked first: a damaged backup writes
        nothing."""
        validate.instance("store", store, ReplicatedStore)
        validate.progress(progress)
        count = self.check(backup_id)
        for manifest in self.chain(backup_id):
            batch: builtins.list[tuple[str, dict[str, Any]]] = []
            for record in self._read_all(manifest, manifest.chunks):
                if record.get("deleted"):
                    self._flush(store, batch, fence)
                    batch = []
                    with contextlib.suppress(NotFound):
                        store.delete(record["k"], fence=fence)
                    continue
                batch.append((record["k"], record["v"]))
                if len(batch) >= store.capabilities.max_batch:
                    self._flush(store, batch, fence)
                    if progress is not None:
                        progress(len(batch))
                    batch = []
            self._flush(store, batch, fence)
            if progress is not None and batch:
                progress(len(batch))
        return count

    @staticmethod
    def _flush(
        store: ReplicatedStore,
        batch: builtins.list[tuple[str, dict[str, Any]]],
        fence: FencingToken | None,
    ) -> None:
        if batch:
            store.put_many(batch, fence=fence)

    def verify(self, backup_id: str, scratch: ReplicatedStore) -> int:
        """Restore into an empty ``scratch`` store and compare it, item by item, with the
        backup's index; returns the item count. Raises CorruptData on any difference."""
        validate.instance("scratch", scratch, ReplicatedStore)
        if next(scratch.scan(""), None) is not None:
            raise InvalidInput("scratch", "must be an empty store")
        self.restore(backup_id, scratch)
        manifest = self.manifest(backup_id)
        expected = self._index_of(manifest)
        count = 0
        for item in scratch.scan(""):
            want = next(expected, None)
            if want is None or want["k"] != item.key or want["h"] != _value_hash(item.value):
                raise CorruptData(f"backup {backup_id}: restored item {item.key!r} differs")
            count += 1
        if next(expected, None) is not None:
            raise CorruptData(f"backup {backup_id}: restored store lacks items")
        if manifest.digest is not None and content_digest(scratch) != manifest.digest:
            raise CorruptData(f"backup {backup_id}: restored content digest differs")
        return count

    # ------------------------------------------------------------------ restore tests

    def test_restore(
        self,
        scratch: ReplicatedStore,
        *,
        backup_id: str | None = None,
        sentinel: str | None = None,
        max_age_s: float = RESTORE_TEST_MAX_AGE_S,
    ) -> RestoreTest:
        """Restore the latest backup (or ``backup_id``) into the empty ``scratch`` store, check
        every item against the index, the content digest and a sentinel item (``sentinel``, or
        the one the manifest names), then record the result under the prefix as the last
        verified restore. Raises (and records nothing) on any difference."""
        validate.instance("scratch", scratch, ReplicatedStore)
        max_age_s = validate.seconds("max_age_s", max_age_s, 0, 10 * 365 * 86400)
        manifest = self.latest() if backup_id is None else self.manifest(backup_id)
        started = time.perf_counter()
        count = self.verify(manifest.backup_id, scratch)
        wanted = sentinel if sentinel is not None else (manifest.sentinel or {}).get("k")
        if wanted is not None:
            try:
                item = scratch.get(validate.key("sentinel", wanted))
            except NotFound as exc:
                raise CorruptData(
                    f"backup {manifest.backup_id}: sentinel {wanted!r} is not restored"
                ) from exc
            stated = manifest.sentinel or {}
            if stated.get("k") == wanted and stated.get("h") != _value_hash(item.value):
                raise CorruptData(f"backup {manifest.backup_id}: sentinel {wanted!r} differs")
        record = RestoreTest(
            manifest.backup_id, time.time(), count, time.perf_counter() - started, max_age_s
        )
        body = json.dumps(attrs.asdict(record), sort_keys=True).encode()
        self.bucket.put(f"{self.prefix}{VERIFIED}", body)
        return record

    def last_verified(self) -> RestoreTest | None:
        """The record of the last successful restore test; None if none was ever recorded."""
        key = f"{self.prefix}{VERIFIED}"
        try:
            raw = self.bucket.get(key)
        except NotFound:
            return None
        try:
            return RestoreTest(**json.loads(raw))
        except (ValueError, TypeError) as exc:
            raise CorruptData(f"{key}: not a restore test record ({exc})") from exc

    # ------------------------------------------------------------------ retention

    def prune(
        self,
        *,
        keep_last: int | None = None,
        older_than_s: float | None = None,
        orphan_grace_s: float = ORPHAN_GRACE_S,
    ) -> builtins.list[str]:
        """Delete backups beyond the newest ``keep_last`` and/or older than ``older_than_s``,
        never one that a kept incremental still needs, and incomplete folders (a backup killed
        midway) whose newest object is older than ``orphan_grace_s``. Damaged backups are
        logged and left alone. Returns the deleted ids."""
        if keep_last is None and older_than_s is None:
            raise InvalidInput("keep_last", "give keep_last, older_than_s, or both")
        if keep_last is not None:
            validate.int_range("keep_last", keep_last, 1, 1_000_000)
        if older_than_s is not None:
            validate.seconds("older_than_s", older_than_s, 0, 10 * 365 * 86400)
        validate.finite_non_negative("orphan_grace_s", orphan_grace_s)
        found = self.inventory()
        backups = {m.backup_id: m for m in found.backups}
        now = time.time()
        doomed = set()
        for position, manifest in enumerate(reversed(found.backups)):
            too_many = keep_last is not None and position >= keep_last
            too_old = older_than_s is not None and now - manifest.created_at > older_than_s
            if too_many or too_old:
                doomed.add(manifest.backup_id)
        for manifest in found.backups:
            if manifest.backup_id in doomed:
                continue
            needed: Manifest | None = manifest
            while needed is not None and needed.base is not None:
                doomed.discard(needed.base)
                needed = backups.get(needed.base)
        for backup_id in sorted(doomed):
            # the manifest first: from then on the backup is no longer complete
            self.bucket.delete(f"{self.prefix}{backup_id}/{MANIFEST}")
            self._delete_folder(backup_id)
        orphans = [i.backup_id for i in found.incomplete if now - i.newest > orphan_grace_s]
        for backup_id in orphans:
            _log.warning("removing incomplete backup %s (no manifest)", backup_id)
            self._delete_folder(backup_id)
        return sorted(doomed | set(orphans))

    def _delete_folder(self, backup_id: str) -> None:
        for info in self.bucket.list(f"{self.prefix}{backup_id}/"):
            with contextlib.suppress(NotFound):
                self.bucket.delete(info.key)


SCRATCH_REGION = "scratch"


@contextlib.contextmanager
def scratch_store() -> Iterator[ReplicatedStore]:
    """An empty one-region local store in a temporary directory, removed afterwards: where
    restore tests restore. Built through the registry (core imports no provider)."""
    from multiregion import registry

    with (
        tempfile.TemporaryDirectory(prefix="multiregion-restore-test-") as folder,
        contextlib.closing(
            registry.store("local", path=folder, regions=[SCRATCH_REGION], replicate=False)
        ) as scratch,
    ):
        yield scratch


def restore_test_action(
    backups: Backups,
    *,
    sentinel: str | None = None,
    max_age_s: float = RESTORE_TEST_MAX_AGE_S,
) -> Callable[[object], str]:
    """A restore test as an action: for a ``serverless.Rule`` fired by a schedule (an
    EventBridge rule, a timer trigger, Cloud Scheduler) or any scheduler. Each call restores
    the latest backup into a fresh scratch store, checks it and records it as verified."""
    if sentinel is not None:
        validate.key("sentinel", sentinel)
    max_age_s = validate.seconds("max_age_s", max_age_s, 0, 10 * 365 * 86400)

    def restore_test(_event: object = None) -> str:
        with scratch_store() as scratch:
            record = backups.test_restore(scratch, sentinel=sentinel, max_age_s=max_age_s)
        return f"restore test of {record.backup_id}: {record.item_count} items verified"

    return restore_test


def _json_string(text: str) -> bytes:
    """``text`` as ``json.dumps`` writes it (ASCII, escaped), without building an encoder."""
    return encode_basestring_ascii(text).encode()


def _json_number(value: float) -> bytes:
    """A finite float as ``json.dumps`` writes it (its ``repr``); other numbers through json."""
    if type(value) is float and math.isfinite(value):
        return float.__repr__(value).encode()
    return _JSON.encode(value).encode()


def _tombstone(key_json: bytes) -> bytes:
    return b'{"deleted":true,"k":' + key_json + b"}\n"


def content_digest(store: ReplicatedStore, *, region: str | None = None) -> str:
    """One SHA-256 over every key and value, to compare two stores' contents cheaply."""
    digest = hashlib.sha256()
    for item in store.scan("", region=region):
        digest.update(_digest_line(item.key, _value_hash(item.value)))
    return digest.hexdigest()
