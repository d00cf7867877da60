"""The Dispatcher: policy, once-per-event runs recorded in a ledger store, backups, failures."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from multiregion.backup import Backups
from multiregion.errors import InvalidInput, Unavailable
from multiregion.events import DisasterEvent, parse_event
from multiregion.providers.local.bucket import LocalBucket
from multiregion.providers.local.store import LocalStore
from multiregion.serverless import Dispatcher, Policy, Rule

from .payloads import load

FIRED = "aws_eventbridge_alarm.json"  # ServerCpuTooHigh, ALARM
RESOLVED = "aws_eventbridge_route53_ok.json"
AZURE_FIRED = "azure_common_traffic_manager_fired.json"


class Counter:
    """An action whose side effect is counted."""

    def __init__(self, delay_s: float = 0.0, fail_times: int = 0) -> None:
        self.calls: list[DisasterEvent] = []
        self.delay_s = delay_s
        self.fail_times = fail_times
        self._lock = threading.Lock()

    def __call__(self, event: DisasterEvent) -> str:
        with self._lock:
            self.calls.append(event)
            failing = len(self.calls) <= self.fail_times
        time.sleep(self.delay_s)
        if failing:
            raise RuntimeError("db password=hunter2 rejected")
        return f"recovered {event.name}"


def dispatcher(ledger: LocalStore, action: Any, **kwargs: Any) -> Dispatcher:
    return Dispatcher(Policy([Rule("*", action)]), ledger_store=ledger, **kwargs)


def test_a_fired_alarm_runs_its_action_and_is_recorded(ledger: LocalStore) -> None:
    action = Counter()
    outcome = dispatcher(ledger, action).handle(load(FIRED))
    assert outcome.status == "ran"
    assert outcome.detail == "recovered ServerCpuTooHigh"
    assert [e.name for e in action.calls] == ["ServerCpuTooHigh"]
    record = ledger.get(f"multiregion/events/{outcome.event_key}").value
    assert record["status"] == "ran"
    assert record["event"]["name"] == "ServerCpuTooHigh"
    assert record["attempts"] == 1


def test_the_same_alarm_delivered_twice_runs_once(ledger: LocalStore) -> None:
    action = Counter()
    handler = dispatcher(ledger, action)
    first = handler.handle(load(FIRED))
    again = handler.handle(load(FIRED))
    assert (first.status, again.status) == ("ran", "duplicate")
    assert first.event_key == again.event_key
    assert len(action.calls) == 1


def test_a_second_dispatcher_on_the_same_ledger_sees_the_duplicate(ledger: LocalStore) -> None:
    action = Counter()
    dispatcher(ledger, action).handle(load(FIRED))
    assert dispatcher(ledger, action).handle(load(FIRED)).status == "duplicate"
    assert len(action.calls) == 1


def test_a_resolved_alarm_starts_nothing_and_is_recorded(ledger: LocalStore) -> None:
    action = Counter()
    handler = dispatcher(ledger, action)
    outcome = handler.handle(load(RESOLVED))
    assert outcome.status == "ignored-resolved"
    assert action.calls == []
    assert ledger.get(f"multiregion/events/{outcome.event_key}").value["status"] == (
        "ignored-resolved"
    )
    assert handler.handle(load(RESOLVED)).status == "duplicate"


def test_concurrent_deliveries_of_one_alarm_run_it_once(ledger: LocalStore) -> None:
    action = Counter(delay_s=0.2)
    handler = dispatcher(ledger, action)
    start = threading.Barrier(8)
    statuses: list[str] = []

    def deliver() -> None:
        start.wait()
        statuses.append(handler.handle(load(FIRED)).status)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(action.calls) == 1
    assert sorted(statuses) == ["duplicate"] * 7 + ["ran"]


def test_a_backup_rule_writes_a_backup_of_the_store_into_the_bucket(
    ledger: LocalStore, source: LocalStore, bucket: LocalBucket
) -> None:
    backups = Backups(bucket)
    handler = Dispatcher(
        Policy([Rule("ServerCpu*", "backup")]),
        ledger_store=ledger,
        backups=backups,
        source_store=source,
    )
    outcome = handler.handle(load(FIRED))
    assert outcome.status == "ran"
    [manifest] = backups.list()
    assert manifest.backup_id == outcome.detail
    assert manifest.item_count == 25
    assert manifest.source["alarm"] == "ServerCpuTooHigh"
    assert backups.check(manifest.backup_id) == 25
    assert handler.handle(load(FIRED)).status == "duplicate"
    assert len(backups.list()) == 1


def test_no_matching_rule_runs_nothing_and_records_nothing(ledger: LocalStore) -> None:
    action = Counter()
    handler = Dispatcher(Policy([Rule("Disk*", action)]), ledger_store=ledger)
    outcome = handler.handle(load(FIRED))
    assert outcome.status == "no-rule"
    assert action.calls == []
    assert list(ledger.scan("")) == []


def test_the_first_matching_rule_decides(ledger: LocalStore) -> None:
    first, second = Counter(), Counter()
    handler = Dispatcher(Policy([Rule("Server*", first), Rule("*", second)]), ledger_store=ledger)
    handler.handle(load(FIRED))
    handler.handle(load(AZURE_FIRED))
    assert [e.provider for e in first.calls] == ["aws"]
    assert [e.provider for e in second.calls] == ["azure"]


def test_providers_severity_and_predicates_narrow_a_rule(ledger: LocalStore) -> None:
    azure_event = parse_event(load(AZURE_FIRED))
    aws_event = parse_event(load(FIRED))
    assert azure_event.severity in ("critical", "error")  # the sample is Sev0/Sev1
    assert Rule("*", "backup", providers=["azure"]).matches(azure_event)
    assert not Rule("*", "backup", providers=["gcp"]).matches(azure_event)
    assert Rule("*", "backup", min_severity="error").matches(azure_event)
    # CloudWatch alarms carry no severity: a severity threshold never lets them through.
    assert not Rule("*", "backup", min_severity="info").matches(aws_event)
    assert Rule(lambda e: e.region == "us-east-1", "backup").matches(aws_event)
    assert not Rule(lambda e: False, "backup").matches(aws_event)


def test_a_failed_action_is_recorded_and_a_redelivery_retries_it(ledger: LocalStore) -> None:
    action = Counter(fail_times=1)
    handler = dispatcher(ledger, action)
    failed = handler.handle(load(FIRED))
    assert failed.status == "failed"
    assert failed.detail == "RuntimeError"  # the message may hold secrets: never recorded
    key = f"multiregion/events/{failed.event_key}"
    assert ledger.get(key).value["status"] == "failed"
    retried = handler.handle(load(FIRED))
    assert retried.status == "ran"
    assert ledger.get(key).value["attempts"] == 2
    assert handler.handle(load(FIRED)).status == "duplicate"
    assert len(action.calls) == 2


def test_a_library_error_is_recorded_with_its_message(ledger: LocalStore) -> None:
    def action(event: DisasterEvent) -> None:
        raise Unavailable("region-b did not answer")

    outcome = dispatcher(ledger, action).handle(load(FIRED))
    assert outcome.detail == "Unavailable: region-b did not answer"


def test_a_claim_left_running_past_its_lease_is_taken_over(ledger: LocalStore) -> None:
    now = [1000.0]
    action = Counter()
    handler = dispatcher(ledger, action, lease_s=60, clock=lambda: now[0])
    event = parse_event(load(FIRED))
    # An instance claimed the event, then died before recording an outcome.
    ledger.put(
        handler.ledger_key(event), {"status": "running", "started_at": 1000.0}, create_only=True
    )
    assert handler.handle(load(FIRED)).status == "duplicate"
    now[0] = 1061.0
    assert handler.handle(load(FIRED)).status == "ran"
    assert len(action.calls) == 1


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Rule("", "backup"), "match"),
        (lambda: Rule(42, "backup"), "match"),
        (lambda: Rule("*", "restore"), "action"),
        (lambda: Rule("*", "backup", providers=["oracle"]), "providers"),
        (lambda: Rule("*", "backup", providers="aws"), "providers"),
        (lambda: Rule("*", "backup", min_severity="dire"), "min_severity"),
        (lambda: Policy([]), "rules"),
        (lambda: Policy(["*"]), "rules[0]"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(build: Any, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        build()
    assert info.value.field == field


def test_a_backup_rule_needs_backups_and_a_source(ledger: LocalStore, bucket: LocalBucket) -> None:
    policy = Policy([Rule("*", "backup")])
    with pytest.raises(InvalidInput) as info:
        Dispatcher(policy, ledger_store=ledger)
    assert info.value.field == "backups"
    with pytest.raises(InvalidInput) as info:
        Dispatcher(policy, ledger_store=ledger, backups=Backups(bucket))
    assert info.value.field == "source_store"
    with pytest.raises(InvalidInput) as info:
        Dispatcher(Policy([Rule("*", Counter())]), ledger_store=ledger, lease_s=-1)
    assert info.value.field == "lease_s"


def test_a_payload_that_is_no_alarm_is_refused_before_anything_runs(ledger: LocalStore) -> None:
    action = Counter()
    with pytest.raises(InvalidInput) as info:
        dispatcher(ledger, action).handle({"hello": "world"})
    assert info.value.field == "event"
    assert action.calls == []
    assert list(ledger.scan("")) == []
