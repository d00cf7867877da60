"""The post-incident report of a runbook run, from its journal and the drill's measurements.

Every DR plan ends with continuous improvement: after the recovery, the team writes down what
happened, whether the objectives held, who decided what, and what to change. ``build`` gathers
the facts (timeline, step durations and attempts, RTO and RPO against the objectives,
approvals, moves of the write region, role hand-overs); ``to_markdown`` and ``to_html`` (with
the timeline as an SVG picture) write the document, with a lessons-learned section and action
items suggested by the facts (a missed objective, a failed step, a forced promote) for the team
to complete.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from multiregion.errors import InvalidInput, NotFound
from multiregion.failover.journal import Record, replay

PLACEHOLDER = "_to fill in_"


@attrs.frozen
class StepSummary:
    name: str
    role: str | None
    person: str | None
    attempts: int
    started_at: float | None
    finished_at: float | None
    outcome: str
    """``finished``, ``failed`` (its last attempt), ``interrupted``, or ``not run``."""
    last_error: str | None = None

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


@attrs.frozen
class DecisionEntry:
    """Something a person decided: an approval, a denial, a move, a role hand-over."""

    at: float
    what: str
    by: str
    reason: str
    step: str | None = None
    flagged: bool = False
    """A forced promote or an overridden guard rail: worth a look in the review."""


@attrs.frozen
class Objective:
    """A measured recovery figure against its objective; ``source`` says where it came from."""

    name: str
    achieved_s: float | None
    objective_s: float | None
    source: str
    recovered: bool = True
    """False when the service never came back (a drill that did not recover): never met."""

    @property
    def met(self) -> bool | None:
        if self.objective_s is None:
            return None
        if not self.recovered:
            return False
        if self.achieved_s is None:
            return None
        return self.achieved_s <= self.objective_s

    def verdict(self) -> str:
        return {None: "not judged", True: "met", False: "MISSED"}[self.met]


@attrs.frozen
class PostIncidentReport:
    runbook: str
    run_id: str | None
    outcome: str
    started_at: float
    ended_at: float
    roles_at_start: Mapping[str, str] = attrs.field(hash=False)
    roles_at_end: Mapping[str, str] = attrs.field(hash=False)
    steps: tuple[StepSummary, ...]
    decisions: tuple[DecisionEntry, ...]
    rto: Objective
    rpo: Objective
    records: tuple[Record, ...] = attrs.field(repr=False)
    drill: Mapping[str, Any] | None = attrs.field(default=None, hash=False, repr=False)

    @property
    def drivers(self) -> tuple[str, ...]:
        """The processes (host:pid) that drove the run, in order: more than one when it was
        resumed elsewhere."""
        found = (
            str(r.data.get("by", "?"))
            for r in self.records
            if r.kind in ("run-started", "run-resumed")
        )
        return tuple(dict.fromkeys(found))

    def action_items(self) -> list[str]:
        """Actions the facts call for; the team adds its own."""
        items = []
        for figure in (self.rto, self.rpo):
            if not figure.recovered:
                items.append(f"{figure.name}: the service never came back: find what held it")
            elif figure.met is False:
                assert figure.achieved_s is not None
                assert figure.objective_s is not None
                items.append(
                    f"{figure.name} of {figure.achieved_s:.1f} s missed its objective of "
                    f"{figure.objective_s:.1f} s: find what took longest and shorten it"
                )
            elif figure.achieved_s is None:
                items.append(f"{figure.name} was not measured: measure it in the next drill")
        slowest = max(
            (s for s in self.steps if s.duration_s is not None),
            key=lambda s: s.duration_s or 0.0,
            default=None,
        )
        if slowest is not None and len(self.steps) > 1:
            items.append(
                f"the slowest step was '{slowest.name}' ({slowest.duration_s:.1f} s): "
                "can it run ahead of an incident, or faster?"
            )
        for step in self.steps:
            if step.attempts > 1 or step.outcome == "failed":
                items.append(
                    f"step '{step.name}' ran {step.attempts} times"
                    + (f" (last error: {step.last_error})" if step.last_error else "")
                    + ": make it succeed the first time"
                )
        for decision in self.decisions:
            if decision.flagged:
                items.append(
                    f"{decision.what} ({decision.reason}): check the divergence log and "
                    "reconcile what was superseded"
                )
        if self.outcome != "finished":
            items.append(f"the run ended {self.outcome}: finish the recovery and review why")
        return items


def _decision(record: Record) -> DecisionEntry | None:
    data = record.data
    if record.kind in ("approval-granted", "approval-denied"):
        verb = "approved" if record.kind == "approval-granted" else "denied"
        return DecisionEntry(
            record.at,
            f"{verb} step '{record.step}' (via {data.get('via', 'unrecorded')})",
            str(data.get("approver", "unrecorded")),
            str(data.get("reason", record.message)),
            record.step,
        )
    if record.kind == "move":
        flags = (["forced promote"] if data.get("forced") else []) + [
            f"overrode: {rail}" for rail in data.get("overridden", [])
        ]
        what = f"{data.get('action')} {data.get('from_region')} -> {data.get('to_region')}"
        epoch = data.get("epoch")
        return DecisionEntry(
            record.at,
            what
            + (f" (epoch {epoch})" if epoch is not None else "")
            + (f" [{'; '.join(flags)}]" if flags else ""),
            str(data.get("by") or "unrecorded"),
            str(data.get("reason", "")),
            record.step,
            flagged=bool(flags),
        )
    if record.kind in ("role-assigned", "role-handed-over"):
        return DecisionEntry(
            record.at,
            f"{record.role} -> {data.get('person')}"
            + (f" (from {data['previous']})" if data.get("previous") else ""),
            str(data.get("handed_by", "unrecorded")),
            str(data.get("reason", "")),
        )
    return None


def _steps(
    records: Iterable[Record],
    roles_at: Mapping[str, str],
    order: Iterable[str],
    roles_of: Mapping[str, str | None],
) -> tuple[StepSummary, ...]:
    attempts: dict[str, int] = {}
    first_start: dict[str, float] = {}
    finished: dict[str, float] = {}
    errors: dict[str, str] = {}
    last: dict[str, str] = {}
    for record in records:
        step = record.step
        if step is None:
            continue
        if record.kind == "step-started":
            attempts[step] = attempts.get(step, 0) + 1
            first_start.setdefault(step, record.at)
            last[step] = "interrupted"
        elif record.kind == "step-finished":
            finished[step], last[step] = record.at, "finished"
        elif record.kind == "step-failed":
            errors[step], last[step] = record.message, "failed"
    summaries = []
    for name in order:
        role = roles_of.get(name)
        summaries.append(
            StepSummary(
                name,
                role,
                roles_at.get(role) if role else None,
                attempts.get(name, 0),
                first_start.get(name),
                finished.get(name),
                last.get(name, "not run"),
                errors.get(name),
            )
        )
    return tuple(summaries)


def build(
    records: Iterable[Record],
    *,
    rto_objective_s: float | None = None,
    rpo_objective_s: float | None = None,
    drill: Mapping[str, Any] | None = None,
    restored_by: str | None = None,
) -> PostIncidentReport:
    """The report of the run whose journal holds ``records``.

    RTO and RPO come from ``drill`` (a drill report's JSON: ``rto_s``, ``rpo_s``) when given;
    otherwise RTO runs from the run's start until the step ``restored_by`` finished (the one
    that gives users their service back, e.g. ``verify``) or, without it, until the run
    finished; RPO is the ``rpo_s`` a step put in the shared state, if one did. Objectives
    default to the drill's.
    """
    records = tuple(records)
    found = replay(records)
    if found.outcome == "new" or found.runbook is None:
        raise NotFound("the journal holds no run to report on")
    if found.dry_run:
        raise InvalidInput("journal", "is a dry run's: there is no incident to report on")
    if drill is not None and not isinstance(drill, Mapping):
        raise InvalidInput("drill", "must be a drill report's JSON object")
    start_record = next(r for r in records if r.kind == "run-started")
    roles_at_start = dict(start_record.data.get("roles", {}))
    roles_of: dict[str, str | None] = {}
    for record in records:
        if record.step is not None and record.kind.startswith("step-"):
            roles_of.setdefault(record.step, record.role)
    ended = next((r.at for r in records if r.kind == "run-finished"), None)
    drill = dict(drill) if drill is not None else None
    rto_objective = rto_objective_s
    rpo_objective = rpo_objective_s
    if drill is not None:
        rto_objective = drill.get("objective_rto_s") if rto_objective is None else rto_objective
        rpo_objective = drill.get("objective_rpo_s") if rpo_objective is None else rpo_objective
        recovered = drill.get("outcome", "recovered") == "recovered"
        rto = Objective(
            "RTO",
            drill.get("rto_s"),
            rto_objective,
            "drill: fault to first good request" if recovered else "drill: never recovered",
            recovered,
        )
        rpo = Objective("RPO", drill.get("rpo_s"), rpo_objective, "drill: writes lost")
    else:
        until, what = ended, "run finished"
        if restored_by is not None:
            if restored_by not in found.steps:
                raise InvalidInput("restored_by", f"{restored_by!r} is not a step of the run")
            until = next(
                (r.at for r in records if r.kind == "step-finished" and r.step == restored_by),
                None,
            )
            what = f"'{restored_by}' finished"
        took = None if until is None else until - start_record.at
        rto = Objective("RTO", took, rto_objective, f"journal: run started to {what}")
        rpo_s = found.state.get("rpo_s")
        rpo = Objective(
            "RPO",
            float(rpo_s) if isinstance(rpo_s, int | float) else None,
            rpo_objective,
            "journal: rpo_s recorded by a step" if rpo_s is not None else "not measured",
        )
    decisions = tuple(d for d in map(_decision, records) if d is not None)
    return PostIncidentReport(
        runbook=found.runbook,
        run_id=found.run_id,
        outcome=found.outcome,
        started_at=start_record.at,
        ended_at=records[-1].at,
        roles_at_start=roles_at_start,
        roles_at_end=dict(found.roles),
        steps=_steps(records, found.roles, found.steps, roles_of),
        decisions=decisions,
        rto=rto,
        rpo=rpo,
        records=records,
        drill=drill,
    )


# --------------------------------------------------------------------------- writing it


def _clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at)) + "Z"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _cell(text: object) -> str:
    """Markdown table cell text: no pipes or newlines to break the table."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _sections(report: PostIncidentReport) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of each table, shared by the Markdown and HTML writers."""
    first = report.started_at
    return [
        (
            "Recovery objectives",
            ["measure", "achieved", "objective", "verdict", "source"],
            [
                [f.name, _seconds(f.achieved_s), _seconds(f.objective_s), f.verdict(), f.source]
                for f in (report.rto, report.rpo)
            ],
        ),
        (
            "Roles",
            ["role", "at the start", "at the end"],
            [
                [role, report.roles_at_start.get(role, "-"), report.roles_at_end.get(role, "-")]
                for role in dict.fromkeys([*report.roles_at_start, *report.roles_at_end])
            ],
        ),
        (
            "Steps",
            ["step", "role", "held by", "attempts", "took", "outcome"],
            [
                [
                    s.name,
                    s.role or "-",
                    s.person or "-",
                    str(s.attempts),
                    _seconds(s.duration_s),
                    s.outcome
                    + (f" ({s.last_error})" if s.last_error and s.outcome != "finished" else ""),
                ]
                for s in report.steps
            ],
        ),
        (
            "Decisions and who made them",
            ["time", "decision", "by", "why"],
            [[f"+{d.at - first:.1f} s", d.what, d.by, d.reason or "-"] for d in report.decisions],
        ),
        (
            "Timeline",
            ["time (UTC)", "since start", "what", "step", "message"],
            [
                [_clock(r.at), f"+{r.at - first:.1f} s", r.kind, r.step or "-", r.message]
                for r in report.records
            ],
        ),
    ]


