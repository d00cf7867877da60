"""What replicas hold, for stores whose service publishes neither lag nor conflicts in its data
plane: replication lag from a heartbeat (write the time in the write region, poll the replica
until it shows it), and conflicts by comparing the versions each replica holds."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from multiregion.errors import Unavailable
from multiregion.model import Item

POLL_S = 0.05


def lag(write: Callable[[float], None], read: Callable[[], float | None], wait_s: float) -> float:
    """Seconds until ``read`` (the replica's heartbeat time, None when it has none) returns
    what ``write`` was given: 0.0 when it is there at the first look. When it has not
    arrived within ``wait_s``: the age of the newest heartbeat the replica holds (it has
    nothing newer that we know of), or the time waited if it holds none."""
    sent = time.time()
    write(sent)
    deadline = time.monotonic() + wait_s
    first = True
    while True:
        seen = read()
        if seen is not None and seen >= sent:
            return 0.0 if first else time.time() - sent
        if time.monotonic() >= deadline:
            return time.time() - (sent if seen is None else seen)
        first = False
        time.sleep(POLL_S)


def conflicts(scans: Iterable[Callable[[], Iterator[Item]]]) -> list[tuple[Item, ...]]:
    """Keys that replicas hold in different versions now, from one scan per replica (a
    replica that is unavailable is left out). A write is told apart by its time and region,
    which every replica keeps as written. Each entry lists a key's versions, the newest (the
    one last-writer-wins keeps) first; keys in key order."""
    seen: dict[str, dict[tuple[float, str], Item]] = {}
    for scan in scans:
        try:
            for item in scan():
                seen.setdefault(item.key, {})[(item.updated_at, item.region)] = item
        except Unavailable:
            continue
    return [
        tuple(sorted(versions.values(), key=lambda item: (item.updated_at, item.region))[::-1])
        for key, versions in sorted(seen.items())
        if len(versions) > 1
    ]
