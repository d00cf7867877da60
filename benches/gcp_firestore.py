"""FirestoreStore.get/put against the raw google-cloud-firestore client, on the emulator.

The adapter runs every write in a transaction that reads the fencing document, so a put costs
about three round trips where a raw ``set`` costs one; this shows what that costs.

    python benches/gcp_firestore.py [--n 300]
"""

from __future__ import annotations

import argparse
import time
import uuid

from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from multiregion.providers.gcp.firestore import FirestoreStore
from multiregion.testing.emulators.gcp import FirestoreEmulator


def _rate(n: int, started: float) -> float:
    return n / (time.perf_counter() - started)


def main(n: int = 300) -> dict[str, float]:
    with FirestoreEmulator() as emulator:
        collection = f"bench-{uuid.uuid4().hex[:8]}"
        store = FirestoreStore(
            project=emulator.project, collection=collection, emulator_host=emulator.host
        )
        raw = firestore.Client(project=emulator.project, credentials=AnonymousCredentials())
        raw._emulator_host = emulator.host
        docs = raw.collection(f"{collection}-raw")
        value = {"name": "bench", "n": 1, "tags": ["a", "b"]}

        started = time.perf_counter()
        for i in range(n):
            store.put(f"k{i}", value)
        figures = {"adapter_put_per_s": _rate(n, started)}
        started = time.perf_counter()
        for i in range(n):
            store.get(f"k{i}")
        figures["adapter_get_per_s"] = _rate(n, started)
        started = time.perf_counter()
        for i in range(n):
            docs.document(f"k{i}").set(value)
        figures["raw_set_per_s"] = _rate(n, started)
        started = time.perf_counter()
        for i in range(n):
            docs.document(f"k{i}").get()
        figures["raw_get_per_s"] = _rate(n, started)
        store.close()
    for key, rate in figures.items():
        print(f"{key:>20}: {rate:8.1f}")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=300)
    main(parser.parse_args().n)
