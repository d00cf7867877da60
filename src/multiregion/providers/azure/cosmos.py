"""The ReplicatedStore on Azure Cosmos DB (NoSQL API).

One container, partition key ``/pk``. A document's id and partition value are the SHA-256 of
its key (Cosmos ids are limited to 255 characters and may not hold ``/ \\ ? #``); the real key
is kept in the ``key`` field. Scans filter (``STARTSWITH``) and sort on ``hexkey``, the hex of
the key's UTF-8 bytes: Cosmos compares strings by UTF-16 code units, which puts characters
beyond the Basic Multilingual Plane before U+E000-U+FFFF, while hex digits sort in byte order,
and UTF-8 byte order is code point order. The document itself is kept as JSON text in ``json``,
since Cosmos' own JSON turns 2.0 into 2 and rounds integers beyond 2**53. Versions are Cosmos
``_etag`` values: compare-and-swap is ``replace`` with if-match, create-only is ``create``.

The write region and the fencing epoch live in one meta document of the same container.
Every write reads it first and then writes: a promotion that lands between the two (one round
trip) is not seen by that write. Cosmos offers no cross-partition transaction that could close
this window; a fenced writer is refused from its next write on. With ``lease_s`` the meta
document is read once per lease instead of before every write, so a write is one request;
``promote`` then waits ``lease_s + clock_drift_s`` (``promote_delay_s``) before it returns and
before any handle writes in the new region, by which time every older lease has run out.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import attrs
from azure.core import MatchConditions
from azure.cosmos import ContainerProxy, CosmosClient, PartitionKey

from multiregion import redact, replicas, validate
from multiregion.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Unavailable,
    Unsupported,
)
from multiregion.interfaces import ReplicatedStore, StoreCapabilities
from multiregion.model import ConflictPolicy, FencingToken, Item, LastWriterWins
from multiregion.providers.azure import loopback_tls
from multiregion.providers.azure.credentials import endpoint_url, is_loopback, token_credential
from multiregion.providers.azure.errors import translated

MAX_ITEM_BYTES = 2 * 1024 * 1024 - 64 * 1024
"""Cosmos takes 2 MiB per item, envelope and system properties included; 64 KiB are kept for
those (the key alone may take 6 KiB once JSON-escaped)."""
MAX_BATCH = 50
CONSISTENCY_LEVELS = frozenset(
    {"Strong", "BoundedStaleness", "Session", "ConsistentPrefix", "Eventual"}
)
META_ID = "multiregion-meta"
"""The meta document's id; item ids are 64 hex digits, so they never collide with it."""
HEARTBEAT_ID = "multiregion-heartbeat"
"""A document holding the time it was written (``t``), for ``replication_lag``."""
LWW_PATH = "/lww"
"""The container's last-writer-wins path: write time for items, epoch for the meta document."""
_T = TypeVar("_T")
_SCAN = "SELECT * FROM c WHERE STARTSWITH(c.hexkey, @prefix) ORDER BY c.hexkey"
_BAD_ID_CHARS = frozenset("/\\?#")


@attrs.frozen
class _Meta:
    epoch: int
    write_region: str
    etag: str
    writable_at: float = 0.0
    """When (epoch seconds) the write region may take writes, after a promote with leases."""


