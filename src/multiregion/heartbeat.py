"""Replication lag measured with a heartbeat, for stores whose service has no lag metric the
library can read: write the time in the write region, poll the replica until it shows it."""

from __future__ import annotations

import time
from collections.abc import Callable

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
