from __future__ import annotations

from multiregion import Endpoint, Failover, HealthCheck, Route, Weighted
from multiregion.planning import diff_routes


def route(**changes: object) -> Route:
    settings: dict[str, object] = {
        "name": "app.example.com",
        "endpoints": [Endpoint("a", "r1", "192.0.2.1"), Endpoint("b", "r2", "192.0.2.2")],
        "policy": Failover("a", ["b"]),
        "ttl": 60,
        "health_check": HealthCheck("http", 80, interval_s=10),
    }
    settings.update(changes)
    return Route(**settings)  # type: ignore[arg-type]


def test_create_lists_every_part() -> None:
    plan = diff_routes("app.example.com", None, route())
    subjects = [(c.action, c.subject) for c in plan.changes]
    assert subjects == [
        ("create", "route"),
        ("create", "policy"),
        ("create", "endpoint a"),
        ("create", "endpoint b"),
        ("create", "health_check"),
    ]
    assert "failover a > b" in str(plan)


def test_same_route_is_an_empty_plan() -> None:
    plan = diff_routes("app.example.com", route(), route())
    assert not plan
    assert str(plan) == "app.example.com: no changes"


def test_updates_name_what_changed() -> None:
    desired = route(
        ttl=30,
        endpoints=[Endpoint("a", "r1", "192.0.2.9"), Endpoint("c", "r3", "192.0.2.3")],
        policy=Weighted({"a": 1, "c": 2}),
        health_check=None,
    )
    plan = diff_routes("app.example.com", route(), desired)
    found = {(c.action, c.subject): c for c in plan.changes}
    assert found[("update", "ttl")].after == "30"
    assert found[("update", "policy")].after == "weighted a=1, c=2"
    assert found[("update", "endpoint a")].after == "192.0.2.9 (r1)"
    assert ("delete", "endpoint b") in found
    assert ("create", "endpoint c") in found
    assert ("delete", "health_check") in found
    assert len(plan.changes) == 6


def test_delete() -> None:
    plan = diff_routes("app.example.com", route(), None)
    assert [(c.action, c.subject) for c in plan.changes] == [("delete", "route")]
