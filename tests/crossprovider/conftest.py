"""Stores and buckets of every provider, for tests that move data from one provider to another.

``open_store("azure")`` and ``open_bucket("gcp")`` give a fresh, empty store or bucket built
through that provider's adapter; a cloud one runs against its emulator, started on loopback the
first time a test asks for it and shared by the rest of the session. Tests are isolated by fresh
container, collection, table and bucket names. A provider whose emulator cannot start here is
skipped with the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from multiregion.errors import Unavailable
from multiregion.interfaces import BackupBucket, ReplicatedStore
from multiregion.testing.emulators.process import EmulatorProcess

PROVIDERS = ("local", "azure", "gcp", "aws")
PROJECT = "multiregion-crossprovider"
COSMOS_DATABASE = "crossprovider"
COSMOS_REGIONS = ("eastus", "westus")
GCS_CHUNK = 256 * 1024
AZURE_BLOCK = 256 * 1024
AWS_ATTEMPTS = 1
"""One attempt against moto, as in tests/aws (moto answers 500 for what it lacks)."""

OpenStore = Callable[[str], ReplicatedStore]
OpenBucket = Callable[[str], BackupBucket]


def pytest_configure(config: pytest.Config) -> None:
    # cosmosdb-server's certificate is self-signed; azure-cosmos skips verification for
    # 127.0.0.1 only, and urllib3 warns about it on every request.
    config.addinivalue_line("filterwarnings", "ignore::urllib3.exceptions.InsecureRequestWarning")


def fresh_name(prefix: str) -> str:
    """Lower-case letters and digits: a valid container, collection, table and bucket name."""
    return f"{prefix}{uuid.uuid4().hex[:16]}"


def _launch(what: str, build: Callable[[], EmulatorProcess]) -> Iterator[Any]:
    """Start an emulator for the session, or skip whatever needs it, saying why."""
    try:
        server = build().start()
    except Unavailable as exc:
        pytest.skip(f"{what} cannot run here: {exc}")
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- emulators


@pytest.fixture(scope="session")
def azurite() -> Iterator[Any]:
    from multiregion.testing.emulators.azure import Azurite

    yield from _launch("Azurite", Azurite)


@pytest.fixture(scope="session")
def cosmos_server() -> Iterator[Any]:
    from multiregion.testing.emulators.azure import CosmosServer

    yield from _launch("cosmosdb-server", CosmosServer)


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[Any]:
    from multiregion.testing.emulators.gcp import FakeGcsServer

    yield from _launch("fake-gcs-server", FakeGcsServer)


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[Any]:
    from multiregion.testing.emulators.gcp import FirestoreEmulator

    yield from _launch("the Firestore emulator", lambda: FirestoreEmulator(project=PROJECT))


@pytest.fixture(scope="session")
def moto() -> Iterator[Any]:
    """moto with boto3's default chain held to dummy credentials for the rest of the session."""
    try:
        from multiregion.testing.emulators.aws import CREDENTIALS_ENV, MotoServer
    except ImportError as exc:
        pytest.skip(f"moto cannot run here: {exc}")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS_ENV.items():
            patch.setenv(name, value)
        yield from _launch("moto", MotoServer)


# --------------------------------------------------------------------------- adapters


def _store(request: pytest.FixtureRequest, provider: str, tmp_path: Path) -> ReplicatedStore:
    if provider == "local":
        from multiregion.providers.local.store import LocalStore

        path = tmp_path / fresh_name("store-")
        return LocalStore(path, ["local-a", "local-b"], replication="sync")
    if provider == "azure":
        from multiregion.providers.azure.cosmos import CosmosStore
        from multiregion.testing.emulators.azure import COSMOS_KEY

        server = request.getfixturevalue("cosmos_server")
        return CosmosStore(
            server.url,
            COSMOS_DATABASE,
            fresh_name("store-"),
            COSMOS_REGIONS,
            key=COSMOS_KEY,
            # one server holds the account; each region's endpoint is given, not discovered
            region_endpoints=dict.fromkeys(COSMOS_REGIONS, server.url),
            timeout_s=5,
            retries=1,
        )
    if provider == "gcp":
        from multiregion.providers.gcp.firestore import FirestoreStore

        emulator = request.getfixturevalue("firestore_emulator")
        return FirestoreStore(
            project=PROJECT,
            collection=fresh_name("coll-"),
            emulator_host=emulator.host,
            timeout_s=10,
            retry_timeout_s=5,
        )
    if provider == "aws":
        from multiregion.providers.aws.dynamodb import DynamoStore

        server = request.getfixturevalue("moto")
        return DynamoStore(
            table=fresh_name("table-"),
            regions=["us-east-1"],
            create=True,
            endpoint_url=server.url,
            max_attempts=AWS_ATTEMPTS,
            connect_timeout_s=2.0,
        )
    raise ValueError(f"unknown provider {provider!r}")


def _bucket(request: pytest.FixtureRequest, provider: str, tmp_path: Path) -> BackupBucket:
    if provider == "local":
        from multiregion.providers.local.bucket import LocalBucket

        return LocalBucket(tmp_path / fresh_name("bucket-"))
    if provider == "azure":
        from multiregion.providers.azure.blob import BlobBucket
        from multiregion.testing.emulators.azure import AZURITE_KEY

        server = request.getfixturevalue("azurite")
        return BlobBucket(
            server.account_url,
            fresh_name("bucket-"),
            account_key=AZURITE_KEY,
            block_size=AZURE_BLOCK,
            retries=0,
        )
    if provider == "gcp":
        from multiregion.providers.gcp.storage import GcsBucket

        server = request.getfixturevalue("fake_gcs")
        return GcsBucket(
            bucket=fresh_name("bucket-"),
            project=PROJECT,
            endpoint=server.url,
            create=True,
            chunk_size=GCS_CHUNK,
            timeout_s=10,
            retry_timeout_s=5,
            conditional_delete=False,  # fake-gcs-server ignores ifGenerationMatch on delete
        )
    if provider == "aws":
        from multiregion.providers.aws.s3 import S3Bucket

        server = request.getfixturevalue("moto")
        return S3Bucket(
            bucket=fresh_name("bucket-"),
            create=True,
            endpoint_url=server.url,
            max_attempts=AWS_ATTEMPTS,
            connect_timeout_s=2.0,
        )
    raise ValueError(f"unknown provider {provider!r}")


@pytest.fixture
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """``open_store(provider)``: a fresh, empty store of that provider, closed after the test."""
    opened: list[ReplicatedStore] = []

    def open_one(provider: str) -> ReplicatedStore:
        store = _store(request, provider, tmp_path)
        opened.append(store)
        assert next(store.scan(""), None) is None, f"a fresh {provider} store holds items"
        return store

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def open_bucket(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenBucket]:
    """``open_bucket(provider)``: a fresh, empty bucket of that provider, closed after the test."""
    opened: list[BackupBucket] = []

    def open_one(provider: str) -> BackupBucket:
        bucket = _bucket(request, provider, tmp_path)
        opened.append(bucket)
        assert next(bucket.list(""), None) is None, f"a fresh {provider} bucket holds objects"
        return bucket

    yield open_one
    for bucket in opened:
        bucket.close()
