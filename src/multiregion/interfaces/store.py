"""The replicated store interface: documents with versions and fencing across regions."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from multiregion.errors import Unsupported
from multiregion.model import ConflictPolicy, DivergentWrite, FencingToken, Item


@attrs.frozen
class StoreCapabilities:
    multi_writer: bool
    """Active-active: every region accepts writes (``put(region=...)``), conflicts resolved by
    the store's declared policy."""
    pinned_reads: bool
    """``get``/``scan`` with ``region=`` read that region's replica, which may lag."""
    replication_lag: bool
    """``replication_lag(region)`` measures how far a replica is behind."""
    strong: bool
    """Every acknowledged write is in every region (``regions`` is one logical store)."""
    max_item_bytes: int
    max_batch: int
    """How many writes ``put_many`` sends to the service at once."""
    partition_safe_fencing: bool = False
    """No partition makes two regions accept writes under different tokens: epochs come from a
    majority of the store's voters (or from one strongly consistent record), ``promote`` without
    one raises ``Unavailable`` unless forced, and a write region cut off from the majority
    refuses writes until it can confirm its epoch."""
    switchover: bool = False
    """``promote`` with the old write region reachable fences it before catching up from it, so
    nothing it acknowledged is left behind (RPO 0): controllers need not wait for the lag."""
    divergence_log: bool = False
    """Writes that a promote superseded before they replicated are kept in ``divergence()``
    (for ``reconcile``) instead of vanishing."""


class ReplicatedStore(abc.ABC):
    """A document store replicated across regions, with versions and fencing."""

    capabilities: StoreCapabilities
    conflict_policy: ConflictPolicy
    promote_delay_s: float = 0.0
    """How long ``promote`` waits before the new write region takes writes (a write lease of
    the old one running out); part of the expected recovery time."""

    @property
    @abc.abstractmethod
    def regions(self) -> tuple[str, ...]:
        """Every region holding a replica."""

    @property
    @abc.abstractmethod
    def write_region(self) -> str:
        """The region that takes writes (in active-active stores, the default one)."""

    @abc.abstractmethod
    def get(self, key: str, *, region: str | None = None) -> Item:
        """Read ``key``, from ``region``'s replica if given. Raises ``NotFound``."""

    @abc.abstractmethod
    def put(
        self,
        key: str,
        value: Mapping[str, Any],
        *,
        if_version: str | None = None,
        create_only: bool = False,
        fence: FencingToken | None = None,
        region: str | None = None,
    ) -> Item:
        """Write a document.

        ``create_only`` raises ``AlreadyExists`` if the key exists; ``if_version`` raises
        ``PreconditionFailed`` unless the stored version is that one; ``fence`` raises
        ``PreconditionFailed`` once a newer token has been issued. ``region`` picks the
        accepting region in a multi-writer store; a single-writer store refuses any region
        other than its write region with ``PreconditionFailed``.
        """

    @abc.abstractmethod
    def delete(
        self,
        key: str,
        *,
        if_version: str | None = None,
        fence: FencingToken | None = None,
        region: str | None = None,
    ) -> None:
        """Remove ``key``. Raises ``NotFound`` if absent, ``PreconditionFailed`` as for put."""

    @abc.abstractmethod
    def scan(self, prefix: str = "", *, region: str | None = None) -> Iterator[Item]:
        """Every item whose key starts with ``prefix``, in key order."""

    @abc.abstractmethod
    def put_many(
        self,
        items: Mapping[str, Mapping[str, Any]] | Iterable[tuple[str, Mapping[str, Any]]],
        *,
        fence: FencingToken | None = None,
    ) -> int:
        """Unconditional writes in batches of at most ``max_batch``; returns how many.

        Every item is validated before the first batch is sent.
        """

    @abc.abstractmethod
    def promote(self, region: str, *, force: bool = False) -> FencingToken:
        """Make ``region`` the write region and issue a token newer than every earlier one.

        Needs nothing from the old write region, which may be down. Where the capabilities say
        ``partition_safe_fencing``, a promote that cannot reach a majority of the store's voters
        raises ``Unavailable``; ``force=True`` promotes anyway, and the token says ``forced``.
        """

    @abc.abstractmethod
    def fence(self) -> FencingToken:
        """The newest token issued."""

    def replication_lag(self, region: str) -> float:
        """Seconds of writes that ``region`` has not received yet."""
        raise Unsupported(f"{type(self).__name__} cannot measure replication lag")

    def conflicts(self) -> list[tuple[Item, ...]]:
        """Keys whose replicas hold concurrent writes, each as its versions with the one the
        conflict policy keeps first; what a store can see of them says its docstring."""
        raise Unsupported(f"{type(self).__name__} keeps no conflict log")

    def divergence(self, *, include_resolved: bool = False) -> list[DivergentWrite]:
        """Writes a promote superseded before they replicated, oldest first."""
        raise Unsupported(f"{type(self).__name__} keeps no divergence log")

    def reconcile(
        self, write_id: str, action: str, *, fence: FencingToken | None = None
    ) -> DivergentWrite:
        """``replay`` a divergent write into the write region (as a new write, checked against
        ``fence``) or ``discard`` it; either way it leaves the divergence log."""
        raise Unsupported(f"{type(self).__name__} keeps no divergence log")

    def close(self) -> None:  # noqa: B027
        """Release connections and background work."""
