"""HealthProbe on Compute health checks, probing through Cloud DNS.

Google probes an external endpoint (an IP address outside Google Cloud) only when a Cloud DNS
record set's routing policy lists it under ``healthCheckedTargets`` with a health check, from
the check's three ``sourceRegions``. So ``ensure`` creates (or updates) the Compute health check
and a one-item ``wrr`` record set ``<check>.mr-probes.<zone>`` naming the target: probing then
runs in Google's infrastructure without this process.

Google reports those verdicts to Cloud Logging only, not through an API: ``status`` reads them
from the project's fake (``multiregion.testing.fakes.clouddns``) and, against Google, answers
UNKNOWN with a detail saying where to look.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from typing import Any

from multiregion import validate
from multiregion.errors import InvalidInput, NotFound
from multiregion.interfaces import HealthProbe, ProbeCapabilities
from multiregion.model import EndpointHealth, HealthCheck, HealthState, ProbeTarget
from multiregion.providers.gcp.restapi import RestApis, comparable, gcp_region

PROBE_LABEL = "mr-probes"
MARKER = "multiregion"
MAX_INTERVAL_S = 300
SOURCE_REGION_MIN_INTERVAL_S = 30
_CHECK_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,58}[a-z0-9])?$")
_KINDS = {"http": "httpHealthCheck", "https": "httpsHealthCheck", "tcp": "tcpHealthCheck"}


def three_regions(value: Iterable[str] | None) -> tuple[str, ...]:
    """None or exactly three distinct regions, as Compute requires."""
    if value is None:
        return ()
    if isinstance(value, str):
        raise InvalidInput("source_regions", "must be a list of three regions")
    regions = tuple(
        gcp_region("source_regions", validate.region("source_regions", r)) for r in value
    )
    if len(regions) != 3 or len(set(regions)) != 3:
        raise InvalidInput("source_regions", "Compute needs exactly 3 distinct regions when set")
    return regions


def _whole(field: str, value: float, low: int, high: int) -> int:
    if value != int(value) or not low <= value <= high:
        raise InvalidInput(field, f"{value:g} must be whole seconds from {low} to {high} on GCP")
    return int(value)


def check_body(
    name: str, check: HealthCheck, regions: tuple[str, ...], description: str
) -> dict[str, Any]:
    """The Compute health check resource for ``check``; InvalidInput for what Compute cannot
    run (fractional seconds, intervals outside 1-300 s, or under 30 s with source regions,
    expected statuses other than 200: Google's HTTP checks pass on 200 only)."""
    if not isinstance(check, HealthCheck):
        raise InvalidInput("health_check", "must be a HealthCheck")
    low = SOURCE_REGION_MIN_INTERVAL_S if regions else 1
    interval = _whole("health_check.interval_s", check.interval_s, low, MAX_INTERVAL_S)
    timeout = _whole("health_check.timeout_s", check.timeout_s, 1, interval)
    spec: dict[str, Any] = {"port": check.port}
    if check.protocol != "tcp":
        if check.expected_status != (200, 200):
            raise InvalidInput(
                "health_check.expected_status",
                "Compute HTTP(S) checks pass on 200 only: (200, 200)",
            )
        spec["requestPath"] = check.path
        if check.host is not None:
            spec["host"] = check.host
    body: dict[str, Any] = {
        "name": name,
        "description": description,
        "type": check.protocol.upper(),
        "checkIntervalSec": interval,
        "timeoutSec": timeout,
        "healthyThreshold": check.success_threshold,
        "unhealthyThreshold": check.failure_threshold,
        _KINDS[check.protocol]: spec,
    }
    if regions:
        body["sourceRegions"] = list(regions)
    return body


def same_check(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether Compute holds ``wanted`` already (defaults it fills in are ignored)."""
    kind = _KINDS[wanted["type"].lower()]
    return all(stored.get(k) == v for k, v in wanted.items() if k != kind) and all(
        stored.get(kind, {}).get(k) == v for k, v in wanted[kind].items()
    )


def ensure_check(apis: RestApis, body: dict[str, Any]) -> None:
    """Insert the check, or update it in place when it differs."""
    name = body["name"]
    checks = apis.compute.healthChecks()
    try:
        stored = apis.call(checks.get(project=apis.project, healthCheck=name), "healthChecks.get")
    except NotFound:
        operation = apis.call(checks.insert(project=apis.project, body=body), "healthChecks.insert")
        apis.wait(operation, f"creating health check {name}")
        return
    if not same_check(stored, body):
        operation = apis.call(
            checks.update(project=apis.project, healthCheck=name, body=body),
            "healthChecks.update",
        )
        apis.wait(operation, f"updating health check {name}")


def delete_check(apis: RestApis, name: str) -> None:
    operation = apis.call(
        apis.compute.healthChecks().delete(project=apis.project, healthCheck=name),
        "healthChecks.delete",
    )
    apis.wait(operation, f"deleting health check {name}")


class ComputeHealthProbe(HealthProbe):
    """Managed HTTP/HTTPS/TCP checks on IP addresses, run by Google from ``source_regions``.

    ``zone`` is the Cloud DNS managed zone that holds the probe record sets. ``endpoint`` points
    at the fake (anonymous credentials); otherwise Application Default Credentials are used.
    """

    def __init__(
        self,
        *,
        project: str,
        zone: str,
        source_regions: Iterable[str] | None = ("us-central1", "us-east1", "europe-west1"),
        endpoint: str | None = None,
        credentials: Any = None,
        timeout_s: float = 30.0,
        num_retries: int = 3,
    ) -> None:
        self._zone_name = validate.endpoint_name("zone", zone)
        self.source_regions = three_regions(source_regions)
        self._apis = RestApis(
            project=project,
            endpoint=endpoint,
            credentials=credentials,
            timeout_s=timeout_s,
            num_retries=num_retries,
        )
        self.capabilities = ProbeCapabilities(
            protocols=frozenset(_KINDS),
            managed=True,
            min_interval_s=float(SOURCE_REGION_MIN_INTERVAL_S if self.source_regions else 1),
            reports_status=self._apis.emulated,
        )
        self._dns_name: str | None = None

    def __repr__(self) -> str:
        return f"ComputeHealthProbe(project={self._apis.project!r}, zone={self._zone_name!r})"

    @staticmethod
    def check_name(target_name: str) -> str:
        name = f"mr-{target_name}"
        if not _CHECK_NAME.match(name):
            raise InvalidInput("target.name", "on GCP: lowercase letters, digits and - (max 57)")
        return name

    def _record_name(self, check_name: str) -> str:
        if self._dns_name is None:
            self._dns_name = str(self._apis.zone(self._zone_name)["dnsName"])
        return f"{check_name}.{PROBE_LABEL}.{self._dns_name}"

    def _ensure(self, target: ProbeTarget) -> str:
        name = self.check_name(target.name)
        try:
            address = ipaddress.ip_address(target.address)
        except ValueError:
            raise InvalidInput(
                "target.address", "Cloud DNS health-checks IP addresses only"
            ) from None
        description = json.dumps(
            {MARKER: "probe", "target": target.name, "address": target.address}
        )
        body = check_body(name, target.check, self.source_regions, description)
        ensure_check(self._apis, body)
        record: dict[str, Any] = {
            "name": self._record_name(name),
            "type": "A" if address.version == 4 else "AAAA",
            "ttl": 30,
            "routingPolicy": {
                "healthCheck": self._apis.check_url(name),
                "wrr": {
                    "items": [
                        {
                            "weight": 1.0,
                            "healthCheckedTargets": {"externalEndpoints": [target.address]},
                        }
                    ]
                },
            },
        }
        stored = self._apis.rrsets(self._zone_name, record["name"])
        if [comparable(r) for r in stored] != [comparable(record)]:
            self._apis.change(self._zone_name, [record], stored)
        return name

    def _described(self, stored: dict[str, Any]) -> dict[str, Any] | None:
        try:
            described = json.loads(stored.get("description") or "{}")
        except ValueError:
            return None
        if not isinstance(described, dict) or described.get(MARKER) != "probe":
            return None
        return described

    def _get(self, target_name: str) -> dict[str, Any]:
        name = self.check_name(target_name)
        stored: dict[str, Any] = self._apis.call(
            self._apis.compute.healthChecks().get(project=self._apis.project, healthCheck=name),
            "healthChecks.get",
        )
        if self._described(stored) is None:
            raise NotFound(f"{name} is not a check this probe manages")
        return stored

    def _status(self, name: str) -> EndpointHealth:
        stored = self._get(name)
        described = self._described(stored) or {}
        if not self.capabilities.reports_status:
            return EndpointHealth(
                name,
                HealthState.UNKNOWN,
                detail="Google reports external-endpoint health to Cloud Logging only",
            )
        targets = self._apis.fake_health(stored["name"]).get("targets", {})
        verdict = targets.get(described.get("address"), {})
        state = HealthState[verdict.get("state", "UNKNOWN")]
        return EndpointHealth(name, state, detail=str(verdict.get("detail", "")))

    def _list(self) -> list[str]:
        request = self._apis.compute.healthChecks().list(project=self._apis.project)
        names: list[str] = []
        while request is not None:
            page = self._apis.call(request, "healthChecks.list")
            for stored in page.get("items", []):
                described = self._described(stored)
                if described is not None:
                    names.append(str(described["target"]))
            request = self._apis.compute.healthChecks().list_next(request, page)
        return names

    def _delete(self, name: str) -> None:
        stored = self._get(name)
        record = self._apis.rrsets(self._zone_name, self._record_name(stored["name"]))
        self._apis.change(self._zone_name, [], record)
        delete_check(self._apis, stored["name"])

    def _expected_detection_s(self, check: HealthCheck) -> float:
        return check.expected_detection_s()
