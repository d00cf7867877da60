"""LocalStore behaviour beyond the contract: lag, RPO, outages, fencing, several processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from multiregion import registry
from multiregion.errors import InvalidInput, NotFound, PreconditionFailed, Unavailable
from multiregion.model import Item, Merge
from multiregion.providers.local.store import LocalStore
from tests.local.conftest import REGIONS, Opener, store_opener


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Opener]:
    yield from store_opener(tmp_path)


def _contents(store: LocalStore, region: str) -> list[tuple[str, Any, str]]:
    return [(item.key, item.value, item.version) for item in store.scan(region=region)]


def _wait_for(store: LocalStore, key: str, region: str, timeout_s: float = 5.0) -> float:
    """Seconds until ``key`` is readable in ``region``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            store.get(key, region=region)
        except NotFound:
            time.sleep(0.01)
        else:
            return time.monotonic() - start
    raise AssertionError(f"{key} never reached {region}")


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"regions": []}, "regions"),
        ({"regions": "a"}, "regions"),
        ({"regions": ["a", "a"]}, "regions"),
        ({"regions": ["Not A Region"]}, "regions"),
        ({"write_region": "z"}, "write_region"),
        ({"replication": "eventually"}, "replication"),
        ({"lag_s": -1}, "lag_s"),
        ({"lag_s": float("nan")}, "lag_s"),
        ({"multi_writer": "yes"}, "multi_writer"),
        ({"conflict_policy": "lww"}, "conflict_policy"),
        ({"replicate": 1}, "replicate"),
    ],
)
def test_bad_settings_name_the_field(tmp_path: Path, settings: dict[str, Any], field: str) -> None:
    settings = {"regions": REGIONS, **settings}
    with pytest.raises(InvalidInput) as excinfo:
        LocalStore(tmp_path / "s", **settings)
    assert excinfo.value.field == field
    assert not (tmp_path / "s").exists()


def test_registry_builds_it_from_keywords(tmp_path: Path) -> None:
    store = registry.store("local", path=str(tmp_path), regions=["x", "y"], write_region="y")
    try:
        assert isinstance(store, LocalStore)
        assert store.write_region == "y"
        assert store.put("k", {"n": 1}).region == "y"
        assert sorted(p.name for p in tmp_path.glob("*.db")) == ["x.db", "y.db"]
    finally:
        store.close()


# --------------------------------------------------------------------------- lag and RPO


def test_async_lag_delays_replica_visibility(open_store: Any) -> None:
    store = open_store(lag_s=0.6)
    written_at = time.monotonic()
    store.put("k", {"n": 1})
    with pytest.raises(NotFound):
        store.get("k", region="b")
    time.sleep(0.1)
    assert store.replication_lag("b") >= 0.1
    assert store.replication_lag("a") == 0.0
    _wait_for(store, "k", "b")
    assert time.monotonic() - written_at >= 0.6
    _wait_for(store, "k", "c")
    assert store.replication_lag("b") == 0.0


def test_lag_grows_until_settle(open_store: Any) -> None:
    store = open_store(replicate=False)
    store.put("k", {"n": 1})
    first = store.replication_lag("c")
    time.sleep(0.05)
    assert store.replication_lag("c") >= first + 0.04
    with pytest.raises(NotFound):
        store.get("k", region="c")
    store.settle()
    assert store.replication_lag("c") == 0.0
    assert store.get("k", region="c") == store.get("k")


def test_sync_mode_is_rpo_zero(open_store: Any) -> None:
    store = open_store(replication="sync", replicate=False)
    written = store.put("k", {"n": 1})
    for region in REGIONS:
        assert store.get("k", region=region) == written
        assert store.replication_lag(region) == 0.0


