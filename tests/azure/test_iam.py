"""The shipped Azure roles, their request table, and the recording: each can fail.

The check itself runs over the whole Azure suite (``azure_iam_calls`` in conftest.py): this
file proves that the documents are well formed and least privilege, that the table maps
requests as documented, that an uncovered request is reported, and that the recording sees
the adapters' requests and not the tests' own.
"""

from __future__ import annotations

import re
from typing import Any

from azure.mgmt.trafficmanager import TrafficManagerManagementClient

from multiregion.model import Endpoint, Failover, HealthCheck, Route
from multiregion.providers.azure.blob import BlobBucket
from multiregion.providers.azure.trafficmanager import TrafficManagerRouter
from multiregion.testing.emulators.azure import AZURITE_KEY, Azurite
from multiregion.testing.fakes.trafficmanager import TrafficManagerFake
from tests.azure import iam
from tests.azure.conftest import SUBSCRIPTION, arm_settings, fresh_name
from tests.azure.wire_log import Request, missing, needed, recording

_ACTION = re.compile(r"Microsoft\.(Network|Storage|DocumentDB)/[A-Za-z]+(/[A-Za-z]+)+")
PROFILE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/trafficmanagerprofiles/p"
COLL = "/dbs/d/colls/c"


def test_the_documents_have_the_form_the_tools_take() -> None:
    rbac, cosmos = iam.roles()["role.json"], iam.roles()["cosmos-role.json"]
    assert rbac["IsCustom"] is True
    assert rbac["NotActions"] == rbac["NotDataActions"] == []
    assert rbac["AssignableScopes"]
    assert cosmos["Type"] == "CustomRole"
    assert cosmos["AssignableScopes"] == ["/"]
    every = [*rbac["Actions"], *rbac["DataActions"], *cosmos["Permissions"][0]["DataActions"]]
    assert len(every) == len(set(every))
    for action in every:
        assert _ACTION.fullmatch(action), action  # spelled out: no wildcard
    # Cosmos DB data actions have no effect in an Azure RBAC role, and the reverse.
    assert not any(a.startswith("Microsoft.DocumentDB") for a in rbac["DataActions"])
    assert all(
        a.startswith("Microsoft.DocumentDB/") for a in cosmos["Permissions"][0]["DataActions"]
    )


def test_every_grant_is_needed_by_a_row_and_every_row_is_sourced() -> None:
    used = {action for rule in iam.RULES for action in rule.needs}
    assert iam.allowed() <= used, iam.allowed() - used
    for rule in iam.RULES:
        assert rule.source.startswith("https://learn.microsoft.com/") or not rule.needs, rule


def test_requests_map_to_their_documented_actions() -> None:
    def of(request: Request) -> tuple[str, ...] | None:
        return needed(iam.RULES, request)

    assert of(Request("PATCH", PROFILE + "/ExternalEndpoints/primary", sdk="azure")) == (
        f"{iam.TM}/externalEndpoints/write",
    )
    locked = Request(
        "PUT",
        "/acct/cont/key",
        headers=frozenset({"x-ms-immutability-policy-until-date"}),
        sdk="azure",
    )
    assert of(locked) == (
        f"{iam.BLOBS}/blobs/write",
        f"{iam.BLOBS}/blobs/add/action",
        f"{iam.BLOBS}/blobs/immutableStorage/runAsSuperUser/action",
    )
    assert of(
        Request("PUT", "/acct/cont/key", frozenset({"comp=block", "blockid"}), sdk="azure")
    ) == (f"{iam.BLOBS}/blobs/write",)
    listing = Request(
        "GET", "/acct/cont", frozenset({"restype=container", "comp=list", "prefix"}), sdk="azure"
    )
    assert of(listing) == (f"{iam.BLOBS}/blobs/read",)
    upsert = Request(
        "POST", COLL + "/docs", headers=frozenset({"x-ms-documentdb-is-upsert"}), sdk="cosmos"
    )
    assert of(upsert) == (f"{iam.COSMOS}/sqlDatabases/containers/items/upsert",)
    query = Request(
        "POST", COLL + "/docs", headers=frozenset({"x-ms-documentdb-isquery"}), sdk="cosmos"
    )
    assert of(query) == (
        f"{iam.COSMOS}/sqlDatabases/containers/executeQuery",
        f"{iam.COSMOS}/sqlDatabases/containers/readChangeFeed",
    )
    assert of(Request("POST", COLL + "/docs", sdk="cosmos")) == (
        f"{iam.COSMOS}/sqlDatabases/containers/items/create",
    )
    assert of(Request("GET", COLL + "/docs/key", sdk="cosmos")) == (
        f"{iam.COSMOS}/sqlDatabases/containers/items/read",
    )  # the same path shape as a blob's: the client tells them apart
    assert of(Request("POST", "/dbs", sdk="cosmos")) == ()  # account key only: no role can grant it
    assert of(Request("PUT", "/acct/cont/key", frozenset({"comp=tags"}), sdk="azure")) is None


def test_an_uncovered_or_unknown_request_is_reported() -> None:
    granted = iam.allowed() - {f"{iam.BLOBS}/blobs/delete"}
    requests = [
        Request("DELETE", "/acct/cont/key", sdk="azure"),
        Request("GET", "/acct/cont/key", sdk="azure"),
        Request("DELETE", COLL + "/docs/key", sdk="cosmos"),
        Request("POST", "/somewhere/else", sdk="azure"),
    ]
    assert missing(iam.RULES, requests, granted, iam.covers, "T") == [
        f"DELETE /acct/cont/key: needs {iam.BLOBS}/blobs/delete",  # and not the Cosmos one
        "POST /somewhere/else: no row of T says what it needs",
    ]
    assert iam.covers({"Microsoft.Network/trafficManagerProfiles/*"}, f"{iam.TM}/read")


def test_the_adapters_requests_are_recorded_and_the_tests_are_not(
    traffic_manager: TrafficManagerFake, azurite: Azurite
) -> None:
    settings: dict[str, Any] = arm_settings(traffic_manager)
    route = Route(
        "iam.example.test",
        (Endpoint("primary", "eastus", "192.0.2.10"), Endpoint("backup", "westus", "192.0.2.11")),
        Failover("primary", ["backup"]),
        health_check=HealthCheck("https", 443, "/health"),
    )
    raw = TrafficManagerManagementClient(
        traffic_manager.credential(),
        SUBSCRIPTION,
        base_url=traffic_manager.url,
        connection_verify=traffic_manager.ca_path,
    )
    bucket = BlobBucket(azurite.account_url, fresh_name("iam"), account_key=AZURITE_KEY, retries=0)
    with recording() as log:
        TrafficManagerRouter(**settings).apply(route)
        list(raw.profiles.list_by_resource_group(settings["resource_group"]))
        bucket.put("backup/1", b"sealed")
    sent = {(r.method, needed(iam.RULES, r)) for r in log.requests}
    assert ("PUT", (f"{iam.TM}/write",)) in sent
    assert ("PUT", (f"{iam.BLOBS}/blobs/write", f"{iam.BLOBS}/blobs/add/action")) in sent
    listed = [
        r
        for r in log.requests
        if r.method == "GET" and r.path.lower().endswith("trafficmanagerprofiles")
    ]
    assert listed == []  # the test's own client: not the adapters'
    assert not missing(iam.RULES, log.requests, iam.allowed(), iam.covers, "T")
