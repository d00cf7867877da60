"""When to fail over: a pure state machine fed with health observations.

The probes already apply their own thresholds; this adds a second, slower confirmation so that
one bad round, or an endpoint that fails every other round, never moves the write region.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import attrs

from multiregion import validate
from multiregion.errors import InvalidInput
from multiregion.model import HealthState

Action = Literal["failover", "failback"]


def _order(regions: Iterable[str]) -> tuple[str, ...]:
    return tuple(regions)


@attrs.frozen
class Decision:
    action: Action
    from_region: str
    to_region: str
    reason: str
    at: float


@attrs.define
class ActivePassivePolicy:
    """Decides between regions listed in preference order, the first being the primary.

    ``confirm``: consecutive unhealthy observations of the active region before failing over.
    ``failback``: "manual" (never on its own) or "auto" (after the primary has been healthy for
    ``failback_after`` consecutive observations).
    """

    order: tuple[str, ...] = attrs.field(converter=_order)
    confirm: int = 2
    failback: Literal["manual", "auto"] = "manual"
    failback_after: int = 3
    active: str = attrs.field(default="")
    _bad: int = attrs.field(default=0, init=False)
    _primary_good: int = attrs.field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        if len(self.order) < 2 or len(set(self.order)) != len(self.order):
            raise InvalidInput("order", "needs at least two distinct regions")
        for region in self.order:
            validate.region("order", region)
        validate.int_range("confirm", self.confirm, 1, 100)
        validate.int_range("failback_after", self.failback_after, 1, 100)
        validate.one_of("failback", self.failback, frozenset({"manual", "auto"}))
        if not self.active:
            self.active = self.order[0]
        elif self.active not in self.order:
            raise InvalidInput("active", f"{self.active!r} is not one of the regions")

    def observe(self, health: Mapping[str, HealthState], at: float) -> Decision | None:
        """Feed one round of health per region; returns a decision when one is due."""
        if health.get(self.active) is HealthState.UNHEALTHY:
            self._bad += 1
        else:
            self._bad = 0
        if self._bad >= self.confirm:
            target = self._first_healthy(health, exclude=self.active)
            if target is not None:
                return self._move(
                    "failover",
                    target,
                    f"{self.active} unhealthy for {self._bad} consecutive checks; "
                    f"{target} is healthy",
                    at,
                )
        primary = self.order[0]
        if self.active != primary and health.get(primary) is HealthState.HEALTHY:
            self._primary_good += 1
        else:
            self._primary_good = 0
        if self.failback == "auto" and self._primary_good >= self.failback_after:
            return self._move(
                "failback",
                primary,
                f"{primary} healthy for {self._primary_good} consecutive checks",
                at,
            )
        return None

    def moved(self, region: str) -> None:
        """Record a move made outside the policy (a manual failover or failback)."""
        if region not in self.order:
            raise InvalidInput("region", f"{region!r} is not one of {', '.join(self.order)}")
        self.active = region
        self._bad = self._primary_good = 0

    def _first_healthy(self, health: Mapping[str, HealthState], exclude: str) -> str | None:
        for region in self.order:
            if region != exclude and health.get(region) is HealthState.HEALTHY:
                return region
        return None

    def _move(self, action: Action, target: str, reason: str, at: float) -> Decision:
        decision = Decision(action, self.active, target, reason, at)
        self.moved(target)
        return decision
