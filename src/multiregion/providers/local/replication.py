"""The on-disk side of the local store: one SQLite file per region, its oplog, and the pull.

Each region's database holds the items (each with its concurrent versions, deletes kept as
tombstones), an oplog of the writes that region accepted, a cursor per source region, the
fencing record (``fencing``), and a divergence log. Replication pulls: a target applies a
source's oplog entries in order and advances its cursor for that source in the same
transaction, so two processes replicating one store never apply an op twice.

In a single-writer store the write region's history is the truth. A region that learns of a
newer epoch re-syncs from a region already holding that epoch's history; writes of an older
epoch that the history does not hold (the old write region's unreplicated writes) are not
applied anywhere but logged as divergent, so nothing acknowledged disappears without a trace.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from multiregion.errors import Unavailable
from multiregion.model import ConflictPolicy, Item
from multiregion.providers.local import fencing
from multiregion.providers.local.topology import Topology
from multiregion.providers.local.versions import (
    Clock,
    Version,
    Write,
    actor,
    combine,
    dumps,
    settle,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    key TEXT PRIMARY KEY, value TEXT, version TEXT NOT NULL, updated_at REAL NOT NULL,
    region TEXT NOT NULL, writes TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS oplog (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, write TEXT NOT NULL,
    epoch INTEGER NOT NULL, written_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (source TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS divergence (
    actor TEXT NOT NULL, seq INTEGER NOT NULL, key TEXT NOT NULL, write TEXT NOT NULL,
    found_at REAL NOT NULL, resolution TEXT, PRIMARY KEY (actor, seq)
);
CREATE TABLE IF NOT EXISTS promotions (
    ballot TEXT PRIMARY KEY, record TEXT NOT NULL, reached INTEGER NOT NULL,
    voters INTEGER NOT NULL
);
"""

_PULL_PAGE = 500


# --------------------------------------------------------------------------- connections


class Databases:
    """One connection per region database, opened (and initialised) on first use."""

    def __init__(self, root: Path, initial_write_region: str, topology: Topology) -> None:
        self._root = root
        self._initial = initial_write_region
        self.topology = topology
        self._conns: dict[str, sqlite3.Connection] = {}

    def get(self, region: str) -> sqlite3.Connection:
        conn = self.up(region)
        if conn is None:
            raise Unavailable(f"region {region} is unavailable")
        return conn

    def up(self, region: str) -> sqlite3.Connection | None:
        """``region``'s connection, or None while the region is down."""
        if self.topology.is_down(region):
            return None
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
            fencing.initialise(conn, initial_write_region)
    except BaseException:
        conn.close()
        raise
    return conn


class transaction:
    """A write transaction taken up front, so that read-check-write sequences are atomic.

    A class rather than a generator: every write enters one, and this costs a third as much.
    """

    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")


