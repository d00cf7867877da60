"""The on-disk side of the local store: one SQLite file per region, its oplog, and the pull.

Each region's database holds the items (deletes kept as tombstones), an oplog of the writes that
region accepted, a cursor per source region, and the fencing meta (epoch, write region).
Replication pulls: a target applies a source's oplog entries in order and advances its cursor for
that source in the same transaction, so two processes replicating one store never apply an op
twice. Every item carries a vector clock, so an op that a replica has already seen (directly or
through a later write) is skipped, and concurrent writes are resolved by the conflict policy the
same way in every replica.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from multiregion import validate
from multiregion.errors import Unavailable
from multiregion.model import ConflictPolicy, Item, Merge

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY, value TEXT, version TEXT NOT NULL, updated_at REAL NOT NULL,
    region TEXT NOT NULL, clock TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS oplog (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, value TEXT, version TEXT NOT NULL,
    updated_at REAL NOT NULL, clock TEXT NOT NULL, epoch INTEGER NOT NULL,
    written_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (source TEXT PRIMARY KEY, seq INTEGER NOT NULL);
"""

_PULL_PAGE = 500
Clock = dict[str, int]


@attrs.frozen
class Row:
    """A stored item, or a tombstone (``value`` None) that keeps a delete's place in history."""

    key: str
    value: dict[str, Any] | None
    version: str
    updated_at: float
    region: str
    clock: Clock

    def item(self) -> Item:
        assert self.value is not None
        return Item(self.key, self.value, self.version, self.updated_at, self.region)


@attrs.frozen
class Meta:
    epoch: int
    write_region: str


# --------------------------------------------------------------------------- connections


class Databases:
    """One connection per region database, opened (and initialised) on first use.

    A region is down while its marker file exists, so every process sharing the directory
    sees the same outage.
    """

    def __init__(self, root: Path, initial_write_region: str) -> None:
        self._root = root
        self._initial = initial_write_region
        self._conns: dict[str, sqlite3.Connection] = {}

    def marker(self, region: str) -> Path:
        return self._root / f"{region}.down"

    def is_down(self, region: str) -> bool:
        return self.marker(region).exists()

    def get(self, region: str) -> sqlite3.Connection:
        if self.is_down(region):
            raise Unavailable(f"region {region} is unavailable")
        conn = self._conns.get(region)
        if conn is None:
            conn = _connect(self._root / f"{region}.db", self._initial)
            self._conns[region] = conn
        return conn

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


def _connect(path: Path, initial_write_region: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        with transaction(conn):
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(
                "INSERT OR IGNORE INTO meta VALUES ('epoch', '1'), ('write_region', ?)",
                (initial_write_region,),
            )
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction taken up front, so that read-check-write sequences are atomic."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


# --------------------------------------------------------------------------- meta and rows


def read_meta(conn: sqlite3.Connection) -> Meta:
    values = dict(conn.execute("SELECT name, value FROM meta").fetchall())
    return Meta(int(values["epoch"]), values["write_region"])


def write_meta(conn: sqlite3.Connection, meta: Meta) -> None:
    conn.execute("UPDATE meta SET value = ? WHERE name = 'epoch'", (str(meta.epoch),))
    conn.execute("UPDATE meta SET value = ? WHERE name = 'write_region'", (meta.write_region,))


def _row(found: tuple[Any, ...]) -> Row:
    key, value, version, updated_at, region, clock = found
    document = None if value is None else json.loads(value)
    return Row(key, document, version, updated_at, region, json.loads(clock))


_SELECT = "SELECT key, value, version, updated_at, region, clock FROM items"


def read_row(conn: sqlite3.Connection, key: str) -> Row | None:
    found = conn.execute(_SELECT + " WHERE key = ?", (key,)).fetchone()
    return None if found is None else _row(found)


def read_page(conn: sqlite3.Connection, prefix: str, after: str | None, limit: int) -> list[Row]:
    """Live items with keys starting with ``prefix``, after ``after``, in key (code point) order."""
    where = " WHERE key >= ?" if after is None else " WHERE key > ?"
    rows = conn.execute(
        _SELECT + where + " ORDER BY key LIMIT ?", (prefix if after is None else after, limit)
    ).fetchall()
    page = []
    for found in rows:
        if not found[0].startswith(prefix):
            break
        page.append(_row(found))
    return page


def _store_row(conn: sqlite3.Connection, row: Row) -> None:
    value = None if row.value is None else _dumps(row.value)
    conn.execute(
        "INSERT OR REPLACE INTO items (key, value, version, updated_at, region, clock)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (row.key, value, row.version, row.updated_at, row.region, _dumps(row.clock)),
    )


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def write_local(
    conn: sqlite3.Connection,
    region: str,
    epoch: int,
    key: str,
    value: dict[str, Any] | None,
    version: str,
    current: Row | None,
) -> Row:
    """A write accepted by ``region`` (inside the caller's transaction): store it and log it.

    Its timestamp is kept above the one it replaces, so a write that has seen another always
    wins over it under last-writer-wins even if clocks step back.
    """
    now = time.time()
    clock = dict(current.clock) if current else {}
    clock[region] = clock.get(region, 0) + 1
    updated_at = max(now, current.updated_at + 1e-6) if current else now
    row = Row(key, value, version, updated_at, region, clock)
    _store_row(conn, row)
    conn.execute(
        "INSERT INTO oplog (key, value, version, updated_at, clock, epoch, written_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            key,
            None if value is None else _dumps(value),
            version,
            updated_at,
            _dumps(clock),
            epoch,
            now,
        ),
    )
    return row


