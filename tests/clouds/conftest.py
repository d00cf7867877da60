"""Each cloud's emulators and fakes for the examples' cloud specs, started once per session.

``Cloud.emulate(spec)`` overrides only what must point at the emulators (endpoint URLs, the
emulators' credentials); the fakes' time scale is their own. ``Cloud.provision(spec)`` creates
what a real account would already hold (hosted zone, table, containers, managed zone), as an
operator would before the first ``apply``. Everything else is the example as it ships.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import boto3
import pytest

from multiregion.deployment import DeploymentSpec
from multiregion.errors import Unavailable
from multiregion.model import Endpoint, Route

ALLOWED = {
    "aws": frozenset({"endpoint_url", "lag_wait_s"}),
    "azure": frozenset(
        {"endpoint", "credential", "connection_verify", "key", "account_url", "account_key"}
    ),
    "gcp": frozenset({"endpoint", "nameserver", "emulator_host"}),
}
"""The settings a test may override: where the emulators are and how to sign in to them."""

AZURE_TIME_SCALE = 0.05
"""The Traffic Manager fake probes a 10 s check every 0.5 s."""
GCP_TIME_SCALE = 0.01
"""The Cloud DNS fake probes a 30 s check every 0.3 s."""
GCP_LOOPBACK = ("127.0.0.10", "127.0.0.20")
"""Stand-ins for the GCP example's 203.0.113.x endpoints: the Cloud DNS fake probes every
health-checked target it is given, and tests send loopback traffic only."""


@attrs.frozen
class Cloud:
    name: str
    overrides: Mapping[str, Mapping[str, Any]]
    provision: Callable[[DeploymentSpec], None]
    loopback_endpoints: tuple[str, ...] | None = None
    """Region endpoints replacing the example's, where the fake would probe them."""

    def emulate(self, spec: DeploymentSpec) -> DeploymentSpec:
        """``spec`` pointed at the emulators: only ALLOWED settings change."""
        for part, settings in self.overrides.items():
            extra = set(settings) - ALLOWED[self.name]
            assert not extra, f"{part}: {extra} are not emulator settings"
        settings = {
            part: {**spec.settings[part], **self.overrides.get(part, {})} for part in spec.settings
        }
        spec = attrs.evolve(spec, settings=settings)
        if self.loopback_endpoints is None:
            return spec
        targets = dict(zip(spec.region_names, self.loopback_endpoints, strict=True))
        regions = tuple(attrs.evolve(r, endpoint=targets[r.name]) for r in spec.regions)
        endpoints = [Endpoint(e.name, e.region, targets[e.region]) for e in spec.route.endpoints]
        route = Route(
            name=spec.route.name,
            endpoints=endpoints,
            policy=spec.route.policy,
            ttl=spec.route.ttl,
            health_check=spec.route.health_check,
        )
        return attrs.evolve(spec, regions=regions, route=route)


# --------------------------------------------------------------------------- AWS (moto)


@pytest.fixture(scope="session")
def aws_cloud() -> Iterator[Cloud]:
    from multiregion.providers.aws.dynamodb import DynamoStore
    from multiregion.testing.emulators.aws import CREDENTIALS_ENV, MotoServer

    previous = boto3.DEFAULT_SESSION
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS_ENV.items():
            patch.setenv(name, value)
        boto3.setup_default_session()  # reads the dummy keys, never a real chain
        server = MotoServer()
        server.start()
        try:

            def provision(spec: DeploymentSpec) -> None:
                url = server.url
                zone = spec.settings["router"]["zone"]
                route53 = boto3.client("route53", region_name="us-east-1", endpoint_url=url)
                if not route53.list_hosted_zones_by_name(DNSName=zone)["HostedZones"]:
                    route53.create_hosted_zone(Name=zone, CallerReference=f"tests-{zone}")
                # moto has no global tables: each region's replica is a table of its own.
                for region in spec.region_names:
                    DynamoStore(
                        table=spec.settings["store"]["table"],
                        regions=[region],
                        create=True,
                        endpoint_url=url,
                    ).close()
                bucket = spec.settings["bucket"]
                s3 = boto3.client("s3", region_name=bucket["region"], endpoint_url=url)
                if bucket["bucket"] not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
                    s3.create_bucket(Bucket=bucket["bucket"])

            parts = ("router", "store", "bucket", "probe")
            settings: dict[str, dict[str, Any]] = {p: {"endpoint_url": server.url} for p in parts}
            # moto never replicates: a heartbeat never arrives, so waiting long for it says
            # nothing more than waiting briefly.
            settings["store"]["lag_wait_s"] = 0.2
            yield Cloud("aws", settings, provision)
        finally:
            server.stop()
            boto3.DEFAULT_SESSION = previous


