"""The DynamoDB store against moto: the contract, plus what the contract cannot see."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from multiregion.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Unavailable,
)
from multiregion.model import LastWriterWins
from multiregion.providers.aws.dynamodb import HEARTBEAT_KEY, DynamoStore
from multiregion.testing.contract.harness import StoreHarness
from multiregion.testing.contract.store import StoreContract
from multiregion.testing.emulators.aws import MotoServer
from tests.aws.conftest import FAST

LEASE = {"lease_s": 0.3, "clock_drift_s": 0.05}
"""Write leases short enough that the contract's promotes wait little."""


def _harness(moto: MotoServer, table: str, **settings: Any) -> StoreHarness:
    """One region: moto has no global tables, so replicas would never converge and a
    two-region harness could not settle truthfully (see docs/providers/aws.md)."""

    def open_store(create: bool = False, multi_writer: bool = False) -> DynamoStore:
        return DynamoStore(
            table=table,
            regions=["us-east-1"],
            create=create,
            multi_writer=multi_writer,
            endpoint_url=moto.url,
            **FAST,
            **settings,
        )

    return StoreHarness(
        store=open_store(create=True),
        reopen=open_store,
        settle=lambda: None,
        multi_writer=lambda: open_store(multi_writer=True),
    )


@pytest.fixture
def store_harness(moto: MotoServer, fresh_name: Callable[[str], str]) -> StoreHarness:
    return _harness(moto, fresh_name("table"))


class TestDynamoStoreContract(StoreContract):
    pass


class TestDynamoStoreLeaseContract(StoreContract):
    """The same contract with write leases instead of a check in every write."""

    @pytest.fixture
    def store_harness(self, moto: MotoServer, fresh_name: Callable[[str], str]) -> StoreHarness:
        return _harness(moto, fresh_name("table"), **LEASE)


@pytest.fixture
def operations() -> Iterator[list[str]]:
    """The DynamoDB operations the adapter sends, in order (botocore's before-send event on
    the default session its clients come from; the tests' own clients are left out)."""
    sent: list[str] = []

    def record(request: Any, event_name: str, **_: Any) -> None:
        if b"multiregion/store" in request.headers.get("User-Agent", b""):
            sent.append(event_name.rsplit(".", 1)[-1])

    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("before-send.dynamodb", record)
    yield sent
    boto3.DEFAULT_SESSION.events.unregister("before-send.dynamodb", record)


def test_a_leased_write_is_one_plain_request(
    moto: MotoServer, fresh_name: Callable[[str], str], operations: list[str]
) -> None:
    """Strict mode checks the fencing item in every write (a transaction); with a lease the
    item is read once per lease and each write is one PutItem or DeleteItem."""
    table = fresh_name("table")
    strict = DynamoStore(
        table=table, regions=["us-east-1"], create=True, endpoint_url=moto.url, **FAST
    )
    leased = DynamoStore(
        table=table, regions=["us-east-1"], endpoint_url=moto.url, lease_s=60, **FAST
    )
    assert (strict.promote_delay_s, leased.promote_delay_s) == (0.0, 60.25)
    operations.clear()
    strict.put("k", {"n": 0})
    assert operations == ["TransactWriteItems"]
    operations.clear()
    token = leased.fence()
    for n in range(3):
        leased.put("k", {"n": n}, fence=token)
    with pytest.raises(AlreadyExists):
        leased.put("k", {"n": 9}, create_only=True)
    leased.delete("k")
    assert operations == ["GetItem", "GetItem", *["PutItem"] * 4, "DeleteItem"]
    assert leased.put("k", {"n": 1}).value == {"n": 1}


