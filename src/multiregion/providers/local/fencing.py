"""The fencing record that every voter of a local store keeps, and promotion in two phases.

A promote prepares its record (epoch, region, ballot) on the voters; a voter accepts it only if
it has seen no epoch as high. With a majority prepared, the promote commits, and only a
committed record makes a region the write region. Two majorities always share a voter, so two
promotes never commit the same epoch, and a writer that reads a majority sees every promote that
committed before. A promote that died between the phases leaves a prepared record: it stops the
old writer (which sees a higher epoch) and its region may finish it, but nobody acts on it as
committed until a majority holds it.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from typing import Any

import attrs


@attrs.frozen
class Record:
    epoch: int
    region: str
    ballot: str
    at: float
    forced: bool = False
    """Issued without a majority of voters (``promote(force=True)``): no longer unique."""
    excluded: tuple[str, ...] = ()
    """Regions the promote could not reach; synchronous writes leave them out until the next
    promote that reaches them."""
    voters: tuple[str, ...] = ()
    """Who votes from this epoch on: everybody (empty), or after a forced promote only the
    voters it reached, so that the survivors of a lost majority can go on."""
    writable_at: float = 0.0
    """With write leases: when the old write region's lease has surely run out (set at commit),
    before which the new write region takes no writes."""

    @property
    def rank(self) -> tuple[int, bool, str]:
        """Orders records. At one epoch (only possible with a forced promote) the forced one
        wins, as the operator asked, and the ballot breaks the remaining ties."""
        return (self.epoch, self.forced, self.ballot)

    def dumps(self) -> str:
        return json.dumps(attrs.asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> Record:
        return _load(text)


@functools.lru_cache(maxsize=64)
def _load(text: str) -> Record:
    """Records are read before every write and rarely change: each text is parsed once."""
    data: dict[str, Any] = json.loads(text)
    data["excluded"] = tuple(data.get("excluded", ()))
    data["voters"] = tuple(data.get("voters", ()))
    return Record(**data)


@attrs.frozen
class VoterState:
    committed: Record
    pending: Record | None
    synced: int
    """The epoch whose write region's history this replica holds (it re-syncs when behind)."""

    @property
    def top_epoch(self) -> int:
        pending = 0 if self.pending is None else self.pending.epoch
        return max(self.committed.epoch, pending)

    @property
    def is_synced(self) -> bool:
        return self.synced >= self.committed.epoch


def initialise(conn: sqlite3.Connection, write_region: str) -> None:
    """Inside the schema's transaction: the first record, unless the voter has one."""
    first = Record(1, write_region, "initial", 0.0)
    conn.execute(
        "INSERT OR IGNORE INTO meta VALUES ('committed', ?), ('synced', '1')", (first.dumps(),)
    )


COLUMNS = (
    "(SELECT value FROM meta WHERE name = 'committed'), "
    "(SELECT value FROM meta WHERE name = 'pending'), "
    "(SELECT value FROM meta WHERE name = 'synced')"
)
"""The voter's state as three columns, so that other reads can take it in the same statement
(``state`` turns them into a VoterState)."""
_READ = "SELECT " + COLUMNS


def read(conn: sqlite3.Connection) -> VoterState:
    committed, pending, synced = conn.execute(_READ).fetchone()
    return state(committed, pending, synced)


@functools.lru_cache(maxsize=64)
def state(committed: str, pending: str | None, synced: str) -> VoterState:
    """The state that ``COLUMNS`` read: it is read before every write and rarely changes, so
    each combination is parsed once."""
    return VoterState(
        Record.loads(committed),
        None if pending is None else Record.loads(pending),
        int(synced),
    )


def _set(conn: sqlite3.Connection, name: str, value: str | None) -> None:
    if value is None:
        conn.execute("DELETE FROM meta WHERE name = ?", (name,))
    else:
        conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (name, value))


def adopt(conn: sqlite3.Connection, state: VoterState, record: Record) -> VoterState:
    """Inside a transaction: take ``record`` as committed if it is newer than what is there."""
    if record.rank <= state.committed.rank:
        return state
    _set(conn, "committed", record.dumps())
    pending = state.pending
    if pending is not None and pending.epoch <= record.epoch:
        _set(conn, "pending", None)
        pending = None
    return VoterState(record, pending, state.synced)


def mark_synced(conn: sqlite3.Connection, epoch: int) -> None:
    """Never lowers it: a promote's commit arriving after a newer one's must not leave the
    region committed to the newer epoch but synced to the older (it would refuse writes, and
    its replicas wait for it, until the next promote)."""
    conn.execute(
        "UPDATE meta SET value = ? WHERE name = 'synced' AND CAST(value AS INTEGER) < ?",
        (str(epoch), epoch),
    )


def prepare(conn: sqlite3.Connection, record: Record) -> bool:
    """Inside a transaction: accept ``record`` unless this voter has seen its epoch already
    (from another ballot). Accepting the same ballot again is a no-op that answers True."""
    state = read(conn)
    if state.pending is not None and state.pending.ballot == record.ballot:
        return True
    if state.committed.ballot == record.ballot:
        return True
    if state.top_epoch >= record.epoch:
        return False
    _set(conn, "pending", record.dumps())
    return True


def commit(conn: sqlite3.Connection, record: Record) -> VoterState:
    """Inside a transaction: ``record`` is committed (a majority prepared it)."""
    state = adopt(conn, read(conn), record)
    if state.pending is not None and state.pending.ballot == record.ballot:
        _set(conn, "pending", None)
        state = attrs.evolve(state, pending=None)
    return state


def retract(conn: sqlite3.Connection, record: Record) -> None:
    """Inside a transaction: forget ``record``'s prepare (its promote found no majority)."""
    state = read(conn)
    if state.pending is not None and state.pending.ballot == record.ballot:
        _set(conn, "pending", None)
