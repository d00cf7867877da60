"""A wire-level fake of Cloud DNS (v1) and Compute health checks (v1), on loopback.

It serves the REST subset the GCP adapters use, answering in Google's JSON shapes so that
google-api-python-client drives it unchanged (``client_options={"api_endpoint": fake.url}``):

* ``dns/v1/projects/{p}/managedZones`` (create, get, list, delete), ``.../rrsets`` (list,
  with ``name``/``type`` filters and paging) and ``.../changes`` (create, get). A change is
  atomic: every deletion must match the stored record set exactly (else 412) and an addition
  must not exist yet (else 409), as Cloud DNS does.
* ``compute/v1/projects/{p}/global/healthChecks`` (insert, get, list, patch, update, delete)
  for HTTP, HTTPS and TCP checks, with Compute's limits (intervals 1-300 s, timeout at most the
  interval, thresholds 1-10, ``sourceRegions`` exactly 3 and then an interval of at least 30 s).
  Operations are returned already ``DONE``.

Like Cloud DNS it probes every external endpoint that a record set's routing policy lists under
``healthCheckedTargets`` with the policy's ``healthCheck`` (HTTPS without certificate checks,
as Google's probers), at the check's intervals multiplied by ``time_scale``, and its DNS server
(UDP, same port number as the HTTP API) answers by policy and health:

* ``wrr``: one item by weight among healthy items (zero weights only when nothing else can
  serve); every item unhealthy -> as if all were healthy.
* ``geo``: the item whose location is the client's region, else the first item (the fake has
  no distance table); unhealthy items are skipped.
* ``primaryBackup``: healthy primary targets (a ``trickleTraffic`` share goes to the backups);
  every primary unhealthy -> the backup geo policy; everything unhealthy -> the primaries.

Clients name their region with EDNS option ``CLIENT_REGION_OPTION`` (a fake-only extension;
Cloud DNS uses the resolver's location). One fake-only resource reads verdicts, since Google
reports external-endpoint health to Cloud Logging only:
``GET fake/v1/projects/{p}/global/healthChecks/{name}/health`` ->
``{"targets": {"<ip>": {"state": "HEALTHY"|"UNHEALTHY"|"UNKNOWN", "detail": ...}}}``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import ipaddress
import itertools
import json
import random
import re
import socket
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dnslib import AAAA, CNAME, QTYPE, RR, A, DNSRecord
from dnslib.server import DNSLogger, DNSServer

from multiregion.errors import AlreadyExists, InvalidInput, Unavailable
from multiregion.model import HealthCheck, HealthState, ProbeTarget
from multiregion.probing import ProbeScheduler
from multiregion.testing.fakes.serving import Served, read_body, send_json, unverified_tls

LOOPBACK = "127.0.0.1"
CLIENT_REGION_OPTION = 65430
"""EDNS option (local/experimental range) carrying the client's region as ASCII text."""
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_ROUTE = re.compile(r"^/(dns|compute|fake)/v1/projects/([^/]+)/(.*)$")
_COMPUTE_BASE = "https://www.googleapis.com/compute/v1/"
_QUIET = DNSLogger("-recv,-send,-request,-reply,-truncated,-error,-data")