def _summary(report: PostIncidentReport) -> str:
    return (
        f"Run {report.run_id or '-'} of runbook '{report.runbook}' started "
        f"{_clock(report.started_at)} and ended {report.outcome} {_clock(report.ended_at)}, "
        f"{report.ended_at - report.started_at:.1f} s later. "
        f"Driven by {', then '.join(report.drivers)}."
    )


LESSONS = ("What went well", "What went wrong", "Where we were lucky")


def to_markdown(report: PostIncidentReport) -> str:
    lines = [f"# Post-incident report: {report.runbook}", "", _summary(report), ""]
    if report.drill is not None:
        lines += [
            f"Drill: fault `{report.drill.get('fault')}` on {report.drill.get('region')}, "
            f"outcome {report.drill.get('outcome')}.",
            "",
        ]
    for title, header, rows in _sections(report):
        lines += [f"## {title}", ""]
        if not rows:
            lines += ["None.", ""]
            continue
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
        lines.append("")
    lines += ["## Lessons learned", ""]
    for title in LESSONS:
        lines += [f"### {title}", "", PLACEHOLDER, ""]
    lines += [
        "## Action items",
        "",
        "| # | action | owner | due | status |",
        "|---|---|---|---|---|",
    ]
    items = [*report.action_items(), PLACEHOLDER]
    lines += [
        f"| {n} | {_cell(item)} | {PLACEHOLDER} | {PLACEHOLDER} | open |"
        for n, item in enumerate(items, 1)
    ]
    return "\n".join(lines) + "\n"


