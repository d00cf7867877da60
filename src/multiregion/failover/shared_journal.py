"""Runbook journals kept in the deployment's replicated store or backup bucket.

A local file dies with the container or the region that wrote it; a journal in the store or the
bucket is read and carried on by a process anywhere else. Each record is its own item (object)
under the journal's key, numbered, and written create-only: the write of record *n* claims it,
so two processes can never both write record *n*. A process whose claim is refused reads what
the other wrote: side records (a note, a role handed over from another terminal) are taken in
and the write is tried again; any other record means another process drives the run now (it
resumed it from another region), and this one stops with ``JournalConflict`` before acting
again. There is no lock to wait for when the first process died: the next one simply resumes.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

import attrs

from multiregion import validate
from multiregion.errors import AlreadyExists, CorruptData, InvalidInput, NotFound, Unavailable
from multiregion.failover.journal import (
    DRY_RUN_SUFFIX,
    SIDE_KINDS,
    JournalConflict,
    OpenJournal,
    Record,
)
from multiregion.interfaces import BackupBucket, ReplicatedStore

_SEQ_DIGITS = 8


class _Slots(Protocol):
    """Numbered records under one key prefix, each written at most once."""

    name: str

    def claim(self, record: Record) -> bool:
        """Write ``record`` at its number; False when that number is taken."""
        ...

    def load(self) -> list[Record]: ...

    def clear(self) -> None: ...


def _contiguous(records: Iterable[Record]) -> list[Record]:
    """Records 1..n in order; one missing (not replicated yet) ends the list there."""
    found: list[Record] = []
    for record in records:
        if record.seq != len(found) + 1:
            break
        found.append(record)
    return found


class ClaimedJournal(OpenJournal):
    """An open shared journal: each record claims its number (see the module)."""

    def __init__(self, slots: _Slots, *, fresh: bool = False) -> None:
        self._slots = slots
        self.name = slots.name
        self._lock = threading.Lock()
        if fresh:
            slots.clear()
        self._records = [] if fresh else slots.load()

    def _write(self, record: Record) -> bool:
        """Claim the record's number; when taken, catch up on the side records others wrote
        meanwhile, or stop (``JournalConflict``) when another process drives the run."""
        if self._slots.claim(record):
            return True
        theirs = self._slots.load()[len(self._records) :]
        driving = [r for r in theirs if r.kind not in SIDE_KINDS]
        if not theirs or driving:
            taken = driving[0] if driving else None
            what = f"{taken.kind} by {taken.data.get('by', '?')}" if taken else "unread"
            raise JournalConflict(
                f"journal {self.name}: record {record.seq} was claimed by another "
                f"process ({what}); it drives the run now, this one stops"
            )
        self._records.extend(theirs)
        return False

    def close(self) -> None:
        """Nothing to release: no lock is held between records."""


def _record_fields(value: Mapping[str, Any], where: str) -> Record:
    try:
        return Record(**value)
    except TypeError as exc:
        raise CorruptData(f"{where}: not a journal record ({exc})") from exc


class _StoreSlots:
    def __init__(self, store: ReplicatedStore, key: str, region: str | None) -> None:
        self.store, self.prefix, self.region = store, f"{key}/", region
        self.name = f"store:{key}"

    def claim(self, record: Record) -> bool:
        value = {"record": attrs.asdict(record)}
        try:
            with self._reachable():
                self.store.put(self._key(record.seq), value, create_only=True, region=self.region)
        except AlreadyExists:
            return False
        return True

    def load(self) -> list[Record]:
        with self._reachable():
            records = (
                _record_fields(item.value.get("record", {}), f"{self.name}: {item.key}")
                for item in self.store.scan(self.prefix)
            )
            return _contiguous(records)

    def clear(self) -> None:
        with self._reachable():
            for item in list(self.store.scan(self.prefix)):
                try:
                    self.store.delete(item.key, region=self.region)
                except NotFound:
                    continue

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        """Say what to do when the journal's region is the one being recovered from."""
        try:
            yield
        except Unavailable as exc:
            where = self.region or f"the write region {self.store.write_region}"
            raise Unavailable(
                f"journal {self.name}: {where} cannot be reached ({exc}); a runbook that "
                "recovers from the loss of that region keeps its journal in the bucket "
                '(journal_in = "bucket") or in a multi-writer store\'s surviving region'
            ) from exc

    def _key(self, seq: int) -> str:
        return f"{self.prefix}{seq:0{_SEQ_DIGITS}d}"


class _BucketSlots:
    def __init__(self, bucket: BackupBucket, prefix: str) -> None:
        self.bucket, self.prefix = bucket, f"{prefix}/"
        self.name = f"bucket:{prefix}"

    def claim(self, record: Record) -> bool:
        key = f"{self.prefix}{record.seq:0{_SEQ_DIGITS}d}.json"
        try:
            self.bucket.put(key, record.to_line(), create_only=True)
        except AlreadyExists:
            return False
        return True

    def load(self) -> list[Record]:
        records = (
            Record.from_line(self.bucket.get(info.key), f"{self.name}: {info.key}")
            for info in self.bucket.list(self.prefix)
        )
        return _contiguous(records)

    def clear(self) -> None:
        for info in list(self.bucket.list(self.prefix)):
            try:
                self.bucket.delete(info.key)
            except NotFound:
                continue


class _SharedJournal:
    """What a store journal and a bucket journal share: they differ only in their slots."""

    _slots: _Slots

    @property
    def name(self) -> str:
        return self._slots.name

    def open(self, *, fresh: bool = False) -> ClaimedJournal:
        return ClaimedJournal(self._slots, fresh=fresh)

    def read(self) -> list[Record]:
        return self._slots.load()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _prefix(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, not {type(value).__name__}")
    return validate.key(field, value.rstrip("/"))


class StoreJournal(_SharedJournal):
    """A journal kept under ``key`` in a replicated store (one item per record).

    ``region`` is the region to write in, for a multi-writer store that should take the journal
    in the region running the recovery; a single-writer store writes in its write region.
    """

    def __init__(self, store: ReplicatedStore, key: str, *, region: str | None = None) -> None:
        if not isinstance(store, ReplicatedStore):
            raise InvalidInput("store", "must be a ReplicatedStore")
        self.store, self.key, self.region = store, _prefix("journal key", key), region
        self._slots = _StoreSlots(store, self.key, region)

    def dry_run(self) -> StoreJournal:
        return StoreJournal(self.store, self.key + DRY_RUN_SUFFIX, region=self.region)


class BucketJournal(_SharedJournal):
    """A journal kept under ``prefix`` in a backup bucket (one object per record)."""

    def __init__(self, bucket: BackupBucket, prefix: str) -> None:
        if not isinstance(bucket, BackupBucket):
            raise InvalidInput("bucket", "must be a BackupBucket")
        self.bucket, self.prefix = bucket, _prefix("journal prefix", prefix)
        self._slots = _BucketSlots(bucket, self.prefix)

    def dry_run(self) -> BucketJournal:
        return BucketJournal(self.bucket, self.prefix + DRY_RUN_SUFFIX)
