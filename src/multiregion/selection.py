"""Which endpoints a DNS answer names, given a route's policy, overrides and health.

Pure rules, no I/O: the local DNS server and the cloud fakes answer with these, so every
provider's ``resolve`` agrees on what "the answer the cloud would give" means.

An endpoint is *eligible* unless forced DOWN; forced UP it is answered even when unhealthy;
on AUTO it is answered when healthy, and an endpoint without a health check or with no
verdict yet counts as healthy. When health leaves no endpoint eligible the rules fail open
over every endpoint not forced DOWN, as Route 53 and Traffic Manager do (an outage of the
probes must not take the name down); when every endpoint is forced DOWN the answer is empty.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence

from multiregion.model import (
    Endpoint,
    EndpointStatus,
    Failover,
    Geo,
    HealthState,
    Latency,
    Route,
    Weighted,
)

Pick = Callable[[Sequence[Endpoint]], tuple[Endpoint, ...]]


def choose(
    route: Route,
    health: Mapping[str, HealthState],
    overrides: Mapping[str, EndpointStatus],
    *,
    rng: random.Random,
    client_region: str | None = None,
) -> tuple[Endpoint, ...]:
    """The endpoints answered for ``route`` now (one, or none when all are forced DOWN).

    ``health`` and ``overrides`` are keyed by endpoint name; a missing entry means UNKNOWN
    and AUTO. Health is ignored for a route without a health check.
    """
    pick = _picker(route, rng, client_region)
    candidates = [e for e in route.endpoints if _eligible(route, e, health, overrides)]
    chosen = pick(candidates)
    if chosen:
        return chosen
    not_down = [e for e in route.endpoints if _status(e, overrides) is not EndpointStatus.DOWN]
    return pick(not_down)


def _status(endpoint: Endpoint, overrides: Mapping[str, EndpointStatus]) -> EndpointStatus:
    return overrides.get(endpoint.name, EndpointStatus.AUTO)


def _eligible(
    route: Route,
    endpoint: Endpoint,
    health: Mapping[str, HealthState],
    overrides: Mapping[str, EndpointStatus],
) -> bool:
    status = _status(endpoint, overrides)
    if status is not EndpointStatus.AUTO:
        return status is EndpointStatus.UP
    if route.health_check is None:
        return True
    return health.get(endpoint.name, HealthState.UNKNOWN) is not HealthState.UNHEALTHY


def _picker(route: Route, rng: random.Random, client_region: str | None) -> Pick:
    policy = route.policy
    if isinstance(policy, Failover):
        return lambda candidates: _first(candidates, policy.order)
    if isinstance(policy, Weighted):
        return lambda candidates: _by_weight(candidates, policy, rng)
    if isinstance(policy, Latency):
        return lambda candidates: _nearest(candidates, client_region)
    assert isinstance(policy, Geo)
    order = (dict(policy.locations).get(client_region or "", policy.default), policy.default)
    return lambda candidates: _first(candidates, order)


def _first(candidates: Sequence[Endpoint], order: Sequence[str]) -> tuple[Endpoint, ...]:
    by_name = {e.name: e for e in candidates}
    for name in order:
        if name in by_name:
            return (by_name[name],)
    return ()


def _by_weight(
    candidates: Sequence[Endpoint], policy: Weighted, rng: random.Random
) -> tuple[Endpoint, ...]:
    """One endpoint with probability by weight.

    Zero-weight endpoints serve only when no endpoint with a weight above zero can, and then
    evenly, as Route 53 documents.
    """
    weights = dict(policy.weights)
    weighted = [e for e in candidates if weights[e.name] > 0]
    if weighted:
        return tuple(rng.choices(weighted, weights=[weights[e.name] for e in weighted]))
    if candidates:
        return (rng.choice(list(candidates)),)
    return ()


def _nearest(candidates: Sequence[Endpoint], client_region: str | None) -> tuple[Endpoint, ...]:
    """The endpoint in the client's region, else the first in route order.

    Without a latency table this is the best a fake can do; real latency routing ranks every
    region by measured latency.
    """
    for endpoint in candidates:
        if endpoint.region == client_region:
            return (endpoint,)
    return tuple(candidates[:1])
