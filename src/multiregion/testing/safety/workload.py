"""The clients: writers that hold fencing tokens, a promoter, and a writer in its own process.

Every put goes to a key of its own, so the checker can tell each write from every other; so
does every key of a batch (``put_many``), which is acknowledged when the whole batch is. In a
multi-writer store with a set-union merge, writers instead add their own element to one of a
few shared sets through compare-and-swap in a region of their choice.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from multiregion.errors import MultiregionError, NotFound, PreconditionFailed
from multiregion.interfaces import ReplicatedStore
from multiregion.model import FencingToken, Item, Merge
from multiregion.testing.safety.history import History

SETS = 3


def union(ours: Item, theirs: Item) -> dict[str, Any]:
    """The merge of the multi-writer workload: commutative, associative, idempotent."""
    return {"set": sorted(set(ours.value["set"]) | set(theirs.value["set"]))}


def write_loop(
    store: ReplicatedStore,
    history: History,
    name: str,
    stop: threading.Event,
    rng: random.Random,
    batch_share: float = 0.0,
) -> None:
    """Puts until ``stop``: each with the token last read, which is read again after an error.
    A ``batch_share`` of them are ``put_many`` of a few keys instead, with the same token."""
    token: FencingToken | None = None
    merge = isinstance(store.conflict_policy, Merge)
    n = 0
    while not stop.is_set():
        n += 1
        if merge:
            _add_to_set(store, history, name, n, rng)
            continue
        if token is None:
            try:
                token = store.fence()
            except MultiregionError:
                time.sleep(0.01)
                continue
        size = rng.randint(2, 5) if rng.random() < batch_share else 0
        if not _write(store, history, name, n, token, size):
            token = None
            time.sleep(0.005)


def _write(
    store: ReplicatedStore, history: History, name: str, n: int, token: FencingToken, size: int
) -> bool:
    """One put (``size`` 0) or a ``put_many`` of ``size`` keys, each key an operation of the
    history acknowledged only once the whole call returned; False after an error."""
    fields = {"epoch": token.epoch, "region": token.region}
    if not size:
        keys = [f"{name}/{n:05d}"]
        ops = [history.invoke(name, "put", key=keys[0], **fields)]
    else:
        keys = [f"{name}/{n:05d}.{i}" for i in range(size)]
        batch = f"{name}/{n:05d}"
        ops = [history.invoke(name, "put", key=key, batch=batch, **fields) for key in keys]
    try:
        if size:
            store.put_many({key: {"by": name, "n": n} for key in keys}, fence=token)
            versions = [""] * size
        else:
            versions = [store.put(keys[0], {"by": name, "n": n}, fence=token).version]
    except MultiregionError as exc:
        for op in ops:
            history.complete(op, "info", error=str(exc)[:200])
        return False
    for op, version in zip(ops, versions, strict=True):
        history.complete(op, "ok", version=version)
    return True


def _add_to_set(
    store: ReplicatedStore, history: History, name: str, n: int, rng: random.Random
) -> None:
    key, region, element = f"set/{rng.randrange(SETS)}", rng.choice(store.regions), f"{name}-{n}"
    op = history.invoke(name, "put", key=key, version=element, region=region)
    try:
        try:
            current: Item | None = store.get(key, region=region)
        except NotFound:
            current = None
        members = set() if current is None else set(current.value["set"])
        if current is None:
            store.put(key, {"set": [element]}, create_only=True, region=region)
        else:
            store.put(
                key, {"set": sorted(members | {element})}, if_version=current.version, region=region
            )
    except PreconditionFailed as exc:
        history.complete(op, "fail", error=str(exc)[:200])
    except MultiregionError as exc:
        history.complete(op, "info", error=str(exc)[:200])
    else:
        history.complete(op, "ok")


def promote_loop(
    store: ReplicatedStore,
    history: History,
    stop: threading.Event,
    rng: random.Random,
    interval_s: float,
) -> None:
    while not stop.wait(interval_s * rng.uniform(0.5, 1.5)):
        region = rng.choice(store.regions)
        op = history.invoke("promoter", "promote", region=region)
        try:
            token = store.promote(region)
        except MultiregionError as exc:
            history.complete(op, "info", error=str(exc)[:200])
        else:
            history.complete(op, "ok", epoch=token.epoch, forced=token.forced)
