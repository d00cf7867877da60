"""The four provider-neutral interfaces and the capability flags each provider declares.

A provider that cannot do something says so in its capabilities and raises ``Unsupported``
when asked anyway; it never quietly does something else. The contract suite in
``multiregion.testing`` reads the same flags to decide what to ask of each provider.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import attrs

from multiregion import validate
from multiregion.errors import Unsupported
from multiregion.model import (
    Answer,
    ConflictPolicy,
    DivergentWrite,
    EndpointHealth,
    EndpointStatus,
    FencingToken,
    HealthCheck,
    Item,
    ObjectInfo,
    Plan,
    Policy,
    ProbeTarget,
    Route,
)
from multiregion.planning import ChangeSafety

Progress = Callable[[int], None]
"""Called with the number of bytes moved since the last call."""

# --------------------------------------------------------------------------- capabilities


@attrs.frozen
class RouterCapabilities:
    policies: frozenset[type[Any]]
    """Policy classes the router can serve (``Failover``, ``Weighted``, ``Latency``, ``Geo``)."""
    health_checked: bool = True
    """Endpoints of a route with a health check leave the answer when they fail."""
    cname_targets: bool = True
    """Endpoints may be host names (CNAME) as well as addresses."""
    answers_when_all_down: bool = False
    """With every endpoint forced down, DNS still answers the first one in the route's order
    (Route 53 has no empty answer while records exist); otherwise the answer is empty."""


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


@attrs.frozen
class BucketCapabilities:
    conditional_delete: bool = True
    """``delete(if_match=...)`` is enforced by the service."""
    retention: bool = False
    """``put(retain_until=...)`` makes the object undeletable until then."""
    legal_hold: bool = False
    """Writes place a legal hold (S3 Object Lock, Blob, GCS temporary hold; opened with
    ``legal_hold=True``): delete and overwrite raise ``PreconditionFailed`` until it is
    released outside the library."""
    native_checksum: str | None = None
    """The checksum the service itself keeps (``sha256``, ``crc32c``, ``md5``), if any."""


@attrs.frozen
class ProbeCapabilities:
    protocols: frozenset[str]
    managed: bool
    """Checks run in the provider's infrastructure and keep running without this process."""
    intervals_s: tuple[float, ...] | None = None
    """The only intervals allowed, or None for any."""
    min_interval_s: float = 0.0
    reports_status: bool = True
    """``status`` gives the checks' verdicts. False where the service keeps them elsewhere
    (Compute health checks on external endpoints report to Cloud Logging only): ``status``
    then answers UNKNOWN, and callers should not wait for a verdict."""


# --------------------------------------------------------------------------- interfaces


class TrafficRouter(abc.ABC):
    """Declarative routing of one DNS name to regional endpoints."""

    capabilities: RouterCapabilities
    change_safety: ChangeSafety = ChangeSafety()
    """What one ``apply`` may change without ``force``; set another on an instance to tune."""

    def supports(self, policy: Policy) -> bool:
        return type(policy) in self.capabilities.policies

    def require_supported(self, route: Route) -> None:
        """Raise ``Unsupported`` for a route this router cannot serve exactly as written."""
        validate.instance("route", route, Route)
        if not self.supports(route.policy):
            raise Unsupported(
                f"{type(self).__name__} cannot serve {type(route.policy).__name__} routing"
            )
        if not self.capabilities.cname_targets and any(
            e.record_type == "CNAME" for e in route.endpoints
        ):
            raise Unsupported(f"{type(self).__name__} cannot route to host names")

    @abc.abstractmethod
    def plan(self, route: Route) -> Plan:
        """The changes ``apply(route)`` would make; empty when the route is already in place."""

    @abc.abstractmethod
    def apply(self, route: Route, *, force: bool = False) -> Plan:
        """Create or update the route (idempotent) and return the changes made. Raises
        ``UnsafePlan`` before any change when the plan passes ``change_safety``, unless
        ``force``."""

    def check_change_safety(self, route: Route, plan: Plan, *, force: bool = False) -> None:
        """Every router's ``apply`` calls this once it has its plan, before changing anything."""
        validate.instance("route", route, Route)
        validate.instance("plan", plan, Plan)
        self.change_safety.check(route, plan, force=force)

    @abc.abstractmethod
    def get(self, name: str) -> Route:
        """The route as applied. Raises ``NotFound``."""

    @abc.abstractmethod
    def list(self) -> list[str]:
        """Names of the routes this router manages, sorted."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Remove the route and what the library created for it. Raises ``NotFound``."""

    @abc.abstractmethod
    def set_endpoint_status(self, name: str, endpoint: str, status: EndpointStatus) -> None:
        """Force an endpoint in (UP) or out (DOWN) of answers, or let health decide (AUTO)."""

    @abc.abstractmethod
    def endpoint_status(self, name: str) -> dict[str, EndpointStatus]:
        """The override in force for each endpoint of the route."""

    @abc.abstractmethod
    def resolve(self, name: str, client_region: str | None = None) -> Answer:
        """The answer DNS gives for ``name`` now, given policy, overrides and health."""

    @abc.abstractmethod
    def expected_failover_s(self, route: Route) -> float:
        """Mean time from an endpoint failing to DNS caches answering the next one."""

    def worst_failover_s(self, route: Route) -> float:
        """The longest that can take: the slowest detection plus a whole TTL."""
        validate.instance("route", route, Route)
        check = route.health_check
        return (0.0 if check is None else check.worst_detection_s()) + route.ttl

    def close(self) -> None:  # noqa: B027 - a no-op is right for routers holding nothing
        """Release connections and background work."""


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


