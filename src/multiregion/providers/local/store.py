"""The local ReplicatedStore: one SQLite file per region and a replicator with configurable lag.

Several processes may open the same ``path`` at once (the demo runs one web app per region):
every decision is taken inside a SQLite transaction and outages are marker files, so all of
them see the same store. All handles of one store should use the same settings.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from multiregion import validate
from multiregion.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Unavailable,
)
from multiregion.interfaces import ReplicatedStore, StoreCapabilities
from multiregion.model import ConflictPolicy, FencingToken, Item, LastWriterWins, Merge
from multiregion.providers.local import replication as rep

log = logging.getLogger(__name__)

MAX_ITEM_BYTES = 400_000
MAX_BATCH = 100
_SCAN_PAGE = 100
REPLICATION_MODES = frozenset({"async", "sync"})
_LAST_WRITER_WINS = LastWriterWins()


class LocalStore(ReplicatedStore):
    """A store replicated across ``regions``, each a SQLite database under ``path``.

    ``replication="async"``: a background thread (``replicate=True``) copies each write to the
    other regions once it is ``lag_s`` old, so an outage of the write region loses the writes
    younger than that. ``"sync"``: a write is also applied to every reachable replica before
    ``put`` returns. ``multi_writer=True`` lets every region accept writes; concurrent writes
    are resolved by ``conflict_policy`` identically in every replica.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        regions: Iterable[str],
        *,
        write_region: str | None = None,
        replication: str = "async",
        lag_s: float = 0.5,
        multi_writer: bool = False,
        conflict_policy: ConflictPolicy = _LAST_WRITER_WINS,
        replicate: bool = True,
    ) -> None:
        if not isinstance(path, str | os.PathLike) or not str(path):
            raise InvalidInput("path", "must be a directory path")
        self._regions = validate.regions("regions", regions)
        if write_region is not None and write_region not in self._regions:
            raise InvalidInput("write_region", f"{write_region!r} is not one of the regions")
        self._replication = validate.one_of("replication", replication, REPLICATION_MODES)
        self._lag_s = validate.finite_non_negative("lag_s", lag_s)
        for name, flag in (("multi_writer", multi_writer), ("replicate", replicate)):
            if not isinstance(flag, bool):
                raise InvalidInput(name, "must be True or False")
        if not isinstance(conflict_policy, LastWriterWins | Merge):
            raise InvalidInput("conflict_policy", "must be LastWriterWins() or Merge(fn)")
        self.conflict_policy = conflict_policy
        self._multi_writer = multi_writer
        self.capabilities = StoreCapabilities(
            multi_writer=True,
            pinned_reads=True,
            replication_lag=True,
            strong=self._replication == "sync",
            max_item_bytes=MAX_ITEM_BYTES,
            max_batch=MAX_BATCH,
        )
        self._root = Path(path)
        try:
            self._root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Unavailable(f"cannot create the store directory {self._root}") from exc
        self._initial = write_region or self._regions[0]
        self._dbs = rep.Databases(self._root, self._initial)
        self._lock = threading.RLock()
        self._closed = False
        for region in self._regions:
            if not self._dbs.is_down(region):
                with self._guard():
                    self._dbs.get(region)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if replicate:
            self._thread = threading.Thread(
                target=self._replicate,
                name=f"multiregion-replicator-{self._root.name}",
                daemon=True,
            )
            self._thread.start()

    def __repr__(self) -> str:
        return (
            f"LocalStore({str(self._root)!r}, {list(self._regions)!r}, "
            f"replication={self._replication!r}, multi_writer={self._multi_writer})"
        )

    # ------------------------------------------------------------------ topology and fencing

    @property
    def regions(self) -> tuple[str, ...]:
        return self._regions

    @property
    def multi_writer(self) -> bool:
        return self._multi_writer

    @property
    def write_region(self) -> str:
        return self.fence().region

    def fence(self) -> FencingToken:
        with self._guard():
            meta = self._newest_meta()
        return FencingToken(meta.epoch, meta.write_region)

    def promote(self, region: str) -> FencingToken:
        region = self._region("region", region)
        with self._guard(), self._promotion_lock():
            self._dbs.get(region)
            epoch = self._newest_meta().epoch + 1
            for name in self._up_regions():
                conn = self._dbs.get(name)
                with rep.transaction(conn):
                    if rep.read_meta(conn).epoch < epoch:
                        rep.write_meta(conn, rep.Meta(epoch, region))
        log.info("promoted %s to write region at epoch %d", region, epoch)
        return FencingToken(epoch, region)

    def fail_region(self, region: str) -> None:
        """Simulate a regional outage: every operation touching ``region`` raises Unavailable."""
        region = self._region("region", region)
        with self._guard():
            self._dbs.marker(region).touch()

    def heal_region(self, region: str) -> None:
        region = self._region("region", region)
        with self._guard():
            self._dbs.marker(region).unlink(missing_ok=True)

    # ------------------------------------------------------------------ reads

    def get(self, key: str, *, region: str | None = None) -> Item:
        key = _key(key)
        region = self._read_region(region)
        with self._guard():
            row = rep.read_row(self._dbs.get(region), key)
        if row is None or row.value is None:
            raise NotFound(f"no item {key!r} in {region}")
        return row.item()

    def scan(self, prefix: str = "", *, region: str | None = None) -> Iterator[Item]:
        prefix = validate.utf8_text("prefix", validate.prefix("prefix", prefix))
        region = self._read_region(region)
        return self._scan(prefix, region)

    def _scan(self, prefix: str, region: str) -> Iterator[Item]:
        after: str | None = None
        while True:
            with self._guard():
                page = rep.read_page(self._dbs.get(region), prefix, after, _SCAN_PAGE)
            for row in page:
                if row.value is not None:
                    yield row.item()
            if len(page) < _SCAN_PAGE:
                return
            after = page[-1].key

    # ------------------------------------------------------------------ writes

    def put(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        if_version: str | None = None,
        create_only: bool = False,
        fence: FencingToken | None = None,
        region: str | None = None,
    ) -> Item:
        key = _key(key)
        document = _document(value)
        validate.store_conditions(if_version, fence, create_only)
        with self._guard():
            target = self._target(region)
            conn = self._dbs.get(target)
            with rep.transaction(conn):
                epoch = self._check_fence(conn, target, fence)
                current = rep.read_row(conn, key)
                live = current if current is not None and current.value is not None else None
                if create_only and live is not None:
                    raise AlreadyExists(f"item {key!r} already exists")
                _check_version(key, live, if_version)
                row = rep.write_local(conn, target, epoch, key, document, _new_version(), current)
            self._after_write(target)
        return row.item()

    def delete(
        self,
        key: str,
        *,
        if_version: str | None = None,
        fence: FencingToken | None = None,
        region: str | None = None,
    ) -> None:
        key = _key(key)
        validate.store_conditions(if_version, fence)
        with self._guard():
            target = self._target(region)
            conn = self._dbs.get(target)
            with rep.transaction(conn):
                epoch = self._check_fence(conn, target, fence)
                current = rep.read_row(conn, key)
                if current is None or current.value is None:
                    raise NotFound(f"no item {key!r} in {target}")
                _check_version(key, current, if_version)
                rep.write_local(conn, target, epoch, key, None, _new_version(), current)
            self._after_write(target)

    def put_many(
        self,
        items: Mapping[str, Mapping[str, Any]] | Iterable[tuple[str, Mapping[str, Any]]],
        *,
        fence: FencingToken | None = None,
    ) -> int:
        validate.store_conditions(None, fence)
        checked = [(_key(key), _document(value)) for key, value in validate.pairs(items)]
        with self._guard():
            target = self._target(None)
            conn = self._dbs.get(target)
            for start in range(0, len(checked), MAX_BATCH):
                with rep.transaction(conn):
                    epoch = self._check_fence(conn, target, fence)
                    for key, document in checked[start : start + MAX_BATCH]:
                        current = rep.read_row(conn, key)
                        rep.write_local(conn, target, epoch, key, document, _new_version(), current)
            self._after_write(target)
        return len(checked)

    # ------------------------------------------------------------------ replication

    def replication_lag(self, region: str) -> float:
        region = self._region("region", region)
        with self._guard():
            target = self._dbs.get(region)
            oldest = [
                written
                for source in self._up_regions()
                if source != region
                and (written := rep.oldest_pending(target, self._dbs.get(source), source))
                is not None
            ]
        return max(0.0, time.time() - min(oldest)) if oldest else 0.0

    def settle(self, timeout_s: float = 10.0) -> None:
        """Apply every pending op to every reachable replica now, ignoring the lag.

        Returns once a full pass finds nothing left; raises Unavailable if writers elsewhere
        keep it busy past ``timeout_s``.
        """
        timeout_s = validate.seconds("timeout_s", timeout_s, 0, 3600)
        deadline = time.monotonic() + timeout_s
        with self._guard():
            while self._pull_all(self._dbs, min_age_s=0.0) or any(
                self.replication_lag(region) > 0 for region in self._up_regions()
            ):
                if time.monotonic() > deadline:
                    raise Unavailable(f"replicas still behind after {timeout_s:g} s")

    def _pull_all(self, dbs: rep.Databases, *, min_age_s: float) -> int:
        applied = 0
        up = [region for region in self._regions if not dbs.is_down(region)]
        for target in up:
            for source in up:
                if source != target:
                    applied += rep.pull(
                        dbs.get(target),
                        dbs.get(source),
                        source,
                        min_age_s=min_age_s,
                        policy=self.conflict_policy,
                        drop_fenced=not self._multi_writer,
                    )
        if len(up) == len(self._regions):
            self._trim(dbs)
        return applied

    def _trim(self, dbs: rep.Databases) -> None:
        """Drop each region's ops that every other region has applied, so the oplog stays as
        long as the replication backlog. Only with every region reachable: a region that is
        down may still need them."""
        for source in self._regions:
            others = [rep.applied_upto(dbs.get(t), source) for t in self._regions if t != source]
            if others and min(others) > 0:
                rep.trim(dbs.get(source), min(others))

    def _after_write(self, source: str) -> None:
        """In sync mode, push the new op (and any before it) to every reachable replica."""
        if self._replication != "sync":
            return
        for target in self._up_regions():
            if target != source:
                rep.pull(
                    self._dbs.get(target),
                    self._dbs.get(source),
                    source,
                    min_age_s=0.0,
                    policy=self.conflict_policy,
                    drop_fenced=not self._multi_writer,
                )

    def _replicate(self) -> None:
        """The background replicator: its own connections, a pass every fraction of the lag.

        A failing pass (a merge function's error, a locked file) is logged and retried.
        """
        interval = min(0.1, max(0.005, self._lag_s / 10))
        dbs = rep.Databases(self._root, self._initial)
        try:
            while not self._stop.wait(interval):
                try:
                    self._pull_all(dbs, min_age_s=self._lag_s)
                except Exception:
                    log.exception("replication pass failed; retrying")
        finally:
            dbs.close()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            self._closed = True
            self._dbs.close()

    def __enter__(self) -> LocalStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Serialises use of this handle's connections and maps SQLite/OS errors."""
        with self._lock:
            if self._closed:
                raise Unavailable("the store is closed")
            try:
                yield
            except (sqlite3.Error, OSError) as exc:
                raise Unavailable(f"local store at {self._root}: {exc}") from exc

    @contextlib.contextmanager
    def _promotion_lock(self) -> Iterator[None]:
        """Two processes promoting at once get distinct epochs."""
        with open(self._root / "promote.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _up_regions(self) -> list[str]:
        return [region for region in self._regions if not self._dbs.is_down(region)]

    def _newest_meta(self) -> rep.Meta:
        metas = [rep.read_meta(self._dbs.get(region)) for region in self._up_regions()]
        if not metas:
            raise Unavailable("every region of the store is unavailable")
        return max(metas, key=lambda meta: meta.epoch)

    def _region(self, field: str, region: object) -> str:
        return validate.member(field, region, self._regions)

    def _read_region(self, region: str | None) -> str:
        if region is None:
            return self.write_region
        return self._region("region", region)

    def _target(self, region: str | None) -> str:
        """The region that takes a write; a single-writer store refuses any but its own."""
        wanted = None if region is None else self._region("region", region)
        current = self._newest_meta().write_region
        if wanted is None or wanted == current:
            return current
        if not self._multi_writer:
            raise PreconditionFailed(f"{wanted} is not the write region ({current})")
        return wanted

    def _check_fence(
        self, conn: sqlite3.Connection, target: str, fence: FencingToken | None
    ) -> int:
        """The target's epoch, once the token (if any) and the writer's role are checked."""
        meta = rep.read_meta(conn)
        if fence is not None and fence.epoch < meta.epoch:
            raise PreconditionFailed(
                f"fencing token epoch {fence.epoch} is older than {target}'s epoch {meta.epoch}"
            )
        if not self._multi_writer and meta.write_region != target:
            raise PreconditionFailed(f"{target} is no longer the write region")
        return meta.epoch


def _key(value: object) -> str:
    return validate.key("key", value, utf8=True)


def _document(value: object) -> dict[str, Any]:
    return validate.document("value", value, MAX_ITEM_BYTES)


def _check_version(key: str, live: rep.Row | None, if_version: str | None) -> None:
    if if_version is None:
        return
    if live is None:
        raise PreconditionFailed(f"item {key!r} does not exist (expected version {if_version})")
    if live.version != if_version:
        raise PreconditionFailed(f"item {key!r} has changed since version {if_version}")


def _new_version() -> str:
    return uuid.uuid4().hex
