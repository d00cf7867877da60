"""The journal of a runbook run: an append-only list of records, and what replaying it says.

Replaying the records gives the state of the run (finished steps, the shared state, granted
approvals, who holds each role, how it stopped), so a run killed at any point resumes where it
stopped. Where the records live is a ``JournalLocation``: ``FileJournal`` (here) is a JSON-lines
file, fsynced record by record, that a process holds an exclusive ``flock`` on while it writes,
so two processes never drive the same run; a record torn by a crash (a last line without its
newline) is dropped on the next open. ``multiregion.failover.shared_journal`` keeps them in the
deployment's replicated store or bucket instead, so that another region can resume the run.
"""

from __future__ import annotations

import abc
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs

from multiregion.closing import Closing
from multiregion.errors import CorruptData, InvalidInput, PreconditionFailed

KINDS = frozenset(
    {
        "run-started",
        "run-resumed",
        "step-started",
        "step-finished",
        "step-failed",
        "approval-waiting",
        "approval-granted",
        "approval-denied",
        "plan",
        "note",
        "run-stopped",
        "run-finished",
        "role-assigned",
        "role-handed-over",
        "move",
    }
)
SIDE_KINDS = frozenset({"note", "role-assigned", "role-handed-over"})
"""Records anyone may add while a run goes on (a hand-over from another terminal); every other
kind is written only by the process driving the run."""
DRY_RUN_SUFFIX = ".dry-run"


class JournalConflict(PreconditionFailed):
    """The journal cannot be used as asked: in use by another process, written for another
    runbook, already finished, or unfinished when a fresh run was asked for."""


@attrs.frozen
class Record:
    seq: int
    at: float
    kind: str
    step: str | None = None
    role: str | None = None
    message: str = ""
    data: Mapping[str, Any] = attrs.field(factory=dict, hash=False)

    def to_line(self) -> bytes:
        return json.dumps(attrs.asdict(self), sort_keys=True, allow_nan=False).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes, where: str) -> Record:
        try:
            fields = json.loads(line)
            record = cls(**fields)
        except (ValueError, TypeError) as exc:
            raise CorruptData(f"{where}: not a journal record ({exc})") from exc
        if record.kind not in KINDS:
            raise CorruptData(f"{where}: unknown record kind {record.kind!r}")
        return record


def dry_run_path(path: str | os.PathLike[str]) -> Path:
    """Where the dry run of the journal at ``path`` is written: never the real journal."""
    real = Path(path)
    return real.with_name(real.name + DRY_RUN_SUFFIX)


def _parse(raw: bytes, path: Path) -> list[Record]:
    """Records of complete lines; a torn last line (no newline) is ignored."""
    lines = raw.split(b"\n")[:-1]
    return [Record.from_line(line, f"{path}:{number}") for number, line in enumerate(lines, 1)]


def read_records(path: str | os.PathLike[str]) -> list[Record]:
    """The records of a journal, read without taking its lock (for inspection and timelines)."""
    journal = Path(path)
    try:
        raw = journal.read_bytes()
    except FileNotFoundError:
        return []
    return _parse(raw, journal)


class OpenJournal(Closing):
    """A journal open for writing: its records so far, and ``append`` to add one durably."""

    name: str
    _records: list[Record]
    _lock: threading.Lock  # a step may log from threads of its own

    @property
    def records(self) -> tuple[Record, ...]:
        return tuple(self._records)

    def append(
        self,
        kind: str,
        *,
        step: str | None = None,
        role: str | None = None,
        message: str = "",
        **data: Any,
    ) -> Record:
        """Write one record durably, numbered after the records so far."""
        with self._lock:
            while True:
                record = new_record(len(self._records) + 1, kind, step, role, message, data)
                if self._write(record):
                    self._records.append(record)
                    return record

    @abc.abstractmethod
    def _write(self, record: Record) -> bool:
        """Store ``record``; False when its number was taken and ``_records`` caught up."""

    @abc.abstractmethod
    def close(self) -> None: ...


class JournalLocation(Protocol):
    """Where a run's journal is kept: a file, a store key, a bucket prefix."""

    @property
    def name(self) -> str:
        """How the journal is shown (never a secret)."""
        ...

    def open(self, *, fresh: bool = False) -> OpenJournal:
        """Open for writing; ``fresh=True`` empties it first."""
        ...

    def read(self) -> list[Record]:
        """The records, read without taking the journal (for inspection and reports)."""
        ...

    def dry_run(self) -> JournalLocation:
        """Where the dry run of this journal is written: never the real journal."""
        ...


def new_record(
    seq: int, kind: str, step: str | None, role: str | None, message: str, data: Mapping[str, Any]
) -> Record:
    if kind not in KINDS:
        raise InvalidInput("kind", f"{kind!r} is not a journal record kind")
    return Record(seq, time.time(), kind, step, role, message, data)


@attrs.frozen
class FileJournal:
    """A journal in a local JSON-lines file: the default on the local provider."""

    path: Path = attrs.field(converter=Path)

    @property
    def name(self) -> str:
        return str(self.path)

    def open(self, *, fresh: bool = False) -> Journal:
        return Journal(self.path, fresh=fresh)

    def read(self) -> list[Record]:
        return read_records(self.path)

    def dry_run(self) -> FileJournal:
        return FileJournal(dry_run_path(self.path))


def location(target: str | os.PathLike[str] | JournalLocation) -> JournalLocation:
    """A journal location; a path means a ``FileJournal``."""
    if isinstance(target, str | os.PathLike):
        return FileJournal(Path(target))
    if not all(callable(getattr(target, name, None)) for name in ("open", "read", "dry_run")):
        raise InvalidInput("journal", "must be a path or a JournalLocation")
    return target