@pytest.mark.parametrize(("replication", "survivors_keep"), [("async", 0), ("sync", 5)])
def test_losing_the_write_region(open_store: Any, replication: str, survivors_keep: int) -> None:
    store = open_store(replication=replication, lag_s=60.0)
    store.put("old", {"n": 0})
    store.settle()
    for n in range(5):
        store.put(f"new/{n}", {"n": n})
    store.fail_region("a")
    token = store.promote("b")
    assert store.write_region == "b"
    assert store.get("old").value == {"n": 0}
    for region in ("b", "c"):
        assert len(list(store.scan("new/", region=region))) == survivors_keep
    with pytest.raises(Unavailable):
        store.get("old", region="a")
    store.put("after", {"n": 9}, fence=token)


def test_sync_write_with_a_replica_unreachable_is_not_acknowledged(open_store: Any) -> None:
    store = open_store(replication="sync", replicate=False)
    store.fail_region("c")
    with pytest.raises(Unavailable, match="not acknowledged"):
        store.put("k", {"n": 1})
    # A promote that cannot reach c leaves it out of synchronous replication until the next
    # promote that reaches it; c catches up asynchronously once back.
    token = store.promote("a")
    store.put("k", {"n": 2}, fence=token)
    assert store.get("k", region="b").value == {"n": 2}
    store.heal_region("c")
    with pytest.raises(NotFound):
        store.get("k", region="c")
    store.settle()
    assert store.get("k", region="c").value == {"n": 2}


# --------------------------------------------------------------------------- fencing


def test_fenced_old_primary_ops_are_dropped(open_store: Any) -> None:
    store = open_store(lag_s=60.0)
    store.put("shared", {"by": "a"})
    store.settle()
    store.put("lost", {"by": "a"})
    store.put("shared", {"by": "a", "late": True})
    store.fail_region("a")
    token = store.promote("b")
    store.put("shared", {"by": "b"}, fence=token)
    store.heal_region("a")
    store.settle()
    for region in ("b", "c"):
        with pytest.raises(NotFound):
            store.get("lost", region=region)
        assert store.get("shared", region=region).value == {"by": "b"}
    assert store.get("shared", region="a").value == {"by": "b"}
    assert store.fence() == token
    with pytest.raises(PreconditionFailed):
        store.put("x", {}, region="a")


def test_outage_marker_is_seen_by_another_handle(open_store: Any) -> None:
    first = open_store()
    second = open_store()
    first.put("k", {"n": 1})
    first.fail_region("a")
    with pytest.raises(Unavailable):
        second.get("k", region="a")
    with pytest.raises(Unavailable):
        second.put("k", {"n": 2})
    first.heal_region("a")
    assert second.get("k").value == {"n": 1}


def test_concurrent_promotions_get_distinct_epochs(open_store: Any) -> None:
    first, second = open_store(), open_store()
    one = first.promote("b")
    two = second.promote("c")
    assert two.epoch == one.epoch + 1
    assert first.write_region == "c"


# --------------------------------------------------------------------------- active-active


def test_last_writer_wins_converges_everywhere(open_store: Any) -> None:
    store = open_store(multi_writer=True, replicate=False)
    store.put("k", {"from": "c"}, region="c")
    store.put("k", {"from": "a"}, region="a")
    latest = store.put("k", {"from": "b"}, region="b")
    store.put("gone", {"n": 1}, region="a")
    store.settle()
    store.delete("gone", region="c")
    store.put("gone", {"n": 2}, region="b")
    store.settle()
    views = [_contents(store, region) for region in REGIONS]
    assert views[0] == views[1] == views[2]
    assert store.get("k", region="c").value == latest.value
    assert store.get("gone", region="a").value == {"n": 2}


def _sum(local: Item, incoming: Item) -> dict[str, Any]:
    return {"n": local.value["n"] + incoming.value["n"]}


def test_merge_policy_converges_to_one_version(open_store: Any) -> None:
    store = open_store(multi_writer=True, replicate=False, conflict_policy=Merge(_sum))
    store.put("k", {"n": 1}, region="a")
    store.put("k", {"n": 10}, region="b")
    store.settle()
    items = [store.get("k", region=region) for region in REGIONS]
    assert {item.version for item in items} == {items[0].version}
    assert all(item.value == {"n": 11} for item in items)
    follow_up = store.put("k", {"n": 100}, region="c", if_version=items[0].version)
    store.settle()
    assert all(store.get("k", region=r) == follow_up for r in REGIONS)


