"""Diffs between two versions of a route, in neutral terms, shared by every router's ``plan``."""

from __future__ import annotations

from multiregion.model import (
    Change,
    Endpoint,
    Failover,
    Geo,
    HealthCheck,
    Latency,
    Plan,
    Policy,
    Route,
    Weighted,
)


def describe_policy(policy: Policy) -> str:
    if isinstance(policy, Failover):
        return "failover " + " > ".join(policy.order)
    if isinstance(policy, Weighted):
        return "weighted " + ", ".join(f"{n}={w:g}" for n, w in policy.weights)
    if isinstance(policy, Latency):
        return "latency"
    assert isinstance(policy, Geo)
    parts = [f"{loc}->{name}" for loc, name in policy.locations]
    return "geo " + ", ".join([*parts, f"*->{policy.default}"])


def describe_endpoint(endpoint: Endpoint) -> str:
    return f"{endpoint.target} ({endpoint.region})"


def describe_check(check: HealthCheck | None) -> str:
    if check is None:
        return "none"
    where = f"{check.protocol}:{check.port}"
    if check.protocol != "tcp":
        where += check.path
    return (
        f"{where} every {check.interval_s:g}s, timeout {check.timeout_s:g}s, "
        f"down after {check.failure_threshold}, up after {check.success_threshold}"
    )


def diff_routes(name: str, current: Route | None, desired: Route | None) -> Plan:
    """What turns ``current`` into ``desired``; either may be None (create, delete)."""
    changes: list[Change] = []
    if current is None and desired is None:
        return Plan(name)
    if current is None:
        assert desired is not None
        changes.append(Change("create", "route", after=f"ttl {desired.ttl}"))
        changes.append(Change("create", "policy", after=describe_policy(desired.policy)))
        changes.extend(
            Change("create", f"endpoint {e.name}", after=describe_endpoint(e))
            for e in desired.endpoints
        )
        if desired.health_check is not None:
            changes.append(
                Change("create", "health_check", after=describe_check(desired.health_check))
            )
        return Plan(name, tuple(changes))
    if desired is None:
        return Plan(name, (Change("delete", "route", before=describe_policy(current.policy)),))

    if current.ttl != desired.ttl:
        changes.append(Change("update", "ttl", str(current.ttl), str(desired.ttl)))
    if current.policy != desired.policy:
        before, after = describe_policy(current.policy), describe_policy(desired.policy)
        changes.append(Change("update", "policy", before, after))
    old = {e.name: e for e in current.endpoints}
    new = {e.name: e for e in desired.endpoints}
    for endpoint_name in sorted(old.keys() | new.keys()):
        was, now = old.get(endpoint_name), new.get(endpoint_name)
        subject = f"endpoint {endpoint_name}"
        if was is None and now is not None:
            changes.append(Change("create", subject, after=describe_endpoint(now)))
        elif now is None and was is not None:
            changes.append(Change("delete", subject, before=describe_endpoint(was)))
        elif was != now and was is not None and now is not None:
            changes.append(
                Change("update", subject, describe_endpoint(was), describe_endpoint(now))
            )
    if current.health_check != desired.health_check:
        before, after = describe_check(current.health_check), describe_check(desired.health_check)
        if current.health_check is None:
            changes.append(Change("create", "health_check", after=after))
        elif desired.health_check is None:
            changes.append(Change("delete", "health_check", before=before))
        else:
            changes.append(Change("update", "health_check", before, after))
    return Plan(name, tuple(changes))
