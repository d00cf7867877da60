"""DynamoStore and S3Bucket against raw boto3 on one moto server, and DynamoDB's batch.

Raw sides: PutItem/GetItem/DeleteItem on the adapter's own table (same key attribute, the
document as JSON), and PutObject/GetObject/DeleteObject on the adapter's bucket; both through
clients with the adapter's retry setting (one attempt). moto has no streams here, so the
adapter's fencing (a TransactWriteItems with a ConditionCheck per write) is its only extra.
moto deep-copies every table a transaction names (to roll back), so a transaction costs
more the more items the table holds: the batch comparison runs in a region of its own
and the counts stay small. Lease mode needs no transaction and runs ``--lease-n`` operations
per round over ``PARITY_ROUNDS`` rounds (``benches.sides``).

    python -m benches.aws [--n 20] [--lease-n 40] [--batch 50]
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from typing import Any

import boto3
from botocore.config import Config

from benches.sides import bucket_crud, in_modes, mode_sizes, store_batch, store_crud
from multiregion.interfaces import ReplicatedStore
from multiregion.providers.aws.dynamodb import DynamoStore
from multiregion.providers.aws.s3 import S3Bucket
from multiregion.testing.emulators.aws import CREDENTIALS_ENV, MotoServer

REGION = "us-east-1"
BATCH_REGION = "us-west-2"
ONE_ATTEMPT = {"max_attempts": 1, "connect_timeout_s": 2.0, "read_timeout_s": 20.0}


class RawDynamo:
    def __init__(self, client: Any, table: str) -> None:
        self.client, self.table = client, table

    def put(self, key: str, value: dict[str, Any]) -> None:
        item = {"k": {"S": key}, "d": {"S": json.dumps(value)}, "v": {"S": uuid.uuid4().hex}}
        self.client.put_item(TableName=self.table, Item=item)

    def get(self, key: str) -> Any:
        return json.loads(
            self.client.get_item(TableName=self.table, Key={"k": {"S": key}})["Item"]["d"]["S"]
        )

    def delete(self, key: str) -> None:
        self.client.delete_item(TableName=self.table, Key={"k": {"S": key}})


class RawS3:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client, self.bucket = client, bucket

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)


def main(n: int = 20, batch: int = 50, lease_n: int = 40) -> dict[str, Any]:
    os.environ.update(CREDENTIALS_ENV)  # never the user's real credentials
    figures: dict[str, Any] = {}
    with MotoServer() as moto:
        config = Config(retries={"max_attempts": 1})
        dynamodb = boto3.client("dynamodb", REGION, endpoint_url=moto.url, config=config)
        s3 = boto3.client("s3", REGION, endpoint_url=moto.url, config=config)

        def open_store(**settings: Any) -> DynamoStore:
            table = f"bench-{uuid.uuid4().hex[:8]}"
            return DynamoStore(
                table=table,
                regions=[REGION],
                create=True,
                endpoint_url=moto.url,
                **ONE_ATTEMPT,
                **settings,
            )

        def crud(mode: str, store: ReplicatedStore) -> dict[str, Any]:
            assert isinstance(store, DynamoStore)
            raw = RawDynamo(dynamodb, store.table)
            return store_crud(f"DynamoDB ({mode})", store, raw, **mode_sizes(mode, n, lease_n))

        figures["dynamodb"] = in_modes(open_store, crud)
        store = DynamoStore(
            table=f"bench-{uuid.uuid4().hex[:8]}",
            regions=[BATCH_REGION],
            create=True,
            endpoint_url=moto.url,
            **ONE_ATTEMPT,
        )
        figures["dynamodb"]["batch"] = store_batch("DynamoDB", store, n=batch)
        store.close()
        name = f"bench-{uuid.uuid4().hex[:8]}"
        bucket = S3Bucket(bucket=name, create=True, endpoint_url=moto.url, **ONE_ATTEMPT)
        figures["s3"] = bucket_crud("S3", bucket, RawS3(s3, name), n=n)
        bucket.close()
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--lease-n", type=int, default=40)
    args = parser.parse_args()
    main(args.n, args.batch, args.lease_n)