def test_a_promote_outlasts_the_old_writers_lease(
    moto: MotoServer, fresh_name: Callable[[str], str]
) -> None:
    """The old writer keeps its lease without asking; the promote returns only once that
    lease has run out, and from then on the old token is refused."""
    table = fresh_name("table")

    def open_store(create: bool = False) -> DynamoStore:
        return DynamoStore(
            table=table,
            regions=["us-east-1"],
            create=create,
            endpoint_url=moto.url,
            **LEASE,
            **FAST,
        )

    old_writer, promoter = open_store(create=True), open_store()
    old = old_writer.fence()
    old_writer.put("k", {"by": "old"}, fence=old)
    started = time.monotonic()
    new = promoter.promote("us-east-1")
    assert time.monotonic() - started >= promoter.promote_delay_s
    with pytest.raises(PreconditionFailed):
        old_writer.put("k", {"by": "stale"}, fence=old)
    assert promoter.put("k", {"by": "new"}, fence=new).value == {"by": "new"}
    assert old_writer.get("k").value == {"by": "new"}


def test_items_are_stored_as_documented(
    moto: MotoServer, raw: Callable[..., Any], fresh_name: Callable[[str], str]
) -> None:
    table = fresh_name("table")
    store = DynamoStore(
        table=table, regions=["us-east-1"], create=True, endpoint_url=moto.url, **FAST
    )
    written = store.put("users/é", {"name": "Zoë", "n": 1.5})
    token = store.promote("us-east-1")
    dynamodb = raw("dynamodb")
    described = dynamodb.describe_table(TableName=table)["Table"]
    assert described["KeySchema"] == [{"AttributeName": "k", "KeyType": "HASH"}]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    item = dynamodb.get_item(TableName=table, Key={"k": {"S": "users/é"}})["Item"]
    assert item["d"] == {"S": '{"n":1.5,"name":"Zoë"}'}
    assert item["v"] == {"S": written.version}
    assert item["r"] == {"S": "us-east-1"}
    fence = dynamodb.get_item(TableName=table, Key={"k": {"S": "\x00multiregion-fence"}})["Item"]
    assert fence == {
        "k": {"S": "\x00multiregion-fence"},
        "e": {"N": str(token.epoch)},
        "w": {"S": "us-east-1"},
    }


def test_put_many_writes_every_chunk(
    moto: MotoServer, raw: Callable[..., Any], fresh_name: Callable[[str], str]
) -> None:
    table = fresh_name("table")
    store = DynamoStore(
        table=table, regions=["us-east-1"], create=True, endpoint_url=moto.url, **FAST
    )
    assert store.put_many({f"k{n:03d}": {"n": n} for n in range(60)}) == 60
    count = raw("dynamodb").scan(TableName=table, Select="COUNT")["Count"]
    assert count == 60


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"table": "x"}, "table"),
        ({"regions": "us-east-1"}, "regions"),
        ({"regions": []}, "regions"),
        ({"regions": ["us-east-1", "us-east-1"]}, "regions"),
        ({"write_region": "eu-west-1"}, "write_region"),
        ({"strong": True}, "regions"),
        ({"strong": "yes"}, "strong"),
        ({"endpoint_url": "http://example.com"}, "endpoint_url"),
        ({"endpoint_urls": {"eu-west-1": "http://127.0.0.1:1"}}, "endpoint_urls"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"lease_s": 0}, "lease_s"),
        ({"lag_wait_s": 0}, "lag_wait_s"),
        ({"multi_writer": 1}, "multi_writer"),
        ({"lease_s": 1, "clock_drift_s": -1}, "clock_drift_s"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], field: str) -> None:
    base: dict[str, Any] = {"table": "valid-table", "regions": ["us-east-1"]}
    with pytest.raises(InvalidInput) as excinfo:
        DynamoStore(**{**base, **settings})
    assert excinfo.value.field == field


