"""LocalStore get/put/delete against raw sqlite3, and its put_many against a put loop.

The raw side is what an application would write by hand on one SQLite file with the store's
own settings (WAL, ``synchronous=NORMAL``, autocommit): one statement per operation, the
document as JSON and a fresh version beside it. The main comparison is a store of one region,
so nothing replicates; what it costs beyond the raw side is its own bookkeeping. Then the
fencing modes (``benches.sides.MODES``) side by side: the one-region store with a write lease,
and a store of three regions (replicator off, so that only the write path is timed: the
fencing confirmation and the oplog) in strict mode, where each write reads the two other
voters' fencing records, and with a lease, where it reads them once per lease; each with its
``put_many`` against a put loop too, since a store of several regions also logs each write.

    python -m benches.local_store [--n 2000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import uuid
from pathlib import Path
from typing import Any

from benches.sides import MODES, in_modes, store_all, store_crud
from multiregion.errors import NotFound
from multiregion.providers.local.store import LocalStore

REGION = "region-a"


class RawSqlite:
    """One table, one statement per call."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("CREATE TABLE items (k TEXT PRIMARY KEY, doc TEXT, version TEXT)")

    def put(self, key: str, value: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO items VALUES (?, ?, ?)",
            (key, json.dumps(value, separators=(",", ":")), uuid.uuid4().hex),
        )

    def get(self, key: str) -> tuple[Any, str]:
        row = self.conn.execute("SELECT doc, version FROM items WHERE k = ?", (key,)).fetchone()
        if row is None:
            raise NotFound(key)
        return json.loads(row[0]), row[1]

    def delete(self, key: str) -> None:
        if self.conn.execute("DELETE FROM items WHERE k = ?", (key,)).rowcount != 1:
            raise NotFound(key)


THREE = [REGION, "region-b", "region-c"]


def main(n: int = 2000, batch: int = 1000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-local-") as tmp:
        raw = RawSqlite(Path(tmp) / "raw.sqlite")
        with LocalStore(Path(tmp) / "store", [REGION]) as store:
            figures: dict[str, Any] = store_all("local store", store, raw, n=n, batch=batch)
        with LocalStore(Path(tmp) / "leased", [REGION], **MODES["lease"]) as store:
            figures["lease"] = store_crud("local store lease", store, raw, n=n)

        def three_regions(**settings: Any) -> LocalStore:
            folder = tempfile.mkdtemp(dir=tmp)
            return LocalStore(folder, THREE, replicate=False, **settings)

        figures["three_regions"] = in_modes(
            three_regions,
            lambda mode, store: store_all(
                f"local store 3 regions {mode}", store, raw, n=n, batch=batch
            ),
        )
        raw.conn.close()
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    main(args.n, args.batch)
