"""The Jepsen-style checker: bounded trials on the local store find nothing, and the same
trials on stores broken on purpose find what each breaks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from multiregion.model import DivergentWrite, Item
from multiregion.providers.local import replication
from multiregion.providers.local.store import LocalStore
from multiregion.testing.safety import TrialSettings, run_trial
from multiregion.testing.safety.checker import check
from multiregion.testing.safety.history import History
from multiregion.testing.safety.trial import EVIDENCE

SETTINGS = {
    "async lww": TrialSettings(lag_s=0.2),
    "sync lww": TrialSettings(replication="sync"),
    "sync lww, a handle per writer": TrialSettings(replication="sync", handles=True),
    "async merge": TrialSettings(merge=True),
    "witness": TrialSettings(regions=("a", "b"), witness="w", lag_s=0.2),
    "leases": TrialSettings(lease_s=0.05, lag_s=0.2),
    "processes": TrialSettings(processes=True, duration_s=2.5, fault_interval_s=0.15),
}


@pytest.mark.parametrize("name", SETTINGS)
def test_trials_with_faults_find_no_violation(tmp_path: Path, name: str) -> None:
    settings = SETTINGS[name]
    results = []
    for seed in range(1 if settings.processes else 3):
        results.append(run_trial(settings, tmp_path / str(seed), seed))
    while settings.processes and not (results[-1].batches and results[-1].promotes):
        if len(results) == 3:
            break
        # Worker processes start slowly on a loaded machine: try another seed.
        results.append(run_trial(settings, tmp_path / str(len(results)), len(results)))
    assert [r.violations for r in results] == [()] * len(results)
    assert sum(r.acknowledged for r in results) > 0
    assert settings.merge or sum(r.batches for r in results) > 0
    assert sum(r.promotes for r in results) > 0
    assert all(r.faults for r in results)


def test_the_checker_names_each_violation() -> None:
    history = History()
    first = history.invoke("p", "promote", region="b")
    history.complete(first, "ok", epoch=2)
    twin = history.invoke("q", "promote", region="c")
    history.complete(twin, "ok", epoch=2)
    stale = history.invoke("w", "put", key="k1", epoch=1)
    history.complete(stale, "ok", version="v1")
    found = check(
        history, sync=True, merge=False, digests={"a": "x", "b": "y"}, contents={}, divergence=[]
    )
    kinds = sorted(v.kind for v in found)
    assert kinds == ["duplicate epoch", "lost acknowledged write", "not converged", "stale write"]
    found = check(history, sync=False, merge=False, digests={"a": "x"}, contents={}, divergence=[])
    assert sorted(v.kind for v in found) == ["duplicate epoch", "silent loss", "stale write"]


def test_the_checker_holds_each_key_of_a_batch_to_what_it_holds_a_put() -> None:
    history = History()
    promote = history.invoke("p", "promote", region="b")
    history.complete(promote, "ok", epoch=2)
    keys = [history.invoke("w", "put", key=f"k{i}", epoch=1, batch="w/1") for i in range(3)]
    for op in keys:
        history.complete(op, "ok", version="")
    held = Item(key="k0", value={"n": 1}, version="v0", region="a", updated_at=1.0)
    logged = DivergentWrite(
        id="d1",
        key="k1",
        value={"n": 1},
        version="v1",
        epoch=1,
        region="a",
        written_at=1.0,
        found_at=2.0,
    )
    found = check(
        history, sync=False, merge=False, digests={}, contents={"k0": held}, divergence=[logged]
    )
    assert sorted(v.kind for v in found) == ["silent loss"] + ["stale write"] * 3
    assert "k2 (batch w/1)" in next(str(v) for v in found if v.kind == "silent loss")
    found = check(history, sync=True, merge=False, digests={}, contents={"k0": held}, divergence=[])
    assert sorted(v.kind for v in found) == ["lost acknowledged write"] * 2 + ["stale write"] * 3


def _violations_within(
    tmp_path: Path, trials: int, wanted: set[str], settings: TrialSettings | None = None
) -> set[str]:
    """The wanted kinds of violation found by up to ``trials`` seeded trials, stopping at the
    first that finds one: how often a fault lands in the window it needs depends on the
    machine's load, not on the store."""
    settings = settings or TrialSettings(lag_s=0.2)
    for seed in range(trials):
        violations = run_trial(settings, tmp_path / str(seed), seed).violations
        found = {v.kind for v in violations}
        if found & wanted:
            evidence = json.loads((tmp_path / str(seed) / EVIDENCE).read_text())
            assert evidence["violations"] == [str(v) for v in violations]
            assert evidence["seed"] == seed
            assert any(op["kind"] == "put" for op in evidence["history"])
            return found & wanted
        assert not (tmp_path / str(seed) / EVIDENCE).exists()
    return set()


def test_a_store_that_drops_fenced_writes_silently_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replication, "_diverged", lambda *args: None)
    assert "silent loss" in _violations_within(tmp_path, 15, {"silent loss"})


class _UnconfirmedStore(LocalStore):
    """Writes under whatever epoch the write region holds, without asking a majority."""

    def _confirm(self, target: str, fence: Any, states: Any) -> int:
        return int(replication.fencing.read(self._dbs.get(target)).committed.epoch)

    def _recheck(self, state: Any, target: str, epoch: int, fence: Any) -> Any:
        return state.committed, state.committed.epoch


def test_a_write_region_that_does_not_confirm_its_epoch_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("multiregion.testing.safety.trial.LocalStore", _UnconfirmedStore)
    assert _violations_within(tmp_path, 15, {"stale write", "silent loss"})


class _UnfencedBatchStore(LocalStore):
    """Its batches skip the fencing recheck in their transaction: a batch writes under the
    epoch it was admitted on though a promote reached the region since."""

    _batching = False

    def _write_batch(self, *args: Any) -> Any:
        self._batching = True  # under the handle's lock, like every write
        try:
            return super()._write_batch(*args)
        finally:
            self._batching = False

    def _recheck(self, state: Any, target: str, epoch: int, fence: Any) -> Any:
        if self._batching:
            return state.committed, epoch
        return super()._recheck(state, target, epoch, fence)


def test_a_batch_that_skips_the_fencing_recheck_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With leases, a handle goes on writing to the old write region on its lease while a
    promote waits for the lease to run out: only the recheck in the batch's transaction sees
    that the region was promoted away, and without it the region acknowledges a batch that
    the new write region never takes."""
    monkeypatch.setattr("multiregion.testing.safety.trial.LocalStore", _UnfencedBatchStore)
    settings = TrialSettings(
        replication="sync",
        lease_s=0.05,
        batch_share=1.0,
        duration_s=0.4,
        promote_interval_s=0.03,
        settle_s=2.0,
    )
    wanted = {"lost acknowledged write", "not converged", "stale write"}
    assert _violations_within(tmp_path, 25, wanted, settings)
