"""The GCP custom role the adapters ship (``role.yaml``), and the permission each request they
send needs: ``RULES`` maps a request (method and path pattern; gRPC method names for
Firestore) to IAM permissions, each row with the page that documents it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from importlib import resources
from typing import Any

import pytest
import yaml

from tests.azure.wire_log import Request, Rule, checked

DNS_REFERENCE = "https://cloud.google.com/dns/docs/reference/v1/"
"""Each method's page there ends with the IAM permissions it requires."""
COMPUTE_REFERENCE = "https://cloud.google.com/compute/docs/reference/rest/v1/"
STORAGE_PERMISSIONS = "https://cloud.google.com/storage/docs/access-control/iam-json"
FIRESTORE_PERMISSIONS = "https://cloud.google.com/firestore/docs/security/iam#required_permissions"

_ZONES = r"/dns/v1/projects/[^/]+/managedZones"
_RRSETS = _ZONES + r"/[^/]+/rrsets"
_CHECKS = r"/compute/v1/projects/[^/]+/global/healthChecks"
_BUCKETS = r"/storage/v1/b"
_OBJECTS = _BUCKETS + r"/[^/]+/o"
_RRSET_WRITE = (
    "dns.changes.create",
    "dns.resourceRecordSets.create",
    "dns.resourceRecordSets.update",
    "dns.resourceRecordSets.delete",
)
"""A change's permissions depend on its additions and deletions (not on the request line):
all three record-set permissions, as a change may hold any of them."""

_INSERT = ("storage.objects.create", "storage.objects.delete", "storage.objects.setRetention")

RULES: tuple[Rule, ...] = (
    # Cloud DNS v1 REST: the adapters read the zone and its record sets, and write by changes.
    Rule("GET", _ZONES + r"/[^/]+", ("dns.managedZones.get",), DNS_REFERENCE + "managedZones/get"),
    Rule(
        "GET", _RRSETS, ("dns.resourceRecordSets.list",), DNS_REFERENCE + "resourceRecordSets/list"
    ),
    Rule("POST", _ZONES + r"/[^/]+/changes", _RRSET_WRITE, DNS_REFERENCE + "changes/create"),
    # Compute health checks.
    Rule("GET", _CHECKS, ("compute.healthChecks.list",), COMPUTE_REFERENCE + "healthChecks/list"),
    Rule(
        "POST", _CHECKS, ("compute.healthChecks.create",), COMPUTE_REFERENCE + "healthChecks/insert"
    ),
    Rule(
        "GET",
        _CHECKS + r"/[^/]+",
        ("compute.healthChecks.get",),
        COMPUTE_REFERENCE + "healthChecks/get",
    ),
    Rule(
        "PUT",
        _CHECKS + r"/[^/]+",
        ("compute.healthChecks.update",),
        COMPUTE_REFERENCE + "healthChecks/update",
    ),
    Rule(
        "DELETE",
        _CHECKS + r"/[^/]+",
        ("compute.healthChecks.delete",),
        COMPUTE_REFERENCE + "healthChecks/delete",
    ),
    Rule(
        "GET",
        r"/compute/v1/projects/[^/]+/global/operations/[^/]+",
        ("compute.globalOperations.get",),
        COMPUTE_REFERENCE + "globalOperations/get",
    ),
    # Cloud Storage JSON API (uploads and downloads have their own path prefix).
    Rule(
        "POST",
        _BUCKETS,
        ("storage.buckets.create", "storage.buckets.enableObjectRetention"),
        STORAGE_PERMISSIONS,
        frozenset({"enableObjectRetention"}),
    ),
    Rule("POST", _BUCKETS, ("storage.buckets.create",), STORAGE_PERMISSIONS),
    # google-cloud-storage reads the bucket's metadata from background threads of its own
    # (its bucket metadata cache) on the adapter's behalf.
    Rule("GET", _BUCKETS + r"/[^/]+", ("storage.buckets.get",), STORAGE_PERMISSIONS),
    Rule("GET", _OBJECTS, ("storage.objects.list",), STORAGE_PERMISSIONS),
    Rule("GET", _OBJECTS + r"/.+", ("storage.objects.get",), STORAGE_PERMISSIONS),
    Rule("GET", r"/download" + _OBJECTS + r"/.+", ("storage.objects.get",), STORAGE_PERMISSIONS),
    # insert: delete too when it replaces an object (the adapter's compare-and-swap put does),
    # setRetention when its body sets a retention (put(retain_until=)): neither shows in the
    # request line, so both are counted.
    Rule("POST", r"/upload" + _OBJECTS, _INSERT, STORAGE_PERMISSIONS),
    Rule("PUT", r"/upload" + _OBJECTS, _INSERT, STORAGE_PERMISSIONS),
    Rule("PATCH", _OBJECTS + r"/.+", ("storage.objects.update",), STORAGE_PERMISSIONS),
    Rule("DELETE", _OBJECTS + r"/.+", ("storage.objects.delete",), STORAGE_PERMISSIONS),
    # Firestore (gRPC): a commit's permissions depend on its writes, all three possible.
    Rule("GRPC", "BatchGetDocuments", ("datastore.entities.get",), FIRESTORE_PERMISSIONS),
    Rule("GRPC", "BeginTransaction", ("datastore.databases.get",), FIRESTORE_PERMISSIONS),
    Rule("GRPC", "Rollback", ("datastore.databases.get",), FIRESTORE_PERMISSIONS),
    Rule(
        "GRPC",
        "Commit",
        ("datastore.entities.create", "datastore.entities.update", "datastore.entities.delete"),
        FIRESTORE_PERMISSIONS,
    ),
    Rule(
        "GRPC",
        "BatchWrite",
        ("datastore.entities.create", "datastore.entities.update", "datastore.entities.delete"),
        FIRESTORE_PERMISSIONS,
    ),
    Rule(
        "GRPC",
        "RunQuery",
        ("datastore.entities.get", "datastore.entities.list"),
        FIRESTORE_PERMISSIONS,
    ),
)


def role() -> dict[str, Any]:
    """The shipped role, as ``gcloud iam roles create --file`` reads it."""
    text = resources.files("multiregion.providers.gcp").joinpath("data/role.yaml").read_text()
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def allowed() -> set[str]:
    return set(role()["includedPermissions"])


SDKS = frozenset({"gcs", "google-api", "grpc"})


def covers(granted: Iterable[str], permission: str) -> bool:
    """Custom roles list permissions one by one: no wildcard."""
    return permission in set(granted)


@pytest.fixture(scope="session", autouse=True)
def gcp_iam_calls() -> Iterator[set[Request]]:
    """Every request the adapters send in this run must be covered by the shipped role: one
    that is not fails the run at teardown, naming it."""
    yield from checked(RULES, allowed, covers, "tests/gcp/iam.py", SDKS)
