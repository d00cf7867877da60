"""Provider-neutral value types: frozen, slotted, and validated when built.

Every constructor raises ``InvalidInput`` naming the field, so a wrong route or check is
refused before any adapter sees it.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs

from multiregion import validate
from multiregion.errors import InvalidInput


def _check(check: Callable[[str, Any], object], field: str) -> Callable[[Any, Any, Any], None]:
    """An attrs validator running ``check`` so that a bad value names ``field``."""

    def run(_instance: Any, _attribute: Any, value: Any) -> None:
        check(field, value)

    return run


def _int(field: str, low: int, high: int) -> Callable[[Any, Any, Any], None]:
    return _check(lambda f, v: validate.int_range(f, v, low, high), field)


def _secs(field: str, low: float, high: float) -> Callable[[Any, Any, Any], None]:
    return _check(lambda f, v: validate.seconds(f, v, low, high), field)


def _typed(field: str, *kinds: type) -> Callable[[Any, Any, Any], None]:
    """An attrs validator: ``value`` is one of ``kinds`` (a bool is not a number here)."""
    names = " or ".join("None" if k is type(None) else k.__name__ for k in kinds)

    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise InvalidInput(field, f"must be {names}, not {type(value).__name__}")

    return check


def _texts(field: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidInput(field, "must be a list of strings")
    if not all(isinstance(v, str) for v in value):
        raise InvalidInput(field, "must be a list of strings")
    return tuple(value)


def _records(value: Any) -> tuple[str, ...]:
    return _texts("answer.records", value)


def _answer_endpoints(value: Any) -> tuple[str, ...]:
    return _texts("answer.endpoints", value)


def _route_name(value: object) -> str:
    return validate.dns_name("name", value)


def _target(value: object) -> str:
    return validate.target("endpoint.target", value)


def _default_timeout(check: Any) -> float:
    """Five seconds, or the interval when that is shorter (a probe must end before the next)."""
    interval = check.interval_s
    return min(5.0, interval) if isinstance(interval, float) else 5.0


def _float(value: Any) -> float:
    """Whole seconds become floats; anything else (a number too large for a float included)
    is left for the validator to judge."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if is_int and value.bit_length() <= 1023:
        return float(value)
    return value  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- routing


@attrs.frozen
class Endpoint:
    """One regional target of a route: an IP address (A/AAAA) or a host name (CNAME)."""

    name: str = attrs.field(validator=_check(validate.endpoint_name, "endpoint.name"))
    region: str = attrs.field(validator=_check(validate.region, "endpoint.region"))
    target: str = attrs.field(converter=_target)

    @property
    def record_type(self) -> Literal["A", "AAAA", "CNAME"]:
        try:
            address = ipaddress.ip_address(self.target)
        except ValueError:
            return "CNAME"
        return "A" if address.version == 4 else "AAAA"


def _backups(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidInput("policy.backups", "must be a list of endpoint names")
    return tuple(validate.endpoint_name("policy.backups", v) for v in value)


@attrs.frozen
class Failover:
    """Active-passive: all traffic to ``primary`` while healthy, else the first healthy backup."""

    primary: str = attrs.field(validator=_check(validate.endpoint_name, "policy.primary"))
    backups: tuple[str, ...] = attrs.field(converter=_backups)

    def __attrs_post_init__(self) -> None:
        if not self.backups:
            raise InvalidInput("policy.backups", "a failover policy needs at least one backup")
        names = (self.primary, *self.backups)
        if len(set(names)) != len(names):
            raise InvalidInput("policy.backups", "an endpoint appears twice in the failover order")

    @property
    def order(self) -> tuple[str, ...]:
        return (self.primary, *self.backups)

    def referenced(self) -> tuple[str, ...]:
        return self.order


def _weights(value: object) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, Mapping):
        raise InvalidInput("policy.weights", "must map endpoint names to weights")
    pairs = sorted(
        (
            validate.endpoint_name("policy.weights", name),
            validate.finite_non_negative(f"policy.weights[{name}]", weight),
        )
        for name, weight in value.items()
    )
    if not pairs:
        raise InvalidInput("policy.weights", "must name at least one endpoint")
    if not any(weight > 0 for _, weight in pairs):
        raise InvalidInput("policy.weights", "at least one weight must be above 0")
    return tuple(pairs)


