"""Faults a drill can inject, each with its exact undo.

``ProxyFault`` fails a region the way outages do, through the fault proxy in front of it
(``multiregion.faultproxy``): a blackhole, latency, a share of errors. Its toxics hold a lease
the drill renews, so they revert by themselves if the drill dies. ``ForceDown`` works on every
provider (it is the router's own override). ``StoreOutage`` needs a store that can fail a
region on purpose (the local provider); elsewhere it raises ``Unsupported`` before anything
changes. ``StopEndpoints`` takes the caller's own levers, since only the caller knows how to
stop its service in a region.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from multiregion.drill.phases import Effects
from multiregion.errors import InvalidInput, Unsupported
from multiregion.faultproxy.client import DEFAULT_LEASE_S, ControlClient, Held
from multiregion.faultproxy.toxics import Blackhole, HttpErrors, Refuse, ResetAfter, Toxic
from multiregion.interfaces import ReplicatedStore, TrafficRouter
from multiregion.model import EndpointStatus


class Fault(Protocol):
    """``description`` names it in reports. A fault may also have ``effects`` (an ``Effects``),
    from which the drill predicts each phase; without it, nothing is predicted."""

    description: str

    def inject(self) -> None: ...

    def revert(self) -> None: ...


class ProxyFault:
    """``toxics`` on ``listener`` of a running fault proxy, each held under a renewed lease.
    ``effects`` are read from the toxics unless given (a listener in front of a store replica:
    no health check sees it)."""

    def __init__(
        self,
        client: ControlClient,
        listener: str,
        toxics: Sequence[Toxic],
        description: str,
        *,
        lease_s: float = DEFAULT_LEASE_S,
        effects: Effects | None = None,
    ) -> None:
        if not toxics:
            raise InvalidInput("toxics", "give at least one toxic")
        names = {entry["name"] for entry in client.listeners()}
        if listener not in names:
            raise InvalidInput("listener", f"the fault proxy has no listener {listener!r}")
        self.client, self.listener, self.toxics = client, listener, list(toxics)
        self.description = description
        # A share of errors below one may or may not fail enough probes in a row: no prediction.
        cut = any(isinstance(t, Blackhole | Refuse | ResetAfter) for t in toxics) or any(
            isinstance(t, HttpErrors) and t.rate >= 1 for t in toxics
        )
        self.effects = effects or Effects(
            health_sees=cut,
            requests_fail=cut or any(isinstance(t, HttpErrors) for t in toxics),
            requests_hang=any(isinstance(t, Blackhole) for t in toxics),
        )
        self.lease_s = lease_s
        self._held: list[Held] = []

    def inject(self) -> None:
        for toxic in self.toxics:
            self._held.append(self.client.hold(self.listener, toxic, self.lease_s))

    def revert(self) -> None:
        while self._held:
            self._held.pop().release()


class ForceDown:
    """Every endpoint of ``region`` forced out of the route's answers."""

    def __init__(self, router: TrafficRouter, route_name: str, region: str) -> None:
        route = router.get(route_name)
        self._names = [e.name for e in route.endpoints if e.region == region]
        if not self._names:
            raise InvalidInput("region", f"{region!r} has no endpoint in {route.name}")
        self.router, self.route_name = router, route.name
        self.description = f"force {region} down in {route.name}"
        self.effects = Effects(dns_forced=True)
        self._before: dict[str, EndpointStatus] = {}

    def inject(self) -> None:
        self._before = self.router.endpoint_status(self.route_name)
        for name in self._names:
            self.router.set_endpoint_status(self.route_name, name, EndpointStatus.DOWN)

    def revert(self) -> None:
        for name in self._names:
            previous = self._before.get(name, EndpointStatus.AUTO)
            self.router.set_endpoint_status(self.route_name, name, previous)


class StoreOutage:
    """The store's replica in ``region`` unreachable, as in a regional outage."""

    def __init__(self, store: ReplicatedStore, region: str) -> None:
        self._fail, self._heal = _levers(
            store, region, ("fail_region", "heal_region"), "take a region down on purpose"
        )
        self.region = region
        self.description = f"store replica in {region} unreachable"

    def inject(self) -> None:
        self._fail(self.region)

    def revert(self) -> None:
        self._heal(self.region)


class Partition:
    """The store's replication and fencing links between ``region`` and every other voter cut,
    while users still reach the region (the local store's ``partition``; elsewhere
    ``Unsupported``). The region's side is a minority, so under quorum fencing it can no
    longer write: what the drill then measures is that nothing splits."""

    def __init__(self, store: ReplicatedStore, region: str) -> None:
        self._cut, self._heal = _levers(
            store, region, ("partition", "heal_partitions"), "cut its replication on purpose"
        )
        voters: tuple[str, ...] = getattr(store, "voters", store.regions)
        self.groups = ([region], [v for v in voters if v != region])
        self.description = f"replication from {region} cut (users still reach it)"

    def inject(self) -> None:
        self._cut(*self.groups)

    def revert(self) -> None:
        self._heal()


class StopEndpoints:
    """The service in a region stopped and started again by the caller's own functions."""

    def __init__(self, region: str, stop: Callable[[], None], start: Callable[[], None]) -> None:
        self.description = f"endpoints in {region} stopped"
        self.effects = Effects(health_sees=True, requests_fail=True)
        self._stop, self._start = stop, start

    def inject(self) -> None:
        self._stop()

    def revert(self) -> None:
        self._start()


class Together:
    """Several faults at the same instant (a whole-region outage), undone in reverse order."""

    def __init__(self, faults: Sequence[Fault]) -> None:
        if not faults:
            raise InvalidInput("faults", "give at least one fault")
        self.faults = list(faults)
        self.description = " + ".join(f.description for f in self.faults)
        self.effects = effects_of(self.faults)
        self._injected: list[Fault] = []

    def inject(self) -> None:
        for fault in self.faults:
            fault.inject()
            self._injected.append(fault)

    def revert(self) -> None:
        while self._injected:
            self._injected.pop().revert()


def effects_of(faults: Sequence[Fault]) -> Effects:
    """What ``faults`` do together (``Effects()`` for faults that do not say)."""
    found = Effects()
    for fault in faults:
        found |= getattr(fault, "effects", Effects())
    return found


def _levers(
    store: ReplicatedStore, region: str, names: tuple[str, str], purpose: str
) -> tuple[Callable[..., None], Callable[..., None]]:
    """The store's own fault levers (the local store has them), checked before any change."""
    inject, revert = (getattr(store, name, None) for name in names)
    if not callable(inject) or not callable(revert):
        raise Unsupported(f"{type(store).__name__} cannot {purpose}")
    if region not in store.regions:
        raise InvalidInput("region", f"{region!r} is not one of {', '.join(store.regions)}")
    return inject, revert
