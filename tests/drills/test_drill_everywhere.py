"""The same drill on every provider: a Failover route over two loopback endpoints, the
provider's store, the active-passive controller, measured against the same objectives.

Only ``conftest.Setup`` differs between providers; the drill, its settings, its faults and its
objectives are the same, and the assertions differ only where a ``Setup`` flag says the
provider's emulator cannot behave like the service (moto). Figures are printed (``pytest -s``).
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest

from multiregion.deployment import Objectives
from multiregion.drill.faults import Fault, ForceDown, ProxyFault
from multiregion.drill.runner import Drill, DrillSettings
from multiregion.faultproxy import Blackhole
from multiregion.model import EndpointStatus
from tests.drills.conftest import Setup

RTO_S, RPO_S = 10.0, 1.0
OBJECTIVES = Objectives(rto_s=RTO_S, rpo_s=RPO_S)
SETTINGS = DrillSettings(
    steady_s=0.3, timeout_s=15, confirm_s=1.5, tick_s=0.1, request_timeout_s=0.5
)
"""``confirm_s`` also gives the controller time to act: requests recover as soon as DNS answers
the backup, which a health-checked router can do before the controller has confirmed the
outage, and ``to_region`` is the controller's active region once the confirmation ends. The
client gives up on a request after 0.5 s, as the fakes' time-scaled checks do, not after the
provider's real timeout (up to 10 s) that the check states."""
PROVIDERS = ["local", "azure", "gcp", "aws"]
FAULTS = ["blackhole", "force-down"]
CASES = [
    (provider, fault)
    for provider in PROVIDERS
    for fault in FAULTS
    # the AWS example's spec is blackholed through the CLI, its store too, on moto:
    # tests/drills/test_cloud_example_drill.py
    if (provider, fault) != ("aws", "blackhole")
]


def make_fault(kind: str, setup: Setup) -> Fault:
    if kind == "blackhole":  # the primary's address accepts and never answers: probes time out
        primary = setup.endpoints[0]
        text = f"{setup.primary} blackholed"
        return ProxyFault(primary.control, primary.listener, [Blackhole()], text, lease_s=3)
    return ForceDown(setup.router, setup.route_name, setup.primary)


@pytest.mark.parametrize(("provider", "fault_kind"), CASES)
def test_the_same_drill_recovers_and_fails_back(
    drill_setup: Setup, provider: str, fault_kind: str, tmp_path: Path
) -> None:
    setup = drill_setup
    router, name = setup.router, setup.route_name
    overrides = router.endpoint_status(name)
    assert overrides == {"primary": EndpointStatus.AUTO, "backup": EndpointStatus.AUTO}
    assert setup.store.write_region == setup.primary
    events: list[str] = []
    drill = Drill(
        router,
        name,
        fault=make_fault(fault_kind, setup),
        region=setup.primary,
        health=setup.health,
        store=setup.store,
        objectives=OBJECTIVES,
        # moto keeps no replicas: the primary's never catches up, so failing back is forced
        settings=attrs.evolve(SETTINGS, force_failback=not setup.replicates),
        on_event=lambda at, text: events.append(f"{at:.2f}s {text}"),
    )
    report = drill.run()
    figures = report.to_dict()
    shown = {k: v for k, v in figures.items() if k != "events"}
    print(f"\n{provider} {fault_kind}: {json.dumps(shown, default=str)}\n  " + "\n  ".join(events))

    assert report.outcome == "recovered", events
    assert report.rto_s is not None
    assert report.rto_s <= RTO_S
    assert report.dns_switch_s is not None
    assert report.dns_switch_s <= report.rto_s
    assert figures["rto_met"] is True
    assert report.failback.ok, (report.failback, events)
    if fault_kind == "blackhole":
        # health found the outage and the controller moved the write region
        assert report.to_region == setup.backup, events
        assert report.detection_s is not None
        assert report.promote_s is not None
        assert 0 < report.detection_s <= report.promote_s
        assert figures["rpo_met"] is True
    else:
        # routing moved at once; health stayed good, so the write region did not move
        assert report.detection_s is None
        assert report.promote_s is None
        assert report.to_region is None
        assert report.lost_writes == 0
        assert figures["rpo_met"] is True
    # afterwards everything is as before the drill
    assert router.endpoint_status(name) == overrides
    assert setup.store.write_region == setup.primary
    assert router.resolve(name).endpoints == ("primary",)
    assert list(setup.store.scan("multiregion-drill/")) == []
    assert any("failback complete" in e for e in events)
    svg = report.write_svg(tmp_path / f"drill-{provider}-{fault_kind}.svg").read_text()
    assert svg.startswith("<svg")
    assert f"{setup.primary} health" in svg
    assert "DNS answer" in svg