def test_a_write_seen_through_another_region_is_not_merged_again(open_store: Any) -> None:
    store = open_store(multi_writer=True, replicate=False, conflict_policy=Merge(_sum))
    store.fail_region("c")
    store.put("k", {"n": 1}, region="b")
    store.settle()
    store.put("k", {"n": 5}, region="a")
    store.heal_region("c")
    store.settle()  # c receives a's write before b's older one, which a's write replaced
    assert [store.get("k", region=r).value for r in REGIONS] == [{"n": 5}] * 3


# --------------------------------------------------------------------------- several processes

_WORKER = textwrap.dedent(
    """
    import sys
    from multiregion.errors import PreconditionFailed
    from multiregion.providers.local.store import LocalStore

    path, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with LocalStore(path, ["a", "b", "c"], lag_s=0.0) as store:
        done = 0
        while done < count:
            store.put(f"{name}/{done:03d}", {"n": done})
            current = store.get("counter")
            try:
                store.put("counter", {"n": current.value["n"] + 1}, if_version=current.version)
            except PreconditionFailed:
                continue
            done += 1
    """
)


def test_two_processes_share_one_store(open_store: Any, tmp_path: Path) -> None:
    store = open_store(lag_s=0.0)
    store.put("counter", {"n": 0})
    count = 40
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(tmp_path / "store"), name, str(count)])
        for name in ("p1", "p2")
    ]
    for worker in workers:
        assert worker.wait(timeout=60) == 0
    store.settle()
    views = [_contents(store, region) for region in REGIONS]
    assert views[0] == views[1] == views[2]
    assert store.get("counter", region="c").value == {"n": 2 * count}
    assert len(views[0]) == 2 * count + 1
    assert all(store.replication_lag(region) == 0.0 for region in REGIONS)


# --------------------------------------------------------------------------- lifecycle


def test_scan_streams_page_by_page(open_store: Any) -> None:
    store = open_store(replicate=False)
    store.put_many({f"s/{n:04d}": {"n": n} for n in range(250)})
    scanned = store.scan("s/")
    assert next(scanned).key == "s/0000"
    store.put("s/9999", {"n": "written after the scan began"})
    rest = list(scanned)
    assert len(rest) == 250
    assert rest[-1].key == "s/9999"


def test_close_stops_the_replicator(tmp_path: Path) -> None:
    with LocalStore(tmp_path, REGIONS, lag_s=0.0) as store:
        store.put("k", {"n": 1})
        _wait_for(store, "k", "c")
        mine = [t for t in threading.enumerate() if t.name.endswith(tmp_path.name)]
        assert mine
    assert not any(thread.is_alive() for thread in mine)
    with pytest.raises(Unavailable):
        store.get("k")
    with LocalStore(tmp_path, REGIONS, replicate=False) as reopened:
        assert reopened.get("k", region="c").value == {"n": 1}


def _oplog_length(root: Path, region: str) -> int:
    import sqlite3

    with sqlite3.connect(root / f"{region}.db") as conn:
        return int(conn.execute("SELECT count(*) FROM oplog").fetchone()[0])


def test_the_oplog_keeps_only_what_some_region_still_needs(tmp_path: Path) -> None:
    root = tmp_path / "trim"
    with LocalStore(root, REGIONS, replicate=False) as store:
        store.put_many({f"k/{i}": {"i": i} for i in range(40)})
        assert _oplog_length(root, "a") == 40
        store.fail_region("c")
        store.settle()  # b has everything, c may need it all: nothing is forgotten
        assert _oplog_length(root, "a") == 40
        store.put("k/late", {"late": True})
        store.heal_region("c")
        store.settle()
        assert _oplog_length(root, "a") == 0
        assert _contents(store, "c") == _contents(store, "a")
        assert len(_contents(store, "c")) == 41
        store.put("k/after", {"after": True})  # new ops get fresh numbers and still replicate
        store.settle()
        assert store.get("k/after", region="b").value == {"after": True}
        assert _oplog_length(root, "a") == 0
