"""What only the Cosmos DB adapter promises, read back through the raw azure-cosmos SDK."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.cosmos import ContainerProxy, CosmosClient, PartitionKey

from multiregion import registry
from multiregion.errors import InvalidInput, PreconditionFailed, Unavailable, Unsupported
from multiregion.faultproxy import Blackhole, FaultProxy
from multiregion.model import Merge
from multiregion.providers.azure.cosmos import HEARTBEAT_ID, LWW_PATH, META_ID, CosmosStore
from multiregion.providers.azure.loopback_tls import transport
from multiregion.testing.emulators.azure import COSMOS_KEY, CosmosServer, RegionProxy
from tests.azure.conftest import fresh_name
from tests.azure.test_cosmos_contract import DATABASE, opener


@pytest.fixture
def store(region_proxies: dict[str, RegionProxy]) -> Iterator[CosmosStore]:
    opened = opener(region_proxies)()
    yield opened
    opened.close()


@pytest.fixture
def raw(cosmos_server: CosmosServer, store: CosmosStore) -> Iterator[ContainerProxy]:
    """The store's container through a plain client on the server itself."""
    client = CosmosClient(cosmos_server.url, credential=COSMOS_KEY, transport=transport())
    yield client.get_database_client(DATABASE).get_container_client(store._container_name)
    client.close()


def test_container_is_partitioned_with_last_writer_wins(raw: ContainerProxy) -> None:
    properties = raw.read()
    assert properties["partitionKey"]["paths"] == ["/pk"]
    assert properties["conflictResolutionPolicy"] == {
        "mode": "LastWriterWins",
        "conflictResolutionPath": LWW_PATH,
    }


def test_documents_are_keyed_by_hash_with_the_real_key_kept(
    store: CosmosStore, raw: ContainerProxy
) -> None:
    key = "tenants/a?b#c\\d/" + "x" * 600  # characters and a length Cosmos ids refuse
    written = store.put(key, {"n": 1})
    doc_id = hashlib.sha256(key.encode()).hexdigest()
    doc = raw.read_item(doc_id, partition_key=doc_id)
    assert (doc["key"], json.loads(doc["json"]), doc["region"]) == (key, {"n": 1}, "eastus")
    assert doc["_etag"] == written.version
    assert doc["lww"] == pytest.approx(written.updated_at)
    assert [item.key for item in store.scan("tenants/")] == [key]


def test_promote_writes_the_meta_document(store: CosmosStore, raw: ContainerProxy) -> None:
    before = raw.read_item(META_ID, partition_key=META_ID)
    assert (before["epoch"], before["write_region"]) == (0, "eastus")
    token = store.promote("westus")
    after = raw.read_item(META_ID, partition_key=META_ID)
    assert (after["epoch"], after["write_region"], after["lww"]) == (1, "westus", 1)
    assert token.epoch == 1
    written = store.put("k", {"n": 1})
    assert written.region == "westus"
    assert raw.read_item(written_id("k"), partition_key=written_id("k"))["epoch"] == 1


def written_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def test_a_write_racing_a_promotion_is_refused(
    region_proxies: dict[str, RegionProxy],
) -> None:
    open_store = opener(region_proxies)
    first, second = open_store(), open_store()
    try:
        old = first.fence()
        second.promote("westus")
        with pytest.raises(PreconditionFailed):
            first.put("k", {"n": 1}, fence=old)
        with pytest.raises(PreconditionFailed):
            first.put("k", {"n": 1}, region="eastus")
    finally:
        first.close()
        second.close()


def test_a_region_down_is_unavailable(
    store: CosmosStore, region_proxies: dict[str, RegionProxy]
) -> None:
    store.put("k", {"n": 1})
    region_proxies["westus"].stop()
    with pytest.raises(Unavailable) as excinfo:
        store.get("k", region="westus")
    assert excinfo.value.__cause__ is not None
    assert store.get("k").value == {"n": 1}


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"endpoint": "http://cosmos.example.com/"}, "endpoint"),
        ({"database": "a/b"}, "database"),
        ({"container": ""}, "container"),
        ({"regions": []}, "regions"),
        ({"regions": ["East US"]}, "regions"),
        ({"write_region": "north"}, "write_region"),
        ({"consistency_level": "Linearizable"}, "consistency_level"),
        ({"region_endpoints": {"north": "https://127.0.0.1:1/"}}, "region_endpoints"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"key": ""}, "key"),
        ({"credential": "not a credential", "key": None}, "credential"),
    ],
)
def test_bad_settings_are_refused_before_any_call(settings: dict[str, Any], field: str) -> None:
    # nothing listens on port 1: a setting that slipped through would fail as Unavailable
    base: dict[str, Any] = {
        "endpoint": "https://127.0.0.1:1/",
        "database": "db",
        "container": "c",
        "regions": ["eastus"],
        "key": COSMOS_KEY,
    }
    base.update(settings)
    endpoint, database, container, regions = (
        base.pop(name) for name in ("endpoint", "database", "container", "regions")
    )
    with pytest.raises(InvalidInput) as excinfo:
        CosmosStore(endpoint, database, container, regions, **base)
    assert excinfo.value.field == field


