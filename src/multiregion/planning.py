"""Diffs between two versions of a route, in neutral terms, shared by every router's ``plan``,
and the change safety every router's ``apply`` checks them against."""

from __future__ import annotations

from typing import Any

import attrs

from multiregion.errors import InvalidInput, PreconditionFailed
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


class UnsafePlan(PreconditionFailed):
    """``apply`` would update or delete more of a route than its change safety allows."""


def _share(field: str) -> Any:
    def check(_instance: Any, _attribute: Any, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise InvalidInput(field, f"{value!r} is not a share between 0 and 1")

    return check


def _count(_instance: Any, _attribute: Any, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput("min_existing", f"{value!r} is not a whole number >= 0")


@attrs.frozen
class ChangeSafety:
    """How much of an existing route one ``apply`` may change before it needs ``force``,
    as octoDNS's update and delete thresholds: the shares count the route's endpoints
    (each is one or more records on every provider), and routes with fewer than
    ``min_existing`` endpoints are not checked."""

    update_share: float = attrs.field(default=0.3, validator=_share("update_share"))
    delete_share: float = attrs.field(default=0.3, validator=_share("delete_share"))
    min_existing: int = attrs.field(default=3, validator=_count)

    def check(self, route: Route, plan: Plan, *, force: bool = False) -> None:
        """Raise ``UnsafePlan`` when ``plan`` (towards ``route``) passes a threshold."""
        if force:
            return
        actions = [c.action for c in plan.changes if c.subject.startswith("endpoint ")]
        if any(c.subject == "route" and c.action == "create" for c in plan.changes):
            return
        created, updated, deleted = (actions.count(a) for a in ("create", "update", "delete"))
        existing = len(route.endpoints) - created + deleted
        if existing < self.min_existing:
            return
        for action, count, share in (
            ("update", updated, self.update_share),
            ("delete", deleted, self.delete_share),
        ):
            if count > share * existing:
                raise UnsafePlan(
                    f"apply would {action} {count} of the {existing} endpoints of "
                    f"{route.name} (more than {share:.0%}); force it to go on"
                )
