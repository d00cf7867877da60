"""The local ReplicatedStore: one SQLite file per region and a replicator with configurable lag.

Several processes may open the same ``path`` at once (the demo runs one web app per region):
every decision is taken inside SQLite transactions, and outages and partitions are files
(``topology``), so all of them see the same store. All handles of one store should use the same
settings.

Fencing (``fencing``): the regions and an optional witness vote. A promote needs a majority of
them; a write region confirms its epoch against a majority before each write, so a region cut
off from the majority stops writing. Convergence (``versions``, ``replication``): replicas
combine concurrent versions by a union that ignores delivery order, and in a single-writer store
every region re-syncs from the write region's history after a promote; what the history lacks is
logged as divergent instead of lost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from multiregion import validate
from multiregion.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    Unavailable,
)
from multiregion.interfaces import ReplicatedStore, StoreCapabilities
from multiregion.model import (
    ConflictPolicy,
    DivergentWrite,
    FencingToken,
    Item,
    LastWriterWins,
    Merge,
)
from multiregion.providers.local import fencing
from multiregion.providers.local import replication as rep
from multiregion.providers.local.topology import Topology
from multiregion.providers.local.versions import Version

log = logging.getLogger(__name__)

MAX_ITEM_BYTES = 400_000
MAX_BATCH = 1000
"""Writes per ``put_many`` transaction (the write lock is held for a few milliseconds)."""
_SCAN_PAGE = 100
REPLICATION_MODES = frozenset({"async", "sync"})
_LAST_WRITER_WINS = LastWriterWins()


class LocalStore(ReplicatedStore):
    """A store replicated across ``regions``, each a SQLite database under ``path``.

    ``replication="async"``: a background thread (``replicate=True``) copies each write to the
    other regions once it is ``lag_s`` old, so an outage of the write region loses the writes
    younger than that (they reappear in ``divergence()`` once the region is back). ``"sync"``:
    ``put`` returns only once every region holds the write, except regions that the last promote
    could not reach; otherwise it raises. ``multi_writer=True`` lets every region accept writes;
    concurrent writes are resolved by ``conflict_policy`` identically in every replica.
    ``witness`` names a region that holds only the fencing record, so that a two-region store
    keeps a majority when one region is lost. The write region confirms its epoch against a
    majority before every write; with ``lease_s`` it does so once per lease instead, and a
    promote then waits ``lease_s + clock_drift_s`` before the new write region takes writes
    (``promote_delay_s``), so the old one has stopped by then even if it never heard of it.
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
        witness: str | None = None,
        lease_s: float | None = None,
        clock_drift_s: float = 0.05,
    ) -> None:
        if not isinstance(path, str | os.PathLike) or not str(path):
            raise InvalidInput("path", "must be a directory path")
        self._regions = validate.regions("regions", regions)
        if write_region is not None and write_region not in self._regions:
            raise InvalidInput("write_region", f"{write_region!r} is not one of the regions")
        if witness is not None:
            witness = validate.region("witness", witness)
            if witness in self._regions:
                raise InvalidInput("witness", f"{witness!r} is a data region already")
        self._witness = witness
        self._voters = self._regions + (() if witness is None else (witness,))
        self._quorum = len(self._voters) // 2 + 1
        self._replication = validate.one_of("replication", replication, REPLICATION_MODES)
        self._lease_s = None if lease_s is None else validate.seconds("lease_s", lease_s, 0.01, 60)
        drift = validate.seconds("clock_drift_s", clock_drift_s, 0, 60)
        self.promote_delay_s = 0.0 if self._lease_s is None else self._lease_s + drift
        self._leases: dict[str, tuple[int, float]] = {}
        self._confirmed: tuple[str, fencing.Record] | None = None
        """The write region and its record as this handle's last write found them there."""
        self._unlogged = rep.BlockSequence() if len(self._regions) == 1 else None
        """Write numbers of a one-region store, whose writes go to no oplog (nobody pulls)."""
        self._home: str | None = None
        """The write region as this handle last read it (reads go there)."""
        self._lag_s = validate.finite_non_negative("lag_s", lag_s)
        validate.flag("multi_writer", multi_writer)
        validate.flag("replicate", replicate)
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
            partition_safe_fencing=True,
            switchover=True,
            divergence_log=True,
        )
        self._root = Path(path)
        try:
            self._root.mkdir(parents=True, exist_ok=True)
        except (OSError, ValueError) as exc:
            raise InvalidInput("path", f"cannot create the store directory: {exc}") from exc
        self._initial = write_region or self._regions[0]
        self._topology = Topology(self._root)
        self._dbs = rep.Databases(self._root, self._initial, self._topology)
        self._lock = threading.RLock()
        self._closed = False
        self._guarded = _Guard(self)
        for voter in self._voters:
            if not self._topology.is_down(voter):
                with self._guard():
                    self._dbs.get(voter)
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
        witness = "" if self._witness is None else f", witness={self._witness!r}"
        return (
            f"LocalStore({str(self._root)!r}, {list(self._regions)!r}, "
            f"replication={self._replication!r}, multi_writer={self._multi_writer}{witness})"
        )

    # ------------------------------------------------------------------ topology and fencing

    @property
    def regions(self) -> tuple[str, ...]:
        return self._regions

    @property
    def voters(self) -> tuple[str, ...]:
        """The regions that vote on epochs: every region, and the witness if there is one."""
        return self._voters

    @property
    def multi_writer(self) -> bool:
        return self._multi_writer

    @property
    def write_region(self) -> str:
        return self.fence().region

    def _fence(self) -> FencingToken:
        with self._guard():
            states = self._read_voters(self._up_voters())
            newest = self._newest(states)
            self._require_majority(states, newest, "know the current epoch")
            return _token(newest)

    def _promote(self, target: str, *, force: bool) -> FencingToken:
        with self._guard():
            if self._topology.is_down(target):
                raise Unavailable(f"cannot promote {target}: it is unavailable")
            reach = self._reachable_from(target)
            states = self._read_voters(reach)
            members = self._newest(states).voters or self._voters
            forced = not (_majority(reach, members) and _majority(reach, self._voters))
            if forced and not force:
                raise Unavailable(
                    f"cannot promote {target}: it reaches {len(reach)} of the "
                    f"{len(self._voters)} fencing voters ({', '.join(self._voters)}) and a "
                    f"majority ({self._quorum}) is needed, so that no promote on the other "
                    "side of an outage can issue the same epoch. A witness keeps a two-region "
                    "store promotable; force=True promotes anyway, unsafely, and is recorded."
                )
            if not self._multi_writer:
                self._check_nothing_acknowledged_is_lost(target, self._newest(states), force)
            epoch = max(state.top_epoch for state in states.values()) + 1
            record = fencing.Record(
                epoch,
                target,
                uuid.uuid4().hex,
                time.time(),
                forced=forced,
                excluded=tuple(r for r in self._regions if r not in reach),
                voters=tuple(reach) if forced else (),
            )
            # Prepared first: from then on the old write region refuses writes, so the catch-up
            # below takes everything it acknowledged (a switchover loses nothing).
            ordered = [target, *(voter for voter in reach if voter != target)]
            accepted = [voter for voter in ordered if self._prepare(voter, record)]
            prepared = len(accepted)
            if not forced and not _majority(accepted, self._voters):
                for voter in accepted:
                    self._retract(voter, record)
                raise Unavailable(
                    f"promote of {target} to epoch {epoch} was accepted by {prepared} of "
                    f"{len(self._voters)} voters (another promote ran at the same time); "
                    "it did not take effect, promote again"
                )
            record = self._committed(record)
            self._catch_up(record, reach)
            for voter in ordered:
                self._commit(voter, record, reached=prepared)
        time.sleep(max(0.0, record.writable_at - time.time()))
        log.warning(
            "promoted %s to write region at epoch %d%s",
            target,
            epoch,
            " (FORCED without a majority)" if forced else "",
        )
        return FencingToken(epoch, target, forced=forced)

    def _committed(self, record: fencing.Record) -> fencing.Record:
        """The record as committed now: with leases, writable once every lease that a region
        confirmed before this moment has run out."""
        if self._lease_s is None:
            return record
        return attrs.evolve(record, writable_at=time.time() + self.promote_delay_s)

    def _catch_up(self, record: fencing.Record, reach: list[str]) -> None:
        """Before ``record`` commits, its region takes what every replica it reaches holds."""
        if self._multi_writer:
            return
        target = self._dbs.get(record.region)
        for source in self._regions:
            if source != record.region and source in reach:
                rep.absorb(target, self._dbs.get(source), self.conflict_policy, record.epoch)

    def _check_nothing_acknowledged_is_lost(
        self, target: str, current: fencing.Record, force: bool
    ) -> None:
        """In sync mode, the new write region must hold (or reach a region that holds) every
        acknowledged write: one of the regions the last promote synchronised."""
        if self._replication != "sync" or force:
            return
        holders = [r for r in self._regions if r not in current.excluded]
        if not any(self._topology.reachable(target, holder) for holder in holders):
            raise Unavailable(
                f"cannot promote {target}: none of the regions holding every acknowledged "
                f"write ({', '.join(holders)}) is reachable from it, so writes would be lost; "
                "force=True promotes anyway"
            )

    def _prepare(self, voter: str, record: fencing.Record) -> bool:
        try:
            conn = self._dbs.get(voter)
            with rep.transaction(conn):
                return fencing.prepare(conn, record)
        except (Unavailable, sqlite3.Error) as exc:
            log.info("voter %s did not take the promote: %s", voter, exc)
            return False

    def _retract(self, voter: str, record: fencing.Record) -> None:
        """Withdraw a prepare that found no majority, so the old writer goes on writing."""
        with contextlib.suppress(Unavailable, sqlite3.Error):
            conn = self._dbs.get(voter)
            with rep.transaction(conn):
                fencing.retract(conn, record)

    def _commit(self, voter: str, record: fencing.Record, *, reached: int) -> None:
        try:
            conn = self._dbs.get(voter)
            with rep.transaction(conn):
                committed = fencing.commit(conn, record).committed
                if voter == record.region and committed.ballot == record.ballot:
                    fencing.mark_synced(conn, record.epoch)
                rep.record_promotion(conn, record, reached, len(self._voters))
        except (Unavailable, sqlite3.Error) as exc:
            if voter == record.region:
                raise
            log.info("voter %s will learn epoch %d later: %s", voter, record.epoch, exc)

    def fail_region(self, region: str) -> None:
        """Simulate a regional outage: every operation touching ``region`` raises Unavailable."""
        region = self._voter_region("region", region)
        with self._guard():
            self._topology.fail(region)

    def heal_region(self, region: str) -> None:
        region = self._voter_region("region", region)
        with self._guard():
            self._topology.heal(region)

    def partition(self, *groups: Iterable[str]) -> None:
        """Cut replication and fencing between the groups of regions (clients still reach all)."""
        checked = [[self._voter_region("groups", r) for r in group] for group in groups]
        if len(checked) < 2:
            raise InvalidInput("groups", "a partition needs at least two groups")
        with self._guard():
            self._topology.partition(checked)

    def heal_partitions(self) -> None:
        with self._guard():
            self._topology.heal_partitions()

    # ------------------------------------------------------------------ reads

    def _get(self, key: str, *, region: str | None) -> Item:
        with self._guard():
            home = self._home
            if region is None and home is not None and (conn := self._dbs.up(home)) is not None:
                writer, found = rep.read_at_writer(conn, key)  # the usual read: one statement
                if writer == home:
                    if found is None:
                        raise NotFound(f"no item {key!r} in {home}")
                    return found
            found, region = self._read_item(key, region)
        if found is None:
            raise NotFound(f"no item {key!r} in {region}")
        return found

    def _read_item(self, key: str, region: str | None) -> tuple[Item | None, str]:
        """From ``region``, or from the write region read afresh (``_get`` first tries the
        write region this handle last saw, if that region still says it is, in the same read)."""
        if region is not None:
            conn = self._dbs.get(region)
            return rep.read_item(conn, key), region
        self._home = self.write_region
        return rep.read_item(self._dbs.get(self._home), key), self._home

    def _scan(self, prefix: str, *, region: str | None) -> Iterator[Item]:
        return self._pages(prefix, self._read_region(region))

    def _pages(self, prefix: str, region: str) -> Iterator[Item]:
        after: str | None = None
        while True:
            with self._guard():
                page = rep.read_page(self._dbs.get(region), prefix, after, _SCAN_PAGE)
            for found in page:
                if found.value is not None:
                    yield found.item()
            if len(page) < _SCAN_PAGE:
                return
            after = page[-1].key

    def content_digest(self, region: str) -> str:
        """A digest of ``region``'s live items: converged replicas have equal digests."""
        region = self._region("region", region)
        with self._guard():
            return rep.digest(self._dbs.get(region))

    # ------------------------------------------------------------------ writes

    def _put(
        self,
        key: str,
        document: dict[str, Any],
        *,
        if_version: str | None,
        create_only: bool,
        fence: FencingToken | None,
        region: str | None,
    ) -> Item:
        def check(_target: str, current: rep.Current) -> None:
            if create_only and current.live:
                raise AlreadyExists(f"item {key!r} already exists")
            _check_version(key, current, if_version)

        conditional = create_only or if_version is not None
        stored = self._write(region, fence, [(key, document)], check if conditional else None)
        assert stored is not None
        return stored

    def _delete(
        self,
        key: str,
        *,
        if_version: str | None,
        fence: FencingToken | None,
        region: str | None,
    ) -> None:
        def check(target: str, current: rep.Current) -> None:
            if not current.live:
                raise NotFound(f"no item {key!r} in {target}")
            _check_version(key, current, if_version)

        self._write(region, fence, [(key, None)], check)

    def _put_many(
        self, checked: list[tuple[str, dict[str, Any]]], *, fence: FencingToken | None
    ) -> None:
        for start in range(0, len(checked), MAX_BATCH):
            self._write(None, fence, checked[start : start + MAX_BATCH])

    def _write(
        self,
        region: str | None,
        fence: FencingToken | None,
        writes: Sequence[tuple[str, dict[str, Any] | None]],
        check: Callable[[str, rep.Current], None] | None = None,
    ) -> Item | None:
        """Writes (``None``: a delete) of distinct keys in one transaction of the region that
        takes them; one write after ``check(region, current)`` of its key, if given. Returns the
        item a single write wrote (None for a batch or a delete).

        Admitted on what this handle confirmed before (a lease, or the majority's agreement
        with it) while the region has moved on since, it is admitted afresh, once.
        """
        with self._guard():
            for again in (True, False):
                cached = self._confirmed is not None or bool(self._leases)
                target, epoch = self._admit(region, fence)
                conn = self._dbs.get(target)
                try:
                    with rep.transaction(conn):
                        if len(writes) == 1:
                            stored, record, seq = self._write_one(
                                conn, target, epoch, fence, writes[0], check
                            )
                        else:
                            stored, record, seq = (
                                None,
                                *self._write_batch(conn, target, epoch, fence, writes),
                            )
                except BaseException as exc:
                    if self._unlogged is not None:
                        self._unlogged.reset()
                    if isinstance(exc, _Moved) and again and cached:
                        continue
                    raise
                self._after_write(target, record, seq)
                return stored
        raise AssertionError("unreachable")  # pragma: no cover

    def _write_one(
        self,
        conn: sqlite3.Connection,
        target: str,
        epoch: int,
        fence: FencingToken | None,
        write: tuple[str, dict[str, Any] | None],
        check: Callable[[str, rep.Current], None] | None,
    ) -> tuple[Item | None, fencing.Record, int]:
        key, value = write
        current = rep.read_for_write(conn, key)
        record, epoch = self._recheck(current.state, target, epoch, fence)
        if check is not None:
            check(target, current)
        stored, seq = rep.write_local(
            conn, target, epoch, key, value, _new_versions(1), current, unlogged=self._unlogged
        )
        return stored, record, seq

    def _write_batch(
        self,
        conn: sqlite3.Connection,
        target: str,
        epoch: int,
        fence: FencingToken | None,
        writes: Sequence[tuple[str, dict[str, Any] | None]],
    ) -> tuple[fencing.Record, int]:
        """Unconditional writes: the fencing state and every key's current version read
        together, the rows and oplog entries written with one statement each."""
        state, last_seq, found = rep.read_for_batch(conn, [key for key, _ in writes])
        record, epoch = self._recheck(state, target, epoch, fence)
        seq = rep.write_many(
            conn,
            target,
            epoch,
            writes,
            _new_versions(len(writes)),
            last_seq,
            found,
            unlogged=self._unlogged,
        )
        return record, seq

    def _admit(self, region: str | None, fence: FencingToken | None) -> tuple[str, int]:
        """The region that takes a write and the epoch it writes under, confirmed by a majority
        of voters as the region sees them (a single-writer store refuses any other region)."""
        wanted = None if region is None else self._region("region", region)
        if self._multi_writer and fence is None:
            if wanted is not None:
                return wanted, 0
            up = self._read_voters(self._up_voters())
            if not up:
                raise Unavailable("every region of the store is unavailable")
            return self._newest(up).region, 0
        leased = self._leased(wanted, fence)
        if leased is not None:
            return leased
        started = time.monotonic()
        agreed = self._still_agreed(wanted, fence)
        if agreed is not None:
            target, epoch = agreed
            if self._lease_s is not None:
                self._leases = {target: (epoch, started + self._lease_s)}
            return agreed
        states = self._read_voters(self._up_voters())
        current = self._newest(states)
        self._require_majority(states, current, "know the write region")
        if self._multi_writer:
            return wanted or current.region, self._confirm(wanted or current.region, fence, states)
        # A promote that died between its phases is finished by writing to its region.
        top = max(states.values(), key=lambda state: state.top_epoch)
        promoting = top.pending.region if top.top_epoch > current.epoch and top.pending else None
        target = wanted or promoting or current.region
        if target not in (current.region, promoting):
            raise PreconditionFailed(f"{target} is not the write region ({current.region})")
        epoch = self._confirm(target, fence, states)
        if self._lease_s is not None:
            self._leases = {target: (epoch, started + self._lease_s)}
        return target, epoch

    def _leased(self, wanted: str | None, fence: FencingToken | None) -> tuple[str, int] | None:
        """The write region and epoch this handle confirmed less than a lease ago, if any."""
        if self._multi_writer or not self._leases:
            return None
        ((target, (epoch, expires)),) = self._leases.items()
        if time.monotonic() >= expires or wanted not in (None, target):
            return None
        _check_token(fence, epoch, target)
        return target, epoch

    def _still_agreed(
        self, wanted: str | None, fence: FencingToken | None
    ) -> tuple[str, int] | None:
        """The write region and epoch this handle's last write confirmed, if the voters other
        than that region, read now, know of nothing newer and form a majority with it (as it
        sees them); None if anything moved (the full confirmation then decides).

        The region's own vote is its fencing state, which ``_recheck`` reads inside the write's
        transaction: a promote that completed before this write took a majority, which shares
        a voter with this one, so either a voter read here or the region itself shows it.
        """
        confirmed = self._confirmed
        if confirmed is None or self._multi_writer or wanted not in (None, confirmed[0]):
            return None
        target, record = confirmed
        members = record.voters or self._voters
        answered = 1
        cuts = None
        for voter in self._voters:
            conn = None if voter == target else self._dbs.up(voter)
            if conn is None:
                continue
            state = fencing.read(conn)
            if state.committed.rank > record.rank or state.top_epoch > record.epoch:
                return None
            if cuts is None:
                cuts = self._topology.cuts()
            if voter in members and frozenset((target, voter)) not in cuts:
                answered += 1
        if target not in members or answered <= len(members) // 2:
            return None
        _check_token(fence, record.epoch, target)
        return target, record.epoch

    def _confirm(
        self, target: str, fence: FencingToken | None, states: dict[str, fencing.VoterState]
    ) -> int:
        """The epoch ``target`` writes under, confirmed against the voters it reaches."""
        reach = self._reachable_from(target)
        seen = {voter: states.get(voter) or self._read_voter(voter) for voter in reach}
        newest = self._newest(seen)
        self._require_majority(seen, newest, f"confirm {target}'s epoch", target)
        top_epoch = max(state.top_epoch for state in seen.values())
        if self._multi_writer or (newest.region == target and newest.epoch == top_epoch):
            self._learn(target, newest, seen[target])
            _check_token(fence, newest.epoch, target)
            return newest.epoch
        pending = [
            state.pending
            for state in seen.values()
            if state.pending is not None
            and state.pending.epoch == top_epoch
            and state.pending.region == target
        ]
        if pending and self._finish(pending[0], reach):
            _check_token(fence, pending[0].epoch, target)
            return pending[0].epoch
        self._learn(target, newest, seen[target])
        if top_epoch > newest.epoch:
            raise PreconditionFailed(
                f"{target} takes no writes: a promote to epoch {top_epoch} is under way "
                "(or died halfway: promote again)"
            )
        raise PreconditionFailed(
            f"{target} is no longer the write region: {newest.region} is, at epoch {newest.epoch}"
        )

    def _finish(self, record: fencing.Record, reach: list[str]) -> bool:
        """Complete a promote of this region that died between its two phases, if a majority
        takes it; its region's history is what it holds now."""
        accepted = [voter for voter in reach if self._prepare(voter, record)]
        prepared = len(accepted)
        if not _majority(accepted, record.voters or self._voters):
            return False
        record = self._committed(record)
        self._catch_up(record, reach)
        for voter in [record.region, *(v for v in reach if v != record.region)]:
            self._commit(voter, record, reached=prepared)
        return True

    def _learn(self, target: str, record: fencing.Record, state: fencing.VoterState) -> None:
        """``target`` (whose state was ``state``) takes a committed record it confirmed: a
        write region that was cut off learns of the promote that replaced it."""
        if record.rank > state.committed.rank:
            conn = self._dbs.get(target)
            with rep.transaction(conn):
                fencing.adopt(conn, fencing.read(conn), record)
                if record.region == target:
                    fencing.mark_synced(conn, record.epoch)

    def _recheck(
        self, state: fencing.VoterState, target: str, epoch: int, fence: FencingToken | None
    ) -> tuple[fencing.Record, int]:
        """Inside the write's transaction, with ``target``'s state read there: no promote
        reached ``target`` since ``_admit``."""
        record = state.committed
        if self._multi_writer:
            _check_token(fence, max(epoch, record.epoch), target)
            return record, record.epoch
        if state.top_epoch > record.epoch:
            self._forget()
            raise _Moved(
                f"{target} takes no writes: a promote to epoch {state.top_epoch} is under way"
            )
        if record.epoch != epoch or record.region != target or not state.is_synced:
            self._forget()
            raise _Moved(
                f"{target} is no longer the write region: a promote to {record.region} "
                f"(epoch {record.epoch}) landed while the write was admitted"
            )
        wait = record.writable_at - time.time()
        if wait > 0:
            raise Unavailable(
                f"{target} takes writes in {wait:.2f}s, once the old write region's lease "
                "has surely run out"
            )
        self._confirmed = (target, record)
        return record, epoch

    def _forget(self) -> None:
        """Drop what this handle confirmed: its next write asks every voter."""
        self._leases.clear()
        self._confirmed = None

    # ------------------------------------------------------------------ conflicts

    def _conflicts(self) -> list[tuple[Item, ...]]:
        """Items whose write region holds concurrent versions (multi-writer stores): first what
        a read sees, then each version, latest first. A later write that has seen them all
        supersedes them and the conflict is gone."""
        with self._guard():
            found = rep.read_concurrent(self._dbs.get(self.write_region))
        return [_conflict(version) for version in found]

    # ------------------------------------------------------------------ divergence

    def _divergence(self, *, include_resolved: bool) -> list[DivergentWrite]:
        with self._guard():
            entries = self._divergent()
        found = [entry for entry, _ in entries.values()]
        if not include_resolved:
            found = [entry for entry in found if entry.resolution is None]
        return sorted(found, key=lambda entry: (entry.written_at, entry.id))

    def _divergent(self) -> dict[str, tuple[DivergentWrite, rep.Divergent]]:
        """Every region's log, less what the write region holds after all."""
        write_region = self._newest(self._read_voters(self._up_voters())).region
        holder = self._dbs.get(write_region)
        entries: dict[str, tuple[DivergentWrite, rep.Divergent]] = {}
        for region in self._up_regions():
            for logged in rep.divergence(self._dbs.get(region)):
                write = logged.write
                current = rep.read_version(holder, logged.key)
                if current is not None and write.seen_by(current.clock):
                    continue
                entry_id = f"{write.actor}:{write.seq}"
                known = entries.get(entry_id)
                resolution = logged.resolution or (known[0].resolution if known else None)
                entry = DivergentWrite(
                    entry_id,
                    logged.key,
                    write.value,
                    write.version,
                    write.epoch,
                    write.region,
                    write.updated_at,
                    logged.found_at,
                    resolution,
                )
                entries[entry_id] = (entry, logged)
        return entries

    def _reconcile(
        self, write_id: str, action: str, *, fence: FencingToken | None
    ) -> DivergentWrite:
        with self._guard():
            found = self._divergent().get(write_id)
            if found is None:
                raise NotFound(f"no divergent write {write_id!r}")
            entry, logged = found
            if entry.resolution is not None:
                raise PreconditionFailed(f"{write_id} was {entry.resolution} already")
            if action == "replay":
                if entry.value is None:
                    with contextlib.suppress(NotFound):
                        self.delete(entry.key, fence=fence)
                else:
                    self.put(entry.key, entry.value, fence=fence)
            resolution = "replayed" if action == "replay" else "discarded"
            for region in self._up_regions():
                conn = self._dbs.get(region)
                with rep.transaction(conn):
                    rep.resolve_divergence(conn, logged.write, resolution)
        log.warning("divergent write %s (%s) %s", write_id, entry.key, resolution)
        return attrs.evolve(entry, resolution=resolution)

    # ------------------------------------------------------------------ replication

    def _replication_lag(self, region: str) -> float:
        with self._guard():
            target = self._dbs.get(region)
            state = fencing.read(target)
            if not self._multi_writer and not state.is_synced:
                return max(1e-3, time.time() - state.committed.at)
            oldest = [
                written
                for source in self._regions
                if source != region
                and self._topology.reachable(region, source)
                and (written := rep.oldest_pending(target, self._dbs.get(source), source))
                is not None
            ]
        return max(0.0, time.time() - min(oldest)) if oldest else 0.0

    def settle(self, timeout_s: float = 10.0) -> None:
        """Replicate everything pending now, ignoring the lag, until every replica the write
        region reaches holds the same content (equal digests).

        Raises Unavailable if that takes longer than ``timeout_s``.
        """
        timeout_s = validate.seconds("timeout_s", timeout_s, 0, 3600)
        deadline = time.monotonic() + timeout_s
        with self._guard():
            while True:
                moved = self._pull_all(self._dbs, min_age_s=0.0)
                behind = self._unconverged()
                if not moved and not behind:
                    return
                if time.monotonic() > deadline:
                    raise Unavailable(
                        f"replicas not converged after {timeout_s:g} s: {behind or 'still moving'}"
                    )

    def _unconverged(self) -> str:
        """What keeps the replicas the write region reaches from being equal, or ''."""
        write_region = self._newest(self._read_voters(self._up_voters())).region
        regions = [r for r in self._regions if self._topology.reachable(write_region, r)]
        lagging = [r for r in regions if self.replication_lag(r) > 0]
        if lagging:
            return f"{', '.join(lagging)} behind"
        digests = {region: rep.digest(self._dbs.get(region)) for region in regions}
        if len(set(digests.values())) > 1:
            return "contents differ: " + ", ".join(f"{r} {d[:12]}" for r, d in digests.items())
        return ""

    def _pull_all(self, dbs: rep.Databases, *, min_age_s: float) -> bool:
        moved = False
        topology = dbs.topology
        for target in self._regions:
            for source in self._regions:
                if source != target and topology.reachable(target, source):
                    pulled = rep.pull(
                        dbs.get(target),
                        dbs.get(source),
                        source,
                        min_age_s=min_age_s,
                        policy=self.conflict_policy,
                        single_writer=not self._multi_writer,
                    )
                    moved = moved or pulled.anything
        self._trim(dbs)
        return moved

    def _trim(self, dbs: rep.Databases) -> None:
        """Drop each region's ops that every other region has applied, so the oplog stays as
        long as the replication backlog. Only while every region is reachable from every other:
        one that is not may still need them."""
        topology = dbs.topology
        if not all(topology.reachable(a, b) for a in self._regions for b in self._regions):
            return
        for source in self._regions:
            conn = dbs.get(source)
            others = [rep.applied_upto(dbs.get(t), source) for t in self._regions if t != source]
            upto = min(others) if others else rep.last_seq(conn)
            if upto > 0:
                rep.trim(conn, upto)

    def _after_write(self, source: str, record: fencing.Record, seq: int) -> None:
        """In sync mode: return only once every region the epoch synchronises holds op ``seq``."""
        if self._replication != "sync":
            return
        for target in self._regions:
            if target == source or target in record.excluded:
                continue
            if not self._topology.reachable(source, target):
                raise Unavailable(
                    f"the write is in {source} but {target} is unreachable from it, so it is "
                    "not acknowledged (synchronous replication promises every region)"
                )
            conn = self._dbs.get(target)
            rep.pull(
                conn,
                self._dbs.get(source),
                source,
                min_age_s=0.0,
                policy=self.conflict_policy,
                single_writer=not self._multi_writer,
            )
            state = fencing.read(conn)
            if not self._multi_writer and state.top_epoch > state.committed.epoch:
                # A promote prepared here may have caught up from this replica already, and
                # its region, excluded from the write's epoch, never took the write.
                raise PreconditionFailed(
                    f"the write is in {source} and {target}, but {target} has prepared a "
                    f"promote to epoch {state.top_epoch} whose region may not hold it, so it "
                    "is not acknowledged"
                )
            moved_on = not self._multi_writer and (
                state.committed.rank != record.rank or not state.is_synced
            )
            if moved_on or rep.applied_upto(conn, source) < seq:
                raise PreconditionFailed(
                    f"the write is in {source} but {target} did not take it (a promote to "
                    f"{state.committed.region} at epoch {state.committed.epoch} landed), "
                    "so it is not acknowledged"
                )

    def _replicate(self) -> None:
        """The background replicator: its own connections, a pass every fraction of the lag.

        A failing pass (a merge function's error, a locked file) is logged and retried.
        """
        interval = min(0.1, max(0.005, self._lag_s / 10))
        dbs = rep.Databases(self._root, self._initial, Topology(self._root))
        try:
            while not self._stop.wait(interval):
                try:
                    self._pull_all(dbs, min_age_s=self._lag_s)
                except Unavailable as exc:
                    log.debug("replication pass stopped: %s", exc)
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

    # ------------------------------------------------------------------ helpers

    def _guard(self) -> _Guard:
        """Serialises use of this handle's connections and maps SQLite/OS errors."""
        return self._guarded

    def _up_voters(self) -> list[str]:
        return [voter for voter in self._voters if not self._topology.is_down(voter)]

    def _up_regions(self) -> list[str]:
        return [region for region in self._regions if not self._topology.is_down(region)]

    def _reachable_from(self, region: str) -> list[str]:
        return [voter for voter in self._voters if self._topology.reachable(region, voter)]

    def _read_voter(self, voter: str) -> fencing.VoterState:
        return fencing.read(self._dbs.get(voter))

    def _read_voters(self, voters: list[str]) -> dict[str, fencing.VoterState]:
        states = {}
        for voter in voters:
            with contextlib.suppress(Unavailable):
                states[voter] = self._read_voter(voter)
        return states

    def _require_majority(
        self,
        answered: Mapping[str, object],
        newest: fencing.Record,
        purpose: str,
        region: str | None = None,
    ) -> None:
        members = newest.voters or self._voters
        if not _majority(answered, members):
            where = "" if region is None else f"{region} reaches "
            count = len([voter for voter in answered if voter in members])
            raise Unavailable(
                f"cannot {purpose}: {where}{count} of {len(members)} fencing voters "
                f"answer and {len(members) // 2 + 1} are needed"
            )

    @staticmethod
    def _newest(states: Mapping[str, fencing.VoterState]) -> fencing.Record:
        if not states:
            raise Unavailable("every region of the store is unavailable")
        return max((state.committed for state in states.values()), key=lambda r: r.rank)

    def _region(self, field: str, region: object) -> str:
        return validate.member(field, region, self._regions)

    def _voter_region(self, field: str, region: object) -> str:
        return validate.member(field, region, self._voters)

    def _read_region(self, region: str | None) -> str:
        if region is None:
            self._home = self.write_region
            return self._home
        return self._region("region", region)


