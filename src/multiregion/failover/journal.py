"""The journal of a runbook run: an append-only JSON-lines file, fsynced record by record.

Replaying the records gives the state of the run (finished steps, the shared state, granted
approvals, how it stopped), so a run killed at any point resumes where it stopped. A process
holds an exclusive ``flock`` on the file while it writes, so two processes never drive the same
run. A record torn by a crash (a last line without its newline) is dropped on the next open.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import attrs

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
    }
)
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


class Journal:
    """An open journal, locked by this process until ``close``; ``fresh=True`` empties it."""

    def __init__(self, path: str | os.PathLike[str], *, fresh: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()  # a step may log from threads of its own
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
        """Write one record and fsync it before returning."""
        if kind not in KINDS:
            raise InvalidInput("kind", f"{kind!r} is not a journal record kind")
        with self._lock:
            seq = len(self._records) + 1
            record = Record(seq, time.time(), kind, step, role, message, data)
            os.write(self._fd, record.to_line())
            os.fsync(self._fd)
            self._records.append(record)
        return record

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # also releases the lock
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


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
    outcome, runbook, steps, roles, dry_run = "new", None, (), {}, False
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
    return RunState(
        outcome=outcome,
        runbook=runbook,
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


def timeline(path: str | os.PathLike[str]) -> list[TimelineEntry]:
    """The timeline of the run journaled at ``path``, with the duration of each step attempt."""
    entries = []
    started: dict[str, float] = {}
    run_start: float | None = None
    for record in read_records(path):
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
