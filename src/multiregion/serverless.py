"""Alarm-driven handlers for AWS Lambda, Azure Functions and Google Cloud Functions.

A ``Dispatcher`` turns one alarm payload (``multiregion.events.parse_event``) into at most one
run of an action: a backup of a store into a bucket, or any callable (a runbook's ``run``).
It keeps no state of its own: each event occurrence is claimed in a ledger store by a
create-only put of ``<ledger_prefix><event.key>``, so the same alarm delivered twice, or by two
instances at once, runs once. The claim is updated with the outcome afterwards.

Retry choice: an action that raised is recorded as ``failed`` and the entry points report the
failure to the platform (Lambda and CloudEvent functions raise, HTTP functions answer 500), so
the platform's own redelivery retries it; a redelivery finding ``failed`` (or a ``running``
claim older than ``lease_s``, left by an instance that died) takes the claim over with a
conditional write and runs the action again. Anything else already recorded is a duplicate.
A resolved alarm never starts anything: it is recorded as ``ignored-resolved``; a test
notification (Cloud Monitoring's "send test notification") is answered ``ignored-test``.

A payload an entry point cannot understand is never acknowledged silently: without a
``dead_letter`` action, the Lambda and CloudEvent entry points raise ``InvalidInput`` (so the
platform retries it and then hands it to its dead-letter queue or on-failure destination) and
the HTTP entry points answer 400 and log an error (a Pub/Sub push subscription redelivers it,
then dead-letters it). Given ``dead_letter(payload, error)``, they call it, log, and answer
``dead-lettered``; if it raises, the entry point fails as without it.

The entry points import no cloud SDK: they read the few methods the platforms' request objects
have, and return plain values (see each function).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import attrs

from multiregion import validate
from multiregion.backup import Backups
from multiregion.deployment import Deployment
from multiregion.errors import (
    AlreadyExists,
    InvalidInput,
    MultiregionError,
    NotFound,
    PreconditionFailed,
)
from multiregion.events import DisasterEvent, Severity, parse_event, parse_events
from multiregion.interfaces import ReplicatedStore
from multiregion.model import Item

log = logging.getLogger(__name__)

CONFIG_ENV = "MULTIREGION_CONFIG"
DEFAULT_LEDGER_PREFIX = "multiregion/events/"
DEFAULT_LEASE_S = 900.0
"""Lambda's longest timeout: a ``running`` claim older than this was left by a dead instance."""

BACKUP = "backup"
PROVIDERS = frozenset({"aws", "azure", "gcp"})
SEVERITY_RANK: dict[Severity, int] = {
    "unknown": 0,
    "info": 1,
    "warning": 2,
    "error": 3,
    "critical": 4,
}
_DETAIL_CHARS = 200

Status = Literal["ran", "duplicate", "ignored-resolved", "ignored-test", "no-rule", "failed"]
Action = Callable[[DisasterEvent], object]
DeadLetter = Callable[[Any, InvalidInput], object]
"""Takes a payload no entry point understood, and why; e.g. puts it on a queue."""
Match = Callable[[DisasterEvent], bool]


class ActionFailed(MultiregionError):
    """Raised by the Lambda and CloudEvent entry points so that the platform redelivers."""


def _match(value: object) -> str | Match:
    if callable(value):
        return value
    if isinstance(value, str) and value:
        return value
    raise InvalidInput("match", "must be an alarm-name glob (non-empty text) or a callable")


def _action(value: object) -> str | Action:
    if value == BACKUP or callable(value):
        return value
    raise InvalidInput("action", f"must be {BACKUP!r} or a callable taking the DisasterEvent")


