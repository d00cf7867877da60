"""The local store's hot path: what each operation asks SQLite, and that its shortcuts (the
write region's own vote read inside the write's transaction, leases, no oplog in a store of one
region) keep what the slow path guaranteed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from multiregion.errors import PreconditionFailed
from multiregion.providers.local import replication as rep
from multiregion.providers.local.store import LocalStore
from multiregion.providers.local.versions import Write, dumps
from tests.local.conftest import Opener, store_opener


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Opener]:
    yield from store_opener(tmp_path, replicate=False)


def _traced(store: LocalStore) -> dict[str, list[str]]:
    """Every statement each region's connection runs from now on, by region."""
    seen: dict[str, list[str]] = {}
    for region in store.voters:
        statements = seen.setdefault(region, [])
        store._dbs.get(region).set_trace_callback(statements.append)
    return seen


def _kinds(statements: list[str]) -> list[str]:
    return [" ".join(statement.split()[:2]) for statement in statements]


def test_one_region_get_is_one_statement_and_a_write_four(open_store: Any) -> None:
    store = open_store(regions=["a"])
    store.put("k", {"n": 0})
    store.get("k")
    seen = _traced(store)
    assert store.get("k").value == {"n": 0}
    assert _kinds(seen.pop("a")) == ["SELECT (SELECT"]
    for operation in (lambda: store.put("k", {"n": 1}), lambda: store.delete("k")):
        seen = _traced(store)
        operation()
        assert _kinds(seen["a"]) == ["BEGIN IMMEDIATE", "SELECT (SELECT", "INSERT OR", "COMMIT"]


@pytest.mark.parametrize("lease_s", [None, 30.0])
def test_strict_writes_ask_every_other_voter_and_leased_ones_none(
    open_store: Any, lease_s: float | None
) -> None:
    store = open_store(lease_s=lease_s)
    store.put("k", {"n": 0})
    seen = _traced(store)
    store.put("k", {"n": 1})
    assert _kinds(seen["a"]) == [
        "BEGIN IMMEDIATE",
        "SELECT (SELECT",
        "INSERT OR",
        "INSERT INTO",
        "COMMIT",
    ]
    others = [] if lease_s else ["SELECT (SELECT"]
    assert (_kinds(seen["b"]), _kinds(seen["c"])) == (others, others)


def test_the_oplog_holds_each_write_as_its_canonical_json(open_store: Any) -> None:
    store = open_store(regions=["a", "b"])
    store.put("k", {"text": 'é\n"', "n": [1.5, None, True]})
    store.delete("k")
    conn = store._dbs.get("a")
    logged = [text for (text,) in conn.execute("SELECT write FROM oplog ORDER BY seq")]
    assert len(logged) == 2
    for text in logged:
        assert dumps(Write.from_json(json.loads(text)).to_json()) == text
    stored = rep.read_version(conn, "k")
    assert stored is not None
    assert stored.writes == (Write.from_json(json.loads(logged[-1])),)
    (writes,) = conn.execute("SELECT writes FROM items WHERE key = 'k'").fetchone()
    assert set(json.loads(writes)) == {"clock", "epoch"}  # the row holds its document once


def test_a_one_region_store_keeps_no_oplog_and_never_reuses_a_write_number(
    open_store: Any,
) -> None:
    first, second = open_store(regions=["a"]), open_store(regions=["a"])
    numbers = []
    for n in range(6):
        writer = (first, second)[n % 2]
        writer.put("shared", {"n": n})
        writer.put(f"own-{n}", {"n": n})
        for key in ("shared", f"own-{n}"):
            stored = rep.read_version(writer._dbs.get("a"), key)
            assert stored is not None
            assert len(stored.writes) == 1
            numbers.append((key, stored.writes[0].seq))
    assert len({seq for _, seq in numbers}) == len(numbers)
    chain = [seq for key, seq in numbers if key == "shared"]
    assert chain == sorted(chain)
    assert first.get("shared").value == {"n": 5}
    assert first._dbs.get("a").execute("SELECT count(*) FROM oplog").fetchone() == (0,)


@pytest.mark.parametrize("regions", [["a"], ["a", "b", "c"]])
def test_a_handle_that_wrote_before_a_promote_elsewhere_writes_under_the_new_epoch(
    open_store: Any, regions: list[str]
) -> None:
    store, operator = open_store(regions=regions), open_store(regions=regions)
    old = store.fence()
    store.put("k", {"n": 0})
    new = operator.promote(regions[-1])
    with pytest.raises(PreconditionFailed, match="older"):
        store.put("k", {"n": 1}, fence=old)
    assert store.put("k", {"n": 2}).region == new.region
    assert store.put("k", {"n": 3}, fence=new).value == {"n": 3}


class _TrustingStore(LocalStore):
    """Writes on what its last write confirmed, without reading the other voters."""

    def _still_agreed(self, wanted: str | None, fence: Any) -> tuple[str, int] | None:
        if self._confirmed is None:
            return None
        target, record = self._confirmed
        return target, record.epoch


@pytest.mark.parametrize("kind", [LocalStore, _TrustingStore])
def test_a_handle_cut_off_after_its_last_write_learns_of_the_promote_from_the_voters(
    tmp_path: Path, kind: type[LocalStore]
) -> None:
    """The write region itself never hears of the promote: only the other voters' records,
    read before each write, stop the handle (a store that skips them is caught here)."""
    regions = ["a", "b", "c"]
    with (
        kind(tmp_path / "s", regions, replicate=False) as store,
        LocalStore(tmp_path / "s", regions, replicate=False) as operator,
    ):
        store.put("k", {"n": 0})
        operator.partition(["a"], ["b", "c"])
        operator.promote("b")
        if kind is LocalStore:
            with pytest.raises(PreconditionFailed, match="a is not the write region"):
                store.put("k", {"n": 1}, region="a")
        else:
            assert store.put("k", {"n": 1}, region="a").region == "a"  # the stale write
