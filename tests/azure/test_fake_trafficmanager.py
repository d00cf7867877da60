"""The Traffic Manager fake behaves as the service documents, seen through the raw SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.trafficmanager import TrafficManagerManagementClient

from multiregion.testing.endpoints import start_endpoints
from multiregion.testing.fakes.trafficmanager import TrafficManagerFake
from tests.azure.conftest import SUBSCRIPTION, fresh_name


@pytest.fixture
def client(traffic_manager: TrafficManagerFake) -> Iterator[TrafficManagerManagementClient]:
    raw = TrafficManagerManagementClient(
        traffic_manager.credential(),
        SUBSCRIPTION,
        base_url=traffic_manager.url,
        connection_verify=traffic_manager.ca_path,
        api_version="2018-08-01",
        retry_total=0,
    )
    yield raw
    raw.close()


def profile(targets: list[str], port: int, **monitor: Any) -> dict[str, Any]:
    config = {
        "protocol": "HTTP",
        "port": port,
        "path": "/",
        "intervalInSeconds": 10,
        "timeoutInSeconds": 5,
        "toleratedNumberOfFailures": 0,
        **monitor,
    }
    return {
        "location": "global",
        "properties": {
            "trafficRoutingMethod": "Priority",
            "dnsConfig": {"relativeName": "p", "ttl": 30},
            "monitorConfig": config,
            "endpoints": [
                {
                    "name": f"e{i}",
                    "type": "Microsoft.Network/trafficManagerProfiles/externalEndpoints",
                    "properties": {"target": target, "priority": i + 1},
                }
                for i, target in enumerate(targets)
            ],
        },
    }


def statuses(client: TrafficManagerManagementClient, group: str) -> dict[str, str]:
    found = client.profiles.get(group, "p")
    return {e.name: e.properties.endpoint_monitor_status for e in found.properties.endpoints}


@pytest.mark.parametrize(
    "monitor",
    [
        {"intervalInSeconds": 20},
        {"timeoutInSeconds": 10},
        {"toleratedNumberOfFailures": 10},
        {"protocol": "TCP", "path": "/x"},
    ],
)
def test_monitor_settings_azure_refuses_are_refused(
    client: TrafficManagerManagementClient, monitor: dict[str, Any]
) -> None:
    group = fresh_name("rg-")
    with pytest.raises(HttpResponseError) as excinfo:
        client.profiles.create_or_update(group, "p", profile(["127.0.0.1"], 80, **monitor))
    assert excinfo.value.status_code == 400
    assert [p.name for p in client.profiles.list_by_resource_group(group)] == []


def test_probes_set_the_monitor_status(client: TrafficManagerManagementClient) -> None:
    group = fresh_name("rg-")
    up, down = start_endpoints(2)
    down.stop()
    try:
        targets = [up.address, down.address, "app.example.com", "192.0.2.1"]
        client.profiles.create_or_update(group, "p", profile(targets, up.port))
        expected = {
            "e0": "Online",
            "e1": "Degraded",
            # never probed: the fake sends nothing off this machine
            "e2": "CheckingEndpoint",
            "e3": "CheckingEndpoint",
        }
        deadline = time.monotonic() + 3
        while statuses(client, group) != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert statuses(client, group) == expected
        assert up.hits > 0
        client.endpoints.update(
            group, "p", "ExternalEndpoints", "e0", {"properties": {"endpointStatus": "Disabled"}}
        )
        assert statuses(client, group)["e0"] == "Disabled"
    finally:
        client.profiles.delete(group, "p")
        up.close()
        down.close()


def test_deleting_what_is_not_there_is_no_error(client: TrafficManagerManagementClient) -> None:
    client.profiles.delete(fresh_name("rg-"), "never-made")  # 204, as Resource Manager answers


def test_reset_forgets_every_profile() -> None:
    with TrafficManagerFake() as fake:
        raw = TrafficManagerManagementClient(
            fake.credential(), SUBSCRIPTION, base_url=fake.url, connection_verify=fake.ca_path
        )
        raw.profiles.create_or_update("rg", "p", profile(["127.0.0.1"], 80))
        assert [p.name for p in raw.profiles.list_by_resource_group("rg")] == ["p"]
        fake.reset()
        assert list(raw.profiles.list_by_resource_group("rg")) == []
        raw.close()


def _with(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    props = body["properties"]
    for key, value in changes.items():
        if key == "tags":
            body["tags"] = value
        elif key == "endpoints":
            props["endpoints"] = value
        else:
            props[key] = value
    return body


def _endpoint(i: int, **props: Any) -> dict[str, Any]:
    return {
        "name": f"e{i}",
        "type": "Microsoft.Network/trafficManagerProfiles/externalEndpoints",
        "properties": {"target": f"192.0.2.{i % 250}", **props},
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"tags": {f"t{i}": "v" for i in range(51)}},
        {"tags": {"t": "v" * 257}},
        {"tags": {"a/b": "v"}},
        {"endpoints": [_endpoint(i, priority=i + 1) for i in range(201)]},
        {
            "trafficRoutingMethod": "Performance",
            "endpoints": [_endpoint(0, endpointLocation="europe-west1")],
        },
        {
            "trafficRoutingMethod": "Geographic",
            "endpoints": [_endpoint(0, geoMapping=["EU"]), _endpoint(1, geoMapping=["WORLD"])],
        },
    ],
)
def test_what_arm_and_traffic_manager_refuse_is_refused(
    client: TrafficManagerManagementClient, changes: dict[str, Any]
) -> None:
    group = fresh_name("rg-")
    body = _with(profile(["127.0.0.1"], 80), **changes)
    with pytest.raises(HttpResponseError) as excinfo:
        client.profiles.create_or_update(group, "p", body)
    assert excinfo.value.status_code == 400
    assert [p.name for p in client.profiles.list_by_resource_group(group)] == []


def test_region_display_names_and_documented_codes_are_taken(
    client: TrafficManagerManagementClient,
) -> None:
    group = fresh_name("rg-")
    performance = _with(
        profile(["127.0.0.1"], 80),
        trafficRoutingMethod="Performance",
        endpoints=[
            _endpoint(0, endpointLocation="West Europe"),
            _endpoint(1, endpointLocation="swedencentral"),
        ],
    )
    client.profiles.create_or_update(group, "p", performance)
    geographic = _with(
        profile(["127.0.0.1"], 80),
        trafficRoutingMethod="Geographic",
        endpoints=[
            _endpoint(0, geoMapping=["GEO-EU", "US-CA"]),
            _endpoint(1, geoMapping=["WORLD"]),
        ],
    )
    client.profiles.create_or_update(group, "q", geographic)
    assert sorted(p.name for p in client.profiles.list_by_resource_group(group)) == ["p", "q"]
