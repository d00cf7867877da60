"""The S3 bucket against moto: the contract, plus what the contract cannot see."""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from multiregion.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Unavailable,
    Unsupported,
)
from multiregion.integrity import METADATA_KEY
from multiregion.providers.aws.s3 import MIB, S3Bucket
from multiregion.testing.contract.bucket import BucketContract
from multiregion.testing.contract.harness import BucketHarness
from multiregion.testing.emulators.aws import CREDENTIALS_ENV, MotoServer
from multiregion.testing.emulators.process import EmulatorProcess, free_port
from multiregion.testing.recording import RecordingProxy
from tests.aws.conftest import FAST


def _corrupter(raw_s3: Any, bucket: str) -> Callable[[str], None]:
    def corrupt(key: str) -> None:
        stored = raw_s3.get_object(Bucket=bucket, Key=key)
        data = bytearray(stored["Body"].read())
        data[len(data) // 2] ^= 0xFF
        raw_s3.put_object(Bucket=bucket, Key=key, Body=bytes(data), Metadata=stored["Metadata"])

    return corrupt


@pytest.fixture(params=["plain", "object-lock"])
def bucket_harness(
    request: pytest.FixtureRequest,
    moto: MotoServer,
    raw: Callable[..., Any],
    fresh_name: Callable[[str], str],
) -> BucketHarness:
    name = fresh_name("bucket")
    bucket = S3Bucket(
        bucket=name,
        create=True,
        retention=request.param == "object-lock",
        part_size=5 * MIB,
        endpoint_url=moto.url,
        **FAST,
    )
    return BucketHarness(bucket=bucket, corrupt=_corrupter(raw("s3"), name), part_size=5 * MIB)


class TestS3BucketContract(BucketContract):
    pass


@pytest.fixture
def plain(moto: MotoServer, fresh_name: Callable[[str], str]) -> S3Bucket:
    return S3Bucket(
        bucket=fresh_name("bucket"), create=True, part_size=5 * MIB, endpoint_url=moto.url, **FAST
    )


def test_checksums_and_metadata_reach_s3(plain: S3Bucket, raw: Callable[..., Any]) -> None:
    data = os.urandom(1000)
    info = plain.put("one", data, metadata={"app": "x"})
    stored = raw("s3").head_object(Bucket=plain.bucket, Key="one", ChecksumMode="ENABLED")
    assert stored["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert stored["Metadata"] == {"app": "x", METADATA_KEY: hashlib.sha256(data).hexdigest()}
    assert stored["ETag"] == info.version


def test_large_uploads_are_multipart_and_leave_no_parts_behind(
    plain: S3Bucket, raw: Callable[..., Any], tmp_path: Path
) -> None:
    source = tmp_path / "big"
    source.write_bytes(os.urandom(11 * MIB))
    info = plain.upload_file(source, "big")
    s3 = raw("s3")
    assert s3.head_object(Bucket=plain.bucket, Key="big")["ETag"].endswith('-3"')
    assert info.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    with pytest.raises(AlreadyExists):
        plain.upload_file(source, "big", create_only=True)
    assert s3.list_multipart_uploads(Bucket=plain.bucket).get("Uploads", []) == []


def test_retention_is_object_lock(
    moto: MotoServer, raw: Callable[..., Any], fresh_name: Callable[[str], str]
) -> None:
    bucket = S3Bucket(
        bucket=fresh_name("bucket"), create=True, retention=True, endpoint_url=moto.url, **FAST
    )
    until = time.time() + 600
    bucket.put("kept", b"x", retain_until=until)
    stored = raw("s3").head_object(Bucket=bucket.bucket, Key="kept")
    assert stored["ObjectLockMode"] == "COMPLIANCE"
    assert abs(stored["ObjectLockRetainUntilDate"].timestamp() - until) <= 1


def test_retention_needs_an_object_lock_bucket(plain: S3Bucket) -> None:
    with pytest.raises(Unsupported):
        plain.put("kept", b"x", retain_until=time.time() + 600)
    with pytest.raises(NotFound):
        plain.head("kept")


def test_a_dead_endpoint_is_unavailable() -> None:
    bucket = S3Bucket(
        bucket="nobody-listens", endpoint_url=f"http://127.0.0.1:{free_port()}", **FAST
    )
    with pytest.raises(Unavailable):
        bucket.head("k")


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"bucket": "No_Such"}, "bucket"),
        ({"region": "Mars"}, "region"),
        ({"part_size": MIB}, "part_size"),
        ({"concurrency": 0}, "concurrency"),
        ({"retention_mode": "forever"}, "retention_mode"),
        ({"endpoint_url": "ftp://127.0.0.1"}, "endpoint_url"),
        ({"endpoint_url": "http://s3.example.com"}, "endpoint_url"),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        S3Bucket(**{"bucket": "valid-bucket", **settings})
    assert excinfo.value.field == field


def test_a_delete_is_one_request_that_still_says_not_found(
    moto: MotoServer, fresh_name: Callable[[str], str]
) -> None:
    """DELETE carries If-Match (the ETag, or * for any): S3 answers 404 for a missing key and
    412 for a stale ETag in the DELETE itself, so no HEAD goes first (counted by a proxy)."""
    with RecordingProxy(moto.url) as proxy:
        bucket = S3Bucket(
            bucket=fresh_name("bucket"),
            create=True,
            endpoint_url=proxy.url,
            **FAST,
        )
        first = bucket.put("k", b"1")
        second = bucket.put("k", b"2")
        proxy.clear()
        with pytest.raises(PreconditionFailed):
            bucket.delete("k", if_match=first.version)
        bucket.delete("k", if_match=second.version)
        with pytest.raises(NotFound):
            bucket.delete("k")
        sent = [(r.method, r.headers.get("if-match"), r.status) for r in proxy.requests]
        assert sent == [
            ("DELETE", first.version, 412),
            ("DELETE", second.version, 204),
            ("DELETE", "*", 404),
        ]


