"""The TrafficRouter contract: every router provider's behaviour, stated once.

A provider runs it by subclassing ``RouterContract`` in a test module and defining a
``router_harness`` fixture that returns a ``RouterHarness``. Policies a provider lacks are read
from its capability flags: the test then asserts ``Unsupported`` instead of skipping. Tests
that need the provider to probe endpoints skip, saying so, when ``health_driven`` is False.

``resolve`` is the answer DNS would give now; these tests hold every provider to the same
answer rules (``multiregion.selection``): forced DOWN never answers, forced UP always does,
unhealthy endpoints leave the answer unless all are unhealthy (then it fails open), and every
endpoint forced DOWN leaves the answer empty.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pytest

from multiregion.errors import InvalidInput, NotFound, Unsupported
from multiregion.interfaces import TrafficRouter
from multiregion.model import (
    Answer,
    Endpoint,
    EndpointStatus,
    Failover,
    Geo,
    HealthCheck,
    Latency,
    Policy,
    Route,
    Weighted,
)
from multiregion.planning import UnsafePlan
from multiregion.testing.contract.harness import RouterHarness
from multiregion.testing.contract.hooks import hooks_blocked

UP, DOWN, AUTO = EndpointStatus.UP, EndpointStatus.DOWN, EndpointStatus.AUTO
BAD_NAMES: list[Any] = ["", "nodots", "bad name.example.test", "-x.example.test", 5, None]
HOOKS = (
    "_plan",
    "_apply",
    "_get",
    "_list",
    "_delete",
    "_set_endpoint_status",
    "_endpoint_status",
    "_resolve",
    "_expected_failover_s",
    "_worst_failover_s",
)
"""The adapter's side of ``TrafficRouter``: every service call happens in one of these."""


def _name(harness: RouterHarness, label: str) -> str:
    return f"{label}.{harness.zone}"


def _endpoints(harness: RouterHarness, n: int) -> tuple[Sequence[Any], tuple[Endpoint, ...]]:
    """``n`` live loopback servers and the route endpoints aimed at them (primary, backup...)."""
    servers = harness.endpoints(n)
    labels = ("primary", "backup", "third")
    endpoints = tuple(
        Endpoint(labels[i], harness.regions[i], server.address) for i, server in enumerate(servers)
    )
    return servers, endpoints


def _failover(
    harness: RouterHarness,
    label: str,
    endpoints: Sequence[Endpoint],
    *,
    check: HealthCheck | None,
    ttl: int = 30,
) -> Route:
    names = [e.name for e in endpoints]
    return Route(
        _name(harness, label),
        endpoints,
        Failover(names[0], names[1:]),
        ttl=ttl,
        health_check=check,
    )


def _wait_for(
    router: TrafficRouter, name: str, wanted: Callable[[Answer], bool], timeout_s: float
) -> Answer:
    """Resolve until the answer is the one wanted or time runs out; returns the last answer."""
    deadline = time.monotonic() + timeout_s
    answer = router.resolve(name)
    while not wanted(answer) and time.monotonic() < deadline:
        time.sleep(0.05)
        answer = router.resolve(name)
    return answer


def _answers(name: str) -> Callable[[Answer], bool]:
    return lambda answer: answer.endpoints == (name,)


def _beyond(router: TrafficRouter, route: Route) -> list[tuple[str, Route]]:
    """Variants of ``route`` past the limits ``router`` declares, and the field each breaks."""
    capabilities, names = router.capabilities, [e.name for e in route.endpoints]
    found: list[tuple[str, Route]] = []
    if capabilities.max_endpoints is not None:
        many = [
            Endpoint(f"e{i}", "region-a", f"192.0.2.{i % 250}")
            for i in range(capabilities.max_endpoints + 1)
        ]
        order = Failover("e0", [e.name for e in many[1:]])
        found.append(("endpoints", Route(route.name, many, order)))
    if Weighted not in capabilities.policies:
        return found
    heavy = [capabilities.max_weight + 1] if capabilities.max_weight is not None else []
    for weight in heavy + ([1.5] if capabilities.whole_weights else []):
        policy = Weighted({names[0]: weight, names[1]: 1})
        found.append((f"policy.weights[{names[0]}]", attrs.evolve(route, policy=policy)))
    return found


def _require_probing(harness: RouterHarness) -> None:
    if not harness.health_driven:
        pytest.skip("this backend never probes endpoints, so health cannot change its answers")


