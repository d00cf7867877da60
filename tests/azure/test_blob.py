"""What only the Blob Storage adapter promises, read back through the raw azure-storage-blob SDK."""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import ContainerClient

from multiregion import registry
from multiregion.errors import AlreadyExists, AuthError, InvalidInput, Unavailable
from multiregion.providers.azure.blob import SHA256_METADATA, BlobBucket
from multiregion.testing.emulators.azure import AZURITE_ACCOUNT, AZURITE_KEY, Azurite
from multiregion.testing.emulators.process import free_port
from multiregion.testing.recording import RecordingProxy
from tests.azure.conftest import fresh_name
from tests.azure.test_blob_contract import BLOCK


@pytest.fixture
def bucket(azurite: Azurite) -> Iterator[BlobBucket]:
    opened = BlobBucket(
        azurite.account_url,
        fresh_name("bucket-"),
        account_key=AZURITE_KEY,
        block_size=BLOCK,
        max_concurrency=3,
        retries=0,
    )
    yield opened
    opened.close()


@pytest.fixture
def raw(azurite: Azurite, bucket: BlobBucket) -> Iterator[ContainerClient]:
    client = ContainerClient(
        azurite.account_url,
        bucket._container_name,
        credential={"account_name": AZURITE_ACCOUNT, "account_key": AZURITE_KEY},
    )
    yield client
    client.close()


def test_sha256_and_metadata_names_as_azure_stores_them(
    bucket: BlobBucket, raw: ContainerClient
) -> None:
    data = os.urandom(1000)
    bucket.put("k", data, metadata={"backup-id": "7", "2nd": "x"})
    properties = raw.get_blob_client("k").get_blob_properties()
    assert properties.metadata == {
        SHA256_METADATA: hashlib.sha256(data).hexdigest(),
        "backup_id": "7",
        "_2nd": "x",
    }
    assert SHA256_METADATA == "multiregion_sha256"


def test_large_objects_are_committed_as_blocks(bucket: BlobBucket, raw: ContainerClient) -> None:
    data = os.urandom(5 * BLOCK + 10)
    info = bucket.put("big", data)
    committed, uncommitted = raw.get_blob_client("big").get_block_list("all")
    assert [block.size for block in committed] == [BLOCK] * 5 + [10]
    assert uncommitted == []
    assert raw.get_blob_client("big").download_blob().readall() == data
    assert info.sha256 == hashlib.sha256(data).hexdigest()


def test_small_objects_take_one_put(bucket: BlobBucket, raw: ContainerClient) -> None:
    bucket.put("small", b"x" * BLOCK)
    committed, _ = raw.get_blob_client("small").get_block_list("all")
    assert committed == []  # a single Put Blob, no block list


def test_a_refused_commit_leaves_the_object_alone(bucket: BlobBucket, raw: ContainerClient) -> None:
    first = bucket.put("once", b"first")
    # a racing writer: the object appears after the library's early check, before its commit
    blob = raw.get_blob_client("race")
    data = os.urandom(3 * BLOCK)
    pieces = iter([data[:BLOCK], data[BLOCK:]])

    class Racing:
        def read(self, _size: int = -1) -> bytes:
            piece = next(pieces, b"")
            if not piece:
                blob.upload_blob(b"winner", overwrite=True)
            return piece

    with pytest.raises(AlreadyExists):
        bucket.put("race", Racing(), create_only=True)  # type: ignore[arg-type]
    assert blob.download_blob().readall() == b"winner"
    assert bucket.head("once").version == first.version


def test_bad_credentials_are_an_auth_error(azurite: Azurite) -> None:
    wrong = AZURITE_KEY[:-4] + "AAA="
    with pytest.raises(AuthError) as excinfo:
        BlobBucket(azurite.account_url, fresh_name("bucket-"), account_key=wrong, retries=0)
    assert wrong not in str(excinfo.value)


def test_no_service_is_unavailable() -> None:
    url = f"http://127.0.0.1:{free_port()}/{AZURITE_ACCOUNT}"
    with pytest.raises(Unavailable):
        BlobBucket(url, "bucket", account_key=AZURITE_KEY, retries=0, timeout_s=2)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"account_url": "http://blob.example.com/"}, "account_url"),
        ({"container": "Upper"}, "container"),
        ({"container": "a--b"}, "container"),
        ({"block_size": 1024}, "block_size"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"account_key": ""}, "account_key"),
        ({"credential": object(), "account_key": None}, "credential"),
    ],
)
def test_bad_settings_are_refused_before_any_call(settings: dict[str, Any], field: str) -> None:
    base: dict[str, Any] = {
        "account_url": f"http://127.0.0.1:1/{AZURITE_ACCOUNT}",
        "container": "bucket",
        "account_key": AZURITE_KEY,
    }
    base.update(settings)
    url, container = base.pop("account_url"), base.pop("container")
    with pytest.raises(InvalidInput) as excinfo:
        BlobBucket(url, container, **base)
    assert excinfo.value.field == field