class _Guard:
    """``LocalStore._guard``: a class, since every operation enters one (a generator-based
    context manager costs three times as much)."""

    __slots__ = ("_store",)

    def __init__(self, store: LocalStore) -> None:
        self._store = store

    def __enter__(self) -> None:
        store = self._store
        store._lock.acquire()
        if store._closed:
            store._lock.release()
            raise Unavailable("the store is closed")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        self._store._lock.release()
        if isinstance(exc, sqlite3.Error | OSError):
            raise Unavailable(f"local store at {self._store._root}: {exc}") from exc


class _Moved(PreconditionFailed):
    """The write region's fencing state is not what the write was admitted on."""


def _majority(answered: Iterable[str], members: tuple[str, ...]) -> bool:
    return len(set(answered) & set(members)) > len(members) // 2


def _conflict(version: Version) -> tuple[Item, ...]:
    siblings = [
        Item(version.key, write.value, write.version, write.updated_at, write.region)
        for write in reversed(version.writes)
        if write.value is not None
    ]
    seen = [version.item()] if version.value is not None else []
    return tuple(seen + siblings)


def _token(record: fencing.Record) -> FencingToken:
    return FencingToken(record.epoch, record.region, forced=record.forced)


def _check_token(fence: FencingToken | None, epoch: int, target: str) -> None:
    if fence is not None and fence.epoch < epoch:
        raise PreconditionFailed(
            f"fencing token epoch {fence.epoch} is older than {target}'s epoch {epoch}"
        )


def _check_version(key: str, current: rep.Current, if_version: str | None) -> None:
    if if_version is None:
        return
    if not current.live:
        raise PreconditionFailed(f"item {key!r} does not exist (expected version {if_version})")
    if current.version != if_version:
        raise PreconditionFailed(f"item {key!r} has changed since version {if_version}")


def _new_versions(count: int) -> str:
    """``count`` versions of 128 random bits as hex, 32 characters each: as ``uuid4().hex``
    but at a third of its cost for one, and one system call for a batch."""
    return os.urandom(16 * count).hex()