def test_the_project_moto_answers_if_match_star_on_delete_as_s3_does(
    moto: MotoServer, raw: Callable[..., Any], fresh_name: Callable[[str], str]
) -> None:
    """S3 user guide, conditional deletes: ``If-Match: *`` deletes a present object and gives
    404 NoSuchKey for a missing one; an ETag still has to match."""
    s3 = raw("s3")
    name = fresh_name("bucket")
    s3.create_bucket(Bucket=name)
    etag = s3.put_object(Bucket=name, Key="k", Body=b"1")["ETag"]
    with pytest.raises(s3.exceptions.ClientError) as stale:
        s3.delete_object(Bucket=name, Key="k", IfMatch='"0123"')
    assert stale.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3.head_object(Bucket=name, Key="k")["ETag"] == etag
    s3.delete_object(Bucket=name, Key="k", IfMatch="*")
    with pytest.raises(s3.exceptions.ClientError) as gone:
        s3.delete_object(Bucket=name, Key="k", IfMatch="*")
    assert gone.value.response["Error"]["Code"] == "NoSuchKey"


def test_plain_moto_takes_if_match_star_for_a_literal_etag(
    fresh_name: Callable[[str], str],
) -> None:
    """Why ``MotoServer`` runs moto through ``moto_server``: plain moto 5.2.5 answers 412 to
    ``If-Match: *`` on a present key, where S3 deletes it. The adapter says what to set, and
    with ``match_any_on_delete=False`` heads first. If the first refusal stops happening, moto
    was fixed and ``testing/emulators/moto_server.py`` can go."""
    plain_moto = EmulatorProcess(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "{port}"],
        env=CREDENTIALS_ENV,
    )
    with plain_moto, RecordingProxy(plain_moto.url) as proxy:
        settings: dict[str, Any] = {"create": True, "endpoint_url": proxy.url, **FAST}
        star = S3Bucket(bucket=fresh_name("bucket"), **settings)
        stored = star.put("k", b"1")
        with pytest.raises(PreconditionFailed, match="match_any_on_delete=False"):
            star.delete("k")
        assert star.head("k").version == stored.version
        heading = S3Bucket(bucket=star.bucket, match_any_on_delete=False, **settings)
        proxy.clear()
        heading.delete("k")
        assert [r.method for r in proxy.requests] == ["HEAD", "DELETE"]
        assert proxy.requests[1].headers.get("if-match") == stored.version
        with pytest.raises(NotFound):
            heading.head("k")


def test_sse_kms_with_a_customer_managed_key_on_every_write(
    moto: MotoServer, fresh_name: Callable[[str], str], raw: Callable[..., Any], tmp_path: Path
) -> None:
    """PutObject and CreateMultipartUpload carry the SSE-KMS headers of the S3 API reference;
    S3 (moto) reports the key back on the object."""
    key_id = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    with RecordingProxy(moto.url) as proxy:
        bucket = S3Bucket(
            bucket=fresh_name("bucket"),
            create=True,
            part_size=5 * MIB,
            endpoint_url=proxy.url,
            kms_key_id=key_id,
            **FAST,
        )
        bucket.put("small", b"x")
        big = tmp_path / "big"
        big.write_bytes(os.urandom(6 * MIB))
        bucket.upload_file(big, "big")
        writes = [
            r
            for r in proxy.requests
            if r.method in ("PUT", "POST")
            and r.path.endswith(("/small", "/big"))
            and "partNumber" not in r.query
            and "uploadId" not in r.query
        ]
    assert len(writes) == 2  # PutObject, CreateMultipartUpload
    for request in writes:
        assert request.headers["x-amz-server-side-encryption"] == "aws:kms"
        assert request.headers["x-amz-server-side-encryption-aws-kms-key-id"] == key_id
    for key in ("small", "big"):
        stored = raw("s3").head_object(Bucket=bucket.bucket, Key=key)
        assert (stored["ServerSideEncryption"], stored["SSEKMSKeyId"]) == ("aws:kms", key_id)
    assert bucket.get("big") == big.read_bytes()


def test_a_legal_hold_on_every_write_keeps_the_object(
    moto: MotoServer, fresh_name: Callable[[str], str], raw: Callable[..., Any]
) -> None:
    with RecordingProxy(moto.url) as proxy:
        bucket = S3Bucket(
            bucket=fresh_name("bucket"),
            create=True,
            retention=True,
            legal_hold=True,
            endpoint_url=proxy.url,
            **FAST,
        )
        assert bucket.capabilities.legal_hold
        bucket.put("held", b"evidence")
        [put] = [r for r in proxy.requests if r.method == "PUT" and r.path.endswith("/held")]
    assert put.headers["x-amz-object-lock-legal-hold"] == "ON"
    stored = raw("s3").head_object(Bucket=bucket.bucket, Key="held")
    assert stored["ObjectLockLegalHoldStatus"] == "ON"
    with pytest.raises(PreconditionFailed, match="legal hold"):
        bucket.delete("held")
    with pytest.raises(PreconditionFailed, match="legal hold"):
        bucket.put("held", b"other")
    assert bucket.get("held") == b"evidence"
    with pytest.raises(InvalidInput) as info:
        S3Bucket(bucket="valid-bucket", legal_hold=True)
    assert info.value.field == "legal_hold"