@contextlib.contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """A read transaction: every read inside sees one state of the database."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        conn.execute("COMMIT")


# --------------------------------------------------------------------------- items

_SELECT = "SELECT key, value, version, updated_at, region, writes FROM items"


def _version(found: tuple[Any, ...]) -> Version:
    key, value, version, updated_at, region, writes = found
    document = None if value is None else json.loads(value)
    stored = json.loads(writes)
    if isinstance(stored, dict):  # one write, the row's own (see ``_writes``)
        write = Write(document, version, updated_at, region, stored["clock"], stored["epoch"])
        return Version(key, (write,), document, version, updated_at, region)
    return Version(
        key,
        tuple(Write.from_json(w) for w in stored),
        document,
        version,
        updated_at,
        region,
    )


def _writes(version: Version) -> str:
    """The ``writes`` column: a JSON list of the siblings, or for the usual single write that
    is the row's own value, version, time and region, only its clock and epoch (an object),
    so that a row holds its document once."""
    if len(version.writes) == 1:
        (write,) = version.writes
        if (write.value, write.version, write.updated_at, write.region) == (
            version.value,
            version.version,
            version.updated_at,
            version.region,
        ):
            return dumps({"clock": write.clock, "epoch": write.epoch})
    return dumps([w.to_json() for w in version.writes])


def read_version(conn: sqlite3.Connection, key: str) -> Version | None:
    found = conn.execute(_SELECT + " WHERE key = ?", (key,)).fetchone()
    return None if found is None else _version(found)


def read_item(conn: sqlite3.Connection, key: str) -> Item | None:
    """The live item a read sees, without decoding the versions behind it."""
    found = conn.execute(
        "SELECT value, version, updated_at, region FROM items WHERE key = ? AND value IS NOT NULL",
        (key,),
    ).fetchone()
    if found is None:
        return None
    value, version, updated_at, region = found
    return stored_item(key, json.loads(value), version, updated_at, region)


_READ_AT_WRITER = (
    "SELECT (SELECT value FROM meta WHERE name = 'committed'),"
    " i.value, i.version, i.updated_at, i.region"
    " FROM (SELECT 1) LEFT JOIN items AS i ON i.key = ? AND i.value IS NOT NULL"
)


def read_at_writer(conn: sqlite3.Connection, key: str) -> tuple[str, Item | None]:
    """The write region by this region's fencing record, and the live item (or None): one
    statement, so both come from one state of the database."""
    committed, value, version, updated_at, holder = conn.execute(_READ_AT_WRITER, (key,)).fetchone()
    writer = fencing.Record.loads(committed).region
    if value is None:
        return writer, None
    return writer, stored_item(key, json.loads(value), version, updated_at, holder)


def stored_item(key: str, value: dict[str, Any], version: str, at: float, region: str) -> Item:
    """An Item of what this store wrote, built without validating it again: the document was
    validated on its way in, and re-walking it on every read would cost as much as the read."""
    item: Item = _new_item(Item)
    _set(item, "key", key)
    _set(item, "value", value)
    _set(item, "version", version)
    _set(item, "updated_at", at)
    _set(item, "region", region)
    return item


_new_item = object.__new__
_set = object.__setattr__


def read_concurrent(conn: sqlite3.Connection) -> list[Version]:
    """Items holding more than one version (concurrent writes not superseded yet)."""
    rows = conn.execute(_SELECT + " WHERE writes LIKE '[{%},{%' ORDER BY key").fetchall()
    return [found for found in map(_version, rows) if len(found.writes) > 1]


def read_page(
    conn: sqlite3.Connection, prefix: str, after: str | None, limit: int
) -> list[Version]:
    """Items with keys starting with ``prefix``, after ``after``, in key (code point) order."""
    where = " WHERE key >= ?" if after is None else " WHERE key > ?"
    rows = conn.execute(
        _SELECT + where + " ORDER BY key LIMIT ?", (prefix if after is None else after, limit)
    ).fetchall()
    page = []
    for found in rows:
        if not found[0].startswith(prefix):
            break
        page.append(_version(found))
    return page


_INTO_ITEMS = (
    "INSERT OR REPLACE INTO items (key, value, version, updated_at, region, writes) VALUES "
)
_STORE = _INTO_ITEMS + "(?, ?, ?, ?, ?, ?)"


def _store(conn: sqlite3.Connection, version: Version) -> None:
    conn.execute(
        _STORE,
        (
            version.key,
            None if version.value is None else dumps(version.value),
            version.version,
            version.updated_at,
            version.region,
            _writes(version),
        ),
    )


@attrs.define
class Current:
    """What a write needs to know of its key in the write region, and of the region (not
    frozen: built on every write, and a frozen class's constructor costs twice as much)."""

    state: fencing.VoterState
    last_seq: int
    """The region's last oplog number (the write takes the next)."""
    live: bool = False
    """The key holds a value (not nothing, not a tombstone)."""
    version: str | None = None
    updated_at: float = 0.0
    clock: Clock = attrs.field(factory=dict)


_FOR_WRITE = (
    "SELECT "  # noqa: S608 (constant text: the key is a parameter)
    + fencing.COLUMNS
    + ", (SELECT seq FROM sqlite_sequence WHERE name = 'oplog'),"
    " i.value IS NOT NULL, i.version, i.updated_at, i.writes"
    " FROM (SELECT 1) LEFT JOIN items AS i ON i.key = ?"
)


def read_for_write(conn: sqlite3.Connection, key: str) -> Current:
    """Inside the write's transaction, in one statement: the region's fencing state, its last
    oplog number and the key's current version."""
    committed, pending, synced, seq, live, version, updated_at, writes = conn.execute(
        _FOR_WRITE, (key,)
    ).fetchone()
    state = fencing.state(committed, pending, synced)
    last = 0 if seq is None else int(seq)
    if version is None:
        return Current(state, last)
    clock = merged_clock_of(json.loads(writes))
    return Current(state, last, bool(live), version, updated_at, clock)


def merged_clock_of(writes: list[dict[str, Any]] | dict[str, Any]) -> Clock:
    """The clock of a ``writes`` column, without building the writes."""
    if isinstance(writes, dict):
        return dict(writes["clock"])
    clock: Clock = {}
    for write in writes:
        for region, count in write["clock"].items():
            clock[region] = max(clock.get(region, 0), count)
    return clock


def write_local(
    conn: sqlite3.Connection,
    region: str,
    epoch: int,
    key: str,
    value: dict[str, Any] | None,
    version: str,
    current: Current,
    *,
    unlogged: BlockSequence | None = None,
) -> tuple[Item | None, int]:
    """A write accepted by ``region`` (inside the caller's transaction): store it and log it.

    It supersedes every version the region holds, and its timestamp is kept above theirs, so
    a write that has seen another wins over it under last-writer-wins even if clocks step back.
    Returns the item written (None for a delete) and the write's oplog sequence number. The
    value is serialised once, and the write's JSON (as ``Write.to_json`` would give it) is
    built around it. With ``unlogged`` (a store of one region: nobody would ever pull the
    oplog), the write's number comes from that sequence and no oplog entry is written.
    """
    now = time.time()
    writer = actor(region, epoch)
    if unlogged is None:
        seq = current.last_seq + 1
    else:
        seq = unlogged.take(conn, current.last_seq, 1, current.clock.get(writer, 0))
    clock = dict(current.clock)
    clock[writer] = seq
    updated_at = now if current.version is None else max(now, current.updated_at + 1e-6)
    text = None if value is None else dumps(value)
    head = _clock_and_epoch(clock, epoch)
    conn.execute(_STORE, (key, text, version, updated_at, region, head))
    if unlogged is None:
        conn.execute(_LOG, (seq, key, _logged(head, region, updated_at, text, version), epoch, now))
    if value is None:
        return None, seq
    return stored_item(key, value, version, updated_at, region), seq


_INTO_OPLOG = "INSERT INTO oplog (seq, key, write, epoch, written_at) VALUES "
_LOG = _INTO_OPLOG + "(?, ?, ?, ?, ?)"


PARAMETERS = 999
"""The most parameters a statement takes in every SQLite (the limit before 3.32)."""


@functools.lru_cache(maxsize=256)
def _groups(width: int, count: int) -> str:
    """``count`` groups of ``width`` parameters, ``(?,?),(?,?)``: the rows of one statement."""
    return ",".join(["(" + ",".join("?" * width) + ")"] * count)


def _insert(conn: sqlite3.Connection, into: str, width: int, params: list[object]) -> None:
    """Rows of ``width`` parameters each (``params``, flattened) in as few statements as
    ``PARAMETERS`` allows: cheaper than ``executemany`` of one row (and an oplog's counter is
    updated once per statement, not per row)."""
    step = PARAMETERS // width * width
    for start in range(0, len(params), step):
        part = params[start : start + step]
        conn.execute(into + _groups(width, len(part) // width), part)


def _logged(head: str, region: str, updated_at: float, text: str | None, version: str) -> str:
    """The oplog's JSON of a write, ``dumps(write.to_json())``, built around the row's
    ``writes`` column (``head``) and its serialised value (``text``, None for a delete): region
    names and versions need no escaping."""
    return (
        f'{head[:-1]},"region":"{region}","updated_at":{updated_at!r},'
        f'"value":{text or "null"},"version":"{version}"}}'
    )


def _clock_and_epoch(clock: Clock, epoch: int) -> str:
    """``dumps({"clock": clock, "epoch": epoch})``, formatted directly: clock entries are
    region names (lowercase letters, digits and -), a slash and a number, nothing to escape."""
    entries = ",".join(f'"{entry}":{count}' for entry, count in sorted(clock.items()))
    return f'{{"clock":{{{entries}}},"epoch":{epoch}}}'


_STATE_FOR_BATCH = (
    "SELECT "  # noqa: S608 (constant text)
    + fencing.COLUMNS
    + ", (SELECT seq FROM sqlite_sequence WHERE name = 'oplog')"
)


def read_for_batch(
    conn: sqlite3.Connection, keys: list[str]
) -> tuple[fencing.VoterState, int, dict[str, tuple[float, str]]]:
    """Inside a batch's transaction: the region's fencing state and its last oplog number (one
    statement), and the time and ``writes`` column of each key that has a row (one statement
    per ``PARAMETERS`` keys)."""
    committed, pending, synced, seq = conn.execute(_STATE_FOR_BATCH).fetchone()
    found = {}
    for start in range(0, len(keys), PARAMETERS):
        part = keys[start : start + PARAMETERS]
        for key, updated_at, writes in conn.execute(
            f"SELECT key, updated_at, writes FROM items WHERE key IN ({_groups(1, len(part))})",  # noqa: S608
            part,
        ):
            found[key] = (updated_at, writes)
    return fencing.state(committed, pending, synced), 0 if seq is None else int(seq), found


def write_many(
    conn: sqlite3.Connection,
    region: str,
    epoch: int,
    writes: Sequence[tuple[str, dict[str, Any] | None]],
    versions: str,
    last_seq: int,
    found: dict[str, tuple[float, str]],
    *,
    unlogged: BlockSequence | None = None,
) -> int:
    """A batch of writes of distinct keys accepted by ``region`` (inside the caller's
    transaction, after ``read_for_batch`` gave ``last_seq`` and ``found``), each as
    ``write_local`` would write it, the rows and the oplog entries each with one statement
    per ``PARAMETERS`` parameters.
    ``versions``: the writes' versions, 32 characters each. Returns the last write's number.
    """
    now = time.time()
    writer = actor(region, epoch)
    clocks = {key: merged_clock_of(json.loads(found[key][1])) for key, _ in writes if key in found}
    if unlogged is None:
        first = last_seq + 1
    else:
        seen = max((clock.get(writer, 0) for clock in clocks.values()), default=0)
        first = unlogged.take(conn, last_seq, len(writes), seen)
    fresh = f'{{"clock":{{"{writer}":'  # the clock of a key without a row: the write alone
    logged = unlogged is None
    rows: list[object] = []
    ops: list[object] = []
    for number, (key, value) in enumerate(writes):
        seq = first + number
        clock = clocks.get(key)
        if clock is None:
            updated_at = now
            head = f'{fresh}{seq}}},"epoch":{epoch}}}'
        else:
            clock[writer] = seq
            updated_at = max(now, found[key][0] + 1e-6)
            head = _clock_and_epoch(clock, epoch)
        text = None if value is None else dumps(value)
        version = versions[number * 32 : number * 32 + 32]
        rows += (key, text, version, updated_at, region, head)
        if logged:
            ops += (seq, key, _logged(head, region, updated_at, text, version), epoch, now)
    _insert(conn, _INTO_ITEMS, 6, rows)
    if logged:
        _insert(conn, _INTO_OPLOG, 5, ops)
    return first + len(writes) - 1


class BlockSequence:
    """Write numbers of a region that logs no writes (a store of one region), reserved from the
    oplog's counter a block at a time: one write to the counter per block, not per write.

    Numbers stay unique across handles and processes (a block is reserved inside a write
    transaction, above every number reserved before) and grow along each key's chain of
    writes, which is all a clock needs where no other region compares them: a write whose
    next number is not above the key's takes a new block.
    """

    BLOCK = 1000

    def __init__(self) -> None:
        self._next = 1
        self._end = 0

    def take(self, conn: sqlite3.Connection, last_seq: int, count: int, seen: int) -> int:
        """The first of ``count`` consecutive numbers, inside the write's transaction:
        ``last_seq`` is the oplog's counter read there, ``seen`` the highest number of this
        writer in the clocks of the keys written."""
        first = self._next
        if first + count - 1 > self._end or first <= seen:
            first = last_seq + 1
            self._end = first + max(self.BLOCK, count) - 1
            if not conn.execute(
                "UPDATE sqlite_sequence SET seq = ? WHERE name = 'oplog'", (self._end,)
            ).rowcount:
                conn.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('oplog', ?)", (self._end,)
                )
        self._next = first + count
        return first

    def reset(self) -> None:
        """After a transaction that may have reserved a block rolled back: reserve anew."""
        self._end = 0


def _next_seq(conn: sqlite3.Connection) -> int:
    """The next oplog number, never reused even once older entries are trimmed."""
    found = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'oplog'").fetchone()
    return 1 if found is None else int(found[0]) + 1


def _apply(
    conn: sqlite3.Connection, key: str, incoming: list[Write], policy: ConflictPolicy
) -> bool:
    """Combine ``incoming`` into what the replica holds for ``key``; True if that changed."""
    current = read_version(conn, key)
    writes = combine(list(current.writes) if current else [], incoming)
    if current is not None and tuple(writes) == current.writes:
        return False
    _store(conn, settle(key, writes, policy))
    return True


# --------------------------------------------------------------------------- divergence


@attrs.frozen
class Divergent:
    """A write accepted under an epoch that a promote superseded before it replicated."""

    key: str
    write: Write
    found_at: float
    resolution: str | None


def _diverged(conn: sqlite3.Connection, key: str, write: Write) -> None:
    conn.execute(
        "INSERT OR IGNORE INTO divergence (actor, seq, key, write, found_at)"
        " VALUES (?, ?, ?, ?, ?)",
        (write.actor, write.seq, key, dumps(write.to_json()), time.time()),
    )


def divergence(conn: sqlite3.Connection) -> list[Divergent]:
    rows = conn.execute(
        "SELECT key, write, found_at, resolution FROM divergence ORDER BY found_at, actor, seq"
    ).fetchall()
    return [
        Divergent(key, Write.from_json(json.loads(write)), found_at, resolution)
        for key, write, found_at, resolution in rows
    ]


def resolve_divergence(conn: sqlite3.Connection, write: Write, resolution: str) -> None:
    conn.execute(
        "UPDATE divergence SET resolution = ? WHERE actor = ? AND seq = ?",
        (resolution, write.actor, write.seq),
    )


# --------------------------------------------------------------------------- pulling


def _cursor(conn: sqlite3.Connection, source: str) -> int:
    found = conn.execute("SELECT seq FROM cursors WHERE source = ?", (source,)).fetchone()
    return 0 if found is None else int(found[0])


@attrs.frozen
class Pulled:
    applied: int = 0
    fenced: int = 0
    resynced: bool = False

    @property
    def anything(self) -> bool:
        return bool(self.applied or self.fenced or self.resynced)


def pull(
    target: sqlite3.Connection,
    source: sqlite3.Connection,
    source_region: str,
    *,
    min_age_s: float,
    policy: ConflictPolicy,
    single_writer: bool,
) -> Pulled:
    """Bring ``target`` up to date with ``source``'s ops at least ``min_age_s`` old.

    A newer committed fencing record at the source is adopted first. In a single-writer store,
    a target behind the newest epoch re-syncs from the source if the source holds that epoch's
    history (and waits otherwise); ops of an older epoch are applied only if the history already
    has them, else logged as divergent.
    """
    applied = fenced = 0
    if _nothing_due(target, source, source_region, single_writer, time.time() - min_age_s):
        return Pulled()
    while True:
        cutoff = time.time() - min_age_s
        theirs = fencing.read(source)
        with transaction(target):
            ours = fencing.adopt(target, fencing.read(target), theirs.committed)
            epoch = ours.committed.epoch
            if single_writer and not ours.is_synced:
                if theirs.is_synced and theirs.committed.rank == ours.committed.rank:
                    resync(target, source, source_region, epoch)
                    return Pulled(applied, fenced, resynced=True)
                return Pulled(applied, fenced)
            seq = _cursor(target, source_region)
            ops = source.execute(
                "SELECT seq, key, write, written_at FROM oplog WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, _PULL_PAGE),
            ).fetchall()
            done = 0
            for op_seq, key, text, written_at in ops:
                if written_at > cutoff:
                    break
                seq = op_seq
                done += 1
                write = Write.from_json(json.loads(text))
                if single_writer and write.epoch < epoch:
                    current = read_version(target, key)
                    if current is None or not write.seen_by(current.clock):
                        _diverged(target, key, write)
                        fenced += 1
                elif _apply(target, key, [write], policy):
                    applied += 1
            if done:
                target.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?)", (source_region, seq))
        if done < _PULL_PAGE:
            return Pulled(applied, fenced)


def _nothing_due(
    target: sqlite3.Connection,
    source: sqlite3.Connection,
    source_region: str,
    single: bool,
    cutoff: float,
) -> bool:
    """Answered by reads alone, so that idle replicators take no write lock."""
    theirs, ours = fencing.read(source), fencing.read(target)
    if theirs.committed.rank > ours.committed.rank or (single and not ours.is_synced):
        return False
    written = oldest_pending(target, source, source_region)
    return written is None or written > cutoff


def resync(
    target: sqlite3.Connection, source: sqlite3.Connection, source_region: str, epoch: int
) -> None:
    """Inside ``target``'s transaction: replace its items with ``source``'s, which hold the
    history of ``epoch``; writes only ``target`` had are logged as divergent first."""
    with snapshot(source):
        found = source.execute("SELECT seq FROM sqlite_sequence WHERE name = 'oplog'").fetchone()
        upto = 0 if found is None else int(found[0])
        for found_row in target.execute(_SELECT).fetchall():
            ours = _version(found_row)
            theirs = read_version(source, ours.key)
            clock = {} if theirs is None else theirs.clock
            for write in ours.writes:
                if not write.seen_by(clock):
                    _diverged(target, ours.key, write)
        target.execute("DELETE FROM items")
        for found_row in source.execute(_SELECT):
            _store(target, _version(found_row))
    target.execute("INSERT OR REPLACE INTO cursors VALUES (?, ?)", (source_region, upto))
    fencing.mark_synced(target, epoch)


def absorb(
    target: sqlite3.Connection, source: sqlite3.Connection, policy: ConflictPolicy, epoch: int
) -> int:
    """Combine every version ``source`` holds into ``target`` (a promote's catch-up: the new
    write region takes whatever any reachable replica received). Returns how many changed.

    Only while ``epoch`` is not committed yet: once it is, ``target``'s items are the history
    that other regions copy, and nothing may enter them except through the oplog.
    """
    changed = 0
    with snapshot(source), transaction(target):
        if fencing.read(target).committed.epoch >= epoch:
            return 0
        for found_row in source.execute(_SELECT):
            theirs = _version(found_row)
            changed += _apply(target, theirs.key, list(theirs.writes), policy)
    return changed


# --------------------------------------------------------------------------- state


def digest(conn: sqlite3.Connection) -> str:
    """A digest of the live content (keys, values, versions): equal replicas, equal digests."""
    hasher = hashlib.sha256()
    with snapshot(conn):
        for key, value, version in conn.execute(
            "SELECT key, value, version FROM items WHERE value IS NOT NULL ORDER BY key"
        ):
            hasher.update(dumps([key, value, version]).encode())
    return hasher.hexdigest()


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


def last_seq(conn: sqlite3.Connection) -> int:
    return _next_seq(conn) - 1


def trim(source: sqlite3.Connection, upto: int) -> int:
    """Forget the oplog entries up to ``upto``, which every other region has applied.

    Sequence numbers never repeat (AUTOINCREMENT), so cursors stay valid after a trim.
    """
    oldest = source.execute("SELECT min(seq) FROM oplog").fetchone()[0]
    if oldest is None or oldest > upto:
        return 0  # without taking the write lock: replicators call this every pass
    with transaction(source):
        return int(source.execute("DELETE FROM oplog WHERE seq <= ?", (upto,)).rowcount)


def record_promotion(
    conn: sqlite3.Connection, record: fencing.Record, reached: int, voters: int
) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO promotions VALUES (?, ?, ?, ?)",
        (record.ballot, record.dumps(), reached, voters),
    )


def promotions(conn: sqlite3.Connection) -> list[tuple[fencing.Record, int, int]]:
    rows = conn.execute("SELECT record, reached, voters FROM promotions").fetchall()
    return [(fencing.Record.loads(record), reached, voters) for record, reached, voters in rows]
