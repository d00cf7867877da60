"""ReplicatedStore on Firestore.

A multi-region Firestore database (``nam5``, ``eur3``, ...) is one logical store: every write
is committed synchronously in its read-write regions before it is acknowledged and every read is
strongly consistent. So ``regions`` are the location's read-write regions, a ``region=`` on a
read is accepted and reads the same data (Firestore picks the replica), ``replication_lag`` is
0.0 by Firestore's guarantee (not a measurement), and ``write_region`` exists only for the
library's fencing: it is kept with the fencing epoch in one meta document, and every write runs
in a transaction that reads it, so a writer holding an old token is refused even while racing
``promote``. With ``lease_s`` the meta document is read once per lease instead, each write is
one plain Commit (with its own precondition) and a batch one batched write; ``promote`` then
waits ``lease_s + clock_drift_s`` (``promote_delay_s``) before the new write region takes
writes, by which time every older lease has run out.

Each key is one document: the id is ``k`` + base64url of the key (ids cannot hold ``/`` and are
limited to 1500 bytes), the key itself is in the ``key`` field (scans are range queries on it)
and the value is compact JSON text in ``json``, so any JSON document round-trips exactly
(Firestore maps refuse arrays inside arrays and integers beyond 64 bits). The version is the
document's update time, used as an ``update_time`` precondition for compare-and-swap.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from google.api_core.retry import Retry
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.batch import WriteBatch
from google.cloud.firestore_v1.transaction import Transaction
from google.protobuf.timestamp_pb2 import Timestamp

from multiregion import validate
from multiregion.errors import (
    AlreadyExists,
    InvalidInput,
    MultiregionError,
    NotFound,
    PreconditionFailed,
    Throttled,
)
from multiregion.interfaces import ReplicatedStore, StoreCapabilities
from multiregion.model import FencingToken, Item, LastWriterWins
from multiregion.providers.gcp import connection
from multiregion.providers.gcp.errors import translated

MAX_BATCH = 500
"""Writes in one Firestore commit."""
MAX_ITEM_BYTES = 1_000_000
"""Compact JSON of a value; a document holds at most 1 MiB with its key and name."""
META_ID = "fence"
"""The meta document's id; item ids all start with ``k``, so it never collides."""
EMULATOR_ENV = "FIRESTORE_EMULATOR_HOST"

LOCATIONS: dict[str, tuple[str, ...]] = {
    "nam5": ("us-central1", "us-central2"),
    "nam7": ("us-central1", "us-east4"),
    "eur3": ("europe-west1", "europe-west4"),
}
"""Read-write regions of Firestore's multi-region locations (the witness region holds no
readable replica). A regional location is its own single region."""

_COLLECTION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


def _collection(value: object) -> str:
    if not isinstance(value, str) or not _COLLECTION.match(value) or value.startswith("__"):
        raise InvalidInput("collection", f"{value!r} is not a collection id (letters, digits _.-)")
    return value


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def doc_id(key: str) -> str:
    return "k" + base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _upper_bound(prefix: str) -> str | None:
    """The smallest string above every string starting with ``prefix`` (None: no bound)."""
    while prefix:
        last = ord(prefix[-1]) + 1
        if last == 0xD800:
            last = 0xE000  # surrogates cannot be stored
        if last <= 0x10FFFF:
            return prefix[:-1] + chr(last)
        prefix = prefix[:-1]
    return None


def _timestamp(version: str) -> Timestamp:
    stamp = Timestamp()
    try:
        stamp.FromJsonString(version)
    except ValueError:
        raise PreconditionFailed("if_version is not a version of this store") from None
    return stamp


