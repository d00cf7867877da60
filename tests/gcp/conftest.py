"""Session-wide GCP emulators: fake-gcs-server and the Firestore emulator, each started once;
tests are isolated by fresh bucket and collection names."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from google.auth.credentials import AnonymousCredentials
from googleapiclient.discovery import build

from multiregion.errors import Unavailable
from multiregion.testing.emulators.gcp import FakeGcsServer, FirestoreEmulator
from multiregion.testing.fakes.clouddns import CloudDnsFake
from tests.gcp.iam import gcp_iam_calls  # noqa: F401  (the role covers every request)

PROJECT = "multiregion-test"
TIME_SCALE = 0.01
_names = itertools.count()


def fresh_name(prefix: str) -> str:
    """A bucket or collection name no other test in this session uses."""
    return f"{prefix}-{next(_names):04d}"


@pytest.fixture(scope="session")
def fake_gcs() -> Iterator[FakeGcsServer]:
    try:
        server = FakeGcsServer().start()
    except Unavailable as exc:
        pytest.skip(f"fake-gcs-server cannot run here: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[FirestoreEmulator]:
    try:
        emulator = FirestoreEmulator(project=PROJECT).start()
    except Unavailable as exc:
        pytest.skip(f"Firestore emulator not available: {exc}")
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def clouddns_fake() -> Iterator[CloudDnsFake]:
    """One fake for the session; tests are isolated by fresh project ids. Checks run at a
    hundredth of their intervals (a 30 s check every 0.3 s)."""
    with CloudDnsFake(time_scale=TIME_SCALE) as fake:
        yield fake


def fresh_project() -> str:
    return f"proj-{next(_names):06d}"


def raw_apis(fake: CloudDnsFake) -> tuple[Any, Any]:
    """google-api-python-client's dns v1 and compute v1 on the fake, for read-backs."""
    credentials = AnonymousCredentials()
    dns = build(
        "dns",
        "v1",
        credentials=credentials,
        client_options={"api_endpoint": fake.url},
        static_discovery=True,
    )
    compute = build(
        "compute",
        "v1",
        credentials=credentials,
        client_options={"api_endpoint": fake.url + "compute/v1/"},
        static_discovery=True,
    )
    return dns, compute


def create_zone(fake: CloudDnsFake, project: str, name: str, dns_name: str) -> None:
    fake.create_zone(project, name, dns_name)  # the library's, as users' tests make one
