"""``put_many`` against a loop of ``put`` on every cloud store, strict and leased, one run.

Each store is opened twice on its emulator (moto, cosmosdb-server, the Firestore emulator):
with the per-write fencing check (strict, the default) and with a write lease (``lease_s``),
where a single ``put`` is one plain request, so the loop it is compared with is as fast as it
gets. The ratio is the batch's items per second over the loop's (above 1: the batch wins).

A Cosmos batch is concurrent upserts, one request per item, as a loop's. On loopback a
request is CPU on both sides (about 1.8 ms in the SDK, 0.9 ms in cosmosdb-server's one
thread, here) and no network wait: a loop pays both per item, a batch at best the larger, so
it cannot pass about twice the loop's rate however it is written. ``--cosmos-latency-ms``
runs Cosmos once more through a ``multiregion.faultproxy`` listener, in a process of its own,
that delays every transfer from the server by that much, as a network does. moto deep-copies
the table for every transaction (strict DynamoDB writes), so that loop slows as the table
grows: DynamoDB runs fewer items.

    python -m benches.store_batches [--n 500] [--dynamodb-n 100] [--cosmos-n 60]
                                    [--cosmos-latency-ms 2]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from urllib3.exceptions import InsecureRequestWarning

from benches.latency_proxy import delayed
from benches.sides import in_modes, store_batch
from multiregion.errors import Unavailable
from multiregion.interfaces import ReplicatedStore
from multiregion.providers.aws.dynamodb import DynamoStore
from multiregion.providers.azure.cosmos import CosmosStore
from multiregion.providers.gcp.firestore import FirestoreStore
from multiregion.testing.emulators.aws import CREDENTIALS_ENV, MotoServer
from multiregion.testing.emulators.azure import COSMOS_KEY, CosmosServer
from multiregion.testing.emulators.gcp import FirestoreEmulator, firestore_script


def _modes(title: str, open_store: Callable[..., ReplicatedStore], n: int) -> dict[str, Any]:
    return in_modes(open_store, lambda mode, store: store_batch(f"{title} ({mode})", store, n=n))


def dynamodb(n: int) -> dict[str, Any]:
    os.environ.update(CREDENTIALS_ENV)  # never the user's real credentials
    with MotoServer() as moto:

        def open_store(**settings: Any) -> DynamoStore:
            return DynamoStore(
                table=f"bench-{uuid.uuid4().hex[:8]}",
                regions=["us-east-1"],
                create=True,
                endpoint_url=moto.url,
                max_attempts=1,
                read_timeout_s=60.0,
                **settings,
            )

        return _modes("DynamoDB", open_store, n)


@contextlib.contextmanager
def _delayed(server: CosmosServer, latency_ms: float) -> Iterator[str]:
    """The server's URL, or with ``latency_ms`` that of a proxy that delays what it sends."""
    if not latency_ms:
        yield server.url
        return
    with delayed(server.port, latency_ms) as port:
        yield f"https://127.0.0.1:{port}/"


def cosmos(n: int, latency_ms: float = 0.0) -> dict[str, Any]:
    warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    logging.getLogger("azure.cosmos.LocationCache").setLevel(logging.ERROR)
    with CosmosServer() as server, _delayed(server, latency_ms) as url:

        def open_store(**settings: Any) -> CosmosStore:
            return CosmosStore(
                url,
                "multiregion-bench",
                f"batch-{uuid.uuid4().hex[:8]}",
                ["eastus"],
                key=COSMOS_KEY,
                region_endpoints={"eastus": url},
                retries=0,
                **settings,
            )

        title = f"Cosmos +{latency_ms:g} ms" if latency_ms else "Cosmos"
        return _modes(title, open_store, n)


def firestore(n: int) -> dict[str, Any]:
    try:
        firestore_script()
    except Unavailable as exc:
        print(f"  Firestore skipped: {exc}")
        return {"skipped": str(exc)}
    with FirestoreEmulator(project="multiregion-bench") as emulator:

        def open_store(**settings: Any) -> FirestoreStore:
            return FirestoreStore(
                project="multiregion-bench",
                collection=f"batch-{uuid.uuid4().hex[:8]}",
                emulator_host=emulator.host,
                **settings,
            )

        return _modes("Firestore", open_store, n)


def main(
    n: int = 500, dynamodb_n: int = 100, cosmos_n: int = 60, cosmos_latency_ms: float = 0.0
) -> dict[str, Any]:
    figures = {"dynamodb": dynamodb(dynamodb_n), "cosmos": cosmos(cosmos_n)}
    if cosmos_latency_ms:
        figures["cosmos_latency"] = cosmos(cosmos_n, cosmos_latency_ms)
    return {**figures, "firestore": firestore(n)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--dynamodb-n", type=int, default=100)
    parser.add_argument("--cosmos-n", type=int, default=60)
    parser.add_argument("--cosmos-latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    main(args.n, args.dynamodb_n, args.cosmos_n, args.cosmos_latency_ms)
