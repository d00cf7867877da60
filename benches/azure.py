"""CosmosStore and BlobBucket against the raw azure SDK clients, on their emulators.

Raw sides: ``upsert_item/read_item/delete_item`` in the adapter's own container on the same
cosmosdb-server (partition key ``/pk``), with the adapter's client settings; and
``upload_blob/download_blob/delete_blob`` in the adapter's container on the same Azurite,
plus ``upload_file``/``download_file`` of a file against the raw client with the same block
size and concurrency; the download also against the raw one followed by a SHA-256 of the file
(what the adapter verifies, done the plain way). The absolute rates are the emulators', the
ratios are the point; in lease mode ``--lease-n`` operations per round, and the buckets' and
transfers' comparisons, run over ``PARITY_ROUNDS`` rounds (``benches.sides``).

    python -m benches.azure [--n 20] [--lease-n 60] [--batch 50] [--size-mb 32]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import logging
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Any

from azure.cosmos import CosmosClient
from azure.storage.blob import BlobServiceClient
from urllib3.exceptions import InsecureRequestWarning

from benches.latency_proxy import delayed
from benches.measure import compare, show
from benches.sides import (
    PARITY_ROUNDS,
    bucket_crud,
    in_modes,
    mode_sizes,
    random_file,
    store_all,
    store_batch,
    upload_file,
)
from multiregion.interfaces import ReplicatedStore
from multiregion.providers.azure import loopback_tls
from multiregion.providers.azure.blob import BlobBucket
from multiregion.providers.azure.cosmos import CosmosStore
from multiregion.testing.emulators.azure import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    COSMOS_KEY,
    Azurite,
    CosmosServer,
)

DATABASE = "multiregion-bench"
REGION = "eastus"
MB = 1024 * 1024
BLOCK = 8 * MB
CONCURRENCY = 4
LATENCY_MS = 5
"""Added to every answer of cosmosdb-server for the batch measured with a network's wait."""


class RawCosmos:
    def __init__(self, container: Any) -> None:
        self.container = container

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.container.upsert_item({"id": key, "pk": key, **value})

    def get(self, key: str) -> Any:
        return self.container.read_item(key, partition_key=key)

    def delete(self, key: str) -> None:
        self.container.delete_item(key, partition_key=key)


class RawBlob:
    def __init__(self, container: Any) -> None:
        self.container = container

    def put(self, key: str, data: bytes) -> None:
        self.container.upload_blob(key, data, overwrite=True)

    def get(self, key: str) -> bytes:
        data: bytes = self.container.download_blob(key).readall()
        return data

    def delete(self, key: str) -> None:
        self.container.delete_blob(key)


def cosmos_figures(n: int, batch: int, lease_n: int) -> dict[str, Any]:
    # The certificate is self-signed (azure-cosmos skips verification for 127.0.0.1 only, and
    # urllib3 warns each time); the emulator lists no account regions, which the SDK warns of.
    warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    logging.getLogger("azure.cosmos.LocationCache").setLevel(logging.ERROR)
    with CosmosServer() as server:
        client = CosmosClient(
            server.url,
            credential=COSMOS_KEY,
            consistency_level="Session",
            enable_endpoint_discovery=False,
            retry_total=0,
            transport=loopback_tls.transport(),  # as the adapter's: one TLS context
        )
        database = client.get_database_client(DATABASE)

        def open_store(url: str = server.url, **settings: Any) -> CosmosStore:
            return CosmosStore(
                url,
                DATABASE,
                f"bench-{uuid.uuid4().hex[:8]}",
                [REGION],
                key=COSMOS_KEY,
                region_endpoints={REGION: url},
                retries=0,
                **settings,
            )

        def measure(mode: str, store: ReplicatedStore) -> dict[str, Any]:
            assert isinstance(store, CosmosStore)
            raw = RawCosmos(database.get_container_client(store._container_name))
            return store_all(
                f"Cosmos ({mode})", store, raw, batch=batch, **mode_sizes(mode, n, lease_n)
            )

        figures = in_modes(open_store, measure)
        client.close()
        # On loopback a batch cannot pass about twice a loop (docs/performance.md): measured
        # once more with a network's wait on every answer, which its concurrency overlaps.
        with delayed(server.port, LATENCY_MS) as port:
            figures[f"latency_{LATENCY_MS}ms"] = in_modes(
                functools.partial(open_store, f"https://127.0.0.1:{port}/"),
                lambda mode, store: {
                    "batch": store_batch(f"Cosmos +{LATENCY_MS} ms ({mode})", store, n=batch)
                },
            )
    return figures


def blob_figures(n: int, size_mb: int) -> dict[str, Any]:
    with Azurite() as server, tempfile.TemporaryDirectory() as work:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        bucket = BlobBucket(
            server.account_url,
            name,
            account_key=AZURITE_KEY,
            block_size=BLOCK,
            max_concurrency=CONCURRENCY,
            retries=0,
        )
        service = BlobServiceClient(
            server.account_url,
            credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY},
            max_block_size=BLOCK,
            max_single_put_size=BLOCK,
            max_single_get_size=BLOCK,
            max_chunk_get_size=BLOCK,
            retry_total=0,
        )
        container = service.get_container_client(name)
        figures: dict[str, Any] = bucket_crud("Blob", bucket, RawBlob(container), n=n)
        source = random_file(Path(work) / "source.bin", size_mb)

        def raw_upload(key: str) -> None:
            with source.open("rb") as f:
                container.upload_blob(key, f, max_concurrency=CONCURRENCY, overwrite=True)

        def adapter_download(_number: int) -> None:
            bucket.download_file("adapter.bin", Path(work) / "adapter.out")

        def raw_download(_number: int) -> None:
            with (Path(work) / "raw.out").open("wb") as f:
                blob = container.download_blob("raw.bin", max_concurrency=CONCURRENCY)
                blob.readinto(f)

        def raw_verified(_number: int) -> None:
            """The raw download, then the SHA-256 of the file: the adapter's work done plainly."""
            raw_download(_number)
            with (Path(work) / "raw.out").open("rb") as f:
                hashlib.file_digest(f, "sha256")

        figures.update(upload_file("Blob", bucket, raw_upload, source))
        figures["download_file"] = compare(
            {"adapter": adapter_download, "raw": raw_download}, ops=size_mb, rounds=PARITY_ROUNDS
        )
        show(f"Blob download_file {size_mb} MiB (MiB/s)", figures["download_file"])
        figures["download_file_verified"] = compare(
            {"adapter": adapter_download, "raw+sha256": raw_verified},
            ops=size_mb,
            rounds=PARITY_ROUNDS,
        )
        show("Blob download_file vs raw + SHA-256 (MiB/s)", figures["download_file_verified"])
        bucket.close()
        service.close()
    return figures


def main(n: int = 20, batch: int = 50, size_mb: int = 32, lease_n: int = 60) -> dict[str, Any]:
    return {"cosmos": cosmos_figures(n, batch, lease_n), "blob": blob_figures(n, size_mb)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--size-mb", type=int, default=32)
    parser.add_argument("--lease-n", type=int, default=60)
    args = parser.parse_args()
    main(args.n, args.batch, args.size_mb, args.lease_n)
