"""The ReplicatedStore contract: every store provider's behaviour, stated once.

A provider runs it by subclassing ``StoreContract`` in a test module and defining a
``store_harness`` fixture that returns a ``StoreHarness``. What a provider cannot do is read from
its capability flags: the test then asserts ``Unsupported`` instead of skipping. Tests that need
two regions skip, saying so, when the setup has one.
"""

from __future__ import annotations

import inspect
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest

from multiregion.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Unavailable,
    Unsupported,
)
from multiregion.interfaces import ReplicatedStore
from multiregion.model import FencingToken, LastWriterWins
from multiregion.testing.contract.harness import StoreHarness
from multiregion.testing.contract.hooks import hooks_blocked

BAD_KEYS: list[Any] = [5, None, b"bytes", "", "k" * 1025, "tab\there", "nul\x00"]
BAD_VALUES: list[Any] = [
    ["not", "a", "dict"],
    "text",
    {"obj": object()},
    {"nan": float("nan")},
    {1j: "complex key"},
]


def _two_regions(store: ReplicatedStore) -> tuple[str, str]:
    """The write region and another one; skips when the setup has a single region."""
    if len(store.regions) < 2:
        pytest.skip("needs two regions; this setup has one")
    primary = store.write_region
    other = next(region for region in store.regions if region != primary)
    return primary, other


def _field(excinfo: pytest.ExceptionInfo[InvalidInput]) -> str:
    return excinfo.value.field


HOOKS = tuple(
    name
    for name, member in vars(ReplicatedStore).items()
    if name.startswith("_") and not name.startswith("__") and inspect.isfunction(member)
)
"""What a store adapter implements; the interface calls them only with checked arguments."""


