"""LocalStore under the faults it exists for: outages during promote, partitions, promotes that
race a write, failover with unreplicated writes, interleaved multi-writer merges."""

from __future__ import annotations

import contextlib
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from multiregion.errors import PreconditionFailed, Unavailable
from multiregion.model import FencingToken, Item, Merge
from multiregion.providers.local import fencing
from multiregion.providers.local.store import LocalStore
from tests.local.conftest import REGIONS, Opener, store_opener


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Opener]:
    yield from store_opener(tmp_path, replicate=False)


def _digests(store: LocalStore, regions: list[str] = REGIONS) -> set[str]:
    return {store.content_digest(region) for region in regions}


# --------------------------------------------------------------------------- fencing authority


def test_promote_without_a_majority_is_refused(open_store: Any) -> None:
    store = open_store()
    store.fail_region("c")
    token = store.promote("b")
    store.fail_region("a")
    store.fail_region("b")
    store.heal_region("c")
    # c alone holds epoch 1: computing "the next epoch" from it would issue token's epoch again.
    with pytest.raises(Unavailable, match="majority"):
        store.promote("c")
    forced = store.promote("c", force=True)
    assert forced.forced
    assert not token.forced
    store.put("k", {"n": 1}, fence=forced)  # forced is forced: c writes alone


def test_the_write_region_never_changes_without_a_promote(open_store: Any) -> None:
    store = open_store()
    store.fail_region("a")
    store.promote("b")
    store.heal_region("a")
    store.fail_region("b")
    store.fail_region("c")
    # Only a answers, and a still says it is the write region at epoch 1.
    with pytest.raises(Unavailable):
        _ = store.write_region
    with pytest.raises(Unavailable):
        store.put("k", {"n": 1})


def test_a_region_down_during_promote_refuses_the_old_token_after_it_heals(
    open_store: Any,
) -> None:
    store = open_store(multi_writer=True)
    old = store.fence()
    store.fail_region("a")
    new = store.promote("b")
    store.heal_region("a")
    with pytest.raises(PreconditionFailed):
        store.put("k", {"by": "stale"}, fence=old, region="a")
    store.put("k", {"by": "current"}, fence=new, region="a")
    assert store.get("k", region="a").value == {"by": "current"}


def test_a_write_region_cut_off_from_the_majority_stops_writing(open_store: Any) -> None:
    store = open_store(lag_s=60.0)
    store.put("before", {"n": 1})
    store.settle()
    store.put("unreplicated", {"n": 1})
    store.partition(["a"], ["b", "c"])
    with pytest.raises(Unavailable, match="a reaches 1 of 3"):
        store.put("during", {"n": 2})
    token = store.promote("b")
    store.put("during", {"n": 3}, fence=token)
    store.heal_partitions()
    store.settle()
    assert len(_digests(store)) == 1
    assert store.get("before", region="a").value == {"n": 1}
    assert store.get("during", region="a").value == {"n": 3}
    assert [w.key for w in store.divergence()] == ["unreplicated"]


def test_a_witness_keeps_a_two_region_store_promotable(open_store: Any) -> None:
    without = open_store("plain", regions=["a", "b"])
    without.fail_region("a")
    with pytest.raises(Unavailable, match="witness"):
        without.promote("b")

    store = open_store("witnessed", regions=["a", "b"], witness="w")
    assert store.voters == ("a", "b", "w")
    store.fail_region("a")
    token = store.promote("b")
    assert not token.forced
    store.put("k", {"n": 1}, fence=token)
    store.fail_region("w")
    with pytest.raises(Unavailable):  # b alone is no majority: it stops until w or a is back
        store.put("k", {"n": 2}, fence=token)