def to_html(report: PostIncidentReport) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Post-incident report: {esc(report.runbook)}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
        ".missed{color:#b00}</style></head><body>",
        f"<h1>Post-incident report: {esc(report.runbook)}</h1>",
        f"<p>{esc(_summary(report))}</p>",
        timeline_svg(report),
    ]
    for title, header, rows in _sections(report):
        parts.append(f"<h2>{esc(title)}</h2>")
        if not rows:
            parts.append("<p>None.</p>")
            continue
        parts.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
        for row in rows:
            marked = ' class="missed"' if "MISSED" in row else ""
            cells = "".join(f"<td>{esc(c)}</td>" for c in row)
            parts.append(f"<tr{marked}>{cells}</tr>")
        parts.append("</table>")
    parts.append("<h2>Lessons learned</h2>")
    for title in LESSONS:
        parts.append(f"<h3>{esc(title)}</h3><p><em>to fill in</em></p>")
    parts.append(
        "<h2>Action items</h2><table><tr><th>#</th><th>action</th><th>owner</th>"
        "<th>due</th><th>status</th></tr>"
    )
    for n, item in enumerate([*report.action_items(), "to fill in"], 1):
        parts.append(
            f"<tr><td>{n}</td><td>{esc(item)}</td><td><em>to fill in</em></td>"
            "<td><em>to fill in</em></td><td>open</td></tr>"
        )
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"


