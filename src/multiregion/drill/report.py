"""What a drill measured, judged against the objectives, as text, JSON and a picture.

Every duration is in seconds from the instant the fault was injected:
``detection_s`` until the failed region's health turned unhealthy; ``dns_switch_s`` until DNS
first answered another region; ``promote_s`` until the controller moved the write region;
``rto_s`` until the first successful request; ``write_rto_s`` until the first acknowledged write;
``rpo_s`` the span of acknowledgement times among writes missing from the surviving write region
(with ``lost_writes`` their count); ``expected_rto_s`` the router's computed mean failover time,
``worst_rto_s`` its worst case. A figure that never happened is None.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
from rich.console import Console
from rich.table import Table

from multiregion.drill.phases import LABELS, Phase
from multiregion.drill.timeline import Timeline, write_svg


@attrs.frozen
class Failback:
    attempted: bool
    ok: bool
    seconds: float | None
    detail: str


@attrs.frozen
class DrillReport:
    started_at: str
    """When the drill started, ISO 8601 in UTC."""
    duration_s: float
    mode: str
    """"active-passive" (a Failover route) or "active-active" (a Weighted one)."""
    route: str
    fault: str
    region: str
    to_region: str | None
    outcome: str
    detection_s: float | None
    dns_switch_s: float | None
    promote_s: float | None
    rto_s: float | None
    write_rto_s: float | None
    rpo_s: float
    lost_writes: int
    acknowledged_writes: int
    expected_rto_s: float
    worst_rto_s: float
    objective_rto_s: float | None
    objective_rpo_s: float | None
    requests_ok: int
    requests_failed: int
    error_rate_during_fault: float | None
    """Failed requests among those sent from the fault until recovery (or the timeout)."""
    phases: list[Phase]
    converged_s: float | None
    """Active-active: seconds from the start of failback until every replica held the same
    content; None when not measured (or never)."""
    divergent_writes: int | None
    """Entries in the store's divergence log after healing, where the store keeps one."""
    conflicts: int | None
    """Active-active, on a store without a content digest: the drill's keys its replicas still
    disagreed on after healing (``conflicts()``); None when not measured."""
    failback: Failback
    timeline: Timeline = attrs.field(eq=False, repr=False)

    @property
    def rto_met(self) -> bool | None:
        """Never met by a drill that did not recover, whatever its first good request."""
        if self.objective_rto_s is None:
            return None
        return (
            self.outcome == "recovered"
            and self.rto_s is not None
            and self.rto_s <= self.objective_rto_s
        )

    @property
    def rpo_met(self) -> bool | None:
        if self.objective_rpo_s is None:
            return None
        return self.rpo_s <= self.objective_rpo_s

    @property
    def passed(self) -> bool:
        """Recovered, within every declared objective, and failed back when asked."""
        return (
            self.outcome == "recovered"
            and self.rto_met is not False
            and self.rpo_met is not False
            and (self.failback.ok or not self.failback.attempted)
        )

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self, filter=lambda a, _: a.name != "timeline")
        data.update(rto_met=self.rto_met, rpo_met=self.rpo_met, passed=self.passed)
        data["phases"] = {
            p.name: {"predicted_s": p.predicted_s, "measured_s": p.measured_s, "ratio": p.ratio}
            for p in self.phases
        }
        data["events"] = [{"at": m.at, "text": m.label} for m in self.timeline.events()]
        return data

    def write_svg(self, path: str | Path) -> Path:
        title = f"Drill of {self.route}: {self.fault} ({self.outcome})"
        failed = self.outcome != "recovered"
        return write_svg(self.timeline, title, path, failed=self.outcome if failed else None)

    def show(self, console: Console) -> None:
        def seconds(value: float | None) -> str:
            return "never" if value is None else f"{value:.2f} s"

        def verdict(met: bool | None) -> str:
            return "" if met is None else ("[green]met[/]" if met else "[red]missed[/]")

        table = Table(title=f"Drill: {self.fault}", show_header=True)
        table.add_column("measure")
        table.add_column("value", justify="right")
        table.add_column("objective", justify="right")
        table.add_column("")
        objective_rto = seconds(self.objective_rto_s) if self.objective_rto_s is not None else ""
        objective_rpo = seconds(self.objective_rpo_s) if self.objective_rpo_s is not None else ""
        table.add_row("outcome", self.outcome, "", "")
        table.add_row("detection", seconds(self.detection_s), "", "")
        table.add_row("DNS switch", seconds(self.dns_switch_s), "", "")
        table.add_row("write region moved", seconds(self.promote_s), "", "")
        table.add_row("RTO (requests)", seconds(self.rto_s), objective_rto, verdict(self.rto_met))
        table.add_row("RTO (writes)", seconds(self.write_rto_s), "", "")
        table.add_row("expected RTO (mean)", seconds(self.expected_rto_s), "", "")
        table.add_row("worst-case RTO", seconds(self.worst_rto_s), "", "")
        table.add_row(
            "RPO",
            f"{self.rpo_s:.2f} s, {self.lost_writes} writes lost",
            objective_rpo,
            verdict(self.rpo_met),
        )
        table.add_row("requests", f"{self.requests_ok} ok, {self.requests_failed} failed", "", "")
        if self.converged_s is not None:
            table.add_row("replicas converged", seconds(self.converged_s), "", "after healing")
        if self.divergent_writes is not None:
            table.add_row("divergent writes", str(self.divergent_writes), "", "to reconcile")
        if self.conflicts is not None:
            table.add_row("conflicting keys", str(self.conflicts), "", "after healing")
        if self.error_rate_during_fault is not None:
            table.add_row("errors during the fault", f"{self.error_rate_during_fault:.0%}", "", "")
        back = self.failback
        table.add_row(
            "failback",
            f"{'ok' if back.ok else 'failed'} in {seconds(back.seconds)}"
            if back.attempted
            else "not attempted",
            "",
            back.detail,
        )
        console.print(table)
        console.print(self._phase_table())
        for number, mark in enumerate(self.timeline.events(), start=1):
            console.print(f"  {number}. {mark.at:6.2f}s  {mark.label}")

    def _phase_table(self) -> Table:
        def seconds(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f} s"

        table = Table(title="Phases (seconds from the fault; client cache: a duration)")
        for column in ("phase", "predicted (mean)", "measured", "measured / predicted"):
            table.add_column(column, justify="left" if column == "phase" else "right")
        for phase in self.phases:
            ratio = "" if phase.ratio is None else f"{phase.ratio:.2f}"
            table.add_row(
                LABELS[phase.name], seconds(phase.predicted_s), seconds(phase.measured_s), ratio
            )
        return table
