"""The Azure roles the adapters ship, and the permission each request they send needs.

Two documents, because Azure has two permission systems for what the adapters touch:
``role.json`` is an Azure RBAC custom role (Traffic Manager actions, Blob data actions) and
``cosmos-role.json`` a Cosmos DB for NoSQL data-plane role definition (Cosmos DB's own RBAC:
its data actions cannot go in an Azure RBAC role). ``RULES`` maps each request, by method,
path pattern, query and header names, to the actions it needs, each row with its source.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from typing import Any

import pytest

from tests.azure.wire_log import Request, Rule, checked

ARM_OPERATIONS = (
    "https://learn.microsoft.com/en-us/azure/role-based-access-control/"
    "permissions/networking#microsoftnetwork"
)
BLOB_PERMISSIONS = (
    "https://learn.microsoft.com/en-us/rest/api/storageservices/"
    "authorize-with-azure-active-directory#permissions-for-blob-service-operations"
)
COSMOS_ACTIONS = (
    "https://learn.microsoft.com/en-us/azure/cosmos-db/nosql/security/reference-data-plane-actions"
)
KEY_ONLY = "account key only: Cosmos DB's data-plane RBAC grants no database or container creation"

_PROFILE = (
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/trafficmanagerprofiles"
)
_BLOB_ACCOUNT = r"(?:/[^/]+)?"  # the account: a path segment on Azurite, the host on Azure
_CONTAINER = _BLOB_ACCOUNT + r"/[^/]+"
_COLL = r"/dbs/[^/]+/colls/[^/]+"
TM = "Microsoft.Network/trafficManagerProfiles"
BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers"
COSMOS = "Microsoft.DocumentDB/databaseAccounts"


def _tm(kind: str, suffix: str) -> list[Rule]:
    return [
        Rule("GET", _PROFILE + suffix, (f"{kind}/read",), ARM_OPERATIONS, sdk="azure"),
        Rule("PUT", _PROFILE + suffix, (f"{kind}/write",), ARM_OPERATIONS, sdk="azure"),
        Rule("PATCH", _PROFILE + suffix, (f"{kind}/write",), ARM_OPERATIONS, sdk="azure"),
        Rule("DELETE", _PROFILE + suffix, (f"{kind}/delete",), ARM_OPERATIONS, sdk="azure"),
    ]


def _blob(method: str, path: str, needs: tuple[str, ...], *query: str) -> Rule:
    """A Blob operation: its query's ``comp``/``restype`` values name it exactly."""
    return Rule(
        method, path, needs, BLOB_PERMISSIONS, frozenset(query), exact_query=True, sdk="azure"
    )


def _cosmos(method: str, path: str, *needs: str, headers: str = "") -> Rule:
    """A Cosmos DB operation; one with a header naming it replaces the plain POST's row."""
    named = frozenset({headers}) if headers else frozenset()
    return Rule(
        method, path, needs, COSMOS_ACTIONS, headers=named, instead=bool(headers), sdk="cosmos"
    )


_BLOB = _CONTAINER + r"/.+"
_ITEM = _COLL + r"/docs/[^/]+"
_CONTAINER_OP = "restype=container"
_SUPER = f"{BLOBS}/blobs/immutableStorage/runAsSuperUser/action"

