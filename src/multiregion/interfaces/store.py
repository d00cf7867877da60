"""The replicated store interface: documents with versions and fencing across regions."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from multiregion import validate
from multiregion.closing import Closing
from multiregion.errors import InvalidInput, Unsupported
from multiregion.model import ConflictPolicy, DivergentWrite, FencingToken, Item


@attrs.frozen
class StoreCapabilities:
    multi_writer: bool
    """The store can run active-active: a handle opened with ``multi_writer=True`` takes writes
    in every region (``put(region=...)``), conflicts resolved by the store's declared policy.
    A handle opened single-writer (the default) refuses other regions with
    ``PreconditionFailed`` like any single-writer store."""
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


RECONCILE_ACTIONS = frozenset({"replay", "discard"})
_NO_LAG = "cannot measure replication lag"
_NO_DIVERGENCE_LOG = "keeps no divergence log"


class ReplicatedStore(Closing):
    """A document store replicated across regions, with versions and fencing.

    The public methods check and normalise their arguments (``InvalidInput`` naming the
    argument, before any request) and the capability flags (``Unsupported``), then call the
    adapter's hook of the same name with a leading underscore. An adapter implements the hooks
    and holds only its service calls: each hook's docstring says what is checked already.
    """

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

    @property
    def multi_writer(self) -> bool:
        """This handle takes writes in every region: opened with ``multi_writer=True`` on a
        store whose capabilities say ``multi_writer``."""
        return False

    # ------------------------------------------------------------------ reads

    def get(self, key: str, *, region: str | None = None) -> Item:
        """Read ``key``, from ``region``'s replica if given. Raises ``NotFound``."""
        return self._get(_key(key), region=_pinned(self, region))

    def scan(self, prefix: str = "", *, region: str | None = None) -> Iterator[Item]:
        """Every item whose key starts with ``prefix``, in key order."""
        prefix = validate.utf8_text("prefix", validate.prefix("prefix", prefix))
        return self._scan(prefix, region=_pinned(self, region))

    @abc.abstractmethod
    def _get(self, key: str, *, region: str | None) -> Item:
        """``key`` is a valid key (non-empty UTF-8 text of at most 1024 bytes, no control
        characters); ``region`` is None (the write region's view) or one of ``regions``.
        Raises ``NotFound``."""

    @abc.abstractmethod
    def _scan(self, prefix: str, *, region: str | None) -> Iterator[Item]:
        """``prefix`` is "" or checked as a key; ``region`` as for ``_get``. Items in code
        point order of their keys."""

    # ------------------------------------------------------------------ writes

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
        key = _key(key)
        document = _document(self, value)
        validate.store_conditions(if_version, fence, create_only)
        return self._put(
            key,
            document,
            if_version=if_version,
            create_only=create_only,
            fence=_token(self, fence),
            region=_pinned(self, region),
        )

    def delete(
        self,
        key: str,
        *,
        if_version: str | None = None,
        fence: FencingToken | None = None,
        region: str | None = None,
    ) -> None:
        """Remove ``key``. Raises ``NotFound`` if absent, ``PreconditionFailed`` as for put."""
        key = _key(key)
        validate.store_conditions(if_version, fence)
        self._delete(
            key, if_version=if_version, fence=_token(self, fence), region=_pinned(self, region)
        )

    def put_many(
        self,
        items: Mapping[str, Mapping[str, Any]] | Iterable[tuple[str, Mapping[str, Any]]],
        *,
        fence: FencingToken | None = None,
    ) -> int:
        """Unconditional writes in batches of at most ``max_batch``; returns how many keys.

        Every item is validated before the first batch is sent; a key given twice is written
        once, with its last document. Batches are not atomic together.
        """
        token = _token(self, fence)
        writes = {_key(key): _document(self, value) for key, value in validate.pairs(items)}
        if writes:
            self._put_many(list(writes.items()), fence=token)
        return len(writes)

    @abc.abstractmethod
    def _put(
        self,
        key: str,
        value: dict[str, Any],
        *,
        if_version: str | None,
        create_only: bool,
        fence: FencingToken | None,
        region: str | None,
    ) -> Item:
        """``key`` as for ``_get``; ``value`` a plain JSON dict of the caller's own (a copy)
        within ``capabilities.max_item_bytes``; ``if_version`` None or a non-empty string (a
        version of another store is the hook's to refuse, with ``PreconditionFailed``), never
        together with ``create_only``; ``fence`` None or a token naming one of ``regions``;
        ``region`` None or one of ``regions``. Left to the hook: the fencing check, the write
        region (``PreconditionFailed`` for another region in a single-writer store) and the
        conditions."""

    @abc.abstractmethod
    def _delete(
        self,
        key: str,
        *,
        if_version: str | None,
        fence: FencingToken | None,
        region: str | None,
    ) -> None:
        """Checked as for ``_put``; ``NotFound`` when there is no live item."""

    @abc.abstractmethod
    def _put_many(
        self, items: list[tuple[str, dict[str, Any]]], *, fence: FencingToken | None
    ) -> None:
        """``items``: at least one, each key valid and given once, each document as for
        ``_put``; ``fence`` as for ``_put``. The hook sends them in batches of at most
        ``capabilities.max_batch`` and checks the fence as the store can."""

    # ------------------------------------------------------------------ regions and fencing

    def promote(self, region: str, *, force: bool = False) -> FencingToken:
        """Make ``region`` the write region and issue a token newer than every earlier one.

        Needs nothing from the old write region, which may be down. Where the capabilities say
        ``partition_safe_fencing``, a promote that cannot reach a majority of the store's voters
        raises ``Unavailable``; ``force=True`` promotes anyway, and the token says ``forced``.
        """
        region = validate.member("region", region, self.regions)
        return self._promote(region, force=validate.flag("force", force))

    def fence(self) -> FencingToken:
        """The newest token issued."""
        return self._fence()

    @abc.abstractmethod
    def _promote(self, region: str, *, force: bool) -> FencingToken:
        """``region`` is one of ``regions``, ``force`` a bool (a store with one fencing record
        has no majority to force and ignores it)."""

    @abc.abstractmethod
    def _fence(self) -> FencingToken:
        """The newest token, read from the store."""

    # ------------------------------------------------------------------ optional features

    def replication_lag(self, region: str) -> float:
        """Seconds of writes that ``region`` has not received yet, where
        ``capabilities.replication_lag`` (else ``Unsupported``)."""
        if not self.capabilities.replication_lag:
            raise _unsupported(self, _NO_LAG)
        return self._replication_lag(validate.member("region", region, self.regions))

    def conflicts(self) -> list[tuple[Item, ...]]:
        """Keys whose replicas hold concurrent writes, each as its versions with the one the
        conflict policy keeps first; what a store can see of them says its docstring. Only a
        store that can take writes in several regions (``capabilities.multi_writer``) has any;
        elsewhere ``Unsupported``."""
        if not self.capabilities.multi_writer:
            raise _unsupported(self, "takes writes in one region: no conflicts")
        return self._conflicts()

    def divergence(self, *, include_resolved: bool = False) -> list[DivergentWrite]:
        """Writes a promote superseded before they replicated, oldest first, where
        ``capabilities.divergence_log`` (else ``Unsupported``)."""
        _require_divergence_log(self)
        return self._divergence(
            include_resolved=validate.flag("include_resolved", include_resolved)
        )

    def reconcile(
        self, write_id: str, action: str, *, fence: FencingToken | None = None
    ) -> DivergentWrite:
        """``replay`` a divergent write into the write region (as a new write, checked against
        ``fence``) or ``discard`` it; either way it leaves the divergence log."""
        _require_divergence_log(self)
        if not isinstance(write_id, str) or not write_id:
            raise InvalidInput("write_id", "must be an id from divergence()")
        action = validate.one_of("action", action, RECONCILE_ACTIONS)
        return self._reconcile(write_id, action, fence=_token(self, fence))

    def _replication_lag(self, region: str) -> float:
        """``region`` is one of ``regions``; called only where ``capabilities.replication_lag``."""
        raise _unsupported(self, _NO_LAG)

    def _conflicts(self) -> list[tuple[Item, ...]]:
        """Called only where ``capabilities.multi_writer``."""
        raise _unsupported(self, "keeps no conflict log")

    def _divergence(self, *, include_resolved: bool) -> list[DivergentWrite]:
        """``include_resolved`` a bool; called only where ``capabilities.divergence_log``."""
        raise _unsupported(self, _NO_DIVERGENCE_LOG)

    def _reconcile(
        self, write_id: str, action: str, *, fence: FencingToken | None
    ) -> DivergentWrite:
        """``write_id`` a non-empty string (``NotFound`` if the log has no such write),
        ``action`` one of ``RECONCILE_ACTIONS``, ``fence`` as for ``_put``; called only where
        ``capabilities.divergence_log``."""
        raise _unsupported(self, _NO_DIVERGENCE_LOG)

    def close(self) -> None:
        """Release connections and background work."""


def _key(value: object) -> str:
    return validate.key("key", value, utf8=True)


def _pinned(store: ReplicatedStore, region: object) -> str | None:
    """A ``region=`` argument: None or one of the store's regions."""
    return None if region is None else validate.member("region", region, store.regions)


def _token(store: ReplicatedStore, fence: object) -> FencingToken | None:
    """A ``fence=`` argument: None or a FencingToken naming one of the store's regions."""
    token = validate.fence(fence)
    if token is not None:
        validate.member("fence", token.region, store.regions)
    return token


def _document(store: ReplicatedStore, value: object) -> dict[str, Any]:
    return validate.document("value", value, store.capabilities.max_item_bytes)


def _require_divergence_log(store: ReplicatedStore) -> None:
    if not store.capabilities.divergence_log:
        raise _unsupported(store, _NO_DIVERGENCE_LOG)


def _unsupported(store: ReplicatedStore, what: str) -> Unsupported:
    return Unsupported(f"{type(store).__name__} {what}")
