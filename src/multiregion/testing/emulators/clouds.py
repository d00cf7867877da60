"""A cloud deployment spec run on this machine: the cloud's emulators and fakes, with the fault
proxy in front of each region's app and, where the emulator serves regions apart, of each
region's store replica. ``multiregion faultproxy --emulators`` runs one (``start``); what
other processes need to use it is an ``Emulation``, announced with the proxy and applied to the
spec by ``overlay``, so that ``apply``, ``drill`` and the example apps run the spec unchanged.

What changes is only where the parts connect: the emulators' URLs and test credentials, each
region's endpoint (a loopback address instead of a load balancer) and the health check's port
(the proxy's, in plain HTTP: no load balancer terminates TLS here). The fakes run the
provider's probe schedules at ``time_scale``, and so do the SDK timeouts set here.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from multiregion.deployment import DeploymentSpec
from multiregion.errors import InvalidInput
from multiregion.faultproxy.proxy import FaultProxy
from multiregion.model import Endpoint, HealthCheck, Route
from multiregion.testing.endpoints import free_port

PROVIDERS = ("aws", "azure", "gcp")
TIME_SCALES = {"aws": 0.05, "azure": 0.05, "gcp": 0.02}
"""Traffic Manager's 10 s check every 0.5 s; Compute's 30 s check every 0.6 s; Route 53's
10 s check, run by the library's probes on moto, every 0.5 s."""
MIN_TIMEOUT_S = 0.5
"""The SDKs' timeouts are scaled too, but never below this: a loaded machine is slow."""

NO_PARTITION = {
    "aws": "moto has no DynamoDB global tables: each region's table stands alone, so there is"
    " no replication link to cut",
    "azure": "cosmosdb-server keeps one copy for every region (each region's endpoint leads to"
    " the same server), so there is no replication link between them to cut",
    "gcp": "the Firestore emulator is one database for every region, as a multi-region"
    " Firestore database is one endpoint, so there is no link between regions to cut",
}
NO_STORE_LISTENER = {
    "gcp": "a multi-region Firestore database has one endpoint for every region (so has its"
    " emulator): no region's replica can be cut off alone",
}


@attrs.frozen
class Emulation:
    """Where a cloud spec's parts connect on this machine (JSON-ready)."""

    provider: str
    time_scale: float
    overrides: Mapping[str, Mapping[str, Any]]
    """Settings merged into each part's (emulator URLs, test keys, scaled timeouts)."""
    endpoints: Mapping[str, str]
    """Region -> the loopback address that stands for its load balancer."""
    check_port: int
    """Where the proxy listens for each region's app (and health checks probe)."""
    app_port: int
    store_listeners: Mapping[str, str] = attrs.field(factory=dict)
    """Region -> the proxy listener in front of its store replica."""
    library_probes: bool = False
    """The provider's managed checks never probe here (Route 53 on moto): the library's do."""
    replicates: bool = True
    """False where replicas never converge (moto has no global tables)."""

    @property
    def partition(self) -> str | None:
        """Why a partition cannot be drilled here (None: it can)."""
        return NO_PARTITION.get(self.provider)

    @property
    def no_store_listener(self) -> str | None:
        return NO_STORE_LISTENER.get(self.provider)

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Emulation:
        return cls(**data)

    def scaled(self, seconds: float) -> float:
        return max(MIN_TIMEOUT_S, seconds * self.time_scale)


def overlay(spec: DeploymentSpec, emulation: Emulation) -> DeploymentSpec:
    """``spec`` connected to ``emulation``: only where its parts connect changes."""
    if spec.providers["router"] != emulation.provider:
        raise InvalidInput("provider", f"the emulators run {emulation.provider}, not this spec")
    settings = {
        part: {**table, **emulation.overrides.get(part, {})}
        for part, table in spec.settings.items()
    }
    if emulation.provider == "aws":
        # boto3's default chain must find the emulator's dummy keys, never real ones
        from multiregion.testing.emulators.aws import CREDENTIALS_ENV

        for name, value in CREDENTIALS_ENV.items():
            os.environ.setdefault(name, value)
    if emulation.provider == "azure":
        from multiregion.testing.fakes.trafficmanager import FakeCredential

        _quiet_loopback_tls()
        for part in ("router", "probe"):
            settings[part]["credential"] = FakeCredential()
    targets = emulation.endpoints
    regions = tuple(attrs.evolve(r, endpoint=targets[r.name]) for r in spec.regions)
    check = spec.route.health_check
    if check is not None:
        protocol = "http" if check.protocol == "https" else check.protocol
        check = attrs.evolve(check, protocol=protocol, port=emulation.check_port)
    route = Route(
        name=spec.route.name,
        endpoints=[Endpoint(e.name, e.region, targets[e.region]) for e in spec.route.endpoints],
        policy=spec.route.policy,
        ttl=spec.route.ttl,
        health_check=check,
    )
    return attrs.evolve(spec, settings=settings, regions=regions, route=route)