_ROW, _LEFT, _WIDTH = 22, 170, 560
_COLOURS = {"finished": "#3a7", "failed": "#c33", "interrupted": "#e93", "not run": "#bbb"}


def timeline_svg(report: PostIncidentReport) -> str:
    """The run as a picture: one bar per step attempt, approvals and moves as marks."""
    esc = html.escape
    span = max(report.ended_at - report.started_at, 1e-3)

    def x(at: float) -> float:
        return _LEFT + (at - report.started_at) / span * _WIDTH

    rows = {s.name: n for n, s in enumerate(report.steps)}
    height = _ROW * (len(rows) + 2)
    shapes = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_LEFT + _WIDTH + 20}" '
        f'height="{height}" role="img" aria-label="timeline of {esc(report.runbook)}">',
        f'<text x="{_LEFT}" y="{height - 4}" font-size="11">0 s</text>',
        f'<text x="{_LEFT + _WIDTH}" y="{height - 4}" font-size="11" text-anchor="end">'
        f"{span:.1f} s</text>",
    ]
    for step, row in rows.items():
        shapes.append(f'<text x="4" y="{row * _ROW + 15}" font-size="12">{esc(step[:26])}</text>')
    started: dict[str, float] = {}
    for record in report.records:
        if record.kind in ("run-resumed", "role-assigned", "role-handed-over"):
            shapes.append(_marker(x(record.at), len(rows) * _ROW, record))
        if record.step is None or record.step not in rows:
            continue
        step = record.step
        y = rows[step] * _ROW
        if record.kind == "step-started":
            if step in started:  # the attempt before was cut off by a crash
                shapes.append(_interrupted(x(started[step]), x(record.at), y, step))
            started[step] = record.at
        elif record.kind in ("step-finished", "step-failed") and step in started:
            begin = started.pop(step)
            colour = _COLOURS["finished" if record.kind == "step-finished" else "failed"]
            width = max(x(record.at) - x(begin), 2)
            shapes.append(
                f'<rect x="{x(begin):.1f}" y="{y + 4}" width="{width:.1f}"'
                f' height="{_ROW - 8}" fill="{colour}"><title>{esc(step)}: '
                f"{esc(record.message)}</title></rect>"
            )
        elif record.kind in ("approval-granted", "approval-denied", "move"):
            flagged = record.kind == "approval-denied" or bool(
                record.data.get("forced") or record.data.get("overridden")
            )
            shapes.append(
                f'<circle cx="{x(record.at):.1f}" cy="{y + _ROW / 2}" r="5" '
                f'fill="{"#c33" if flagged else "#36c"}"><title>{esc(record.message)}</title>'
                "</circle>"
            )
    for step, begin in started.items():  # attempts that never ended (the process died)
        shapes.append(_interrupted(x(begin), x(report.ended_at), rows[step] * _ROW, step))
    shapes.append("</svg>")
    return "\n".join(shapes)


def _marker(left: float, bottom: float, record: Record) -> str:
    """A run resumed (by another process, maybe in another region) or a role handed over:
    a dashed line across the steps, labelled below them."""
    label = "resumed" if record.kind == "run-resumed" else f"{record.role} handed over"
    who = record.data.get("by", "")
    return (
        f'<line x1="{left:.1f}" y1="0" x2="{left:.1f}" y2="{bottom}" stroke="#666" '
        f'stroke-dasharray="4 3"><title>{html.escape(record.message)} ({html.escape(str(who))})'
        f'</title></line><text x="{left - 3:.1f}" y="{bottom + 12}" font-size="10" '
        f'text-anchor="end">{html.escape(label)}</text>'
    )


def _interrupted(left: float, right: float, y: float, step: str) -> str:
    return (
        f'<rect x="{left:.1f}" y="{y + 4}" width="{max(right - left, 2):.1f}" '
        f'height="{_ROW - 8}" fill="{_COLOURS["interrupted"]}" fill-opacity="0.5">'
        f"<title>{html.escape(step)}: interrupted</title></rect>"
    )
