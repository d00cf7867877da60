"""The faults a listener can hold, as value types that also travel as JSON.

Each listener holds at most one toxic of each kind, switched at run time; installing a kind it
already holds replaces it. What each does to the traffic:

``Refuse``       new connections refused (nothing listens), open ones reset.
``Blackhole``    connections accepted and never answered; what is sent is swallowed. Open
                 connections go silent too, and are reset when the blackhole is lifted.
``Latency``      each chunk of data delayed by ``latency_s`` plus or minus up to ``jitter_s``.
``Bandwidth``    at most ``bytes_per_s`` bytes a second.
``ResetAfter``   a connection reset (TCP RST) once ``bytes`` bytes went through it.
``HttpErrors``   a share ``rate`` of HTTP requests answered ``status`` by the proxy itself
                 (the connection is then closed); the others reach the upstream.
``SlowClose``    when one side closes, the other is closed ``delay_s`` later.
``Engage``       a lever's fault switched on: levers (faults that are not TCP, run by the
                 proxy's own process, such as a local store's replica failed) take only it.

``direction`` is "downstream" (upstream to client, the answers: the default, as in
Toxiproxy), "upstream" (client to upstream) or "both".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from multiregion import validate
from multiregion.errors import InvalidInput

DIRECTIONS = ("downstream", "upstream", "both")
MAX_DELAY_S = 600.0


def _delay(field: str) -> Any:
    def check(_: object, attribute: attrs.Attribute[float], value: object) -> None:
        number = validate.finite_non_negative(f"{field}.{attribute.name}", value)
        if number > MAX_DELAY_S:
            raise InvalidInput(f"{field}.{attribute.name}", f"at most {MAX_DELAY_S:g} seconds")

    return check


def _direction(_: object, attribute: attrs.Attribute[str], value: object) -> None:
    validate.member(f"toxic.{attribute.name}", value, DIRECTIONS)


@attrs.frozen
class Refuse:
    kind: ClassVar[str] = "refuse"


@attrs.frozen
class Blackhole:
    kind: ClassVar[str] = "blackhole"


@attrs.frozen
class Latency:
    kind: ClassVar[str] = "latency"
    latency_s: float = attrs.field(validator=_delay("latency"))
    jitter_s: float = attrs.field(default=0.0, validator=_delay("latency"))
    direction: str = attrs.field(default="downstream", validator=_direction)

    def __attrs_post_init__(self) -> None:
        if self.jitter_s > self.latency_s:
            raise InvalidInput("latency.jitter_s", "must not exceed latency_s")

    def applies(self, direction: str) -> bool:
        return self.direction in (direction, "both")


@attrs.frozen
class Bandwidth:
    kind: ClassVar[str] = "bandwidth"
    bytes_per_s: int = attrs.field()
    direction: str = attrs.field(default="downstream", validator=_direction)

    @bytes_per_s.validator
    def _check(self, _: attrs.Attribute[int], value: object) -> None:
        validate.int_range("bandwidth.bytes_per_s", value, 1, 2**40)

    def applies(self, direction: str) -> bool:
        return self.direction in (direction, "both")


@attrs.frozen
class ResetAfter:
    kind: ClassVar[str] = "reset_after"
    bytes: int = attrs.field()

    @bytes.validator
    def _check(self, _: attrs.Attribute[int], value: object) -> None:
        validate.int_range("reset_after.bytes", value, 0, 2**62)


@attrs.frozen
class HttpErrors:
    kind: ClassVar[str] = "http_errors"
    rate: float = attrs.field()
    status: int = attrs.field(default=503)

    @rate.validator
    def _check_rate(self, _: attrs.Attribute[float], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput("http_errors.rate", f"{value!r} is not a number")
        if not math.isfinite(value) or not 0 <= value <= 1:
            raise InvalidInput("http_errors.rate", "must be a share from 0 to 1")

    @status.validator
    def _check_status(self, _: attrs.Attribute[int], value: object) -> None:
        validate.int_range("http_errors.status", value, 400, 599)


@attrs.frozen
class SlowClose:
    kind: ClassVar[str] = "slow_close"
    delay_s: float = attrs.field(validator=_delay("slow_close"))


@attrs.frozen
class Engage:
    kind: ClassVar[str] = "engage"


Toxic = Refuse | Blackhole | Latency | Bandwidth | ResetAfter | HttpErrors | SlowClose | Engage
KINDS: dict[str, type[Toxic]] = {
    t.kind: t
    for t in (Refuse, Blackhole, Latency, Bandwidth, ResetAfter, HttpErrors, SlowClose, Engage)
}


def to_dict(toxic: Toxic) -> dict[str, Any]:
    return {"kind": toxic.kind, **attrs.asdict(toxic)}


def from_dict(data: object) -> Toxic:
    """A toxic from its JSON form, ``{"kind": "latency", "latency_s": 0.2, ...}``."""
    if not isinstance(data, Mapping):
        raise InvalidInput("toxic", "must be an object with a kind")
    fields = dict(data)
    kind = validate.one_of("toxic.kind", fields.pop("kind", None), KINDS)
    cls = KINDS[kind]
    known = {a.name for a in attrs.fields(cls)}
    unknown = set(fields) - known
    if unknown:
        raise InvalidInput(f"toxic.{sorted(unknown)[0]}", f"{kind} takes {sorted(known) or 'none'}")
    try:
        return cls(**fields)
    except TypeError as exc:
        raise InvalidInput("toxic", f"{kind}: {exc}") from None
