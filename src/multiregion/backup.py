"""Snapshots of a ReplicatedStore in a BackupBucket, and verified restores.

Layout of one backup under ``<prefix><backup_id>/``::

    chunk-000001.jsonl.gz   items (and, in incrementals, tombstones) as JSON lines, key order
    index-000001.jsonl.gz   every key present at backup time with the SHA-256 of its value
    manifest.json           written last: counts, per-object SHA-256, the base of an incremental

A backup without its manifest is incomplete and refused. Everything streams: the store is
scanned in key order, chunks are cut at ``chunk_items``, and an incremental backup finds what
changed by merging the store's scan with the base's index, so memory stays flat however large
the store is. A restore first reads and checks every object of the chain (base first), then
writes: a flipped byte or a missing chunk is found before anything is written.
"""

from __future__ import annotations

import builtins
import contextlib
import gzip
import hashlib
import io
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

import attrs

from multiregion import validate
from multiregion.errors import CorruptData, InvalidInput, NotFound
from multiregion.integrity import sha256_hex
from multiregion.interfaces import BackupBucket, ReplicatedStore
from multiregion.model import FencingToken

FORMAT_VERSION = 1
DEFAULT_PREFIX = "backups/"
Progress = Callable[[int], None]


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

    def to_json(self) -> bytes:
        data = attrs.asdict(self)
        return json.dumps(data, sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes, where: str) -> Manifest:
        try:
            data = json.loads(raw)
            if data.get("format_version") != FORMAT_VERSION:
                raise CorruptData(f"{where}: format version {data.get('format_version')!r}")
            data["chunks"] = tuple(ObjectEntry(**c) for c in data["chunks"])
            data["index"] = tuple(ObjectEntry(**c) for c in data["index"])
            return cls(**data)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CorruptData(f"{where}: manifest is not readable ({exc})") from exc


def _value_hash(value: dict[str, Any]) -> str:
    return sha256_hex(json.dumps(value, sort_keys=True, separators=(",", ":")).encode())


