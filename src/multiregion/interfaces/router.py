"""The traffic router interface: declarative DNS routing of one name to regional endpoints."""

from __future__ import annotations

import abc
from typing import Any

import attrs

from multiregion import validate
from multiregion.errors import Unsupported
from multiregion.model import Answer, EndpointStatus, Plan, Policy, Route
from multiregion.planning import ChangeSafety


@attrs.frozen
class RouterCapabilities:
    policies: frozenset[type[Any]]
    """Policy classes the router can serve (``Failover``, ``Weighted``, ``Latency``, ``Geo``)."""
    health_checked: bool = True
    """Endpoints of a route with a health check leave the answer when they fail."""
    cname_targets: bool = True
    """Endpoints may be host names (CNAME) as well as addresses."""
    answers_when_all_down: bool = False
    """With every endpoint forced down, DNS still answers the first one in the route's order
    (Route 53 has no empty answer while records exist); otherwise the answer is empty."""


class TrafficRouter(abc.ABC):
    """Declarative routing of one DNS name to regional endpoints."""

    capabilities: RouterCapabilities
    change_safety: ChangeSafety = ChangeSafety()
    """What one ``apply`` may change without ``force``; set another on an instance to tune."""

    def supports(self, policy: Policy) -> bool:
        return type(policy) in self.capabilities.policies

    def require_supported(self, route: Route) -> None:
        """Raise ``Unsupported`` for a route this router cannot serve exactly as written."""
        validate.instance("route", route, Route)
        if not self.supports(route.policy):
            raise Unsupported(
                f"{type(self).__name__} cannot serve {type(route.policy).__name__} routing"
            )
        if not self.capabilities.cname_targets and any(
            e.record_type == "CNAME" for e in route.endpoints
        ):
            raise Unsupported(f"{type(self).__name__} cannot route to host names")

    @abc.abstractmethod
    def plan(self, route: Route) -> Plan:
        """The changes ``apply(route)`` would make; empty when the route is already in place."""

    @abc.abstractmethod
    def apply(self, route: Route, *, force: bool = False) -> Plan:
        """Create or update the route (idempotent) and return the changes made. Raises
        ``UnsafePlan`` before any change when the plan passes ``change_safety``, unless
        ``force``."""

    def check_change_safety(self, route: Route, plan: Plan, *, force: bool = False) -> None:
        """Every router's ``apply`` calls this once it has its plan, before changing anything."""
        validate.instance("route", route, Route)
        validate.instance("plan", plan, Plan)
        self.change_safety.check(route, plan, force=force)

    @abc.abstractmethod
    def get(self, name: str) -> Route:
        """The route as applied. Raises ``NotFound``."""

    @abc.abstractmethod
    def list(self) -> list[str]:
        """Names of the routes this router manages, sorted."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Remove the route and what the library created for it. Raises ``NotFound``."""

    @abc.abstractmethod
    def set_endpoint_status(self, name: str, endpoint: str, status: EndpointStatus) -> None:
        """Force an endpoint in (UP) or out (DOWN) of answers, or let health decide (AUTO)."""

    @abc.abstractmethod
    def endpoint_status(self, name: str) -> dict[str, EndpointStatus]:
        """The override in force for each endpoint of the route."""

    @abc.abstractmethod
    def resolve(self, name: str, client_region: str | None = None) -> Answer:
        """The answer DNS gives for ``name`` now, given policy, overrides and health."""

    @abc.abstractmethod
    def expected_failover_s(self, route: Route) -> float:
        """Mean time from an endpoint failing to DNS caches answering the next one."""

    def worst_failover_s(self, route: Route) -> float:
        """The longest that can take: the slowest detection plus a whole TTL."""
        validate.instance("route", route, Route)
        check = route.health_check
        return (0.0 if check is None else check.worst_detection_s()) + route.ttl

    def close(self) -> None:  # noqa: B027 - a no-op is right for routers holding nothing
        """Release connections and background work."""