# --------------------------------------------------------------------------- Azure


@pytest.fixture(scope="session")
def azure_cloud() -> Iterator[Cloud]:
    from multiregion.providers.azure.blob import BlobBucket
    from multiregion.providers.azure.cosmos import CosmosStore
    from multiregion.testing.emulators.azure import (
        AZURITE_KEY,
        COSMOS_KEY,
        Azurite,
        CosmosServer,
    )
    from multiregion.testing.fakes.trafficmanager import TrafficManagerFake

    try:
        azurite, cosmos = Azurite(), CosmosServer()
    except Unavailable as exc:
        pytest.skip(f"the Azure emulators cannot run here: {exc}")
    with TrafficManagerFake(time_scale=AZURE_TIME_SCALE) as fake, azurite, cosmos:
        arm: dict[str, Any] = {
            "endpoint": fake.url,
            "credential": fake.credential(),
            "connection_verify": fake.ca_path,
        }
        overrides: dict[str, dict[str, Any]] = {
            "router": arm,
            "probe": arm,
            "store": {"endpoint": cosmos.url, "key": COSMOS_KEY},
            "bucket": {"account_url": azurite.account_url, "account_key": AZURITE_KEY},
        }

        def provision(spec: DeploymentSpec) -> None:
            store = {**spec.settings["store"], **overrides["store"], "create": True}
            CosmosStore(regions=spec.region_names, **store).close()
            bucket = {**spec.settings["bucket"], **overrides["bucket"], "create": True}
            BlobBucket(**bucket).close()

        yield Cloud("azure", overrides, provision)


# --------------------------------------------------------------------------- GCP


@pytest.fixture(scope="session")
def gcp_cloud() -> Iterator[Cloud]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    from googleapiclient.discovery import build

    from multiregion.testing.emulators.gcp import FakeGcsServer, FirestoreEmulator
    from multiregion.testing.fakes.clouddns import CloudDnsFake

    try:
        gcs = FakeGcsServer()
        firestore = FirestoreEmulator()
    except Unavailable as exc:
        pytest.skip(f"the GCP emulators cannot run here: {exc}")
    with CloudDnsFake(time_scale=GCP_TIME_SCALE) as fake, gcs, firestore:
        api = {"endpoint": fake.url}
        host, port = fake.dns_address
        overrides = {
            "router": {**api, "nameserver": f"{host}:{port}"},
            "probe": api,
            "store": {"emulator_host": firestore.host},
            "bucket": {"endpoint": gcs.url},
        }

        def provision(spec: DeploymentSpec) -> None:
            router = spec.settings["router"]
            domain = spec.route.name.split(".", 1)[1]  # the zone holding the route
            dns = build(
                "dns",
                "v1",
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options={"api_endpoint": fake.url},
                static_discovery=True,
            )
            body = {"name": router["zone"], "dnsName": domain + ".", "description": "tests"}
            zones = dns.managedZones().list(project=router["project"]).execute()
            if router["zone"] not in {z["name"] for z in zones.get("managedZones", [])}:
                dns.managedZones().create(project=router["project"], body=body).execute()
            bucket = spec.settings["bucket"]
            client = storage.Client(
                project=bucket["project"],
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                client_options={"api_endpoint": gcs.url},
            )
            if client.lookup_bucket(bucket["bucket"]) is None:
                client.create_bucket(bucket["bucket"])

        yield Cloud("gcp", overrides, provision, loopback_endpoints=GCP_LOOPBACK)


@pytest.fixture
def cloud(request: pytest.FixtureRequest) -> Cloud:
    """The emulated cloud named by the (indirect) parameter: aws, azure or gcp."""
    found: Cloud = request.getfixturevalue(f"{request.param}_cloud")
    return found
