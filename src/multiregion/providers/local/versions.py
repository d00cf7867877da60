"""Concurrent versions of one item and how replicas combine them.

Every write is stamped with a vector clock. Its entry for the writer (the region at the epoch it
wrote in) is the write's sequence number in that region's oplog (in a store of one region,
which logs nothing, a number from the oplog's counter), so no two writes share a stamp, and the
writes one writer made to one key form a chain that every replica holds a prefix of:
writes fenced by a promote are the cut-off end of a chain, never a hole in it. An item holds
the writes that no other write it holds has seen (its siblings): one after ordinary writes,
several after concurrent writes in a multi-writer store. Combining two replicas' versions
keeps the writes neither side has superseded, which is a union: commutative, associative and
idempotent, so replicas converge whatever order writes arrive in. What a read sees is then
decided from the siblings alone, by the conflict policy: the latest by (time, region,
version), or the merge of the live siblings in that order.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs

from multiregion import validate
from multiregion.model import ConflictPolicy, Item, Merge

Clock = dict[str, int]


dumps = validate.canonical_json(allow_nan=True)
"""Compact JSON with sorted keys, as every replica stores it (so equal content is equal text)."""


@attrs.frozen
class Write:
    """One accepted write (``value`` None for a delete)."""

    value: dict[str, Any] | None
    version: str
    updated_at: float
    region: str
    clock: Clock
    epoch: int

    @property
    def actor(self) -> str:
        return actor(self.region, self.epoch)

    @property
    def seq(self) -> int:
        """The write's place in its region's oplog."""
        return self.clock[self.actor]

    @property
    def order(self) -> tuple[float, str, str]:
        return (self.updated_at, self.region, self.version)

    def seen_by(self, clock: Clock) -> bool:
        """True when a replica whose clock is ``clock`` has this write (or a later one of its
        region, which saw it)."""
        return clock.get(self.actor, 0) >= self.seq

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "version": self.version,
            "updated_at": self.updated_at,
            "region": self.region,
            "clock": self.clock,
            "epoch": self.epoch,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Write:
        return cls(**data)


def actor(region: str, epoch: int) -> str:
    """The clock entry of ``region`` writing under ``epoch``."""
    return f"{region}/{epoch}"


def _dominated(write: Write, by: Write) -> bool:
    return write.clock != by.clock and all(
        by.clock.get(region, 0) >= count for region, count in write.clock.items()
    )


def merged_clock(writes: list[Write]) -> Clock:
    clock: Clock = {}
    for write in writes:
        for region, count in write.clock.items():
            clock[region] = max(clock.get(region, 0), count)
    return clock


def combine(ours: list[Write], theirs: list[Write]) -> list[Write]:
    """The writes of both that neither side has superseded, in read order."""
    unique = {write.version: write for write in [*ours, *theirs]}
    kept = [w for w in unique.values() if not any(_dominated(w, o) for o in unique.values())]
    return sorted(kept, key=lambda write: write.order)


@attrs.frozen
class Version:
    """What a replica stores for a key: the siblings and what a read of them sees."""

    key: str
    writes: tuple[Write, ...]
    value: dict[str, Any] | None
    version: str
    updated_at: float
    region: str

    @property
    def clock(self) -> Clock:
        return merged_clock(list(self.writes))

    def item(self) -> Item:
        assert self.value is not None
        return Item(self.key, self.value, self.version, self.updated_at, self.region)


def settle(key: str, writes: list[Write], policy: ConflictPolicy) -> Version:
    """The version a read sees for these siblings (sorted by ``combine``)."""
    last = writes[-1]
    if len(writes) == 1:
        return Version(key, (last,), last.value, last.version, last.updated_at, last.region)
    digest = hashlib.sha256(dumps(sorted(w.version for w in writes)).encode()).hexdigest()
    version = "m" + digest[:31]
    value = last.value
    if isinstance(policy, Merge):
        live = [w for w in writes if w.value is not None]
        value = live[0].value if live else None
        for write in live[1:]:
            assert value is not None
            assert write.value is not None
            ours = Item(key, value, version, last.updated_at, last.region)
            theirs = Item(key, write.value, write.version, write.updated_at, write.region)
            value = validate.document("merge", policy.merge(ours, theirs))
    return Version(key, tuple(writes), value, version, last.updated_at, last.region)