class StoreContract:
    """Subclass it and define the ``store_harness`` fixture."""

    # ------------------------------------------------------------------ CRUD and versions

    def test_put_then_get_round_trips(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        value = {"name": "Zoë", "n": 3, "tags": ["a", "b"], "nested": {"ok": True, "f": 1.5}}
        written = store.put("users/1", value)
        assert written.key == "users/1"
        assert written.value == value
        assert isinstance(written.version, str)
        assert written.version
        assert written.region == store.write_region
        read = store.get("users/1")
        assert read.value == value
        assert read.version == written.version

    def test_values_round_trip_exactly(self, store_harness: StoreHarness) -> None:
        """A JSON document comes back as it went in: a float stays a float, a large integer
        keeps every digit, so backups and digests agree across providers."""
        store = store_harness.store
        value = {
            "float": 2.0,
            "tiny": 5e-324,
            "huge": 1e300,
            "int": 2**62 + 1,
            "negative": -(2**53) - 1,
            "text": "añ\u00e9 \U0001f600",
            "empty": {"list": [], "dict": {}, "none": None},
        }
        store.put("exact/1", value)
        got = store.get("exact/1").value
        assert got == value
        assert isinstance(got["float"], float)
        assert isinstance(got["int"], int)
        for item in store.scan("exact/"):
            assert item.value == value
            assert isinstance(item.value["float"], float)

    def test_stored_value_is_a_copy(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        value: dict[str, Any] = {"list": [1]}
        store.put("copy", value)
        value["list"].append(2)
        read = store.get("copy")
        read.value["list"].append(3)
        assert store.get("copy").value == {"list": [1]}

    def test_every_write_gets_a_new_version(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        versions = [store.put("v", {"n": n}).version for n in range(3)]
        assert len(set(versions)) == 3
        assert store.get("v").version == versions[-1]
        assert store.get("v").value == {"n": 2}

    def test_get_missing_raises_not_found(self, store_harness: StoreHarness) -> None:
        with pytest.raises(NotFound):
            store_harness.store.get("missing")

    def test_create_only(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        first = store.put("once", {"n": 1}, create_only=True)
        with pytest.raises(AlreadyExists):
            store.put("once", {"n": 2}, create_only=True)
        assert store.get("once").version == first.version
        assert store.get("once").value == {"n": 1}

    def test_if_version_compare_and_swap(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        first = store.put("cas", {"n": 1})
        second = store.put("cas", {"n": 2}, if_version=first.version)
        assert second.version != first.version
        with pytest.raises(PreconditionFailed):
            store.put("cas", {"n": 3}, if_version=first.version)
        assert store.get("cas").value == {"n": 2}
        with pytest.raises(PreconditionFailed):
            store.put("absent", {"n": 1}, if_version=first.version)
        with pytest.raises(NotFound):
            store.get("absent")

    def test_delete(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        with pytest.raises(NotFound):
            store.delete("gone")
        item = store.put("gone", {"n": 1})
        newer = store.put("gone", {"n": 2})
        with pytest.raises(PreconditionFailed):
            store.delete("gone", if_version=item.version)
        assert store.get("gone").value == {"n": 2}
        store.delete("gone", if_version=newer.version)
        with pytest.raises(NotFound):
            store.get("gone")
        with pytest.raises(NotFound):
            store.delete("gone")
        recreated = store.put("gone", {"n": 3}, create_only=True)
        assert store.get("gone").version == recreated.version

    # ------------------------------------------------------------------ scan and batches

    def test_scan_by_prefix_in_key_order(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        keys = ["a/1", "a/2", "a/10", "a/b/c", "a0", "a", "b/1", "A/1", "a/é"]
        for key in random.sample(keys, len(keys)):
            store.put(key, {"key": key})
        scanned = store.scan("a/")
        assert isinstance(scanned, Iterator)
        items = list(scanned)
        assert [item.key for item in items] == sorted(k for k in keys if k.startswith("a/"))
        assert all(item.value == {"key": item.key} for item in items)
        assert [item.key for item in store.scan()] == sorted(keys)
        assert list(store.scan("nothing/")) == []
        assert list(store.scan("a/1/")) == []

    def test_scan_orders_keys_by_code_point(self, store_harness: StoreHarness) -> None:
        """Key order is Unicode code point order (the order of Python's str), also beyond the
        Basic Multilingual Plane, where UTF-16 code unit order differs."""
        store = store_harness.store
        keys = ["order/a", "order/\uffef", "order/\U0001f600", "order/\ue000", "order/Z"]
        for key in keys:
            store.put(key, {"k": key})
        assert [item.key for item in store.scan("order/")] == sorted(keys)
        assert [item.key for item in store.scan("order/\U0001f600")] == ["order/\U0001f600"]

    def test_scan_skips_deleted_items(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        for key in ("s/1", "s/2", "s/3"):
            store.put(key, {})
        store.delete("s/2")
        assert [item.key for item in store.scan("s/")] == ["s/1", "s/3"]

    def test_put_many_in_several_batches(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        count = 2 * store.capabilities.max_batch + 3
        items = {f"batch/{n:05d}": {"n": n} for n in range(count)}
        assert store.put_many(items) == count
        scanned = list(store.scan("batch/"))
        assert [item.key for item in scanned] == sorted(items)
        assert all(item.value == items[item.key] for item in scanned)
        assert store.put_many([("pair/1", {"n": 1}), ("pair/2", {"n": 2})]) == 2
        assert store.get("pair/2").value == {"n": 2}
        # A key given twice is written once, with its last document.
        assert store.put_many([("rep/a", {"n": 1}), ("rep/b", {"n": 2}), ("rep/a", {"n": 3})]) == 2
        assert [(item.key, item.value) for item in store.scan("rep/")] == [
            ("rep/a", {"n": 3}),
            ("rep/b", {"n": 2}),
        ]
        assert store.put_many([]) == 0

    def test_put_many_validates_everything_before_writing(
        self, store_harness: StoreHarness
    ) -> None:
        store = store_harness.store
        count = store.capabilities.max_batch + 1
        good = [(f"pm/{n:05d}", {"n": n}) for n in range(count)]
        with pytest.raises(InvalidInput) as bad_value:
            store.put_many([*good, ("pm/bad", {"x": float("inf")})])
        assert _field(bad_value) == "value"
        with pytest.raises(InvalidInput) as bad_key:
            store.put_many([*good, ("", {"n": 0})])
        assert _field(bad_key) == "key"
        assert list(store.scan("pm/")) == []

    # ------------------------------------------------------------------ invalid input

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_bad_key_is_refused(self, store_harness: StoreHarness, key: Any) -> None:
        store = store_harness.store
        for call in (
            lambda: store.get(key),
            lambda: store.put(key, {"n": 1}),
            lambda: store.delete(key),
        ):
            with hooks_blocked(store, HOOKS), pytest.raises(InvalidInput) as excinfo:
                call()
            assert _field(excinfo) == "key"

    @pytest.mark.parametrize("value", BAD_VALUES)
    def test_non_json_value_is_refused(self, store_harness: StoreHarness, value: Any) -> None:
        store = store_harness.store
        with hooks_blocked(store, HOOKS), pytest.raises(InvalidInput) as excinfo:
            store.put("bad", value)
        assert _field(excinfo) == "value"
        with pytest.raises(NotFound):
            store.get("bad")

    def test_item_too_large_is_refused(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        limit = store.capabilities.max_item_bytes
        with pytest.raises(InvalidInput) as excinfo:
            store.put("big", {"blob": "x" * limit})
        assert _field(excinfo) == "value"
        with pytest.raises(NotFound):
            store.get("big")
        fits = {"blob": "x" * (limit // 2)}
        assert store.put("big", fits).value == fits

    def test_unknown_region_is_refused(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        for call in (
            lambda: store.get("k", region="nowhere-9"),
            lambda: store.put("k", {}, region="nowhere-9"),
            lambda: store.delete("k", region="nowhere-9"),
            lambda: store.scan(region="nowhere-9"),
            lambda: store.promote("nowhere-9"),
        ):
            with hooks_blocked(store, HOOKS), pytest.raises(InvalidInput) as excinfo:
                call()
            assert _field(excinfo) == "region"

    def test_bad_conditions_are_refused(self, store_harness: StoreHarness) -> None:
        """What the adapters once each checked their own way (or not at all), the interface
        decides for all: ``InvalidInput`` naming the argument, raised by the call itself (a
        scan too, not its first item) before any adapter hook runs, and the store unchanged."""
        store = store_harness.store
        kept = store.put("kept", {"n": 1})
        token = store.fence()
        stranger = FencingToken(token.epoch + 1, "nowhere-9")
        untyped: Any = store  # as a caller without a type checker would call it
        cases: list[tuple[str, Any]] = [
            ("key", lambda: untyped.put("lone\ud800", {"n": 2})),
            ("key", lambda: untyped.get("\udfff")),
            ("key", lambda: untyped.delete("kept\ud800")),
            ("if_version", lambda: untyped.put("k", {}, if_version="")),
            ("if_version", lambda: untyped.put("k", {}, if_version=kept.version, create_only=True)),
            ("if_version", lambda: untyped.delete("kept", if_version="")),
            ("create_only", lambda: untyped.put("new", {"n": 2}, create_only="yes")),
            ("fence", lambda: untyped.put("k", {}, fence=1)),
            ("fence", lambda: untyped.delete("kept", fence="token")),
            ("fence", lambda: untyped.put("kept", {"n": 2}, fence=stranger)),
            ("region", lambda: untyped.delete("kept", region="nowhere-9")),
            ("items", lambda: untyped.put_many(5)),
            ("items[1]", lambda: untyped.put_many([("new", {"n": 2}), "new2"])),
            ("key", lambda: untyped.put_many({"new": {"n": 2}, "\ud800": {"n": 3}})),
            ("fence", lambda: untyped.put_many({"new": {"n": 2}}, fence=stranger)),
            ("prefix", lambda: untyped.scan(7)),
            ("prefix", lambda: untyped.scan("\ud800")),
            ("prefix", lambda: untyped.scan("a\nb")),
            ("force", lambda: untyped.promote(token.region, force="yes")),
        ]
        for field, call in cases:
            with hooks_blocked(store, HOOKS), pytest.raises(InvalidInput) as excinfo:
                call()
            assert _field(excinfo) == field, excinfo.value
        assert [(item.key, item.version) for item in store.scan()] == [("kept", kept.version)]
        assert store.fence() == token

    # ------------------------------------------------------------------ regions and fencing

    def test_regions_and_write_region(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        assert isinstance(store.regions, tuple)
        assert store.regions
        assert store.write_region in store.regions
        token = store.fence()
        assert isinstance(token, FencingToken)
        assert token.region == store.write_region
        assert store.put("fenced", {"n": 1}, fence=token).value == {"n": 1}
        store.delete("fenced", fence=token)

    def test_single_writer_refuses_other_regions(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        _primary, other = _two_regions(store)
        with pytest.raises(PreconditionFailed):
            store.put("k", {"n": 1}, region=other)
        with pytest.raises(NotFound):
            store.get("k")

    def test_promote_fences_the_old_writer(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        old = store.fence()
        target = next((r for r in store.regions if r != old.region), old.region)
        store.put("f", {"by": "old"}, fence=old)
        other = store_harness.reopen()
        new = other.promote(target)
        assert new.epoch > old.epoch
        assert new.region == target
        assert other.fence() == new
        assert store.fence() == new
        assert store.write_region == target
        with pytest.raises(PreconditionFailed):
            store.put("f", {"by": "stale"}, fence=old)
        with pytest.raises(PreconditionFailed):
            store.delete("f", fence=old)
        with pytest.raises(PreconditionFailed):
            store.put_many({"f2": {"by": "stale"}}, fence=old)
        other.put("f", {"by": "new"}, fence=new)
        store_harness.settle()
        assert store.get("f").value == {"by": "new"}
        if target != old.region:
            with pytest.raises(PreconditionFailed):
                store.put("f", {"by": "second writer"}, region=old.region)
        assert store.get("f").value == {"by": "new"}

    def test_promote_while_the_write_region_is_down(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        if store_harness.fail_region is None or store_harness.heal_region is None:
            pytest.skip("this setup cannot make a region unavailable")
        primary, other = _two_regions(store)
        old = store.fence()
        store.put("before", {"n": 1})
        store_harness.settle()
        store_harness.fail_region(primary)
        try:
            with pytest.raises(Unavailable):
                store.get("before", region=primary)
            new = store.promote(other)
            assert new.epoch > old.epoch
            assert store.write_region == other
            assert store.get("before").value == {"n": 1}
            store.put("after", {"n": 2}, fence=new)
            with pytest.raises(PreconditionFailed):
                store.put("after", {"n": 3}, fence=old)
        finally:
            store_harness.heal_region(primary)
        store_harness.settle()
        assert store.write_region == other
        assert store.get("after", region=primary).value == {"n": 2}
        with pytest.raises(PreconditionFailed):
            store.put("after", {"n": 4}, fence=old)

    # ------------------------------------------------------------------ replication

    def test_pinned_reads_see_writes_after_settle(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        store.put("pin", {"n": 1})
        store.put("gone", {"n": 1})
        store.delete("gone")
        store_harness.settle()
        for region in store.regions:
            assert store.get("pin", region=region).value == {"n": 1}
            assert [item.key for item in store.scan(region=region)] == ["pin"]
            with pytest.raises(NotFound):
                store.get("gone", region=region)

    def test_replication_lag(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        store.put("lag", {"n": 1})
        store_harness.settle()
        if not store.capabilities.replication_lag:
            with pytest.raises(Unsupported):
                store.replication_lag(store.regions[0])
            return
        for region in store.regions:
            lag = store.replication_lag(region)
            assert isinstance(lag, float)
            assert lag == 0.0
        with pytest.raises(InvalidInput) as excinfo:
            store.replication_lag("nowhere-9")
        assert _field(excinfo) == "region"

    def test_multi_writer_converges(self, store_harness: StoreHarness) -> None:
        assert store_harness.store.multi_writer is False  # single-writer unless opened so
        if not store_harness.store.capabilities.multi_writer:
            assert store_harness.multi_writer is None
            with pytest.raises(Unsupported):
                store_harness.store.conflicts()
            _primary, other = _two_regions(store_harness.store)
            with pytest.raises(PreconditionFailed):
                store_harness.store.put("k", {"n": 1}, region=other)
            return
        if store_harness.multi_writer is None:
            pytest.fail("capabilities say multi_writer but the harness opens no such store")
        store = store_harness.multi_writer()
        assert store.multi_writer is True
        first, second = _two_regions(store)
        assert store.put("mine", {"from": second}, region=second).region == second
        written: list[dict[str, Any]] = [
            {"from": first},
            {"from": second},
            {"from": first, "again": True},
        ]
        for region, value in zip((first, second, first), written, strict=True):
            store.put("both", value, region=region)
        store_harness.settle()
        seen = [
            [(item.key, item.value, item.version) for item in store.scan(region=region)]
            for region in store.regions
        ]
        assert all(view == seen[0] for view in seen)
        assert [key for key, _, _ in seen[0]] == ["both", "mine"]
        assert seen[0][1][1] == {"from": second}
        if isinstance(store.conflict_policy, LastWriterWins):
            assert seen[0][0][1] in written
        for conflict in store.conflicts():  # only "both" was written concurrently
            assert conflict
            assert {item.key for item in conflict} == {"both"}

    # ------------------------------------------------------------------ safety under faults

    def test_promote_without_a_majority_is_refused(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        if not store.capabilities.partition_safe_fencing:
            pytest.skip(
                "capabilities say the fencing record is replicated like any item: a partition "
                "can show two regions two different write regions"
            )
        if store_harness.fail_region is None or store_harness.heal_region is None:
            pytest.skip("this setup cannot make a region unavailable")
        if len(store.regions) < 3:
            pytest.skip("needs three regions to lose a majority; this setup has fewer")
        survivor, *lost = store.regions
        old = store.fence()
        for region in lost:
            store_harness.fail_region(region)
        try:
            with pytest.raises(Unavailable):
                store.promote(survivor)
            with pytest.raises(Unavailable):
                store.put("k", {"n": 1})
            forced = store.promote(survivor, force=True)
            assert forced.forced
            assert forced.epoch > old.epoch
        finally:
            for region in lost:
                store_harness.heal_region(region)

    def test_a_switchover_loses_nothing(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        if not store.capabilities.switchover:
            pytest.skip("capabilities say promote does not catch up from a reachable writer")
        _primary, other = _two_regions(store)
        written = {f"sw/{n:02d}": store.put(f"sw/{n:02d}", {"n": n}).version for n in range(20)}
        token = store.promote(other)
        assert {item.key: item.version for item in store.scan("sw/")} == written
        store.put("sw/after", {"n": 20}, fence=token)

    def test_divergence_log(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        if not store.capabilities.divergence_log:
            with pytest.raises(Unsupported):
                store.divergence()
            with pytest.raises(Unsupported):
                store.reconcile("any", "discard")
            return
        assert store.divergence() == []
        with pytest.raises(NotFound):
            store.reconcile("nothing:1", "discard")
        with pytest.raises(InvalidInput) as action:
            store.reconcile("nothing:1", "forget")
        assert _field(action) == "action"
        with pytest.raises(InvalidInput) as write_id:
            store.reconcile(1, "discard")  # type: ignore[arg-type]
        assert _field(write_id) == "write_id"
        with pytest.raises(InvalidInput) as resolved:
            store.divergence(include_resolved="yes")  # type: ignore[arg-type]
        assert _field(resolved) == "include_resolved"

    def test_a_promote_outlasts_the_old_writers_lease(self, store_harness: StoreHarness) -> None:
        store = store_harness.store
        if not store.promote_delay_s:
            pytest.skip("writes confirm their epoch one by one: no lease to wait out")
        _primary, other = _two_regions(store)
        old = store.fence()
        store.put("lease", {"by": "old"}, fence=old)
        started = time.monotonic()
        new = store_harness.reopen().promote(other)
        assert time.monotonic() - started >= store.promote_delay_s
        with pytest.raises(PreconditionFailed):
            store.put("lease", {"by": "stale"}, fence=old)
        store.put("lease", {"by": "new"}, fence=new)
        assert store.get("lease").value == {"by": "new"}
