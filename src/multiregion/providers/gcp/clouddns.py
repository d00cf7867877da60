"""TrafficRouter on Cloud DNS routing policies, through the DNS v1 REST API.

A route is three things in one managed zone, changed together by atomic ``changes``:

* the serving record set at the route's name: ``primaryBackup`` for Failover (the primary as
  health-checked target, the backup in ``backupGeoTargets``), ``wrr`` for Weighted, ``geo``
  for Geo (locations are GCP regions), or plain ``rrdatas`` where no choice is left (no
  health check, one endpoint left, or the first endpoint forced UP);
* a TXT record set ``_multiregion.<name>`` holding what the serving set cannot (endpoint names
  and regions, the neutral HealthCheck, the overrides), so ``get`` returns an equal Route;
* a Compute health check ``mr-r-<hash>`` when the route has a health check, and a record set
  ``_mr-health.<name>`` listing every endpoint as its health-checked target, so that Google
  keeps probing an endpoint (and keeps its verdict) while an override takes it out of the
  serving set.

Overrides rewrite the serving set from the route: a DOWN endpoint leaves it, an UP endpoint is
listed without health-checked targets (Cloud DNS then always counts it healthy). Failover
happens in Cloud DNS's data plane; nothing here needs the failed region.

Not expressible, hence ``Unsupported``: Latency (Cloud DNS has no latency policy; ``geo``
routes by the client's location, not by measured latency), health-checked host names (Google
health-checks IP addresses only) and health-checked Failover with more than one backup (Cloud
DNS picks among backups by the client's proximity, not in the route's order).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from typing import Any

import attrs
from dnslib import EDNS0, QTYPE, DNSRecord, EDNSOption

from multiregion import planning, validate
from multiregion.errors import CorruptData, InvalidInput, NotFound, Unavailable, Unsupported
from multiregion.interfaces import RouterCapabilities, TrafficRouter
from multiregion.model import (
    Answer,
    Change,
    Endpoint,
    EndpointStatus,
    Failover,
    Geo,
    HealthCheck,
    Plan,
    Route,
    Weighted,
)
from multiregion.providers.gcp import connection, healthchecks
from multiregion.providers.gcp.restapi import RestApis, comparable, gcp_region
from multiregion.providers.local.routing_state import route_from_dict, route_to_dict

META_LABEL = "_multiregion"
HEALTH_LABEL = "_mr-health"
CLIENT_REGION_OPTION = 65430
"""EDNS option carrying a client region; only the project's fake reads it."""
_TXT_CHUNK = 250


def _fqdn(name: str) -> str:
    return name + "."


def _data(endpoint: Endpoint) -> str:
    return endpoint.target if endpoint.record_type != "CNAME" else _fqdn(endpoint.target)


def _encode(payload: dict[str, Any]) -> list[str]:
    text = base64.b64encode(json.dumps(payload, sort_keys=True).encode()).decode()
    chunks = [text[i : i + _TXT_CHUNK] for i in range(0, len(text), _TXT_CHUNK)]
    return [" ".join(f'"{c}"' for c in chunks)]


def _decode(rrdatas: list[str]) -> dict[str, Any]:
    text = "".join(part.strip('"') for part in " ".join(rrdatas).split())
    try:
        payload: dict[str, Any] = json.loads(base64.b64decode(text))
    except ValueError as exc:
        raise CorruptData("the route's _multiregion TXT record is not the library's") from exc
    return payload


def _differ(wanted: list[dict[str, Any]], stored: list[dict[str, Any]]) -> bool:
    return sorted(map(comparable, wanted)) != sorted(map(comparable, stored))


def _kept(route: Route, overrides: dict[str, EndpointStatus]) -> dict[str, EndpointStatus]:
    """The overrides of endpoints the route still has."""
    names = {e.name for e in route.endpoints}
    return {k: v for k, v in overrides.items() if k in names}