def _providers(value: object) -> frozenset[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidInput("providers", "must be a list of provider names")
    names = frozenset(validate.one_of("providers", name, PROVIDERS) for name in value)
    if not names:
        raise InvalidInput("providers", "must name at least one provider, or be None for any")
    return names


def _severity(value: object) -> Severity | None:
    if value is None:
        return None
    name = validate.one_of("min_severity", value, frozenset(SEVERITY_RANK) - {"unknown"})
    severity: Severity = name  # type: ignore[assignment]
    return severity


def _name_of(thing: object) -> str:
    return str(getattr(thing, "__qualname__", None) or type(thing).__name__)


@attrs.frozen
class Rule:
    """Which alarms start what.

    ``match`` is a glob on the alarm name (``fnmatch``, case-sensitive) or a predicate on the
    event. ``min_severity`` keeps events at least that severe; events without a severity
    (every CloudWatch alarm) then never match, since nothing says they are severe enough.
    """

    match: str | Match = attrs.field(converter=_match)
    action: str | Action = attrs.field(converter=_action)
    providers: frozenset[str] | None = attrs.field(default=None, converter=_providers)
    min_severity: Severity | None = attrs.field(default=None, converter=_severity)

    @property
    def name(self) -> str:
        match = self.match if isinstance(self.match, str) else _name_of(self.match)
        action = self.action if isinstance(self.action, str) else _name_of(self.action)
        return f"{match} -> {action}"

    def matches(self, event: DisasterEvent) -> bool:
        if self.providers is not None and event.provider not in self.providers:
            return False
        if (
            self.min_severity is not None
            and SEVERITY_RANK[event.severity] < SEVERITY_RANK[self.min_severity]
        ):
            return False
        if isinstance(self.match, str):
            return fnmatch.fnmatchcase(event.name, self.match)
        return bool(self.match(event))


def _rules(value: object) -> tuple[Rule, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise InvalidInput("rules", "must be a list of Rule")
    rules = tuple(value)
    if not rules:
        raise InvalidInput("rules", "must list at least one Rule")
    for index, rule in enumerate(rules):
        if not isinstance(rule, Rule):
            raise InvalidInput(f"rules[{index}]", f"must be a Rule, not {type(rule).__name__}")
    return rules


@attrs.frozen
class Policy:
    """Rules in order; the first that matches an event decides its action."""

    rules: tuple[Rule, ...] = attrs.field(converter=_rules)

    def first(self, event: DisasterEvent) -> Rule | None:
        return next((rule for rule in self.rules if rule.matches(event)), None)


@attrs.frozen
class Outcome:
    event_key: str
    status: Status
    detail: str = ""

    def to_json(self) -> dict[str, str]:
        return {"event_key": self.event_key, "status": self.status, "detail": self.detail}


def _describe(result: object) -> str:
    """What an action returned, for the ledger: text as is (shortened), otherwise its type,
    so that an object that happens to hold a credential is never written out."""
    if result is None:
        return ""
    if isinstance(result, str | int | float):
        return str(result)[:_DETAIL_CHARS]
    return type(result).__name__


def _failure(exc: Exception) -> str:
    """Library errors carry no secrets; other exceptions are named by type only."""
    if isinstance(exc, MultiregionError):
        return f"{type(exc).__name__}: {exc}"[:_DETAIL_CHARS]
    return type(exc).__name__


class Dispatcher:
    """Runs the action the policy picks for an alarm, once per alarm occurrence."""

    def __init__(
        self,
        policy: Policy,
        *,
        ledger_store: ReplicatedStore,
        backups: Backups | None = None,
        source_store: ReplicatedStore | None = None,
        ledger_prefix: str = DEFAULT_LEDGER_PREFIX,
        lease_s: float = DEFAULT_LEASE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(policy, Policy):
            raise InvalidInput("policy", "must be a Policy")
        if not isinstance(ledger_store, ReplicatedStore):
            raise InvalidInput("ledger_store", "must be a ReplicatedStore")
        if any(rule.action == BACKUP for rule in policy.rules):
            if not isinstance(backups, Backups):
                raise InvalidInput("backups", "a rule runs 'backup': give Backups(bucket)")
            if not isinstance(source_store, ReplicatedStore):
                raise InvalidInput("source_store", "a rule runs 'backup': give the store")
        validate.key("ledger_prefix", ledger_prefix)
        self.policy = policy
        self.ledger_store = ledger_store
        self.backups = backups
        self.source_store = source_store
        self.ledger_prefix = ledger_prefix
        self.lease_s = validate.seconds("lease_s", lease_s, 0, 86400)
        self.clock = clock

    def ledger_key(self, event: DisasterEvent) -> str:
        return f"{self.ledger_prefix}{event.key}"

    def handle(self, payload: Mapping[str, Any] | str | bytes) -> Outcome:
        """Parse ``payload`` and act on it. Raises InvalidInput for a payload that is not an
        alarm; errors of the ledger store propagate (nothing can be promised without it)."""
        return self._logged(parse_event(payload))

    def handle_all(self, payload: Mapping[str, Any] | str | bytes) -> list[Outcome]:
        """``handle`` for every alarm of a payload: one, or each record of an SNS or SQS batch."""
        return [self._logged(event) for event in parse_events(payload)]

    def _logged(self, event: DisasterEvent) -> Outcome:
        outcome = self._handle(event)
        log.info(
            "alarm %r (%s, %s) event %s: %s %s",
            event.name,
            event.provider,
            event.status,
            event.key,
            outcome.status,
            outcome.detail,
        )
        return outcome

    def _handle(self, event: DisasterEvent) -> Outcome:
        key = self.ledger_key(event)
        if event.status == "test":
            return Outcome(event.key, "ignored-test", "a test notification")
        if not event.fired:
            try:
                self.ledger_store.put(
                    key, self._record(event, "ignored-resolved"), create_only=True
                )
            except AlreadyExists:
                return Outcome(event.key, "duplicate", "already recorded")
            return Outcome(event.key, "ignored-resolved")
        rule = self.policy.first(event)
        if rule is None:
            return Outcome(event.key, "no-rule")
        claim = self._claim(key, event, rule)
        if claim is None:
            return Outcome(event.key, "duplicate", "already handled or running elsewhere")
        try:
            detail = self._run(rule, event)
        except Exception as exc:  # noqa: BLE001 - any action failure is recorded, then reported
            outcome = Outcome(event.key, "failed", _failure(exc))
            log.warning("action %s for event %s failed: %s", rule.name, event.key, outcome.detail)
        else:
            outcome = Outcome(event.key, "ran", detail)
        record = {**claim.value, "status": outcome.status, "detail": outcome.detail}
        record["finished_at"] = self.clock()
        try:
            self.ledger_store.put(key, record, if_version=claim.version)
        except PreconditionFailed:
            log.warning("event %s: the claim was taken over while the action ran", event.key)
        return outcome

    def _record(self, event: DisasterEvent, status: str, **extra: object) -> dict[str, Any]:
        return {
            "status": status,
            "event": {
                "provider": event.provider,
                "name": event.name,
                "status": event.status,
                "time": event.time,
                "region": event.region,
            },
            "started_at": self.clock(),
            **extra,
        }

    def _claim(self, key: str, event: DisasterEvent, rule: Rule) -> Item | None:
        """The ledger item this delivery now owns, or None when another one owns it."""
        record = self._record(event, "running", rule=rule.name, attempts=1)
        try:
            return self.ledger_store.put(key, record, create_only=True)
        except AlreadyExists:
            pass
        try:
            current = self.ledger_store.get(key)
        except NotFound:  # deleted in between: the next delivery starts afresh
            return None
        stale = (
            current.value.get("status") == "running"
            and self.clock() - float(current.value.get("started_at", 0)) > self.lease_s
        )
        if current.value.get("status") != "failed" and not stale:
            return None
        record["attempts"] = int(current.value.get("attempts", 1)) + 1
        try:
            return self.ledger_store.put(key, record, if_version=current.version)
        except PreconditionFailed:
            return None

    def _run(self, rule: Rule, event: DisasterEvent) -> str:
        if isinstance(rule.action, str):  # BACKUP; __init__ made sure both parts are there
            assert self.backups is not None
            assert self.source_store is not None
            manifest = self.backups.create(
                self.source_store, source={"event": event.key, "alarm": event.name}
            )
            return manifest.backup_id
        return _describe(rule.action(event))


# --------------------------------------------------------------------------- building once


class LazyDispatcher:
    """Builds its Dispatcher on first use and keeps it for the life of a warm container."""

    def __init__(self, build: Callable[[], Dispatcher]) -> None:
        if not callable(build):
            raise InvalidInput("build", "must be a callable returning a Dispatcher")
        self._build = build
        self._lock = threading.Lock()
        self._built: Dispatcher | None = None

    def __call__(self) -> Dispatcher:
        with self._lock:
            if self._built is None:
                built = self._build()
                if not isinstance(built, Dispatcher):
                    raise InvalidInput("build", f"returned {type(built).__name__}, not Dispatcher")
                self._built = built
            return self._built


def from_config(
    policy: Policy,
    *,
    path: str | None = None,
    ledger_prefix: str = DEFAULT_LEDGER_PREFIX,
) -> LazyDispatcher:
    """A dispatcher on the deployment spec at ``path`` (default: ``$MULTIREGION_CONFIG``),
    connected at the first event: its store is the ledger and the backup source, its bucket
    holds the backups."""
    if not isinstance(policy, Policy):
        raise InvalidInput("policy", "must be a Policy")
    validate.key("ledger_prefix", ledger_prefix)

    def build() -> Dispatcher:
        spec_path = path if path is not None else os.environ.get(CONFIG_ENV)
        if not spec_path:
            raise InvalidInput(CONFIG_ENV, "is not set: it names the deployment spec (TOML)")
        deployment = Deployment.from_file(spec_path)
        needs_backup = any(rule.action == BACKUP for rule in policy.rules)
        return Dispatcher(
            policy,
            ledger_store=deployment.store,
            backups=Backups(deployment.bucket) if needs_backup else None,
            source_store=deployment.store,
            ledger_prefix=ledger_prefix,
        )

    return LazyDispatcher(build)


DispatcherSource = Dispatcher | Callable[[], Dispatcher]


def _resolver(source: DispatcherSource) -> Callable[[], Dispatcher]:
    if isinstance(source, Dispatcher):
        return lambda: source
    if isinstance(source, LazyDispatcher):
        return source
    if callable(source):
        return LazyDispatcher(source)
    raise InvalidInput("dispatcher", "must be a Dispatcher or a callable returning one")


# --------------------------------------------------------------------------- entry points

_HTTP_STATUS: dict[Status, int] = {
    "ran": 200,
    "duplicate": 200,
    "ignored-resolved": 200,
    "ignored-test": 200,
    "no-rule": 200,
    "failed": 500,
}


def _dead_letter(value: object) -> DeadLetter | None:
    if value is not None and not callable(value):
        raise InvalidInput("dead_letter", "must be a callable (payload, error) or None")
    return value


def _not_understood(payload: Any, error: InvalidInput, dead_letter: DeadLetter | None) -> str:
    """Hand a payload nobody understood to ``dead_letter`` (its status), or raise ``error``."""
    if dead_letter is None:
        log.error("alarm payload not understood, refused: %s", error)
        raise error
    dead_letter(payload, error)
    log.error("alarm payload not understood, dead-lettered: %s", error)
    return "dead-lettered"


def _outcomes_json(outcomes: list[Outcome]) -> dict[str, Any]:
    if len(outcomes) == 1:
        return outcomes[0].to_json()
    return {"status": "batch", "outcomes": [o.to_json() for o in outcomes]}


def _raise_failed(outcomes: list[Outcome]) -> None:
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        details = "; ".join(f"event {o.event_key}: {o.detail}" for o in failed)
        raise ActionFailed(details)


def _http(dispatcher: Dispatcher, payload: Any, dead_letter: DeadLetter | None) -> tuple[int, str]:
    """Status code and JSON body for an HTTP delivery."""
    try:
        outcomes = dispatcher.handle_all(payload)
    except InvalidInput as exc:
        try:
            status = _not_understood(payload, exc, dead_letter)
        except InvalidInput:
            return 400, json.dumps({"status": "invalid", "detail": str(exc)})
        return 200, json.dumps({"status": status, "detail": str(exc)})
    except MultiregionError as exc:
        return 503, json.dumps({"status": "error", "detail": str(exc)})
    code = max(_HTTP_STATUS[o.status] for o in outcomes)
    return code, json.dumps(_outcomes_json(outcomes))


def _events(dispatcher: Dispatcher, payload: Any, dead_letter: DeadLetter | None) -> dict[str, Any]:
    """Outcomes for an event delivery (Lambda, CloudEvent): raises for a failed action, and
    for a payload not understood unless it was dead-lettered."""
    try:
        outcomes = dispatcher.handle_all(payload)
    except InvalidInput as exc:
        return {"status": _not_understood(payload, exc, dead_letter), "detail": str(exc)}
    _raise_failed(outcomes)
    return _outcomes_json(outcomes)


def lambda_handler(
    dispatcher: DispatcherSource, *, dead_letter: DeadLetter | None = None
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A Lambda handler ``(event, context) -> dict`` for CloudWatch alarms from EventBridge, SNS,
    SQS or a direct Lambda alarm action.

    A failed action raises ActionFailed, and a payload that is no alarm raises InvalidInput
    (unless ``dead_letter`` takes it), so that Lambda's asynchronous retries and then its
    on-failure destination (or an SQS queue's redrive policy) take over.
    """
    resolve = _resolver(dispatcher)
    dead_letter = _dead_letter(dead_letter)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return _events(resolve(), event, dead_letter)  # a bad spec raises in resolve()

    return handler


def azure_function(
    dispatcher: DispatcherSource, *, dead_letter: DeadLetter | None = None
) -> Callable[[Any], dict[str, Any]]:
    """An HTTP-triggered Azure Function body for Azure Monitor's common alert schema.

    Takes an ``azure.functions.HttpRequest`` (anything with ``get_body()`` or ``get_json()``)
    and returns ``{"body", "status_code", "mimetype"}``: ``func.HttpResponse(**result)``.
    A failed action answers 500, so the action group retries the webhook; a payload that is no
    alert answers 400 and logs an error, unless ``dead_letter`` takes it.
    """
    resolve = _resolver(dispatcher)
    dead_letter = _dead_letter(dead_letter)

    def function(request: Any) -> dict[str, Any]:
        get_body = getattr(request, "get_body", None)
        payload = get_body() if callable(get_body) else request.get_json()
        code, body = _http(resolve(), payload, dead_letter)
        return {"body": body, "status_code": code, "mimetype": "application/json"}

    return function


def cloud_function(
    dispatcher: DispatcherSource, *, dead_letter: DeadLetter | None = None
) -> Callable[[Any], Any]:
    """A functions-framework function for Cloud Monitoring incidents.

    Given a Flask request (a webhook or a Pub/Sub push), it returns ``(body, status,
    headers)``: 500 when the action failed and 400 for a payload that is no incident (both make
    Pub/Sub redeliver, then dead-letter). Given a CloudEvent (a dict, or an object with
    ``data``, as ``@functions_framework.cloud_event`` passes), it returns the outcome as a dict
    and raises ActionFailed (a failed action) or InvalidInput (no incident), so that an event
    trigger with retries enabled redelivers it. ``dead_letter`` takes what is not understood.
    """
    resolve = _resolver(dispatcher)
    dead_letter = _dead_letter(dead_letter)

    def function(request: Any) -> Any:
        if callable(getattr(request, "get_json", None)):
            payload = request.get_json(silent=True)
            if payload is None:
                payload = (
                    request.get_data() if callable(getattr(request, "get_data", None)) else b""
                )
            code, body = _http(resolve(), payload, dead_letter)
            return body, code, {"Content-Type": "application/json"}
        if isinstance(request, Mapping):
            cloud_event: Mapping[str, Any] = request
        elif hasattr(request, "data"):
            cloud_event = {"data": request.data}
        else:
            raise InvalidInput("request", "is neither a request (get_json) nor a CloudEvent")
        return _events(resolve(), cloud_event, dead_letter)

    return function