class FirestoreStore(ReplicatedStore):
    """A ReplicatedStore on one Firestore collection.

    ``location`` names the database's location (``nam5``, ``eur3``, or a region) and gives
    ``regions``; ``regions=`` overrides it for locations not in ``LOCATIONS``. ``write_region``
    is the write region until the first ``promote``. ``emulator_host`` (or the
    ``FIRESTORE_EMULATOR_HOST`` variable) points at a loopback emulator with anonymous
    credentials; otherwise Application Default Credentials are used. ``lease_s`` turns on
    write leases (see the module's docstring); every handle on the collection must use the same.
    """

    conflict_policy = LastWriterWins()

    def __init__(
        self,
        *,
        project: str,
        collection: str,
        location: str = "nam5",
        regions: Iterable[str] | None = None,
        write_region: str | None = None,
        database: str = "(default)",
        emulator_host: str | None = None,
        credentials: Any = None,
        page_size: int = 500,
        timeout_s: float = 30.0,
        retry_timeout_s: float = 60.0,
        lease_s: float | None = None,
        clock_drift_s: float = 0.25,
    ) -> None:
        self.project = connection.project_id(project)
        self.collection = _collection(collection)
        self._regions = self._region_list(location, regions)
        self._initial = (
            self._regions[0] if write_region is None else self._region(write_region, "write_region")
        )
        if database != "(default)" and not re.fullmatch(r"[a-z][a-z0-9-]{2,62}", str(database)):
            raise InvalidInput("database", f"{database!r} is not a Firestore database id")
        self.page_size = validate.int_range("page_size", page_size, 1, 10_000)
        self.timeout_s = validate.seconds("timeout_s", timeout_s, 0, 3600)
        retry_s = validate.finite_non_negative("retry_timeout_s", retry_timeout_s)
        self._retry: Retry | None = Retry(timeout=retry_s) if retry_s else None
        self._lease_s = None if lease_s is None else validate.seconds("lease_s", lease_s, 0, 60)
        drift = validate.finite_non_negative("clock_drift_s", clock_drift_s)
        self.promote_delay_s = 0.0 if self._lease_s is None else self._lease_s + drift
        self._lease: tuple[FencingToken, float] | None = None
        """The token this handle last confirmed, and when (monotonic) that runs out."""
        host = emulator_host or os.environ.get(EMULATOR_ENV)
        if host is not None:
            host = connection.emulator_host("emulator_host", host)
        self.capabilities = StoreCapabilities(
            multi_writer=False,
            pinned_reads=False,
            replication_lag=True,
            strong=True,
            max_item_bytes=MAX_ITEM_BYTES,
            max_batch=MAX_BATCH,
            # One logical database: the meta document is read in every write's transaction.
            partition_safe_fencing=True,
            switchover=True,
        )
        self._db = firestore.Client(
            project=self.project,
            credentials=connection.credentials(host is not None, credentials),
            database=database,
        )
        if host is not None:
            # The SDK reads the emulator's address from the environment only; setting it on
            # this client leaves the process environment alone.
            self._db._emulator_host = host
        self._items = self._db.collection(self.collection)
        self._meta = self._items.document(META_ID)

    def __repr__(self) -> str:
        return f"FirestoreStore(project={self.project!r}, collection={self.collection!r})"

    @staticmethod
    def _region_list(location: object, regions: Iterable[str] | None) -> tuple[str, ...]:
        if regions is not None:
            if isinstance(regions, str):
                raise InvalidInput("regions", "must be a list of region names")
            found = tuple(validate.region("regions", r) for r in regions)
            if not found or len(set(found)) != len(found):
                raise InvalidInput("regions", "must list distinct regions, at least one")
            return found
        name = validate.region("location", location)
        return LOCATIONS.get(name, (name,))

    def _region(self, value: object, field: str = "region") -> str:
        return validate.member(field, value, self._regions)

    # ------------------------------------------------------------------ regions and fencing

    @property
    def regions(self) -> tuple[str, ...]:
        return self._regions

    @property
    def write_region(self) -> str:
        """Read from the meta document, so every handle agrees after a ``promote``."""
        return self.fence().region

    def _token(self, snapshot: Any) -> FencingToken:
        return self._record(snapshot)[0]

    def _record(self, snapshot: Any) -> tuple[FencingToken, float]:
        """The meta document's token and when (epoch seconds) its region may write."""
        if not snapshot.exists:
            return FencingToken(0, self._initial), 0.0
        data = snapshot.to_dict()
        token = FencingToken(int(data["epoch"]), str(data["region"]))
        return token, float(data.get("writable_at", 0.0))

    def _fence(self) -> FencingToken:
        return self._read_meta()[0]

    def _read_meta(self) -> tuple[FencingToken, float]:
        with translated("documents.get"):
            snapshot = self._meta.get(retry=self._retry, timeout=self.timeout_s)
        token, writable_at = self._record(snapshot)
        lease = self._lease
        if lease is not None and token.epoch > lease[0].epoch:
            self._lease = None
        return token, writable_at

    def _confirmed(self, fence: FencingToken | None) -> FencingToken:
        """The token in force: the leased one while the lease lasts (and ``fence`` is no
        newer), otherwise read and leased again. A region promoted moments ago waits until
        older leases have run out."""
        lease = self._lease
        newer = fence is not None and lease is not None and fence.epoch > lease[0].epoch
        if lease is not None and not newer and time.monotonic() < lease[1]:
            return lease[0]
        started = time.monotonic()
        token, writable_at = self._read_meta()
        time.sleep(min(max(0.0, writable_at - time.time()), self.promote_delay_s))
        if self._lease_s is not None:
            self._lease = (token, started + self._lease_s)
        return token

    @staticmethod
    def _check(current: FencingToken, fence: FencingToken | None, region: str | None) -> None:
        """Refuse a stale ``fence`` or a ``region`` other than the write region."""
        if fence is not None and fence != current:
            raise PreconditionFailed(
                f"fencing token epoch {fence.epoch} ({fence.region}) is not the current "
                f"epoch {current.epoch} ({current.region})"
            )
        if region is not None and region != current.region:
            raise PreconditionFailed(
                f"{region} is not the write region ({current.region}); this store has one"
            )

    def _promote(self, region: str, *, force: bool) -> FencingToken:
        """One fencing record: there is no majority to force."""

        def run(txn: Transaction, current: FencingToken) -> FencingToken:
            token = FencingToken(current.epoch + 1, region)
            record: dict[str, Any] = {"epoch": token.epoch, "region": token.region}
            if self.promote_delay_s:
                record["writable_at"] = time.time() + self.promote_delay_s
            txn.set(self._meta, record)
            return token

        token: FencingToken = self._transaction(run, None, None)[0]
        self._lease = None
        # Every lease confirmed before the new record runs out before the new region writes.
        time.sleep(self.promote_delay_s)
        return token

    def _replication_lag(self, region: str) -> float:
        """0.0 for every region: Firestore acknowledges a write only once every read-write
        region has it. Not a measurement; nothing is asked of the service."""
        return 0.0

    def _write(
        self,
        writes: Callable[[WriteBatch, FencingToken], Any],
        fence: FencingToken | None,
        region: str | None,
    ) -> tuple[Any, list[Any]]:
        """``writes`` with the fencing check: in a transaction that reads the meta document,
        or, under a lease, in one batched write (a single Commit) after a check against the
        leased token."""
        if self._lease_s is None:
            return self._transaction(writes, fence, region)
        current = self._confirmed(fence)
        self._check(current, fence, region)
        batch = self._db.batch()
        result = writes(batch, current)
        with translated("commit"):
            results = batch.commit(timeout=self.timeout_s)
        return result, list(results)

    def _transaction(
        self,
        writes: Callable[[Transaction, FencingToken], Any],
        fence: FencingToken | None,
        region: str | None,
    ) -> tuple[Any, list[Any]]:
        """Runs ``writes`` in a transaction that first reads the meta document and refuses a
        stale ``fence`` or a ``region`` other than the write region; returns what ``writes``
        returned and the commit's write results."""
        transaction = self._db.transaction()

        @firestore.transactional
        def run(txn: Transaction) -> Any:
            snapshots = list(txn.get_all([self._meta], retry=self._retry, timeout=self.timeout_s))
            current = self._token(snapshots[0])
            self._check(current, fence, region)
            return writes(txn, current)

        try:
            with translated("commit"):
                result = run(transaction)
        except ValueError as exc:  # the SDK's "failed after N attempts" on contention
            if isinstance(exc, MultiregionError):
                raise
            raise Throttled("transaction kept aborting on contention") from exc
        return result, list(transaction.write_results or [])

    # ------------------------------------------------------------------ reads

    def _item(self, snapshot: Any) -> Item:
        updated = snapshot.update_time
        data = snapshot.to_dict()  # one copy; each snapshot.get() parses a path and copies
        return Item(
            key=str(data["key"]),
            value=json.loads(data["json"]),
            version=updated.rfc3339(),
            updated_at=updated.timestamp(),
            region=str(data["region"]),
        )

    def _get(self, key: str, *, region: str | None) -> Item:
        """Any ``region`` reads the same data: Firestore picks the replica."""
        with translated("documents.get"):
            snapshot = self._items.document(doc_id(key)).get(
                retry=self._retry, timeout=self.timeout_s
            )
        if not snapshot.exists:
            raise NotFound(f"{key} does not exist")
        return self._item(snapshot)

    def _scan(self, prefix: str, *, region: str | None) -> Iterator[Item]:
        """A range query on ``key`` (Firestore orders strings by UTF-8 bytes, which is code
        point order), fetched in pages of ``page_size`` that resume after the last key. Any
        ``region`` reads the same data."""
        return self._pages(prefix)

    def _pages(self, prefix: str) -> Iterator[Item]:
        query: Any = self._items
        if prefix:
            query = query.where(filter=FieldFilter("key", ">=", prefix))
            upper = _upper_bound(prefix)
            if upper is not None:
                query = query.where(filter=FieldFilter("key", "<", upper))
        query = query.order_by("key").limit(self.page_size)
        last: str | None = None
        while True:
            page = query if last is None else query.start_after({"key": last})
            with translated("runQuery"):
                snapshots = list(page.stream(retry=self._retry, timeout=self.timeout_s))
            for snapshot in snapshots:
                yield self._item(snapshot)
            if len(snapshots) < self.page_size:
                return
            last = str(snapshots[-1].to_dict()["key"])

    # ------------------------------------------------------------------ writes

    def _put(
        self,
        key: str,
        value: dict[str, Any],
        *,
        if_version: str | None,
        create_only: bool,
        fence: FencingToken | None,
        region: str | None,
    ) -> Item:
        text = _text(value)
        since = None if if_version is None else _timestamp(if_version)
        ref = self._items.document(doc_id(key))

        def write(txn: WriteBatch, current: FencingToken) -> str:
            data = {"key": key, "json": text, "region": current.region}
            if create_only:
                txn.create(ref, data)
            elif since is not None:
                txn.update(ref, data, option=self._db.write_option(last_update_time=since))
            else:
                txn.set(ref, data)
            return current.region

        try:
            written_in, results = self._write(write, fence, region)
        except AlreadyExists as exc:
            raise AlreadyExists(f"{key} already exists") from exc
        except NotFound as exc:
            raise PreconditionFailed(f"{key}: no item to match if_version") from exc
        updated = results[0].update_time
        return Item(key, value, updated.rfc3339(), updated.timestamp(), written_in)

    def _delete(
        self,
        key: str,
        *,
        if_version: str | None,
        fence: FencingToken | None,
        region: str | None,
    ) -> None:
        if if_version is None:
            option = self._db.write_option(exists=True)
        else:
            option = self._db.write_option(last_update_time=_timestamp(if_version))
        ref = self._items.document(doc_id(key))

        def write(txn: WriteBatch, _current: FencingToken) -> None:
            txn.delete(ref, option=option)

        try:
            self._write(write, fence, region)
        except NotFound as exc:
            if if_version is not None:
                raise PreconditionFailed(f"{key}: no item to match if_version") from exc
            raise NotFound(f"{key} does not exist") from exc

    def _put_many(
        self, items: list[tuple[str, dict[str, Any]]], *, fence: FencingToken | None
    ) -> None:
        """Each batch of up to 500 is one transaction with the fencing check (one batched
        write under a lease)."""
        checked = [(key, _text(document)) for key, document in items]
        for start in range(0, len(checked), MAX_BATCH):
            batch = checked[start : start + MAX_BATCH]

            def write(
                txn: WriteBatch, current: FencingToken, batch: list[tuple[str, str]] = batch
            ) -> None:
                for key, text in batch:
                    data = {"key": key, "json": text, "region": current.region}
                    txn.set(self._items.document(doc_id(key)), data)

            self._write(write, fence, None)

    def close(self) -> None:
        self._db.close()  # type: ignore[no-untyped-call]