def test_the_registry_builds_the_bucket(azurite: Azurite) -> None:
    built = registry.bucket(
        "azure",
        account_url=azurite.account_url,
        container=fresh_name("registry-"),
        account_key=AZURITE_KEY,
    )
    try:
        assert isinstance(built, BlobBucket)
        assert AZURITE_KEY not in repr(built)
        assert built.get(built.put("k", b"v").key) == b"v"
    finally:
        built.close()


def test_a_parallel_download_is_hashed_as_it_lands_and_never_synced(
    bucket: BlobBucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks arrive out of order from three threads; the file is neither read back for its
    hash nor fsynced (an fsync here fails the test), and a damaged copy is still refused."""
    data = os.urandom(7 * BLOCK + 123)
    bucket.put("big", data)

    def no_fsync(fd: int) -> None:
        raise AssertionError("download_file must not fsync")

    monkeypatch.setattr(os, "fsync", no_fsync)
    info = bucket.download_file("big", tmp_path / "big")
    assert (tmp_path / "big").read_bytes() == data
    assert info.sha256 == hashlib.sha256(data).hexdigest()


def _through(proxy: RecordingProxy, **settings: Any) -> BlobBucket:
    """A bucket on Azurite whose requests pass through (and are recorded by) ``proxy``."""
    return BlobBucket(
        f"{proxy.url}/{AZURITE_ACCOUNT}",
        fresh_name("bucket-"),
        account_key=AZURITE_KEY,
        block_size=BLOCK,
        retries=0,
        **settings,
    )


def test_an_encryption_scope_goes_with_every_block_and_commit(azurite: Azurite) -> None:
    """``x-ms-encryption-scope`` on Put Blob, Put Block and Put Block List (Blob REST API);
    Azurite keeps no scopes, so the requests are checked on the wire."""
    with RecordingProxy(azurite.url) as proxy:
        bucket = _through(proxy, encryption_scope="backupscope1")
        proxy.clear()
        bucket.put("small", b"x")
        bucket.put("big", os.urandom(3 * BLOCK + 1))
        writes = [r for r in proxy.requests if r.method == "PUT"]
        bucket.close()
    kinds = sorted({r.query.get("comp", ("blob",))[0] for r in writes})
    assert kinds == ["blob", "block", "blocklist"]
    assert all(r.headers.get("x-ms-encryption-scope") == "backupscope1" for r in writes)


def test_immutability_and_legal_hold_are_sent_as_the_rest_api_says(azurite: Azurite) -> None:
    """Put Blob and Put Block List carry ``x-ms-immutability-policy-until-date`` (RFC 1123),
    ``x-ms-immutability-policy-mode: Unlocked`` and ``x-ms-legal-hold: true``. Azurite does not
    implement immutability, so the contract runs with retention=False there."""
    until = math.floor(time.time()) + 3600
    with RecordingProxy(azurite.url) as proxy:
        bucket = _through(proxy, retention=True, legal_hold=True)
        assert bucket.capabilities.retention
        assert bucket.capabilities.legal_hold
        proxy.clear()
        info = bucket.put("small", b"x", retain_until=until)
        bucket.put("big", os.urandom(2 * BLOCK + 1), retain_until=until)
        commits = [
            r
            for r in proxy.requests
            if r.method == "PUT" and r.query.get("comp", ("blob",))[0] in ("blob", "blocklist")
        ]
        bucket.close()
    assert info.retain_until == until
    assert len(commits) == 2
    for request in commits:
        stated = parsedate_to_datetime(request.headers["x-ms-immutability-policy-until-date"])
        assert stated.timestamp() == until
        assert request.headers["x-ms-immutability-policy-mode"].lower() == "unlocked"
        assert request.headers["x-ms-legal-hold"] == "true"
    with pytest.raises(InvalidInput) as refused:
        BlobBucket(
            azurite.account_url, "c-x", account_key=AZURITE_KEY, create=False, legal_hold=True
        )
    assert refused.value.field == "legal_hold"
