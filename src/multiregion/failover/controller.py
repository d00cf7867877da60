"""Failover controllers: what an operator's process runs beside the provider's data plane.

DNS already moves traffic away from a failed endpoint on its own (health-checked records are
provisioned ahead: static stability). The controllers add what DNS cannot: the store's write
region follows traffic with a new fencing token, so the old primary can no longer write; the
failed region is pinned out of the answer so that it does not come back on its own; failback is
a decision (manual by default). Every decision is logged with its reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

import attrs

from multiregion import validate
from multiregion.errors import (
    InvalidInput,
    MultiregionError,
    NotFound,
    PreconditionFailed,
    Unsupported,
)
from multiregion.failover.decision import ActivePassivePolicy, Decision
from multiregion.interfaces import HealthProbe, ReplicatedStore, TrafficRouter
from multiregion.model import (
    EndpointStatus,
    Failover,
    FencingToken,
    HealthState,
    ProbeTarget,
    Route,
    Weighted,
)

logger = logging.getLogger("multiregion.failover")

_REACHABILITY_KEY = "multiregion/reachability"
"""Read, never written: a pinned read of it tells whether a region's replica answers."""

HealthSource = Callable[[], Mapping[str, HealthState]]
"""Health per region, as the controller should see it now."""


@attrs.frozen
class Move:
    """A failover or failback that was carried out."""

    decision: Decision
    fence: FencingToken | None
    duration_s: float
    graceful: bool = False
    """A switchover: the region left was reachable, fenced and caught up first (RPO 0)."""
    overridden: tuple[str, ...] = ()
    """Guard rails that ``force`` overrode, each saying what it costs."""
    notes: tuple[str, ...] = ()


def probe_health(probe: HealthProbe, route: Route) -> HealthSource:
    """Health per region from ``probe``, which is told to check every endpoint of ``route``."""
    if route.health_check is None:
        raise InvalidInput("route.health_check", "a health-driven controller needs a check")
    names = {}
    for endpoint in route.endpoints:
        # Checks are read back by target name, whatever id the provider gives them.
        probe.ensure(ProbeTarget(endpoint.name, endpoint.target, route.health_check))
        names[endpoint.region] = endpoint.name

    def read() -> dict[str, HealthState]:
        states = {}
        for region, name in names.items():
            try:
                states[region] = probe.status(name).state
            except MultiregionError as exc:
                logger.warning("health of %s unreadable: %s", region, exc)
                states[region] = HealthState.UNKNOWN
        return states

    return read


