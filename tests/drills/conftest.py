"""Each provider's router, health source and store for the drill, on its emulators and fakes.

A ``Setup`` is all the drill needs, so nothing provider-specific is left in the test: a router
holding one Failover route over two loopback endpoints (primary first), the health source the
controller reads, and a two-region store. Emulators and fakes start once per session, only for
the providers a run selects, and stop at its end; a provider whose emulator cannot run here is
skipped with the reason shown.

Health comes from the provider's own managed probe where its fake probes (Traffic Manager,
Compute health checks), from the library's ``LocalProbe`` elsewhere. The fakes run the
provider's minimum intervals at a fraction of real time (``time_scale``); the drill measures
real time, so its figures are scaled ones while ``expected_rto_s``/``worst_rto_s`` stay in the
provider's own seconds. Route 53 on moto never probes: there the library's probes find the
outage and DNS moves only when the controller forces the primary out (``resolve()`` honours
overrides); moto has no global tables, so writes never reach the other region.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from multiregion.errors import Unavailable
from multiregion.failover.controller import HealthSource, probe_health
from multiregion.faultproxy import ControlClient, FaultProxy
from multiregion.interfaces import HealthProbe, ReplicatedStore, TrafficRouter
from multiregion.model import Endpoint, Failover, HealthCheck, Route
from multiregion.testing.emulators.azure import CosmosServer, RegionProxy
from multiregion.testing.emulators.gcp import FirestoreEmulator
from multiregion.testing.endpoints import free_port, start_endpoints
from multiregion.testing.fakes.clouddns import CloudDnsFake
from multiregion.testing.fakes.trafficmanager import TrafficManagerFake

AZURE_TIME_SCALE = 0.05
"""Traffic Manager's quickest check (10 s, 5 s timeout) probes every 0.5 s."""
GCP_TIME_SCALE = 0.01
"""Compute's quickest external check (30 s, 10 s timeout) probes every 0.3 s."""
GCP_PROJECT = "multiregion-drills"
TTL = 1
"""Seconds the drill's client keeps an answer, the same on every provider."""

Cleanups = list[Callable[[], Any]]


def pytest_configure(config: pytest.Config) -> None:
    # cosmosdb-server's certificate is self-signed; azure-cosmos skips verification for
    # 127.0.0.1 only, and urllib3 warns about it on every request.
    config.addinivalue_line("filterwarnings", "ignore::urllib3.exceptions.InsecureRequestWarning")


@attrs.frozen
class Setup:
    """One provider ready for a drill."""

    provider: str
    router: TrafficRouter
    route_name: str
    primary: str
    backup: str
    health: HealthSource
    store: ReplicatedStore
    endpoints: list[ProxiedEndpoint]
    replicates: bool = True
    """False where the store's regions never converge (moto has no global tables)."""


def failover_route(
    name: str, endpoints: list[ProxiedEndpoint], regions: tuple[str, str], check: HealthCheck
) -> Route:
    return Route(
        name=name,
        endpoints=[
            Endpoint("primary", regions[0], endpoints[0].address),
            Endpoint("backup", regions[1], endpoints[1].address),
        ],
        policy=Failover("primary", ["backup"]),
        ttl=TTL,
        health_check=check,
    )


@attrs.frozen
class ProxiedEndpoint:
    """A region's service behind the fault proxy: routes and checks use ``address:port`` (the
    proxy), whose listener ``listener`` the drill's faults switch through ``control``."""

    address: str
    port: int
    listener: str
    control: ControlClient


def two_endpoints(cleanups: Cleanups) -> list[ProxiedEndpoint]:
    """Two loopback services, each behind its own listener of one fault proxy, as a region's
    app is in a drill: every provider's probes and the drill's client go through it."""
    endpoints = start_endpoints(2)
    proxy = FaultProxy().start()
    cleanups += [proxy.close, *(e.close for e in endpoints)]
    control = ControlClient(proxy.serve_control())
    front = free_port([e.address for e in endpoints])
    proxied = []
    for number, endpoint in enumerate(endpoints):
        name = f"endpoint-{number}"
        proxy.add_listener(name, (endpoint.address, front), (endpoint.address, endpoint.port))
        proxied.append(ProxiedEndpoint(endpoint.address, front, name, control))
    return proxied


def delete_checks(probe: HealthProbe) -> None:
    for name in probe.list():
        probe.delete(name)


# --------------------------------------------------------------------------- session emulators


@pytest.fixture(scope="session")
def traffic_manager() -> Iterator[TrafficManagerFake]:
    with TrafficManagerFake(time_scale=AZURE_TIME_SCALE) as fake:
        yield fake


