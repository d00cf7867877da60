from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pytest

from multiregion import Endpoint, Failover, HealthCheck, Route, Weighted
from multiregion.cli import build_parser
from multiregion.errors import InvalidInput
from multiregion.planning import ChangeSafety, UnsafePlan, diff_routes


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


# --------------------------------------------------------------------------- change safety


def _spread(n: int) -> Route:
    endpoints = [Endpoint(f"e{i}", f"r{i}", f"192.0.2.{i + 1}") for i in range(n)]
    return route(endpoints=endpoints, policy=Weighted({e.name: 1 for e in endpoints}))


def test_shrinking_a_route_past_the_delete_share_is_unsafe() -> None:
    five, one = _spread(5), _spread(1)
    plan = diff_routes(one.name, five, one)
    with pytest.raises(UnsafePlan, match="delete 4 of the 5 endpoints"):
        ChangeSafety().check(one, plan)
    ChangeSafety().check(one, plan, force=True)
    ChangeSafety(delete_share=0.8).check(one, plan)
    ChangeSafety(min_existing=6).check(one, plan)


def test_updating_most_endpoints_is_unsafe_and_a_new_route_never_is() -> None:
    five = _spread(5)
    moved = Route(
        five.name,
        [attrs.evolve(e, target=f"198.51.100.{i}") for i, e in enumerate(five.endpoints)],
        five.policy,
        ttl=five.ttl,
        health_check=five.health_check,
    )
    with pytest.raises(UnsafePlan, match="update 5 of the 5"):
        ChangeSafety().check(moved, diff_routes(five.name, five, moved))
    ChangeSafety(update_share=1.0).check(moved, diff_routes(five.name, five, moved))
    ChangeSafety().check(five, diff_routes(five.name, None, five))
    grown = _spread(9)
    ChangeSafety().check(grown, diff_routes(five.name, five, grown))


@pytest.mark.parametrize(
    ("settings", "field"),
    [({"update_share": 1.5}, "update_share"), ({"delete_share": -0.1}, "delete_share"),
     ({"min_existing": -1}, "min_existing"), ({"update_share": True}, "update_share")],
)  # fmt: skip
def test_change_safety_settings_are_checked(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        ChangeSafety(**settings)
    assert caught.value.field == field


def test_the_apply_command_takes_force(tmp_path: Path) -> None:
    parser = build_parser()
    spec = tmp_path / "deploy.toml"
    assert parser.parse_args(["apply", "--config", str(spec), "--force"]).force is True
    assert parser.parse_args(["apply", "--config", str(spec)]).force is False