@attrs.frozen
class Weighted:
    """Active-active: each answer picks one healthy endpoint with probability by weight."""

    weights: tuple[tuple[str, float], ...] = attrs.field(converter=_weights)

    def weight(self, endpoint: str) -> float:
        return dict(self.weights)[endpoint]

    def referenced(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.weights)


@attrs.frozen
class Latency:
    """Each client gets the healthy endpoint with the lowest latency from its region."""

    def referenced(self) -> tuple[str, ...]:
        return ()


def _locations(value: object) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping) or not value:
        raise InvalidInput("policy.locations", "must map locations to endpoint names")
    pairs = []
    for location, name in value.items():
        if not isinstance(location, str) or not location:
            raise InvalidInput(
                "policy.locations", f"{validate.shown(location)} is not a location code"
            )
        pairs.append((location, validate.endpoint_name(f"policy.locations[{location}]", name)))
    return tuple(sorted(pairs))


@attrs.frozen
class Geo:
    """Answers by the client's location; ``default`` serves every location not listed.

    Locations are provider codes (continent ``EU``, country ``DE``, or a cloud region for GCP).
    """

    locations: tuple[tuple[str, str], ...] = attrs.field(converter=_locations)
    default: str = attrs.field(validator=_check(validate.endpoint_name, "policy.default"))

    def referenced(self) -> tuple[str, ...]:
        return (*(name for _, name in self.locations), self.default)


Policy = Failover | Weighted | Latency | Geo

# --------------------------------------------------------------------------- health

Protocol = Literal["http", "https", "tcp"]
PROTOCOLS: frozenset[str] = frozenset({"http", "https", "tcp"})


