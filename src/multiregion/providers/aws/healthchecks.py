"""HealthProbe on Route 53 health checks (managed: AWS's checkers probe from many regions).

A check is the library's when its CallerReference starts with this handle's prefix and its
tags name it; checks anybody else made are never listed, changed or deleted. Route 53 allows
intervals of 10 or 30 seconds and thresholds of 1 to 10, counts 2xx and 3xx answers as healthy,
and uses one threshold for going down and coming back; anything the library cannot express
exactly is refused with ``InvalidInput`` before any call.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from multiregion import validate
from multiregion.errors import AlreadyExists, InvalidInput, NotFound, PreconditionFailed
from multiregion.interfaces import HealthProbe, ProbeCapabilities
from multiregion.model import EndpointHealth, HealthCheck, HealthState, ProbeTarget
from multiregion.providers.aws.errors import error_code, translate_error, translated
from multiregion.providers.aws.route53_rules import limit, public_address
from multiregion.providers.aws.session import Connection

INTERVALS_S = (10.0, 30.0)
HEALTHY_SHARE = 0.18
"""Route 53 calls an endpoint healthy when more than 18% of its checkers see it healthy."""
TAG_NAME = "multiregion-probe"
TAG_NAMESPACE = "multiregion-namespace"
TAGS_PER_CALL = 10
_MUTABLE = ("IPAddress", "FullyQualifiedDomainName", "Port", "ResourcePath", "FailureThreshold")


def check_supported(check: HealthCheck) -> None:
    """Refuse what Route 53 health checks cannot do as asked."""
    if check.interval_s not in INTERVALS_S:
        raise InvalidInput("health_check.interval_s", "Route 53 checks every 10 or 30 seconds")
    if check.expected_status != (200, 399):
        raise InvalidInput(
            "health_check.expected_status", "Route 53 counts 2xx and 3xx as healthy, only"
        )
    if check.success_threshold > check.failure_threshold:
        raise InvalidInput(
            "health_check.success_threshold",
            "Route 53 recovers after failure_threshold successes; ask for at most that many",
        )


def check_config(address: str, check: HealthCheck, *, private_ok: bool = False) -> dict[str, Any]:
    """The HealthCheckConfig for probing ``address`` with ``check``; a private or loopback
    address only when ``private_ok`` (an emulator on this machine)."""
    check_supported(check)
    if not private_ok:
        public_address("target", address)
    config: dict[str, Any] = {
        "Type": check.protocol.upper(),
        "Port": check.port,
        "RequestInterval": int(check.interval_s),
        "FailureThreshold": check.failure_threshold,
    }
    try:
        config["IPAddress"] = str(ipaddress.ip_address(address))
    except ValueError:
        config["FullyQualifiedDomainName"] = address
        if check.host is not None and check.host != address:
            raise InvalidInput(
                "health_check.host", "Route 53 sends the target's own name to a host name"
            ) from None
    if check.protocol != "tcp":
        config["ResourcePath"] = check.path
        if check.host is not None:
            config["FullyQualifiedDomainName"] = check.host
    if check.protocol == "https":
        config["EnableSNI"] = True
    return config


T = TypeVar("T")
WORKERS = 8


class RateLimit:
    """At most ``per_s`` requests a second from one client, across its threads: Route 53
    allows five API requests a second per account and throttles beyond."""

    def __init__(self, per_s: float) -> None:
        self._gap = 1.0 / per_s
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, **_event: Any) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(self._next, now)
            self._next = start + self._gap
        if start > now:
            time.sleep(start - now)

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-send.route53", self.wait)


def rate_limited(client: Any, connection: Connection, requests_per_s: float | None) -> None:
    """Against Route 53, ``requests_per_s`` (default: the account quota); against an
    emulator on loopback, no limit unless one is asked for."""
    if requests_per_s is None:
        if not connection.verify_tls:
            return
        requests_per_s = float(limit("api_requests_per_s"))
    if isinstance(requests_per_s, bool) or not isinstance(requests_per_s, int | float):
        raise InvalidInput("requests_per_s", "must be a number")
    if not 0 < requests_per_s <= 1000:
        raise InvalidInput("requests_per_s", f"{requests_per_s!r} is not within (0, 1000]")
    RateLimit(requests_per_s).attach(client)


def run_all(calls: Sequence[Callable[[], T]]) -> list[T | Exception]:
    """Every call, a few at a time; each one's result or the exception it raised."""

    def outcome(call: Callable[[], T]) -> T | Exception:
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - handed back to the caller, who cleans up
            return exc

    if len(calls) <= 1:
        return [outcome(c) for c in calls]
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(calls))) as pool:
        return list(pool.map(outcome, calls))


