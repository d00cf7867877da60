"""A runbook journaled in the replicated store or the bucket resumes from another process, another
store handle and another region, after the first process was killed with SIGKILL mid-step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from multiregion.errors import InvalidInput, NotFound, Unavailable
from multiregion.failover import report
from multiregion.failover.approvals import approve_as
from multiregion.failover.journal import JournalConflict, replay
from multiregion.failover.roles import TECHNICAL_LEAD, hand_over
from multiregion.failover.runbook import Runbook, RunContext, Step, StepResult
from multiregion.failover.shared_journal import BucketJournal, StoreJournal
from multiregion.providers.local.bucket import LocalBucket
from multiregion.providers.local.store import LocalStore
from tests.failover.test_runbook import SCRIPT as RUNBOOK_SCRIPT
from tests.failover.test_runbook import counting, counts, wait_for

REGIONS = ["region-a", "region-b"]
KEY = "runbooks/region-a-outage"

# Runs in region-a: the runbook of test_runbook's crash test with a promote of the store added,
# journaled in the store through its own handle, until killed in "restore data".
SCRIPT = (
    RUNBOOK_SCRIPT.split('if __name__ == "__main__":')[0]
    + """
from multiregion.failover.shared_journal import StoreJournal
from multiregion.providers.local.store import LocalStore


def build_shared(work, store):
    base = build(work)

    def promote(ctx):
        with open(Path(work) / "promote.count", "a") as f:
            f.write("x\\n")
        before = store.write_region
        if before != "region-b":
            token = store.promote("region-b")
            ctx.record_promote(token, from_region=before, reason="region-a is gone")
        return StepResult("region-b takes writes", {"epoch": store.fence().epoch})

    steps = list(base.steps)
    steps.insert(2, Step("promote store", promote, role="technical_lead"))
    return Runbook(base.name, steps, roles=base.roles)


if __name__ == "__main__":
    store_path, work = sys.argv[1], sys.argv[2]
    store = LocalStore(store_path, ["region-a", "region-b"], replication="sync")
    build_shared(work, store).run(StoreJournal(store, "runbooks/region-a-outage"))
