"""FirestoreStore and GcsBucket against the raw Google clients, on their emulators.

Raw sides: ``document(id).set/get/delete`` in a collection beside the adapter's on the same
Firestore emulator, and ``blob.upload_from_string/download_as_bytes/delete`` in the adapter's
bucket on the same fake-gcs-server. Also ``upload_file`` of a file against the raw resumable
upload with the same chunk size. The Firestore emulator comes with the Google Cloud SDK:
without it that part is skipped, and says so. Firestore's lease mode runs ``--lease-n``
operations per round over ``PARITY_ROUNDS`` rounds (``benches.sides``).

    python -m benches.gcp [--n 50] [--lease-n 200] [--batch 200] [--size-mb 32]
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from pathlib import Path
from typing import Any

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage

from benches.sides import bucket_crud, in_modes, mode_sizes, random_file, store_all, upload_file
from multiregion.errors import Unavailable
from multiregion.interfaces import ReplicatedStore
from multiregion.providers.gcp.firestore import FirestoreStore
from multiregion.providers.gcp.storage import GcsBucket
from multiregion.testing.emulators.gcp import FakeGcsServer, FirestoreEmulator, firestore_script

PROJECT = "multiregion-bench"
CHUNK = 8 * 1024 * 1024


class RawFirestore:
    def __init__(self, docs: Any) -> None:
        self.docs = docs

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.docs.document(key).set(value)

    def get(self, key: str) -> Any:
        return self.docs.document(key).get().to_dict()

    def delete(self, key: str) -> None:
        self.docs.document(key).delete()


class RawGcs:
    def __init__(self, bucket: Any) -> None:
        self.bucket = bucket

    def put(self, key: str, data: bytes) -> None:
        self.bucket.blob(key).upload_from_string(data)

    def get(self, key: str) -> bytes:
        data: bytes = self.bucket.blob(key).download_as_bytes()
        return data

    def delete(self, key: str) -> None:
        self.bucket.blob(key).delete()


def firestore_figures(n: int, batch: int, lease_n: int) -> dict[str, Any]:
    try:
        firestore_script()
    except Unavailable as exc:
        print(f"  Firestore skipped: {exc}")
        return {"skipped": str(exc)}
    with FirestoreEmulator(project=PROJECT) as emulator:
        client = firestore.Client(project=PROJECT, credentials=AnonymousCredentials())
        client._emulator_host = emulator.host

        def open_store(**settings: Any) -> FirestoreStore:
            collection = f"bench-{uuid.uuid4().hex[:8]}"
            return FirestoreStore(
                project=PROJECT, collection=collection, emulator_host=emulator.host, **settings
            )

        def measure(mode: str, store: ReplicatedStore) -> dict[str, Any]:
            raw = RawFirestore(client.collection(f"bench-{uuid.uuid4().hex[:8]}-raw"))
            return store_all(
                f"Firestore ({mode})", store, raw, batch=batch, **mode_sizes(mode, n, lease_n)
            )

        figures = in_modes(open_store, measure)
        client.close()
    return figures


def gcs_figures(n: int, size_mb: int) -> dict[str, Any]:
    with FakeGcsServer() as server, tempfile.TemporaryDirectory() as work:
        name = f"bench-{uuid.uuid4().hex[:8]}"
        bucket = GcsBucket(bucket=name, project=PROJECT, endpoint=server.url, create=True)
        client = storage.Client(
            project=PROJECT,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=server.url),
        )
        raw = client.bucket(name)
        figures: dict[str, Any] = bucket_crud("GCS", bucket, RawGcs(raw), n=n)
        source = random_file(Path(work) / "source.bin", size_mb)

        def raw_upload(key: str) -> None:
            raw.blob(key, chunk_size=CHUNK).upload_from_filename(str(source), checksum="crc32c")

        figures.update(upload_file("GCS", bucket, raw_upload, source))
        bucket.close()
        client.close()
    return figures


def main(n: int = 50, batch: int = 200, size_mb: int = 32, lease_n: int = 200) -> dict[str, Any]:
    return {"firestore": firestore_figures(n, batch, lease_n), "gcs": gcs_figures(n, size_mb)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--size-mb", type=int, default=32)
    parser.add_argument("--lease-n", type=int, default=200)
    args = parser.parse_args()
    main(args.n, args.batch, args.size_mb, args.lease_n)