def expected_detection_s(check: HealthCheck) -> float:
    """The first failed probe comes half an interval after the outage on average, then
    ``failure_threshold - 1`` more intervals pass."""
    check_supported(check)
    return check.interval_s * (check.failure_threshold - 0.5)


def verdict(name: str, observations: list[dict[str, Any]]) -> EndpointHealth:
    """Route 53's own rule over its checkers' latest reports."""
    if not observations:
        return EndpointHealth(name, HealthState.UNKNOWN, detail="no checker has reported yet")
    reports = [o.get("StatusReport", {}) for o in observations]
    good = [r for r in reports if str(r.get("Status", "")).startswith("Success")]
    bad = [str(r.get("Status", "")) for r in reports if r not in good]
    healthy = len(good) > HEALTHY_SHARE * len(reports)
    times = [r["CheckedTime"].timestamp() for r in reports if "CheckedTime" in r]
    detail = f"{len(good)} of {len(reports)} Route 53 checkers report success"
    if bad:
        detail += f"; e.g. {bad[0]}"
    return EndpointHealth(
        name,
        HealthState.HEALTHY if healthy else HealthState.UNHEALTHY,
        checked_at=max(times) if times else None,
        detail=detail,
    )


def tagged_checks(client: Any, prefix: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Every health check whose CallerReference starts with ``prefix``, with its tags."""
    candidates: dict[str, dict[str, Any]] = {}
    with translated("ListHealthChecks"):
        for page in client.get_paginator("list_health_checks").paginate():
            for check in page["HealthChecks"]:
                if check["CallerReference"].startswith(prefix):
                    candidates[check["Id"]] = check
    ids = sorted(candidates)
    found = []
    for start in range(0, len(ids), TAGS_PER_CALL):
        with translated("ListTagsForResources"):
            sets = client.list_tags_for_resources(
                ResourceType="healthcheck", ResourceIds=ids[start : start + TAGS_PER_CALL]
            )["ResourceTagSets"]
        for tag_set in sets:
            tags = {t["Key"]: t["Value"] for t in tag_set.get("Tags", [])}
            found.append((candidates[tag_set["ResourceId"]], tags))
    return found


def create_check(
    client: Any, prefix: str, identity: str, config: dict[str, Any], tags: dict[str, str]
) -> str:
    """A tagged check whose CallerReference derives from ``identity`` and ``config``, so that
    a retried or repeated create returns the check made before instead of another one.
    Route 53 refuses a reference of a deleted check for some days: then a fresh suffix."""
    digest = hashlib.sha256(json.dumps([identity, config], sort_keys=True).encode())
    reference = prefix + digest.hexdigest()[:32]
    try:
        with translated("CreateHealthCheck"):
            created = client.create_health_check(
                CallerReference=reference, HealthCheckConfig=config
            )
    except AlreadyExists:
        with translated("CreateHealthCheck"):
            created = client.create_health_check(
                CallerReference=f"{reference}-{uuid.uuid4().hex[:8]}", HealthCheckConfig=config
            )
    check_id: str = created["HealthCheck"]["Id"]
    try:
        with translated("ChangeTagsForResource"):
            client.change_tags_for_resource(
                ResourceType="healthcheck",
                ResourceId=check_id,
                AddTags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
    except BaseException:
        delete_check(client, check_id)  # an untagged check would be nobody's
        raise
    return check_id


def delete_check(client: Any, check_id: str) -> None:
    try:
        client.delete_health_check(HealthCheckId=check_id)
    except ClientError as exc:
        if error_code(exc) == "HealthCheckInUse":
            raise PreconditionFailed(f"health check {check_id} is used by a record") from exc
        raise translate_error(exc, "DeleteHealthCheck") from exc
    except BotoCoreError as exc:
        raise translate_error(exc, "DeleteHealthCheck") from exc


class Route53Probe(HealthProbe):
    """Route 53 health checks named by ``ProbeTarget.name`` within ``namespace``."""

    def __init__(
        self,
        *,
        namespace: str = "default",
        endpoint_url: str | None = None,
        max_attempts: int = 5,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        requests_per_s: float | None = None,
    ) -> None:
        self.namespace = validate.endpoint_name("namespace", namespace)
        digest = hashlib.sha256(self.namespace.encode()).hexdigest()[:12]
        self._prefix = f"mrp-{digest}-"
        self.capabilities = ProbeCapabilities(
            protocols=frozenset({"http", "https", "tcp"}),
            managed=True,
            intervals_s=INTERVALS_S,
            min_interval_s=min(INTERVALS_S),
        )
        connection = Connection(
            endpoint_url=endpoint_url,
            max_attempts=max_attempts,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
        )
        self._private_ok = not connection.verify_tls
        self._route53 = connection.client("route53", "us-east-1", "probe")
        rate_limited(self._route53, connection, requests_per_s)

    def __repr__(self) -> str:
        return f"Route53Probe(namespace={self.namespace!r})"

    # ------------------------------------------------------------------ finding our checks

    def _owned(self) -> dict[str, dict[str, Any]]:
        """This namespace's checks by target name."""
        return {
            tags[TAG_NAME]: check
            for check, tags in tagged_checks(self._route53, self._prefix)
            if tags.get(TAG_NAMESPACE) == self.namespace and TAG_NAME in tags
        }

    def _find(self, name: str) -> dict[str, Any]:
        found = self._owned().get(name)
        if found is None:
            raise NotFound(f"no Route 53 health check named {name!r} in {self.namespace!r}")
        return found

    # ------------------------------------------------------------------ the interface

    def _ensure(self, target: ProbeTarget) -> str:
        """Creates the check, updates it in place, or (when its type or interval changes,
        which Route 53 cannot update) replaces it with a new one under a new id."""
        config = check_config(target.address, target.check, private_ok=self._private_ok)
        existing = self._owned().get(target.name)
        if existing is None:
            return self._create(target.name, config)
        current = existing["HealthCheckConfig"]
        if any(current.get(k) != config.get(k) for k in ("Type", "RequestInterval")):
            replacement = self._create(target.name, config)
            delete_check(self._route53, existing["Id"])
            return replacement
        changed = {k: config[k] for k in _MUTABLE if k in config and current.get(k) != config[k]}
        reset = [
            k
            for k in ("ResourcePath", "FullyQualifiedDomainName")
            if k in current and k not in config
        ]
        if changed or reset:
            args: dict[str, Any] = {**changed}
            if reset:
                args["ResetElements"] = reset
            with translated("UpdateHealthCheck"):
                self._route53.update_health_check(
                    HealthCheckId=existing["Id"],
                    HealthCheckVersion=existing["HealthCheckVersion"],
                    **args,
                )
        return str(existing["Id"])

    def _create(self, name: str, config: dict[str, Any]) -> str:
        tags = {
            TAG_NAME: name,
            TAG_NAMESPACE: self.namespace,
            "Name": f"multiregion {self.namespace}/{name}",
        }
        return create_check(self._route53, self._prefix, name, config, tags)

    def _status(self, name: str) -> EndpointHealth:
        check = self._find(name)
        with translated("GetHealthCheckStatus"):
            observations = self._route53.get_health_check_status(HealthCheckId=check["Id"])[
                "HealthCheckObservations"
            ]
        return verdict(name, observations)

    def _list(self) -> list[str]:
        return list(self._owned())

    def _delete(self, name: str) -> None:
        delete_check(self._route53, self._find(name)["Id"])

    def _expected_detection_s(self, check: HealthCheck) -> float:
        return expected_detection_s(check)
