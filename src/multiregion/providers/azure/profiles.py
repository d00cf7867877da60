"""What the Traffic Manager router and probe share: the ARM client, monitorConfig, statuses.

Traffic Manager probes every 10 or 30 s, times out after 5-10 s (5-9 s at 10 s), and
tolerates 0-9 failures before an endpoint is Degraded; one success brings it back. A
``HealthCheck`` outside that is refused with ``InvalidInput`` naming the field.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from functools import cache
from importlib import resources
from typing import Any

from multiregion import validate
from multiregion.errors import InvalidInput
from multiregion.model import HealthCheck, HealthState
from multiregion.providers.azure.credentials import endpoint_url, is_loopback, token_credential
from multiregion.providers.azure.errors import translated

ARM = "https://management.azure.com"
INTERVALS_S = (10.0, 30.0)
EXTERNAL = "ExternalEndpoints"
EXTERNAL_TYPE = "Microsoft.Network/trafficManagerProfiles/externalEndpoints"
_HEALTH = {
    "Online": HealthState.HEALTHY,
    "Unmonitored": HealthState.HEALTHY,
    "Degraded": HealthState.UNHEALTHY,
    "Stopped": HealthState.UNHEALTHY,
}
_RESOURCE_GROUP = re.compile(r"^[-\w._()]{1,90}(?<!\.)$")


def management_client(
    subscription_id: object,
    resource_group: object,
    *,
    credential: object,
    endpoint: object,
    connection_verify: object,
    retries: object,
    timeout_s: object,
) -> Any:
    """A TrafficManagerManagementClient, every setting checked first."""
    if not isinstance(subscription_id, str) or not subscription_id:
        raise InvalidInput("subscription_id", "must be the subscription's id")
    if not isinstance(resource_group, str) or not _RESOURCE_GROUP.match(resource_group):
        raise InvalidInput("resource_group", f"{resource_group!r} is not a resource group name")
    url = endpoint_url("endpoint", endpoint)
    if connection_verify is False and not is_loopback(url):
        raise InvalidInput("connection_verify", "TLS verification stays on off loopback")
    if not isinstance(connection_verify, bool | str):
        raise InvalidInput("connection_verify", "must be True, False or a CA bundle path")
    if isinstance(connection_verify, str) and not os.path.isfile(connection_verify):
        raise InvalidInput("connection_verify", f"{connection_verify} is not a CA bundle file")
    attempts = validate.int_range("retries", retries, 0, 10)
    timeout = validate.seconds("timeout_s", timeout_s, 0, 300)
    auth = token_credential(credential)
    from azure.mgmt.trafficmanager import TrafficManagerManagementClient

    return TrafficManagerManagementClient(
        auth,
        subscription_id,
        base_url=url,
        connection_verify=connection_verify,
        retry_total=attempts,
        connection_timeout=timeout,
        read_timeout=timeout,
    )


@cache
def documented() -> dict[str, Any]:
    """Azure regions, Traffic Manager's geographic codes and ARM's limits, from one dated file
    (``data/trafficmanager.json``, sources inside)."""
    text = resources.files("multiregion.providers.azure").joinpath("data/trafficmanager.json")
    loaded: dict[str, Any] = json.loads(text.read_text())
    return loaded


def limit(name: str) -> int:
    return int(documented()["limits"][name])


def azure_region(field: str, region: str) -> str:
    if region not in documented()["regions"]:
        raise InvalidInput(
            field, f"{region!r} is no Azure region (list of {documented()['retrieved']})"
        )
    return region


def geographic_code(field: str, code: str) -> str:
    if code not in documented()["geographic_codes"]:
        raise InvalidInput(
            field,
            f"{code!r} is no Traffic Manager geographic code such as GEO-EU, DE or US-CA "
            f"(list of {documented()['retrieved']})",
        )
    return code


def profile_name(kind: str, name: str) -> str:
    """A profile name (letters, digits, -) for a route or check name, unique by its hash."""
    slug = re.sub(r"[^a-z0-9-]", "-", name.lower())[:40].strip("-")
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"mr-{kind}-{slug}-{digest}"


def monitor_config(check: object) -> dict[str, Any]:
    """The profile's monitorConfig for ``check``; ``InvalidInput`` for what TM cannot run."""
    if not isinstance(check, HealthCheck):
        raise InvalidInput("health_check", "must be a HealthCheck")
    if check.interval_s not in INTERVALS_S:
        raise InvalidInput("health_check.interval_s", "Traffic Manager probes every 10 or 30 s")
    longest = 9 if check.interval_s == 10 else 10
    if not check.timeout_s.is_integer() or not 5 <= check.timeout_s <= longest:
        raise InvalidInput(
            "health_check.timeout_s",
            f"must be whole seconds from 5 to {longest} at a {check.interval_s:g} s interval",
        )
    if check.success_threshold != 1:
        raise InvalidInput(
            "health_check.success_threshold", "Traffic Manager trusts an endpoint again at once (1)"
        )
    config: dict[str, Any] = {
        "protocol": check.protocol.upper(),
        "port": check.port,
        "intervalInSeconds": int(check.interval_s),
        "timeoutInSeconds": int(check.timeout_s),
        "toleratedNumberOfFailures": check.failure_threshold - 1,
    }
    if check.protocol == "tcp":
        if check.path != "/" or check.host is not None:
            raise InvalidInput("health_check.path", "a TCP check has no path or host")
        if check.expected_status != (200, 399):
            raise InvalidInput("health_check.expected_status", "a TCP check has no status")
        return config
    low, high = check.expected_status
    config["path"] = check.path
    config["expectedStatusCodeRanges"] = [{"min": low, "max": high}]
    if check.host is not None:
        config["customHeaders"] = [{"name": "Host", "value": check.host}]
    return config


def check_of(config: dict[str, Any]) -> HealthCheck:
    """The HealthCheck a monitorConfig written by ``monitor_config`` stands for."""
    protocol = str(config["protocol"]).lower()
    ranges = config.get("expectedStatusCodeRanges") or [{"min": 200, "max": 399}]
    headers = {h["name"].lower(): h["value"] for h in config.get("customHeaders") or []}
    return HealthCheck(
        protocol=protocol,
        port=int(config["port"]),
        path="/" if protocol == "tcp" else str(config.get("path") or "/"),
        interval_s=float(config["intervalInSeconds"]),
        timeout_s=float(config["timeoutInSeconds"]),
        failure_threshold=int(config["toleratedNumberOfFailures"]) + 1,
        expected_status=(int(ranges[0]["min"]), int(ranges[0]["max"])),
        host=headers.get("host"),
    )


def health_of(monitor_status: object) -> HealthState:
    """endpointMonitorStatus -> verdict; CheckingEndpoint (and anything unknown) is UNKNOWN."""
    return _HEALTH.get(str(monitor_status or ""), HealthState.UNKNOWN)


def detection_s(check: HealthCheck) -> float:
    """(interval + timeout) x (tolerated failures + 1): Microsoft's documented worst case."""
    monitor_config(check)
    return (check.interval_s + check.timeout_s) * check.failure_threshold


def read_profile(client: Any, resource_group: str, name: str, operation: str) -> dict[str, Any]:
    """A profile as a plain dict of ARM's JSON. Raises ``NotFound``."""
    with translated(operation):
        profile = client.profiles.get(resource_group, name)
    found: dict[str, Any] = profile.as_dict()
    return found


def monitor_status(endpoint: dict[str, Any]) -> str:
    return str(endpoint.get("properties", {}).get("endpointMonitorStatus") or "CheckingEndpoint")
