"""The IAM policy check itself: it reads the documented policies and can fail."""

from __future__ import annotations

from multiregion.providers.aws.healthchecks import Route53Probe
from multiregion.testing.emulators.aws import MotoServer
from tests.aws import iam


def test_every_part_has_a_documented_policy() -> None:
    assert set(iam.policies()) == set(iam.PARTS)


def test_a_call_outside_the_policy_is_reported() -> None:
    allowed = iam.policies()
    calls = {("bucket", "s3:GetObject"), ("bucket", "s3:DeleteBucket"), ("probe", "s3:GetObject")}
    assert iam.missing(calls, allowed) == [("bucket", "s3:DeleteBucket"), ("probe", "s3:GetObject")]


def test_operations_map_to_iam_actions() -> None:
    assert iam.needed("s3:HeadObject", {}) == ("s3:GetObject", "s3:GetObjectRetention")
    assert iam.needed("s3:PutObject", {"x-amz-object-lock-mode": "COMPLIANCE"}) == (
        "s3:PutObject",
        "s3:PutObjectRetention",
    )
    assert "dynamodb:ConditionCheckItem" in iam.needed("dynamodb:TransactWriteItems", {})


def test_the_adapters_calls_are_recorded(iam_calls: iam.Recorder, moto: MotoServer) -> None:
    Route53Probe(namespace="iam-check", endpoint_url=moto.url, max_attempts=1).list()
    assert ("probe", "route53:ListHealthChecks") in iam_calls.calls
