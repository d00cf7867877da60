"""GcsBucket.upload_file against the raw google-cloud-storage client, on fake-gcs-server.

Both upload the same file resumably in 8 MiB chunks; the adapter also reads the file once
more to compute its SHA-256 before uploading.

    python benches/gcp_storage.py [--size-mb 64]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud.storage import Client

from multiregion.providers.gcp.storage import GcsBucket
from multiregion.testing.emulators.gcp import FakeGcsServer

MB = 1024 * 1024
CHUNK = 8 * MB


def main(size_mb: int = 64) -> dict[str, float]:
    with FakeGcsServer() as server, tempfile.TemporaryDirectory() as work:
        source = Path(work) / "source.bin"
        with source.open("wb") as f:
            for _ in range(size_mb):
                f.write(os.urandom(MB))
        bucket = GcsBucket(
            bucket="bench-bucket", project="multiregion-bench", endpoint=server.url, create=True
        )
        raw = Client(
            project="multiregion-bench",
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=server.url),
        ).bucket("bench-bucket")

        started = time.perf_counter()
        bucket.upload_file(source, "adapter.bin")
        figures = {"adapter_mb_per_s": size_mb / (time.perf_counter() - started)}
        started = time.perf_counter()
        raw.blob("raw.bin", chunk_size=CHUNK).upload_from_filename(str(source), checksum="crc32c")
        figures["raw_mb_per_s"] = size_mb / (time.perf_counter() - started)
    for key, rate in figures.items():
        print(f"{key:>18}: {rate:8.1f}")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=64)
    main(parser.parse_args().size_mb)
