"""TrafficRouter on Route 53 record sets in one hosted zone.

Mapping: ``Failover`` -> FAILOVER PRIMARY/SECONDARY records; a second and further backups
hang off the SECONDARY as an alias (EvaluateTargetHealth) to a chained failover pair at
``_fo<i>.<name>``. ``Weighted`` -> WEIGHTED (integer weights 0-255), ``Latency`` -> LATENCY by
the endpoint's AWS region, ``Geo`` -> GEOLOCATION with the default at ``*``. SetIdentifier is
the endpoint's name (``name@location`` for geolocation records).

Every endpoint record carries a health check the library owns (CallerReference prefix and
tags): the route's probing check, or, for a route without one, a CALCULATED check with no
children that is always healthy. Overrides flip that check in Route 53's data plane, as
octoDNS does: DOWN = Disabled and Inverted (always unhealthy), UP = Disabled (always healthy),
AUTO = neither. Records are never deleted to move traffic.

What Route 53 cannot hold (endpoint regions outside latency routing, the health check's
timeout and thresholds as asked) is kept as JSON in a TXT record at ``_multiregion.<name>``,
which also marks the route as the library's.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs

from multiregion import validate
from multiregion.errors import InvalidInput, MultiregionError, NotFound, PreconditionFailed
from multiregion.interfaces import RouterCapabilities, TrafficRouter
from multiregion.model import (
    Answer,
    Change,
    Endpoint,
    EndpointStatus,
    Failover,
    Geo,
    HealthState,
    Latency,
    Plan,
    Route,
    Weighted,
)
from multiregion.planning import diff_routes
from multiregion.providers.aws.errors import translated
from multiregion.providers.aws.healthchecks import (
    check_config,
    create_check,
    delete_check,
    expected_detection_s,
    rate_limited,
    run_all,
    tagged_checks,
    verdict,
)
from multiregion.providers.aws.route53_rules import geo_location, latency_region, limit
from multiregion.providers.aws.route53_spec import META_LABEL, spec_from_values, spec_to_values
from multiregion.providers.aws.session import Connection

CHAIN_LABEL = "_fo"
TAG_ROUTE = "multiregion-route"
TAG_ENDPOINT = "multiregion-endpoint"
TAG_NAMESPACE = "multiregion-namespace"
MAX_WEIGHT = 255
POLICY_KEYS = ("Failover", "Weight", "Region", "GeoLocation")
"""The field that says which routing policy a record set uses."""
SWITCH = {"Type": "CALCULATED", "HealthThreshold": 0, "ChildHealthChecks": []}
"""A check with no children and a threshold of 0: always healthy until an override flips it."""

Key = tuple[str, str, str]
"""A record set's identity: name, type, SetIdentifier."""


# --------------------------------------------------------------------------- checks on input


def _fqdn(name: str) -> str:
    return name + "."


def _route53_checks(route: Route, *, private_ok: bool) -> None:
    """What Route 53 refuses (or what moto accepts and Route 53 would not)."""
    if len({e.record_type for e in route.endpoints}) > 1:
        raise InvalidInput("endpoints", "Route 53 serves one record type per name and policy")
    policy = route.policy
    if isinstance(policy, Latency):
        for endpoint in route.endpoints:
            latency_region("endpoint.region", endpoint.region)
    if isinstance(policy, Geo):
        for location, _ in policy.locations:
            geo_location(location)
    if route.health_check is not None:
        for endpoint in route.endpoints:
            check_config(endpoint.target, route.health_check, private_ok=private_ok)


def _policy_kind(record: Mapping[str, Any]) -> str:
    return next((k for k in POLICY_KEYS if k in record), "")