def test_merge_conflict_policy_is_unsupported() -> None:
    with pytest.raises(Unsupported):
        CosmosStore(
            "https://127.0.0.1:1/",
            "db",
            "c",
            ["eastus"],
            key=COSMOS_KEY,
            conflict_policy=Merge(lambda a, b: a.value),
        )


def test_the_key_stays_out_of_repr_and_errors(region_proxies: dict[str, RegionProxy]) -> None:
    open_store = opener(region_proxies)
    store = open_store()
    try:
        assert COSMOS_KEY not in repr(store)
        for proxy in region_proxies.values():
            proxy.stop()
        with pytest.raises(Unavailable) as excinfo:
            store.get("k")
        assert COSMOS_KEY not in str(excinfo.value)
    finally:
        store.close()


def test_the_registry_builds_the_store(region_proxies: dict[str, RegionProxy]) -> None:
    built = registry.store(
        "azure",
        endpoint=region_proxies["eastus"].url,
        database=DATABASE,
        container=fresh_name("registry-"),
        regions=["eastus"],
        region_endpoints={"eastus": region_proxies["eastus"].url},
        key=COSMOS_KEY,
        retries=1,
    )
    try:
        assert isinstance(built, CosmosStore)
        assert built.put("k", {"n": 1}).value == {"n": 1}
    finally:
        built.close()


def test_a_handle_opens_and_works_while_a_region_is_down(
    region_proxies: dict[str, RegionProxy],
) -> None:
    open_store = opener(region_proxies)
    first = open_store()
    first.put("k", {"n": 1})
    region_proxies["eastus"].stop()
    second = open_store()  # its first region is down: it opens through westus
    try:
        assert second.get("k").value == {"n": 1}
        token = second.promote("westus")
        assert second.put("k", {"n": 2}, fence=token).region == "westus"
    finally:
        first.close()
        second.close()


def test_a_leased_writer_reads_the_meta_document_once_per_lease(
    region_proxies: dict[str, RegionProxy], cosmos_server: CosmosServer
) -> None:
    """With a lease the writer does not read the meta document before each write (it keeps
    writing in its region after the document changed under it, until the lease runs out);
    without one it reads it every time and follows at once."""
    leased = opener(region_proxies, lease_s=0.6, clock_drift_s=0.05)()
    strict = CosmosStore(
        region_proxies["eastus"].url,
        DATABASE,
        leased._container_name,
        ["eastus", "westus"],
        key=COSMOS_KEY,
        region_endpoints={region: proxy.url for region, proxy in region_proxies.items()},
        timeout_s=2,
        retries=1,
    )
    client = CosmosClient(cosmos_server.url, credential=COSMOS_KEY, transport=transport())
    raw = client.get_database_client(DATABASE).get_container_client(leased._container_name)
    try:
        assert (strict.promote_delay_s, leased.promote_delay_s) == (0.0, 0.65)
        token = leased.fence()
        assert leased.put("k", {"n": 1}, fence=token).region == "eastus"
        moved = {"id": META_ID, "pk": META_ID, "epoch": 0, "write_region": "westus", "lww": 0}
        raw.upsert_item(moved)  # what a promote would write, without raising the epoch
        assert leased.put("k", {"n": 2}, fence=token).region == "eastus"
        assert strict.put("k", {"n": 3}).region == "westus"
        time.sleep(0.6)
        assert leased.put("k", {"n": 4}, fence=token).region == "westus"
    finally:
        client.close()
        leased.close()
        strict.close()


def test_a_promote_outlasts_the_old_writers_lease(
    region_proxies: dict[str, RegionProxy],
) -> None:
    open_store = opener(region_proxies, lease_s=0.3, clock_drift_s=0.05)
    old_writer, promoter = open_store(), open_store()
    try:
        old = old_writer.fence()
        old_writer.put("k", {"by": "old"}, fence=old)
        started = time.monotonic()
        new = promoter.promote("westus")
        assert time.monotonic() - started >= promoter.promote_delay_s
        with pytest.raises(PreconditionFailed):
            old_writer.put("k", {"by": "stale"}, fence=old)
        assert promoter.put("k", {"by": "new"}, fence=new).region == "westus"
    finally:
        old_writer.close()
        promoter.close()


TwoRegions = tuple[dict[str, str], dict[str, Any], str]
"""Each region's URL, a raw container client per region, and the container's name."""


