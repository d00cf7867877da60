"""A wire-level fake of Azure Traffic Manager (the ARM REST subset for profiles and endpoints).

It serves HTTPS on loopback with a ``trustme`` certificate (azure-core refuses bearer tokens
over plain HTTP), accepts any ``api-version``, wants the bearer token of its own
``credential()``, and does what Traffic Manager does: it probes every enabled endpoint per
the profile's ``monitorConfig`` and reports ``endpointMonitorStatus`` (``CheckingEndpoint``
until the first verdict, then ``Online`` or ``Degraded``; ``Disabled`` for a disabled
endpoint, ``Inactive`` in a disabled profile, ``Unmonitored`` with Always Serve).

``time_scale`` shrinks the service's 10 s / 30 s intervals and 5-10 s timeouts for tests
(0.02 probes a 10 s check every 0.2 s). Only loopback targets are probed: a host name or a
public address stays ``CheckingEndpoint``, so a test never sends traffic off the machine.
HTTPS probes do not verify certificates, as Traffic Manager's do not. Where Azure would stop
probing an Always Serve endpoint, the fake keeps probing it quietly, so turning Always Serve off
shows the current verdict at once instead of ``CheckingEndpoint``.

Usage::

    with TrafficManagerFake(time_scale=0.02) as fake:
        client = TrafficManagerManagementClient(
            fake.credential(), "sub", base_url=fake.url, connection_verify=fake.ca_path
        )
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
import re
import socket
import ssl
import tempfile
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from multiregion.errors import InvalidInput, NotFound
from multiregion.model import HealthCheck, HealthState, ProbeTarget
from multiregion.probing import ProbeScheduler
from multiregion.testing.emulators.process import LOOPBACK
from multiregion.testing.fakes.serving import Served, read_body, send_json, unverified_tls

TOKEN = "multiregion-fake-arm-token"
_PROFILES = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.Network/trafficmanagerprofiles"
    r"(?:/(?P<profile>[^/]+)(?:/(?P<type>[^/]+)/(?P<endpoint>[^/]+))?)?$",
    re.IGNORECASE,
)
_ENDPOINT_TYPES = {
    "externalendpoints": "ExternalEndpoints",
    "azureendpoints": "AzureEndpoints",
    "nestedendpoints": "NestedEndpoints",
}
_MONITOR_STATUS = {
    HealthState.UNKNOWN: "CheckingEndpoint",
    HealthState.HEALTHY: "Online",
    HealthState.UNHEALTHY: "Degraded",
}


@attrs.frozen
class FakeToken:
    """What ``get_token`` returns (the fields of azure-core's ``AccessToken``)."""

    token: str
    expires_on: int


class FakeCredential:
    """A TokenCredential whose token the fake accepts."""

    def __init__(self, token: str = TOKEN) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)

    def __repr__(self) -> str:
        return "FakeCredential()"