def _batch_size(changes: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    """Records and value characters as Route 53 counts them: an UPSERT counts twice."""
    records = chars = 0
    for change in changes:
        times = 2 if change["Action"] == "UPSERT" else 1
        values = [v["Value"] for v in change["ResourceRecordSet"].get("ResourceRecords", [])]
        records += times * max(len(values), 1)
        chars += times * sum(len(v) for v in values)
    return records, chars


def record_changes(current: Mapping[Key, Any], desired: Mapping[Key, Any]) -> list[dict[str, Any]]:
    """The changes that turn ``current`` into ``desired``, deletions first. Route 53 keeps one
    routing policy per name and type and cannot UPSERT a record into another policy: where the
    policy changes, every old record there is deleted and every new one created, in the same
    atomic batch."""

    def group(key: Key) -> tuple[str, str]:
        return key[0], key[1]

    kinds: dict[tuple[str, str], set[str]] = {}
    for records in (current, desired):
        for key, record in records.items():
            kinds.setdefault(group(key), set()).add(_policy_kind(record))
    replaced = {g for g, found in kinds.items() if len(found) > 1}
    deletes = [
        {"Action": "DELETE", "ResourceRecordSet": r}
        for k, r in current.items()
        if k not in desired or group(k) in replaced
    ]
    writes = [
        {"Action": "CREATE" if group(k) in replaced else "UPSERT", "ResourceRecordSet": r}
        for k, r in desired.items()
        if group(k) in replaced or current.get(k) != r
    ]
    return deletes + writes


# --------------------------------------------------------------------------- record sets


def desired_records(route: Route, checks: Mapping[str, str], zone_id: str) -> dict[Key, Any]:
    """The record sets that serve ``route``, given each endpoint's health check id."""
    rtype = route.endpoints[0].record_type
    records: dict[Key, Any] = {}

    def plain(name: str, endpoint: Endpoint, set_id: str, **extra: Any) -> None:
        records[(_fqdn(name), rtype, set_id)] = {
            "Name": _fqdn(name),
            "Type": rtype,
            "SetIdentifier": set_id,
            "TTL": route.ttl,
            "ResourceRecords": [{"Value": endpoint.target}],
            "HealthCheckId": checks[endpoint.name],
            **extra,
        }

    policy = route.policy
    if isinstance(policy, Failover):
        order = [route.endpoint(n) for n in policy.order]
        names = [route.name, *(f"{CHAIN_LABEL}{i}.{route.name}" for i in range(1, len(order) - 1))]
        for level, name in enumerate(names):
            plain(name, order[level], order[level].name, Failover="PRIMARY")
            following = order[level + 1]
            if level + 1 == len(names):
                plain(name, following, following.name, Failover="SECONDARY")
            else:
                records[(_fqdn(name), rtype, following.name)] = {
                    "Name": _fqdn(name),
                    "Type": rtype,
                    "SetIdentifier": following.name,
                    "Failover": "SECONDARY",
                    "AliasTarget": {
                        "HostedZoneId": zone_id,
                        "DNSName": _fqdn(names[level + 1]),
                        "EvaluateTargetHealth": True,
                    },
                }
    elif isinstance(policy, Weighted):
        for endpoint in route.endpoints:
            plain(route.name, endpoint, endpoint.name, Weight=int(policy.weight(endpoint.name)))
    elif isinstance(policy, Latency):
        for endpoint in route.endpoints:
            plain(route.name, endpoint, endpoint.name, Region=endpoint.region)
    else:
        assert isinstance(policy, Geo)
        for location, name in policy.locations:
            geo = geo_location(location)
            plain(route.name, route.endpoint(name), f"{name}@{location}", GeoLocation=geo)
        default = route.endpoint(policy.default)
        plain(route.name, default, f"{default.name}@*", GeoLocation={"CountryCode": "*"})
    return records


def _values(record: Mapping[str, Any]) -> list[str]:
    return [str(r["Value"]) for r in record.get("ResourceRecords", [])]


def _endpoint_of(record: Mapping[str, Any]) -> str:
    return str(record["SetIdentifier"]).split("@")[0]


class Route53Router(TrafficRouter):
    """Routes in the hosted zone ``zone``, owned by ``namespace``.

    ``create_zone=True`` creates a public hosted zone of that name when none exists.
    ``seed`` makes ``resolve``'s weighted picks repeatable. ``requests_per_s`` caps the API
    calls a second (default: Route 53's quota of five; no cap against a loopback emulator,
    where private and loopback health-check targets are allowed too).
    """

    def __init__(
        self,
        *,
        zone: str,
        namespace: str = "default",
        create_zone: bool = False,
        endpoint_url: str | None = None,
        max_attempts: int = 5,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 30.0,
        seed: int | None = None,
        requests_per_s: float | None = None,
    ) -> None:
        self.zone = validate.dns_name("zone", zone)
        self.namespace = validate.endpoint_name("namespace", namespace)
        if not isinstance(create_zone, bool):
            raise InvalidInput("create_zone", "must be True or False")
        digest = hashlib.sha256(self.namespace.encode()).hexdigest()[:12]
        self._prefix = f"mrr-{digest}-"
        self.capabilities = RouterCapabilities(
            policies=frozenset({Failover, Weighted, Latency, Geo}),
            health_checked=True,
            cname_targets=True,
            answers_when_all_down=True,
            max_weight=MAX_WEIGHT,
            whole_weights=True,
        )
        self._rng = random.Random(seed)
        connection = Connection(
            endpoint_url=endpoint_url,
            max_attempts=max_attempts,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
        )
        self._private_ok = not connection.verify_tls
        self._route53 = connection.client("route53", "us-east-1", "router")
        rate_limited(self._route53, connection, requests_per_s)
        self.zone_id = self._find_zone(create_zone)

    def __repr__(self) -> str:
        return f"Route53Router(zone={self.zone!r}, namespace={self.namespace!r})"

    def _find_zone(self, create: bool) -> str:
        with translated("ListHostedZonesByName"):
            zones = self._route53.list_hosted_zones_by_name(DNSName=self.zone, MaxItems="1")
        for zone in zones["HostedZones"]:
            if zone["Name"] == _fqdn(self.zone):
                return str(zone["Id"]).split("/")[-1]
        if not create:
            raise NotFound(f"no hosted zone {self.zone}")
        with translated("CreateHostedZone"):
            created = self._route53.create_hosted_zone(
                Name=self.zone, CallerReference=f"multiregion-{uuid.uuid4().hex}"
            )
        return str(created["HostedZone"]["Id"]).split("/")[-1]

    # ------------------------------------------------------------------ reading

    def _in_zone(self, name: str) -> str:
        if name != self.zone and not name.endswith("." + self.zone):
            raise InvalidInput("name", f"{name} is not in the zone {self.zone}")
        return name

    def _records_at(self, name: str) -> list[dict[str, Any]]:
        """Every record set named ``name`` (Route 53 lists names in order, from StartRecordName)."""
        found: list[dict[str, Any]] = []
        pages = self._route53.get_paginator("list_resource_record_sets").paginate(
            HostedZoneId=self.zone_id, StartRecordName=name
        )
        with translated("ListResourceRecordSets"):
            for page in pages:
                for record in page["ResourceRecordSets"]:
                    if record["Name"] != _fqdn(name):
                        return found
                    found.append(record)
        return found

    def _spec(self, name: str) -> tuple[dict[str, Any] | None, Route | None]:
        """The TXT record and the route it holds, if this namespace owns ``name``."""
        for record in self._records_at(f"{META_LABEL}.{name}"):
            if record["Type"] == "TXT":
                owner, route = spec_from_values(name, _values(record))
                if owner != self.namespace:
                    raise PreconditionFailed(f"{name} is routed by namespace {owner!r}")
                return record, route
        return None, None

    def _route_records(self, route: Route) -> dict[Key, Any]:
        """The record sets in place for ``route``: routing-policy records at its name and
        at its failover chain names."""
        names = [route.name]
        if isinstance(route.policy, Failover):
            names += [f"{CHAIN_LABEL}{i}.{route.name}" for i in range(1, len(route.endpoints) - 1)]
        found: dict[Key, Any] = {}
        for name in names:
            for record in self._records_at(name):
                if "SetIdentifier" in record and record["Type"] in ("A", "AAAA", "CNAME"):
                    found[(record["Name"], record["Type"], record["SetIdentifier"])] = record
        return found

    def _require(self, name: str) -> tuple[dict[str, Any], Route]:
        meta, route = self._spec(name)
        if meta is None or route is None:
            raise NotFound(f"no route {name} in {self.zone}")
        return meta, route

    def _get(self, name: str) -> Route:
        return self._require(self._in_zone(name))[1]

    def _list(self) -> list[str]:
        names: list[str] = []
        pages = self._route53.get_paginator("list_resource_record_sets").paginate(
            HostedZoneId=self.zone_id
        )
        with translated("ListResourceRecordSets"):
            for page in pages:
                for record in page["ResourceRecordSets"]:
                    if record["Type"] != "TXT" or not record["Name"].startswith(META_LABEL + "."):
                        continue
                    name = record["Name"][len(META_LABEL) + 1 : -1]
                    owner, _ = spec_from_values(name, _values(record))
                    if owner == self.namespace:
                        names.append(name)
        return names

    # ------------------------------------------------------------------ plan and apply

    def _diff(self, route: Route, current: Route | None, records: dict[Key, Any]) -> Plan:
        plan = diff_routes(route.name, current, route)
        if plan or current is None:
            return plan
        checks = {_endpoint_of(r): r.get("HealthCheckId", "") for r in records.values()}
        if records != desired_records(route, checks, self.zone_id):
            return Plan(route.name, (Change("update", "records", "drifted", "as declared"),))
        return plan

    def _plan(self, route: Route) -> Plan:
        self._in_zone(route.name)
        _route53_checks(route, private_ok=self._private_ok)
        meta, current = self._spec(route.name)
        records = self._route_records(current) if current is not None else {}
        return attrs.evolve(self._diff(route, current, records), existing=(meta, records))

    def _apply(self, route: Route, plan: Plan) -> None:
        """Health checks first (concurrently), then every record of the route in one atomic
        change batch, then the checks no record uses any more are deleted. When Route 53
        refuses the batch, the checks this call created are deleted again."""
        meta, records = plan.existing
        existing = {
            _endpoint_of(r): r["HealthCheckId"] for r in records.values() if "HealthCheckId" in r
        }
        checks, created = self._ensure_checks(route, existing)
        try:
            self._change(self._changes(route, meta, records, checks))
        except BaseException:
            self._discard(created)
            raise
        self._discard(set(existing.values()) - set(checks.values()), strict=True)

    def _changes(
        self,
        route: Route,
        meta: Mapping[str, Any] | None,
        records: Mapping[Key, Any],
        checks: Mapping[str, str],
    ) -> Sequence[dict[str, Any]]:
        desired = desired_records(route, checks, self.zone_id)
        txt = {
            "Name": _fqdn(f"{META_LABEL}.{route.name}"),
            "Type": "TXT",
            "TTL": 300,
            "ResourceRecords": [{"Value": v} for v in spec_to_values(route, self.namespace)],
        }
        changes = record_changes(records, desired)
        if meta is None or sorted(_values(meta)) != sorted(_values(txt)):
            changes.append({"Action": "UPSERT", "ResourceRecordSet": txt})
        return changes

    def _discard(self, check_ids: set[str], *, strict: bool = False) -> None:
        """Delete checks; after a refused batch (not ``strict``), as many as can be, keeping
        the batch's error as the one raised."""
        for check_id in sorted(check_ids):
            try:
                delete_check(self._route53, check_id)
            except MultiregionError:
                if strict:
                    raise

    def _change(self, changes: Sequence[dict[str, Any]]) -> None:
        if not changes:
            return
        records, chars = _batch_size(changes)
        if records > limit("changes_per_batch") or chars > limit("value_chars_per_batch"):
            raise InvalidInput(
                "route",
                f"needs a change batch of {records} records and {chars} characters; Route 53 "
                f"takes {limit('changes_per_batch')} and {limit('value_chars_per_batch')}",
            )
        with translated("ChangeResourceRecordSets"):
            self._route53.change_resource_record_sets(
                HostedZoneId=self.zone_id, ChangeBatch={"Changes": changes}
            )

    def _owned_configs(self) -> dict[str, dict[str, Any]]:
        """This router's checks by id, from one listing (not one GetHealthCheck each)."""
        found: dict[str, dict[str, Any]] = {}
        with translated("ListHealthChecks"):
            pages = self._route53.get_paginator("list_health_checks").paginate()
            for page in pages:
                for check in page["HealthChecks"]:
                    if check["CallerReference"].startswith(self._prefix):
                        found[check["Id"]] = check
        return found

    def _ensure_checks(
        self, route: Route, existing: Mapping[str, str]
    ) -> tuple[dict[str, str], set[str]]:
        """Each endpoint's check id, and the ids created by this call."""
        stored = self._owned_configs() if existing else {}
        outcomes = run_all(
            [
                functools.partial(
                    self._ensure_check, route, e, stored.get(existing.get(e.name, ""))
                )
                for e in route.endpoints
            ]
        )
        checks: dict[str, str] = {}
        created: set[str] = set()
        for endpoint, outcome in zip(route.endpoints, outcomes, strict=True):
            if not isinstance(outcome, Exception):
                checks[endpoint.name] = outcome[0]
                if outcome[1]:
                    created.add(outcome[0])
        failed = [o for o in outcomes if isinstance(o, Exception)]
        if failed:
            self._discard(created)
            raise failed[0]
        return checks, created

    def _ensure_check(
        self, route: Route, endpoint: Endpoint, current: Mapping[str, Any] | None
    ) -> tuple[str, bool]:
        """The endpoint's check, brought up to date (only what differs is sent), or a new one
        carrying the old one's override (Disabled, Inverted) when Route 53 cannot update it in
        place; and whether it is new."""
        config = (
            SWITCH
            if route.health_check is None
            else check_config(endpoint.target, route.health_check, private_ok=self._private_ok)
        )
        flags = {"Disabled": False, "Inverted": False}
        if current is not None:
            stored = current["HealthCheckConfig"]
            flags = {k: bool(stored.get(k, False)) for k in flags}
            if all(stored.get(k) == config.get(k) for k in ("Type", "RequestInterval")):
                changed = {
                    k: v
                    for k, v in config.items()
                    if k not in ("Type", "RequestInterval")
                    and stored.get(k, [] if isinstance(v, list) else None) != v
                }
                if changed:
                    with translated("UpdateHealthCheck"):
                        self._route53.update_health_check(
                            HealthCheckId=current["Id"],
                            HealthCheckVersion=current["HealthCheckVersion"],
                            **changed,
                        )
                return str(current["Id"]), False
        tags = {
            TAG_ROUTE: route.name,
            TAG_ENDPOINT: endpoint.name,
            TAG_NAMESPACE: self.namespace,
            "Name": f"multiregion {route.name} {endpoint.name}",
        }
        identity = f"{route.name} {endpoint.name}"
        return create_check(self._route53, self._prefix, identity, {**config, **flags}, tags), True

    def _delete(self, name: str) -> None:
        """The route's records and TXT go in one batch, then every check tagged for it."""
        meta, route = self._require(self._in_zone(name))
        records = self._route_records(route)
        self._change(
            [{"Action": "DELETE", "ResourceRecordSet": r} for r in [*records.values(), meta]]
        )
        for check, tags in tagged_checks(self._route53, self._prefix):
            if tags.get(TAG_ROUTE) == route.name and tags.get(TAG_NAMESPACE) == self.namespace:
                delete_check(self._route53, check["Id"])

    # ------------------------------------------------------------------ overrides

    def _checks_by_endpoint(self, route: Route) -> dict[str, str]:
        return {
            _endpoint_of(r): r["HealthCheckId"]
            for r in self._route_records(route).values()
            if "HealthCheckId" in r
        }

    def _set_endpoint_status(self, route: Route, endpoint: str, status: EndpointStatus) -> None:
        check_id = self._checks_by_endpoint(route).get(endpoint)
        if check_id is None:
            raise NotFound(
                f"the record of {endpoint} in {route.name} has no health check; apply again"
            )
        with translated("UpdateHealthCheck"):
            self._route53.update_health_check(
                HealthCheckId=check_id,
                Disabled=status is not EndpointStatus.AUTO,
                Inverted=status is EndpointStatus.DOWN,
            )

    def _flags(self, check_id: str) -> dict[str, Any]:
        with translated("GetHealthCheck"):
            config: dict[str, Any] = self._route53.get_health_check(HealthCheckId=check_id)[
                "HealthCheck"
            ]["HealthCheckConfig"]
        return config

    def _endpoint_status(self, name: str) -> dict[str, EndpointStatus]:
        _meta, route = self._require(self._in_zone(name))
        checks = self._checks_by_endpoint(route)
        found: dict[str, EndpointStatus] = {}
        for endpoint in route.endpoints:
            config = self._flags(checks[endpoint.name]) if endpoint.name in checks else {}
            if not config.get("Disabled"):
                found[endpoint.name] = EndpointStatus.AUTO
            elif config.get("Inverted"):
                found[endpoint.name] = EndpointStatus.DOWN
            else:
                found[endpoint.name] = EndpointStatus.UP
        return found

    # ------------------------------------------------------------------ answers

    def _healthy(self, record: Mapping[str, Any], cache: dict[str, bool]) -> bool:
        """Route 53's view of one record: its health check's status, after Disabled and
        Inverted; alias records by their target's health (EvaluateTargetHealth)."""
        if "AliasTarget" in record:
            target = record["AliasTarget"]["DNSName"].rstrip(".")
            return any(self._healthy(r, cache) for r in self._records_at(target))
        check_id = record.get("HealthCheckId")
        if check_id is None:
            return True
        if check_id not in cache:
            config = self._flags(check_id)
            if config.get("Disabled"):
                healthy = True
            elif config["Type"] == "CALCULATED":
                healthy = not config.get("ChildHealthChecks") and config["HealthThreshold"] == 0
            else:
                with translated("GetHealthCheckStatus"):
                    observations = self._route53.get_health_check_status(HealthCheckId=check_id)[
                        "HealthCheckObservations"
                    ]
                healthy = verdict(check_id, observations).state is not HealthState.UNHEALTHY
            cache[check_id] = healthy != bool(config.get("Inverted"))
        return cache[check_id]

    def _answer(
        self, records: Sequence[dict[str, Any]], client_region: str | None, cache: dict[str, bool]
    ) -> dict[str, Any] | None:
        """The record Route 53 answers from a group of same-named routing records."""
        if not records:
            return None
        healthy = [r for r in records if self._healthy(r, cache)]
        first = records[0]
        if "Failover" in first:
            by_role = {r["Failover"]: r for r in records}
            primary, secondary = by_role.get("PRIMARY"), by_role.get("SECONDARY")
            # Route 53: the secondary only while the primary is unhealthy and it is healthy.
            if primary is not None and (primary in healthy or secondary not in healthy):
                return primary
            return secondary
        pool = healthy or records  # every record unhealthy: Route 53 answers as if all were up
        if "Weight" in first:
            weighted = [r for r in pool if r["Weight"] > 0]
            if weighted:
                picked: dict[str, Any] = self._rng.choices(
                    weighted, weights=[r["Weight"] for r in weighted]
                )[0]
                return picked
            return self._rng.choice(pool)
        if "Region" in first:
            local = [r for r in pool if r["Region"] == client_region]
            return (local or pool)[0]
        located = {json.dumps(r["GeoLocation"], sort_keys=True): r for r in pool}
        for location in self._client_locations(client_region):
            if location in located:
                return located[location]
        return None

    @staticmethod
    def _client_locations(client_region: str | None) -> Iterator[str]:
        """Most to least specific GeoLocation of a client given as a location code."""
        if client_region:
            code = client_region.upper()
            for location in (code, code.split("-")[0]):
                try:
                    yield json.dumps(geo_location(location), sort_keys=True)
                except InvalidInput:
                    continue
        yield json.dumps({"CountryCode": "*"}, sort_keys=True)

    def _resolve(self, name: str, client_region: str | None) -> Answer:
        """What Route 53 answers now, computed from the records and the checks' state (moto
        cannot answer DNS queries, and real answers would come from a resolver's cache)."""
        _meta, route = self._require(self._in_zone(name))
        cache: dict[str, bool] = {}
        current = name
        for _ in range(len(route.endpoints) + 1):
            at = [r for r in self._records_at(current) if "SetIdentifier" in r]
            record = self._answer(at, client_region, cache)
            if record is None:
                break
            if "AliasTarget" not in record:
                value = record["ResourceRecords"][0]["Value"].rstrip(".")
                return Answer(
                    name, record["Type"], (value,), int(record["TTL"]), (_endpoint_of(record),)
                )
            current = record["AliasTarget"]["DNSName"].rstrip(".")
        rtype = route.endpoints[0].record_type
        return Answer(name, rtype, (), route.ttl, ())

    def _expected_failover_s(self, route: Route) -> float:
        """Route 53's mean detection time plus half the TTL (resolver caches expire, on
        average, halfway through). Without a check, only an override moves traffic."""
        detection = 0.0 if route.health_check is None else expected_detection_s(route.health_check)
        return detection + route.ttl / 2