@pytest.fixture(scope="session")
def cosmos_regions() -> Iterator[dict[str, RegionProxy]]:
    """One cosmosdb-server behind one proxy per region: an account with two endpoints."""
    try:
        server = CosmosServer()
        server.start()
    except Unavailable as exc:
        pytest.skip(f"cosmosdb-server cannot run here: {exc}")
    proxies = {region: RegionProxy(server.port).start() for region in ("eastus", "westus")}
    yield proxies
    for proxy in proxies.values():
        proxy.stop()
    server.stop()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Any]:
    """One moto server for every region (it keeps each region's resources apart), with boto3
    given dummy credentials so that its default chain never looks for real ones."""
    from multiregion.testing.emulators.aws import CREDENTIALS_ENV, MotoServer

    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS_ENV.items():
            patch.setenv(name, value)
        server = MotoServer()
        try:
            server.start()
        except Unavailable as exc:
            pytest.skip(f"moto cannot run here: {exc}")
        yield server
        server.stop()


@pytest.fixture(scope="session")
def clouddns_fake() -> Iterator[CloudDnsFake]:
    with CloudDnsFake(time_scale=GCP_TIME_SCALE) as fake:
        yield fake


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[FirestoreEmulator]:
    try:
        emulator = FirestoreEmulator(project=GCP_PROJECT)
        emulator.start()
    except Unavailable as exc:
        pytest.skip(f"the Firestore emulator cannot run here: {exc}")
    yield emulator
    emulator.stop()


# --------------------------------------------------------------------------- providers


def _local(request: pytest.FixtureRequest, tmp_path: Path, cleanups: Cleanups) -> Setup:
    from multiregion.providers.local.probe import LocalProbe
    from multiregion.providers.local.router import LocalRouter
    from multiregion.providers.local.store import LocalStore

    endpoints = two_endpoints(cleanups)
    check = HealthCheck(
        "http", endpoints[0].port, interval_s=0.1, timeout_s=0.1, failure_threshold=3
    )
    route = failover_route("app.drill.test", endpoints, ("region-a", "region-b"), check)
    router = LocalRouter(tmp_path / "dns")
    cleanups.append(router.close)
    router.apply(route)
    store = LocalStore(
        tmp_path / "store",
        ["region-a", "region-b"],
        replication="async",
        lag_s=0.1,
        witness="witness",  # region-b alone still reaches a majority of fencing votes
    )
    cleanups.append(store.close)
    probe = LocalProbe()
    cleanups.append(probe.close)
    return Setup(
        "local", router, route.name, "region-a", "region-b",
        probe_health(probe, route), store, endpoints,
    )  # fmt: skip


def _azure(request: pytest.FixtureRequest, tmp_path: Path, cleanups: Cleanups) -> Setup:
    from multiregion.providers.azure.cosmos import CosmosStore
    from multiregion.providers.azure.monitoring import TrafficManagerProbe
    from multiregion.providers.azure.trafficmanager import TrafficManagerRouter
    from multiregion.testing.emulators.azure import COSMOS_KEY

    fake: TrafficManagerFake = request.getfixturevalue("traffic_manager")
    proxies: dict[str, RegionProxy] = request.getfixturevalue("cosmos_regions")
    arm: dict[str, Any] = {
        "subscription_id": "00000000-0000-0000-0000-000000000000",
        "resource_group": f"rg-drill-{uuid.uuid4().hex[:12]}",
        "credential": fake.credential(),
        "endpoint": fake.url,
        "connection_verify": fake.ca_path,
        "retries": 0,
        "timeout_s": 5,
    }
    endpoints = two_endpoints(cleanups)
    # Traffic Manager's quickest check; one tolerated failure keeps a slow probe on a busy
    # machine from failing over before the fault.
    check = HealthCheck("http", endpoints[0].port, interval_s=10, timeout_s=5, failure_threshold=2)
    route = failover_route("app.drill.test", endpoints, ("eastus", "westus"), check)
    router = TrafficManagerRouter(**arm, seed=7)
    cleanups.append(router.close)
    router.apply(route)
    cleanups.append(lambda: router.delete(route.name))  # the fake stops probing
    probe = TrafficManagerProbe(**arm)
    cleanups.append(probe.close)
    cleanups.append(lambda: delete_checks(probe))
    health = probe_health(probe, route)
    store = CosmosStore(
        proxies["eastus"].url,
        "multiregion-drills",
        f"drill-{uuid.uuid4().hex[:16]}",
        ("eastus", "westus"),
        key=COSMOS_KEY,
        region_endpoints={region: proxy.url for region, proxy in proxies.items()},
        timeout_s=2,
        retries=1,
    )
    cleanups.append(store.close)
    return Setup("azure", router, route.name, "eastus", "westus", health, store, endpoints)