def _quiet_loopback_tls() -> None:
    """cosmosdb-server's certificate is self-signed: azure-cosmos skips verifying it on
    127.0.0.1 only, and urllib3 would warn on every request."""
    warnings.filterwarnings("ignore", message="Unverified HTTPS request .* host '127.0.0.1'")


def scaled_check(check: HealthCheck, emulation: Emulation) -> HealthCheck:
    """``check`` on the emulation's clock, as its fakes probe it."""
    scale = emulation.time_scale
    return attrs.evolve(
        check, interval_s=check.interval_s * scale, timeout_s=check.timeout_s * scale
    )


def loopback_endpoints(spec: DeploymentSpec) -> dict[str, str]:
    """A loopback address per region, standing for its load balancer (127.0.0.10, .20, ...)."""
    return {region: f"127.0.0.{10 * (n + 1)}" for n, region in enumerate(spec.region_names)}


Started = tuple[Emulation, contextlib.ExitStack]


def start(spec: DeploymentSpec, proxy: FaultProxy, *, time_scale: float | None = None) -> Started:
    """The emulators and fakes of ``spec``'s cloud, running, provisioned as an account would
    be before the first ``apply``, with a listener of ``proxy`` in front of each region's store
    replica where the emulator serves regions apart. Closing the stack stops them."""
    provider = spec.providers["router"]
    if provider not in PROVIDERS or set(spec.providers.values()) != {provider}:
        raise InvalidInput(
            "provider", f"emulators run {', '.join(PROVIDERS)} specs, one cloud each"
        )
    scale = TIME_SCALES[provider] if time_scale is None else time_scale
    if not 0 < scale <= 1:
        raise InvalidInput("time_scale", "must be above 0 and at most 1")
    endpoints = loopback_endpoints(spec)
    front = free_port(list(endpoints.values()))
    back = free_port(list(endpoints.values()))
    base = Emulation(provider, scale, {}, endpoints, front, back)
    stack = contextlib.ExitStack()
    try:
        emulation = _STARTERS[provider](spec, proxy, base, stack)
    except BaseException:
        stack.close()
        raise
    return emulation, stack


def _store_listeners(proxy: FaultProxy, spec: DeploymentSpec, port: int) -> dict[str, str]:
    """Region -> the URL of a proxy listener in front of the store emulator on ``port``."""
    urls = {}
    for region in spec.region_names:
        host, bound = proxy.add_listener(f"{region}.store", ("127.0.0.1", 0), ("127.0.0.1", port))
        urls[region] = f"{host}:{bound}"
    return urls


def _aws(
    spec: DeploymentSpec, proxy: FaultProxy, base: Emulation, stack: contextlib.ExitStack
) -> Emulation:
    import boto3

    from multiregion.providers.aws.dynamodb import DynamoStore
    from multiregion.testing.emulators.aws import CREDENTIALS_ENV, MotoServer

    for name, value in CREDENTIALS_ENV.items():
        os.environ.setdefault(name, value)
    moto = stack.enter_context(MotoServer())
    stores = _store_listeners(proxy, spec, moto.port)
    sdk = {
        "max_attempts": 1,
        "connect_timeout_s": base.scaled(5),
        "read_timeout_s": base.scaled(10),
    }
    parts = {part: {"endpoint_url": moto.url, **sdk} for part in ("router", "bucket")}
    parts["probe"] = {"endpoint_url": moto.url}
    parts["store"] = {
        "endpoint_urls": {region: f"http://{url}" for region, url in stores.items()},
        "lag_wait_s": 0.2,  # no heartbeat ever arrives: moto never replicates
        **sdk,
    }
    session = boto3.session.Session()
    zone = spec.settings["router"]["zone"]
    route53 = session.client("route53", region_name="us-east-1", endpoint_url=moto.url)
    route53.create_hosted_zone(Name=zone, CallerReference=f"emulated-{zone}")
    for region in spec.region_names:  # no global tables: each region's replica is a table
        store = {**spec.settings["store"], "regions": [region], "create": True}
        DynamoStore(**{**store, "endpoint_url": moto.url}).close()
    bucket = spec.settings["bucket"]
    s3 = session.client("s3", region_name=bucket["region"], endpoint_url=moto.url)
    s3.create_bucket(Bucket=bucket["bucket"])
    return attrs.evolve(
        base,
        overrides=parts,
        store_listeners={region: f"{region}.store" for region in stores},
        library_probes=True,
        replicates=False,
    )


