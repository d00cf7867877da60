"""The comparisons every store and bucket bench makes: the adapter beside the raw SDK.

A raw side is the same operation written the plainest way with the service's SDK (or
sqlite3), on the same emulator, with the same value; ``RawStore``/``RawBucket`` name the three
calls it needs. Round ``r`` of the put comparison writes keys ``r-0 .. r-(n-1)``, the get
comparison reads them and the delete comparison removes them, so each side always finds what
it expects.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from benches.measure import MB, ROUNDS, compare, show
from multiregion.interfaces import BackupBucket, ReplicatedStore

VALUE: dict[str, Any] = {"name": "bench", "n": 1, "tags": ["a", "b"], "note": "x" * 100}
"""A small document, as a session or an order would be."""

MODES: dict[str, dict[str, Any]] = {"strict": {}, "lease": {"lease_s": 10.0}}
"""The fencing modes compared: a check per write, and a write lease long enough to outlast a
round (the fencing record read once per lease)."""


PARITY_ROUNDS = 15
"""Counted rounds of the comparisons where the adapter sends what the raw side sends (a store
in lease mode, a bucket's put, get and delete, a file's transfer): a ratio near 1 is told from
0.9 only over more rounds than five on a shared machine (the raw side against itself gave
medians of 0.81 to 1.25 over five rounds)."""


def mode_sizes(mode: str, n: int, lease_n: int) -> dict[str, int]:
    """``n`` and ``rounds`` for a store's get/put/delete comparisons in fencing ``mode``."""
    if mode == "lease":
        return {"n": lease_n, "rounds": PARITY_ROUNDS}
    return {"n": n, "rounds": ROUNDS}


class RawStore(Protocol):
    def put(self, key: str, value: dict[str, Any]) -> object: ...

    def get(self, key: str) -> object: ...

    def delete(self, key: str) -> object: ...


class RawBucket(Protocol):
    def put(self, key: str, data: bytes) -> object: ...

    def get(self, key: str) -> bytes: ...

    def delete(self, key: str) -> object: ...


def _each(n: int, prefix: str, call: Callable[[str], object]) -> Callable[[int], None]:
    def side(number: int) -> None:
        for i in range(n):
            call(f"{prefix}{number}-{i}")

    return side


def _crud(
    title: str,
    calls: dict[str, tuple[Callable[[str], object], Callable[[str], object]]],
    n: int,
    rounds: int = ROUNDS,
) -> dict[str, dict[str, Any]]:
    figures = {}
    for op, (ours, theirs) in calls.items():
        sides = {"adapter": _each(n, "a", ours), "raw": _each(n, "r", theirs)}
        figures[op] = compare(sides, ops=n, rounds=rounds)
        show(f"{title} {op}", figures[op])
    return figures


def store_crud(
    title: str, store: ReplicatedStore, raw: RawStore, *, n: int, rounds: int = ROUNDS
) -> dict[str, dict[str, Any]]:
    """put, get and delete: the adapter's rate over the raw one's (above 1: faster)."""
    calls: dict[str, tuple[Callable[[str], object], Callable[[str], object]]] = {
        "put": (lambda k: store.put(k, VALUE), lambda k: raw.put(k, VALUE)),
        "get": (store.get, raw.get),
        "delete": (store.delete, raw.delete),
    }
    return _crud(title, calls, n, rounds)


def in_modes(
    open_store: Callable[..., ReplicatedStore],
    measure: Callable[[str, ReplicatedStore], dict[str, Any]],
) -> dict[str, Any]:
    """``measure(mode, store)`` for a store opened in each fencing mode, by mode."""
    figures: dict[str, Any] = {}
    for mode, settings in MODES.items():
        store = open_store(**settings)
        try:
            figures[mode] = measure(mode, store)
        finally:
            store.close()
    return figures


def store_batch(title: str, store: ReplicatedStore, *, n: int) -> dict[str, Any]:
    """``put_many`` of ``n`` items against a loop of ``n`` puts (above 1: the batch wins)."""

    def batch(number: int) -> None:
        store.put_many((f"b{number}-{i}", VALUE) for i in range(n))

    def loop(number: int) -> None:
        for i in range(n):
            store.put(f"l{number}-{i}", VALUE)

    figures = compare({"batch": batch, "loop": loop}, ops=n)
    show(f"{title} batch of {n}", figures)
    return figures


def store_all(
    title: str, store: ReplicatedStore, raw: RawStore, *, n: int, batch: int, rounds: int = ROUNDS
) -> dict[str, Any]:
    """``store_crud`` and then ``store_batch``, as each store's bench reports them."""
    figures: dict[str, Any] = store_crud(title, store, raw, n=n, rounds=rounds)
    figures["batch"] = store_batch(title, store, n=batch)
    return figures


def bucket_crud(
    title: str, bucket: BackupBucket, raw: RawBucket, *, n: int, size: int = 4096
) -> dict[str, dict[str, Any]]:
    """put, get and delete of ``size``-byte objects: the adapter's rate over the raw one's."""
    data = bytes(range(256)) * (size // 256)
    calls: dict[str, tuple[Callable[[str], object], Callable[[str], object]]] = {
        "put": (lambda k: bucket.put(k, data), lambda k: raw.put(k, data)),
        "get": (bucket.get, raw.get),
        "delete": (bucket.delete, raw.delete),
    }
    return _crud(f"{title} {size} B", calls, n, PARITY_ROUNDS)


def random_file(path: Path, size_mb: int) -> Path:
    with path.open("wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(MB))
    return path


def upload_file(
    title: str, bucket: BackupBucket, raw_upload: Callable[[str], object], source: Path
) -> dict[str, Any]:
    """``upload_file`` of ``source`` to ``adapter.bin`` against the raw upload of it to
    ``raw.bin`` (keys a download bench then reads), and as ``upload_file_verified`` against
    the raw upload after a SHA-256 of the file: the hash the adapter stores, done plainly.
    Both figures are returned by name."""
    size_mb = source.stat().st_size / MB
    ops = max(round(size_mb), 1)

    def adapter(_number: int) -> None:
        bucket.upload_file(source, "adapter.bin")

    def raw(_number: int) -> None:
        raw_upload("raw.bin")

    def raw_verified(_number: int) -> None:
        with source.open("rb") as f:
            hashlib.file_digest(f, "sha256")
        raw_upload("raw.bin")

    plain = compare({"adapter": adapter, "raw": raw}, ops=ops, rounds=PARITY_ROUNDS)
    show(f"{title} upload_file {size_mb:.0f} MiB (MiB/s)", plain)
    verified = compare(
        {"adapter": adapter, "sha256+raw": raw_verified}, ops=ops, rounds=PARITY_ROUNDS
    )
    show(f"{title} upload_file vs SHA-256 + raw (MiB/s)", verified)
    return {"upload_file": plain, "upload_file_verified": verified}
