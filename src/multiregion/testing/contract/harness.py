"""What a provider hands the contract suite: the part under test and the means to test it.

Each contract class asks for one fixture returning one of these harnesses. The harness gives a
fresh, isolated instance (nothing left from another test) plus the few provider-specific
levers a test needs (reopening a second handle, corrupting stored bytes, stopping an endpoint).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import attrs

from multiregion.interfaces import BackupBucket, HealthProbe, ReplicatedStore, TrafficRouter
from multiregion.model import HealthCheck

if TYPE_CHECKING:
    from multiregion.testing.endpoints import LoopbackEndpoint


@attrs.define
class StoreHarness:
    store: ReplicatedStore
    """Empty, single-writer, with every region the provider offers in this test setup."""
    reopen: Callable[[], ReplicatedStore]
    """A second, independent handle on the same store, as another process would open it."""
    settle: Callable[[], None]
    """Returns once every replica holds every acknowledged write."""
    multi_writer: Callable[[], ReplicatedStore] | None = None
    """Opens an empty active-active store, for providers whose capabilities say multi_writer."""
    fail_region: Callable[[str], None] | None = None
    """Makes one region's replica unreachable (a regional outage), if the setup can."""
    heal_region: Callable[[str], None] | None = None


@attrs.define
class BucketHarness:
    bucket: BackupBucket
    """Empty."""
    corrupt: Callable[[str], None]
    """Changes one byte of a stored object's content behind the library's back."""
    part_size: int = 5 * 1024 * 1024
    """The smallest part the provider takes in multipart uploads (tests upload a few parts)."""


@attrs.define
class ProbeHarness:
    probe: HealthProbe
    serve: Callable[[str], LoopbackEndpoint]
    """Starts an endpoint for a protocol ("http", "https", "tcp") that the probe can reach."""
    check: Callable[[str, int], HealthCheck]
    """The quickest health check the provider accepts, for a protocol and port."""
    wait_s: float
    """How long a verdict may take to change after the endpoint does."""
    probes_run: bool = True
    """False where the backend never probes (moto): verdict-change tests are skipped, and say so."""


@attrs.define
class RouterHarness:
    router: TrafficRouter
    endpoints: Callable[[int], Sequence[LoopbackEndpoint]]
    """Starts n HTTP endpoints on distinct loopback addresses sharing one port."""
    check: Callable[[int], HealthCheck]
    """The quickest HTTP health check the provider accepts on a port."""
    wait_s: float
    """How long a failover may take after an endpoint stops."""
    health_driven: bool = True
    """False where the backend never probes (moto): health-driven tests are skipped, and say so."""
    zone: str = "example.test"
    """The DNS zone routes are created in."""
    regions: tuple[str, str, str] = ("region-a", "region-b", "region-c")
    """The regions of the primary, backup and third endpoints (real ones where the provider
    checks them)."""