def _azure(
    spec: DeploymentSpec, proxy: FaultProxy, base: Emulation, stack: contextlib.ExitStack
) -> Emulation:
    from multiregion.providers.azure.blob import BlobBucket
    from multiregion.providers.azure.cosmos import CosmosStore
    from multiregion.testing.emulators.azure import AZURITE_KEY, COSMOS_KEY, Azurite, CosmosServer
    from multiregion.testing.fakes.trafficmanager import TrafficManagerFake

    _quiet_loopback_tls()
    fake = stack.enter_context(TrafficManagerFake(time_scale=base.time_scale))
    cosmos = stack.enter_context(CosmosServer())
    azurite = stack.enter_context(Azurite())
    stores = _store_listeners(proxy, spec, cosmos.port)
    arm = {"endpoint": fake.url, "connection_verify": fake.ca_path}
    parts: dict[str, dict[str, Any]] = {
        "router": arm,
        "probe": arm,
        "store": {
            "endpoint": cosmos.url,
            "key": COSMOS_KEY,
            "region_endpoints": {region: f"https://{url}/" for region, url in stores.items()},
            "timeout_s": base.scaled(10),
            "retries": 0,
        },
        "bucket": {"account_url": azurite.account_url, "account_key": AZURITE_KEY},
    }
    store = {**spec.settings["store"], "endpoint": cosmos.url, "key": COSMOS_KEY, "create": True}
    CosmosStore(regions=spec.region_names, **store).close()
    bucket = {**spec.settings["bucket"], **parts["bucket"], "create": True}
    BlobBucket(**bucket).close()
    listeners = {region: f"{region}.store" for region in stores}
    return attrs.evolve(base, overrides=parts, store_listeners=listeners)


def _gcp(
    spec: DeploymentSpec, proxy: FaultProxy, base: Emulation, stack: contextlib.ExitStack
) -> Emulation:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from multiregion.testing.emulators.gcp import FakeGcsServer, FirestoreEmulator
    from multiregion.testing.fakes.clouddns import CloudDnsFake

    fake = stack.enter_context(CloudDnsFake(time_scale=base.time_scale))
    gcs = stack.enter_context(FakeGcsServer())
    firestore = stack.enter_context(FirestoreEmulator(project=spec.settings["store"]["project"]))
    host, port = fake.dns_address
    parts: dict[str, dict[str, Any]] = {
        "router": {"endpoint": fake.url, "nameserver": f"{host}:{port}"},
        "probe": {"endpoint": fake.url},
        "store": {"emulator_host": firestore.host, "retry_timeout_s": base.scaled(60)},
        "bucket": {"endpoint": gcs.url},
    }
    router = spec.settings["router"]
    domain = spec.route.name.split(".", 1)[1]  # the zone holding the route
    fake.create_zone(router["project"], router["zone"], domain + ".")
    bucket = spec.settings["bucket"]
    client = storage.Client(
        project=bucket["project"],
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": gcs.url},
    )
    client.create_bucket(bucket["bucket"])
    return attrs.evolve(base, overrides=parts)


_STARTERS: dict[
    str, Callable[[DeploymentSpec, FaultProxy, Emulation, contextlib.ExitStack], Emulation]
] = {
    "aws": _aws,
    "azure": _azure,
    "gcp": _gcp,
}