class _ObjectWriter:
    """Cuts a stream of JSON lines into gzip objects of at most ``limit`` lines each."""

    def __init__(self, bucket: BackupBucket, prefix: str, stem: str, limit: int) -> None:
        self.bucket, self.prefix, self.stem, self.limit = bucket, prefix, stem, limit
        self.entries: list[ObjectEntry] = []
        self._buffer = io.BytesIO()
        self._gzip: gzip.GzipFile | None = None
        self._lines = 0

    def write(self, record: dict[str, Any]) -> None:
        if self._gzip is None:
            self._buffer = io.BytesIO()
            self._gzip = gzip.GzipFile(fileobj=self._buffer, mode="wb", mtime=0)
        self._gzip.write(json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n")
        self._lines += 1
        if self._lines >= self.limit:
            self.flush()

    def flush(self) -> None:
        if self._gzip is None:
            return
        self._gzip.close()
        data = self._buffer.getvalue()
        key = f"{self.prefix}{self.stem}-{len(self.entries) + 1:06d}.jsonl.gz"
        self.bucket.put(key, data, create_only=True)
        self.entries.append(ObjectEntry(key, sha256_hex(data), self._lines))
        self._gzip, self._lines = None, 0


def _read_lines(bucket: BackupBucket, entry: ObjectEntry) -> Iterator[dict[str, Any]]:
    """The JSON lines of one backup object, after checking it against the manifest."""
    try:
        data = bucket.get(entry.key)
    except NotFound as exc:
        raise CorruptData(f"{entry.key}: missing from the backup") from exc
    if sha256_hex(data) != entry.sha256:
        raise CorruptData(f"{entry.key}: SHA-256 differs from the manifest")
    try:
        lines = gzip.decompress(data).splitlines()
    except (OSError, EOFError) as exc:
        raise CorruptData(f"{entry.key}: not a gzip stream ({exc})") from exc
    if len(lines) != entry.lines:
        raise CorruptData(f"{entry.key}: {len(lines)} lines, the manifest says {entry.lines}")
    for line in lines:
        yield json.loads(line)


def _read_all(bucket: BackupBucket, entries: Iterable[ObjectEntry]) -> Iterator[dict[str, Any]]:
    for entry in entries:
        yield from _read_lines(bucket, entry)


@attrs.define
class Backups:
    """Backups of stores kept in one bucket under ``prefix``."""

    bucket: BackupBucket
    prefix: str = DEFAULT_PREFIX
    chunk_items: int = 1000

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.prefix, str) or (self.prefix and not self.prefix.endswith("/")):
            raise InvalidInput("prefix", "must be empty or end with '/'")
        validate.int_range("chunk_items", self.chunk_items, 1, 1_000_000)

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
        base = self.manifest(incremental_from) if incremental_from is not None else None
        read_region = region or store.write_region
        if read_region not in store.regions:
            raise InvalidInput(
                "region", f"{read_region!r} is not one of {', '.join(store.regions)}"
            )
        backup_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
        prefix = f"{self.prefix}{backup_id}/"
        chunks = _ObjectWriter(self.bucket, prefix, "chunk", self.chunk_items)
        index = _ObjectWriter(self.bucket, prefix, "index", self.chunk_items * 4)
        previous = self._index_of(base) if base is not None else iter(())
        pending = next(previous, None)
        count = changed = deleted = 0
        for item in store.scan("", region=read_region):
            digest = _value_hash(item.value)
            while pending is not None and pending["k"] < item.key:
                chunks.write({"k": pending["k"], "deleted": True})
                deleted += 1
                pending = next(previous, None)
            unchanged = pending is not None and pending["k"] == item.key and pending["h"] == digest
            if pending is not None and pending["k"] == item.key:
                pending = next(previous, None)
            if not unchanged:
                chunks.write({"k": item.key, "v": item.value, "t": item.updated_at})
                changed += 1
            index.write({"k": item.key, "h": digest})
            count += 1
            if progress is not None:
                progress(1)
        while pending is not None:
            chunks.write({"k": pending["k"], "deleted": True})
            deleted += 1
            pending = next(previous, None)
        chunks.flush()
        index.flush()
        manifest = Manifest(
            backup_id=backup_id,
            kind="full" if base is None else "incremental",
            created_at=time.time(),
            source={"store": type(store).__name__, "region": read_region, **(source or {})},
            item_count=count,
            changed=changed,
            deleted=deleted,
            chunks=tuple(chunks.entries),
            index=tuple(index.entries),
            base=base.backup_id if base is not None else None,
        )
        self.bucket.put(f"{prefix}manifest.json", manifest.to_json(), create_only=True)
        return manifest

    def _index_of(self, manifest: Manifest) -> Iterator[dict[str, Any]]:
        return _read_all(self.bucket, manifest.index)

    # ------------------------------------------------------------------ reading

    def manifest(self, backup_id: str) -> Manifest:
        validate.key("backup_id", backup_id)
        key = f"{self.prefix}{backup_id}/manifest.json"
        try:
            raw = self.bucket.get(key)
        except NotFound as exc:
            raise NotFound(f"backup {backup_id}: no manifest (missing or incomplete)") from exc
        manifest = Manifest.from_json(raw, key)
        if manifest.backup_id != backup_id:
            raise CorruptData(f"{key}: names backup {manifest.backup_id!r}")
        return manifest

    def list(self) -> list[Manifest]:
        """Complete backups, oldest first."""
        found = []
        for info in self.bucket.list(self.prefix):
            rest = info.key[len(self.prefix) :]
            backup_id, _, name = rest.partition("/")
            if name == "manifest.json":
                found.append(self.manifest(backup_id))
        return sorted(found, key=lambda m: (m.created_at, m.backup_id))

    def chain(self, backup_id: str) -> builtins.list[Manifest]:
        """The full backup and the incrementals leading to ``backup_id``, oldest first."""
        chain = [self.manifest(backup_id)]
        while chain[-1].base is not None:
            base_id = chain[-1].base
            try:
                chain.append(self.manifest(base_id))
            except NotFound as exc:
                raise CorruptData(f"backup {backup_id}: its base {base_id} is missing") from exc
        return list(reversed(chain))

    def check(self, backup_id: str) -> int:
        """Read every object of the chain and check it against its manifest; returns the item
        count. Raises CorruptData on any damage."""
        chain = self.chain(backup_id)
        for manifest in chain:
            lines = sum(1 for _ in _read_all(self.bucket, manifest.chunks))
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
        count = self.check(backup_id)
        for manifest in self.chain(backup_id):
            batch: builtins.list[tuple[str, dict[str, Any]]] = []
            for record in _read_all(self.bucket, manifest.chunks):
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
        if next(scratch.scan(""), None) is not None:
            raise InvalidInput("scratch", "must be an empty store")
        self.restore(backup_id, scratch)
        expected = self._index_of(self.manifest(backup_id))
        count = 0
        for item in scratch.scan(""):
            want = next(expected, None)
            if want is None or want["k"] != item.key or want["h"] != _value_hash(item.value):
                raise CorruptData(f"backup {backup_id}: restored item {item.key!r} differs")
            count += 1
        if next(expected, None) is not None:
            raise CorruptData(f"backup {backup_id}: restored store lacks items")
        return count

    # ------------------------------------------------------------------ retention

    def prune(
        self, *, keep_last: int | None = None, older_than_s: float | None = None
    ) -> builtins.list[str]:
        """Delete backups beyond the newest ``keep_last`` and/or older than ``older_than_s``,
        never one that a kept incremental still needs. Returns the deleted ids."""
        if keep_last is None and older_than_s is None:
            raise InvalidInput("keep_last", "give keep_last, older_than_s, or both")
        if keep_last is not None:
            validate.int_range("keep_last", keep_last, 1, 1_000_000)
        if older_than_s is not None:
            validate.seconds("older_than_s", older_than_s, 0, 10 * 365 * 86400)
        backups = self.list()
        now = time.time()
        doomed = set()
        for position, manifest in enumerate(reversed(backups)):
            too_many = keep_last is not None and position >= keep_last
            too_old = older_than_s is not None and now - manifest.created_at > older_than_s
            if too_many or too_old:
                doomed.add(manifest.backup_id)
        for manifest in backups:
            if manifest.backup_id not in doomed:
                for needed in self.chain(manifest.backup_id):
                    doomed.discard(needed.backup_id)
        for backup_id in sorted(doomed):
            manifest_key = f"{self.prefix}{backup_id}/manifest.json"
            self.bucket.delete(manifest_key)  # first: the backup is no longer complete
            for info in self.bucket.list(f"{self.prefix}{backup_id}/"):
                self.bucket.delete(info.key)
        return sorted(doomed)


def content_digest(store: ReplicatedStore, *, region: str | None = None) -> str:
    """One SHA-256 over every key and value, to compare two stores' contents cheaply."""
    digest = hashlib.sha256()
    for item in store.scan("", region=region):
        digest.update(item.key.encode() + b"\0" + _value_hash(item.value).encode() + b"\n")
    return digest.hexdigest()
