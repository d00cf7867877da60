"""The active-passive controller of a deployment, as every entry point builds it.

``multiregion failover`` / ``failback``, the serverless ``failover_action`` and runbooks take
this one path, so a move from an alarm has the same switchover, guard rails and fencing as one
typed by an operator. Each invocation is a new process that remembers nothing: the active
region is the store's write region (or, without a store, the first region of the failover
order whose endpoints are not pinned down).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from multiregion.deployment import Deployment
from multiregion.events import DisasterEvent
from multiregion.failover.controller import (
    ActivePassiveController,
    HealthSource,
    Move,
    probe_health,
)
from multiregion.model import EndpointStatus

logger = logging.getLogger("multiregion.failover")


def controller_for(deployment: Deployment, health: HealthSource) -> ActivePassiveController:
    store = deployment.store if deployment.spec.settings["store"] else None
    controller = ActivePassiveController(
        deployment.router,
        deployment.spec.route.name,
        health=health,
        store=store,
        rpo_s=deployment.spec.objectives.rpo_s,
    )
    if store is None:
        controller.policy.moved(_unpinned_region(controller))
    return controller


def _unpinned_region(controller: ActivePassiveController) -> str:
    """Without a store: the first region of the failover order with an endpoint not pinned down."""
    route = controller.route
    overrides = controller.router.endpoint_status(route.name)
    for region in controller.policy.order:
        names = [e.name for e in route.endpoints if e.region == region]
        if any(overrides.get(n) is not EndpointStatus.DOWN for n in names):
            return region
    return controller.policy.order[0]


def failover_action(
    deployment: Deployment, *, force: bool = False
) -> Callable[[DisasterEvent], Move | None]:
    """A serverless action: an alarm about the active region moves traffic and writes to the
    next region of the failover order, through the controller's guard rails (a target its
    checks call unhealthy, or lagging past the RPO objective, is refused unless ``force``).
    An alarm about another region moves nothing."""

    def fail_over(event: DisasterEvent) -> Move | None:
        route = deployment.router.get(deployment.spec.route.name)
        controller = controller_for(deployment, probe_health(deployment.probe, route))
        active = controller.active
        if event.region is not None and event.region != active:
            logger.warning(
                "alarm %s is about %s, not the active %s", event.name, event.region, active
            )
            return None
        target = next(region for region in controller.policy.order if region != active)
        return controller.failover(target, f"alarm {event.name}: {event.reason}", force=force)

    return fail_over
