"""What the demo measured, how each figure is defined, and how it is shown.

Every duration starts at the outage: the instant the primary's address was blackholed (the
fault proxy accepts connections there and never answers) and its store region failed.

- ``detection_s``: until the router's health checks mark region-a unhealthy.
- ``dns_switch_s``: until the DNS server first answers region-b's address.
- ``rto_s``: until the first order acknowledged after the outage (the client honours the TTL,
  so this includes waiting for its cached answer to expire).
- ``rpo_s``: the span of time covered by acknowledged orders missing from region-b once failed
  over: the latest minus the earliest acknowledgement time among them, 0 when none is missing
  (one missing order also spans 0 s, so read it together with ``lost_writes``).
- ``lost_writes``: acknowledged orders absent from region-b's replica after failover.
- ``expected_rto_s``: the router's own ``expected_failover_s(route)``, a mean (detection plus
  half the TTL); ``worst_rto_s``: the check's worst detection plus a full TTL. Both count each
  probe's timeout, which a blackholed region costs as a real outage does; the client also
  waits out the request it had in flight, so measured RTOs come in around the expected mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs
from rich.console import Console
from rich.table import Table

from multiregion.demo.traffic import RequestRecord


def rpo_seconds(missing_ack_times: Iterable[float]) -> float:
    """Latest minus earliest acknowledgement time among the lost writes; 0 when none."""
    times = sorted(missing_ack_times)
    return times[-1] - times[0] if times else 0.0


def first_success_after(records: Sequence[RequestRecord], at: float) -> RequestRecord | None:
    """The first acknowledged order sent at or after ``at``."""
    return next((r for r in records if r.ok and r.sent_at >= at), None)


@attrs.frozen
class DemoReport:
    replication: str
    lag_s: float
    detection_s: float
    dns_switch_s: float
    promote_s: float
    rto_s: float
    rpo_s: float
    lost_writes: int
    expected_rto_s: float
    worst_rto_s: float
    requests_ok: int
    requests_failed: int
    run: dict[str, Any] = attrs.field(factory=dict, eq=False)
    """Where the run lived (addresses, ports, process ids, work directory), for inspection."""

    @property
    def rto_ratio(self) -> float:
        return self.rto_s / self.expected_rto_s

    def to_json(self) -> dict[str, Any]:
        fields = attrs.asdict(self, recurse=False)
        measured = {k: round(v, 3) if isinstance(v, float) else v for k, v in fields.items()}
        return {**measured, "rto_ratio": round(self.rto_ratio, 3)}

    def table(self) -> Table:
        mode = self.replication + (f", lag {self.lag_s:g}s" if self.replication == "async" else "")
        table = Table(
            title=f"Failover report ({mode} replication)",
            title_justify="left",
            caption=(
                "Every duration starts at the outage: region-a blackholed (connections "
                "accepted, never answered) and its store replica failed at the same instant, "
                "as a real outage does. Probes time out, as the expected figure counts."
            ),
            caption_justify="left",
        )
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_column("meaning")
        rows = [
            ("detection_s", f"{self.detection_s:.2f}", "outage -> router marks region-a down"),
            ("dns_switch_s", f"{self.dns_switch_s:.2f}", "outage -> DNS first answers region-b"),
            ("promote_s", f"{self.promote_s:.2f}", "outage -> store promoted region-b"),
            ("rto_s", f"{self.rto_s:.2f}", "outage -> first order acknowledged again"),
            ("expected_rto_s", f"{self.expected_rto_s:.2f}", "mean: detection + TTL/2"),
            ("worst_rto_s", f"{self.worst_rto_s:.2f}", "worst detection + full TTL"),
            ("rto / expected", f"{self.rto_ratio:.2f}", "1.0 = exactly as computed"),
            ("lost_writes", str(self.lost_writes), "acknowledged orders missing in region-b"),
            ("rpo_s", f"{self.rpo_s:.2f}", "latest - earliest ack time among the lost"),
            (
                "requests",
                f"{self.requests_ok} ok / {self.requests_failed} failed",
                "orders acknowledged / refused or unanswered",
            ),
        ]
        for row in rows:
            table.add_row(*row)
        return table

    def print(self, console: Console) -> None:
        console.print(self.table())
