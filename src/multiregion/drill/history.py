"""Drill history: every report kept as one JSON file in a folder, read back in time order, and
drawn as RTO and RPO against the objectives over time.

``multiregion drill`` keeps each report in ``state/drills/`` next to the spec (``--history``
elsewhere); ``multiregion drills list`` shows them.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from multiregion.drill.report import DrillReport
from multiregion.errors import InvalidInput

WIDTH, HEIGHT = 900, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 30, 60, 70


def save(report: DrillReport, folder: str | Path, *, svg: str | None = None) -> Path:
    """Keep ``report`` as ``<UTC time>-<fault>.json`` in ``folder``; returns the file."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    slug = re.sub(r"[^a-z0-9]+", "-", report.fault.lower()).strip("-")[:40]
    path = target / f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{slug}.json"
    entry = {"at": now.isoformat(timespec="seconds"), **report.to_dict(), "svg": svg}
    path.write_text(json.dumps(entry, indent=1) + "\n", encoding="utf-8")
    return path


def load(folder: str | Path) -> list[dict[str, Any]]:
    """Every kept report, oldest first; a file that is not a report is skipped."""
    found = []
    for path in sorted(Path(folder).glob("*.json")):
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(entry, dict) and "at" in entry and "outcome" in entry:
            found.append(entry)
    return sorted(found, key=lambda e: str(e["at"]))


def render_svg(entries: list[dict[str, Any]], title: str) -> str:
    """RTO (blue) and RPO (orange) per drill, in time order, with each objective as a dashed
    line of its colour; a drill that did not recover is a red cross at the top."""
    if not entries:
        raise InvalidInput("entries", "no drill has been kept yet")
    values = [float(e.get(k) or 0.0) for e in entries for k in ("rto_s", "rpo_s")]
    last = entries[-1]
    objectives = [float(last[k]) for k in ("objective_rto_s", "objective_rpo_s") if last.get(k)]
    top: float = max([*values, *objectives, 1.0]) * 1.15
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(index: int) -> float:
        return LEFT + plot_w * (index + 0.5) / len(entries)

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="20" y="26" font-weight="bold" font-size="15">{escape(title)}</text>',
        '<text x="20" y="44">RTO (blue) and RPO (orange) per drill, seconds; dashed: the '
        "objectives; a red cross: not recovered</text>",
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" '
        'stroke="#333"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#333"/>',
    ]
    for tick in range(5):
        value = top * tick / 4
        out.append(
            f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:.1f}</text>'
        )
    for key, colour in (("objective_rto_s", "#3b6fd4"), ("objective_rpo_s", "#e08a1e")):
        objective = entries[-1].get(key)
        if objective is not None:
            out.append(
                f'<line x1="{LEFT}" y1="{y(objective):.1f}" x2="{WIDTH - RIGHT}" '
                f'y2="{y(objective):.1f}" stroke="{colour}" stroke-dasharray="6 4"/>'
            )
    for key, colour, shift in (("rto_s", "#3b6fd4", -4), ("rpo_s", "#e08a1e", 4)):
        points = [
            (x(i) + shift, y(e[key])) for i, e in enumerate(entries) if e.get(key) is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}"/>')
        for px, py in points:
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{colour}"/>')
    for i, entry in enumerate(entries):
        if entry.get("outcome") != "recovered":
            cx, cy = x(i), TOP + 8
            out.append(
                f'<path d="M{cx - 5:.1f} {cy - 5} L{cx + 5:.1f} {cy + 5} M{cx - 5:.1f} {cy + 5} '
                f'L{cx + 5:.1f} {cy - 5}" stroke="#d64541" stroke-width="2.5">'
                f"<title>{escape(str(entry.get('outcome')))}</title></path>"
            )
        label = str(entry.get("at", ""))[:19].replace("T", " ")
        out.append(
            f'<text x="{x(i):.1f}" y="{TOP + plot_h + 16}" text-anchor="end" font-size="10" '
            f'transform="rotate(-30 {x(i):.1f} {TOP + plot_h + 16})">{escape(label)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)