class TrafficManagerFake(Served):
    """The fake service on ``https://127.0.0.1:<port>``; ``start``/``stop`` or a ``with`` block."""

    def __init__(self, *, time_scale: float = 1.0, port: int = 0) -> None:
        if isinstance(time_scale, bool) or not isinstance(time_scale, int | float):
            raise InvalidInput("time_scale", "must be a number")
        if not 0 < time_scale <= 1:
            raise InvalidInput("time_scale", "must be above 0 and at most 1")
        self.time_scale = float(time_scale)
        self._port = port
        self._lock = threading.RLock()
        self._profiles: dict[str, dict[str, Any]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._scheduler: ProbeScheduler | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.ca_path = ""

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        assert self._server is not None, "the fake is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"

    def credential(self) -> FakeCredential:
        return FakeCredential()

    def start(self) -> TrafficManagerFake:
        import trustme

        authority = trustme.CA()
        self._tmp = tempfile.TemporaryDirectory(prefix="multiregion-tm-")
        self.ca_path = str(Path(self._tmp.name) / "ca.pem")
        authority.cert_pem.write_to_path(self.ca_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        authority.issue_cert(LOOPBACK, "localhost").configure_cert(context)
        # Traffic Manager ignores certificate errors
        self._scheduler = ProbeScheduler(ssl_context=unverified_tls())
        server = ThreadingHTTPServer((LOOPBACK, self._port), _handler(self))
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="tm-fake", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._scheduler is not None:
            self._scheduler.close()
            self._scheduler = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def reset(self) -> None:
        """Forget every profile (and stop probing)."""
        with self._lock:
            for profile_id in list(self._profiles):
                self._profiles.pop(profile_id)
                self._sync_probes(profile_id, None)

    # ------------------------------------------------------------------ the service

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        match = _PROFILES.match(path)
        if match is None:
            return _error(404, "InvalidResourceType", "this fake serves Traffic Manager only")
        sub, rg, name = match["sub"], match["rg"], match["profile"]
        with self._lock:
            if name is None:
                if method != "GET":
                    return _error(405, "MethodNotAllowed", method)
                prefix = _profile_id(sub, rg, "").lower()
                found = [
                    self._view(p) for k, p in sorted(self._profiles.items()) if k.startswith(prefix)
                ]
                return 200, {"value": found}
            profile_id = _profile_id(sub, rg, name)
            if match["type"] is None:
                return self._profile(method, profile_id, name, body)
            kind = _ENDPOINT_TYPES.get(match["type"].lower())
            if kind is None:
                return _error(400, "BadRequest", f"unknown endpoint type {match['type']}")
            return self._endpoint(method, profile_id, kind, match["endpoint"], body)

    def _profile(self, method: str, profile_id: str, name: str, body: Any) -> tuple[int, Any]:
        key = profile_id.lower()
        current = self._profiles.get(key)
        if method == "GET":
            return (200, self._view(current)) if current else _not_found(name)
        if method == "DELETE":
            if current is None:
                return 204, None
            del self._profiles[key]
            self._sync_probes(key, None)
            return 200, {"boolean": True}
        if method not in ("PUT", "PATCH"):
            return _error(405, "MethodNotAllowed", method)
        if not isinstance(body, dict):
            return _error(400, "BadRequest", "the body must be a JSON object")
        if method == "PATCH":
            if current is None:
                return _not_found(name)
            merged = copy.deepcopy(current)
            _merge(merged, body)
            if "tags" in body:  # Resource Manager replaces tags as a whole
                merged["tags"] = dict(body["tags"] or {})
            body = merged
        problem = _check_profile(body)
        if problem:
            return _error(400, "BadRequest", problem)
        stored = _stored_profile(profile_id, name, body)
        self._profiles[key] = stored
        self._sync_probes(key, stored)
        return (201 if current is None and method == "PUT" else 200), self._view(stored)

    def _endpoint(
        self, method: str, profile_id: str, kind: str, name: str, body: Any
    ) -> tuple[int, Any]:
        key = profile_id.lower()
        profile = self._profiles.get(key)
        if profile is None:
            return _not_found(profile_id.rsplit("/", 1)[-1])
        endpoints: list[dict[str, Any]] = profile["properties"]["endpoints"]
        index = next(
            (i for i, e in enumerate(endpoints) if e["name"].lower() == name.lower()), None
        )
        if method == "GET":
            if index is None:
                return _not_found(name)
            return 200, self._view(profile)["properties"]["endpoints"][index]
        if method == "DELETE":
            if index is None:
                return 204, None
            endpoints.pop(index)
            self._sync_probes(key, profile)
            return 200, {"boolean": True}
        if method not in ("PUT", "PATCH") or not isinstance(body, dict):
            return _error(400, "BadRequest", "PUT or PATCH a JSON object")
        if method == "PATCH":
            if index is None:
                return _not_found(name)
            merged = copy.deepcopy(endpoints[index])
            _merge(merged, body)
            body = merged
        endpoint = _stored_endpoint(profile_id, kind, name, body)
        if index is None:
            endpoints.append(endpoint)
        else:
            endpoints[index] = endpoint
        problem = _check_profile(profile)
        if problem:
            return _error(400, "BadRequest", problem)
        self._sync_probes(key, profile)
        position = index if index is not None else len(endpoints) - 1
        view = self._view(profile)["properties"]["endpoints"][position]
        return (201 if index is None and method == "PUT" else 200), view

    # ------------------------------------------------------------------ probing

    def _sync_probes(self, key: str, profile: dict[str, Any] | None) -> None:
        """Probe exactly the enabled loopback endpoints of ``profile`` (none if deleted)."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        wanted: dict[str, ProbeTarget] = {}
        if profile is not None and profile["properties"].get("profileStatus") == "Enabled":
            check = self._check(profile["properties"]["monitorConfig"])
            for endpoint in profile["properties"]["endpoints"]:
                props = endpoint["properties"]
                target = str(props.get("target", ""))
                if props.get("endpointStatus") == "Enabled" and _loopback(target):
                    wanted[f"{key}|{endpoint['name'].lower()}"] = ProbeTarget(
                        "endpoint", target, check
                    )
        registered = scheduler.keys()
        for probe_key in registered:
            if probe_key.startswith(f"{key}|") and probe_key not in wanted:
                scheduler.remove(probe_key)
        for probe_key, probe_target in wanted.items():
            scheduler.add(probe_key, probe_target)

    def _check(self, monitor: dict[str, Any]) -> HealthCheck:
        ranges = monitor.get("expectedStatusCodeRanges") or [{"min": 200, "max": 200}]
        headers = {
            h.get("name", "").lower(): h.get("value") for h in monitor.get("customHeaders") or []
        }
        return HealthCheck(
            protocol=str(monitor["protocol"]).lower(),
            port=int(monitor["port"]),
            path=str(monitor.get("path") or "/"),
            interval_s=monitor["intervalInSeconds"] * self.time_scale,
            timeout_s=monitor["timeoutInSeconds"] * self.time_scale,
            failure_threshold=int(monitor["toleratedNumberOfFailures"]) + 1,
            expected_status=(int(ranges[0]["min"]), int(ranges[0]["max"])),
            host=headers.get("host"),
        )

    def _view(self, profile: dict[str, Any]) -> dict[str, Any]:
        """The profile as served: stored fields plus the monitor statuses of now."""
        view = copy.deepcopy(profile)
        key = profile["id"].lower()
        props = view["properties"]
        statuses = []
        for endpoint in props["endpoints"]:
            status = self._monitor_status(key, props, endpoint)
            endpoint["properties"]["endpointMonitorStatus"] = status
            statuses.append(status)
        props["monitorConfig"]["profileMonitorStatus"] = _profile_status(props, statuses)
        return view

    def _monitor_status(self, key: str, props: dict[str, Any], endpoint: dict[str, Any]) -> str:
        ep = endpoint["properties"]
        if props.get("profileStatus") != "Enabled":
            return "Inactive"
        if ep.get("endpointStatus") != "Enabled":
            return "Disabled"
        if ep.get("alwaysServe") == "Enabled":
            return "Unmonitored"
        scheduler = self._scheduler
        probe_key = f"{key}|{endpoint['name'].lower()}"
        if scheduler is None:
            return "CheckingEndpoint"
        try:
            return _MONITOR_STATUS[scheduler.health(probe_key).state]
        except NotFound:  # not probed: a host name or an address off this machine
            return "CheckingEndpoint"


def _profile_status(props: dict[str, Any], statuses: list[str]) -> str:
    if props.get("profileStatus") != "Enabled":
        return "Disabled"
    live = [s for s in statuses if s not in ("Disabled", "Inactive")]
    if not live:
        return "Inactive"
    if any(s in ("Online", "Unmonitored") for s in live):
        return "Online"
    if all(s == "Degraded" for s in live):
        return "Degraded"
    return "CheckingEndpoints"


def _profile_id(sub: str, rg: str, name: str) -> str:
    return (
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/"
        f"trafficmanagerprofiles/{name}"
    )


def _stored_profile(profile_id: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    props = copy.deepcopy(body.get("properties") or {})
    props.setdefault("profileStatus", "Enabled")
    dns = props.setdefault("dnsConfig", {})
    dns["fqdn"] = f"{dns.get('relativeName', name)}.trafficmanager.net"
    props["endpoints"] = [
        _stored_endpoint(
            profile_id,
            _ENDPOINT_TYPES.get(
                str(e.get("type", "")).rsplit("/", 1)[-1].lower(), "ExternalEndpoints"
            ),
            e["name"],
            e,
        )
        for e in props.get("endpoints") or []
    ]
    return {
        "id": profile_id,
        "name": name,
        "type": "Microsoft.Network/trafficManagerProfiles",
        "location": body.get("location", "global"),
        "tags": dict(body.get("tags") or {}),
        "properties": props,
    }


def _stored_endpoint(profile_id: str, kind: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    props = copy.deepcopy(body.get("properties") or {})
    props.setdefault("endpointStatus", "Enabled")
    props.setdefault("alwaysServe", "Disabled")
    props.pop("endpointMonitorStatus", None)
    type_name = kind[0].lower() + kind[1:]
    return {
        "id": f"{profile_id}/{type_name}/{name}",
        "name": name,
        "type": f"Microsoft.Network/trafficManagerProfiles/{type_name}",
        "properties": props,
    }


@functools.cache
def documented() -> dict[str, Any]:
    """Azure's regions, Traffic Manager's geographic codes and ARM's limits, as the Azure
    adapter checks them (one dated data file, sources inside)."""
    text = resources.files("multiregion.providers.azure").joinpath("data/trafficmanager.json")
    loaded: dict[str, Any] = json.loads(text.read_text())
    return loaded


def _check_tags(tags: object) -> str:
    """ARM's limits: 50 tags per resource, names up to 512 characters, values up to 256."""
    if tags is None:
        return ""
    if not isinstance(tags, dict):
        return "tags must be an object"
    limits = documented()["limits"]
    if len(tags) > limits["tags_per_resource"]:
        return f"{len(tags)} tags; a resource holds at most {limits['tags_per_resource']}"
    for name, value in tags.items():
        if len(name) > limits["tag_name_chars"] or len(str(value)) > limits["tag_value_chars"]:
            return f"tag {name[:40]!r} is longer than ARM allows"
        if set(name) & set("<>%&\\?/"):
            return f"tag name {name[:40]!r} holds a character ARM refuses"
    return ""


def _location(value: object) -> bool:
    """endpointLocation: an Azure region, by name or display name ("West Europe")."""
    name = str(value or "").replace(" ", "").lower()
    return name in documented()["regions"]


def _check_profile(body: dict[str, Any]) -> str:
    """What Traffic Manager would refuse in a profile, or "" when it is acceptable."""
    props = body.get("properties")
    if not isinstance(props, dict):
        return "properties are required"
    problem = _check_tags(body.get("tags"))
    if problem:
        return problem
    if len(props.get("endpoints") or []) > documented()["limits"]["endpoints_per_profile"]:
        return "a profile holds at most 200 endpoints"
    method = props.get("trafficRoutingMethod")
    if method not in ("Priority", "Weighted", "Performance", "Geographic", "MultiValue", "Subnet"):
        return f"trafficRoutingMethod {method!r} is not valid"
    monitor = props.get("monitorConfig")
    if not isinstance(monitor, dict):
        return "monitorConfig is required"
    protocol = monitor.get("protocol")
    interval = monitor.get("intervalInSeconds", 30)
    timeout = monitor.get("timeoutInSeconds", 10)
    tolerated = monitor.get("toleratedNumberOfFailures", 3)
    if protocol not in ("HTTP", "HTTPS", "TCP"):
        return f"monitorConfig.protocol {protocol!r} is not valid"
    if protocol == "TCP" and monitor.get("path"):
        return "monitorConfig.path must be empty for TCP"
    if not isinstance(monitor.get("port"), int) or not 1 <= monitor["port"] <= 65535:
        return "monitorConfig.port is not valid"
    if interval not in (10, 30):
        return "monitorConfig.intervalInSeconds must be 10 or 30"
    if not isinstance(timeout, int) or not 5 <= timeout <= (9 if interval == 10 else 10):
        return "monitorConfig.timeoutInSeconds is out of range for the interval"
    if not isinstance(tolerated, int) or not 0 <= tolerated <= 9:
        return "monitorConfig.toleratedNumberOfFailures must be 0-9"
    monitor.update(intervalInSeconds=interval, timeoutInSeconds=timeout)
    monitor["toleratedNumberOfFailures"] = tolerated
    seen: set[str] = set()
    geo: set[str] = set()
    for endpoint in props.get("endpoints") or []:
        ep = endpoint.get("properties") or {}
        lowered = str(endpoint.get("name", "")).lower()
        if not lowered or lowered in seen:
            return f"endpoint name {endpoint.get('name')!r} is missing or repeated"
        seen.add(lowered)
        if not ep.get("target"):
            return f"endpoint {endpoint['name']} has no target"
        weight = ep.get("weight")
        if method == "Weighted" and not (isinstance(weight, int) and 1 <= weight <= 1000):
            return f"endpoint {endpoint['name']}: weight must be 1-1000"
        priority = ep.get("priority")
        if method == "Priority" and not (isinstance(priority, int) and 1 <= priority <= 1000):
            return f"endpoint {endpoint['name']}: priority must be 1-1000"
        if method == "Performance" and not _location(ep.get("endpointLocation")):
            return f"endpoint {endpoint['name']}: endpointLocation must be an Azure region"
        if method == "Geographic":
            codes = ep.get("geoMapping") or []
            if not codes:
                return f"endpoint {endpoint['name']}: geoMapping is required"
            unknown = set(codes) - set(documented()["geographic_codes"])
            if unknown:
                return f"geoMapping {sorted(unknown)[:5]} are no Traffic Manager codes"
            if geo & set(codes):
                return "a geographic code is mapped to two endpoints"
            geo.update(codes)
    priorities = [(e.get("properties") or {}).get("priority") for e in props.get("endpoints") or []]
    if method == "Priority" and len(set(priorities)) != len(priorities):
        return "endpoint priorities must be distinct"
    return ""


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """JSON merge patch, as ARM applies PATCH bodies (lists are replaced)."""
    for name, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(name), dict):
            _merge(target[name], value)
        elif value is None:
            target.pop(name, None)
        else:
            target[name] = value


def _loopback(target: str) -> bool:
    try:
        return ipaddress.ip_address(target).is_loopback
    except ValueError:
        return False


def _error(status: int, code: str, message: str) -> tuple[int, Any]:
    return status, {"error": {"code": code, "message": message}}


def _not_found(name: str) -> tuple[int, Any]:
    return _error(404, "NotFound", f"The resource '{name}' was not found.")


def _handler(fake: TrafficManagerFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # headers and body go out in two writes: without this, Nagle's algorithm and
            # delayed ACKs add 40 ms to every answer
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read the state through the API."""

        def _serve(self) -> None:
            raw = read_body(self)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                status, payload = _error(401, "AuthenticationFailed", "missing or wrong token")
            else:
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    status, payload = _error(400, "BadRequest", "the body is not JSON")
                else:
                    status, payload = fake.handle(self.command, urlsplit(self.path).path, body)
            send_json(
                self,
                status,
                payload,
                "application/json; charset=utf-8",
                phrase=HTTPStatus(status).phrase,
                headers={"x-ms-request-id": "fake"},
            )

        do_GET = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler
