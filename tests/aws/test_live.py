"""The bucket and store contracts against real AWS: opt-in with MULTIREGION_LIVE=aws.

They use the default credential chain and MULTIREGION_AWS_REGION (default us-east-1), create a
fresh bucket or table per test and delete it afterwards. The router and probe contracts are not
run live: they aim health checks at loopback endpoints, which Route 53 refuses.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import boto3
import pytest

from multiregion.providers.aws.dynamodb import DynamoStore
from multiregion.providers.aws.s3 import MIB, S3Bucket
from multiregion.testing.contract.bucket import BucketContract
from multiregion.testing.contract.harness import BucketHarness, StoreHarness
from multiregion.testing.contract.store import StoreContract

pytestmark = pytest.mark.live


def _region() -> str:
    return os.environ.get("MULTIREGION_AWS_REGION", "us-east-1")


@pytest.fixture
def bucket_harness(live_aws: None) -> Iterator[BucketHarness]:
    name = f"multiregion-live-{uuid.uuid4().hex[:16]}"
    bucket = S3Bucket(bucket=name, region=_region(), create=True, part_size=5 * MIB)
    s3 = boto3.client("s3", region_name=_region())

    def corrupt(key: str) -> None:
        stored = s3.get_object(Bucket=name, Key=key)
        data = bytearray(stored["Body"].read())
        data[0] ^= 0xFF
        s3.put_object(Bucket=name, Key=key, Body=bytes(data), Metadata=stored["Metadata"])

    yield BucketHarness(bucket=bucket, corrupt=corrupt, part_size=5 * MIB)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=name, Delete={"Objects": keys})
    s3.delete_bucket(Bucket=name)


@pytest.fixture
def store_harness(live_aws: None) -> Iterator[StoreHarness]:
    table = f"multiregion-live-{uuid.uuid4().hex[:16]}"

    def open_store(create: bool = False) -> DynamoStore:
        return DynamoStore(table=table, regions=[_region()], create=create)

    yield StoreHarness(store=open_store(create=True), reopen=open_store, settle=lambda: None)
    boto3.client("dynamodb", region_name=_region()).delete_table(TableName=table)


class TestLiveS3Bucket(BucketContract):
    pass


class TestLiveDynamoStore(StoreContract):
    pass
