"""Opening LocalStores in tmp_path, closed after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from multiregion.providers.local.store import LocalStore

REGIONS = ["a", "b", "c"]

Opener = Callable[..., LocalStore]


def store_opener(tmp_path: Path, **defaults: Any) -> Iterator[Opener]:
    """Yields ``open_(name="store", **settings)``; regions a, b, c unless told otherwise."""
    opened: list[LocalStore] = []

    def open_(name: str = "store", **settings: Any) -> LocalStore:
        store = LocalStore(tmp_path / name, **{"regions": REGIONS, **defaults, **settings})
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()