class TestTwoRegions:
    """One moto server per region. moto has no global tables, so each region's table stands
    alone here: these tests check where the adapter sends each call, not replication."""

    @pytest.fixture
    def stores(
        self, moto_per_region: dict[str, MotoServer], fresh_name: Callable[[str], str]
    ) -> tuple[DynamoStore, Callable[..., Any]]:
        table = fresh_name("table")
        urls = {region: server.url for region, server in moto_per_region.items()}
        for region, url in urls.items():  # what global tables would have made
            client = boto3.client(
                "dynamodb",
                region_name=region,
                endpoint_url=url,
                config=Config(retries={"max_attempts": 1}),
            )
            client.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        store = DynamoStore(
            table=table, regions=["us-east-1", "eu-west-1"], endpoint_urls=urls, **FAST
        )

        def raw_region(region: str) -> Any:
            return boto3.client(
                "dynamodb",
                region_name=region,
                endpoint_url=urls[region],
                config=Config(retries={"max_attempts": 1}),
            )

        return store, raw_region

    def test_writes_go_to_the_write_region_only(
        self, stores: tuple[DynamoStore, Callable[..., Any]]
    ) -> None:
        store, raw_region = stores
        store.put("k", {"n": 1})
        with pytest.raises(PreconditionFailed):
            store.put("k", {"n": 2}, region="eu-west-1")
        table = store.table
        assert "Item" in raw_region("us-east-1").get_item(TableName=table, Key={"k": {"S": "k"}})
        assert "Item" not in raw_region("eu-west-1").get_item(
            TableName=table, Key={"k": {"S": "k"}}
        )

    def test_pinned_reads_ask_that_region(
        self, stores: tuple[DynamoStore, Callable[..., Any]]
    ) -> None:
        store, raw_region = stores
        store.put("k", {"from": "primary"})
        replica = {"k": {"S": "k"}, "d": {"S": '{"from":"replica"}'}, "v": {"S": "r1"}}
        raw_region("eu-west-1").put_item(
            TableName=store.table, Item={**replica, "t": {"N": "1"}, "r": {"S": "us-east-1"}}
        )
        assert store.get("k").value == {"from": "primary"}
        assert store.get("k", region="eu-west-1").value == {"from": "replica"}
        assert [i.version for i in store.scan(region="eu-west-1")] == ["r1"]

    def test_promote_while_the_write_region_is_down(
        self,
        stores: tuple[DynamoStore, Callable[..., Any]],
        moto_per_region: dict[str, MotoServer],
    ) -> None:
        store, _ = stores
        old = store.fence()
        store.put("before", {"n": 1}, fence=old)
        bystander = DynamoStore(
            table=store.table,
            regions=store.regions,
            endpoint_urls={region: server.url for region, server in moto_per_region.items()},
            **FAST,
        )
        primary = moto_per_region["us-east-1"]
        primary.stop()
        try:
            with pytest.raises(Unavailable):
                store.get("before", region="us-east-1")
            new = store.promote("eu-west-1")
            assert (new.epoch, new.region) == (old.epoch + 1, "eu-west-1")
            assert store.write_region == "eu-west-1"
            assert store.put("after", {"n": 2}, fence=new).region == "eu-west-1"
            with pytest.raises(PreconditionFailed):
                store.put("after", {"n": 3}, fence=old)
            assert store.put("unfenced", {"n": 4}).region == "eu-west-1"
            with pytest.raises(PreconditionFailed):  # learns of the promote from eu-west-1
                bystander.put("after", {"n": 5}, fence=old)
        finally:
            primary.start()


def test_strong_mode_checks_the_fence_without_transactions(
    moto: MotoServer, raw: Callable[..., Any], fresh_name: Callable[[str], str]
) -> None:
    """MRSC tables take no transactions: the fence is read, then the write is conditional."""
    table = fresh_name("table")
    regions = ["us-east-1", "us-east-2", "us-west-2"]
    store = DynamoStore(table=table, regions=regions, strong=True, endpoint_url=moto.url, **FAST)
    raw("dynamodb").create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert store.capabilities.strong
    old = store.fence()
    first = store.put("k", {"n": 1}, fence=old)
    with pytest.raises(AlreadyExists):
        store.put("k", {"n": 2}, create_only=True)
    unaware = DynamoStore(table=table, regions=regions, strong=True, endpoint_url=moto.url, **FAST)
    store.promote("us-east-1")
    with pytest.raises(PreconditionFailed):
        unaware.put("k", {"n": 3}, fence=old)
    store.delete("k", if_version=first.version)
    with pytest.raises(NotFound):
        store.get("k")


def _replicate(source: Any, target: Any, table: str) -> None:
    """What a global table does, once: each item goes where it is missing or older (``t``)."""
    for item in source.scan(TableName=table, ConsistentRead=True)["Items"]:
        found = target.get_item(TableName=table, Key={"k": item["k"]}).get("Item")
        if found is None or float(found["t"]["N"]) < float(item["t"]["N"]):
            target.put_item(TableName=table, Item=item)


