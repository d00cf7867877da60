"""Leases: the dead-man switch of faults installed by another process.

A toxic installed through the control API holds a lease that its installer renews. If the
installer dies (a drill killed with ``kill -9``), nobody renews, the lease runs out and the
proxy removes the toxic by itself: traffic passes again without anyone cleaning up.
"""

from __future__ import annotations

import secrets
import time

import attrs

from multiregion import validate
from multiregion.errors import NotFound

MAX_LEASE_S = 3600.0


@attrs.frozen
class Lease:
    id: str
    listener: str
    kind: str
    expires_at: float
    """On ``time.monotonic()``'s clock."""


class Leases:
    """Leases by id; one per (listener, kind), since a listener holds one toxic of a kind."""

    def __init__(self) -> None:
        self._leases: dict[str, Lease] = {}

    def grant(self, listener: str, kind: str, lease_s: float) -> Lease:
        lease_s = validate.seconds("lease_s", lease_s, 0, MAX_LEASE_S)
        self.forget(listener, kind)
        lease = Lease(secrets.token_hex(8), listener, kind, time.monotonic() + lease_s)
        self._leases[lease.id] = lease
        return lease

    def renew(self, lease_id: str, lease_s: float) -> Lease:
        lease_s = validate.seconds("lease_s", lease_s, 0, MAX_LEASE_S)
        lease = self.get(lease_id)
        renewed = attrs.evolve(lease, expires_at=time.monotonic() + lease_s)
        self._leases[lease_id] = renewed
        return renewed

    def get(self, lease_id: str) -> Lease:
        lease = self._leases.get(lease_id)
        if lease is None or lease.expires_at <= time.monotonic():
            raise NotFound(f"lease {lease_id!r} is not held (expired or released)")
        return lease

    def release(self, lease_id: str) -> Lease:
        lease = self.get(lease_id)
        del self._leases[lease_id]
        return lease

    def forget(self, listener: str, kind: str | None = None) -> None:
        """Drop the leases on ``listener``'s toxic of ``kind`` (any kind when None)."""
        for lease in list(self._leases.values()):
            if lease.listener == listener and kind in (None, lease.kind):
                del self._leases[lease.id]

    def expired(self) -> list[Lease]:
        """The leases that ran out, removed from the table."""
        now = time.monotonic()
        gone = [lease for lease in self._leases.values() if lease.expires_at <= now]
        for lease in gone:
            del self._leases[lease.id]
        return gone

    def on(self, listener: str) -> dict[str, Lease]:
        """The leases on ``listener``'s toxics, by kind."""
        return {lease.kind: lease for lease in self._leases.values() if lease.listener == listener}