class RouterContract:
    """Subclass it and define the ``router_harness`` fixture."""

    geo_location = "DE"
    latency_regions: tuple[str, str] = ("region-a", "region-b")
    """Regions for the latency route's endpoints; a provider whose latency routing needs its
    own region names (Route 53: AWS regions) sets them here."""
    """A location code the provider accepts in ``Geo`` policies; a subclass may change it."""

    # ------------------------------------------------------------------ control plane

    def test_apply_then_get_round_trips(self, router_harness: RouterHarness) -> None:
        servers, endpoints = _endpoints(router_harness, 2)
        route = _failover(
            router_harness, "roundtrip", endpoints, check=router_harness.check(servers[0].port)
        )
        router_harness.router.apply(route)
        assert router_harness.router.get(route.name) == route

    def test_plan_lists_creates_then_nothing_once_applied(
        self, router_harness: RouterHarness
    ) -> None:
        router = router_harness.router
        servers, endpoints = _endpoints(router_harness, 2)
        route = _failover(
            router_harness, "plan", endpoints, check=router_harness.check(servers[0].port)
        )
        plan = router.plan(route)
        assert plan.name == route.name
        assert {c.action for c in plan.changes} == {"create"}
        subjects = {c.subject for c in plan.changes}
        assert {"route", "policy", "endpoint primary", "endpoint backup", "health_check"} <= (
            subjects
        )
        with pytest.raises(NotFound):
            router.get(route.name)  # planning changed nothing

        applied = router.apply(route)
        assert applied.changes == plan.changes
        assert not router.plan(route)
        with hooks_blocked(router, ["_apply"]):  # an empty plan changes nothing
            assert not router.apply(route)
        assert router.get(route.name) == route

    def test_changes_show_as_updates_creates_and_deletes(
        self, router_harness: RouterHarness
    ) -> None:
        router = router_harness.router
        _servers, (primary, backup, third) = _endpoints(router_harness, 3)
        route = _failover(router_harness, "changes", [primary, backup], check=None, ttl=30)
        router.apply(route)

        changed = _failover(router_harness, "changes", [primary, third], check=None, ttl=60)
        plan = router.plan(changed)
        found = {(c.action, c.subject) for c in plan.changes}
        assert found == {
            ("update", "ttl"),
            ("update", "policy"),
            ("create", "endpoint third"),
            ("delete", "endpoint backup"),
        }
        assert router.apply(changed).changes == plan.changes
        assert router.get(changed.name) == changed
        assert not router.plan(changed)

    def test_weight_changes_are_policy_updates(self, router_harness: RouterHarness) -> None:
        router = router_harness.router
        _servers, endpoints = _endpoints(router_harness, 2)
        name = _name(router_harness, "weights")
        router.apply(Route(name, endpoints, Weighted({"primary": 1, "backup": 1})))
        reweighted = Route(name, endpoints, Weighted({"primary": 3, "backup": 1}))
        plan = router.apply(reweighted)
        assert [(c.action, c.subject) for c in plan.changes] == [("update", "policy")]
        assert router.get(name) == reweighted

    def test_delete_removes_the_route(self, router_harness: RouterHarness) -> None:
        router = router_harness.router
        _servers, endpoints = _endpoints(router_harness, 2)
        route = _failover(router_harness, "gone", endpoints, check=None)
        router.apply(route)
        router.delete(route.name)
        assert route.name not in router.list()
        with pytest.raises(NotFound):
            router.get(route.name)
        with pytest.raises(NotFound):
            router.delete(route.name)
        with pytest.raises(NotFound):
            router.resolve(route.name)
        with pytest.raises(NotFound):
            router.set_endpoint_status(route.name, "primary", DOWN)
        assert router.plan(route).changes[0].action == "create"

    def test_list_names_every_route_in_order(self, router_harness: RouterHarness) -> None:
        router = router_harness.router
        _servers, endpoints = _endpoints(router_harness, 2)
        mine = [_name(router_harness, label) for label in ("zeta", "alpha", "mid")]
        for name in mine:
            router.apply(Route(name, endpoints, Failover("primary", ["backup"])))
        listed = router.list()
        assert listed == sorted(listed)
        assert [n for n in listed if n in mine] == sorted(mine)

    def test_an_unsafe_plan_is_refused_before_any_change_unless_forced(
        self, router_harness: RouterHarness
    ) -> None:
        """octoDNS-style change safety: shrinking five endpoints to one needs ``force``."""
        router = router_harness.router
        servers = router_harness.endpoints(5)
        regions = router_harness.regions
        five = [Endpoint(f"e{i}", regions[i % 3], s.address) for i, s in enumerate(servers)]
        route = Route(_name(router_harness, "shrink"), five, Weighted({e.name: 1 for e in five}))
        router.apply(route)
        one = Route(route.name, five[:1], Weighted({"e0": 1}))
        with hooks_blocked(router, ["_apply"]), pytest.raises(UnsafePlan):
            router.apply(one)  # refused before the adapter changes a thing
        assert router.get(route.name) == route
        assert router.apply(one, force=True)
        assert router.get(route.name) == one

    @pytest.mark.parametrize("kind", ["failover", "weighted", "latency", "geo"])
    def test_policies_outside_the_capabilities_are_refused(
        self, router_harness: RouterHarness, kind: str
    ) -> None:
        router = router_harness.router
        _servers, endpoints = _endpoints(router_harness, 2)
        policies: dict[str, Policy] = {
            "failover": Failover("primary", ["backup"]),
            "weighted": Weighted({"primary": 1, "backup": 1}),
            "latency": Latency(),
            "geo": Geo({self.geo_location: "backup"}, default="primary"),
        }
        if kind == "latency":
            endpoints = tuple(
                attrs.evolve(e, region=r)
                for e, r in zip(endpoints, self.latency_regions, strict=True)
            )
        route = Route(_name(router_harness, kind), endpoints, policies[kind])
        if type(route.policy) in router.capabilities.policies:
            assert router.supports(route.policy)
            assert {c.action for c in router.plan(route).changes} == {"create"}
            router.apply(route)
            assert router.get(route.name) == route
            return
        assert not router.supports(route.policy)
        with pytest.raises(Unsupported):
            router.plan(route)
        with pytest.raises(Unsupported):
            router.apply(route)
        with pytest.raises(NotFound):
            router.get(route.name)

    def test_host_name_targets_answer_cname_or_are_refused(
        self, router_harness: RouterHarness
    ) -> None:
        router = router_harness.router
        endpoints = [
            Endpoint("primary", "region-a", "primary.origin.test"),
            Endpoint("backup", "region-b", "backup.origin.test"),
        ]
        route = _failover(router_harness, "cname", endpoints, check=None, ttl=45)
        if not router.capabilities.cname_targets:
            with pytest.raises(Unsupported):
                router.apply(route)
            return
        router.apply(route)
        answer = router.resolve(route.name)
        assert answer.record_type == "CNAME"
        assert answer.records == ("primary.origin.test",)
        assert answer.endpoints == ("primary",)
        assert answer.ttl == 45

    def test_bad_input_is_refused_before_the_adapter_is_called(
        self, router_harness: RouterHarness
    ) -> None:
        """Every provider refuses bad arguments the same way: ``InvalidInput`` naming the
        field, raised by the interface before any hook, so before any service call."""
        router: Any = router_harness.router  # Any: the arguments are wrong on purpose
        regions = router_harness.regions
        endpoints = [
            Endpoint("primary", regions[0], "192.0.2.10"),
            Endpoint("backup", regions[1], "192.0.2.11"),
        ]
        route = Route(_name(router_harness, "bad"), endpoints, Failover("primary", ["backup"]))
        name = route.name
        calls: list[tuple[str, Callable[[], object]]] = [
            ("route", lambda: router.plan(name)),
            ("route", lambda: router.apply({"name": name})),
            ("force", lambda: router.apply(route, force="no")),
            ("endpoint", lambda: router.set_endpoint_status(name, 5, DOWN)),
            ("endpoint", lambda: router.set_endpoint_status(name, "no such name", DOWN)),
            ("status", lambda: router.set_endpoint_status(name, "primary", "down")),
            ("client_region", lambda: router.resolve(name, client_region="Not A Region")),
            ("client_region", lambda: router.resolve(name, client_region=5)),
            ("route", lambda: router.expected_failover_s(name)),
            ("route", lambda: router.worst_failover_s(None)),
        ]
        for bad in BAD_NAMES:
            calls += [
                ("name", functools.partial(router.get, bad)),
                ("name", functools.partial(router.delete, bad)),
                ("name", functools.partial(router.resolve, bad)),
                ("name", functools.partial(router.endpoint_status, bad)),
                ("name", functools.partial(router.set_endpoint_status, bad, "primary", DOWN)),
            ]
        calls += [(f, functools.partial(router.apply, r)) for f, r in _beyond(router, route)]
        for field, call in calls:
            with hooks_blocked(router, HOOKS), pytest.raises(InvalidInput) as excinfo:
                call()
            assert excinfo.value.field == field, (field, excinfo.value)

    def test_wrong_arguments_are_refused_before_any_change(
        self, router_harness: RouterHarness
    ) -> None:
        router = router_harness.router
        _servers, endpoints = _endpoints(router_harness, 2)
        route = _failover(router_harness, "strict", endpoints, check=None)
        router.apply(route)
        with pytest.raises(InvalidInput):
            router.apply("strict.example.test")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            router.plan({"name": route.name})  # type: ignore[arg-type]
        with pytest.raises(InvalidInput) as excinfo:
            router.set_endpoint_status(route.name, "ghost", DOWN)
        assert excinfo.value.field == "endpoint"
        with pytest.raises(InvalidInput):
            router.set_endpoint_status(route.name, "primary", "down")  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            router.resolve(route.name, client_region="Not A Region")
        assert router.endpoint_status(route.name) == {"primary": AUTO, "backup": AUTO}
        assert router.get(route.name) == route
        assert router.resolve(route.name).endpoints == ("primary",)

    def test_expected_failover_covers_detection_and_half_the_ttl(
        self, router_harness: RouterHarness
    ) -> None:
        router = router_harness.router
        servers, endpoints = _endpoints(router_harness, 2)
        check = router_harness.check(servers[0].port)
        checked = _failover(router_harness, "eta", endpoints, check=check, ttl=30)
        unchecked = _failover(router_harness, "eta", endpoints, check=None, ttl=30)
        longer = _failover(router_harness, "eta", endpoints, check=check, ttl=300)
        assert router.expected_failover_s(unchecked) >= 15
        assert router.expected_failover_s(checked) >= 15 + check.interval_s / 2
        assert router.expected_failover_s(longer) - router.expected_failover_s(checked) >= 135
        with pytest.raises(InvalidInput):
            router.expected_failover_s("eta")  # type: ignore[arg-type]
        for route in (checked, unchecked, longer):
            # the worst case is never better than the mean, and waits out the whole TTL
            assert router.worst_failover_s(route) >= router.expected_failover_s(route)
            assert router.worst_failover_s(route) >= route.ttl

    # ------------------------------------------------------------------ answers

    def test_failover_answers_the_primary_with_the_ttl(self, router_harness: RouterHarness) -> None:
        servers, endpoints = _endpoints(router_harness, 2)
        route = _failover(
            router_harness, "answer", endpoints, check=router_harness.check(servers[0].port)
        )
        router_harness.router.apply(route)
        answer = router_harness.router.resolve(route.name)
        assert answer.name == route.name
        assert answer.record_type == "A"
        assert answer.records == (servers[0].address,)
        assert answer.endpoints == ("primary",)
        assert answer.ttl == 30

    def test_answers_follow_an_applied_change(self, router_harness: RouterHarness) -> None:
        router = router_harness.router
        _servers, (primary, backup, third) = _endpoints(router_harness, 3)
        route = _failover(router_harness, "moving", [primary, backup], check=None)
        router.apply(route)
        assert router.resolve(route.name).endpoints == ("primary",)
        moved = _failover(router_harness, "moving", [third, primary, backup], check=None, ttl=10)
        router.apply(moved)
        answer = router.resolve(route.name)
        assert (answer.endpoints, answer.records, answer.ttl) == (
            ("third",),
            (third.target,),
            10,
        )

    def test_down_override_moves_traffic_and_auto_restores_it(
        self, router_harness: RouterHarness
    ) -> None:
        router = router_harness.router
        servers, endpoints = _endpoints(router_harness, 2)
        route = _failover(
            router_harness, "override", endpoints, check=router_harness.check(servers[0].port)
        )
        router.apply(route)
        router.set_endpoint_status(route.name, "primary", DOWN)
        assert router.endpoint_status(route.name) == {"primary": DOWN, "backup": AUTO}
        answer = router.resolve(route.name)
        assert answer.endpoints == ("backup",)
        assert answer.records == (servers[1].address,)
        router.set_endpoint_status(route.name, "primary", AUTO)
        assert router.endpoint_status(route.name) == {"primary": AUTO, "backup": AUTO}
        assert router.resolve(route.name).endpoints == ("primary",)

    def test_overrides_survive_an_update_of_the_route(self, router_harness: RouterHarness) -> None:
        router = router_harness.router
        _servers, endpoints = _endpoints(router_harness, 2)
        route = _failover(router_harness, "sticky", endpoints, check=None, ttl=30)
        router.apply(route)
        router.set_endpoint_status(route.name, "primary", DOWN)
        router.apply(_failover(router_harness, "sticky", endpoints, check=None, ttl=20))
        assert router.endpoint_status(route.name)["primary"] is DOWN
        assert router.resolve(route.name).endpoints == ("backup",)

    def test_every_endpoint_forced_down(self, router_harness: RouterHarness) -> None:
        router = router_harness.router
        _servers, endpoints = _endpoints(router_harness, 2)
        route = _failover(router_harness, "empty", endpoints, check=None)
        router.apply(route)
        router.set_endpoint_status(route.name, "primary", DOWN)
        router.set_endpoint_status(route.name, "backup", DOWN)
        answer = router.resolve(route.name)
        if router.capabilities.answers_when_all_down:
            assert answer.endpoints == ("primary",)
        else:
            assert (answer.records, answer.endpoints) == ((), ())
        router.set_endpoint_status(route.name, "backup", AUTO)
        assert router.resolve(route.name).endpoints == ("backup",)

    def test_weighted_answers_by_weight(self, router_harness: RouterHarness) -> None:
        router = router_harness.router
        servers, endpoints = _endpoints(router_harness, 3)
        name = _name(router_harness, "weighted")
        router.apply(
            Route(name, endpoints, Weighted({"primary": 3, "backup": 1, "third": 0}), ttl=5)
        )
        answers = [router.resolve(name) for _ in range(200)]
        assert all(len(a.endpoints) == 1 and a.ttl == 5 for a in answers)
        counts = Counter(a.endpoints[0] for a in answers)
        assert counts["third"] == 0
        # expected 150 of 200; the bounds are more than four standard deviations away
        assert 120 <= counts["primary"] <= 180, counts
        assert counts["backup"] >= 20, counts
        by_address = {s.address: e.name for s, e in zip(servers, endpoints, strict=True)}
        assert all(by_address[a.records[0]] == a.endpoints[0] for a in answers)

        router.set_endpoint_status(name, "primary", DOWN)
        rest = Counter(router.resolve(name).endpoints[0] for _ in range(40))
        assert rest == Counter({"backup": 40})

    # ------------------------------------------------------------------ health

    def test_health_driven_failover_and_recovery(self, router_harness: RouterHarness) -> None:
        _require_probing(router_harness)
        router, wait_s = router_harness.router, router_harness.wait_s
        servers, endpoints = _endpoints(router_harness, 2)
        route = _failover(
            router_harness, "health", endpoints, check=router_harness.check(servers[0].port)
        )
        router.apply(route)
        assert _wait_for(router, route.name, _answers("primary"), wait_s).endpoints == ("primary",)
        servers[0].stop()
        started = time.monotonic()
        answer = _wait_for(router, route.name, _answers("backup"), wait_s)
        assert answer.endpoints == ("backup",), f"no failover within {wait_s}s"
        assert answer.records == (servers[1].address,)
        assert time.monotonic() - started <= wait_s
        servers[0].start()
        answer = _wait_for(router, route.name, _answers("primary"), wait_s)
        assert answer.endpoints == ("primary",), f"no recovery within {wait_s}s"

    def test_up_override_keeps_an_unhealthy_endpoint(self, router_harness: RouterHarness) -> None:
        _require_probing(router_harness)
        router, wait_s = router_harness.router, router_harness.wait_s
        servers, endpoints = _endpoints(router_harness, 2)
        route = _failover(
            router_harness, "forced", endpoints, check=router_harness.check(servers[0].port)
        )
        router.apply(route)
        servers[0].stop()
        assert _wait_for(router, route.name, _answers("backup"), wait_s).endpoints == ("backup",)
        router.set_endpoint_status(route.name, "primary", UP)
        assert router.resolve(route.name).endpoints == ("primary",)
        router.set_endpoint_status(route.name, "primary", AUTO)
        assert router.resolve(route.name).endpoints == ("backup",)

    def test_fails_open_when_every_endpoint_is_unhealthy(
        self, router_harness: RouterHarness
    ) -> None:
        _require_probing(router_harness)
        router, wait_s = router_harness.router, router_harness.wait_s
        servers, endpoints = _endpoints(router_harness, 2)
        route = _failover(
            router_harness, "open", endpoints, check=router_harness.check(servers[0].port)
        )
        router.apply(route)
        servers[0].stop()
        assert _wait_for(router, route.name, _answers("backup"), wait_s).endpoints == ("backup",)
        servers[1].stop()
        # once the backup is seen down too, every endpoint is unhealthy: answer as if all were up
        answer = _wait_for(router, route.name, _answers("primary"), wait_s)
        assert answer.endpoints == ("primary",), "did not fail open"
        assert answer.records == (servers[0].address,)
