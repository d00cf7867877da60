"""A local ledger store, a source store with a few items and a bucket, per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from multiregion.providers.local.bucket import LocalBucket
from multiregion.providers.local.store import LocalStore


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[LocalStore]:
    with LocalStore(tmp_path / "ledger", ["region-a"], replicate=False) as store:
        yield store


@pytest.fixture
def source(tmp_path: Path) -> Iterator[LocalStore]:
    with LocalStore(tmp_path / "source", ["region-a"], replicate=False) as store:
        store.put_many((f"order/{i:03d}", {"n": i}) for i in range(25))
        yield store


@pytest.fixture
def bucket(tmp_path: Path) -> LocalBucket:
    return LocalBucket(tmp_path / "bucket")
