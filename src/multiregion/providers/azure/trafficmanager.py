"""The TrafficRouter on Azure Traffic Manager: one profile per route.

Failover -> Priority (priorities 1..n in failover order), Weighted -> Weighted (whole weights
1-1000; a weight of 0 keeps the endpoint Disabled, so it never answers, not even when every
other endpoint is down), Latency -> Performance (``endpointLocation`` is the endpoint's region,
which must then be an Azure region name), Geo -> Geographic (``geoMapping`` codes; the default
endpoint also gets ``WORLD``). The route's health check is the profile's monitorConfig; a
route without one still needs a monitorConfig, so its endpoints are set to Always Serve.

Overrides: DOWN is ``endpointStatus: Disabled``; UP is Always Serve (probing off, always in
the answer); AUTO is Enabled without Always Serve. On a route without a health check every
endpoint is always served, so UP reads back as AUTO there.

What Traffic Manager cannot hold (the route's DNS name, endpoint regions and order, zero
weights, "no health check") is kept in profile tags, so ``get`` returns the route applied.
ARM allows 50 tags of 256 characters per resource and Traffic Manager 200 endpoints per
profile, so the endpoints' order, regions and zero weights are one compressed layout (positions
in the sorted endpoint names, indices into a table of regions) cut across a few tags.
"""

from __future__ import annotations

import base64
import json
import random
import zlib
from typing import Any

import attrs

from multiregion import planning, selection
from multiregion.errors import InvalidInput, MultiregionError, NotFound, Unsupported
from multiregion.interfaces import RouterCapabilities, TrafficRouter
from multiregion.model import (
    Answer,
    Endpoint,
    EndpointStatus,
    Failover,
    Geo,
    HealthState,
    Latency,
    Plan,
    Policy,
    Route,
    Weighted,
)
from multiregion.providers.azure import profiles as tm
from multiregion.providers.azure.errors import translated

ROUTE_TAG = "multiregion-route"
NO_CHECK_TAG = "multiregion-check"
LAYOUT_TAG = "multiregion-layout-"
FIXED_TAGS = 2
"""ROUTE_TAG and NO_CHECK_TAG; the layout tags take the rest of ARM's 50."""
WORLD = "WORLD"
MAX_WEIGHT = 1000
_METHODS: dict[type[Any], str] = {
    Failover: "Priority",
    Weighted: "Weighted",
    Latency: "Performance",
    Geo: "Geographic",
}
_DEFAULT_MONITOR = {
    "protocol": "HTTP",
    "port": 80,
    "path": "/",
    "intervalInSeconds": 30,
    "timeoutInSeconds": 10,
    "toleratedNumberOfFailures": 3,
}


