"""The shared journal on a cloud adapter, through the real SDK over HTTP (moto on loopback): a
run stopped in one process resumes through another handle, in DynamoDB and in S3, and the
create-only writes that claim each record are the service's own conditions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from multiregion.failover.approvals import approve_as
from multiregion.failover.journal import JournalConflict, replay
from multiregion.failover.runbook import Runbook, Step
from multiregion.failover.shared_journal import BucketJournal, StoreJournal
from multiregion.providers.aws.dynamodb import DynamoStore
from multiregion.providers.aws.s3 import S3Bucket
from multiregion.testing.emulators.aws import CREDENTIALS_ENV, MotoServer
from tests.failover.test_runbook import counting, counts

FAST = {"max_attempts": 1, "connect_timeout_s": 2.0, "read_timeout_s": 20.0}


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS_ENV.items():  # boto3 never looks for real ones
            patch.setenv(name, value)
        server = MotoServer()
        server.start()
        try:
            yield server
        finally:
            server.stop()


def gated(work: Path) -> Runbook:
    return Runbook(
        "cloud-recovery",
        [Step("one", counting(work, "one")), Step("two", counting(work, "two"), approval=True)],
    )


def test_a_run_resumes_through_another_dynamodb_handle(moto: MotoServer, tmp_path: Path) -> None:
    table = f"journal-{uuid.uuid4().hex[:8]}"

    def handle(create: bool = False) -> DynamoStore:
        return DynamoStore(
            table=table, regions=["us-east-1"], create=create, endpoint_url=moto.url, **FAST
        )

    first, second = handle(create=True), handle()
    try:
        assert gated(tmp_path).run(StoreJournal(first, "runbooks/r")).outcome == (
            "awaiting-approval"
        )
        stale = StoreJournal(first, "runbooks/r").open()  # the first region's view, stopped
        resumed = gated(tmp_path).resume(
            StoreJournal(second, "runbooks/r"), approve=approve_as("ana", "us-west-2 is up")
        )
        assert resumed.outcome == "finished"
        assert counts(tmp_path) == {"one": 1, "two": 1}
        # The first region comes back and tries to go on: DynamoDB refuses its claim.
        with pytest.raises(JournalConflict, match="run-resumed"):
            stale.append("run-resumed", by="first:1")
    finally:
        first.close()
        second.close()


def test_a_run_resumes_through_another_s3_handle(moto: MotoServer, tmp_path: Path) -> None:
    name = f"journal-{uuid.uuid4().hex[:8]}"
    first = S3Bucket(bucket=name, create=True, endpoint_url=moto.url, **FAST)
    second = S3Bucket(bucket=name, endpoint_url=moto.url, **FAST)
    assert gated(tmp_path).run(BucketJournal(first, "runbooks/r")).outcome == "awaiting-approval"
    journal = BucketJournal(second, "runbooks/r")
    assert gated(tmp_path).resume(journal, approve=approve_as("bo", "ok")).outcome == "finished"
    assert replay(journal.read()).outcome == "finished"
    assert counts(tmp_path) == {"one": 1, "two": 1}
    racing = [BucketJournal(first, "runbooks/race").open() for _ in range(2)]
    racing[0].append("run-started", runbook="r", steps=["s"], by="a:1")
    with pytest.raises(JournalConflict, match="claimed by another process"):
        racing[1].append("run-started", runbook="r", steps=["s"], by="b:2")