@pytest.fixture
def two_regions(cosmos_server: CosmosServer) -> Iterator[TwoRegions]:
    """Two servers as two regions of one account, the container in each; cosmosdb-server does
    not replicate, so tests copy documents as Cosmos DB would."""
    with CosmosServer() as replica:
        container = fresh_name("two-")
        urls = {"eastus": cosmos_server.url, "westus": replica.url}
        clients = {
            region: CosmosClient(url, credential=COSMOS_KEY, transport=transport())
            for region, url in urls.items()
        }
        raws = {
            region: client.create_database_if_not_exists(DATABASE).create_container_if_not_exists(
                container, partition_key=PartitionKey(path="/pk")
            )
            for region, client in clients.items()
        }
        yield urls, raws, container
        for client in clients.values():
            client.close()


def _copy(source: ContainerProxy, target: ContainerProxy, doc_id: str) -> None:
    doc = source.read_item(doc_id, partition_key=doc_id)
    target.upsert_item({k: v for k, v in doc.items() if not k.startswith("_")})


def _two_region_store(urls: dict[str, str], container: str, **settings: Any) -> CosmosStore:
    return CosmosStore(
        urls["eastus"],
        DATABASE,
        container,
        list(urls),
        key=COSMOS_KEY,
        region_endpoints=urls,
        timeout_s=2,
        retries=1,
        **settings,
    )


def test_replication_lag_is_a_heartbeat_read_through_each_region(
    two_regions: TwoRegions,
) -> None:
    urls, raws, container = two_regions
    store = _two_region_store(urls, container, lag_wait_s=0.4)
    patient = _two_region_store(urls, container, lag_wait_s=20)
    try:
        assert store.capabilities.replication_lag
        assert store.replication_lag("eastus") == 0.0
        assert store.replication_lag("westus") >= 0.4  # nothing replicates
        _copy(raws["eastus"], raws["westus"], HEARTBEAT_ID)
        assert store.replication_lag("westus") >= 0.4  # a new heartbeat, not yet there

        old = raws["eastus"].read_item(HEARTBEAT_ID, partition_key=HEARTBEAT_ID)["t"]

        def lagging_replica() -> None:  # a region 0.6 s behind the new heartbeat
            while raws["eastus"].read_item(HEARTBEAT_ID, partition_key=HEARTBEAT_ID)["t"] == old:
                time.sleep(0.02)
            time.sleep(0.6)
            _copy(raws["eastus"], raws["westus"], HEARTBEAT_ID)

        copier = threading.Thread(target=lagging_replica)
        copier.start()
        lag = patient.replication_lag("westus")
        copier.join()
        assert 0.5 <= lag < 10
        assert list(store.scan(region="eastus")) == []
    finally:
        store.close()
        patient.close()


def test_conflicts_are_the_writes_regions_disagree_on(
    two_regions: TwoRegions,
) -> None:
    urls, raws, container = two_regions
    store = _two_region_store(urls, container, multi_writer=True)
    try:
        store.put("k", {"from": "east"}, region="eastus")
        store.put("k", {"from": "west"}, region="westus")
        store.put("same", {"n": 1}, region="eastus")
        _copy(raws["eastus"], raws["westus"], written_id("same"))
        (conflict,) = store.conflicts()
        assert [(item.value, item.region) for item in conflict] == [
            ({"from": "west"}, "westus"),
            ({"from": "east"}, "eastus"),
        ]
        _copy(raws["westus"], raws["eastus"], written_id("k"))
        assert store.conflicts() == []
    finally:
        store.close()


def test_a_region_blackholed_under_an_open_connection_fails_within_timeout_s(
    cosmos_server: CosmosServer, region_proxies: dict[str, RegionProxy]
) -> None:
    """A region that goes silent while the client holds a kept-alive connection to it: the
    read fails after ``timeout_s``, not after azure-cosmos's default read timeout of 65 s."""
    with FaultProxy() as proxy:
        host, port = proxy.add_listener(
            "westus", ("127.0.0.1", 0), ("127.0.0.1", cosmos_server.port)
        )
        endpoints = {"eastus": region_proxies["eastus"].url, "westus": f"https://{host}:{port}/"}
        store = CosmosStore(
            endpoints["eastus"],
            DATABASE,
            fresh_name("store-"),
            ["eastus", "westus"],
            key=COSMOS_KEY,
            region_endpoints=endpoints,
            timeout_s=1,
            retries=0,
        )
        with store:
            store.put("k", {"n": 1})
            assert store.get("k", region="westus").value == {"n": 1}  # the connection is open
            with proxy.toxic("westus", Blackhole()):
                started = time.monotonic()
                with pytest.raises(Unavailable):
                    store.get("k", region="westus")
                assert time.monotonic() - started < 10
