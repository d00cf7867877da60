"""What happened: each operation's invocation and completion, as the clients saw them."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import attrs

Outcome = Literal["ok", "fail", "info"]
"""ok: acknowledged; fail: refused, definitely not done; info: unknown (error or killed)."""


@attrs.define
class Op:
    process: str
    kind: Literal["put", "promote"]
    invoked_at: float
    key: str = ""
    version: str = ""
    epoch: int = 0
    """The token's epoch a put was sent with, or the epoch a promote issued."""
    region: str = ""
    batch: str = ""
    """The ``put_many`` a put was one key of (its version is then unknown), or empty."""
    completed_at: float | None = None
    outcome: Outcome = "info"
    forced: bool = False
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


class History:
    """A thread-safe log of operations; process workers append JSON lines to a file instead."""

    def __init__(self, ops: Iterable[Op] = ()) -> None:
        self._lock = threading.Lock()
        self.ops: list[Op] = list(ops)

    def invoke(self, process: str, kind: Literal["put", "promote"], **fields: Any) -> Op:
        op = Op(process, kind, time.time(), **fields)
        with self._lock:
            self.ops.append(op)
        return op

    @staticmethod
    def complete(op: Op, outcome: Outcome, **fields: Any) -> None:
        for name, value in fields.items():
            setattr(op, name, value)
        op.outcome = outcome
        op.completed_at = time.time()

    @classmethod
    def read(cls, paths: Iterable[Path]) -> History:
        """Histories of worker processes: one JSON line per invocation, another on completion
        (a process killed in between leaves the operation ``info``)."""
        ops: dict[tuple[str, int], Op] = {}
        for path in paths:
            if not path.exists():
                continue
            for line in path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:  # the last line of a killed writer may be cut short
                    continue
                ident = (entry.pop("process"), entry.pop("n"))
                if ident in ops:
                    op = ops[ident]
                    for name, value in entry.items():
                        setattr(op, name, value)
                else:
                    ops[ident] = Op(ident[0], **entry)
        return cls(ops.values())
