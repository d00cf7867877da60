"""The shipped GCP role, its request table, and the recording: each can fail.

The check itself runs over the whole GCP suite (``gcp_iam_calls`` in conftest.py). The
Firestore client logs only its unary calls, so the store's streaming reads are read off the
wire here, through a tap in front of the emulator, and checked against the same table.
"""

from __future__ import annotations

import re

from multiregion.model import Endpoint, Route, Weighted
from multiregion.providers.gcp.clouddns import CloudDnsRouter
from multiregion.providers.gcp.firestore import FirestoreStore
from multiregion.testing.emulators.gcp import FirestoreEmulator
from multiregion.testing.fakes.clouddns import CloudDnsFake
from tests.azure.wire_log import GrpcTap, Request, missing, needed, recording
from tests.gcp import iam
from tests.gcp.conftest import PROJECT, create_zone, fresh_name, fresh_project, raw_apis

_PERMISSION = re.compile(r"[a-z]+\.[a-zA-Z]+\.[a-zA-Z]+")


def test_the_role_has_the_form_gcloud_takes() -> None:
    role = iam.role()
    assert set(role) == {"title", "description", "stage", "includedPermissions"}
    assert role["stage"] == "GA"
    permissions = role["includedPermissions"]
    assert len(permissions) == len(set(permissions))
    for permission in permissions:
        assert _PERMISSION.fullmatch(permission), permission  # custom roles take no wildcard


def test_every_grant_is_needed_by_a_row_and_every_row_is_sourced() -> None:
    used = {permission for rule in iam.RULES for permission in rule.needs}
    assert iam.allowed() == used, iam.allowed() ^ used
    for rule in iam.RULES:
        assert rule.source.startswith("https://cloud.google.com/"), rule


def test_requests_map_to_their_documented_permissions() -> None:
    def of(request: Request) -> tuple[str, ...] | None:
        return needed(iam.RULES, request)

    change = Request("POST", "/dns/v1/projects/p/managedZones/z/changes", frozenset({"alt"}))
    assert of(change) == iam._RRSET_WRITE
    rrset = "/dns/v1/projects/p/managedZones/z/rrsets/app.example.test./A"
    assert of(Request("PATCH", rrset)) is None  # the adapters never patch a record set
    assert of(Request("GET", "/download/storage/v1/b/b/o/a%2Fb")) == ("storage.objects.get",)
    locked = Request("POST", "/storage/v1/b", frozenset({"project", "enableObjectRetention"}))
    assert of(locked) == ("storage.buckets.create", "storage.buckets.enableObjectRetention")
    assert of(Request("POST", "/storage/v1/b", frozenset({"project"}))) == (
        "storage.buckets.create",
    )
    assert of(Request("GRPC", "RunQuery")) == ("datastore.entities.get", "datastore.entities.list")
    assert of(Request("GRPC", "Listen")) is None


def test_an_uncovered_or_unknown_request_is_reported() -> None:
    granted = iam.allowed() - {"dns.resourceRecordSets.delete"}
    requests = [
        Request("POST", "/dns/v1/projects/p/managedZones/z/changes"),
        Request("GET", "/dns/v1/projects/p/managedZones/z"),
        Request("GRPC", "Listen"),
    ]
    assert missing(iam.RULES, requests, granted, iam.covers, "T") == [
        "GRPC Listen: no row of T says what it needs",
        "POST /dns/v1/projects/p/managedZones/z/changes: needs dns.resourceRecordSets.delete",
    ]


def test_the_routers_requests_are_recorded_and_the_tests_are_not(
    clouddns_fake: CloudDnsFake,
) -> None:
    project = fresh_project()
    create_zone(clouddns_fake, project, "iam-zone", "iam.example.test")
    host, port = clouddns_fake.dns_address
    router = CloudDnsRouter(
        project=project,
        zone="iam-zone",
        endpoint=clouddns_fake.url,
        nameserver=f"{host}:{port}",
        num_retries=0,
        timeout_s=10,
    )
    route = Route(
        "www.iam.example.test",
        (Endpoint("a", "us-central1", "192.0.2.10"), Endpoint("b", "us-east4", "192.0.2.11")),
        Weighted({"a": 1, "b": 1}),
    )
    dns, _ = raw_apis(clouddns_fake)
    with recording() as log:
        router.apply(route)
        dns.managedZones().list(project=project).execute()
    permissions = {p for r in log.requests for p in needed(iam.RULES, r) or ()}
    assert "dns.changes.create" in permissions
    assert "dns.managedZones.list" not in permissions  # the test's own read-back
    assert not missing(iam.RULES, log.requests, iam.allowed(), iam.covers, "T")


def test_the_stores_grpc_calls_read_off_the_wire_are_covered(
    firestore_emulator: FirestoreEmulator,
) -> None:
    tap = GrpcTap(firestore_emulator.port)
    try:
        store = FirestoreStore(
            project=PROJECT,
            collection=fresh_name("iam"),
            regions=["us-east1", "us-west1"],
            emulator_host=tap.host,
            timeout_s=10,
            retry_timeout_s=5,
        )
        store.put("k", {"v": 1})
        store.get("k")
        list(store.scan(""))
        store.delete("k")
        store.promote("us-west1")
    finally:
        tap.close()
    calls = [Request("GRPC", method) for method in tap.methods]
    assert {"Commit", "RunQuery", "BatchGetDocuments"} <= tap.methods  # streams included
    assert not missing(iam.RULES, calls, iam.allowed(), iam.covers, "tests/gcp/iam.py")
