"""Every public method of the local router, bucket and probe, the local store's interface
methods and ``Backups``, with hostile arguments: a result or a MultiregionError, nothing else.

File paths are drawn inside the test's own folder (hostile names, not hostile places), probe
targets are loopback only, and the store is driven only through its interface methods.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from multiregion.backup import Backups
from multiregion.interfaces import BackupBucket, ReplicatedStore, TrafficRouter
from multiregion.model import (
    Endpoint,
    EndpointStatus,
    Failover,
    FencingToken,
    HealthCheck,
    ProbeTarget,
    Route,
    Weighted,
)
from multiregion.providers.local.bucket import LocalBucket
from multiregion.providers.local.probe import LocalProbe
from multiregion.providers.local.router import LocalRouter
from multiregion.providers.local.store import LocalStore
from tests.fuzz.strategies import ANYTHING, FUZZ, NASTY_TEXT, arguments, call, public_methods

# A failing example that is a Route or Plan takes hypothesis long to show.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

ROUTE = Route(
    "app.fuzz.test",
    [Endpoint("primary", "region-a", "127.0.0.2"), Endpoint("standby", "region-b", "127.0.0.3")],
    Failover("primary", ["standby"]),
    ttl=5,
    health_check=HealthCheck("tcp", 9, interval_s=1),
)
WEIGHTED = Route(ROUTE.name, ROUTE.endpoints, Weighted({"primary": 1, "standby": 3}))
CHECK = HealthCheck("tcp", 9, interval_s=5, timeout_s=0.2)

ROUTER_METHODS = public_methods(LocalRouter)
BUCKET_METHODS = public_methods(LocalBucket)
PROBE_METHODS = public_methods(LocalProbe)
STORE_METHODS = ["delete", "get", "put", "put_many", "scan"]
BACKUP_METHODS = public_methods(Backups)
SKIPPED = {"close"}
"""Tested by every fixture's teardown instead (a closed adapter refuses the later examples)."""


def methods(names: list[str]) -> list[str]:
    return sorted(set(names) - SKIPPED)


def names() -> st.SearchStrategy[str]:
    return st.sampled_from(["a", "k/1", "x" * 300, "a/" * 10 + "b"]) | NASTY_TEXT


def paths_in(folder: Path) -> st.SearchStrategy[Any]:
    """Hostile file names, always inside ``folder``; or a value that is no path at all."""
    inside = (st.text(max_size=8) | NASTY_TEXT).map(lambda name: str(folder / "files" / name))
    return st.one_of(inside, inside.map(Path), ANYTHING)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fuzz")
    (path / "files").mkdir()
    (path / "files" / "source").write_bytes(b"some bytes")
    return path


@pytest.fixture(scope="module")
def router(folder: Path) -> Iterator[TrafficRouter]:
    with contextlib.closing(LocalRouter(folder / "dns", serve=False)) as local:
        local.apply(ROUTE)
        yield local


@pytest.fixture(scope="module")
def bucket(folder: Path) -> Iterator[BackupBucket]:
    with contextlib.closing(LocalBucket(folder / "bucket")) as local:
        local.put("present", b"hello")
        yield local


@pytest.fixture(scope="module")
def store(folder: Path) -> Iterator[ReplicatedStore]:
    regions = ["region-a", "region-b"]
    with contextlib.closing(LocalStore(folder / "store", regions, replication="sync")) as local:
        local.put("present", {"a": 1})
        yield local


@pytest.fixture(scope="module")
def probe() -> Iterator[LocalProbe]:
    with contextlib.closing(LocalProbe()) as local:
        yield local


@pytest.fixture(scope="module")
def backups(bucket: BackupBucket, store: ReplicatedStore) -> Backups:
    return Backups(bucket, prefix="fuzz-backups/")


@pytest.mark.parametrize("method", methods(ROUTER_METHODS))
@FUZZ
@given(data=st.data())
def test_the_local_router(method: str, router: TrafficRouter, data: st.DataObject) -> None:
    valid = {
        "route": st.sampled_from([ROUTE, WEIGHTED]),
        "name": st.just(ROUTE.name) | names(),
        "endpoint": st.sampled_from(["primary", "standby"]),
        "status": st.sampled_from(EndpointStatus),
        "client_region": st.sampled_from([None, "region-a"]),
        "force": st.booleans(),
        "plan": st.just(router.plan(ROUTE)),
    }
    function = getattr(router, method)
    call(function, data.draw(arguments(function, valid)))


