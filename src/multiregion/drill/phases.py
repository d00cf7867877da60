"""A failover by phase, predicted against measured.

Every figure is the instant a phase ended, in seconds from the fault (the client cache's is a
duration: how long clients kept the old answer after DNS changed):

``detection``      the controller's health source marks the region unhealthy
``decision``       the controller decides to move the write region
``dns_switch``     the router's own answer (no cache) names another region
``promotion``      the store's write region has moved (fenced, caught up where it could)
``first_request``  a client is served by another region: the RTO
``client_cache``   from the DNS switch until the client's own lookup saw it

Predictions are means. The controller's health source and the router's data plane probe on
their own schedules, and DNS moves at the first of the two (the router's own detection, or the
controller pinning the failed primary out when it moves the write region); the prediction is
the mean of that minimum, each detection spread evenly between its best and its worst case.
"""

from __future__ import annotations

import attrs

from multiregion.interfaces import TrafficRouter
from multiregion.model import Route

PHASES = ("detection", "decision", "dns_switch", "promotion", "first_request", "client_cache")
LABELS = {
    "detection": "detection",
    "decision": "decision",
    "dns_switch": "DNS switch",
    "promotion": "data promotion",
    "first_request": "first successful request",
    "client_cache": "client cache (TTL)",
}


@attrs.frozen
class Effects:
    """What a fault does, as far as predicting the failover goes."""

    health_sees: bool = False
    """Health checks fail (probes refused, time out or answer errors)."""
    dns_forced: bool = False
    """The router's answer moves at once (an override)."""
    requests_fail: bool = False
    """Requests reaching the region fail, so a client looks its answer up again at once."""
    requests_hang: bool = False
    """Requests reaching the region hang until the client's timeout (a blackhole)."""

    def __or__(self, other: Effects) -> Effects:
        pairs = zip(attrs.astuple(self), attrs.astuple(other), strict=True)
        return Effects(*(a or b for a, b in pairs))


@attrs.frozen
class Phase:
    name: str
    predicted_s: float | None
    measured_s: float | None
    started_s: float | None = None
    """Where its lane's bar starts (seconds from the fault); None for a point."""

    @property
    def ratio(self) -> float | None:
        if not self.predicted_s or self.measured_s is None:
            return None
        return round(self.measured_s / self.predicted_s, 3)


def mean_of_earlier(ranges: list[tuple[float, float]], steps: int = 400) -> float:
    """E[min] of independent times, each spread evenly over its ``(low, high)``."""
    low = min(r[0] for r in ranges)
    high = max(r[1] for r in ranges)
    if high <= low:
        return low

    def after(t: float) -> float:  # P(none is done by t)
        p = 1.0
        for a, b in ranges:
            p *= 1.0 if t < a else 0.0 if t >= b else (b - t) / (b - a)
        return p

    width = (high - low) / steps
    # E[min] = low + integral over [low, high] of P(min > t)
    return low + sum(after(low + (i + 0.5) * width) * width for i in range(steps))


def predict(
    router: TrafficRouter,
    route: Route,
    effects: Effects,
    tick_s: float,
    confirm: int | None = 1,
    promote_delay_s: float = 0.0,
    time_scale: float = 1.0,
) -> dict[str, float | None]:
    """Each phase's predicted end (a mean), None where the fault gives no basis for one.

    ``promote_delay_s``: how long the store's promote waits before the new write region takes
    writes (a write lease running out), added to the promotion and to what waits for it.

    ``time_scale``: the health checks run on a clock that fraction of real time (the fakes'),
    so every duration they make is scaled; the TTL is not.

    ``tick_s`` is how often a user sends a request and the controller acts; the controller
    decides after ``confirm`` unhealthy observations, one a tick. ``confirm=None``: no
    controller (an active-active route), so recovery is the DNS shift alone."""
    check = route.health_check
    cache = 0.0 if effects.requests_fail else route.ttl / 2
    found: dict[str, float | None] = dict.fromkeys(PHASES)
    found["client_cache"] = cache
    if effects.dns_forced:
        found["dns_switch"] = 0.0
        found["first_request"] = cache + tick_s / 2
        return found
    if not effects.health_sees or check is None:
        return found
    k = time_scale
    detection = (check.expected_detection_s() * k, check.worst_detection_s() * k)
    # The router's data plane: its mean and worst, from which an even spread follows. A
    # provider whose expected figure is its documented worst case, a whole TTL included
    # (Traffic Manager), would otherwise put the mean past the worst.
    dns_worst = (router.worst_failover_s(route) - route.ttl) * k
    dns_mean = min(dns_worst, (router.expected_failover_s(route) - route.ttl / 2) * k)
    dns = (max(0.0, 2 * dns_mean - dns_worst), max(dns_mean, dns_worst))
    own = (2 * detection[0] - detection[1], detection[1])
    found["detection"] = detection[0]
    found["dns_switch"] = dns_mean
    # A user arrives every tick. The client's cached answer goes once a request fails: at
    # once when they are refused, a tick later when they hang (one times out every tick).
    waits = tick_s if effects.requests_hang else tick_s / 2
    if confirm is None:
        found["first_request"] = dns_mean + waits + cache
        return found
    decision = detection[0] + tick_s * (confirm - 0.5)
    found["decision"] = decision
    found["promotion"] = decision + promote_delay_s
    decided = (
        own[0] + tick_s * (confirm - 1) + promote_delay_s,
        own[1] + tick_s * confirm + promote_delay_s,
    )
    # DNS moves at the first of the router's own detection and the controller's move, which
    # pins the failed primary out of the route; any other region then serves requests.
    switch = mean_of_earlier([decided, dns])
    found["dns_switch"] = switch
    found["first_request"] = switch + waits + cache
    return found