class CosmosStore(ReplicatedStore):
    """A store in one Cosmos DB container of an account replicated to ``regions``.

    ``regions`` are the library's region names; ``locations`` maps them to Azure location
    names (``{"westeurope": "West Europe"}``) for the SDK's preferred locations, and each
    region gets a client preferring it, so ``region=`` reads that replica.
    ``region_endpoints`` overrides the URL per region (emulators: one server per region).
    ``multi_writer=True`` needs an account with multiple write locations; concurrent writes are
    resolved by Cosmos last-writer-wins on ``/lww`` (the write time). ``lease_s`` turns on
    write leases (see the module's docstring); every handle on the container must use the same.
    """

    def __init__(
        self,
        endpoint: str,
        database: str,
        container: str,
        regions: Iterable[str],
        *,
        credential: Any = None,
        key: str | None = None,
        region_endpoints: Mapping[str, str] | None = None,
        locations: Mapping[str, str] | None = None,
        write_region: str | None = None,
        consistency_level: str = "Session",
        multi_writer: bool = False,
        create: bool = True,
        max_concurrency: int = 8,
        timeout_s: float = 10.0,
        retries: int = 3,
        conflict_policy: ConflictPolicy | None = None,
        lease_s: float | None = None,
        clock_drift_s: float = 0.25,
        lag_wait_s: float = 5.0,
    ) -> None:
        self._endpoint = endpoint_url("endpoint", endpoint)
        self._database = _resource_id("database", database)
        self._container_name = _resource_id("container", container)
        self._regions = validate.regions("regions", regions)
        self._region_endpoints = {
            self._region("region_endpoints", region): endpoint_url("region_endpoints", url)
            for region, url in _mapping("region_endpoints", region_endpoints).items()
        }
        self._locations = {
            self._region("locations", region): _text("locations", name)
            for region, name in _mapping("locations", locations).items()
        }
        initial = self._regions[0] if write_region is None else write_region
        self._initial = self._region("write_region", initial)
        self._consistency = validate.one_of(
            "consistency_level", consistency_level, CONSISTENCY_LEVELS
        )
        for name, flag in (("multi_writer", multi_writer), ("create", create)):
            if not isinstance(flag, bool):
                raise InvalidInput(name, "must be True or False")
        self._multi_writer = multi_writer
        self._concurrency = validate.int_range("max_concurrency", max_concurrency, 1, 64)
        self._timeout_s = validate.seconds("timeout_s", timeout_s, 0, 300)
        self._retries = validate.int_range("retries", retries, 0, 10)
        self._lease_s = None if lease_s is None else validate.seconds("lease_s", lease_s, 0, 60)
        drift = validate.finite_non_negative("clock_drift_s", clock_drift_s)
        self.promote_delay_s = 0.0 if self._lease_s is None else self._lease_s + drift
        self._lease: tuple[_Meta, float] | None = None
        """The meta document as last confirmed, and when (monotonic) that runs out."""
        self._lag_wait_s = validate.seconds("lag_wait_s", lag_wait_s, 0, 300)
        if conflict_policy is not None and not isinstance(conflict_policy, LastWriterWins):
            raise Unsupported("Cosmos DB resolves conflicts by last writer wins only")
        self.conflict_policy = LastWriterWins()
        if key is not None and credential is not None:
            raise InvalidInput("key", "give either an account key or a credential, not both")
        if key is not None and (not isinstance(key, str) or not key):
            raise InvalidInput("key", "must be the account key")
        self._credential = key if key is not None else token_credential(credential)
        self.capabilities = StoreCapabilities(
            multi_writer=True,
            pinned_reads=True,
            replication_lag=True,
            strong=self._consistency == "Strong",
            max_item_bytes=MAX_ITEM_BYTES,
            max_batch=MAX_BATCH,
        )
        self._clients: dict[str, CosmosClient] = {}
        self._containers: dict[str, ContainerProxy] = {}
        self._lock = threading.Lock()
        self._home = self._initial
        if create:
            self._create_container()
        self._create_meta()

    def __repr__(self) -> str:
        return (
            f"CosmosStore({redact.url(self._endpoint)!r}, {self._database!r}, "
            f"{self._container_name!r}, {list(self._regions)!r}, multi_writer={self._multi_writer})"
        )

    # ------------------------------------------------------------------ connections

    def _client(self, region: str) -> CosmosClient:
        with self._lock:
            client = self._clients.get(region)
            if client is None:
                preferred = [region, *(r for r in self._regions if r != region)]
                pinned = region in self._region_endpoints
                url = self._region_endpoints.get(region, self._endpoint)
                extra = {"transport": loopback_tls.transport()} if is_loopback(url) else {}
                with translated(f"connect to Cosmos DB in {region}"):
                    client = CosmosClient(
                        url,
                        # An explicit regional endpoint is used as given, not rediscovered.
                        enable_endpoint_discovery=not pinned,
                        credential=self._credential,
                        consistency_level=self._consistency,
                        preferred_locations=[self._locations.get(r, r) for r in preferred],
                        multiple_write_locations=self._multi_writer,
                        connection_timeout=self._timeout_s,
                        # azure-cosmos waits 65 s for an answer on an open connection by
                        # default: a region blackholed under a kept-alive connection held
                        # every request (and a promote) that long.
                        read_timeout=self._timeout_s,
                        retry_total=self._retries,
                        retry_connect=self._retries,
                        retry_read=self._retries,
                        retry_backoff_max=2,
                        **extra,
                    )
                self._clients[region] = client
            return client

    def _container(self, region: str) -> ContainerProxy:
        """The container through ``region``'s client, built once per region (a proxy holds no
        connection of its own)."""
        container = self._containers.get(region)
        if container is None:
            database = self._client(region).get_database_client(self._database)
            container = database.get_container_client(self._container_name)
            self._containers[region] = container
        return container

    def _create_container(self) -> None:
        def create(region: str) -> None:
            client = self._client(region)
            with translated("create the Cosmos DB database and container"):
                database = client.create_database_if_not_exists(self._database)
                database.create_container_if_not_exists(
                    self._container_name,
                    partition_key=PartitionKey(path="/pk"),
                    indexing_policy={
                        "indexingMode": "consistent",
                        "includedPaths": [{"path": "/key/?"}],
                        "excludedPaths": [{"path": "/*"}],
                    },
                    conflict_resolution_policy={
                        "mode": "LastWriterWins",
                        "conflictResolutionPath": LWW_PATH,
                    },
                )

        self._any_region("create the container", create)

    def _create_meta(self) -> None:
        body = {"id": META_ID, "pk": META_ID, "epoch": 0, "write_region": self._initial, "lww": 0}

        def create(region: str) -> None:
            try:
                with translated("create the store's meta document"):
                    self._container(region).create_item(body)
            except AlreadyExists:
                pass

        self._any_region("create the meta document", create)

    def _any_region(self, operation: str, call: Callable[[str], _T]) -> _T:
        """``call(region)`` in the first region that answers, the last-known write region first,
        so that a handle works (and opens) while one region is down."""
        failure: Unavailable | None = None
        for region in (self._home, *(r for r in self._regions if r != self._home)):
            try:
                return call(region)
            except Unavailable as exc:
                failure = exc
        raise Unavailable(f"{operation}: no region of the Cosmos DB account answered") from failure

    # ------------------------------------------------------------------ topology and fencing

    @property
    def regions(self) -> tuple[str, ...]:
        return self._regions

    @property
    def multi_writer(self) -> bool:
        return self._multi_writer

    @property
    def write_region(self) -> str:
        return self.fence().region

    def _fence(self) -> FencingToken:
        meta = self._meta()
        return FencingToken(meta.epoch, meta.write_region)

    def _meta(self) -> _Meta:
        """The meta document, read from the first region that answers."""

        def read(region: str) -> dict[str, Any]:
            with translated("read the store's meta document"):
                doc: dict[str, Any] = self._container(region).read_item(
                    META_ID, partition_key=META_ID
                )
            return doc

        doc = self._any_region("read the store's meta document", read)
        meta = _Meta(
            int(doc["epoch"]),
            str(doc["write_region"]),
            str(doc["_etag"]),
            float(doc.get("writable_at", 0.0)),
        )
        self._home = meta.write_region
        lease = self._lease
        if lease is not None and meta.epoch > lease[0].epoch:
            self._lease = None
        return meta

    def _confirmed(self, fence: FencingToken | None) -> _Meta:
        """The meta document: the leased copy while the lease lasts (and ``fence`` is no newer),
        otherwise read and leased again. A region promoted moments ago waits until older leases
        have run out."""
        lease = self._lease
        newer = fence is not None and lease is not None and fence.epoch > lease[0].epoch
        if lease is not None and not newer and time.monotonic() < lease[1]:
            return lease[0]
        started = time.monotonic()
        meta = self._meta()
        time.sleep(min(max(0.0, meta.writable_at - time.time()), self.promote_delay_s))
        if self._lease_s is not None:
            self._lease = (meta, started + self._lease_s)
        return meta

    def _promote(self, region: str, *, force: bool) -> FencingToken:
        """Write a newer epoch through ``region``'s client (compare-and-swap on the meta
        document, so concurrent promotions get distinct epochs). One fencing record: there is
        no majority to force."""
        container = self._container(region)
        while True:
            meta = self._meta()
            epoch = meta.epoch + 1
            body = {"id": META_ID, "pk": META_ID, "epoch": epoch, "write_region": region}
            if self.promote_delay_s:
                body["writable_at"] = time.time() + self.promote_delay_s
            try:
                with translated(f"promote {region}"):
                    container.replace_item(
                        META_ID,
                        {**body, "lww": epoch},
                        etag=meta.etag,
                        match_condition=MatchConditions.IfNotModified,
                    )
            except PreconditionFailed:
                continue
            self._home = region
            self._lease = None
            # Every lease confirmed before the new record runs out before the new region writes.
            time.sleep(self.promote_delay_s)
            return FencingToken(epoch, region)

    # ------------------------------------------------------------------ reads

    def _get(self, key: str, *, region: str | None) -> Item:
        doc_id = _doc_id(key)
        if region is not None:
            with translated(f"get {key!r} in {region}"):
                return _item(self._container(region).read_item(doc_id, partition_key=doc_id))

        def read(where: str) -> Item:
            with translated(f"get {key!r}"):
                return _item(self._container(where).read_item(doc_id, partition_key=doc_id))

        return self._any_region(f"get {key!r}", read)

    def _scan(self, prefix: str, *, region: str | None) -> Iterator[Item]:
        return self._scan_region(prefix, region or self._home)

    def _scan_region(self, prefix: str, region: str) -> Iterator[Item]:
        with translated(f"scan {prefix!r} in {region}"):
            pages = self._container(region).query_items(
                _SCAN,
                parameters=[{"name": "@prefix", "value": _order(prefix)}],
                enable_cross_partition_query=True,
            )
            for doc in pages:
                yield _item(doc)

    # ------------------------------------------------------------------ replication

    def _replication_lag(self, region: str) -> float:
        """Seconds a heartbeat document written now through the write region's endpoint took
        to show through ``region``'s (``multiregion.replicas.lag``); 0.0 for the write
        region itself."""
        source = self._home
        if region == source:
            return 0.0

        def write(sent: float) -> None:
            body = {"id": HEARTBEAT_ID, "pk": HEARTBEAT_ID, "t": sent, "lww": sent}
            with translated("write the replication heartbeat"):
                self._container(source).upsert_item(body)

        return replicas.lag(write, lambda: self._heartbeat(region), self._lag_wait_s)

    def _conflicts(self) -> list[tuple[Item, ...]]:
        """Keys whose regions hold different writes now (``multiregion.replicas.conflicts``):
        a scan through every region's endpoint. Under last-writer-wins Cosmos DB leaves no
        trace of a settled conflict (its conflicts feed holds only those a custom policy could
        not resolve), so this sees only the ones not settled yet."""
        return replicas.conflicts(
            partial(self._scan_region, "", region) for region in self._regions
        )

    def _heartbeat(self, region: str) -> float | None:
        try:
            with translated(f"read the replication heartbeat in {region}"):
                doc = self._container(region).read_item(HEARTBEAT_ID, partition_key=HEARTBEAT_ID)
        except NotFound:
            return None
        return float(doc["t"])

    # ------------------------------------------------------------------ writes

    def _put(
        self,
        key: str,
        document: dict[str, Any],
        *,
        if_version: str | None,
        create_only: bool,
        fence: FencingToken | None,
        region: str | None,
    ) -> Item:
        target, epoch = self._admit(region, fence)
        body = _envelope(key, document, target, epoch)
        container = self._container(target)
        operation = f"put {key!r}"
        if create_only:
            with translated(operation):
                return _item(container.create_item(body), document)
        if if_version is None:
            with translated(operation):
                return _item(container.upsert_item(body), document)
        try:
            with translated(operation):
                written = container.replace_item(
                    body["id"], body, etag=if_version, match_condition=MatchConditions.IfNotModified
                )
        except NotFound as exc:
            raise PreconditionFailed(
                f"{operation}: if_version given but no item is stored"
            ) from exc
        return _item(written, document)

    def _delete(
        self,
        key: str,
        *,
        if_version: str | None,
        fence: FencingToken | None,
        region: str | None,
    ) -> None:
        target, _epoch = self._admit(region, fence)
        doc_id = _doc_id(key)
        condition = None if if_version is None else MatchConditions.IfNotModified
        with translated(f"delete {key!r}"):
            self._container(target).delete_item(
                doc_id, partition_key=doc_id, etag=if_version, match_condition=condition
            )

    def _put_many(
        self, checked: list[tuple[str, dict[str, Any]]], *, fence: FencingToken | None
    ) -> None:
        """Upserts ``max_batch`` at a time, ``max_concurrency`` in flight; the fence is checked
        before each batch. Cosmos transactional batches hold one partition only, so a batch is
        not atomic."""
        with ThreadPoolExecutor(self._concurrency, thread_name_prefix="cosmos-put") as pool:
            for start in range(0, len(checked), MAX_BATCH):
                target, epoch = self._admit(None, fence)
                container = self._container(target)
                bodies = [
                    _envelope(k, v, target, epoch) for k, v in checked[start : start + MAX_BATCH]
                ]
                with translated("put_many"):
                    list(pool.map(container.upsert_item, bodies))

    def _admit(self, wanted: str | None, fence: FencingToken | None) -> tuple[str, int]:
        """The region taking a write and the epoch, once the token and the role are checked."""
        meta = self._confirmed(fence)
        if fence is not None and fence.epoch < meta.epoch:
            raise PreconditionFailed(
                f"fencing token epoch {fence.epoch} is older than the store's {meta.epoch}"
            )
        if wanted is None or wanted == meta.write_region:
            return meta.write_region, meta.epoch
        if not self._multi_writer:
            raise PreconditionFailed(f"{wanted} is not the write region ({meta.write_region})")
        return wanted, meta.epoch

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, {}
            self._containers = {}
        for client in clients.values():
            client.close()

    def _region(self, field: str, region: object) -> str:
        return validate.member(field, region, self._regions)