# --------------------------------------------------------------------------- conflicts


def _dominates(a: Clock, b: Clock) -> bool:
    """True when ``a`` has seen everything ``b`` has."""
    return all(a.get(region, 0) >= count for region, count in b.items())


def resolve(local: Row | None, incoming: Row, policy: ConflictPolicy) -> Row | None:
    """What a replica holding ``local`` stores on receiving ``incoming``; None to keep ``local``.

    For two concurrent writes the result is the same whichever arrives first, so every replica
    converges (given a commutative merge function).
    """
    if local is None or _dominates(incoming.clock, local.clock):
        return None if local is not None and local.clock == incoming.clock else incoming
    if _dominates(local.clock, incoming.clock):
        return None
    clock = {
        r: max(local.clock.get(r, 0), incoming.clock.get(r, 0))
        for r in {*local.clock, *incoming.clock}
    }
    winner = max(local, incoming, key=lambda row: (row.updated_at, row.region))
    if not isinstance(policy, Merge) or local.value is None or incoming.value is None:
        return attrs.evolve(winner, clock=clock)
    merged = validate.document("merge", policy.merge(local.item(), incoming.item()))
    digest = hashlib.sha256(_dumps([sorted([local.version, incoming.version]), clock]).encode())
    return attrs.evolve(winner, value=merged, version="m" + digest.hexdigest()[:31], clock=clock)


# --------------------------------------------------------------------------- pulling


def _cursor(conn: sqlite3.Connection, source: str) -> int:
    found = conn.execute("SELECT seq FROM cursors WHERE source = ?", (source,)).fetchone()
    return 0 if found is None else int(found[0])


def pull(
    target: sqlite3.Connection,
    source: sqlite3.Connection,
    source_region: str,
    *,
    min_age_s: float,
    policy: ConflictPolicy,
    drop_fenced: bool,
) -> int:
    """Apply ``source``'s ops at least ``min_age_s`` old that ``target`` lacks; returns how many.

    A newer fencing epoch at the source is adopted first. With ``drop_fenced``, ops written
    under an epoch older than the target's are skipped (a fenced primary's writes are lost).
    """
    applied = 0
    while True:
        cutoff = time.time() - min_age_s
        source_meta = read_meta(source)
        with transaction(target):
            meta = read_meta(target)
            if source_meta.epoch > meta.epoch:
                meta = source_meta
                write_meta(target, meta)
            seq = _cursor(target, source_region)
            ops = source.execute(
                "SELECT seq, key, value, version, updated_at, clock, epoch, written_at"
                " FROM oplog WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, _PULL_PAGE),
            ).fetchall()
            done = 0
            for op_seq, key, value, version, updated_at, clock, epoch, written_at in ops:
                if written_at > cutoff:
                    break
                seq = op_seq
                done += 1
                if drop_fenced and epoch < meta.epoch:
                    continue
                document = None if value is None else json.loads(value)
                incoming = Row(key, document, version, updated_at, source_region, json.loads(clock))
                chosen = resolve(read_row(target, key), incoming, policy)
                if chosen is not None:
                    _store_row(target, chosen)
                    applied += 1
            if done:
                target.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?)", (source_region, seq))
        if done < _PULL_PAGE:
            return applied


def oldest_pending(
    target: sqlite3.Connection, source: sqlite3.Connection, region: str
) -> float | None:
    """When the oldest op of ``source`` that ``target`` has not applied was written, if any."""
    found = source.execute(
        "SELECT written_at FROM oplog WHERE seq > ? ORDER BY seq LIMIT 1",
        (_cursor(target, region),),
    ).fetchone()
    return None if found is None else float(found[0])


def applied_upto(target: sqlite3.Connection, source_region: str) -> int:
    """The last op of ``source_region`` that ``target`` has applied."""
    return _cursor(target, source_region)


def trim(source: sqlite3.Connection, upto: int) -> int:
    """Forget the oplog entries up to ``upto``, which every other region has applied.

    Sequence numbers never repeat (AUTOINCREMENT), so cursors stay valid after a trim.
    """
    with transaction(source):
        return int(source.execute("DELETE FROM oplog WHERE seq <= ?", (upto,)).rowcount)