def _status_range(value: object) -> tuple[int, int]:
    if (
        not isinstance(value, tuple | list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or not 100 <= value[0] <= value[1] <= 599
    ):
        raise InvalidInput("health_check.expected_status", "must be (low, high) within 100-599")
    return (value[0], value[1])


@attrs.frozen
class HealthCheck:
    """How an endpoint is probed.

    ``failure_threshold`` consecutive failures mark it unhealthy, ``success_threshold``
    consecutive successes mark it healthy again (hysteresis). Providers narrow the ranges
    (Route 53 allows intervals of 10 or 30 s only) and say so with ``InvalidInput``.
    """

    protocol: str = attrs.field(
        validator=_check(lambda f, v: validate.one_of(f, v, PROTOCOLS), "health_check.protocol"),
        metadata={"json_schema": {"enum": sorted(PROTOCOLS)}},
    )
    port: int = attrs.field(
        validator=_int("health_check.port", 1, 65535),
        metadata={"json_schema": {"minimum": 1, "maximum": 65535}},
    )
    path: str = "/"
    interval_s: float = attrs.field(
        default=10.0, converter=_float, validator=_secs("health_check.interval_s", 0, 3600)
    )
    timeout_s: float = attrs.field(
        default=attrs.Factory(_default_timeout, takes_self=True),
        converter=_float,
        validator=_secs("health_check.timeout_s", 0, 120),
    )
    failure_threshold: int = attrs.field(
        default=3,
        validator=_int("health_check.failure_threshold", 1, 10),
    )
    success_threshold: int = attrs.field(
        default=1,
        validator=_int("health_check.success_threshold", 1, 10),
    )
    expected_status: tuple[int, int] = attrs.field(default=(200, 399), converter=_status_range)
    host: str | None = None

    def __attrs_post_init__(self) -> None:
        _request_path(self.path)
        if self.timeout_s > self.interval_s:
            raise InvalidInput("health_check.timeout_s", "must not exceed interval_s")
        if self.host is not None:
            validate.target("health_check.host", self.host)

    def expected_detection_s(self) -> float:
        """Mean time from an outage to the endpoint being marked down by the library's probes.

        The first probe after the outage comes half an interval later on average, then
        ``failure_threshold - 1`` more intervals pass; a probe that hangs adds its timeout.
        """
        return self.interval_s * (self.failure_threshold - 0.5) + self.timeout_s

    def worst_detection_s(self) -> float:
        return self.interval_s * self.failure_threshold + self.timeout_s


MAX_PATH = 1024
"""Longest health-check path; Route 53 allows 255 characters, Traffic Manager 1024."""


def _request_path(value: object) -> str:
    """A path that goes into a request line as it is: printable ASCII without spaces, so that
    no CR, LF or other control character can end the line and add headers or a request."""
    field = "health_check.path"
    if not isinstance(value, str) or not value.startswith("/"):
        raise InvalidInput(field, f"{validate.shown(value)} must start with /")
    if len(value) > MAX_PATH:
        raise InvalidInput(field, f"is {len(value)} characters long; at most {MAX_PATH}")
    if not all("!" <= c <= "~" for c in value):
        raise InvalidInput(
            field, "must be printable ASCII without spaces or control characters (%-encode)"
        )
    return value


def _endpoints(value: object) -> tuple[Endpoint, ...]:
    if isinstance(value, Endpoint | str) or not isinstance(value, Iterable):
        raise InvalidInput("endpoints", "must be a list of endpoints")
    endpoints = tuple(value)
    if not endpoints:
        raise InvalidInput("endpoints", "a route needs at least one endpoint")
    if not all(isinstance(e, Endpoint) for e in endpoints):
        raise InvalidInput("endpoints", "every entry must be an Endpoint")
    return endpoints


@attrs.frozen
class Route:
    """One DNS name routed to regional endpoints by a policy, optionally health-checked."""

    name: str = attrs.field(converter=_route_name)
    endpoints: tuple[Endpoint, ...] = attrs.field(converter=_endpoints)
    policy: Policy
    ttl: int = attrs.field(default=60, validator=_check(validate.ttl, "ttl"))
    health_check: HealthCheck | None = attrs.field(
        default=None, validator=_typed("health_check", HealthCheck, type(None))
    )

    def __attrs_post_init__(self) -> None:
        names = [e.name for e in self.endpoints]
        seen: set[str] = set()
        for name in names:
            if name in seen:
                raise InvalidInput(
                    "endpoints", f"endpoint name {validate.shown(name)} appears twice"
                )
            seen.add(name)
        if not isinstance(self.policy, Failover | Weighted | Latency | Geo):
            raise InvalidInput("policy", "must be Failover, Weighted, Latency or Geo")
        for name in self.policy.referenced():
            if name not in seen:
                raise InvalidInput(
                    "policy", f"names endpoint {validate.shown(name)}, which the route lacks"
                )
        if isinstance(self.policy, Weighted) and set(self.policy.referenced()) != seen:
            raise InvalidInput("policy.weights", "must give a weight to every endpoint")
        if isinstance(self.policy, Failover) and set(self.policy.order) != seen:
            raise InvalidInput("policy", "the failover order must list every endpoint")
        kinds = {"CNAME" if e.record_type == "CNAME" else "address" for e in self.endpoints}
        if len(kinds) > 1:
            raise InvalidInput("endpoints", "a route cannot mix IP addresses and host names")
        if isinstance(self.policy, Latency):
            regions = [e.region for e in self.endpoints]
            if len(set(regions)) != len(regions):
                raise InvalidInput("endpoints", "latency routing needs one endpoint per region")

    def endpoint(self, name: str) -> Endpoint:
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        raise InvalidInput("endpoint", f"route {self.name} has no endpoint {validate.shown(name)}")


class EndpointStatus(enum.Enum):
    """A manual override: force an endpoint in or out, or let health decide (octoDNS ``status``)."""

    UP = "up"
    DOWN = "down"
    AUTO = "auto"


class HealthState(enum.Enum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


@attrs.frozen
class ProbeTarget:
    """What a health check is aimed at: an address (or host name) and the check to run."""

    name: str = attrs.field(validator=_check(validate.endpoint_name, "target.name"))
    address: str = attrs.field(validator=_check(validate.target, "target.address"))
    check: HealthCheck = attrs.field(validator=_typed("target.check", HealthCheck))


_NUMBER = (int, float)
_OPTIONAL_NUMBER = (int, float, type(None))


@attrs.frozen
class EndpointHealth:
    """The current verdict on one probe target, after thresholds are applied."""

    name: str = attrs.field(validator=_typed("health.name", str))
    state: HealthState = attrs.field(validator=_typed("health.state", HealthState))
    checked_at: float | None = attrs.field(
        default=None, validator=_typed("health.checked_at", *_OPTIONAL_NUMBER)
    )
    detail: str = attrs.field(default="", validator=_typed("health.detail", str))
    consecutive_failures: int = attrs.field(
        default=0, validator=_typed("health.consecutive_failures", int)
    )
    consecutive_successes: int = attrs.field(
        default=0, validator=_typed("health.consecutive_successes", int)
    )

    @property
    def healthy(self) -> bool:
        return self.state is HealthState.HEALTHY


@attrs.frozen
class Answer:
    """What DNS answers for a name right now: records, their type and TTL, and which endpoints."""

    name: str = attrs.field(validator=_typed("answer.name", str))
    record_type: str = attrs.field(validator=_typed("answer.record_type", str))
    records: tuple[str, ...] = attrs.field(converter=_records)
    ttl: int = attrs.field(validator=_typed("answer.ttl", int))
    endpoints: tuple[str, ...] = attrs.field(converter=_answer_endpoints)


_SIGNS = {"create": "+", "update": "~", "delete": "-"}


def _optional_text(field: str) -> Callable[[Any, Any, Any], None]:
    def check(_instance: Any, _attribute: Any, value: Any) -> None:
        if value is not None and not isinstance(value, str):
            raise InvalidInput(field, f"must be text or None, not {type(value).__name__}")

    return check


@attrs.frozen
class Change:
    """One line of a plan: ``action`` on ``subject``, from ``before`` to ``after``."""

    action: Literal["create", "update", "delete"] = attrs.field(
        validator=_check(lambda f, v: validate.one_of(f, v, frozenset(_SIGNS)), "change.action")
    )
    subject: str = attrs.field(validator=_check(validate.key, "change.subject"))
    before: str | None = attrs.field(default=None, validator=_optional_text("change.before"))
    after: str | None = attrs.field(default=None, validator=_optional_text("change.after"))

    def __str__(self) -> str:
        sign = _SIGNS[self.action]
        if self.action == "update":
            return f"{sign} {self.subject}: {self.before} -> {self.after}"
        return f"{sign} {self.subject}: {self.after if self.action == 'create' else self.before}"


def _changes(value: Any) -> tuple[Change, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(c, Change) for c in value):
        raise InvalidInput("plan.changes", "must be a list of Change")
    return tuple(value)


@attrs.frozen
class Plan:
    """The changes ``apply`` would make (or made) to one route; empty when nothing differs."""

    name: str = attrs.field(validator=_typed("plan.name", str))
    changes: tuple[Change, ...] = attrs.field(default=(), converter=_changes)
    existing: Any = attrs.field(default=None, eq=False, repr=False, kw_only=True)
    """What the router read to make this plan, opaque to everyone else: ``apply`` hands the
    plan to the router's ``_apply``, which works from it instead of reading it again."""

    def __bool__(self) -> bool:
        return bool(self.changes)

    def __str__(self) -> str:
        if not self.changes:
            return f"{self.name}: no changes"
        return "\n".join([f"{self.name}:", *(f"  {c}" for c in self.changes)])


# --------------------------------------------------------------------------- store


@attrs.frozen
class FencingToken:
    """Issued by ``promote``; a writer whose token is older than the store's gets refused."""

    epoch: int = attrs.field(validator=_int("fence.epoch", 0, 2**62))
    region: str = attrs.field(validator=_check(validate.region, "fence.region"))
    forced: bool = attrs.field(default=False, kw_only=True, validator=_typed("fence.forced", bool))
    """Issued by ``promote(force=True)`` without a majority of the store's voters: another
    promote cut off from this one may have issued the same epoch."""


def _shallow_doc(field: str, value: object) -> None:
    """A dict no deeper than documents may be (cheap: adapters build an Item per read)."""
    if not isinstance(value, dict):
        raise InvalidInput(field, f"must be a dict, not {type(value).__name__}")
    validate.depth(field, value)


def _optional_doc(field: str, value: object) -> None:
    if value is not None:
        _shallow_doc(field, value)


@attrs.frozen
class DivergentWrite:
    """A write accepted under an epoch that a promote superseded before it replicated.

    It is in no replica: ``reconcile`` replays it into the write region or discards it.
    """

    id: str = attrs.field(validator=_typed("divergent.id", str))
    key: str = attrs.field(validator=_typed("divergent.key", str))
    value: dict[str, Any] | None = attrs.field(
        hash=False, validator=_check(_optional_doc, "divergent.value")
    )
    """None for a delete."""
    version: str = attrs.field(validator=_typed("divergent.version", str))
    epoch: int = attrs.field(validator=_typed("divergent.epoch", int))
    region: str = attrs.field(validator=_typed("divergent.region", str))
    written_at: float = attrs.field(validator=_typed("divergent.written_at", *_NUMBER))
    found_at: float = attrs.field(validator=_typed("divergent.found_at", *_NUMBER))
    resolution: str | None = attrs.field(
        default=None, validator=_typed("divergent.resolution", str, type(None))
    )
    """``replayed`` or ``discarded`` once reconciled."""


@attrs.frozen(eq=True)
class Item:
    """A stored document with its opaque version (for ``if_version``)."""

    key: str = attrs.field(validator=_typed("item.key", str))
    value: dict[str, Any] = attrs.field(hash=False, validator=_check(_shallow_doc, "item.value"))
    version: str = attrs.field(validator=_typed("item.version", str))
    updated_at: float = attrs.field(validator=_typed("item.updated_at", *_NUMBER))
    region: str = attrs.field(validator=_typed("item.region", str))


@attrs.frozen
class LastWriterWins:
    """Concurrent writes in two regions: the later ``updated_at`` wins; ties by region name."""


def _callable(field: str, value: object) -> None:
    if not callable(value):
        raise InvalidInput(field, "must be a function (local, incoming) -> merged dict")


@attrs.frozen
class Merge:
    """Concurrent writes in two regions are combined by ``merge(local, incoming)``.

    The function must be deterministic and commutative, or replicas diverge.
    """

    merge: Callable[[Item, Item], dict[str, Any]] = attrs.field(
        validator=_check(_callable, "conflict_policy.merge")
    )


ConflictPolicy = LastWriterWins | Merge


# --------------------------------------------------------------------------- bucket


def _text_mapping(field: str, value: object) -> None:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidInput(field, "must map names to strings")


@attrs.frozen
class ObjectInfo:
    """Metadata of a stored object. ``version`` is the etag or generation for ``if_match``."""

    key: str = attrs.field(validator=_typed("object.key", str))
    size: int = attrs.field(validator=_typed("object.size", int))
    version: str = attrs.field(validator=_typed("object.version", str))
    sha256: str = attrs.field(validator=_typed("object.sha256", str))
    updated_at: float = attrs.field(validator=_typed("object.updated_at", *_NUMBER))
    metadata: Mapping[str, str] = attrs.field(
        factory=dict, hash=False, validator=_check(_text_mapping, "object.metadata")
    )
    retain_until: float | None = attrs.field(
        default=None, validator=_typed("object.retain_until", *_OPTIONAL_NUMBER)
    )