class TrafficManagerRouter(TrafficRouter):
    """Routes as Traffic Manager profiles in ``resource_group``.

    ``endpoint`` is the Resource Manager URL (the fake's for tests); ``connection_verify`` a CA
    bundle path for it, or False for a loopback endpoint only.
    """

    capabilities = RouterCapabilities(
        policies=frozenset(_METHODS),
        cname_targets=True,
        max_weight=MAX_WEIGHT,
        whole_weights=True,
        max_endpoints=tm.limit("endpoints_per_profile"),
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
        seed: int | None = None,
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
        self._rng = random.Random(seed)

    def __repr__(self) -> str:
        return f"TrafficManagerRouter(resource_group={self._group!r})"

    # ------------------------------------------------------------------ control plane

    def _plan(self, route: Route) -> Plan:
        self._body(route, {})
        profile = self._profile(route.name, missing_ok=True)
        current = None if profile is None else _route_of(profile)
        return attrs.evolve(planning.diff_routes(route.name, current, route), existing=profile)

    def _apply(self, route: Route, plan: Plan) -> None:
        body = self._body(route, plan.existing or {})
        with translated(f"apply {route.name}"):
            self._client.profiles.create_or_update(
                self._group, tm.profile_name("route", route.name), body
            )

    def _get(self, name: str) -> Route:
        return _route_of(self._require(name))

    def _list(self) -> list[str]:
        with translated("list routes"):
            found = self._client.profiles.list_by_resource_group(self._group)
            names = [(p.tags or {}).get(ROUTE_TAG) for p in found]
        return [n for n in names if n]

    def _delete(self, name: str) -> None:
        self._require(name)
        with translated(f"delete {name}"):
            self._client.profiles.delete(self._group, tm.profile_name("route", name))

    def _set_endpoint_status(self, route: Route, endpoint: str, status: EndpointStatus) -> None:
        name = route.name
        profile = self._require(name)
        if endpoint in _zero_weights(profile):
            raise Unsupported(
                f"{endpoint} has weight 0, which keeps it Disabled on Traffic Manager; "
                "give it a weight to override it"
            )
        served = status is EndpointStatus.UP or route.health_check is None
        patch = {
            "properties": {
                "endpointStatus": "Disabled" if status is EndpointStatus.DOWN else "Enabled",
                "alwaysServe": "Enabled" if served else "Disabled",
            }
        }
        with translated(f"set {endpoint} of {name} {status.value}"):
            self._client.endpoints.update(
                self._group, tm.profile_name("route", name), tm.EXTERNAL, endpoint, patch
            )

    def _endpoint_status(self, name: str) -> dict[str, EndpointStatus]:
        profile = self._require(name)
        route = _route_of(profile)
        zero = _zero_weights(profile)
        statuses = {}
        for endpoint in profile["properties"].get("endpoints") or []:
            props = endpoint["properties"]
            if props.get("endpointStatus") == "Disabled" and endpoint["name"] not in zero:
                statuses[endpoint["name"]] = EndpointStatus.DOWN
            elif props.get("alwaysServe") == "Enabled" and route.health_check is not None:
                statuses[endpoint["name"]] = EndpointStatus.UP
            else:
                statuses[endpoint["name"]] = EndpointStatus.AUTO
        return statuses

    # ------------------------------------------------------------------ answers

    def _resolve(self, name: str, client_region: str | None) -> Answer:
        """The answer Traffic Manager gives: Disabled endpoints never, Always Serve ones always,
        Degraded ones not, unless every enabled endpoint is Degraded (then all of them)."""
        profile = self._require(name)
        route = _route_of(profile)
        health: dict[str, HealthState] = {}
        overrides: dict[str, EndpointStatus] = {}
        for endpoint in profile["properties"].get("endpoints") or []:
            props = endpoint["properties"]
            health[endpoint["name"]] = tm.health_of(props.get("endpointMonitorStatus"))
            if props.get("endpointStatus") == "Disabled":
                overrides[endpoint["name"]] = EndpointStatus.DOWN
            elif props.get("alwaysServe") == "Enabled":
                overrides[endpoint["name"]] = EndpointStatus.UP
        if isinstance(route.policy, Geo) and client_region is not None:
            client_region = client_region.upper()
        chosen = selection.choose(
            route, health, overrides, rng=self._rng, client_region=client_region
        )
        kinds = {e.record_type for e in route.endpoints}
        return Answer(
            name=route.name,
            record_type=kinds.pop() if len(kinds) == 1 else route.endpoints[0].record_type,
            records=tuple(e.target for e in chosen),
            ttl=route.ttl,
            endpoints=tuple(e.name for e in chosen),
        )

    def _expected_failover_s(self, route: Route) -> float:
        """(interval + timeout) x (tolerated failures + 1) + TTL, as Microsoft documents it."""
        if route.health_check is None:
            return float(route.ttl)
        return tm.detection_s(route.health_check) + route.ttl

    def _worst_failover_s(self, route: Route) -> float:
        """Microsoft's figure already counts every tolerated failure and a whole TTL."""
        return self._expected_failover_s(route)

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ helpers

    def _profile(self, name: str, *, missing_ok: bool = False) -> dict[str, Any] | None:
        try:
            profile = tm.read_profile(
                self._client, self._group, tm.profile_name("route", name), f"read {name}"
            )
        except NotFound:
            if missing_ok:
                return None
            raise NotFound(f"no route {name}") from None
        if (profile.get("tags") or {}).get(ROUTE_TAG) != name:
            if missing_ok:
                return None
            raise NotFound(f"no route {name} (the profile is not one of the library's)")
        return profile

    def _require(self, name: str) -> dict[str, Any]:
        profile = self._profile(name)
        assert profile is not None
        return profile

    def _body(self, route: Route, current: dict[str, Any]) -> dict[str, Any]:
        """The profile for ``route``, keeping the overrides ``current`` holds."""
        monitor = (
            _DEFAULT_MONITOR
            if route.health_check is None
            else tm.monitor_config(route.health_check)
        )
        method = _METHODS[type(route.policy)]
        had_check = NO_CHECK_TAG not in (current.get("tags") or {})
        was_zero = _zero_weights(current) if current else set()
        existing = {
            e["name"]: e["properties"] for e in current.get("properties", {}).get("endpoints") or []
        }
        tags = {ROUTE_TAG: route.name}
        if route.health_check is None:
            tags[NO_CHECK_TAG] = "none"
        zero = _zero_set(route.policy)
        tags.update(_layout_tags(route, zero))
        endpoints = []
        for endpoint in route.endpoints:
            props: dict[str, Any] = {"target": endpoint.target, **_placement(route, endpoint)}
            before = existing.get(endpoint.name, {})
            disabled = before.get("endpointStatus") == "Disabled" and endpoint.name not in was_zero
            forced_up = before.get("alwaysServe") == "Enabled" and had_check
            props["endpointStatus"] = "Disabled" if disabled or endpoint.name in zero else "Enabled"
            served = route.health_check is None or forced_up
            props["alwaysServe"] = "Enabled" if served else "Disabled"
            endpoints.append({"name": endpoint.name, "type": tm.EXTERNAL_TYPE, "properties": props})
        return {
            "location": "global",
            "tags": tags,
            "properties": {
                "profileStatus": "Enabled",
                "trafficRoutingMethod": method,
                "dnsConfig": {
                    "relativeName": tm.profile_name("route", route.name),
                    "ttl": route.ttl,
                },
                "monitorConfig": monitor,
                "endpoints": endpoints,
            },
        }


def _zero_set(policy: Policy) -> set[str]:
    if not isinstance(policy, Weighted):
        return set()
    return {name for name, weight in policy.weights if weight == 0}


def _layout_tags(route: Route, zero: set[str]) -> dict[str, str]:
    """The endpoints' order, regions and zero weights as a few tags within ARM's limits."""
    names = {name: i for i, name in enumerate(sorted(e.name for e in route.endpoints))}
    table = list(dict.fromkeys(e.region for e in route.endpoints))
    layout = {
        "order": [names[e.name] for e in route.endpoints],
        "regions": [table.index(e.region) for e in route.endpoints],
        "table": table,
        "zero": sorted(names[n] for n in zero),
    }
    text = json.dumps(layout, separators=(",", ":"))
    packed = base64.urlsafe_b64encode(zlib.compress(text.encode(), 9)).decode()
    size = tm.limit("tag_value_chars")
    chunks = [packed[i : i + size] for i in range(0, len(packed), size)]
    if len(chunks) + FIXED_TAGS > tm.limit("tags_per_resource"):
        raise InvalidInput("endpoints", "the route's layout passes ARM's 50 tags per resource")
    return {f"{LAYOUT_TAG}{i}": chunk for i, chunk in enumerate(chunks)}


def _layout(profile: dict[str, Any]) -> tuple[list[tuple[str, str]], set[str]]:
    """(name, region) of each endpoint in the route's order, and the zero-weight names."""
    tags = profile.get("tags") or {}
    chunks = [tags[f"{LAYOUT_TAG}{i}"] for i in range(len(tags)) if f"{LAYOUT_TAG}{i}" in tags]
    if not chunks:
        return [], set()
    layout = json.loads(zlib.decompress(base64.urlsafe_b64decode("".join(chunks))))
    names = sorted(e["name"] for e in profile["properties"].get("endpoints") or [])
    table = layout["table"]
    placed = [(names[o], table[r]) for o, r in zip(layout["order"], layout["regions"], strict=True)]
    return placed, {names[i] for i in layout["zero"]}


def _zero_weights(profile: dict[str, Any]) -> set[str]:
    return _layout(profile)[1] if profile else set()


def _placement(route: Route, endpoint: Endpoint) -> dict[str, Any]:
    """The routing fields of one endpoint for the route's policy."""
    policy = route.policy
    if isinstance(policy, Failover):
        return {"priority": policy.order.index(endpoint.name) + 1}
    if isinstance(policy, Weighted):  # a weight of 0 is kept Disabled, with weight 1
        return {"weight": max(1, int(policy.weight(endpoint.name)))}
    if isinstance(policy, Latency):
        return {"endpointLocation": tm.azure_region("endpoint.region", endpoint.region)}
    assert isinstance(policy, Geo)
    codes = [code for code, name in policy.locations if name == endpoint.name]
    for code in codes:
        if code == WORLD:
            raise InvalidInput(f"policy.locations[{code}]", "WORLD is the default's own code")
        tm.geographic_code(f"policy.locations[{code}]", code)
    if endpoint.name == policy.default:
        codes.append(WORLD)
    if not codes:
        raise InvalidInput("policy", f"Geographic routing needs a location for {endpoint.name}")
    return {"geoMapping": codes}


def _route_of(profile: dict[str, Any]) -> Route:
    """The route a profile written by this router stands for."""
    try:
        return _parse_route(profile)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise MultiregionError(
            f"Traffic Manager profile {profile.get('name')} was changed outside the library"
        ) from exc


def _parse_route(profile: dict[str, Any]) -> Route:
    tags = profile.get("tags") or {}
    props = profile["properties"]
    raw = props.get("endpoints") or []
    targets = {e["name"]: e["properties"]["target"] for e in raw}
    placed, zero = _layout(profile)
    if len(placed) != len(raw):
        raise ValueError("the layout tags do not match the endpoints")
    endpoints = [Endpoint(name, region, targets[name]) for name, region in placed]
    method = props["trafficRoutingMethod"]
    policy: Policy
    if method == "Priority":
        order = sorted(raw, key=lambda e: e["properties"]["priority"])
        policy = Failover(order[0]["name"], [e["name"] for e in order[1:]])
    elif method == "Weighted":
        policy = Weighted(
            {e["name"]: 0 if e["name"] in zero else e["properties"]["weight"] for e in raw}
        )
    elif method == "Performance":
        policy = Latency()
    else:
        mapping = {code: e["name"] for e in raw for code in e["properties"].get("geoMapping") or []}
        default = mapping.pop(WORLD)
        policy = Geo(mapping, default=default)
    check = None if NO_CHECK_TAG in tags else tm.check_of(props["monitorConfig"])
    return Route(
        tags[ROUTE_TAG],
        endpoints,
        policy,
        ttl=int(props["dnsConfig"]["ttl"]),
        health_check=check,
    )
