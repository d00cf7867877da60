"""Controllers on the local provider: failover promotes and fences, nothing flaps, drains drain."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from multiregion import (
    Endpoint,
    EndpointStatus,
    Failover,
    HealthCheck,
    HealthState,
    InvalidInput,
    PreconditionFailed,
    Route,
    Weighted,
)
from multiregion.failover.controller import (
    ActiveActiveController,
    ActivePassiveController,
    probe_health,
)
from multiregion.providers.local.probe import LocalProbe
from multiregion.providers.local.router import LocalRouter
from multiregion.providers.local.store import LocalStore
from multiregion.testing.endpoints import LoopbackEndpoint, start_endpoints

NAME = "app.controller.test"


@pytest.fixture
def endpoints() -> Iterator[list[LoopbackEndpoint]]:
    started = start_endpoints(2)
    yield started
    for endpoint in started:
        endpoint.close()


@pytest.fixture
def router(tmp_path: Path) -> Iterator[LocalRouter]:
    with LocalRouter(tmp_path / "dns") as r:
        yield r


@pytest.fixture
def probe() -> Iterator[LocalProbe]:
    p = LocalProbe()
    yield p
    p.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    with LocalStore(
        tmp_path / "store", ["region-a", "region-b"], lag_s=0.05, witness="region-w"
    ) as s:
        yield s


def failover_route(endpoints: list[LoopbackEndpoint]) -> Route:
    return Route(
        name=NAME,
        endpoints=[
            Endpoint("a", "region-a", endpoints[0].address),
            Endpoint("b", "region-b", endpoints[1].address),
        ],
        policy=Failover("a", ["b"]),
        ttl=1,
        health_check=HealthCheck(
            "http", endpoints[0].port, interval_s=0.1, timeout_s=0.1, failure_threshold=2
        ),
    )


def until(condition: Callable[[], object], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_failover_promotes_the_standby_and_fences_the_old_writer(
    endpoints: list[LoopbackEndpoint], router: LocalRouter, probe: LocalProbe, store: LocalStore
) -> None:
    route = failover_route(endpoints)
    router.apply(route)
    health = probe_health(probe, route)
    controller = ActivePassiveController(router, NAME, health=health, store=store, confirm=2)
    old_token = store.fence()
    store.put("order/1", {"n": 1}, fence=old_token)
    until(lambda: all(s is HealthState.HEALTHY for s in health().values()))
    assert controller.step() is None

    endpoints[0].stop()
    moves: list[object] = []
    until(lambda: moves.append(controller.step()) or any(moves))
    move = next(m for m in moves if m is not None)
    assert move.decision.action == "failover"
    assert (move.decision.from_region, move.decision.to_region) == ("region-a", "region-b")
    assert "unhealthy" in move.decision.reason
    assert store.write_region == "region-b"
    assert move.fence is not None
    assert move.fence.epoch > old_token.epoch
    # no second writer: the old primary's token is refused
    with pytest.raises(PreconditionFailed):
        store.put("order/2", {"n": 2}, fence=old_token)
    store.put("order/2", {"n": 2}, fence=move.fence)
    assert router.endpoint_status(NAME) == {"a": EndpointStatus.DOWN, "b": EndpointStatus.AUTO}
    assert router.resolve(NAME).endpoints == ("b",)

    # the primary comes back: failback stays manual
    endpoints[0].start()
    time.sleep(0.6)
    assert [controller.step() for _ in range(5)] == [None] * 5
    back = controller.failback()
    assert back.decision.action == "failback"
    assert store.write_region == "region-a"
    assert router.endpoint_status(NAME) == {"a": EndpointStatus.AUTO, "b": EndpointStatus.AUTO}
    until(lambda: router.resolve(NAME).endpoints == ("a",))


def test_a_region_failing_every_other_probe_moves_nothing(
    endpoints: list[LoopbackEndpoint], router: LocalRouter, store: LocalStore
) -> None:
    flip = itertools.cycle([200, 503])
    endpoints[0].respond = lambda method, path: (next(flip), b"")
    route = failover_route(endpoints)
    router.apply(route)

    def dns_health() -> dict[str, HealthState]:
        # One prober only (the DNS data plane's), so the endpoint alternates for it exactly.
        verdicts = router.health(NAME)
        return {route.endpoint(name).region: h.state for name, h in verdicts.items()}

    controller = ActivePassiveController(router, NAME, health=dns_health, store=store, confirm=2)
    answers = set()
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        assert controller.step() is None
        answers.update(router.resolve(NAME).endpoints)
        time.sleep(0.05)
    assert endpoints[0].hits >= 10  # it really was probed, many times
    assert answers == {"a"}
    assert store.write_region == "region-a"
    assert controller.moves == []


def test_manual_failover_needs_nothing_from_the_region_it_leaves(
    endpoints: list[LoopbackEndpoint], router: LocalRouter, probe: LocalProbe, store: LocalStore
) -> None:
    route = failover_route(endpoints)
    router.apply(route)
    controller = ActivePassiveController(
        router, NAME, health=probe_health(probe, route), store=store
    )
    endpoints[0].stop()
    store.fail_region("region-a")  # the whole region is gone, its replica too
    move = controller.failover("region-b", "drill")
    assert move.decision.reason == "drill"
    assert store.write_region == "region-b"
    with pytest.raises(InvalidInput):
        controller.failover("region-b")
    with pytest.raises(InvalidInput):
        controller.failover("region-z")


def test_active_active_drain_and_restore(
    endpoints: list[LoopbackEndpoint], router: LocalRouter
) -> None:
    route = Route(
        name=NAME,
        endpoints=[
            Endpoint("a", "region-a", endpoints[0].address),
            Endpoint("b", "region-b", endpoints[1].address),
        ],
        policy=Weighted({"a": 1, "b": 1}),
        ttl=1,
    )
    router.apply(route)
    controller = ActiveActiveController(router, NAME)
    controller.drain("region-a")
    assert controller.weights() == {"a": 0.0, "b": 1.0}
    assert {router.resolve(NAME).endpoints for _ in range(30)} == {("b",)}
    with pytest.raises(InvalidInput):
        controller.drain("region-b")  # draining the last region would leave nothing
    controller.restore("region-a", 3)
    assert controller.weights() == {"a": 3.0, "b": 1.0}
    seen = {router.resolve(NAME).endpoints for _ in range(60)}
    assert seen == {("a",), ("b",)}
    with pytest.raises(InvalidInput):
        ActivePassiveController(router, NAME, health=dict)


# ------------------------------------------------------------------ switchover and guard rails


def _fixed(states: dict[str, HealthState]) -> Callable[[], dict[str, HealthState]]:
    return lambda: states


HEALTHY = {"region-a": HealthState.HEALTHY, "region-b": HealthState.HEALTHY}


def test_a_planned_failover_with_a_healthy_primary_loses_nothing(
    endpoints: list[LoopbackEndpoint], router: LocalRouter, tmp_path: Path
) -> None:
    router.apply(failover_route(endpoints))
    with LocalStore(
        tmp_path / "slow", ["region-a", "region-b"], lag_s=0.5, witness="region-w"
    ) as store:
        controller = ActivePassiveController(router, NAME, health=_fixed(HEALTHY), store=store)
        written = [store.put(f"order/{n:03d}", {"n": n}) for n in range(120)]
        move = controller.failover("region-b")
        assert move.graceful
        held = {item.key: item.version for item in store.scan("order/", region="region-b")}
        assert held == {item.key: item.version for item in written}
        assert store.divergence() == []


def test_a_failover_refuses_an_unhealthy_target_unless_forced(
    endpoints: list[LoopbackEndpoint], router: LocalRouter, store: LocalStore
) -> None:
    router.apply(failover_route(endpoints))
    sick = {"region-a": HealthState.HEALTHY, "region-b": HealthState.UNHEALTHY}
    controller = ActivePassiveController(router, NAME, health=_fixed(sick), store=store)
    with pytest.raises(PreconditionFailed, match=r"report region-b unhealthy.*--force"):
        controller.failover("region-b")
    assert store.write_region == "region-a"
    assert router.endpoint_status(NAME) == {"a": EndpointStatus.AUTO, "b": EndpointStatus.AUTO}
    move = controller.failover("region-b", force=True)
    assert store.write_region == "region-b"
    assert len(move.overridden) == 1


def test_a_failover_refuses_a_target_lagging_past_the_rpo_objective(
    endpoints: list[LoopbackEndpoint], router: LocalRouter, tmp_path: Path
) -> None:
    router.apply(failover_route(endpoints))
    with LocalStore(
        tmp_path / "lagging", ["region-a", "region-b"], replicate=False, witness="region-w"
    ) as store:
        controller = ActivePassiveController(
            router, NAME, health=_fixed(HEALTHY), store=store, rpo_s=0.05
        )
        store.put("k", {"n": 1})
        time.sleep(0.1)
        with pytest.raises(PreconditionFailed, match="behind, more than the RPO objective"):
            controller.failover("region-b")
        assert controller.failover("region-b", force=True).overridden


def test_a_failover_with_the_primary_gone_says_what_it_left_behind(
    endpoints: list[LoopbackEndpoint], router: LocalRouter, tmp_path: Path
) -> None:
    router.apply(failover_route(endpoints))
    with LocalStore(
        tmp_path / "gone", ["region-a", "region-b"], replicate=False, witness="region-w"
    ) as store:
        controller = ActivePassiveController(router, NAME, health=_fixed(HEALTHY), store=store)
        store.put("unreplicated", {"n": 1})
        store.fail_region("region-a")
        move = controller.failover("region-b")
        assert not move.graceful
        assert "divergence log" in move.notes[0]
        store.heal_region("region-a")
        store.settle()
        assert [w.key for w in store.divergence()] == ["unreplicated"]
