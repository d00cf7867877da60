"""Drills on the local provider: a region outage measured end to end, failback, abort."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from multiregion import (
    Endpoint,
    EndpointStatus,
    Failover,
    HealthCheck,
    HealthState,
    InvalidInput,
    Route,
    Unsupported,
)
from multiregion.deployment import Objectives
from multiregion.drill.faults import ForceDown, StopEndpoints, StoreOutage, Together
from multiregion.drill.runner import Drill, DrillSettings
from multiregion.drill.timeline import Timeline, render_svg
from multiregion.providers.local.bucket import LocalBucket
from multiregion.providers.local.router import LocalRouter
from multiregion.providers.local.store import LocalStore
from multiregion.testing.endpoints import LoopbackEndpoint, start_endpoints

NAME = "app.drill.test"
REGIONS = ["region-a", "region-b"]
SETTINGS = DrillSettings(steady_s=0.6, timeout_s=8, confirm_s=0.3, tick_s=0.03)


@pytest.fixture
def endpoints() -> Iterator[list[LoopbackEndpoint]]:
    started = start_endpoints(2)
    yield started
    for endpoint in started:
        endpoint.close()


@pytest.fixture
def router(tmp_path: Path, endpoints: list[LoopbackEndpoint]) -> Iterator[LocalRouter]:
    with LocalRouter(tmp_path / "dns") as r:
        r.apply(
            Route(
                name=NAME,
                endpoints=[
                    Endpoint("a", "region-a", endpoints[0].address),
                    Endpoint("b", "region-b", endpoints[1].address),
                ],
                policy=Failover("a", ["b"]),
                ttl=1,
                health_check=HealthCheck(
                    "http", endpoints[0].port, interval_s=0.1, timeout_s=0.1, failure_threshold=3
                ),
            )
        )
        yield r


def dns_health(router: LocalRouter):
    route = router.get(NAME)

    def read() -> dict[str, HealthState]:
        return {route.endpoint(n).region: h.state for n, h in router.health(NAME).items()}

    return read


def outage(store: LocalStore, endpoint: LoopbackEndpoint) -> Together:
    return Together(
        [StopEndpoints("region-a", endpoint.stop, endpoint.start), StoreOutage(store, "region-a")]
    )


@pytest.mark.parametrize(("replication", "loses_writes"), [("async", True), ("sync", False)])
def test_a_region_outage_is_measured_and_failed_back(
    tmp_path: Path,
    router: LocalRouter,
    endpoints: list[LoopbackEndpoint],
    replication: str,
    loses_writes: bool,
) -> None:
    with LocalStore(
        tmp_path / "store",
        ["region-a", "region-b"],
        replication=replication,
        lag_s=0.4,
        witness="witness",
    ) as store:
        events: list[str] = []
        drill = Drill(
            router,
            NAME,
            fault=outage(store, endpoints[0]),
            region="region-a",
            health=dns_health(router),
            store=store,
            objectives=Objectives(rto_s=10, rpo_s=5),
            settings=SETTINGS,
            on_event=lambda at, text: events.append(text),
        )
        report = drill.run()
        assert report.outcome == "recovered", report
        assert report.to_region == "region-b"
        assert report.detection_s is not None
        assert report.dns_switch_s is not None
        assert report.promote_s is not None
        assert report.rto_s is not None
        assert 0 < report.detection_s <= report.promote_s
        assert report.dns_switch_s <= report.rto_s <= 1.5 * report.worst_rto_s
        assert (report.lost_writes > 0) == loses_writes
        if not loses_writes:
            assert report.rpo_s == 0
        assert report.rto_met is True
        assert report.failback.ok, report.failback
        assert store.write_region == "region-a"
        assert router.endpoint_status(NAME) == {"a": EndpointStatus.AUTO, "b": EndpointStatus.AUTO}
        assert any(e.startswith("fault:") for e in events)
        assert any("failback complete" in e for e in events)
        # the drill's own writes are gone again
        assert list(store.scan("multiregion-drill/")) == []
        svg = report.write_svg(tmp_path / "drill.svg").read_text()
        assert svg.startswith("<svg")
        for lane in ("region-a health", "DNS answer", "write region", "overrides", "writes"):
            assert f">{lane}</text>" in svg
        for phase in ("detection", "decision", "DNS switch", "data promotion"):
            assert f">{phase}</text>" in svg
        assert "NOT RECOVERED" not in svg
        data = report.to_dict()
        assert data["passed"] is report.passed
        phases = data["phases"]
        for name in ("detection", "decision", "dns_switch", "promotion", "first_request"):
            assert phases[name]["predicted_s"] > 0, name
            assert phases[name]["measured_s"] > 0, name
        assert phases["first_request"]["measured_s"] == report.rto_s
        assert phases["detection"]["measured_s"] <= phases["promotion"]["measured_s"]
        # a loaded machine slows everything; a wrong model is off by far more than this
        assert 0.3 < phases["first_request"]["ratio"] < 3, phases
        assert 0 < report.error_rate_during_fault <= 1


def test_a_forced_down_region_needs_no_detection(
    tmp_path: Path, router: LocalRouter, endpoints: list[LoopbackEndpoint]
) -> None:
    with LocalStore(tmp_path / "store", REGIONS, replication="sync", witness="witness") as store:
        report = Drill(
            router,
            NAME,
            fault=ForceDown(router, NAME, "region-a"),
            region="region-a",
            health=dns_health(router),
            store=store,
            # recovered and nothing missed: "on-deviation" leaves it failed over
            settings=DrillSettings(
                steady_s=0.3, timeout_s=2, confirm_s=0.2, rollback="on-deviation"
            ),
        ).run()
    # routing moved at once, but nothing told the controller to move the write region
    assert report.dns_switch_s is not None
    assert report.dns_switch_s < 1.5
    assert report.detection_s is None
    assert report.promote_s is None
    assert report.outcome == "recovered"
    assert report.failback.attempted is False
    assert router.endpoint_status(NAME)["a"] is EndpointStatus.AUTO  # the fault was reverted


def test_routing_that_moves_while_writes_never_recover_meets_no_objective(
    tmp_path: Path, router: LocalRouter, endpoints: list[LoopbackEndpoint]
) -> None:
    """Forced out of DNS with its replica failed but its service answering: requests succeed
    elsewhere, writes never do. The report must not say both "not recovered" and "RTO met"."""
    with LocalStore(tmp_path / "store", REGIONS, replication="sync", witness="witness") as store:
        fault = Together([ForceDown(router, NAME, "region-a"), StoreOutage(store, "region-a")])
        report = Drill(
            router,
            NAME,
            fault=fault,
            region="region-a",
            health=dns_health(router),
            store=store,
            objectives=Objectives(rto_s=10, rpo_s=5),
            settings=DrillSettings(
                steady_s=0.2, timeout_s=1, confirm_s=0.1, rollback="on-deviation"
            ),
        ).run()
    assert report.outcome == "not recovered"
    assert report.rto_s is not None  # requests were served by region-b ...
    assert report.rto_met is False  # ... but the drill did not recover
    assert report.passed is False
    assert report.failback.attempted is True  # it deviated: "on-deviation" rolls back
    svg = report.write_svg(tmp_path / "failed.svg").read_text()
    assert "NOT RECOVERED" in svg


def test_a_drill_is_not_started_unless_every_region_is_healthy(
    tmp_path: Path, router: LocalRouter, endpoints: list[LoopbackEndpoint]
) -> None:
    """The steady-state hypothesis first: with the standby down there is nowhere to fail over
    to, so no fault is injected at all."""
    injected: list[bool] = []
    endpoints[1].stop()
    report = Drill(
        router,
        NAME,
        fault=StopEndpoints("region-a", lambda: injected.append(True), lambda: None),
        region="region-a",
        health=dns_health(router),
        settings=DrillSettings(steady_s=0.1, timeout_s=0.5, confirm_s=0.1),
    ).run()
    assert report.outcome == "not steady"
    assert injected == []
    assert report.passed is False
    assert report.failback.attempted is False
    assert any("region-b unhealthy" in m.label for m in report.timeline.events())


def test_markers_at_the_same_moment_never_overlap() -> None:
    timeline = Timeline()
    for text in ("fault: x", "detected", "DNS answers b", "failover to b"):
        timeline.mark("events", 1.0, text)
    timeline.mark("events", 5.0, "recovered")
    svg = render_svg(timeline, "t")
    numbers = re.findall(r'<text x="([\d.]+)" y="([\d.]+)" font-size="10">(\d)</text>', svg)
    assert len(numbers) == 5
    assert len({(x, y) for x, y, _ in numbers}) == 5


def test_an_aborted_drill_leaves_everything_as_it_was(
    tmp_path: Path, router: LocalRouter, endpoints: list[LoopbackEndpoint]
) -> None:
    with LocalStore(tmp_path / "store", REGIONS, lag_s=0.05, witness="witness") as store:
        abort = threading.Event()

        def on_event(at: float, text: str) -> None:
            if text.startswith("failover"):
                abort.set()  # the worst moment: right after the write region moved

        report = Drill(
            router,
            NAME,
            fault=outage(store, endpoints[0]),
            region="region-a",
            health=dns_health(router),
            store=store,
            settings=SETTINGS,
            on_event=on_event,
        ).run(abort)
        assert report.outcome == "aborted"
        assert store.write_region == "region-a"
        assert router.endpoint_status(NAME) == {"a": EndpointStatus.AUTO, "b": EndpointStatus.AUTO}
        assert endpoints[0].listening
        store.put("after/abort", {"ok": True})  # the original write region takes writes again


def test_bad_drills_are_refused(tmp_path: Path, router: LocalRouter) -> None:
    with pytest.raises(InvalidInput) as info:
        Drill(
            router, NAME, fault=ForceDown(router, NAME, "region-a"), region="region-x", health=dict
        )
    assert info.value.field == "region"
    with pytest.raises(InvalidInput):
        ForceDown(router, NAME, "region-x")
    with pytest.raises(InvalidInput):
        DrillSettings(tick_s=0)
    with pytest.raises(Unsupported):
        StoreOutage(LocalBucket(tmp_path / "b"), "region-a")  # type: ignore[arg-type]


PREDICTED = Route(
    name="lease.drill.test",
    endpoints=[Endpoint("a", "region-a", "127.0.0.2"), Endpoint("b", "region-b", "127.0.0.3")],
    policy=Failover("a", ["b"]),
    ttl=1,
    health_check=HealthCheck("http", 8080, interval_s=1, timeout_s=0.5, failure_threshold=2),
)


def test_a_write_lease_delays_the_predicted_promotion(tmp_path: Path) -> None:
    from multiregion.drill.phases import Effects, predict

    route = PREDICTED
    with LocalRouter(tmp_path / "dns", serve=False) as router:
        outage = Effects(health_sees=True, requests_hang=True)
        strict = predict(router, route, outage, 0.05, confirm=2)
        leased = predict(router, route, outage, 0.05, confirm=2, promote_delay_s=1.5)
    assert strict["promotion"] is not None
    assert leased["promotion"] == pytest.approx(strict["promotion"] + 1.5)
    assert leased["first_request"] is not None
    assert strict["first_request"] is not None
    assert leased["first_request"] > strict["first_request"]
    # DNS moves at the earlier of the router's own detection and the controller's move, which
    # the lease delays: later than without it, never later than the router alone
    alone = router.expected_failover_s(route) - route.ttl / 2
    assert strict["dns_switch"] is not None
    assert leased["dns_switch"] is not None
    assert strict["dns_switch"] < leased["dns_switch"] <= alone


def test_predictions_follow_the_clock_the_checks_run_on(tmp_path: Path) -> None:
    """Fakes that run a provider's probes at a fraction of real time (``time_scale``) detect
    and switch that much sooner; the client's cache (the TTL) is real time still."""
    from multiregion.drill.phases import Effects, predict

    outage = Effects(health_sees=True)  # requests reaching the region still succeed
    with LocalRouter(tmp_path / "dns", serve=False) as router:
        # ticks are the drill's own (real) time: none here, so every phase scales
        real = predict(router, PREDICTED, outage, 0, confirm=1)
        fast = predict(router, PREDICTED, outage, 0, confirm=1, time_scale=0.1)
    for phase in ("detection", "dns_switch"):
        assert fast[phase] == pytest.approx(real[phase] * 0.1)  # type: ignore[operator]
    assert fast["client_cache"] == real["client_cache"] == PREDICTED.ttl / 2
    with pytest.raises(InvalidInput, match="time_scale"):
        DrillSettings(time_scale=0)