class ApiError(Exception):
    """An error answered in Google's JSON error shape."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fqdn(name: str) -> str:
    return name.lower() if name.endswith(".") else name.lower() + "."


def _int(body: Mapping[str, Any], field: str, default: int, low: int, high: int) -> int:
    value = body.get(field, default)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(400, "invalid", f"Invalid value for field '{field}': {value!r}")
    return value


_CHECK_KINDS = {"HTTP": "httpHealthCheck", "HTTPS": "httpsHealthCheck", "TCP": "tcpHealthCheck"}


def _check_resource(project: str, body: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A validated health check resource as Compute stores it (defaults filled in)."""
    if not _NAME.match(name):
        raise ApiError(400, "invalid", f"Invalid value for field 'resource.name': '{name}'")
    kind = body.get("type")
    if kind not in _CHECK_KINDS:
        raise ApiError(400, "invalid", f"Invalid value for field 'resource.type': {kind!r}")
    interval = _int(body, "checkIntervalSec", 5, 1, 300)
    timeout = _int(body, "timeoutSec", 5, 1, 300)
    if timeout > interval:
        raise ApiError(400, "invalid", "timeoutSec must be less than or equal to checkIntervalSec")
    regions = list(body.get("sourceRegions") or [])
    if regions and (len(regions) != 3 or interval < 30):
        raise ApiError(
            400, "invalid", "sourceRegions needs exactly 3 regions and checkIntervalSec >= 30"
        )
    for region in regions:
        if region not in _regions():
            raise ApiError(400, "invalid", f"Invalid value for field 'sourceRegions': {region!r}")
    spec = dict(body.get(_CHECK_KINDS[kind]) or {})
    spec["port"] = _int(spec, "port", 443 if kind == "HTTPS" else 80, 1, 65535)
    if kind != "TCP":
        spec.setdefault("requestPath", "/")
    resource = {
        "kind": "compute#healthCheck",
        "name": name,
        "description": str(body.get("description", "")),
        "type": kind,
        "checkIntervalSec": interval,
        "timeoutSec": timeout,
        "healthyThreshold": _int(body, "healthyThreshold", 2, 1, 10),
        "unhealthyThreshold": _int(body, "unhealthyThreshold", 2, 1, 10),
        _CHECK_KINDS[kind]: spec,
        "selfLink": f"{_COMPUTE_BASE}projects/{project}/global/healthChecks/{name}",
    }
    if regions:
        resource["sourceRegions"] = regions
    return resource


