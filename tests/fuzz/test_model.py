"""Every public constructor of ``multiregion.model`` with hostile input: a value or InvalidInput.

A value that was built must also show itself (``str``, ``repr``) and answer its public
no-argument methods and properties without an exception outside the library's tree.
"""

from __future__ import annotations

import inspect
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from multiregion import model
from multiregion.errors import MultiregionError
from tests.fuzz.strategies import FUZZ, arguments, call

CHECK = model.HealthCheck("http", 8080, path="/health", interval_s=1)
ENDPOINTS = [model.Endpoint("primary", "region-a", "127.0.0.2")]
ENDPOINTS += [model.Endpoint("standby", "region-b", "127.0.0.3")]
ITEM = model.Item("k", {"a": 1}, "v1", 0.0, "region-a")

VALID: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "Endpoint": {
        "name": st.just("primary"),
        "region": st.just("region-a"),
        "target": st.sampled_from(["127.0.0.2", "::1", "app.example.test"]),
    },
    "Failover": {"primary": st.just("primary"), "backups": st.just(["standby"])},
    "Weighted": {"weights": st.just({"primary": 1, "standby": 2.5})},
    "Latency": {},
    "Geo": {"locations": st.just({"EU": "primary"}), "default": st.just("standby")},
    "HealthCheck": {
        "protocol": st.sampled_from(["http", "https", "tcp"]),
        "port": st.integers(1, 65535),
        "path": st.sampled_from(["/", "/health", "/a?b=c"]),
        "interval_s": st.floats(0.5, 3600),
        "timeout_s": st.floats(0.1, 0.5),
        "failure_threshold": st.integers(1, 10),
        "success_threshold": st.integers(1, 10),
        "expected_status": st.just((200, 299)),
        "host": st.sampled_from([None, "app.example.test"]),
    },
    "Route": {
        "name": st.just("app.example.test"),
        "endpoints": st.just(ENDPOINTS),
        "policy": st.sampled_from(
            [model.Failover("primary", ["standby"]), model.Weighted({"primary": 1, "standby": 1})]
        ),
        "ttl": st.integers(0, 2**31 - 1),
        "health_check": st.sampled_from([None, CHECK]),
    },
    "ProbeTarget": {
        "name": st.just("primary"),
        "address": st.just("127.0.0.1"),
        "check": st.just(CHECK),
    },
    "EndpointHealth": {"name": st.just("primary"), "state": st.sampled_from(model.HealthState)},
    "Answer": {
        "name": st.just("app.example.test"),
        "record_type": st.just("A"),
        "records": st.just(("127.0.0.2",)),
        "ttl": st.just(5),
        "endpoints": st.just(("primary",)),
    },
    "Change": {
        "action": st.sampled_from(["create", "update", "delete"]),
        "subject": st.just("ttl"),
        "before": st.just("5"),
        "after": st.just("6"),
    },
    "Plan": {
        "name": st.just("app.example.test"),
        "changes": st.just((model.Change("update", "ttl", "5", "6"),)),
    },
    "FencingToken": {"epoch": st.integers(0, 2**62), "region": st.just("region-a")},
    "Item": {
        "key": st.just("k"),
        "value": st.just({"a": 1}),
        "version": st.just("v1"),
        "updated_at": st.just(1.0),
        "region": st.just("region-a"),
    },
    "LastWriterWins": {},
    "DivergentWrite": {
        "id": st.just("w1"),
        "key": st.just("k"),
        "value": st.just({"a": 1}),
        "version": st.just("v1"),
        "epoch": st.just(2),
        "region": st.just("region-a"),
        "written_at": st.just(1.0),
        "found_at": st.just(2.0),
    },
    "Merge": {"merge": st.just(lambda local, incoming: {**local.value, **incoming.value})},
    "ObjectInfo": {
        "key": st.just("k"),
        "size": st.just(3),
        "version": st.just("e1"),
        "sha256": st.just("0" * 64),
        "updated_at": st.just(1.0),
    },
}

CONSTRUCTORS = sorted(
    name
    for name, cls in inspect.getmembers(model, inspect.isclass)
    if attrs.has(cls) and cls.__module__ == model.__name__ and not name.startswith("_")
)


def test_every_public_constructor_is_fuzzed() -> None:
    assert sorted(VALID) == CONSTRUCTORS


def _exercise(value: object) -> None:
    """What a caller may do with a built value: show it, read its no-argument members."""
    str(value)
    repr(value)
    for name in dir(value):
        if name.startswith("_"):
            continue
        try:
            member = getattr(value, name)
            if callable(member) and not inspect.signature(member).parameters:
                member()
        except MultiregionError:
            continue


@pytest.mark.parametrize("name", CONSTRUCTORS)
@FUZZ
@given(data=st.data())
def test_a_constructor_builds_a_value_or_refuses_with_invalid_input(
    name: str, data: st.DataObject
) -> None:
    cls = getattr(model, name)
    kwargs = data.draw(arguments(cls, VALID[name]))
    value = call(cls, kwargs)
    if value is not None:
        _exercise(value)


def test_the_known_escapes_are_refused() -> None:
    """The inputs the issue found escaping, one of each (fail on main, pass now)."""
    with pytest.raises(MultiregionError):
        model.HealthCheck("http", 80, interval_s=10**400)
    with pytest.raises(MultiregionError):
        model.Weighted({"primary": 2**1024})
    with pytest.raises(MultiregionError):
        model.Change("rename", "ttl")  # str() of it was a KeyError
    for path in ("/health\r\nX-Evil: 1", "/a\nb", "/a b", "/\x00", "/\x7f", "/é"):
        with pytest.raises(MultiregionError, match=r"health_check\.path"):
            model.HealthCheck("http", 80, path=path)
    with pytest.raises(MultiregionError, match="host"):
        model.HealthCheck("http", 80, host="app.example.test\r\nX-Evil: 1")
    with pytest.raises(MultiregionError, match=r"target\.address"):
        model.ProbeTarget("primary", "127.0.0.1\n", CHECK)