class Journal(OpenJournal):
    """An open journal file, locked by this process until ``close``; ``fresh=True`` empties it."""

    def __init__(self, path: str | os.PathLike[str], *, fresh: bool = False) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self._lock = threading.Lock()
        try:  # a fresh deployment has no journal folder yet
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInput("journal_path", f"cannot create folder {self.path.parent}") from exc
        existed = self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise JournalConflict(f"journal {self.path} is in use by another process") from None
        try:
            if not existed:
                _fsync_dir(self.path.parent)
            self._records = [] if fresh else self._load()
            if fresh:
                os.ftruncate(self._fd, 0)
        except BaseException:
            self.close()
            raise

    def _load(self) -> list[Record]:
        raw = self.path.read_bytes()
        records = _parse(raw, self.path)
        if raw and not raw.endswith(b"\n"):
            os.ftruncate(self._fd, raw.rfind(b"\n") + 1)
        return records

    def _write(self, record: Record) -> bool:
        os.write(self._fd, record.to_line())
        os.fsync(self._fd)
        return True

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # also releases the lock
            self._fd = -1


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- replay


@attrs.frozen
class RunState:
    """What a journal says about its run.

    ``outcome``: "new" (no records), "interrupted" (started or resumed and not stopped: the
    process died, or is still running), "failed", "denied", "awaiting-approval" or "finished".
    """

    outcome: str
    runbook: str | None = None
    run_id: str | None = None
    steps: tuple[str, ...] = ()
    roles: Mapping[str, str] = attrs.field(factory=dict, hash=False)
    dry_run: bool = False
    finished_steps: tuple[str, ...] = ()
    state: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    attempts: Mapping[str, int] = attrs.field(factory=dict, hash=False)
    granted: frozenset[str] = frozenset()
    stopped_at: str | None = None
    error: str | None = None


def replay(records: Iterable[Record]) -> RunState:
    outcome, runbook, run_id, steps, dry_run = "new", None, None, (), False
    roles: dict[str, str] = {}
    finished: list[str] = []
    state: dict[str, Any] = {}
    attempts: dict[str, int] = {}
    granted: set[str] = set()
    stopped_at: str | None = None
    error: str | None = None
    for record in records:
        kind, data = record.kind, record.data
        if kind == "run-started":
            runbook, steps = data.get("runbook"), tuple(data.get("steps", ()))
            run_id = data.get("run_id")
            roles, dry_run = dict(data.get("roles", {})), bool(data.get("dry_run", False))
            outcome = "interrupted"
        elif kind == "run-resumed":
            outcome, error = "interrupted", None
        elif kind == "step-started" and record.step is not None:
            attempts[record.step] = attempts.get(record.step, 0) + 1
            stopped_at = record.step
        elif kind == "step-finished" and record.step is not None:
            finished.append(record.step)
            state = dict(data.get("state", state))
            stopped_at = None
        elif kind == "approval-granted" and record.step is not None:
            granted.add(record.step)
        elif kind == "run-stopped":
            outcome, stopped_at = str(data.get("outcome", "failed")), record.step
            error = record.message
        elif kind == "run-finished":
            outcome, stopped_at = "finished", None
        elif kind in ("role-assigned", "role-handed-over") and record.role is not None:
            roles[record.role] = str(data.get("person"))
    return RunState(
        outcome=outcome,
        runbook=runbook,
        run_id=run_id,
        steps=steps,
        roles=roles,
        dry_run=dry_run,
        finished_steps=tuple(finished),
        state=state,
        attempts=attempts,
        granted=frozenset(granted),
        stopped_at=stopped_at,
        error=error,
    )


# --------------------------------------------------------------------------- timeline


@attrs.frozen
class TimelineEntry:
    """One line of a run's timeline; ``duration_s`` is set on the end of a step or run."""

    at: float
    kind: str
    step: str | None
    role: str | None
    message: str
    duration_s: float | None = None


def timeline(journal: str | os.PathLike[str] | JournalLocation) -> list[TimelineEntry]:
    """The timeline of the run journaled at ``journal``, with the duration of each step attempt."""
    entries = []
    started: dict[str, float] = {}
    run_start: float | None = None
    for record in location(journal).read():
        duration = None
        if record.kind == "run-started":
            run_start = record.at
        elif record.kind == "step-started" and record.step is not None:
            started[record.step] = record.at
        elif record.kind in ("step-finished", "step-failed") and record.step in started:
            duration = record.at - started.pop(record.step)
        elif record.kind == "run-finished" and run_start is not None:
            duration = record.at - run_start
        entries.append(
            TimelineEntry(
                record.at, record.kind, record.step, record.role, record.message, duration
            )
        )
    return entries


def render_timeline(entries: Iterable[TimelineEntry]) -> str:
    """Plain text, one line per entry: UTC time, time since the first entry, kind, step, role,
    duration and message."""
    lines = []
    first: float | None = None
    for entry in entries:
        first = entry.at if first is None else first
        clock = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(entry.at))
        took = f"{entry.duration_s:.1f}s" if entry.duration_s is not None else ""
        lines.append(
            f"{clock}Z +{entry.at - first:8.1f}s  {entry.kind:<16} {entry.step or '-':<20} "
            f"{entry.role or '-':<20} {took:>8}  {entry.message}".rstrip()
        )
    return "\n".join(lines)


def writer_id() -> str:
    """Who writes a driving record: host and process, which tell regions apart in a journal."""
    return f"{os.uname().nodename}:{os.getpid()}"
