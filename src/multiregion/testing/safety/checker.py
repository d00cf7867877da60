"""What the history and the healed store say was violated.

- duplicate epoch: two promotes (not forced) acknowledged with the same epoch;
- stale write: a put (or a key of a ``put_many``) acknowledged under a token older than a
  promote that had completed before the put was invoked;
- lost acknowledged write: a synchronous put acknowledged but missing once healed;
- silent loss: an asynchronous put acknowledged, missing once healed, and not in the
  divergence log;
- lost merge: a multi-writer set-union put acknowledged whose element the merged value lacks;
- not converged: replicas whose contents differ once healed and settled.

A key of a ``put_many`` is a put whose version the client never saw: as every key is written
once, it is held if the key is there, and diverged if the log has an entry for the key.
"""

from __future__ import annotations

from collections import Counter

import attrs

from multiregion.model import DivergentWrite, Item
from multiregion.testing.safety.history import History, Op


@attrs.frozen
class Violation:
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def check(
    history: History,
    *,
    sync: bool,
    merge: bool,
    digests: dict[str, str],
    contents: dict[str, Item],
    divergence: list[DivergentWrite],
) -> list[Violation]:
    found: list[Violation] = []
    promotes = [op for op in history.ops if op.kind == "promote" and op.outcome == "ok"]
    puts = [op for op in history.ops if op.kind == "put" and op.outcome == "ok"]
    epochs = Counter(op.epoch for op in promotes if not op.forced)
    found += [
        Violation("duplicate epoch", f"epoch {epoch} issued {count} times")
        for epoch, count in epochs.items()
        if count > 1
    ]
    for put in puts:
        newer = [
            p
            for p in promotes
            if p.epoch > put.epoch
            and p.completed_at is not None
            and p.completed_at < put.invoked_at
        ]
        if newer and not merge:
            found.append(
                Violation(
                    "stale write",
                    f"{put.key} accepted under epoch {put.epoch} though epoch "
                    f"{newer[0].epoch} had been promoted before it was sent",
                )
            )
    if merge:
        found += _lost_merges(puts, contents)
    else:
        diverged = {(entry.key, entry.version) for entry in divergence}
        diverged |= {(entry.key, "") for entry in divergence}
        for put in puts:
            held = contents.get(put.key)
            if held is not None and put.version in ("", held.version):
                continue
            what = f"{put.key} ({put.version or 'batch ' + put.batch})"
            if sync:
                found.append(Violation("lost acknowledged write", what))
            elif (put.key, put.version) not in diverged:
                found.append(Violation("silent loss", f"{what} is gone"))
    if len(set(digests.values())) > 1:
        found.append(
            Violation("not converged", ", ".join(f"{r} {d[:12]}" for r, d in digests.items()))
        )
    return found


def _lost_merges(puts: list[Op], contents: dict[str, Item]) -> list[Violation]:
    lost = []
    for put in puts:
        held = contents.get(put.key)
        if held is None or put.version not in held.value.get("set", []):
            lost.append(Violation("lost merge", f"{put.version} missing from {put.key}"))
    return lost
