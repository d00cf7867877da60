"""A drill's timeline, and the picture of it: one SVG a person can open in any browser.

Lanes from top to bottom: health verdicts per region, the router's DNS answer, the client's
(cached) answer, the store's write region, endpoint overrides, one lane per failover phase (a
bar where it was measured, a black diamond where it was predicted), requests and writes (one
tick each, green ok, red failed), and decisions (fault, detection, switch, promotion,
recovery, failback) as numbered vertical markers across all lanes, listed below. A drill that
did not recover is shaded red from the fault on and says so in large type.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from pathlib import Path

import attrs

from multiregion.drill.phases import LABELS, PHASES

WIDTH = 1000
LEFT = 150
RIGHT = 30
LANE = 34
TOP = 80

_COLOURS = {
    "healthy": "#2e9d4f",
    "unhealthy": "#d64541",
    "unknown": "#b0b0b0",
    "ok": "#2e9d4f",
    "failed": "#d64541",
    "measured": "#3b6fd4",
}
_PALETTE = ("#3b6fd4", "#e08a1e", "#8e44ad", "#16a085", "#c0392b", "#7f8c8d")


@attrs.frozen
class Span:
    """A state that held over ``[start, end)`` in one lane (``health:region-a`` or ``dns``)."""

    lane: str
    start: float
    end: float
    state: str


@attrs.frozen
class Mark:
    """A moment: a request outcome (lane ``requests``) or a decision (lane ``events``)."""

    lane: str
    at: float
    label: str
    ok: bool = True


@attrs.define
class Timeline:
    """Everything a drill saw, in seconds since the drill started."""

    spans: list[Span] = attrs.field(factory=list)
    marks: list[Mark] = attrs.field(factory=list)

    def mark(self, lane: str, at: float, label: str, ok: bool = True) -> None:
        self.marks.append(Mark(lane, at, label, ok))

    @property
    def end(self) -> float:
        ends = [s.end for s in self.spans] + [m.at for m in self.marks]
        return max(ends, default=1.0) or 1.0

    def events(self) -> list[Mark]:
        return sorted((m for m in self.marks if m.lane == "events"), key=lambda m: m.at)

    def lanes(self) -> list[str]:
        seen = {s.lane for s in self.spans} | {m.lane for m in self.marks if m.lane != "events"}
        return sorted(seen | {"requests"}, key=_lane_rank)


_ORDER = ("health:", "dns", "client-dns", "write-region", "overrides", "phase:", "requests")
_NAMES = {
    "dns": "DNS answer",
    "client-dns": "client's answer",
    "write-region": "write region",
    "overrides": "overrides",
}


def _lane_rank(lane: str) -> tuple[int, int, str]:
    rank = next((i for i, p in enumerate(_ORDER) if lane.startswith(p)), len(_ORDER))
    phase = lane.removeprefix("phase:")
    return rank, PHASES.index(phase) if phase in PHASES else 0, lane


def _label(lane: str) -> str:
    if lane.startswith("health:"):
        return lane.removeprefix("health:") + " health"
    if lane.startswith("phase:"):
        return LABELS.get(lane.removeprefix("phase:"), lane)
    return _NAMES.get(lane, lane)


def _x(at: float, end: float) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * at / end


def _colour(state: str, others: dict[str, str]) -> str:
    if state in _COLOURS:
        return _COLOURS[state]
    if state not in others:
        others[state] = _PALETTE[len(others) % len(_PALETTE)]
    return others[state]


def render_svg(timeline: Timeline, title: str, failed: str | None = None) -> str:
    """The timeline as a standalone SVG document; ``failed`` names an outcome that is not a
    recovery (shaded from the fault on)."""
    end = timeline.end
    lanes = timeline.lanes()
    events = timeline.events()
    levels = _stack([_x(m.at, end) for m in events])
    top = TOP + 11 * max(levels, default=0)  # room for stacked numbers under the title
    height = top + LANE * len(lanes) + 40 + 16 * len(events)
    others: dict[str, str] = {}
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
    ]
    for line_number, line in enumerate(_wrap(title, 100)):
        weight = ' font-weight="bold" font-size="15"' if line_number == 0 else ""
        out.append(f'<text x="20" y="{22 + 16 * line_number}"{weight}>{escape(line)}</text>')
    for index, lane in enumerate(lanes):
        y = top + index * LANE
        label = _label(lane)
        out.append(f'<text x="{LEFT - 8}" y="{y + 20}" text-anchor="end">{escape(label)}</text>')
        out.append(
            f'<rect x="{LEFT}" y="{y + 4}" width="{WIDTH - LEFT - RIGHT}" height="{LANE - 8}" '
            'fill="#f4f4f4"/>'
        )
        for span in (s for s in timeline.spans if s.lane == lane):
            x0, x1 = _x(span.start, end), _x(span.end, end)
            out.append(
                f'<rect x="{x0:.1f}" y="{y + 6}" width="{max(x1 - x0, 1):.1f}" '
                f'height="{LANE - 12}" fill="{_colour(span.state, others)}">'
                f"<title>{escape(span.state)} {span.start:.2f}-{span.end:.2f}s</title></rect>"
            )
            if x1 - x0 > 60:
                out.append(
                    f'<text x="{x0 + 4:.1f}" y="{y + 21}" fill="white">{escape(span.state)}</text>'
                )
        for mark in (m for m in timeline.marks if m.lane == lane):
            x = _x(mark.at, end)
            if lane.startswith("phase:"):
                mid = y + LANE / 2
                out.append(
                    f'<path d="M{x:.1f} {mid - 7:.1f} L{x + 6:.1f} {mid:.1f} L{x:.1f} '
                    f'{mid + 7:.1f} L{x - 6:.1f} {mid:.1f} Z" fill="black">'
                    f"<title>{escape(mark.label)}</title></path>"
                )
                continue
            colour = _COLOURS["ok" if mark.ok else "failed"]
            out.append(
                f'<line x1="{x:.1f}" y1="{y + 6}" x2="{x:.1f}" y2="{y + LANE - 6}" '
                f'stroke="{colour}" stroke-width="1.5"/>'
            )
    bottom = top + LANE * len(lanes)
    fault = next((m.at for m in events if m.label.startswith("fault:")), None)
    if failed is not None:
        if fault is not None:
            x = _x(fault, end)
            out.append(
                f'<rect x="{x:.1f}" y="{top}" width="{WIDTH - RIGHT - x:.1f}" '
                f'height="{bottom - top}" fill="#d64541" fill-opacity="0.12"/>'
            )
        out.append(
            f'<text x="{WIDTH - RIGHT}" y="{top - 30}" text-anchor="end" font-size="20" '
            f'font-weight="bold" fill="#d64541">{escape(failed.upper())}</text>'
        )
    for number, (mark, level) in enumerate(zip(events, levels, strict=True), start=1):
        x = _x(mark.at, end)
        lift = 11 * level
        out.append(
            f'<line x1="{x:.1f}" y1="{top - lift}" x2="{x:.1f}" y2="{bottom}" stroke="#333" '
            'stroke-dasharray="4 3"/>'
        )
        out.append(f'<text x="{x + 2:.1f}" y="{top - 4 - lift}" font-size="10">{number}</text>')
        out.append(
            f'<text x="{LEFT}" y="{bottom + 36 + 16 * (number - 1)}">{number}. '
            f"{mark.at:.2f}s {escape(mark.label)}</text>"
        )
    step = _tick_step(end)
    tick = 0.0
    while tick <= end + 1e-9:
        x = _x(tick, end)
        out.append(
            f'<line x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 5}" stroke="#333"/>'
        )
        out.append(f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">{tick:g}s</text>')
        tick += step
    out.append("</svg>")
    return "\n".join(out)


def _stack(xs: list[float], apart: float = 16) -> list[int]:
    """A height for each marker's number so that no two at one height are closer than
    ``apart`` pixels: markers never overlap, however close their moments."""
    rows: list[list[float]] = []
    levels = []
    for x in xs:
        level = next(
            (i for i, row in enumerate(rows) if all(abs(x - o) >= apart for o in row)), len(rows)
        )
        if level == len(rows):
            rows.append([])
        rows[level].append(x)
        levels.append(level)
    return levels


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines[:3]


def _tick_step(end: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 30, 60, 120, 300):
        if end / step <= 12:
            return float(step)
    return 600.0


def write_svg(
    timeline: Timeline, title: str, path: str | Path, *, failed: str | None = None
) -> Path:
    target = Path(path)
    target.write_text(render_svg(timeline, title, failed), encoding="utf-8")
    return target


def spans_from_samples(lane: str, samples: Sequence[tuple[float, str]], end: float) -> list[Span]:
    """Turn (time, state) samples into spans, merging consecutive equal states."""
    spans: list[Span] = []
    for index, (at, state) in enumerate(samples):
        until = samples[index + 1][0] if index + 1 < len(samples) else end
        if spans and spans[-1].state == state:
            last = spans.pop()
            spans.append(Span(lane, last.start, until, state))
        else:
            spans.append(Span(lane, at, until, state))
    return spans