def test_concurrent_promotes_never_share_an_epoch(open_store: Any) -> None:
    handles = [open_store(), open_store(), open_store()]
    issued: list[FencingToken] = []

    def promote(store: LocalStore, region: str) -> None:
        for _ in range(15):
            with contextlib.suppress(Unavailable):  # lost a race: nothing took effect
                issued.append(store.promote(region))

    threads = [
        threading.Thread(target=promote, args=(store, region))
        for store, region in zip(handles, REGIONS, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    epochs = [token.epoch for token in issued]
    assert len(epochs) == len(set(epochs))
    assert handles[0].fence() == max(issued, key=lambda token: token.epoch)


def test_a_promote_that_died_halfway_is_finished_by_its_region(open_store: Any) -> None:
    store = open_store()
    record = fencing.Record(2, "b", "dead-ballot", 0.0)
    for region in ("b", "c"):
        with sqlite3.connect(store._root / f"{region}.db") as conn:
            fencing.prepare(conn, record)
    item = store.put("k", {"n": 1}, region="b")
    assert item.region == "b"
    assert store.fence() == FencingToken(2, "b")


# --------------------------------------------------------------------------- acknowledged writes


class _PromotedDuringReplication(LocalStore):
    """A store whose first synchronous push is overtaken by another handle's promote."""

    racer: LocalStore | None = None

    def _after_write(self, *args: Any, **kwargs: Any) -> None:
        if self.racer is not None:
            racer, self.racer = self.racer, None
            racer.promote("b")
        super()._after_write(*args, **kwargs)


def test_a_sync_put_overtaken_by_a_promote_raises(tmp_path: Path) -> None:
    settings: dict[str, Any] = {"replication": "sync", "replicate": False}
    with (
        _PromotedDuringReplication(tmp_path / "s", REGIONS, **settings) as store,
        LocalStore(tmp_path / "s", REGIONS, **settings) as other,
    ):
        store.racer = other
        with pytest.raises(PreconditionFailed, match="not acknowledged"):
            store.put("k", {"n": 1})
        other.settle()
        # Not acknowledged, yet not lost either: b's promote took it from a (which it reached)
        # before committing, so every replica has it.
        assert {other.get("k", region=r).value["n"] for r in REGIONS} == {1}
        assert other.divergence() == []


def test_a_switchover_loses_nothing(open_store: Any) -> None:
    store = open_store(lag_s=60.0)
    for n in range(30):
        store.put(f"k/{n:02d}", {"n": n})
    token = store.promote("b")
    assert len(list(store.scan("k/", region="b"))) == 30
    store.put("after", {"n": 1}, fence=token)
    store.settle()
    assert store.divergence() == []
    assert len(_digests(store)) == 1


def test_unreplicated_writes_go_to_the_divergence_log_and_replicas_converge(
    open_store: Any,
) -> None:
    store = open_store(lag_s=60.0)
    store.put("shared", {"v": 0})
    store.settle()
    store.put("lost", {"by": "a"})
    store.put("shared", {"v": "a-late"})
    store.fail_region("a")
    token = store.promote("b")
    store.put("shared", {"v": "b"}, fence=token)
    store.heal_region("a")
    store.settle()
    assert len(_digests(store)) == 1
    diverged = {w.key: w for w in store.divergence()}
    assert set(diverged) == {"lost", "shared"}
    assert diverged["lost"].value == {"by": "a"}
    assert diverged["lost"].region == "a"
    assert diverged["lost"].epoch == 1
    # Failing back to a does not bring its fenced writes back, in a or anywhere.
    back = store.promote("a")
    store.settle()
    assert len(_digests(store)) == 1
    assert store.get("shared", region="c").value == {"v": "b"}
    assert [item.key for item in store.scan("lost")] == []
    # An operator replays one and discards the other.
    replayed = store.reconcile(diverged["lost"].id, "replay", fence=back)
    assert replayed.resolution == "replayed"
    store.reconcile(diverged["shared"].id, "discard")
    store.settle()
    assert store.get("lost", region="b").value == {"by": "a"}
    assert store.divergence() == []
    assert {w.resolution for w in store.divergence(include_resolved=True)} == {
        "replayed",
        "discarded",
    }
    with pytest.raises(PreconditionFailed):
        store.reconcile(diverged["shared"].id, "discard")


# --------------------------------------------------------------------------- convergence


def _union(ours: Item, theirs: Item) -> dict[str, Any]:
    return {"set": sorted(set(ours.value["set"]) | set(theirs.value["set"]))}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_set_union_merge_converges_whatever_the_delivery_order(
    open_store: Any, seed: int
) -> None:
    store = open_store(multi_writer=True, conflict_policy=Merge(_union))
    rng = random.Random(seed)
    added: set[int] = set()
    for n in range(40):
        region = rng.choice(REGIONS)
        try:
            current = store.get("k", region=region).value["set"]
        except Exception:
            current = []
        store.put("k", {"set": sorted({*current, n})}, region=region)
        added.add(n)
        if rng.random() < 0.3:
            store.heal_partitions()
            cut = rng.choice(REGIONS)
            store.partition([cut], [r for r in REGIONS if r != cut])
        store._pull_all(store._dbs, min_age_s=0.0)
    store.heal_partitions()
    store.settle()
    assert len(_digests(store)) == 1
    assert set(store.get("k", region="c").value["set"]) == added


# --------------------------------------------------------------------------- write leases


def test_with_leases_a_cut_off_writer_stops_before_the_new_one_starts(open_store: Any) -> None:
    store = open_store(lease_s=0.3, clock_drift_s=0.05)
    assert store.promote_delay_s == pytest.approx(0.35)
    store.settle()
    store.put("k", {"n": 0})  # confirms a's epoch: a lease until 0.3 s from now
    store.settle()
    store.partition(["a"], ["b", "c"])
    store.put("k", {"n": 1})  # within the lease, no majority asked
    other = open_store(lease_s=0.3, clock_drift_s=0.05)  # another process, on the majority side
    started = time.monotonic()
    token = other.promote("b")
    assert time.monotonic() - started >= 0.35  # promote waited the lease out
    # The lease ran out before the promote returned: the next write asks the voters again
    # and goes to b. The write a took during its lease, concurrent with the promote, did not
    # replicate: it is in the divergence log once the partition heals.
    assert store.put("k", {"n": 2}, fence=token).region == "b"
    store.heal_partitions()
    store.settle()
    assert [(w.key, w.value) for w in store.divergence()] == [("k", {"n": 1})]


def test_with_leases_the_new_write_region_waits_for_the_old_lease(open_store: Any) -> None:
    store = open_store(lease_s=0.5)
    racer = open_store(lease_s=0.5)
    record = fencing.Record(2, "b", "ballot", time.time(), writable_at=time.time() + 0.5)
    for region in REGIONS:
        with sqlite3.connect(store._root / f"{region}.db") as conn:
            fencing.commit(conn, record)
            if region == "b":
                fencing.mark_synced(conn, 2)
    with pytest.raises(Unavailable, match="lease"):
        racer.put("k", {"n": 1})
    time.sleep(0.5)
    assert racer.put("k", {"n": 1}).region == "b"


def test_concurrent_versions_are_listed_as_conflicts_until_a_write_supersedes_them(
    open_store: Any,
) -> None:
    store = open_store(multi_writer=True)
    store.put("k", {"from": "a"}, region="a")
    store.put("k", {"from": "b"}, region="b")
    store.put("calm", {"n": 1}, region="a")
    store.settle()
    (conflict,) = store.conflicts()
    seen, *versions = conflict
    assert seen == store.get("k")  # what a read sees comes first
    assert sorted(v.value["from"] for v in versions) == ["a", "b"]
    store.put("k", {"from": "c"}, region="c")  # has seen both: supersedes them
    store.settle()
    assert store.conflicts() == []


def test_an_older_promote_committed_late_leaves_the_newer_write_region_writable(
    tmp_path: Path,
) -> None:
    """A handle finishing a promote that stalled between its phases commits it after a newer
    promote of the same region went through (found by the safety checker's process trials):
    the region stays synced to the newer epoch, takes writes, and the replicas converge."""
    late = LocalStore(tmp_path, ["a", "b", "c"])
    other = LocalStore(tmp_path, ["a", "b", "c"])
    stalled = fencing.Record(2, "b", "stalled-ballot", time.time())
    assert all(late._prepare(voter, stalled) for voter in "abc")
    token = other.promote("b")
    assert token.epoch == 3
    late._commit("b", stalled, reached=3)
    state = fencing.read(other._dbs.get("b"))
    assert (state.committed.epoch, state.synced) == (3, 3)
    other.put("k", {"v": 1}, fence=token)
    other.settle(timeout_s=5)
    assert all(other.get("k", region=r).value == {"v": 1} for r in "abc")
    late.close()
    other.close()


def test_a_sync_write_is_not_acknowledged_through_a_replica_that_prepared_a_newer_promote(
    tmp_path: Path,
) -> None:
    """Found by ``make bench``'s safety trials (processes, sync): b writes under an epoch that
    excluded c; c's promote prepares a, b's only replica, and catches up from it; b's write
    then reaches a through the synchronous pull. It was acknowledged though c never took it,
    and a's resync from c logged it as divergent: an acknowledged write lost. A replica that
    has prepared a newer epoch no longer acknowledges the old epoch's writes."""
    regions = ["a", "b", "c"]
    writer = LocalStore(tmp_path, regions, replication="sync", replicate=False)
    promoter = LocalStore(tmp_path, regions, replication="sync", replicate=False)
    promoter.fail_region("c")
    token = promoter.promote("b")
    promoter.heal_region("c")
    newer = fencing.Record(token.epoch + 1, "c", "newer-ballot", time.time(), excluded=("b",))
    admit = writer._admit

    def admitted_then_promoted(region: str | None, fence: FencingToken | None) -> Any:
        admitted = admit(region, fence)
        assert promoter._prepare("c", newer)
        assert promoter._prepare("a", newer)
        promoter._catch_up(newer, ["a", "c"])
        return admitted

    writer._admit = admitted_then_promoted  # type: ignore[method-assign]
    with pytest.raises(PreconditionFailed, match="promote"):
        writer.put("k", {"v": 1}, fence=token)
    for voter in ("c", "a"):
        promoter._commit(voter, newer, reached=2)
    promoter.settle(timeout_s=5)
    assert promoter.write_region == "c"
    writer.close()
    promoter.close()
