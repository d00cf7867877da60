"""The pytest plugin: registered through the ``pytest11`` entry point when multiregion is installed.

It only offers fixtures, and a fixture does nothing until a test asks for it by name: no
marker, option or hook touches a pytest run that uses none (this module imports no adapter,
SDK or fake until then). What a user's tests get (docs/testing.md):

- ``multiregion_router``, ``multiregion_store``, ``multiregion_bucket``: the local provider's
  router (serving real DNS on a free loopback port), a two-region store replicating
  synchronously, and a bucket, all in the test's ``tmp_path``;
- ``multiregion_traffic_manager``: the Traffic Manager fake (started once per session) and a
  ``TrafficManagerRouter`` connected to it in a resource group of the test's own;
- ``multiregion_cloud_dns``: the Cloud DNS fake, a managed zone in a project of the test's own,
  and a ``CloudDnsRouter`` connected to it.

``require_live`` is for opt-in tests against real clouds (the contract suite's live runs).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest

if TYPE_CHECKING:
    from multiregion.interfaces import BackupBucket, ReplicatedStore, TrafficRouter
    from multiregion.testing.fakes.clouddns import CloudDnsFake
    from multiregion.testing.fakes.trafficmanager import TrafficManagerFake

LIVE_ENV = "MULTIREGION_LIVE"
REGIONS = ("region-a", "region-b")
"""The regions of ``multiregion_store``."""
FAKE_TIME_SCALE = 0.01
"""The fakes run their health checks at a hundredth of the intervals (a 30 s check: 0.3 s)."""
_names = itertools.count()


def live_enabled(provider: str) -> bool:
    """True when the user opted in to live tests for ``provider`` (``MULTIREGION_LIVE=aws,gcp``)."""
    wanted = {p.strip() for p in os.environ.get(LIVE_ENV, "").split(",") if p.strip()}
    return provider in wanted or "all" in wanted


def require_live(provider: str) -> None:
    """Skip, with the reason shown, unless live tests for ``provider`` were asked for."""
    if not live_enabled(provider):
        pytest.skip(f"live {provider} run not requested: set {LIVE_ENV}={provider} and credentials")


def _fresh(prefix: str) -> str:
    return f"{prefix}{os.getpid()}-{next(_names):04d}"


# --------------------------------------------------------------------------- local provider


@pytest.fixture
def multiregion_router(tmp_path: Path) -> Iterator[TrafficRouter]:
    """A LocalRouter whose state is in tmp_path, answering DNS on a free loopback port
    (``router.dns_port``)."""
    from multiregion.providers.local.router import LocalRouter

    with contextlib.closing(LocalRouter(tmp_path / "multiregion-dns")) as router:
        yield router


@pytest.fixture
def multiregion_store(tmp_path: Path) -> Iterator[ReplicatedStore]:
    """A LocalStore in tmp_path over ``region-a`` and ``region-b``, replicating synchronously
    (a write is in both regions when ``put`` returns)."""
    from multiregion.providers.local.store import LocalStore

    path = tmp_path / "multiregion-store"
    with contextlib.closing(LocalStore(path, REGIONS, replication="sync")) as store:
        yield store


@pytest.fixture
def multiregion_bucket(tmp_path: Path) -> Iterator[BackupBucket]:
    """A LocalBucket in tmp_path."""
    from multiregion.providers.local.bucket import LocalBucket

    with contextlib.closing(LocalBucket(tmp_path / "multiregion-bucket")) as bucket:
        yield bucket


# --------------------------------------------------------------------------- cloud fakes


@attrs.frozen
class TrafficManagerSetup:
    """The Traffic Manager fake, the settings of a resource group of the test's own, and a
    router connected with them (``settings`` also build a ``TrafficManagerProbe``)."""

    fake: TrafficManagerFake
    settings: dict[str, Any] = attrs.field(repr=False)
    router: TrafficRouter


@attrs.frozen
class CloudDnsSetup:
    """The Cloud DNS fake, a managed zone ``zone`` for ``dns_name`` in ``project``, and a
    router connected to it (``settings`` also build a ``ComputeHealthProbe``)."""

    fake: CloudDnsFake
    project: str
    zone: str
    dns_name: str
    settings: dict[str, Any] = attrs.field(repr=False)
    router: TrafficRouter


@pytest.fixture(scope="session")
def _multiregion_traffic_manager_fake() -> Iterator[TrafficManagerFake]:
    pytest.importorskip("azure.mgmt.trafficmanager", reason="needs multiregion[azure]")
    pytest.importorskip("trustme", reason="the fake's TLS certificate needs trustme")
    from multiregion.testing.fakes.trafficmanager import TrafficManagerFake

    with TrafficManagerFake(time_scale=FAKE_TIME_SCALE) as fake:
        yield fake


@pytest.fixture
def multiregion_traffic_manager(
    _multiregion_traffic_manager_fake: TrafficManagerFake,
) -> Iterator[TrafficManagerSetup]:
    """A TrafficManagerRouter on the fake, in a resource group no other test uses."""
    from multiregion.providers.azure.trafficmanager import TrafficManagerRouter

    fake = _multiregion_traffic_manager_fake
    settings: dict[str, Any] = {
        "subscription_id": "00000000-0000-0000-0000-000000000000",
        "resource_group": _fresh("rg-"),
        "credential": fake.credential(),
        "endpoint": fake.url,
        "connection_verify": fake.ca_path,  # the fake's own authority: TLS stays verified
        "retries": 0,
    }
    with contextlib.closing(TrafficManagerRouter(**settings)) as router:
        yield TrafficManagerSetup(fake, settings, router)


@pytest.fixture(scope="session")
def _multiregion_cloud_dns_fake() -> Iterator[CloudDnsFake]:
    pytest.importorskip("googleapiclient", reason="needs multiregion[gcp]")
    from multiregion.testing.fakes.clouddns import CloudDnsFake

    with CloudDnsFake(time_scale=FAKE_TIME_SCALE) as fake:
        yield fake


@pytest.fixture
def multiregion_cloud_dns(_multiregion_cloud_dns_fake: CloudDnsFake) -> Iterator[CloudDnsSetup]:
    """A CloudDnsRouter on the fake, for the zone ``example.test`` in a project of its own."""
    from multiregion.providers.gcp.clouddns import CloudDnsRouter

    fake = _multiregion_cloud_dns_fake
    project, zone, dns_name = _fresh("proj-"), "example-test", "example.test"
    fake.create_zone(project, zone, dns_name)
    host, port = fake.dns_address
    settings: dict[str, Any] = {"project": project, "zone": zone, "endpoint": fake.url}
    router = CloudDnsRouter(**settings, nameserver=f"{host}:{port}", num_retries=0)
    with contextlib.closing(router):
        yield CloudDnsSetup(fake, project, zone, dns_name, settings, router)