RULES: tuple[Rule, ...] = (
    # Traffic Manager (ARM): profiles by resource group, one profile, its endpoints.
    Rule("GET", _PROFILE, (f"{TM}/read",), ARM_OPERATIONS, sdk="azure"),
    *_tm(TM, r"/[^/]+"),
    *_tm(f"{TM}/externalEndpoints", r"/[^/]+/externalEndpoints/[^/]+"),
    # Blob Storage: containers (restype=container), blobs (no restype).
    _blob("PUT", _CONTAINER, (f"{BLOBS}/write",), _CONTAINER_OP),
    _blob("GET", _CONTAINER, (f"{BLOBS}/read",), _CONTAINER_OP),
    _blob("HEAD", _CONTAINER, (f"{BLOBS}/read",), _CONTAINER_OP),
    _blob("DELETE", _CONTAINER, (f"{BLOBS}/delete",), _CONTAINER_OP),
    _blob("GET", _CONTAINER, (f"{BLOBS}/blobs/read",), _CONTAINER_OP, "comp=list"),
    _blob("GET", _BLOB, (f"{BLOBS}/blobs/read",)),
    _blob("HEAD", _BLOB, (f"{BLOBS}/blobs/read",)),
    _blob("GET", _BLOB, (f"{BLOBS}/blobs/read",), "comp=blocklist"),
    _blob("DELETE", _BLOB, (f"{BLOBS}/blobs/delete",)),
    # Put Blob (create or replace: write; create only: add/action), Put Block, Put Block List.
    _blob("PUT", _BLOB, (f"{BLOBS}/blobs/write", f"{BLOBS}/blobs/add/action")),
    _blob("PUT", _BLOB, (f"{BLOBS}/blobs/write",), "comp=block"),
    _blob("PUT", _BLOB, (f"{BLOBS}/blobs/write",), "comp=blocklist"),
    _blob("PUT", _BLOB, (_SUPER,), "comp=immutabilityPolicies"),
    _blob("PUT", _BLOB, (f"{BLOBS}/write",), "comp=legalhold"),
    # A write that sets an immutability policy or a legal hold by header needs what Set Blob
    # Immutability Policy and Set Blob Legal Hold need (the same table).
    Rule(
        "PUT",
        _BLOB,
        (_SUPER,),
        BLOB_PERMISSIONS,
        headers=frozenset({"x-ms-immutability-policy-until-date"}),
        sdk="azure",
    ),
    Rule(
        "PUT",
        _BLOB,
        (f"{BLOBS}/write",),
        BLOB_PERMISSIONS,
        headers=frozenset({"x-ms-legal-hold"}),
        sdk="azure",
    ),
    # Cosmos DB data plane: account, database and container metadata, items, queries.
    _cosmos("GET", r"", f"{COSMOS}/readMetadata"),
    _cosmos("GET", r"/dbs/[^/]+", f"{COSMOS}/readMetadata"),
    _cosmos("GET", _COLL, f"{COSMOS}/readMetadata"),
    _cosmos("GET", _COLL + r"/pkranges", f"{COSMOS}/readMetadata"),
    _cosmos("GET", _ITEM, f"{COSMOS}/sqlDatabases/containers/items/read"),
    _cosmos("PUT", _ITEM, f"{COSMOS}/sqlDatabases/containers/items/replace"),
    _cosmos("DELETE", _ITEM, f"{COSMOS}/sqlDatabases/containers/items/delete"),
    _cosmos("POST", _COLL + r"/docs", f"{COSMOS}/sqlDatabases/containers/items/create"),
    _cosmos(
        "POST",
        _COLL + r"/docs",
        f"{COSMOS}/sqlDatabases/containers/items/upsert",
        headers="x-ms-documentdb-is-upsert",
    ),
    # The SDK's queries need both actions (the note under the table of actions).
    _cosmos(
        "POST",
        _COLL + r"/docs",
        f"{COSMOS}/sqlDatabases/containers/executeQuery",
        f"{COSMOS}/sqlDatabases/containers/readChangeFeed",
        headers="x-ms-documentdb-isquery",
    ),
    Rule("POST", r"/dbs", (), KEY_ONLY, sdk="cosmos"),
    Rule("POST", r"/dbs/[^/]+/colls", (), KEY_ONLY, sdk="cosmos"),
)
"""The first row without headers that matches names the operation; header rows add to it."""


def roles() -> dict[str, Any]:
    """The two shipped documents by file name."""
    data = resources.files("multiregion.providers.azure").joinpath("data")
    return {name: json.loads(data.joinpath(name).read_text()) for name in ROLE_FILES}


ROLE_FILES = ("role.json", "cosmos-role.json")


def allowed(documents: Mapping[str, Any] | None = None) -> set[str]:
    """Every action and data action the documents grant (wildcards kept as written)."""
    documents = roles() if documents is None else documents
    rbac, cosmos = documents["role.json"], documents["cosmos-role.json"]["Permissions"][0]
    return {*rbac["Actions"], *rbac["DataActions"], *cosmos["DataActions"]}


SDKS = frozenset({"azure", "cosmos"})


def covers(granted: Iterable[str], action: str) -> bool:
    """Whether an action is granted, Azure's ``*`` matching any run of characters."""
    return any(
        re.fullmatch(re.escape(g).replace(r"\*", ".*"), action, re.IGNORECASE) for g in granted
    )


@pytest.fixture(scope="session", autouse=True)
def azure_iam_calls() -> Iterator[set[Request]]:
    """Every request the adapters send in this run must be covered by the shipped roles: one
    that is not fails the run at teardown, naming it."""
    yield from checked(RULES, allowed, covers, "tests/azure/iam.py", SDKS)
