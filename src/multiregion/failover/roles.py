"""The roles of a DR plan and their hand-overs, journaled with the run they belong to.

A runbook starts with the people its ``roles`` name; during a long incident a role changes
hands (the incident commander's shift ends, the technical lead of the surviving region takes
over). ``hand_over`` records who takes the role, who handed it over and why, in the run's
journal: the steps that follow see the new holder (``ctx.person``), notifications name them,
and the post-incident report lists every change. On a store or bucket journal a hand-over can
be written from anywhere while the run goes on; a file journal is locked while a process drives
the run, so there it is written between runs.
"""

from __future__ import annotations

import os

from multiregion.errors import InvalidInput, NotFound
from multiregion.failover.journal import (
    JournalConflict,
    JournalLocation,
    Record,
    location,
    replay,
    writer_id,
)

INCIDENT_COMMANDER = "incident_commander"
TECHNICAL_LEAD = "technical_lead"
COMMUNICATIONS = "communications"
STANDARD_ROLES = (INCIDENT_COMMANDER, TECHNICAL_LEAD, COMMUNICATIONS)
"""The roles a DR plan names; a runbook may add its own."""


def _name(field: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 100:
        raise InvalidInput(field, "must be non-empty text of at most 100 characters")
    if any(ord(c) < 32 for c in value):
        raise InvalidInput(field, "must not contain control characters")
    return value


def hand_over(
    journal: str | os.PathLike[str] | JournalLocation,
    role: str,
    to: str,
    *,
    by: str,
    reason: str,
) -> Record:
    """Give ``role`` to ``to`` in the run journaled at ``journal``; ``by`` is who hands it over.

    A role nobody held yet is assigned (a ``role-assigned`` record), one held is handed over
    (``role-handed-over``, naming the previous holder). A finished run takes no hand-over.
    """
    for field, value in (("role", role), ("to", to), ("by", by), ("reason", reason)):
        _name(field, value)
    where = location(journal)
    if not where.read():
        raise NotFound(f"journal {where.name} holds no run")
    with where.open() as opened:
        found = replay(opened.records)
        if found.outcome == "finished":
            raise JournalConflict(f"journal {opened.name} is of a finished run")
        previous = found.roles.get(role)
        if previous == to:
            raise InvalidInput("to", f"{to!r} already holds {role!r}")
        kind = "role-handed-over" if previous else "role-assigned"
        told = f"{role}: {previous} -> {to}" if previous else f"{role}: {to}"
        return opened.append(
            kind,
            role=role,
            message=f"{told} (by {by}: {reason})",
            person=to,
            previous=previous,
            handed_by=by,
            reason=reason,
            by=writer_id(),
        )
