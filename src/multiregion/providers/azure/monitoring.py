"""The HealthProbe on Traffic Manager endpoint monitoring (managed: Azure runs the probes).

Each check is a profile of its own holding one external endpoint, the target, with the check
as the profile's monitorConfig; its verdict is that endpoint's ``endpointMonitorStatus``
(Online -> healthy, Degraded -> unhealthy, CheckingEndpoint -> unknown).
"""

from __future__ import annotations

from typing import Any

from multiregion import validate
from multiregion.errors import NotFound
from multiregion.interfaces import HealthProbe, ProbeCapabilities
from multiregion.model import PROTOCOLS, EndpointHealth, HealthCheck, ProbeTarget
from multiregion.providers.azure import profiles as tm
from multiregion.providers.azure.errors import translated

PROBE_TAG = "multiregion-probe"
TARGET = "target"


class TrafficManagerProbe(HealthProbe):
    """Checks as Traffic Manager profiles in ``resource_group`` (settings as for the router)."""

    capabilities = ProbeCapabilities(
        protocols=frozenset(PROTOCOLS),
        managed=True,
        intervals_s=tm.INTERVALS_S,
        min_interval_s=min(tm.INTERVALS_S),
    )

    def __init__(
        self,
        subscription_id: str,
        resource_group: str,
        *,
        credential: Any = None,
        endpoint: str = tm.ARM,
        connection_verify: bool | str = True,
        retries: int = 3,
        timeout_s: float = 30.0,
        ttl: int = 60,
    ) -> None:
        self._client = tm.management_client(
            subscription_id,
            resource_group,
            credential=credential,
            endpoint=endpoint,
            connection_verify=connection_verify,
            retries=retries,
            timeout_s=timeout_s,
        )
        self._group = resource_group
        self._ttl = validate.ttl("ttl", ttl)

    def __repr__(self) -> str:
        return f"TrafficManagerProbe(resource_group={self._group!r})"

    def _ensure(self, target: ProbeTarget) -> str:
        monitor = tm.monitor_config(target.check)
        name = tm.profile_name("probe", target.name)
        body = {
            "location": "global",
            "tags": {PROBE_TAG: target.name},
            "properties": {
                "profileStatus": "Enabled",
                "trafficRoutingMethod": "Priority",
                "dnsConfig": {"relativeName": name, "ttl": self._ttl},
                "monitorConfig": monitor,
                "endpoints": [
                    {
                        "name": TARGET,
                        "type": tm.EXTERNAL_TYPE,
                        "properties": {
                            "target": target.address,
                            "priority": 1,
                            "endpointStatus": "Enabled",
                        },
                    }
                ],
            },
        }
        with translated(f"ensure check {target.name}"):
            profile = self._client.profiles.create_or_update(self._group, name, body)
        return str(profile.id)

    def _status(self, name: str) -> EndpointHealth:
        profile = self._profile(name)
        endpoints = profile["properties"].get("endpoints") or []
        if not endpoints:
            raise NotFound(f"check {name} has no endpoint")
        status = tm.monitor_status(endpoints[0])
        return EndpointHealth(name=name, state=tm.health_of(status), detail=status)

    def _list(self) -> list[str]:
        with translated("list checks"):
            found = self._client.profiles.list_by_resource_group(self._group)
            names = [(p.tags or {}).get(PROBE_TAG) for p in found]
        return [n for n in names if n]

    def _delete(self, name: str) -> None:
        self._profile(name)
        with translated(f"delete check {name}"):
            self._client.profiles.delete(self._group, tm.profile_name("probe", name))

    def _expected_detection_s(self, check: HealthCheck) -> float:
        return tm.detection_s(check)

    def close(self) -> None:
        self._client.close()

    def _profile(self, name: str) -> dict[str, Any]:
        profile = tm.read_profile(
            self._client, self._group, tm.profile_name("probe", name), f"read check {name}"
        )
        if (profile.get("tags") or {}).get(PROBE_TAG) != name:
            raise NotFound(f"no check {name}")
        return profile
