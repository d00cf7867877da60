from __future__ import annotations

import pytest

from multiregion import HealthState, InvalidInput
from multiregion.failover.decision import ActivePassivePolicy

UP, DOWN = HealthState.HEALTHY, HealthState.UNHEALTHY


def feed(policy: ActivePassivePolicy, rounds: list[dict[str, HealthState]]) -> list[str]:
    moves = []
    for at, health in enumerate(rounds):
        decision = policy.observe(health, float(at))
        if decision is not None:
            moves.append(f"{decision.action} {decision.from_region}->{decision.to_region} @{at}")
    return moves


def test_fails_over_after_confirmation_to_the_first_healthy_region() -> None:
    policy = ActivePassivePolicy(["a", "b", "c"], confirm=3)
    rounds = [{"a": DOWN, "b": DOWN, "c": UP}] * 3
    assert feed(policy, rounds) == ["failover a->c @2"]
    assert policy.active == "c"


def test_a_region_failing_every_other_round_never_moves_anything() -> None:
    policy = ActivePassivePolicy(["a", "b"], confirm=2)
    flapping = [{"a": DOWN if i % 2 else UP, "b": UP} for i in range(50)]
    assert feed(policy, flapping) == []
    assert policy.active == "a"


def test_no_failover_when_no_other_region_is_healthy() -> None:
    policy = ActivePassivePolicy(["a", "b"], confirm=1)
    assert feed(policy, [{"a": DOWN, "b": DOWN}] * 5) == []
    assert feed(policy, [{"a": DOWN, "b": UP}]) == ["failover a->b @0"]


def test_failback_is_manual_by_default() -> None:
    policy = ActivePassivePolicy(["a", "b"], confirm=1)
    feed(policy, [{"a": DOWN, "b": UP}])
    assert feed(policy, [{"a": UP, "b": UP}] * 20) == []
    assert policy.active == "b"
    policy.moved("a")
    assert policy.active == "a"


def test_automatic_failback_waits_for_a_stable_primary() -> None:
    policy = ActivePassivePolicy(["a", "b"], confirm=1, failback="auto", failback_after=3)
    feed(policy, [{"a": DOWN, "b": UP}])
    rounds = [{"a": UP, "b": UP}, {"a": DOWN, "b": UP}] * 3 + [{"a": UP, "b": UP}] * 3
    assert feed(policy, rounds) == ["failback b->a @8"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"order": ["a"]}, "order"),
        ({"order": ["a", "a"]}, "order"),
        ({"order": ["a", "B C"]}, "order"),
        ({"order": ["a", "b"], "confirm": 0}, "confirm"),
        ({"order": ["a", "b"], "failback": "sometimes"}, "failback"),
        ({"order": ["a", "b"], "active": "c"}, "active"),
    ],
)
def test_bad_settings(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        ActivePassivePolicy(**kwargs)
    assert info.value.field == field
