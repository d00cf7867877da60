"""What the demo shows while it runs: a live rich panel on a terminal, log lines otherwise."""

from __future__ import annotations

from collections import deque
from typing import IO, Protocol

import attrs
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text


@attrs.frozen
class RegionState:
    name: str
    address: str
    app: str
    """"up", "down" or "blackholed" (running, but its address never answers)."""
    health: str
    """The router's verdict: healthy, unhealthy or unknown."""
    store: str
    """"writes", "replica" or "failed"."""


@attrs.frozen
class Snapshot:
    elapsed_s: float
    phase: str
    regions: tuple[RegionState, ...]
    dns_answer: str
    ok_last_s: int
    failed_last_s: int
    ok_total: int
    failed_total: int


class View(Protocol):
    def event(self, elapsed_s: float, text: str) -> None: ...

    def update(self, snapshot: Snapshot) -> None: ...

    def close(self) -> None: ...


class QuietView:
    """Shows nothing (``--json``: the report is the only output)."""

    def event(self, elapsed_s: float, text: str) -> None:
        pass

    def update(self, snapshot: Snapshot) -> None:
        pass

    def close(self) -> None:
        pass


class LogView:
    """One line per event and a traffic line per second, for pipes and CI logs."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._next_summary_s = 1.0

    def _line(self, elapsed_s: float, text: str) -> None:
        print(f"[{elapsed_s:6.2f}s] {text}", file=self._stream, flush=True)

    def event(self, elapsed_s: float, text: str) -> None:
        self._line(elapsed_s, text)

    def update(self, snapshot: Snapshot) -> None:
        if snapshot.elapsed_s < self._next_summary_s or snapshot.phase == "starting":
            return
        self._next_summary_s = snapshot.elapsed_s + 1.0
        self._line(
            snapshot.elapsed_s,
            f"traffic: {snapshot.ok_last_s} ok/s, {snapshot.failed_last_s} failed/s; "
            f"dns -> {snapshot.dns_answer}",
        )

    def close(self) -> None:
        pass


_COLOURS = {
    "up": "green",
    "down": "red",
    "blackholed": "red",
    "healthy": "green",
    "unhealthy": "red",
    "unknown": "yellow",
    "writes": "green",
    "replica": "cyan",
    "failed": "red",
}


def _coloured(value: str) -> Text:
    return Text(value, style=_COLOURS.get(value, ""))


class LiveView:
    """A panel redrawn in place: regions, DNS answer, request rates and the latest events."""

    def __init__(self, console: Console, *, max_events: int = 10) -> None:
        self._events: deque[str] = deque(maxlen=max_events)
        self._snapshot: Snapshot | None = None
        self._live = Live(self._render(), console=console, refresh_per_second=8, transient=False)
        self._live.start()

    def event(self, elapsed_s: float, text: str) -> None:
        self._events.append(f"[{elapsed_s:6.2f}s] {text}")
        self._live.update(self._render())

    def update(self, snapshot: Snapshot) -> None:
        self._snapshot = snapshot
        self._live.update(self._render())

    def close(self) -> None:
        self._live.update(self._render(), refresh=True)
        self._live.stop()

    def _render(self) -> Group:
        snap = self._snapshot
        regions = Table(expand=True)
        for column in ("region", "address", "app", "health (router)", "store"):
            regions.add_column(column)
        if snap is not None:
            for r in snap.regions:
                regions.add_row(
                    r.name, r.address, _coloured(r.app), _coloured(r.health), _coloured(r.store)
                )
        if snap is None:
            status = Text("starting...")
        else:
            status = Text.assemble(
                f"elapsed {snap.elapsed_s:5.1f}s   phase: {snap.phase}\n",
                f"DNS answers: {snap.dns_answer}\n",
                "requests last second: ",
                (f"{snap.ok_last_s} ok", "green"),
                ", ",
                (f"{snap.failed_last_s} failed", "red" if snap.failed_last_s else ""),
                f"   total: {snap.ok_total} ok, {snap.failed_total} failed",
            )
        events = Text("\n".join(self._events) or "-")
        return Group(
            Panel(Group(regions, status), title="multiregion demo"),
            Panel(events, title="events"),
        )
