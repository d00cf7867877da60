"""GcsBucket on fake-gcs-server: the bucket contract, read-backs through the raw client, and the
fake's known gaps stated as tests."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from multiregion import integrity
from multiregion.errors import InvalidInput, NotFound, PreconditionFailed, Unsupported
from multiregion.providers.gcp.storage import CHUNK_UNIT, GcsBucket
from multiregion.testing.contract.bucket import BucketContract
from multiregion.testing.contract.harness import BucketHarness
from multiregion.testing.emulators.gcp import FakeGcsServer
from multiregion.testing.recording import RecordingProxy
from tests.gcp.conftest import PROJECT, fresh_name


def raw_client(server: FakeGcsServer) -> storage.Client:
    return storage.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=server.url),
    )


def open_bucket(server: FakeGcsServer, **settings: Any) -> GcsBucket:
    settings.setdefault("endpoint", server.url)
    return GcsBucket(
        bucket=fresh_name("bkt"),
        project=PROJECT,
        create=True,
        chunk_size=CHUNK_UNIT,
        timeout_s=10,
        retry_timeout_s=5,
        conditional_delete=False,
        **settings,
    )


def corrupt(raw: storage.Client, bucket: str, key: str) -> None:
    """Flips the first byte, keeping the stored SHA-256 (GCS recomputes its own CRC32C)."""
    blob = raw.bucket(bucket).get_blob(key, retry=None)
    assert blob is not None
    data = bytearray(blob.download_as_bytes(retry=None))
    data[0] ^= 0xFF
    metadata = dict(blob.metadata or {})
    blob.metadata = metadata
    blob.upload_from_string(bytes(data), retry=None)


@pytest.fixture
def gcs_bucket(fake_gcs: FakeGcsServer) -> GcsBucket:
    return open_bucket(fake_gcs)


@pytest.fixture
def bucket_harness(gcs_bucket: GcsBucket, fake_gcs: FakeGcsServer) -> BucketHarness:
    raw = raw_client(fake_gcs)
    return BucketHarness(
        bucket=gcs_bucket,
        corrupt=lambda key: corrupt(raw, gcs_bucket.bucket, key),
        part_size=CHUNK_UNIT,
    )


class TestGcsBucket(BucketContract):
    pass


def test_the_object_carries_the_sha256_and_crc32c(
    gcs_bucket: GcsBucket, fake_gcs: FakeGcsServer
) -> None:
    data = os.urandom(3 * CHUNK_UNIT + 5)
    info = gcs_bucket.put("raw/check", data, metadata={"kind": "full"})
    blob = raw_client(fake_gcs).bucket(gcs_bucket.bucket).get_blob("raw/check", retry=None)
    assert blob is not None
    assert blob.metadata == {"kind": "full", integrity.METADATA_KEY: integrity.sha256_hex(data)}
    assert str(blob.generation) == info.version
    assert blob.size == len(data)
    assert blob.crc32c


def test_create_only_is_if_generation_match_zero(
    gcs_bucket: GcsBucket, fake_gcs: FakeGcsServer
) -> None:
    raw = raw_client(fake_gcs).bucket(gcs_bucket.bucket)
    raw.blob("taken").upload_from_string(b"by someone else", retry=None)
    with pytest.raises(Exception, match="already exists"):
        gcs_bucket.put("taken", b"mine", create_only=True)
    blob = raw.get_blob("taken", retry=None)
    assert blob is not None
    assert blob.download_as_bytes(retry=None) == b"by someone else"


def test_a_version_that_is_no_generation_matches_nothing(gcs_bucket: GcsBucket) -> None:
    gcs_bucket.put("k", b"x")
    with pytest.raises(PreconditionFailed):
        gcs_bucket.put("k", b"y", if_match="etag-like")
    assert gcs_bucket.get("k") == b"x"


def test_fake_gcs_server_ignores_generation_on_delete(
    gcs_bucket: GcsBucket, fake_gcs: FakeGcsServer
) -> None:
    """Why the harness declares conditional_delete=False: the fake deletes on a stale
    generation, where GCS answers 412. If this starts failing, the fake was fixed."""
    first = gcs_bucket.put("stale", b"1")
    gcs_bucket.put("stale", b"2")
    with pytest.raises(Unsupported):
        gcs_bucket.delete("stale", if_match=first.version)
    raw = raw_client(fake_gcs).bucket(gcs_bucket.bucket)
    raw.delete_blob("stale", if_generation_match=int(first.version), retry=None)
    assert raw.get_blob("stale", retry=None) is None


def test_conditional_delete_is_sent_where_the_service_enforces_it(
    fake_gcs: FakeGcsServer,
) -> None:
    bucket = GcsBucket(
        bucket=fresh_name("bkt"),
        project=PROJECT,
        endpoint=fake_gcs.url,
        create=True,
        retry_timeout_s=0,
    )
    assert bucket.capabilities.conditional_delete
    info = bucket.put("k", b"x")
    bucket.delete("k", if_match=info.version)
    with pytest.raises(NotFound):
        bucket.head("k")


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"bucket": "Upper"}, "bucket"),
        ({"project": "x"}, "project"),
        ({"chunk_size": CHUNK_UNIT + 1}, "chunk_size"),
        ({"endpoint": "http://storage.example.com"}, "endpoint"),
        ({"retry_timeout_s": -1}, "retry_timeout_s"),
        ({"create": "yes"}, "create"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {
        "bucket": "ok-bucket",
        "project": PROJECT,
        "endpoint": "http://127.0.0.1:9",
    }
    with pytest.raises(InvalidInput) as caught:
        GcsBucket(**{**args, **settings})
    assert caught.value.field == field


def test_a_stopped_emulator_is_unavailable() -> None:
    server = FakeGcsServer().start()
    bucket = GcsBucket(
        bucket="gone-bucket", project=PROJECT, endpoint=server.url, create=True, retry_timeout_s=0
    )
    server.stop()
    from multiregion.errors import Unavailable

    with pytest.raises(Unavailable):
        bucket.head("k")


@pytest.mark.parametrize("location", ["US", "EU", "eur4", "us-central1"])
def test_locations_are_taken_as_gcs_spells_them(fake_gcs: FakeGcsServer, location: str) -> None:
    """GCS names multi-regions in capitals; they are accepted as written (fake-gcs-server keeps
    no location, so only the bucket's creation can be seen here)."""
    bucket = open_bucket(fake_gcs, location=location)
    assert raw_client(fake_gcs).get_bucket(bucket.bucket, retry=None).name == bucket.bucket


def test_a_location_that_is_no_location_is_refused(fake_gcs: FakeGcsServer) -> None:
    with pytest.raises(InvalidInput) as info:
        open_bucket(fake_gcs, location="US central")
    assert info.value.field == "location"


def test_every_read_is_one_media_request(fake_gcs: FakeGcsServer, tmp_path: Path) -> None:
    """get, stream and download_file: one GET whose headers carry generation and metadata
    (counted by a recording proxy in front of the emulator)."""
    data = os.urandom(2 * CHUNK_UNIT + 7)
    with RecordingProxy(fake_gcs.url) as proxy:
        bucket = open_bucket(fake_gcs, endpoint=proxy.url)
        info = bucket.put("counted", data, metadata={"kind": "full"})
        for read in (
            lambda: bucket.get("counted"),
            lambda: b"".join(bucket.stream("counted", chunk_size=1000)),
            lambda: bucket.download_file("counted", tmp_path / "out") and b"",
        ):
            proxy.clear()
            got = read()
            assert [(r.method, r.query.get("alt")) for r in proxy.requests] == [("GET", ("media",))]
            assert got in (data, b"")
        assert (tmp_path / "out").read_bytes() == data
        proxy.clear()
        downloaded = bucket.download_file("counted", tmp_path / "again")
        assert (downloaded.size, downloaded.version, downloaded.sha256) == (
            len(data),
            info.version,
            info.sha256,
        )
        assert dict(downloaded.metadata) == {"kind": "full"}
        with pytest.raises(NotFound):
            bucket.get("absent")


KMS_KEY = "projects/backup-project/locations/europe-west1/keyRings/backups/cryptoKeys/cmek"


def test_cmek_names_the_kms_key_on_every_upload(fake_gcs: FakeGcsServer) -> None:
    """objects.insert with ``kmsKeyName`` (JSON API); fake-gcs-server ignores it, so the
    request is checked on the wire."""
    with RecordingProxy(fake_gcs.url) as proxy:
        bucket = open_bucket(fake_gcs, endpoint=proxy.url, kms_key_name=KMS_KEY)
        bucket.put("small", b"x")
        bucket.put("big", os.urandom(2 * CHUNK_UNIT + 1))
        inserts = [r for r in proxy.requests if r.method == "POST" and "/upload/" in r.path]
    assert len(inserts) == 2
    assert all(r.query.get("kmsKeyName") == (KMS_KEY,) for r in inserts)


def test_a_customer_supplied_key_goes_with_every_write_and_read(
    fake_gcs: FakeGcsServer,
) -> None:
    """The X-Goog-Encryption-* headers of GCS's customer-supplied keys, on uploads and on the
    one media read; the key is in no repr."""
    key = os.urandom(32)
    with RecordingProxy(fake_gcs.url) as proxy:
        bucket = open_bucket(fake_gcs, endpoint=proxy.url, encryption_key=key)
        bucket.put("small", b"secret bytes")
        assert bucket.get("small") == b"secret bytes"
        sent = [r for r in proxy.requests if "/o" in r.path or "/upload/" in r.path]
    assert [r.method for r in sent] == ["POST", "GET"]
    digest = base64.b64encode(hashlib.sha256(key).digest()).decode()
    for request in sent:
        assert request.headers["x-goog-encryption-algorithm"] == "AES256"
        assert request.headers["x-goog-encryption-key"] == base64.b64encode(key).decode()
        assert request.headers["x-goog-encryption-key-sha256"] == digest
    assert key.hex() not in repr(bucket)
    assert base64.b64encode(key).decode() not in repr(bucket)


def test_object_retention_is_sent_as_the_api_reference_says(fake_gcs: FakeGcsServer) -> None:
    """objects.insert carries ``retention: {mode, retainUntilTime}`` (JSON API Objects
    resource) on a bucket created with object retention; fake-gcs-server keeps none of it,
    so the contract runs with retention=False there and this checks the request."""
    until = math.floor(time.time()) + 3600
    with RecordingProxy(fake_gcs.url) as proxy:
        bucket = open_bucket(fake_gcs, endpoint=proxy.url, retention=True)
        creates = [r for r in proxy.requests if r.method == "POST" and r.path.endswith("/b")]
        assert [v.lower() for v in creates[0].query["enableObjectRetention"]] == ["true"]
        proxy.clear()
        bucket.put("kept", b"x", retain_until=until)
        [insert] = [r for r in proxy.requests if "/upload/" in r.path]
    found = re.search(rb'"retention":\s*(\{[^}]*\})', insert.body)
    assert found is not None, insert.body[:500]
    retention = json.loads(found.group(1))
    assert retention["mode"] == "Unlocked"
    stated = datetime.datetime.fromisoformat(retention["retainUntilTime"].replace("Z", "+00:00"))
    assert stated.timestamp() == until
    with pytest.raises(InvalidInput):
        bucket.put("late", b"x", retain_until=time.time() - 10)
    with pytest.raises(InvalidInput):
        open_bucket(fake_gcs, kms_key_name=KMS_KEY, encryption_key=os.urandom(32))
    with pytest.raises(InvalidInput):
        open_bucket(fake_gcs, kms_key_name="not-a-key")


@pytest.mark.parametrize(
    ("hold", "field"), [("temporary", "temporaryHold"), ("event-based", "eventBasedHold")]
)
def test_a_hold_is_placed_on_every_write(fake_gcs: FakeGcsServer, hold: str, field: str) -> None:
    """An objects.patch of ``temporaryHold`` or ``eventBasedHold`` (JSON API Objects resource)
    on the generation just written; fake-gcs-server keeps no holds, so the request is checked
    on the wire."""
    with RecordingProxy(fake_gcs.url) as proxy:
        bucket = open_bucket(fake_gcs, endpoint=proxy.url, hold=hold)
        assert bucket.capabilities.legal_hold
        info = bucket.put("held", b"x")
        [patch] = [r for r in proxy.requests if r.method == "PATCH"]
    assert patch.path.endswith("/o/held")
    assert patch.query["ifGenerationMatch"] == (info.version,)
    assert json.loads(patch.body)[field] is True
    with pytest.raises(InvalidInput) as info:
        open_bucket(fake_gcs, hold="forever")
    assert info.value.field == "hold"