class ActivePassiveController:
    """Keeps one write region, following a Failover route's health.

    ``failover`` and ``failback`` need nothing from the region being left: the router's
    control plane and the store's other replicas are enough.
    """

    def __init__(
        self,
        router: TrafficRouter,
        route_name: str,
        *,
        health: HealthSource,
        store: ReplicatedStore | None = None,
        confirm: int = 2,
        failback: str = "manual",
        failback_after: int = 3,
        catch_up_s: float = 10.0,
        rpo_s: float | None = None,
    ) -> None:
        route = router.get(route_name)
        if not isinstance(route.policy, Failover):
            raise InvalidInput("route.policy", "an active-passive controller needs Failover")
        self.router, self.route, self.store, self._health = router, route, store, health
        self.catch_up_s = validate.finite_non_negative("catch_up_s", catch_up_s)
        self.rpo_s = None if rpo_s is None else validate.finite_non_negative("rpo_s", rpo_s)
        regions = [route.endpoint(name).region for name in route.policy.order]
        active = store.write_region if store is not None else regions[0]
        if active not in regions:
            raise InvalidInput("store", f"write region {active!r} is not a region of the route")
        self.policy = ActivePassivePolicy(
            regions,
            confirm=confirm,
            failback=failback,  # type: ignore[arg-type]  # validated by the policy
            failback_after=failback_after,
            active=active,
        )
        self.moves: list[Move] = []

    @property
    def active(self) -> str:
        return self.policy.active

    def step(self, now: float | None = None) -> Move | None:
        """Read health once and act on the policy's decision, if any."""
        at = time.time() if now is None else now
        decision = self.policy.observe(self._health(), at)
        # A region the checks call down is left even if its replica's data cannot be awaited:
        # staying on it would keep the outage (the move notes what may be behind).
        return None if decision is None else self._carry_out(decision, catch_up_or_go=True)

    def failover(
        self, to_region: str, reason: str = "manual failover", *, force: bool = False
    ) -> Move:
        """Move traffic and writes to ``to_region``: a switchover (RPO 0) when the region left
        is reachable, else a failover that leaves its unreplicated writes to the divergence
        log. Refuses a target its health checks call unhealthy, or that lags more than the RPO
        objective, unless ``force``."""
        return self._manual("failover", to_region, reason, force)

    def failback(self, reason: str = "manual failback", *, force: bool = False) -> Move:
        return self._manual("failback", self.policy.order[0], reason, force)

    def run(self, stop: threading.Event, interval_s: float) -> None:
        """Step every ``interval_s`` until ``stop`` is set; a failed step is logged, not fatal."""
        validate.seconds("interval_s", interval_s, 0, 3600)
        while not stop.wait(interval_s):
            try:
                self.step()
            except MultiregionError as exc:
                logger.error("controller step failed: %s", exc)

    def _manual(self, action: str, to_region: str, reason: str, force: bool) -> Move:
        validate.flag("force", force)
        if to_region not in self.policy.order:
            raise InvalidInput("to_region", f"{to_region!r} is not one of {self.policy.order}")
        if to_region == self.active:
            raise InvalidInput("to_region", f"{to_region!r} is already the active region")
        overridden = self._guard_rails(to_region, force)
        decision = Decision(action, self.active, to_region, reason, time.time())  # type: ignore[arg-type]
        move = self._carry_out(decision, force=force)
        self.policy.moved(to_region)
        if overridden:
            move = attrs.evolve(move, overridden=overridden)
            self.moves[-1] = move
        return move

    def _guard_rails(self, target: str, force: bool) -> tuple[str, ...]:
        """What is wrong with moving writes to ``target``; raises unless ``force``."""
        problems = []
        if self._health().get(target) is HealthState.UNHEALTHY:
            problems.append(
                f"its health checks report {target} unhealthy, so traffic and writes would go "
                "to a region that fails them"
            )
        lag = None if self.rpo_s is None else self._lag(target)
        if lag is not None and self.rpo_s is not None and lag > self.rpo_s:
            problems.append(
                f"{target} is {lag:.1f}s behind, more than the RPO objective of {self.rpo_s:g}s: "
                f"up to {lag:.1f}s of acknowledged writes could be left behind"
            )
        if problems and not force:
            raise PreconditionFailed(
                f"refusing to move the write region to {target}: {'; '.join(problems)}. "
                "--force (force=True) moves anyway, at that cost."
            )
        return tuple(problems)

    def _lag(self, region: str) -> float | None:
        if self.store is None or not self.store.capabilities.replication_lag:
            return None
        try:
            return self.store.replication_lag(region)
        except MultiregionError:
            return None

    def _reachable(self, region: str) -> bool:
        """The store answers for ``region``'s replica (a pinned read; absent keys are fine)."""
        if self.store is None or not self.store.capabilities.pinned_reads:
            return False
        try:
            self.store.get(_REACHABILITY_KEY, region=region)
        except NotFound:
            return True
        except MultiregionError:
            return False
        return True

    def _endpoints_in(self, region: str) -> list[str]:
        return [e.name for e in self.route.endpoints if e.region == region]

    def _carry_out(
        self, decision: Decision, *, force: bool = False, catch_up_or_go: bool = False
    ) -> Move:
        started = time.monotonic()
        logger.warning(
            "%s %s -> %s: %s",
            decision.action,
            decision.from_region,
            decision.to_region,
            decision.reason,
        )
        fence, graceful, notes = None, False, []
        if self.store is not None:
            graceful = self._reachable(decision.from_region)
            if graceful and not self.store.capabilities.switchover:
                behind = self._wait_for_catch_up(decision.to_region, force or catch_up_or_go)
                if behind:
                    notes.append(
                        f"moved with {decision.to_region} still {behind:.2f}s behind: writes "
                        f"{decision.from_region} acknowledged in that time may be missing"
                    )
            elif not graceful:
                notes.append(
                    f"{decision.from_region} was unreachable: writes it acknowledged and had not "
                    "replicated are in no other region; they appear in the divergence log "
                    "(multiregion reconcile) once it is back"
                )
            fence = self.store.promote(decision.to_region, force=force)
            logger.warning(
                "store write region is %s, fence epoch %d%s",
                fence.region,
                fence.epoch,
                " (FORCED: promoted without a majority of the store's voters)"
                if fence.forced
                else "",
            )
        for name in self._endpoints_in(decision.to_region):
            self.router.set_endpoint_status(self.route.name, name, EndpointStatus.AUTO)
        # A failed region is pinned out until a deliberate failback, so that a flapping region
        # cannot pull traffic back; a standby left by a failback stays a healthy backup.
        left = EndpointStatus.DOWN if decision.action == "failover" else EndpointStatus.AUTO
        for name in self._endpoints_in(decision.from_region):
            self.router.set_endpoint_status(self.route.name, name, left)
        move = Move(decision, fence, time.monotonic() - started, graceful, notes=tuple(notes))
        self.moves.append(move)
        return move

    def _wait_for_catch_up(self, region: str, go_anyway: bool) -> float:
        """A switchover on a store whose promote does not catch up by itself: wait until the
        new write region has everything, or give up before anything moved (unless
        ``go_anyway``). Returns how far behind it still was."""
        if self.store is None or not self.store.capabilities.replication_lag:
            return 0.0
        deadline = time.monotonic() + self.catch_up_s
        while True:
            try:
                lag = self.store.replication_lag(region)
            except (Unsupported, NotFound):
                return 0.0
            if lag == 0:
                return 0.0
            if time.monotonic() > deadline:
                if go_anyway:
                    logger.warning("moving to %s while it is %.2fs behind", region, lag)
                    return lag
                raise PreconditionFailed(
                    f"switchover aborted: {region} is still {lag:.2f}s behind after "
                    f"{self.catch_up_s:g}s; nothing moved (--force moves anyway and leaves the "
                    "rest to the divergence log)"
                )
            time.sleep(0.05)


