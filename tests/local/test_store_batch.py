"""``put_many`` on the local store: a few statements per batch, and every write in it as a
single ``put`` would have made it (clock, timestamp, oplog entry, write number)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from multiregion.errors import InvalidInput, NotFound, PreconditionFailed
from multiregion.providers.local import replication as rep
from multiregion.providers.local.store import MAX_BATCH, LocalStore
from multiregion.providers.local.versions import Write, dumps
from tests.local.conftest import Opener, store_opener


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Opener]:
    yield from store_opener(tmp_path, replicate=False)


def _kinds(store: LocalStore, region: str, call: Any) -> list[str]:
    statements: list[str] = []
    conn = store._dbs.get(region)
    conn.set_trace_callback(statements.append)
    call()
    conn.set_trace_callback(None)
    return [" ".join(statement.split()[:2]) for statement in statements]


@pytest.mark.parametrize("regions", [["a"], ["a", "b", "c"]])
def test_a_batch_is_one_transaction_of_a_few_statements_per_thousand_writes(
    open_store: Opener, regions: list[str]
) -> None:
    store = open_store(regions=regions)
    store.put("k1", {"n": 0})
    count = MAX_BATCH + 20  # two transactions
    kinds = _kinds(store, "a", lambda: store.put_many((f"k{n}", {"n": n}) for n in range(count)))
    reserved = kinds.count("UPDATE sqlite_sequence")  # a block of write numbers (one region)
    assert reserved <= (2 if len(regions) == 1 else 0)
    kinds = [kind for kind in kinds if kind != "UPDATE sqlite_sequence"]
    for done in (MAX_BATCH, 20):
        reads = ["SELECT key,"] * _statements(done, 1)
        rows = ["INSERT OR"] * _statements(done, 6)
        logged = [] if len(regions) == 1 else ["INSERT INTO"] * _statements(done, 5)
        each = ["BEGIN IMMEDIATE", "SELECT (SELECT", *reads, *rows, *logged, "COMMIT"]
        assert kinds[: len(each)] == each
        kinds = kinds[len(each) :]
    assert kinds == []


def _statements(rows: int, width: int) -> int:
    """How many statements hold ``rows`` rows of ``width`` parameters."""
    return -(-rows // (rep.PARAMETERS // width))


def _stored(store: LocalStore, key: str) -> Any:
    found = rep.read_version(store._dbs.get(store.write_region), key)
    assert found is not None
    return found


def test_batch_writes_carry_the_clock_and_time_of_what_they_overwrite(
    open_store: Opener,
) -> None:
    store = open_store()
    store.put("kept", {"n": 0})
    store.put("gone", {"n": 0})
    store.delete("gone")
    store.promote("b")  # the batch's writer (b at epoch 2) is not in the clocks it overwrites
    before = {key: _stored(store, key) for key in ("kept", "gone")}
    assert store.put_many({"kept": {"n": 1}, "gone": {"n": 1}, "new": {"n": 1}}) == 3
    conn = store._dbs.get("b")
    logged = conn.execute("SELECT seq, key, write FROM oplog ORDER BY seq").fetchall()
    batch = logged[-3:]
    assert [seq for seq, _, _ in batch] == [batch[0][0] + n for n in range(3)]
    for seq, key, text in batch:
        write = Write.from_json(json.loads(text))
        assert dumps(write.to_json()) == text  # canonical, as a single write logs it
        stored = _stored(store, key)
        assert stored.writes == (write,)
        assert (write.value, write.seq, write.epoch) == ({"n": 1}, seq, 2)
        if key in before:
            old = before[key]
            assert write.clock == {**old.clock, "b/2": seq}  # it has seen the old write
            assert write.updated_at > old.updated_at
        else:
            assert write.clock == {"b/2": seq}
    store.settle()
    digests = {store.content_digest(region) for region in store.regions}
    assert len(digests) == 1
    assert store.get("gone", region="a").value == {"n": 1}


def test_one_region_batches_and_puts_never_reuse_a_write_number(open_store: Opener) -> None:
    first, second = open_store(regions=["a"]), open_store(regions=["a"])
    seen: dict[str, list[int]] = {}
    for n in range(4):
        writer = (first, second)[n % 2]
        keys = ["shared", f"own-{n}", f"more-{n}"]
        writer.put_many({key: {"n": n} for key in keys})
        writer.put("shared", {"n": n, "single": True})
        for key in keys:
            stored = rep.read_version(writer._dbs.get("a"), key)
            assert stored is not None
            (write,) = stored.writes
            seen.setdefault(key, []).append(write.seq)
    numbers = [seq for chain in seen.values() for seq in chain]
    assert len(set(numbers)) == len(numbers)
    assert seen["shared"] == sorted(seen["shared"])
    assert first._dbs.get("a").execute("SELECT count(*) FROM oplog").fetchone() == (0,)


@pytest.mark.parametrize("regions", [["a"], ["a", "b", "c"]])
def test_a_batch_is_fenced_like_a_put(open_store: Opener, regions: list[str]) -> None:
    store, operator = open_store(regions=regions), open_store(regions=regions)
    old = store.fence()
    store.put_many({"k": {"n": 0}, "j": {"n": 0}})
    new = operator.promote(regions[-1])
    with pytest.raises(PreconditionFailed, match="older"):
        store.put_many({"k": {"n": 1}, "j": {"n": 1}}, fence=old)
    assert store.get("k").value == {"n": 0}
    assert store.put_many({"k": {"n": 2}, "j": {"n": 2}}, fence=new) == 2
    assert operator.get("j", region=new.region).version == store.get("j").version
    assert store.get("k").region == new.region


def _nested(depth: int) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for _ in range(depth - 1):
        document = {"d": document}
    return document


def test_the_document_check_walks_only_what_its_text_cannot_clear(open_store: Opener) -> None:
    """The check skips its walk when the JSON text has too few brackets to be too deep: a
    document with many brackets but shallow passes, and one too deep (or cyclic, which never
    encodes) is refused for its depth as before."""
    store = open_store(regions=["a"])
    wide = {"rows": [[n, {"n": [n]}] for n in range(100)], "text": "[[[[{{{{" * 20}
    assert store.put_many({"wide": wide, "deep": _nested(64)}) == 2
    assert store.get("wide").value == wide
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    for bad in (_nested(65), cyclic, {"deep": _nested(70), "bad": object()}):
        with pytest.raises(InvalidInput, match="nested more than 64 levels deep") as refused:
            store.put_many({"ok": {"n": 1}, "bad": bad})
        assert refused.value.field == "value"
    with pytest.raises(NotFound):
        store.get("ok")