class TestGlobalTable:
    """Two moto servers as two replicas of a global table; moto does not replicate, so the
    tests copy items as DynamoDB would (``_replicate``)."""

    @pytest.fixture
    def regions(
        self, moto_per_region: dict[str, MotoServer], fresh_name: Callable[[str], str]
    ) -> tuple[Callable[..., DynamoStore], dict[str, Any], str]:
        table = fresh_name("table")
        urls = {region: server.url for region, server in moto_per_region.items()}
        raws = {
            region: boto3.client(
                "dynamodb",
                region_name=region,
                endpoint_url=url,
                config=Config(retries={"max_attempts": 1}),
            )
            for region, url in urls.items()
        }
        for client in raws.values():
            client.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )

        def open_store(**settings: Any) -> DynamoStore:
            return DynamoStore(
                table=table, regions=list(urls), endpoint_urls=urls, **FAST, **settings
            )

        return open_store, raws, table

    def test_replication_lag_is_a_heartbeat_read_in_the_replica(
        self, regions: tuple[Callable[..., DynamoStore], dict[str, Any], str]
    ) -> None:
        open_store, raws, table = regions
        store = open_store(lag_wait_s=0.4)
        assert store.capabilities.replication_lag
        assert store.replication_lag("us-east-1") == 0.0
        assert store.replication_lag("eu-west-1") >= 0.4  # nothing replicates
        _replicate(raws["us-east-1"], raws["eu-west-1"], table)
        assert store.replication_lag("eu-west-1") >= 0.4  # a new heartbeat, not yet there

        def heartbeat() -> str:
            key = {"k": {"S": HEARTBEAT_KEY}}
            found = raws["us-east-1"].get_item(TableName=table, Key=key, ConsistentRead=True)
            return str(found["Item"]["t"]["N"])

        old = heartbeat()

        def lagging_replica() -> None:  # a replica 0.6 s behind the new heartbeat
            while heartbeat() == old:
                time.sleep(0.02)
            time.sleep(0.6)
            _replicate(raws["us-east-1"], raws["eu-west-1"], table)

        patient = open_store(lag_wait_s=20)
        copier = threading.Thread(target=lagging_replica)
        copier.start()
        lag = patient.replication_lag("eu-west-1")
        copier.join()
        assert 0.5 <= lag < 10
        assert [item.key for item in store.scan(region="eu-west-1")] == []

    def test_every_region_takes_writes_and_the_latest_wins(
        self, regions: tuple[Callable[..., DynamoStore], dict[str, Any], str]
    ) -> None:
        open_store, raws, table = regions
        single, store = open_store(), open_store(multi_writer=True)
        assert single.capabilities.multi_writer
        assert isinstance(store.conflict_policy, LastWriterWins)
        with pytest.raises(PreconditionFailed):
            single.put("k", {"n": 0}, region="eu-west-1")
        first = store.put("k", {"from": "us"}, region="us-east-1")
        second = store.put("k", {"from": "eu"}, region="eu-west-1")
        assert (first.region, second.region) == ("us-east-1", "eu-west-1")
        assert second.updated_at >= first.updated_at
        store.put("same", {"n": 1})
        _replicate(raws["us-east-1"], raws["eu-west-1"], table)
        (conflict,) = store.conflicts()  # "k" only: "same" replicated, one write
        assert [(item.value, item.region) for item in conflict] == [
            ({"from": "eu"}, "eu-west-1"),
            ({"from": "us"}, "us-east-1"),
        ]
        _replicate(raws["eu-west-1"], raws["us-east-1"], table)
        for region in store.regions:
            assert store.get("k", region=region).value == {"from": "eu"}
        assert store.conflicts() == []
        token = store.fence()
        with pytest.raises(PreconditionFailed):  # a token still names its region
            store.put("k", {"n": 1}, region="eu-west-1", fence=token)
        with pytest.raises(InvalidInput):
            open_store(multi_writer=True, strong=True)