class ActiveActiveController:
    """Weighted routing over every region: drain one (weight 0, then out) and restore it."""

    def __init__(self, router: TrafficRouter, route_name: str) -> None:
        route = router.get(route_name)
        if not isinstance(route.policy, Weighted):
            raise InvalidInput("route.policy", "an active-active controller needs Weighted")
        self.router, self.name = router, route.name

    def weights(self) -> dict[str, float]:
        route = self.router.get(self.name)
        assert isinstance(route.policy, Weighted)
        return dict(route.policy.weights)

    def drain(self, region: str) -> Route:
        """Stop sending new traffic to ``region``; it stays provisioned for ``restore``."""
        route = self._set_region_weight(region, 0.0)
        for endpoint in route.endpoints:
            if endpoint.region == region:
                self.router.set_endpoint_status(self.name, endpoint.name, EndpointStatus.DOWN)
        logger.warning("drained %s", region)
        return route

    def restore(self, region: str, weight: float = 1.0) -> Route:
        validate.finite_non_negative("weight", weight)
        route = self._set_region_weight(region, weight)
        for endpoint in route.endpoints:
            if endpoint.region == region:
                self.router.set_endpoint_status(self.name, endpoint.name, EndpointStatus.AUTO)
        logger.warning("restored %s with weight %g", region, weight)
        return route

    def _set_region_weight(self, region: str, weight: float) -> Route:
        route = self.router.get(self.name)
        if region not in {e.region for e in route.endpoints}:
            raise InvalidInput("region", f"{region!r} is not a region of {self.name}")
        weights = self.weights()
        for endpoint in route.endpoints:
            if endpoint.region == region:
                weights[endpoint.name] = weight
        updated = attrs.evolve(route, policy=Weighted(weights))
        self.router.apply(updated)
        return updated