def _order(key: str) -> str:
    """A string whose order, compared as Cosmos does, is the key's code point order."""
    return key.encode("utf-8").hex()


def _doc_id(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _envelope(key: str, document: dict[str, Any], region: str, epoch: int) -> dict[str, Any]:
    doc_id = _doc_id(key)
    now = time.time()
    return {
        "id": doc_id,
        "pk": doc_id,
        "key": key,
        "hexkey": _order(key),
        "json": json.dumps(document, separators=(",", ":"), allow_nan=False),
        "region": region,
        "updated_at": now,
        "lww": now,
        "epoch": epoch,
    }


def _item(doc: Mapping[str, Any], value: dict[str, Any] | None = None) -> Item:
    """The item a stored document holds; ``value``: its document when the caller has it (a
    write's own copy), so that the JSON just sent is not parsed back."""
    return Item(
        key=str(doc["key"]),
        value=json.loads(doc["json"]) if value is None else value,
        version=str(doc["_etag"]),
        updated_at=float(doc["updated_at"]),
        region=str(doc["region"]),
    )


def _mapping(field: str, value: object) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(field, "must map region names to values")
    return value


def _text(field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, "must be a non-empty string")
    return value


def _resource_id(field: str, value: object) -> str:
    text = _text(field, value)
    if len(text) > 255 or any(c in _BAD_ID_CHARS for c in text) or text != text.strip():
        raise InvalidInput(field, f"{text!r} is not a Cosmos DB id (1-255 chars, no / \\ ? #)")
    return text