class CloudDnsRouter(TrafficRouter):
    """Routes in one Cloud DNS managed zone (``zone`` is its name).

    ``source_regions`` are the three regions Google probes from (needed for external
    endpoints; checks then run every 30 s at least). ``endpoint`` points at the fake with
    anonymous credentials; otherwise Application Default Credentials are used. ``resolve``
    asks the zone's name servers, or ``nameserver`` (``host:port``) when given.
    """

    capabilities = RouterCapabilities(policies=frozenset({Failover, Weighted, Geo}))

    def __init__(
        self,
        *,
        project: str,
        zone: str,
        source_regions: Iterable[str] | None = ("us-central1", "us-east1", "europe-west1"),
        endpoint: str | None = None,
        nameserver: str | None = None,
        credentials: Any = None,
        timeout_s: float = 30.0,
        num_retries: int = 3,
        dns_timeout_s: float = 3.0,
    ) -> None:
        self.zone = validate.endpoint_name("zone", zone)
        self.source_regions = healthchecks.three_regions(source_regions)
        self._nameserver = None if nameserver is None else self._host_port(nameserver)
        self.dns_timeout_s = validate.seconds("dns_timeout_s", dns_timeout_s, 0, 60)
        self._apis = RestApis(
            project=project,
            endpoint=endpoint,
            credentials=credentials,
            timeout_s=timeout_s,
            num_retries=num_retries,
        )
        self._zone_info: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"CloudDnsRouter(project={self._apis.project!r}, zone={self.zone!r})"

    @staticmethod
    def _host_port(value: object) -> tuple[str, int]:
        if not isinstance(value, str) or ":" not in value:
            raise InvalidInput("nameserver", "must be host:port")
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise InvalidInput("nameserver", f"{value!r} must be host:port")
        return host.strip("[]"), int(port)

    # ------------------------------------------------------------------ names and state

    def _zone(self) -> dict[str, Any]:
        if self._zone_info is None:
            self._zone_info = self._apis.zone(self.zone)
        return self._zone_info

    def _in_zone(self, name: str) -> str:
        suffix = str(self._zone()["dnsName"]).rstrip(".")
        if name != suffix and not name.endswith("." + suffix):
            raise InvalidInput("name", f"{name} is not inside zone {suffix}")
        return name

    @staticmethod
    def _check_name(name: str) -> str:
        return "mr-r-" + hashlib.sha256(name.encode()).hexdigest()[:20]

    def _meta_record(
        self, name: str
    ) -> tuple[Route, dict[str, EndpointStatus], list[dict[str, Any]]]:
        """The stored route and its overrides, from its TXT record set (returned too)."""
        meta = [
            r
            for r in self._apis.rrsets(self.zone, _fqdn(f"{META_LABEL}.{name}"))
            if r["type"] == "TXT"
        ]
        if not meta:
            raise NotFound(f"route {name} does not exist")
        payload = _decode(meta[0].get("rrdatas", []))
        route = route_from_dict(payload["route"])
        overrides = {k: EndpointStatus(v) for k, v in payload.get("overrides", {}).items()}
        return route, overrides, meta

    def _load(self, name: str) -> tuple[Route, dict[str, EndpointStatus], list[dict[str, Any]]]:
        """The stored route, its overrides and every record set the library keeps for it."""
        route, overrides, meta = self._meta_record(name)
        serving = [
            r
            for r in self._apis.rrsets(self.zone, _fqdn(name))
            + self._apis.rrsets(self.zone, _fqdn(f"{HEALTH_LABEL}.{name}"))
            if r["type"] in ("A", "AAAA", "CNAME")
        ]
        return route, overrides, meta + serving

    def _stored(self, name: str) -> tuple[Route | None, dict[str, EndpointStatus], list[Any]]:
        try:
            return self._load(name)
        except NotFound:
            return None, {}, []

    # ------------------------------------------------------------------ what to write

    def _refuse(self, route: Route) -> None:
        """Everything Cloud DNS cannot hold exactly as written, refused before any call."""
        policy, check = route.policy, route.health_check
        if check is not None:
            if any(e.record_type == "CNAME" for e in route.endpoints):
                raise Unsupported("Cloud DNS health-checks IP addresses only, not host names")
            if isinstance(policy, Failover) and len(policy.backups) > 1:
                raise Unsupported(
                    "Cloud DNS picks among backups by the client's proximity, not in order: "
                    "a health-checked Failover route takes one backup"
                )
            healthchecks.check_body("mr-r-x", check, self.source_regions, "")
        if isinstance(policy, Failover) and check is not None and len(policy.order) > 1:
            gcp_region("endpoint.region", route.endpoint(policy.backups[0]).region)
        if isinstance(policy, Geo):
            for location, _ in policy.locations:
                gcp_region("policy.locations", location)
            default = route.endpoint(policy.default)
            gcp_region("endpoint.region", default.region)
            listed = dict(policy.locations)
            if listed.get(default.region, default.name) != default.name:
                raise Unsupported(
                    f"the default's region {default.region} routes to another endpoint; Cloud "
                    "DNS has no catch-all, the default serves the clients nearest its region"
                )

    def _serving(self, route: Route, overrides: dict[str, EndpointStatus]) -> dict[str, Any] | None:
        """The record set Cloud DNS should serve for ``route`` under ``overrides``."""
        down = {n for n, s in overrides.items() if s is EndpointStatus.DOWN}
        live = [e for e in route.endpoints if e.name not in down]
        if not live:
            return None
        record: dict[str, Any] = {
            "name": _fqdn(route.name),
            "type": route.endpoints[0].record_type,
            "ttl": route.ttl,
        }

        def checked(endpoint: Endpoint) -> bool:
            return (
                route.health_check is not None
                and overrides.get(endpoint.name) is not EndpointStatus.UP
            )

        def targets(endpoint: Endpoint) -> dict[str, Any]:
            if checked(endpoint):
                return {"healthCheckedTargets": {"externalEndpoints": [endpoint.target]}}
            return {"rrdatas": [_data(endpoint)]}

        policy = route.policy
        routing: dict[str, Any]
        if isinstance(policy, Failover):
            order = [route.endpoint(n) for n in policy.order if n not in down]
            if len(order) == 1 or not checked(order[0]):
                record["rrdatas"] = [_data(order[0])]
                return record
            backup = order[1]
            routing = {
                "primaryBackup": {
                    "primaryTargets": {"externalEndpoints": [order[0].target]},
                    "backupGeoTargets": {"items": [{"location": backup.region, **targets(backup)}]},
                    "trickleTraffic": 0.0,
                }
            }
        elif isinstance(policy, Weighted):
            routing = {
                "wrr": {
                    "items": [
                        {"weight": policy.weight(e.name), **targets(e)}
                        for e in sorted(live, key=lambda e: e.name)
                    ]
                }
            }
        else:
            assert isinstance(policy, Geo)
            default = route.endpoint(policy.default)
            places = [(default.region, default.name)]
            places += [(loc, n) for loc, n in policy.locations if loc != default.region]
            routing = {
                "geo": {
                    "items": [
                        {"location": loc, **targets(route.endpoint(n))}
                        for loc, n in places
                        if n not in down
                    ],
                    "enableFencing": False,
                }
            }
        if route.health_check is not None:
            routing["healthCheck"] = self._apis.check_url(self._check_name(route.name))
        record["routingPolicy"] = routing
        return record

    def _anchor(self, route: Route) -> dict[str, Any] | None:
        """The record set that keeps every endpoint of a health-checked route probed."""
        if route.health_check is None:
            return None
        return {
            "name": _fqdn(f"{HEALTH_LABEL}.{route.name}"),
            "type": route.endpoints[0].record_type,
            "ttl": route.ttl,
            "routingPolicy": {
                "healthCheck": self._apis.check_url(self._check_name(route.name)),
                "wrr": {
                    "items": [
                        {"weight": 1.0, "healthCheckedTargets": {"externalEndpoints": [e.target]}}
                        for e in route.endpoints
                    ]
                },
            },
        }

    def _meta(self, route: Route, overrides: dict[str, EndpointStatus]) -> dict[str, Any]:
        payload = {
            "route": route_to_dict(route),
            "overrides": {k: v.value for k, v in sorted(overrides.items())},
        }
        return {
            "name": _fqdn(f"{META_LABEL}.{route.name}"),
            "type": "TXT",
            "ttl": 300,
            "rrdatas": _encode(payload),
        }

    def _wanted(self, route: Route, overrides: dict[str, EndpointStatus]) -> list[dict[str, Any]]:
        wanted = [self._meta(route, overrides)]
        for record in (self._serving(route, overrides), self._anchor(route)):
            if record is not None:
                wanted.append(record)
        return wanted

    def _write(
        self, route: Route, overrides: dict[str, EndpointStatus], stored: list[dict[str, Any]]
    ) -> None:
        """Replace the route's record sets in one atomic change (nothing when they match)."""
        wanted = self._wanted(route, overrides)
        if _differ(wanted, stored):
            self._apis.change(self.zone, wanted, stored)

    def _diff(
        self,
        route: Route,
        current: Route | None,
        overrides: dict[str, EndpointStatus],
        stored: list[dict[str, Any]],
    ) -> Plan:
        """The neutral diff, or, when the route is as declared but its record sets or its
        health check are not (changed or deleted out of band), the drift ``apply`` repairs."""
        plan = planning.diff_routes(route.name, current, route)
        if plan or current is None:
            return plan
        if _differ(self._wanted(route, overrides), stored):
            return Plan(route.name, (Change("update", "records", "drifted", "as declared"),))
        check = route.health_check
        if check is not None and self._check_drifted(route, check):
            return Plan(route.name, (Change("update", "health_check", "drifted", "as declared"),))
        return plan

    def _check_body(self, route: Route, check: HealthCheck) -> dict[str, Any]:
        return healthchecks.check_body(
            self._check_name(route.name),
            check,
            self.source_regions,
            f"multiregion route {route.name}",
        )

    def _check_drifted(self, route: Route, check: HealthCheck) -> bool:
        """Whether the route's Compute health check is missing or differs from ``check``."""
        wanted = self._check_body(route, check)
        checks = self._apis.compute.healthChecks()
        request = checks.get(project=self._apis.project, healthCheck=wanted["name"])
        try:
            stored = self._apis.call(request, "healthChecks.get")
        except NotFound:
            return True
        return not healthchecks.same_check(stored, wanted)

    # ------------------------------------------------------------------ TrafficRouter

    def _plan(self, route: Route) -> Plan:
        self._refuse(route)
        read = self._stored(self._in_zone(route.name))
        current, overrides, stored = read
        plan = self._diff(route, current, _kept(route, overrides), stored)
        return attrs.evolve(plan, existing=read)

    def _apply(self, route: Route, plan: Plan) -> None:
        name = route.name
        current, overrides, stored = plan.existing
        kept = _kept(route, overrides)
        if route.health_check is not None:
            healthchecks.ensure_check(self._apis, self._check_body(route, route.health_check))
        self._write(route, kept, stored)
        if current is not None and current.health_check is not None and route.health_check is None:
            healthchecks.delete_check(self._apis, self._check_name(name))

    def _get(self, name: str) -> Route:
        return self._meta_record(self._in_zone(name))[0]

    def _list(self) -> list[str]:
        prefix = META_LABEL + "."
        return [
            r["name"].rstrip(".")[len(prefix) :]
            for r in self._apis.rrsets(self.zone)
            if r["type"] == "TXT" and r["name"].startswith(prefix)
        ]

    def _delete(self, name: str) -> None:
        name = self._in_zone(name)
        route, _overrides, stored = self._load(name)
        self._apis.change(self.zone, [], stored)
        if route.health_check is not None:
            healthchecks.delete_check(self._apis, self._check_name(name))

    def _set_endpoint_status(self, route: Route, endpoint: str, status: EndpointStatus) -> None:
        route, overrides, stored = self._load(route.name)
        overrides = {k: v for k, v in overrides.items() if k != endpoint}
        if status is not EndpointStatus.AUTO:
            overrides[endpoint] = status
        self._write(route, overrides, stored)

    def _endpoint_status(self, name: str) -> dict[str, EndpointStatus]:
        route, overrides, _meta = self._meta_record(self._in_zone(name))
        return {e.name: overrides.get(e.name, EndpointStatus.AUTO) for e in route.endpoints}

    def _resolve(self, name: str, client_region: str | None) -> Answer:
        """A DNS query to the zone's name servers: the answer Cloud DNS gives now.

        Cloud DNS answers by the querier's location, so a ``client_region`` can be asked for
        only from the fake (``nameserver`` on loopback), and only matters for Geo routes.
        """
        route, _overrides, _meta = self._meta_record(self._in_zone(name))
        rtype = route.endpoints[0].record_type
        query = DNSRecord.question(name, rtype)
        if client_region is not None and isinstance(route.policy, Geo):
            host, _port = self._server()
            if not connection.is_loopback_host(host):
                raise Unsupported("Cloud DNS answers by the querier's location, not a region")
            query.add_ar(EDNS0(opts=[EDNSOption(CLIENT_REGION_OPTION, client_region.encode())]))
        reply = self._ask(query)
        records = [
            str(rr.rdata).rstrip(".")
            for rr in reply.rr
            if QTYPE[rr.rtype] == rtype and str(rr.rname).rstrip(".").lower() == name
        ]
        ttls = [rr.ttl for rr in reply.rr if QTYPE[rr.rtype] == rtype]
        by_target = {e.target: e.name for e in route.endpoints}
        return Answer(
            name=name,
            record_type=rtype,
            records=tuple(records),
            ttl=ttls[0] if ttls else route.ttl,
            endpoints=tuple(by_target.get(r, "") for r in records),
        )

    def _server(self) -> tuple[str, int]:
        if self._nameserver is not None:
            return self._nameserver
        servers = self._zone().get("nameServers") or []
        if not servers:
            raise Unavailable(f"zone {self.zone} lists no name servers")
        return str(servers[0]).rstrip("."), 53

    def _ask(self, query: DNSRecord) -> DNSRecord:
        host, port = self._server()
        try:
            packet = query.send(host, port, timeout=self.dns_timeout_s)
        except OSError as exc:
            raise Unavailable(f"name server {host}:{port} did not answer") from exc
        return DNSRecord.parse(packet)

    def _expected_failover_s(self, route: Route) -> float:
        """Detection by Google's probers (interval x threshold) plus half the TTL for caches."""
        detection = 0.0 if route.health_check is None else route.health_check.expected_detection_s()
        return detection + route.ttl / 2