def _targets(policy: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every item-like part of a routing policy that can carry rrdatas or health targets."""
    if "wrr" in policy:
        yield from policy["wrr"].get("items", [])
    if "geo" in policy:
        yield from policy["geo"].get("items", [])
    if "primaryBackup" in policy:
        yield policy["primaryBackup"].get("primaryTargets", {})
        yield from policy["primaryBackup"].get("backupGeoTargets", {}).get("items", [])


def _endpoints(part: Mapping[str, Any]) -> list[str]:
    if "healthCheckedTargets" in part:
        return list(part["healthCheckedTargets"].get("externalEndpoints", []))
    return list(part.get("externalEndpoints", []))


class CloudDnsFake(Served):
    """The fake server. ``time_scale`` multiplies every check interval and timeout (0.01 makes
    a 30 s check run every 0.3 s). Use as a context manager, or ``start``/``stop``."""

    def __init__(self, *, time_scale: float = 1.0, seed: int | None = None) -> None:
        if not 0 < time_scale <= 1:
            raise ValueError("time_scale must be above 0 and at most 1")
        self.time_scale = time_scale
        self._lock = threading.RLock()
        self._zones: dict[tuple[str, str], dict[str, Any]] = {}
        self._rrsets: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self._changes: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._checks: dict[tuple[str, str], dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self._rng = random.Random(seed)
        self._probes: ProbeScheduler | None = None
        self._probed: dict[str, tuple[str, HealthCheck]] = {}
        self._http: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self._dns: DNSServer | None = None
        self.port = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """The ``api_endpoint`` for google-api-python-client (dns v1 and compute v1)."""
        return f"http://{LOOPBACK}:{self.port}/"

    @property
    def dns_address(self) -> tuple[str, int]:
        """Where the fake's DNS server answers (UDP)."""
        return (LOOPBACK, self.port)

    def start(self) -> CloudDnsFake:
        for _ in range(20):
            http = ThreadingHTTPServer((LOOPBACK, 0), _handler(self))
            port = http.server_address[1]
            try:
                dns = DNSServer(_Resolver(self), address=LOOPBACK, port=port, logger=_QUIET)
            except OSError:  # the UDP port of that number is taken
                http.server_close()
                continue
            self._http, self._dns, self.port = http, dns, int(port)
            break
        else:
            raise Unavailable("no port free for both HTTP and UDP")
        # Google's HTTPS health checks do not verify certificates either
        self._probes = ProbeScheduler(ssl_context=unverified_tls())
        http.daemon_threads = True
        threading.Thread(target=http.serve_forever, name="clouddns-fake", daemon=True).start()
        dns.start_thread()
        return self

    def stop(self) -> None:
        """Stops serving and drops open connections, as a region going away would."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._connections.clear()
        if self._dns is not None:
            self._dns.stop()
            self._dns.server.server_close()
            self._dns = None
        if self._probes is not None:
            self._probes.close()
            self._probes = None

    # ------------------------------------------------------------------ health

    def health(self, project: str, check: str) -> dict[str, HealthState]:
        """The verdict on every endpoint probed with ``check``, by address (``ApiError`` 404
        when the check does not exist)."""
        return {
            address: state for address, (state, _) in self._health_detail(project, check).items()
        }

    def _health_detail(self, project: str, check: str) -> dict[str, tuple[HealthState, str]]:
        with self._lock:
            if (project, check) not in self._checks:
                raise ApiError(404, "notFound", f"healthCheck '{check}' was not found")
            keys = {k: v for k, v in self._probed.items() if k.startswith(f"{project}/{check}/")}
        found: dict[str, tuple[HealthState, str]] = {}
        for key, (address, _) in keys.items():
            if self._probes is None:
                found[address] = (HealthState.UNKNOWN, "not probing")
                continue
            health = self._probes.health(key)
            found[address] = (health.state, health.detail)
        return found

    def _state(self, project: str, check_url: str | None, address: str) -> HealthState:
        if not check_url or self._probes is None:
            return HealthState.HEALTHY
        key = f"{project}/{check_url.rsplit('/', 1)[-1]}/{address}"
        if key not in self._probed:
            return HealthState.UNKNOWN
        return self._probes.health(key).state

    def _sync_probes(self) -> None:
        """Probe exactly the (check, endpoint) pairs that record sets name now."""
        wanted: dict[str, tuple[str, HealthCheck]] = {}
        for (project, _zone), rrsets in self._rrsets.items():
            for rrset in rrsets.values():
                policy = rrset.get("routingPolicy") or {}
                check_name = str(policy.get("healthCheck", "")).rsplit("/", 1)[-1]
                check = self._checks.get((project, check_name))
                if check is None:
                    continue
                for part in _targets(policy):
                    for address in _endpoints(part):
                        key = f"{project}/{check_name}/{address}"
                        wanted[key] = (address, self._probe_check(check))
        if self._probes is None:
            return
        for key in set(self._probed) - set(wanted):
            self._probes.remove(key)
        for key, (address, probe_check) in wanted.items():
            self._probes.add(key, ProbeTarget(f"t{abs(hash(key)) % 10**9}", address, probe_check))
        self._probed = wanted

    def _probe_check(self, resource: Mapping[str, Any]) -> HealthCheck:
        kind = resource["type"]
        spec = resource[_CHECK_KINDS[kind]]
        scale = self.time_scale
        return HealthCheck(
            protocol=kind.lower(),
            port=spec["port"],
            path=spec.get("requestPath", "/"),
            host=spec.get("host") or None,
            interval_s=resource["checkIntervalSec"] * scale,
            timeout_s=resource["timeoutSec"] * scale,
            failure_threshold=resource["unhealthyThreshold"],
            success_threshold=resource["healthyThreshold"],
            expected_status=(200, 200),
        )

    # ------------------------------------------------------------------ answers

    def answer(
        self, name: str, rtype: str, client_region: str | None = None
    ) -> tuple[str, int, list[str]]:
        """What the fake's DNS server answers: (record type, ttl, rrdatas); CNAME for an
        address query where only a CNAME exists; ("", 0, []) when nothing matches."""
        fqdn = _fqdn(name)
        with self._lock:
            for (project, _zone), rrsets in self._rrsets.items():
                for wanted in (rtype, "CNAME"):
                    rrset = rrsets.get((fqdn, wanted))
                    if rrset is not None:
                        return wanted, rrset["ttl"], self._pick(project, rrset, client_region)
        return "", 0, []

    def _pick(self, project: str, rrset: Mapping[str, Any], region: str | None) -> list[str]:
        policy = rrset.get("routingPolicy")
        if not policy:
            return list(rrset.get("rrdatas", []))
        check = policy.get("healthCheck")

        def healthy(part: Mapping[str, Any]) -> bool:
            addresses = _endpoints(part)
            if not addresses:
                return True
            return any(
                self._state(project, check, a) is not HealthState.UNHEALTHY for a in addresses
            )

        def data(part: Mapping[str, Any]) -> list[str]:
            return list(part.get("rrdatas") or _endpoints(part))

        if "wrr" in policy:
            items = policy["wrr"].get("items", [])
            live = [i for i in items if healthy(i)] or items
            weighted = [i for i in live if float(i.get("weight", 0)) > 0]
            if weighted:
                weights = [float(i["weight"]) for i in weighted]
                return data(self._rng.choices(weighted, weights=weights)[0])
            return data(self._rng.choice(live)) if live else []
        if "geo" in policy:
            return self._geo(policy["geo"].get("items", []), region, healthy, data)
        backup = policy["primaryBackup"]
        primary = backup.get("primaryTargets", {})
        up = [
            a
            for a in _endpoints(primary)
            if self._state(project, check, a) is not HealthState.UNHEALTHY
        ]
        backups = backup.get("backupGeoTargets", {}).get("items", [])
        trickle = float(backup.get("trickleTraffic", 0.0))
        if up and not (backups and self._rng.random() < trickle):
            return up
        live_backups = [i for i in backups if healthy(i)]
        if live_backups:
            return self._geo(live_backups, region, healthy, data)
        return up or _endpoints(primary)

    @staticmethod
    def _geo(items: list[Any], region: str | None, healthy: Any, data: Any) -> list[str]:
        live = [i for i in items if healthy(i)] or items
        for item in live:
            if item.get("location") == region:
                return list(data(item))
        return list(data(live[0])) if live else []

    # ------------------------------------------------------------------ REST

    def handle(self, method: str, path: str, query: Mapping[str, str], body: Any) -> Any:
        match = _ROUTE.match(path)
        if match is None:
            raise ApiError(404, "notFound", f"no such resource: {path}")
        api, project, rest = match.groups()
        parts = rest.split("/")
        with self._lock:
            if api == "compute" and parts[:2] == ["global", "healthChecks"]:
                return self._compute(method, project, parts[2:], body)
            if api == "compute" and parts[:2] == ["global", "operations"] and len(parts) == 3:
                return self._operation(project, parts[2], "get")
            if (
                api == "fake"
                and parts[:2] == ["global", "healthChecks"]
                and parts[3:] == ["health"]
            ):
                detail = self._health_detail(project, parts[2])
                return {
                    "targets": {a: {"state": s.name, "detail": d} for a, (s, d) in detail.items()}
                }
            if api == "dns" and parts[0] == "managedZones":
                return self._dns_api(method, project, parts[1:], query, body)
        raise ApiError(404, "notFound", f"no such resource: {path}")

    def _operation(self, project: str, target: str, kind: str) -> dict[str, Any]:
        op = next(self._ids)
        return {
            "kind": "compute#operation",
            "id": str(op),
            "name": f"operation-{op}",
            "operationType": kind,
            "status": "DONE",
            "progress": 100,
            "targetLink": f"{_COMPUTE_BASE}projects/{project}/global/healthChecks/{target}",
            "selfLink": f"{_COMPUTE_BASE}projects/{project}/global/operations/operation-{op}",
        }

    def _compute(self, method: str, project: str, parts: list[str], body: Any) -> Any:
        if not parts:
            if method == "GET":
                items = [v for (p, _), v in sorted(self._checks.items()) if p == project]
                return {"kind": "compute#healthCheckList", "items": copy.deepcopy(items)}
            if method == "POST":
                name = str((body or {}).get("name", ""))
                if (project, name) in self._checks:
                    raise ApiError(409, "alreadyExists", f"healthCheck '{name}' already exists")
                self._checks[(project, name)] = _check_resource(project, body or {}, name)
                self._checks[(project, name)]["id"] = str(next(self._ids))
                self._checks[(project, name)]["creationTimestamp"] = _now()
                return self._operation(project, name, "insert")
        elif len(parts) == 1:
            name = parts[0]
            current = self._checks.get((project, name))
            if current is None:
                raise ApiError(404, "notFound", f"healthCheck '{name}' was not found")
            if method == "GET":
                return copy.deepcopy(current)
            if method in ("PATCH", "PUT"):
                merged = dict(body or {})
                if method == "PATCH":  # fields not sent keep their values, as in Compute
                    merged = {**current, **merged}
                updated = _check_resource(project, merged, name)
                updated["id"], updated["creationTimestamp"] = (
                    current["id"],
                    current["creationTimestamp"],
                )
                self._checks[(project, name)] = updated
                self._sync_probes()
                return self._operation(project, name, "patch")
            if method == "DELETE":
                for (p, _z), rrsets in self._rrsets.items():
                    for rrset in rrsets.values():
                        url = str((rrset.get("routingPolicy") or {}).get("healthCheck", ""))
                        if p == project and url.rsplit("/", 1)[-1] == name:
                            raise ApiError(
                                400, "resourceInUseByAnotherResource", f"'{name}' is in use"
                            )
                del self._checks[(project, name)]
                return self._operation(project, name, "delete")
        raise ApiError(405, "badRequest", f"{method} not allowed here")

    def _dns_api(
        self, method: str, project: str, parts: list[str], query: Mapping[str, str], body: Any
    ) -> Any:
        if not parts:
            if method == "GET":
                zones = [v for (p, _), v in sorted(self._zones.items()) if p == project]
                if "dnsName" in query:
                    zones = [z for z in zones if z["dnsName"] == _fqdn(query["dnsName"])]
                return {"kind": "dns#managedZonesListResponse", "managedZones": zones}
            if method == "POST":
                return self._create_zone(project, body or {})
            raise ApiError(405, "badRequest", f"{method} not allowed here")
        key = (project, parts[0])
        zone = self._zones.get(key)
        if zone is None:
            raise ApiError(
                404,
                "notFound",
                f"The 'parameters.managedZone' resource named '{parts[0]}' does not exist.",
            )
        if len(parts) == 1:
            if method == "GET":
                return copy.deepcopy(zone)
            if method == "DELETE":
                if any(t not in ("SOA", "NS") for _, t in self._rrsets[key]):
                    raise ApiError(400, "containerNotEmpty", "The zone is not empty")
                del self._zones[key], self._rrsets[key], self._changes[key]
                return None
        elif parts[1] == "rrsets" and len(parts) == 2 and method == "GET":
            return self._list_rrsets(key, query)
        elif parts[1] == "changes" and len(parts) == 2 and method == "POST":
            return self._change(key, body or {})
        elif parts[1] == "changes" and len(parts) == 3 and method == "GET":
            for change in self._changes[key]:
                if change["id"] == parts[2]:
                    return copy.deepcopy(change)
            raise ApiError(404, "notFound", f"change '{parts[2]}' does not exist")
        raise ApiError(405, "badRequest", f"{method} not allowed here")

    def create_zone(self, project: str, name: str, dns_name: str) -> None:
        """A managed zone, as ``managedZones.create`` makes one: a router needs its zone first."""
        body = {"name": name, "dnsName": dns_name, "description": ""}
        with self._lock:
            try:
                self._create_zone(project, body)
            except ApiError as exc:
                if exc.code == 409:
                    raise AlreadyExists(exc.message) from exc
                raise InvalidInput("zone", exc.message) from exc

    def _create_zone(self, project: str, body: Mapping[str, Any]) -> dict[str, Any]:
        name = str(body.get("name", ""))
        if not _NAME.match(name):
            raise ApiError(400, "invalid", f"Invalid value for 'entity.managedZone.name': '{name}'")
        if (project, name) in self._zones:
            raise ApiError(409, "alreadyExists", f"managedZone '{name}' already exists")
        dns_name = _fqdn(str(body.get("dnsName", "")))
        zone = {
            "kind": "dns#managedZone",
            "name": name,
            "dnsName": dns_name,
            "description": str(body.get("description", "")),
            "id": str(next(self._ids)),
            "nameServers": [f"ns-fake-{n}.googledomains.test." for n in (1, 2)],
            "creationTime": _now(),
            "visibility": "public",
        }
        self._zones[(project, name)] = zone
        self._changes[(project, name)] = []
        self._rrsets[(project, name)] = {
            (dns_name, "SOA"): {
                "kind": "dns#resourceRecordSet",
                "name": dns_name,
                "type": "SOA",
                "ttl": 21600,
                "rrdatas": [
                    f"ns-fake-1.googledomains.test. admin.{dns_name} 1 21600 3600 259200 300"
                ],
            },
            (dns_name, "NS"): {
                "kind": "dns#resourceRecordSet",
                "name": dns_name,
                "type": "NS",
                "ttl": 21600,
                "rrdatas": list(zone["nameServers"]),
            },
        }
        return copy.deepcopy(zone)

    def _list_rrsets(self, key: tuple[str, str], query: Mapping[str, str]) -> dict[str, Any]:
        rrsets = sorted(self._rrsets[key].values(), key=lambda r: (r["name"], r["type"]))
        if "name" in query:
            rrsets = [r for r in rrsets if r["name"] == _fqdn(query["name"])]
        if "type" in query:
            rrsets = [r for r in rrsets if r["type"] == query["type"]]
        start = int(query.get("pageToken", "0") or 0)
        size = int(query.get("maxResults", "100") or 100)
        page = rrsets[start : start + size]
        result: dict[str, Any] = {"kind": "dns#resourceRecordSetsListResponse"}
        result["rrsets"] = copy.deepcopy(page)
        if start + size < len(rrsets):
            result["nextPageToken"] = str(start + size)
        return result

    def _change(self, key: tuple[str, str], body: Mapping[str, Any]) -> dict[str, Any]:
        zone = self._zones[key]
        rrsets = dict(self._rrsets[key])
        for deletion in body.get("deletions", []):
            stored = rrsets.get((_fqdn(deletion.get("name", "")), deletion.get("type", "")))
            if stored is None or _canonical(stored) != _canonical(deletion):
                raise ApiError(412, "conditionNotMet", "deletion does not match the record set")
            del rrsets[(stored["name"], stored["type"])]
        for addition in body.get("additions", []):
            rrset = self._validated(key[0], zone, addition)
            if (rrset["name"], rrset["type"]) in rrsets:
                raise ApiError(409, "alreadyExists", f"'{rrset['name']}' {rrset['type']} exists")
            rrsets[(rrset["name"], rrset["type"])] = rrset
        names: dict[str, set[str]] = {}
        for name, rtype in rrsets:
            names.setdefault(name, set()).add(rtype)
        for name, types in names.items():
            if "CNAME" in types and len(types) > 1:
                raise ApiError(400, "cnameResourceRecordSetConflict", f"CNAME at {name} clashes")
        self._rrsets[key] = rrsets
        change = {
            "kind": "dns#change",
            "id": str(len(self._changes[key]) + 1),
            "status": "done",
            "startTime": _now(),
            "additions": copy.deepcopy(list(body.get("additions", []))),
            "deletions": copy.deepcopy(list(body.get("deletions", []))),
        }
        self._changes[key].append(change)
        self._sync_probes()
        return copy.deepcopy(change)

    def _validated(
        self, project: str, zone: Mapping[str, Any], body: Mapping[str, Any]
    ) -> dict[str, Any]:
        name = _fqdn(str(body.get("name", "")))
        if not (name == zone["dnsName"] or name.endswith("." + zone["dnsName"])):
            raise ApiError(400, "invalid", f"'{name}' is not in zone {zone['dnsName']}")
        rtype = body.get("type")
        if rtype not in ("A", "AAAA", "CNAME", "TXT"):
            raise ApiError(400, "invalid", f"unsupported record type {rtype!r}")
        ttl = _int(body, "ttl", 300, 0, 2**31 - 1)
        rrdatas = list(body.get("rrdatas") or [])
        policy: dict[str, Any] = body.get("routingPolicy") or {}
        if bool(rrdatas) == bool(policy):
            raise ApiError(400, "invalid", "give exactly one of rrdatas and routingPolicy")
        rrset: dict[str, Any] = {
            "kind": "dns#resourceRecordSet",
            "name": name,
            "type": rtype,
            "ttl": ttl,
        }
        if rrdatas:
            rrset["rrdatas"] = rrdatas
            return rrset
        kinds = [k for k in ("wrr", "geo", "primaryBackup") if k in policy]
        if len(kinds) != 1:
            raise ApiError(
                400, "invalid", "a routing policy is exactly one of wrr, geo, primaryBackup"
            )
        check = policy.get("healthCheck")
        if check is not None and (project, str(check).rsplit("/", 1)[-1]) not in self._checks:
            raise ApiError(400, "invalid", f"health check {check} does not exist")
        if kinds == ["primaryBackup"]:
            backup = policy["primaryBackup"]
            if check is None or not _endpoints(backup.get("primaryTargets", {})):
                raise ApiError(400, "invalid", "primaryBackup needs health-checked primary targets")
            if not backup.get("backupGeoTargets", {}).get("items"):
                raise ApiError(400, "invalid", "primaryBackup needs backupGeoTargets")
            trickle = backup.get("trickleTraffic", 0.0)
            if not isinstance(trickle, int | float) or not 0 <= trickle <= 1:
                raise ApiError(400, "invalid", "trickleTraffic must be from 0 to 1")
        for location in _locations(policy):
            if location not in _regions():
                raise ApiError(400, "invalid", f"Invalid value for field 'location': {location!r}")
        for part in _targets(policy):
            for address in _endpoints(part):
                try:
                    ipaddress.ip_address(address)
                except ValueError:
                    raise ApiError(
                        400, "invalid", f"external endpoint {address!r} is not an IP"
                    ) from None
            if _endpoints(part) and check is None:
                raise ApiError(400, "invalid", "healthCheckedTargets need a healthCheck")
        rrset["routingPolicy"] = copy.deepcopy(policy)
        return rrset


@functools.cache
def _regions() -> frozenset[str]:
    """Google Cloud's regions, as the GCP adapters check them (one dated data file)."""
    text = resources.files("multiregion.providers.gcp").joinpath("data/regions.json").read_text()
    return frozenset(json.loads(text)["regions"])


def _locations(policy: Mapping[str, Any]) -> list[str]:
    """Every location a routing policy names: geo items and primaryBackup's backups."""
    items = list((policy.get("geo") or {}).get("items") or [])
    backup = (policy.get("primaryBackup") or {}).get("backupGeoTargets") or {}
    items += list(backup.get("items") or [])
    return [str(item.get("location")) for item in items]


def _canonical(rrset: Mapping[str, Any]) -> str:
    fields = {k: rrset.get(k) for k in ("name", "type", "ttl", "rrdatas", "routingPolicy")}
    fields["name"] = _fqdn(str(fields["name"]))
    fields["rrdatas"] = fields["rrdatas"] or []
    return json.dumps(fields, sort_keys=True)


def _handler(fake: CloudDnsFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else each response waits out a delayed ACK

        def setup(self) -> None:
            super().setup()
            with fake._lock:
                fake._connections.add(self.connection)

        def finish(self) -> None:
            with fake._lock:
                fake._connections.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the fake logs nothing (requests may carry bearer tokens)."""

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            raw = read_body(self)
            try:
                body = json.loads(raw) if raw else None
                result = fake.handle(method, parts.path, query, body)
                status, payload = 200, result
            except ApiError as exc:
                status = exc.code
                payload = {
                    "error": {
                        "code": exc.code,
                        "message": exc.message,
                        "errors": [
                            {"domain": "global", "reason": exc.reason, "message": exc.message}
                        ],
                    }
                }
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                status = 400
                payload = {"error": {"code": 400, "message": f"bad request: {exc}"}}
            send_json(self, status, payload, "application/json; charset=UTF-8")

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

    return Handler


class _Resolver:
    """dnslib resolver: answers from the fake's record sets by policy and health."""

    def __init__(self, fake: CloudDnsFake) -> None:
        self._fake = fake

    def resolve(self, request: DNSRecord, _handler: Any) -> DNSRecord:
        reply = request.reply()
        qname = str(request.q.qname)
        qtype = QTYPE[request.q.qtype]
        region = None
        for rr in request.ar:
            for option in getattr(rr, "rdata", None) or []:
                if getattr(option, "code", None) == CLIENT_REGION_OPTION:
                    region = bytes(option.data).decode("ascii", "replace")
        rtype, ttl, rrdatas = self._fake.answer(qname, str(qtype), region)
        build = {"A": A, "AAAA": AAAA, "CNAME": CNAME}.get(rtype)
        if build is None:
            return reply
        for data in rrdatas:
            reply.add_answer(RR(qname, getattr(QTYPE, rtype), rdata=build(data), ttl=ttl))
        return reply
