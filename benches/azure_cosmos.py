"""CosmosStore.get/put against the raw azure-cosmos container client, on cosmosdb-server.

Both talk to one cosmosdb-server on loopback, in the same container (the adapter's: partition
key ``/pk``, last-writer-wins on ``/lww``), with the same client settings. Every adapter put
first reads the store's meta document (the fencing check: epoch and write region), then
upserts, so it costs two round trips where a raw ``upsert_item`` costs one; a get is one
``read_item`` either way, plus hashing the key and building the Item.

cosmosdb-server answers every request with ``Connection: close``, so each one opens a new TLS
connection (and urllib3 loads the CA bundle again): the absolute rates are the emulator's,
far below a real account's; the adapter/raw ratios are the point.

    python benches/azure_cosmos.py [--n 100]
"""

from __future__ import annotations

import argparse
import logging
import time
import uuid
import warnings
from collections.abc import Callable

from azure.cosmos import CosmosClient
from urllib3.exceptions import InsecureRequestWarning

from multiregion.providers.azure.cosmos import CosmosStore
from multiregion.testing.emulators.azure import COSMOS_KEY, CosmosServer

DATABASE = "multiregion-bench"
REGION = "eastus"
WARMUP = 5


def _timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main(n: int = 100) -> dict[str, float]:
    # cosmosdb-server's certificate is self-signed; azure-cosmos skips verification for
    # 127.0.0.1 only, and urllib3 warns about it on every request.
    warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    # The emulator lists no account regions, so the SDK warns that "eastus" matched none.
    logging.getLogger("azure.cosmos.LocationCache").setLevel(logging.ERROR)
    server = CosmosServer()
    server.start()
    try:
        store = CosmosStore(
            server.url,
            DATABASE,
            f"bench-{uuid.uuid4().hex[:8]}",
            [REGION],
            key=COSMOS_KEY,
            region_endpoints={REGION: server.url},
            retries=0,
        )
        # The same settings as the adapter's client, on the adapter's container.
        client = CosmosClient(
            server.url,
            credential=COSMOS_KEY,
            consistency_level="Session",
            enable_endpoint_discovery=False,
            retry_total=0,
        )
        raw = client.get_database_client(DATABASE).get_container_client(store._container_name)
        value = {"name": "bench", "n": 1, "tags": ["a", "b"]}

        def raw_doc(i: int) -> dict[str, object]:
            return {"id": f"raw-{i}", "pk": f"raw-{i}", **value}

        for i in range(WARMUP):  # connections, container properties, caches
            store.put(f"warm{i}", value)
            store.get(f"warm{i}")
            raw.upsert_item(raw_doc(-i - 1))
            raw.read_item(f"raw-{-i - 1}", partition_key=f"raw-{-i - 1}")

        # Adapter and raw calls alternate, so that a change in the machine's load hits both.
        spent = dict.fromkeys(("adapter_put", "raw_upsert", "adapter_get", "raw_read"), 0.0)
        for i in range(n):
            spent["adapter_put"] += _timed(lambda i=i: store.put(f"k{i}", value))
            spent["raw_upsert"] += _timed(lambda i=i: raw.upsert_item(raw_doc(i)))
        for i in range(n):
            spent["adapter_get"] += _timed(lambda i=i: store.get(f"k{i}"))
            spent["raw_read"] += _timed(
                lambda i=i: raw.read_item(f"raw-{i}", partition_key=f"raw-{i}")
            )
        figures = {f"{name}_per_s": n / seconds for name, seconds in spent.items()}
        store.close()
        client.close()
    finally:
        server.stop()

    figures["put_ratio"] = figures["adapter_put_per_s"] / figures["raw_upsert_per_s"]
    figures["get_ratio"] = figures["adapter_get_per_s"] / figures["raw_read_per_s"]
    # A put is a meta read plus an upsert: what two raw round trips in a row would give.
    predicted = 1 / (1 / figures["raw_read_per_s"] + 1 / figures["raw_upsert_per_s"])
    print(f"{n} sequential ops each, adapter and raw interleaved, cosmosdb-server (ops/s)")
    print(f"  put: adapter {figures['adapter_put_per_s']:8.1f}   raw upsert_item ", end="")
    print(f"{figures['raw_upsert_per_s']:8.1f}   adapter/raw {figures['put_ratio']:.2f}")
    print(f"  get: adapter {figures['adapter_get_per_s']:8.1f}   raw read_item   ", end="")
    print(f"{figures['raw_read_per_s']:8.1f}   adapter/raw {figures['get_ratio']:.2f}")
    print(
        "  each adapter put reads the meta document first (fencing check: epoch and write\n"
        "  region) and then upserts: two round trips; a raw read + a raw upsert in a row would\n"
        f"  give {predicted:.1f} puts/s. It also validates and copies the value (JSON), hashes\n"
        "  the key into the id and wraps the value in an envelope (key, region, epoch, lww).\n"
        "  cosmosdb-server closes every connection (a TLS handshake per request): absolute\n"
        "  rates are the emulator's; the ratios are the point."
    )
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100)
    main(parser.parse_args().n)
