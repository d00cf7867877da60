"""Which regions of a local store are up and which can reach each other.

Outages and partitions are files in the store's directory, so every process that opens the
store sees the same faults: ``<region>.down`` marks a region down for everybody; a line
``a b`` in ``partitions`` cuts the link between two regions (replication and fencing between
them stop) while clients still reach both, as users still reach a region whose replication
link is cut.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

_PARTITIONS = "partitions"


class Topology:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._cuts: frozenset[frozenset[str]] = frozenset()
        self._stamp: tuple[int, int, int] | None = None
        self._markers: dict[str, str] = {}

    def marker(self, region: str) -> Path:
        return self._root / f"{region}.down"

    def is_down(self, region: str) -> bool:
        """One system call per call (every operation asks), on a path built once per region:
        ``access`` rather than ``stat``, which builds a result nobody reads."""
        path = self._markers.get(region)
        if path is None:
            path = self._markers[region] = str(self.marker(region))
        return os.access(path, os.F_OK)

    def fail(self, region: str) -> None:
        self.marker(region).touch()

    def heal(self, region: str) -> None:
        self.marker(region).unlink(missing_ok=True)

    def cuts(self) -> frozenset[frozenset[str]]:
        """The cut links, re-read only when the file changed."""
        path = self._root / _PARTITIONS
        try:
            stat = path.stat()
        except FileNotFoundError:
            self._stamp, self._cuts = None, frozenset()
            return self._cuts
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            pairs = (line.split() for line in path.read_text().splitlines())
            self._cuts = frozenset(frozenset(pair) for pair in pairs if len(pair) == 2)
            self._stamp = stamp
        return self._cuts

    def reachable(self, origin: str, other: str) -> bool:
        """``other`` answers ``origin``: both up and the link between them not cut."""
        if self.is_down(other) or self.is_down(origin):
            return False
        return origin == other or frozenset((origin, other)) not in self.cuts()

    def partition(self, groups: Iterable[Iterable[str]]) -> None:
        """Cut every link between regions of different groups (other cuts stay)."""
        sides = [sorted(set(group)) for group in groups]
        cuts = set(self.cuts())
        for i, side in enumerate(sides):
            for other in sides[i + 1 :]:
                cuts.update(frozenset((a, b)) for a in side for b in other if a != b)
        self._write(cuts)

    def heal_partitions(self) -> None:
        self._write(set())

    def _write(self, cuts: set[frozenset[str]]) -> None:
        path = self._root / _PARTITIONS
        if not cuts:
            path.unlink(missing_ok=True)
            return
        text = "".join(" ".join(sorted(pair)) + "\n" for pair in sorted(cuts, key=sorted))
        scratch = path.with_suffix(".tmp")
        scratch.write_text(text)
        os.replace(scratch, path)
