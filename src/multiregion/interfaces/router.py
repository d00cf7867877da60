"""The traffic router interface: declarative DNS routing of one name to regional endpoints."""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Any

import attrs

from multiregion import validate
from multiregion.closing import Closing
from multiregion.errors import InvalidInput, Unsupported
from multiregion.model import Answer, EndpointStatus, Plan, Policy, Route, Weighted
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
    max_weight: float | None = None
    """The largest weight of a ``Weighted`` policy the service holds (None: no limit)."""
    whole_weights: bool = False
    """Weights must be whole numbers."""
    max_endpoints: int | None = None
    """The most endpoints one route may have (None: no limit)."""


class TrafficRouter(Closing):
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

    def _check_limits(self, route: Route) -> None:
        """``InvalidInput`` for what the service's limits (in the capabilities) refuse."""
        capabilities, service = self.capabilities, type(self).__name__
        most = capabilities.max_endpoints
        if most is not None and len(route.endpoints) > most:
            raise InvalidInput("endpoints", f"{service} takes at most {most} per route")
        if not isinstance(route.policy, Weighted):
            return
        heaviest, whole = capabilities.max_weight, capabilities.whole_weights
        for name, weight in route.policy.weights:
            if (whole and not weight.is_integer()) or (heaviest is not None and weight > heaviest):
                kind = "whole weights" if whole else "weights"
                upto = "" if heaviest is None else f" up to {heaviest:g}"
                raise InvalidInput(f"policy.weights[{name}]", f"{service} takes {kind}{upto}")

    # ------------------------------------------------------------------ public methods
    # Each checks and normalises its arguments, then calls the adapter's hook of the same
    # name; an adapter implements the hooks only (as octoDNS's ``apply`` calls ``_apply``).

    def plan(self, route: Route) -> Plan:
        """The changes ``apply(route)`` would make; empty when the route is already in place."""
        self.require_supported(route)
        self._check_limits(route)
        return self._plan(route)

    def apply(self, route: Route, *, force: bool = False) -> Plan:
        """Create or update the route (idempotent) and return the changes made. Raises
        ``UnsafePlan`` before any change when the plan passes ``change_safety``, unless
        ``force``."""
        self.require_supported(route)
        self._check_limits(route)
        validate.flag("force", force)
        plan = self._plan(route)
        if plan:
            self.check_change_safety(route, plan, force=force)
            self._apply(route, plan)
        return plan

    def check_change_safety(self, route: Route, plan: Plan, *, force: bool = False) -> None:
        """What ``apply`` runs once it has its plan, before changing anything."""
        validate.instance("route", route, Route)
        validate.instance("plan", plan, Plan)
        validate.flag("force", force)
        self.change_safety.check(route, plan, force=force)

    def get(self, name: str) -> Route:
        """The route as applied. Raises ``NotFound``."""
        return self._get(validate.dns_name("name", name))

    def list(self) -> list[str]:
        """Names of the routes this router manages, sorted."""
        return sorted(self._list())

    def delete(self, name: str) -> None:
        """Remove the route and what the library created for it. Raises ``NotFound``."""
        self._delete(validate.dns_name("name", name))

    def set_endpoint_status(self, name: str, endpoint: str, status: EndpointStatus) -> None:
        """Force an endpoint in (UP) or out (DOWN) of answers, or let health decide (AUTO).
        Raises ``NotFound`` for a route that does not exist, ``InvalidInput`` (``endpoint``)
        for an endpoint it lacks; neither changes anything."""
        name = validate.dns_name("name", name)
        validate.endpoint_name("endpoint", endpoint)
        if not isinstance(status, EndpointStatus):
            raise InvalidInput("status", "must be EndpointStatus.UP, DOWN or AUTO")
        route = self._get(name)
        route.endpoint(endpoint)
        self._set_endpoint_status(route, endpoint, status)

    def endpoint_status(self, name: str) -> dict[str, EndpointStatus]:
        """The override in force for each endpoint of the route. Raises ``NotFound``."""
        return self._endpoint_status(validate.dns_name("name", name))

    def resolve(self, name: str, client_region: str | None = None) -> Answer:
        """The answer DNS gives for ``name`` now, given policy, overrides and health."""
        name = validate.dns_name("name", name)
        if client_region is not None:
            validate.region("client_region", client_region)
        return self._resolve(name, client_region)

    def expected_failover_s(self, route: Route) -> float:
        """Mean time from an endpoint failing to DNS caches answering the next one."""
        validate.instance("route", route, Route)
        return self._expected_failover_s(route)

    def worst_failover_s(self, route: Route) -> float:
        """The longest that can take."""
        validate.instance("route", route, Route)
        return self._worst_failover_s(route)

    def close(self) -> None:
        """Release connections and background work."""

    # ------------------------------------------------------------------ hooks
    # Names reach a hook lowercase, without the trailing dot and syntactically valid; routes
    # are ``Route`` instances (already valid as values) whose policy and targets the
    # capabilities allow. What is left to a hook: what its service alone refuses (its limits,
    # names outside its zone), checked before its first request, and the service calls.

    @abc.abstractmethod
    def _plan(self, route: Route) -> Plan:
        """The changes that would bring the service to ``route``, reading only; a drift the
        neutral diff cannot see (records changed out of band) is a change too. What it read
        goes in the plan's ``existing``, for ``_apply``."""

    @abc.abstractmethod
    def _apply(self, route: Route, plan: Plan) -> None:
        """Bring the service to ``route``. Called only with the non-empty ``plan`` that
        ``_plan`` just returned and that passed ``change_safety`` (or was forced); it works
        from ``plan.existing`` rather than reading the service again."""

    @abc.abstractmethod
    def _get(self, name: str) -> Route:
        """The route applied at ``name``; ``NotFound`` when there is none."""

    @abc.abstractmethod
    def _list(self) -> Iterable[str]:
        """Names of the routes this router manages, in any order."""

    @abc.abstractmethod
    def _delete(self, name: str) -> None:
        """Remove the route at ``name`` and what the library created for it; ``NotFound``."""

    @abc.abstractmethod
    def _set_endpoint_status(self, route: Route, endpoint: str, status: EndpointStatus) -> None:
        """Set the override of ``endpoint``, one of the endpoints of ``route`` (the route as
        ``_get`` just read it); ``status`` is an ``EndpointStatus``."""

    @abc.abstractmethod
    def _endpoint_status(self, name: str) -> dict[str, EndpointStatus]:
        """The override of every endpoint of the route at ``name``; ``NotFound``."""

    @abc.abstractmethod
    def _resolve(self, name: str, client_region: str | None) -> Answer:
        """The answer for ``name`` now; ``client_region`` is None or a valid region name."""

    @abc.abstractmethod
    def _expected_failover_s(self, route: Route) -> float:
        """The mean failover time of ``route`` on this service (no service call needed)."""

    def _worst_failover_s(self, route: Route) -> float:
        """By default the slowest detection plus a whole TTL."""
        check = route.health_check
        return (0.0 if check is None else check.worst_detection_s()) + route.ttl
