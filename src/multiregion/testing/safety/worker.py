"""A writer in a process of its own, which the nemesis kills with SIGKILL.

``python -m multiregion.testing.safety.worker SETTINGS NAME HISTORY SEED`` opens its own store
handle (with its own replicator) and writes until killed; each invocation and completion is a
line in its history file, written before and after the operation.
"""

from __future__ import annotations

import json
import random
import sys
import threading
from pathlib import Path
from typing import Any

from multiregion.model import Merge
from multiregion.providers.local.store import LocalStore
from multiregion.testing.safety.history import History, Op
from multiregion.testing.safety.workload import union, write_loop


class FileHistory(History):
    """A worker process's history: each invocation and completion is a line, flushed."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = path.open("a", buffering=1)
        self._numbers: dict[int, int] = {}

    def invoke(self, process: str, kind: Any, **fields: Any) -> Op:
        op = super().invoke(process, kind, **fields)
        self._numbers[id(op)] = len(self.ops)
        self._write(op, op.to_json())
        return op

    def complete(self, op: Op, outcome: Any, **fields: Any) -> None:  # type: ignore[override]
        History.complete(op, outcome, **fields)
        self._write(op, {"completed_at": op.completed_at, "outcome": outcome, **fields})

    def _write(self, op: Op, entry: dict[str, Any]) -> None:
        entry = {**entry, "process": op.process, "n": self._numbers[id(op)]}
        self._file.write(json.dumps(entry) + "\n")


def main(argv: list[str]) -> None:
    settings, name, path, seed = json.loads(argv[0]), argv[1], Path(argv[2]), int(argv[3])
    batch_share = settings.pop("batch_share", 0.0)
    if settings.pop("merge", False):
        settings["conflict_policy"] = Merge(union)
    store = LocalStore(**settings)
    history = FileHistory(path)
    write_loop(store, history, name, threading.Event(), random.Random(seed), batch_share)


if __name__ == "__main__":
    main(sys.argv[1:])