"""
)


def test_a_run_killed_in_one_region_resumes_from_another_with_its_own_store_handle(
    tmp_path: Path,
) -> None:
    script = tmp_path / "dr.py"
    script.write_text(SCRIPT)
    store_path = tmp_path / "store"
    LocalStore(store_path, REGIONS, replication="sync").close()  # the deployment's store
    first = subprocess.Popen([sys.executable, str(script), str(store_path), str(tmp_path)])
    try:
        wait_for(tmp_path / "restore.waiting.1")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert first.returncode == -signal.SIGKILL
    assert counts(tmp_path) == {"open": 1, "restore": 1}

    # The other region: another process (this one), another handle on the store.
    store = LocalStore(store_path, REGIONS, replication="sync")
    try:
        journal = StoreJournal(store, KEY)
        before = replay(journal.read())
        assert before.outcome == "interrupted"
        assert before.finished_steps == ("update status",)
        assert before.stopped_at == "restore data"

        namespace: dict[str, object] = {}
        exec(compile(SCRIPT, str(script), "exec"), namespace)
        runbook = namespace["build_shared"](tmp_path, store)  # type: ignore[operator]
        (tmp_path / "release").touch()
        result = runbook.resume(journal)

        assert result.outcome == "finished"
        assert result.journal == f"store:{KEY}"
        assert counts(tmp_path) == {"open": 1, "restore": 2, "promote": 1, "swap": 1, "close": 1}
        assert dict(result.state)["backup"] == "b-42"
        records = journal.read()
        drivers = report.build(records).drivers
        assert len(drivers) == 2  # two processes drove the run, each named in the journal
        assert drivers[1].endswith(f":{os.getpid()}")
        move = next(r for r in records if r.kind == "move")
        assert move.data["to_region"] == "region-b"
        assert move.data["forced"] is False
        # Records are items of the store: written in region-a until the promote, then region-b.
        regions = [item.region for item in store.scan(f"{KEY}/")]
        assert regions[0] == "region-a"
        assert regions[-1] == "region-b"
        assert len(regions) == len(records)
    finally:
        store.close()


def test_a_process_that_lost_its_claim_stops_and_side_records_are_taken_in(
    tmp_path: Path,
) -> None:
    with LocalStore(tmp_path / "store", REGIONS, replication="sync") as store:
        location = StoreJournal(store, KEY)
        first, second = location.open(), location.open()  # two processes, two regions
        first.append("run-started", runbook="r", steps=["s"], roles={"ic": "ana"}, by="a:1")
        # Another process resuming the same run claims the next record first...
        with pytest.raises(JournalConflict, match="record 1 was claimed by another process"):
            second.append("run-started", runbook="r", steps=["s"], by="b:2")
        other = location.open()
        other.append("run-resumed", by="b:2")
        # ... and the first one stops before acting again.
        with pytest.raises(JournalConflict, match=r"run-resumed by b:2"):
            first.append("step-started", step="s")
        # A hand-over written meanwhile is a side record: the driver takes it in and goes on.
        hand_over(location, "ic", "cy", by="ana", reason="end of shift")
        other.append("step-started", step="s")
        assert [r.kind for r in other.records] == [
            "run-started",
            "run-resumed",
            "role-handed-over",
            "step-started",
        ]
        assert replay(location.read()).roles == {"ic": "cy"}


def test_a_hand_over_from_another_handle_reaches_the_steps_that_follow(tmp_path: Path) -> None:
    store_path = tmp_path / "store"
    seen: list[str | None] = []

    def shift_change(ctx: RunContext) -> StepResult:
        seen.append(ctx.person)
        with LocalStore(store_path, REGIONS, replication="sync") as elsewhere:
            hand_over(
                StoreJournal(elsewhere, KEY), TECHNICAL_LEAD, "dee", by="bo", reason="shift ends"
            )
        return StepResult("handed over")

    def after(ctx: RunContext) -> None:
        seen.append(ctx.person)

    with LocalStore(store_path, REGIONS, replication="sync") as store:
        runbook = Runbook(
            "handover",
            [
                Step("first", shift_change, role=TECHNICAL_LEAD),
                Step("second", after, role=TECHNICAL_LEAD),
            ],
            roles={TECHNICAL_LEAD: "bo"},
        )
        assert runbook.run(StoreJournal(store, KEY)).outcome == "finished"
        records = StoreJournal(store, KEY).read()
    assert seen == ["bo", "dee"]
    handed = next(r for r in records if r.kind == "role-handed-over")
    assert handed.data["previous"] == "bo"
    assert handed.data["handed_by"] == "bo"
    assert handed.data["reason"] == "shift ends"
    with (
        LocalStore(store_path, REGIONS, replication="sync") as store,
        pytest.raises(JournalConflict, match="finished run"),
    ):
        hand_over(StoreJournal(store, KEY), TECHNICAL_LEAD, "eve", by="dee", reason="late")


def test_a_bucket_journal_resumes_from_another_bucket_handle(tmp_path: Path) -> None:
    def steps() -> Runbook:
        return Runbook(
            "bucketed",
            [
                Step("one", counting(tmp_path, "one")),
                Step("two", counting(tmp_path, "two"), approval=True),
            ],
        )

    with pytest.raises(NotFound):
        steps().resume(BucketJournal(LocalBucket(tmp_path / "bucket"), "journals/outage"))
    waiting = steps().run(BucketJournal(LocalBucket(tmp_path / "bucket"), "journals/outage"))
    assert waiting.outcome == "awaiting-approval"
    other = BucketJournal(LocalBucket(tmp_path / "bucket"), "journals/outage")
    done = steps().resume(other, approve=approve_as("cy", "restore verified"))
    assert done.outcome == "finished"
    assert counts(tmp_path) == {"one": 1, "two": 1}
    granted = next(r for r in other.read() if r.kind == "approval-granted")
    assert (granted.data["approver"], granted.data["reason"]) == ("cy", "restore verified")
    plan = steps().resume(other, dry_run=True)  # a dry run goes to its own prefix
    assert plan.journal == "bucket:journals/outage.dry-run"


def test_bad_journal_locations_are_refused_naming_the_field(tmp_path: Path) -> None:
    bucket = LocalBucket(tmp_path / "bucket")
    with pytest.raises(InvalidInput, match="journal prefix"):
        BucketJournal(bucket, "/")
    with pytest.raises(InvalidInput, match="bucket"):
        BucketJournal(object(), "journals")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="store"):
        StoreJournal(bucket, KEY)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="journal"):
        Runbook("r", [Step("s", counting(tmp_path, "s"))]).run(42)  # type: ignore[arg-type]
    assert repr(BucketJournal(bucket, "journals/")) == "BucketJournal('bucket:journals')"


def test_a_recovery_from_the_loss_of_the_write_region_journals_in_the_bucket(
    tmp_path: Path,
) -> None:
    """The store journal writes in the store's write region: with that region lost it cannot
    take the run's first record, and says where to keep the journal instead; nothing has run.
    The bucket journal does not hang on the store: the same runbook promotes and finishes."""
    store = LocalStore(tmp_path / "store", REGIONS, replication="sync", witness="witness-c")

    def promote(ctx: RunContext) -> StepResult:
        token = store.promote("region-b")
        ctx.record_promote(token, from_region="region-a", reason="region-a is gone")
        return StepResult("region-b takes writes")

    def recovery() -> Runbook:
        return Runbook("region-a-outage", [Step("promote", promote)])

    store.fail_region("region-a")
    with pytest.raises(Unavailable, match="journal_in") as refused:
        recovery().run(StoreJournal(store, KEY))
    assert "region-a" in str(refused.value)
    assert isinstance(refused.value.__cause__, Unavailable)
    assert store.write_region == "region-a"  # the promote step never ran
    done = recovery().run(BucketJournal(LocalBucket(tmp_path / "bucket"), KEY))
    assert done.outcome == "finished"
    assert store.write_region == "region-b"
    store.close()
