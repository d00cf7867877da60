"""The Jepsen-style checker: bounded trials on the local store find nothing, and the same
trials on stores broken on purpose find what each breaks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from multiregion.providers.local import replication
from multiregion.providers.local.store import LocalStore
from multiregion.testing.safety import TrialSettings, run_trial
from multiregion.testing.safety.checker import check
from multiregion.testing.safety.history import History

SETTINGS = {
    "async lww": TrialSettings(lag_s=0.2),
    "sync lww": TrialSettings(replication="sync"),
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
    while settings.processes and not (results[-1].acknowledged and results[-1].promotes):
        if len(results) == 3:
            break
        # Worker processes start slowly on a loaded machine: try another seed.
        results.append(run_trial(settings, tmp_path / str(len(results)), len(results)))
    assert [r.violations for r in results] == [()] * len(results)
    assert sum(r.acknowledged for r in results) > 0
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


def _violations_within(tmp_path: Path, trials: int, wanted: set[str]) -> set[str]:
    """The wanted kinds of violation found by up to ``trials`` seeded trials, stopping at the
    first that finds one: how often a fault lands in the window it needs depends on the
    machine's load, not on the store."""
    for seed in range(trials):
        found = {
            v.kind
            for v in run_trial(TrialSettings(lag_s=0.2), tmp_path / str(seed), seed).violations
        }
        if found & wanted:
            return found & wanted
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