class BackupBucket(abc.ABC):
    """Object storage for backups, with an end-to-end SHA-256 verified on every read."""

    capabilities: BucketCapabilities

    @abc.abstractmethod
    def put(
        self,
        key: str,
        data: bytes | IO[bytes],
        *,
        create_only: bool = False,
        if_match: str | None = None,
        metadata: Mapping[str, str] | None = None,
        retain_until: float | None = None,
    ) -> ObjectInfo:
        """Store an object. ``create_only`` raises ``AlreadyExists``; ``if_match`` raises
        ``PreconditionFailed`` unless the stored version is that one."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """The whole object, verified. Raises ``NotFound``, or ``CorruptData`` on a mismatch."""

    @abc.abstractmethod
    def stream(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The object in chunks; the last ``next`` raises ``CorruptData`` on a mismatch,
        so a consumer must not act on the bytes before the iterator is exhausted."""

    @abc.abstractmethod
    def head(self, key: str) -> ObjectInfo:
        """Metadata only. Raises ``NotFound``."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order, paging as needed."""

    @abc.abstractmethod
    def delete(self, key: str, *, if_match: str | None = None) -> None:
        """Remove an object. Raises ``NotFound``, or ``PreconditionFailed`` on a stale version
        or an object under retention."""

    @abc.abstractmethod
    def upload_file(
        self,
        path: str | Path,
        key: str,
        *,
        create_only: bool = False,
        if_match: str | None = None,
        metadata: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> ObjectInfo:
        """Upload a file in parts with bounded memory."""

    @abc.abstractmethod
    def download_file(
        self, key: str, path: str | Path, *, progress: Progress | None = None
    ) -> ObjectInfo:
        """Download to ``path`` with bounded memory; the file appears only once verified."""

    def close(self) -> None:  # noqa: B027
        """Release connections."""


class HealthProbe(abc.ABC):
    """Health checks on regional endpoints, run by this process or by the provider."""

    capabilities: ProbeCapabilities

    @abc.abstractmethod
    def ensure(self, target: ProbeTarget) -> str:
        """Create the check for ``target`` or bring it up to date; returns the check's id."""

    @abc.abstractmethod
    def status(self, name: str) -> EndpointHealth:
        """The current verdict for the check named ``name``. Raises ``NotFound``."""

    @abc.abstractmethod
    def list(self) -> list[str]:
        """Names of the checks this probe manages, sorted."""

    @abc.abstractmethod
    def delete(self, name: str) -> None:
        """Remove the check. Raises ``NotFound``."""

    @abc.abstractmethod
    def expected_detection_s(self, check: HealthCheck) -> float:
        """Mean seconds from an outage until this provider's checks call the endpoint down."""

    def close(self) -> None:  # noqa: B027
        """Stop probing and release connections."""
