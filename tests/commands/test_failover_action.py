"""The serverless failover action takes the CLI's path: switchover, guard rails, fencing."""

from __future__ import annotations

import time
from pathlib import Path

from multiregion.deployment import Deployment
from multiregion.events import DisasterEvent
from multiregion.failover.deployed import failover_action


def _alarm(region: str) -> DisasterEvent:
    return DisasterEvent(
        provider="aws",
        name="orders-primary-down",
        status="fired",
        severity="critical",
        time=time.time(),
        region=region,
        resource=None,
        reason="Threshold Crossed",
        key=f"orders-primary-down/{region}",
        raw={},
    )


def test_an_alarm_about_the_active_region_switches_over(active_passive: Path) -> None:
    with Deployment.from_file(active_passive) as deployment:
        deployment.router.apply(deployment.spec.route)
        deployment.store.put("order/1", {"n": 1})
        act = failover_action(deployment)
        assert act(_alarm("region-b")) is None  # about the standby: nothing moves
        assert deployment.store.write_region == "region-a"
        move = act(_alarm("region-a"))
        assert move is not None
        assert (move.decision.from_region, move.decision.to_region) == ("region-a", "region-b")
        assert move.graceful  # region-a answered: fenced and caught up first
        assert "orders-primary-down" in move.decision.reason
        assert deployment.store.write_region == "region-b"
        assert deployment.store.get("order/1").value == {"n": 1}