@pytest.mark.parametrize("method", methods(BUCKET_METHODS))
@FUZZ
@given(data=st.data())
def test_the_local_bucket(
    method: str, bucket: BackupBucket, folder: Path, data: st.DataObject
) -> None:
    valid = {
        "key": st.just("present") | names(),
        "data": st.sampled_from([b"", b"bytes"]) | st.builds(io.BytesIO, st.just(b"s")),
        "create_only": st.booleans(),
        "if_match": st.none(),
        "metadata": st.sampled_from([None, {"colour": "blue"}]),
        "retain_until": st.none(),
        "prefix": st.sampled_from(["", "pre"]) | names(),
        "chunk_size": st.sampled_from([1, 1024]),
        "path": paths_in(folder) | st.just(str(folder / "files" / "source")),
        "progress": st.none(),
    }
    function = getattr(bucket, method)
    call(function, data.draw(arguments(function, valid)))


@pytest.mark.parametrize("method", methods(PROBE_METHODS))
@FUZZ
@given(data=st.data())
def test_the_local_probe(method: str, probe: LocalProbe, data: st.DataObject) -> None:
    target = st.builds(
        ProbeTarget,
        name=st.sampled_from(["primary", "standby"]),
        address=st.sampled_from(["127.0.0.1", "::1"]),  # loopback only, ever
        check=st.just(CHECK),
    )
    valid = {
        "target": target,
        "name": st.sampled_from(["primary", "gone"]),
        "check": st.just(CHECK),
    }
    function = getattr(probe, method)
    call(function, data.draw(arguments(function, valid)))
    if method == "ensure":
        call(probe.delete, {"name": "primary"})
        call(probe.delete, {"name": "standby"})


@pytest.mark.parametrize("method", methods(STORE_METHODS))
@FUZZ
@given(data=st.data())
def test_the_local_store_interface(
    method: str, store: ReplicatedStore, data: st.DataObject
) -> None:
    valid = {
        "key": st.just("present") | names(),
        "value": st.just({"a": [1, "x"]}),
        "if_version": st.none(),
        "create_only": st.booleans(),
        "fence": st.none() | st.just(FencingToken(0, "region-a")),
        "region": st.sampled_from([None, "region-a", "region-b"]),
        "prefix": st.sampled_from(["", "k"]) | names(),
        "items": st.just([("k1", {"a": 1}), ("k2", {"b": 2})]),
    }
    function = getattr(store, method)
    call(function, data.draw(arguments(function, valid)))


@pytest.mark.parametrize("method", methods(BACKUP_METHODS))
@FUZZ
@given(data=st.data())
def test_backups(
    method: str,
    backups: Backups,
    store: ReplicatedStore,
    folder: Path,
    data: st.DataObject,
) -> None:
    made = backups.list()
    valid = {
        "store": st.just(store),
        "scratch": st.just(store),  # verify and test_restore only write what is there
        "region": st.sampled_from([None, "region-a"]),
        "incremental_from": st.sampled_from([None, *(m.backup_id for m in made[-1:])]),
        "backup_id": st.sampled_from([m.backup_id for m in made] or ["none"]) | names(),
        "progress": st.none(),
        "source": st.none() | st.just({"by": "fuzz"}),
        "fence": st.none(),
        "keep_last": st.sampled_from([None, 5]),
        "older_than_s": st.sampled_from([None, 3600.0]),
    }
    function = getattr(backups, method)
    call(function, data.draw(arguments(function, valid)))


@FUZZ
@given(
    kwargs=st.fixed_dictionaries(
        {},
        optional={
            "region": st.just("region-a") | ANYTHING,
            "part_size": st.just(4096) | ANYTHING,
        },
    ),
    name=st.text(max_size=8) | NASTY_TEXT,
)
def test_the_local_constructors(folder: Path, kwargs: dict[str, Any], name: str) -> None:
    for build in (
        lambda: LocalBucket(folder / "made" / name, **kwargs),
        lambda: LocalRouter(str(folder / "made-dns" / name), serve=False),
        lambda: LocalStore(str(folder / "made-store" / name), [kwargs.get("region", "r")]),
        lambda: Backups(LocalBucket(folder / "made"), prefix=name),
    ):
        built = call(lambda build=build: build(), {})
        if built is not None and hasattr(built, "close"):
            built.close()