def _gcp(request: pytest.FixtureRequest, tmp_path: Path, cleanups: Cleanups) -> Setup:
    from google.auth.credentials import AnonymousCredentials
    from googleapiclient.discovery import build

    from multiregion.providers.gcp.clouddns import CloudDnsRouter
    from multiregion.providers.gcp.firestore import FirestoreStore
    from multiregion.providers.gcp.healthchecks import ComputeHealthProbe

    fake: CloudDnsFake = request.getfixturevalue("clouddns_fake")
    emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
    project, zone = f"drill-{uuid.uuid4().hex[:12]}", "drill-zone"
    dns = build(
        "dns",
        "v1",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": fake.url},
        static_discovery=True,
    )
    body = {"name": zone, "dnsName": "drill.example.test.", "description": "drills"}
    dns.managedZones().create(project=project, body=body).execute()
    endpoints = two_endpoints(cleanups)
    # Compute's quickest check for endpoints outside Google Cloud.
    check = HealthCheck(
        "http", endpoints[0].port, interval_s=30, timeout_s=10, failure_threshold=2,
        expected_status=(200, 200),
    )  # fmt: skip
    regions = ("us-east1", "europe-west1")
    route = failover_route("app.drill.example.test", endpoints, regions, check)
    host, port = fake.dns_address
    router = CloudDnsRouter(
        project=project,
        zone=zone,
        endpoint=fake.url,
        nameserver=f"{host}:{port}",
        num_retries=0,
        timeout_s=10,
    )
    router.apply(route)
    cleanups.append(lambda: router.delete(route.name))  # the fake stops probing
    probe = ComputeHealthProbe(
        project=project, zone=zone, endpoint=fake.url, num_retries=0, timeout_s=10
    )
    cleanups.append(lambda: delete_checks(probe))
    health = probe_health(probe, route)
    store = FirestoreStore(
        project=GCP_PROJECT,
        collection=f"drill-{uuid.uuid4().hex[:12]}",
        regions=regions,
        emulator_host=emulator.host,
        timeout_s=10,
        retry_timeout_s=5,
    )
    cleanups.append(store.close)
    return Setup("gcp", router, route.name, *regions, health, store, endpoints)


def _aws(request: pytest.FixtureRequest, tmp_path: Path, cleanups: Cleanups) -> Setup:
    import boto3

    from multiregion.providers.aws.dynamodb import DynamoStore
    from multiregion.providers.aws.route53 import Route53Router
    from multiregion.providers.local.probe import LocalProbe

    moto = request.getfixturevalue("moto_server")
    fast: dict[str, Any] = {"max_attempts": 1, "connect_timeout_s": 2.0, "read_timeout_s": 20.0}
    suffix = uuid.uuid4().hex[:12]
    endpoints = two_endpoints(cleanups)
    # Route 53's quickest check; moto never runs it.
    check = HealthCheck(
        "http", endpoints[0].port, interval_s=10, failure_threshold=1, expected_status=(200, 399)
    )
    regions = ("us-east-1", "eu-west-1")
    zone = f"drill-{suffix}.example.test"
    route = failover_route(f"app.{zone}", endpoints, regions, check)
    router = Route53Router(zone=zone, create_zone=True, endpoint_url=moto.url, seed=7, **fast)
    cleanups.append(router.close)
    router.apply(route)
    cleanups.append(lambda: router.delete(route.name))
    # moto has no global tables: a table per region stands in for the replicas. (A session of
    # its own: tests/aws records the default session's calls against the adapters' policies.)
    table = f"mr-drill-{suffix}"
    session = boto3.session.Session()
    for region in regions:
        session.client("dynamodb", region_name=region, endpoint_url=moto.url).create_table(
            TableName=table,
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    # moto never replicates: the lag heartbeat is awaited briefly, it never arrives anyway
    store = DynamoStore(table=table, regions=regions, endpoint_url=moto.url, lag_wait_s=0.2, **fast)
    cleanups.append(store.close)
    # Nothing probes on moto: the library's own probes find the outage (at a quicker check
    # than Route 53's 10 s, which the route keeps), and DNS moves when the controller forces
    # the primary out, since resolve() honours overrides.
    probe = LocalProbe()
    cleanups.append(probe.close)
    quick = HealthCheck(
        "http", endpoints[0].port, interval_s=0.1, timeout_s=0.1, failure_threshold=3
    )
    health = probe_health(probe, attrs.evolve(route, health_check=quick))
    return Setup(
        "aws", router, route.name, *regions, health, store, endpoints,
        replicates=False,
    )  # fmt: skip


BUILDERS: dict[str, Callable[[pytest.FixtureRequest, Path, Cleanups], Setup]] = {
    "local": _local,
    "azure": _azure,
    "gcp": _gcp,
    "aws": _aws,
}


@pytest.fixture
def drill_setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    """The provider named by the test's ``provider`` parameter, ready for a drill; everything
    it created is removed afterwards, even when building it failed halfway."""
    provider: str = request.node.callspec.params["provider"]
    cleanups: Cleanups = []
    try:
        yield BUILDERS[provider](request, tmp_path, cleanups)
    finally:
        for cleanup in reversed(cleanups):
            with contextlib.suppress(Exception):
                cleanup()
