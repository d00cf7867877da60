"""ReplicatedStore on a DynamoDB global table.

Item design: partition key ``k`` (string, the library's key); ``d`` the document as compact
JSON text (exact round trips, no Decimal conversions, size known before the call); ``v`` the
version, a random token per write (so a deleted and recreated key never reuses a version);
``t`` the write time; ``r`` the region that took the write. One more item, under a key no user
key can have (control characters are refused), holds the fencing epoch ``e`` and the write
region ``w``.

Replication is DynamoDB's own: with the default multi-region eventual consistency (MREC)
replicas converge last-writer-wins (``multi_writer=True`` lets every region take writes, as
global tables allow; DynamoDB keeps the write with the latest timestamp); with
``strong=True`` the table is a multi-region strongly consistent (MRSC) one. Writes go to the
write region's replica and are checked against the fencing item in the same
TransactWriteItems call, so a stale token never writes there; MRSC tables have no
transactions, so there the check is a strongly consistent read just before a conditional
write (see docs/providers/aws.md for both windows). ``replication_lag`` writes a heartbeat
item in the write region and reads it in the replica.

With ``lease_s`` the write region reads the fencing item once per lease instead of checking it
in every write, and each write is one plain (conditional) PutItem or DeleteItem; ``promote``
then records, and waits, ``lease_s + clock_drift_s`` before the new write region takes writes
(``promote_delay_s``), so that every lease taken before it has run out.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from multiregion import replicas, validate
from multiregion.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Throttled,
    Unavailable,
)
from multiregion.interfaces import ReplicatedStore, StoreCapabilities
from multiregion.model import FencingToken, Item, LastWriterWins
from multiregion.providers.aws.errors import error_code, translate_error, translated
from multiregion.providers.aws.session import Connection

FENCE_KEY = "\x00multiregion-fence"
HEARTBEAT_KEY = "\x00multiregion-heartbeat"
"""An item holding the time it was written (``t``), for ``replication_lag``."""
CONTROL_KEYS = frozenset({FENCE_KEY, HEARTBEAT_KEY})
MAX_ITEM_BYTES = 400 * 1024
RESERVED_BYTES = 2 * 1024
"""Room kept for the key (up to 1 KiB), attribute names, version, time and region."""
BATCH = 25
BATCH_ROUNDS = 8
MRSC_REGIONS = 3
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_NAMES = {"#k": "k", "#v": "v", "#e": "e", "#w": "w"}


def _flag(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(field, "must be True or False")
    return value


def _to_item(attributes: Mapping[str, Any]) -> Item:
    return Item(
        key=attributes["k"]["S"],
        value=json.loads(attributes["d"]["S"]),
        version=attributes["v"]["S"],
        updated_at=float(attributes["t"]["N"]),
        region=attributes["r"]["S"],
    )


def _reasons(exc: ClientError) -> list[str]:
    """Per-action codes of a cancelled transaction ("None" for the actions that passed)."""
    return [str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", [])]


class DynamoStore(ReplicatedStore):
    """A single-writer store on one DynamoDB global table with replicas in ``regions``.

    ``write_region`` (default: the first region) takes writes until the first ``promote``;
    every handle on the table must agree on it until then. ``create=True`` creates the table
    in the write region and asks for replicas in the others (UpdateTable ReplicaUpdates).
    ``endpoint_urls`` maps regions to emulators, one per region. ``lease_s`` turns on write
    leases (see the module's docstring); every handle on the table must use the same.
    """

    def __init__(
        self,
        *,
        table: str,
        regions: Sequence[str],
        write_region: str | None = None,
        strong: bool = False,
        create: bool = False,
        endpoint_url: str | None = None,
        endpoint_urls: Mapping[str, str] | None = None,
        max_attempts: int = 5,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 10.0,
        lease_s: float | None = None,
        clock_drift_s: float = 0.25,
        lag_wait_s: float = 5.0,
        multi_writer: bool = False,
    ) -> None:
        if not isinstance(table, str) or not _TABLE.match(table):
            raise InvalidInput("table", f"{table!r} is not a DynamoDB table name")
        self.table = table
        self._regions = validate.regions("regions", regions)
        self._default = self._region_of("write_region", write_region or self._regions[0])
        self.strong = _flag("strong", strong)
        if self.strong and len(self._regions) != MRSC_REGIONS:
            raise InvalidInput("regions", "a strongly consistent (MRSC) table has three regions")
        self._multi_writer = _flag("multi_writer", multi_writer)
        if self._multi_writer and self.strong:
            raise InvalidInput("multi_writer", "is for global tables (MREC), not strong=True")
        urls = dict(endpoint_urls or {})
        if urls and endpoint_url is not None:
            raise InvalidInput("endpoint_urls", "give endpoint_url or endpoint_urls, not both")
        for region in urls:
            self._region_of("endpoint_urls", region)
        self._clients = {
            region: Connection(
                endpoint_url=urls.get(region, endpoint_url),
                max_attempts=max_attempts,
                connect_timeout_s=connect_timeout_s,
                read_timeout_s=read_timeout_s,
            ).client("dynamodb", region, "store")
            for region in self._regions
        }
        self._known = FencingToken(0, self._default)
        """The newest token this handle has seen; epochs only grow."""
        self._lease_s = None if lease_s is None else validate.seconds("lease_s", lease_s, 0, 60)
        drift = validate.finite_non_negative("clock_drift_s", clock_drift_s)
        self.promote_delay_s = 0.0 if self._lease_s is None else self._lease_s + drift
        self._lease: tuple[FencingToken, float] | None = None
        """The token this handle confirmed in its write region, and when (monotonic) that
        confirmation runs out."""
        self._lag_wait_s = validate.seconds("lag_wait_s", lag_wait_s, 0, 300)
        self.capabilities = StoreCapabilities(
            # A global table (MREC) takes writes in every region, last writer wins.
            multi_writer=not self.strong,
            pinned_reads=True,
            replication_lag=True,
            strong=self.strong,
            max_item_bytes=MAX_ITEM_BYTES - RESERVED_BYTES,
            max_batch=BATCH,
            # MRSC makes the fencing item's conditional writes strongly consistent across the
            # three regions; a global table (MREC) replicates it like any item, so a partition
            # can show two regions two different write regions.
            partition_safe_fencing=self.strong,
        )
        self.conflict_policy = LastWriterWins()
        if _flag("create", create):
            self._create_table()

    def __repr__(self) -> str:
        return f"DynamoStore(table={self.table!r}, regions={self._regions!r})"

    # ------------------------------------------------------------------ setup

    def _create_table(self) -> None:
        client = self._clients[self._default]
        with translated("DescribeTable"):
            try:
                description = client.describe_table(TableName=self.table)["Table"]
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
                client.create_table(
                    TableName=self.table,
                    KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                    BillingMode="PAY_PER_REQUEST",
                    StreamSpecification={
                        "StreamEnabled": True,
                        "StreamViewType": "NEW_AND_OLD_IMAGES",
                    },
                )
                self._wait_active(client)
                description = client.describe_table(TableName=self.table)["Table"]
        existing = {r["RegionName"] for r in description.get("Replicas", [])}
        missing = [r for r in self._regions if r != self._default and r not in existing]
        if not missing:
            return
        with translated("UpdateTable"):
            if self.strong:  # MRSC replicas are all created in one request
                client.update_table(
                    TableName=self.table,
                    ReplicaUpdates=[{"Create": {"RegionName": r}} for r in missing],
                    MultiRegionConsistency="STRONG",
                )
                self._wait_active(client)
                return
            for region in missing:  # MREC: one replica per UpdateTable
                client.update_table(
                    TableName=self.table, ReplicaUpdates=[{"Create": {"RegionName": region}}]
                )
                self._wait_active(client)

    def _wait_active(self, client: Any) -> None:
        client.get_waiter("table_exists").wait(
            TableName=self.table, WaiterConfig={"Delay": 2, "MaxAttempts": 300}
        )

    # ------------------------------------------------------------------ regions and fencing

    def _region_of(self, field: str, region: object) -> str:
        return validate.member(field, region, self._regions)

    @property
    def regions(self) -> tuple[str, ...]:
        return self._regions

    @property
    def multi_writer(self) -> bool:
        return self._multi_writer

    @property
    def write_region(self) -> str:
        return self.fence().region

    def _read_fence(self, region: str) -> FencingToken:
        return self._read_record(region)[0]

    def _read_record(self, region: str) -> tuple[FencingToken, float]:
        """The fencing item in ``region``'s replica: the token and the time (epoch seconds)
        from which its region may write (after a promote with leases)."""
        with translated("GetItem"):
            found = self._clients[region].get_item(
                TableName=self.table, Key={"k": {"S": FENCE_KEY}}, ConsistentRead=True
            )
        if "Item" not in found:
            return FencingToken(0, self._default), 0.0
        record = found["Item"]
        writable_at = float(record["a"]["N"]) if "a" in record else 0.0
        return FencingToken(int(record["e"]["N"]), record["w"]["S"]), writable_at

    def _fence(self) -> FencingToken:
        """Read from the write region's replica, or from another when that one is down."""
        first = self._known.region
        order = [first, *(r for r in self._regions if r != first)]
        failure: Unavailable | None = None
        for region in order:
            try:
                token = self._read_fence(region)
            except Unavailable as exc:
                failure = exc
                continue
            self._learn(token)
            return token
        assert failure is not None
        raise failure

    def _promote(self, region: str, *, force: bool) -> FencingToken:
        """Bumps the epoch in ``region``'s own replica: nothing from the old write region.
        One fencing record: there is no majority to force."""
        current = self._read_fence(region)
        token = FencingToken(current.epoch + 1, region)
        record = {"k": {"S": FENCE_KEY}, "e": {"N": str(token.epoch)}, "w": {"S": region}}
        if self.promote_delay_s:
            record["a"] = {"N": repr(time.time() + self.promote_delay_s)}
        try:
            with translated("PutItem"):
                self._clients[region].put_item(
                    TableName=self.table,
                    Item=record,
                    ConditionExpression="attribute_not_exists(#k) OR #e = :e",
                    ExpressionAttributeNames={"#k": "k", "#e": "e"},
                    ExpressionAttributeValues={":e": {"N": str(current.epoch)}},
                )
        except PreconditionFailed as exc:
            raise PreconditionFailed("another promote happened at the same time") from exc
        self._learn(token)
        # Every lease confirmed before the new record runs out before the new region writes.
        time.sleep(self.promote_delay_s)
        return token

    def _learn(self, token: FencingToken) -> None:
        if token.epoch >= self._known.epoch:
            self._known = token
        if self._lease is not None and token.epoch > self._lease[0].epoch:
            self._lease = None

    def _fence_condition(self, region: str, fence: FencingToken | None) -> dict[str, Any]:
        """A ConditionCheck on the fencing item: ``region`` is the write region, and the
        token (if any) is the newest. Before the first promote the item does not exist and
        the configured write region holds."""
        condition = "#w = :w" if fence is None else "#w = :w AND #e = :e"
        values: dict[str, Any] = {":w": {"S": region}}
        if fence is not None:
            values[":e"] = {"N": str(fence.epoch)}
        if region == self._default and (fence is None or fence.epoch == 0):
            condition = f"attribute_not_exists(#k) OR ({condition})"
        return {
            "TableName": self.table,
            "Key": {"k": {"S": FENCE_KEY}},
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {n: _NAMES[n] for n in _NAMES if n in condition},
            "ExpressionAttributeValues": values,
        }

    def _target(self, region: str | None, fence: FencingToken | None) -> str:
        """The region a write goes to: the token's, the one asked for, or the write region."""
        if fence is not None:
            if region is not None and region != fence.region:
                raise PreconditionFailed(f"the token is for {fence.region}, not {region}")
            return fence.region
        return region or self._known.region

    # ------------------------------------------------------------------ reads

    def _get(self, key: str, *, region: str | None) -> Item:
        where = region or self._known.region
        with translated("GetItem"):
            found = self._clients[where].get_item(
                TableName=self.table, Key={"k": {"S": key}}, ConsistentRead=True
            )
        if "Item" not in found:
            raise NotFound(f"{key} is not in {self.table} ({where})")
        return _to_item(found["Item"])

    def _scan(self, prefix: str, *, region: str | None) -> Iterator[Item]:
        """A paged Scan filtered by ``begins_with``, sorted here: it reads the whole table
        (read capacity grows with the table, not with the matches) and holds the matches in
        memory. A design with a sort key could Query instead, at the cost of a fixed
        partition scheme; backups and failover scans are rare enough for this one."""
        return self._scan_region(prefix, region or self._known.region)

    def _scan_region(self, prefix: str, region: str) -> Iterator[Item]:
        args: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        if prefix:
            args["FilterExpression"] = "begins_with(#k, :p)"
            args["ExpressionAttributeNames"] = {"#k": "k"}
            args["ExpressionAttributeValues"] = {":p": {"S": prefix}}
        found: list[Item] = []
        with translated("Scan"):
            for page in self._clients[region].get_paginator("scan").paginate(**args):
                found.extend(_to_item(a) for a in page["Items"] if a["k"]["S"] not in CONTROL_KEYS)
        yield from sorted(found, key=lambda item: item.key)

    # ------------------------------------------------------------------ replication

    def _replication_lag(self, region: str) -> float:
        """Seconds a heartbeat item written now in the write region took to show in
        ``region``'s replica (``multiregion.replicas.lag``); 0.0 for the write region itself
        and on MRSC tables, whose writes are in every region once acknowledged."""
        source = self._known.region
        if region == source or self.strong:
            return 0.0

        def write(sent: float) -> None:
            item = {"k": {"S": HEARTBEAT_KEY}, "t": {"N": repr(sent)}}
            with translated("PutItem"):
                self._clients[source].put_item(TableName=self.table, Item=item)

        return replicas.lag(write, lambda: self._heartbeat(region), self._lag_wait_s)

    def _conflicts(self) -> list[tuple[Item, ...]]:
        """Keys whose replicas hold different writes now (``multiregion.replicas.conflicts``):
        a full consistent Scan of every replica. DynamoDB keeps no trace of a conflict once
        last-writer-wins has settled it, so this sees only the ones not settled yet (and, on
        a single-writer table, writes still replicating)."""
        return replicas.conflicts(
            partial(self._scan_region, "", region) for region in self._regions
        )

    def _heartbeat(self, region: str) -> float | None:
        with translated("GetItem"):
            found = self._clients[region].get_item(
                TableName=self.table, Key={"k": {"S": HEARTBEAT_KEY}}, ConsistentRead=True
            )
        return float(found["Item"]["t"]["N"]) if "Item" in found else None

    # ------------------------------------------------------------------ writes

    @staticmethod
    def _attributes(key: str, document: dict[str, Any], region: str) -> dict[str, Any]:
        return {
            "k": {"S": key},
            "d": {"S": json.dumps(document, separators=(",", ":"), ensure_ascii=False)},
            "v": {"S": uuid.uuid4().hex},
            "t": {"N": repr(time.time())},
            "r": {"S": region},
        }

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
        target = self._target(region, fence)
        attributes = self._attributes(key, value, target)
        action: dict[str, Any] = {"TableName": self.table, "Item": attributes}
        if create_only:
            action["ConditionExpression"] = "attribute_not_exists(#k)"
            action["ExpressionAttributeNames"] = {"#k": "k"}
        elif if_version is not None:
            action["ConditionExpression"] = "#v = :v"
            action["ExpressionAttributeNames"] = {"#v": "v"}
            action["ExpressionAttributeValues"] = {":v": {"S": if_version}}
        try:
            self._fenced("Put", action, target, fence, follow=region is None)
        except _ItemConditionFailed as exc:
            if create_only:
                raise AlreadyExists(f"{key} already exists") from exc
            raise PreconditionFailed(f"{key} is not at version {if_version}") from exc
        # ``value`` is the caller's copy already: the JSON just sent is not parsed back.
        return Item(
            key,
            value,
            attributes["v"]["S"],
            float(attributes["t"]["N"]),
            attributes["r"]["S"],  # the region the write went to, after following a promote
        )

    def _delete(
        self,
        key: str,
        *,
        if_version: str | None,
        fence: FencingToken | None,
        region: str | None,
    ) -> None:
        target = self._target(region, fence)
        action: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"k": {"S": key}},
            "ConditionExpression": "attribute_exists(#k)",
            "ExpressionAttributeNames": {"#k": "k"},
        }
        if if_version is not None:
            action["ConditionExpression"] += " AND #v = :v"
            action["ExpressionAttributeNames"]["#v"] = "v"
            action["ExpressionAttributeValues"] = {":v": {"S": if_version}}
        try:
            self._fenced("Delete", action, target, fence, follow=region is None)
        except _ItemConditionFailed as exc:
            if if_version is None:
                raise NotFound(f"{key} is not in {self.table}") from exc
            try:  # the write region, or the one the write followed a promote to
                self.get(key, region=target if region or fence else None)
            except NotFound:
                raise NotFound(f"{key} is not in {self.table}") from exc
            raise PreconditionFailed(f"{key} is not at version {if_version}") from exc

    def _fenced(
        self,
        kind: str,
        action: dict[str, Any],
        region: str,
        fence: FencingToken | None,
        *,
        follow: bool,
    ) -> None:
        """One write with the fencing check. ``follow``: a write that named no region
        follows a promote made through another handle, once."""
        if fence is not None and fence.epoch < self._known.epoch:
            raise PreconditionFailed(f"token {fence} is older than {self._known}")
        try:
            self._write_checked(kind, action, region, fence)
        except Unavailable:
            # The token's region is down: if another replica already holds a newer token,
            # the write is refused for what it is, stale.
            if fence is not None and self._newer_elsewhere(fence):
                raise PreconditionFailed(f"token {fence} is older than {self._known}") from None
            raise
        except _FenceFailed as exc:
            current = self.fence()
            if follow and fence is None and current.region != region:
                self._fenced(kind, action, current.region, None, follow=False)
                return
            if fence is not None and fence != current:
                raise PreconditionFailed(f"token {fence} is older than {current}") from exc
            raise PreconditionFailed(f"{region} is not the write region") from exc

    def _newer_elsewhere(self, fence: FencingToken) -> bool:
        for region in self._regions:
            if region == fence.region:
                continue
            try:
                self._learn(self._read_fence(region))
            except Unavailable:
                continue
        return fence.epoch < self._known.epoch

    def _write_checked(
        self, kind: str, action: dict[str, Any], region: str, fence: FencingToken | None
    ) -> None:
        client = self._clients[region]
        if kind == "Put":
            action["Item"]["r"] = {"S": region}
        unfenced = self._multi_writer and fence is None  # every region takes writes
        if self.strong or self._lease_s is not None or unfenced:
            # MRSC tables have no transactions: a strongly consistent read of the fencing
            # item (once per lease with leases), then the conditional write.
            current = None if unfenced else self._confirmed(region, fence)
            if current is not None and (
                current.region != region or (fence is not None and fence != current)
            ):
                raise _FenceFailed
            call = client.put_item if kind == "Put" else client.delete_item
            try:
                with translated(f"{kind}Item"):
                    call(**action)
            except PreconditionFailed as exc:
                raise _ItemConditionFailed from exc
            return
        try:
            client.transact_write_items(
                TransactItems=[
                    {"ConditionCheck": self._fence_condition(region, fence)},
                    {kind: action},
                ]
            )
        except ClientError as exc:
            reasons = _reasons(exc)
            if reasons[:1] == ["ConditionalCheckFailed"]:
                raise _FenceFailed from exc
            if reasons[1:2] == ["ConditionalCheckFailed"]:
                raise _ItemConditionFailed from exc
            if "TransactionConflict" in reasons:
                raise Throttled("TransactWriteItems: a concurrent transaction; retry") from exc
            raise translate_error(exc, "TransactWriteItems") from exc
        except BotoCoreError as exc:
            raise translate_error(exc, "TransactWriteItems") from exc

    def _confirmed(self, region: str, fence: FencingToken | None) -> FencingToken:
        """The token in force in ``region``: the leased one while its lease lasts (and
        ``fence`` is no newer), otherwise read from the replica and leased again when it names
        ``region``. A region promoted moments ago waits until the old write region's lease has
        surely run out."""
        lease = self._lease
        newer = fence is not None and lease is not None and fence.epoch > lease[0].epoch
        if (
            lease is not None
            and not newer
            and lease[0].region == region
            and time.monotonic() < lease[1]
        ):
            return lease[0]
        started = time.monotonic()
        current, writable_at = self._read_record(region)
        self._learn(current)
        if current.region == region:
            time.sleep(min(max(0.0, writable_at - time.time()), self.promote_delay_s))
            if self._lease_s is not None:
                self._lease = (current, started + self._lease_s)
        return current

    def _put_many(
        self, items: list[tuple[str, dict[str, Any]]], *, fence: FencingToken | None
    ) -> None:
        """BatchWriteItem in chunks of 25, unprocessed items retried with backoff.

        The fencing item is read once before the first chunk, so a promote that lands while
        the chunks go out does not stop them (BatchWriteItem takes no conditions).
        """
        target = self._target(None, fence)
        leased = fence is not None or self._lease_s is not None
        current = self._confirmed(target, fence) if leased else self.fence()
        if fence is None and current.region != target:
            current = self.fence()
        if fence is not None and fence != current:
            raise PreconditionFailed(f"token {fence} is older than {current}")
        target = current.region
        requests = [
            {"PutRequest": {"Item": self._attributes(key, document, target)}}
            for key, document in items
        ]
        for start in range(0, len(requests), BATCH):
            self._batch(target, requests[start : start + BATCH])

    def _batch(self, region: str, requests: list[dict[str, Any]]) -> None:
        pending = {self.table: requests}
        for attempt in range(BATCH_ROUNDS):
            with translated("BatchWriteItem"):
                pending = self._clients[region].batch_write_item(RequestItems=pending)[
                    "UnprocessedItems"
                ]
            if not pending:
                return
            time.sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random()))
        raise Throttled(f"BatchWriteItem: items still unprocessed after {BATCH_ROUNDS} rounds")


class _FenceFailed(Exception):
    """The fencing check refused a write (internal; becomes PreconditionFailed)."""


class _ItemConditionFailed(Exception):
    """The item's own condition refused a write (internal; becomes AlreadyExists, ...)."""
