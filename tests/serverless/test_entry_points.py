"""The Lambda, Azure Functions and Cloud Functions entry points, with every payload sample."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from multiregion.backup import Backups
from multiregion.errors import InvalidInput
from multiregion.events import DisasterEvent, parse_event
from multiregion.providers.local.bucket import LocalBucket
from multiregion.providers.local.store import LocalStore
from multiregion.serverless import (
    ActionFailed,
    Dispatcher,
    Policy,
    Rule,
    azure_function,
    cloud_function,
    from_config,
    lambda_handler,
)

from .payloads import PAYLOADS, SAMPLES, load


class AzureRequest:
    """What azure.functions.HttpRequest offers the handler."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def get_body(self) -> bytes:
        return self._body


class FlaskRequest:
    """What a Flask request offers (functions-framework's HTTP functions)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def get_json(self, silent: bool = False) -> Any:
        try:
            return json.loads(self._body)
        except ValueError:
            if silent:
                return None
            raise

    def get_data(self) -> bytes:
        return self._body


class CloudEvent:
    """What functions-framework passes a @cloud_event function: attributes and ``data``."""

    def __init__(self, data: Any) -> None:
        self.data = data


def via_lambda(dispatcher: Dispatcher, payload: dict[str, Any]) -> str:
    return lambda_handler(dispatcher)(payload, object())["status"]


def via_azure(dispatcher: Dispatcher, payload: dict[str, Any]) -> str:
    result = azure_function(dispatcher)(AzureRequest(json.dumps(payload).encode()))
    assert result["status_code"] == 200
    assert result["mimetype"] == "application/json"
    status: str = json.loads(result["body"])["status"]
    return status


def via_gcp_http(dispatcher: Dispatcher, payload: dict[str, Any]) -> str:
    body, code, headers = cloud_function(dispatcher)(FlaskRequest(json.dumps(payload).encode()))
    assert code == 200
    assert headers == {"Content-Type": "application/json"}
    status: str = json.loads(body)["status"]
    return status


def via_gcp_cloud_event_dict(dispatcher: Dispatcher, payload: dict[str, Any]) -> str:
    status: str = cloud_function(dispatcher)(payload)["status"]
    return status


SHAPES: dict[str, Callable[[Dispatcher, dict[str, Any]], str]] = {
    "lambda": via_lambda,
    "azure": via_azure,
    "gcp-http": via_gcp_http,
    "gcp-cloudevent": via_gcp_cloud_event_dict,
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("sample", SAMPLES)
def test_every_sample_through_every_entry_point(
    shape: str, sample: str, ledger: LocalStore
) -> None:
    calls: list[DisasterEvent] = []
    dispatcher = Dispatcher(Policy([Rule("*", calls.append)]), ledger_store=ledger)
    payload = load(sample)
    fired = parse_event(payload).fired
    deliver = SHAPES[shape]
    assert deliver(dispatcher, payload) == ("ran" if fired else "ignored-resolved")
    assert deliver(dispatcher, payload) == "duplicate"
    assert len(calls) == (1 if fired else 0)


def test_the_samples_cover_every_cloud_and_both_states() -> None:
    events = [parse_event(load(name)) for name in SAMPLES]
    assert {e.provider for e in events} == {"aws", "azure", "gcp"}
    assert {e.status for e in events} == {"fired", "resolved"}


def test_a_cloud_event_object_passes_its_data(ledger: LocalStore) -> None:
    calls: list[DisasterEvent] = []
    dispatcher = Dispatcher(Policy([Rule("*", calls.append)]), ledger_store=ledger)
    envelope = load("gcp_cloudevent_pubsub_incident_open.json")
    assert cloud_function(dispatcher)(CloudEvent(envelope["data"]))["status"] == "ran"
    assert [e.provider for e in calls] == ["gcp"]


def test_what_is_not_an_alarm_is_never_acknowledged_silently(ledger: LocalStore) -> None:
    calls: list[DisasterEvent] = []
    dispatcher = Dispatcher(Policy([Rule("*", calls.append)]), ledger_store=ledger)
    with pytest.raises(InvalidInput):  # Lambda retries it, then its on-failure destination
        lambda_handler(dispatcher)({"hello": 1}, None)
    with pytest.raises(InvalidInput):
        cloud_function(dispatcher)({"data": {"message": {"data": "e30="}}})
    result = azure_function(dispatcher)(AzureRequest(b"not json"))
    assert result["status_code"] == 400
    assert json.loads(result["body"])["status"] == "invalid"
    _, code, _ = cloud_function(dispatcher)(FlaskRequest(b"{"))
    assert code == 400
    with pytest.raises(InvalidInput):
        cloud_function(dispatcher)(object())
    assert calls == []


def test_a_dead_letter_action_takes_what_is_not_understood(ledger: LocalStore) -> None:
    letters: list[tuple[Any, str]] = []

    def dead_letter(payload: Any, error: InvalidInput) -> None:
        letters.append((payload, error.field))

    dispatcher = Dispatcher(Policy([Rule("*", lambda event: None)]), ledger_store=ledger)
    assert (
        lambda_handler(dispatcher, dead_letter=dead_letter)({"hello": 1}, None)["status"]
        == "dead-lettered"
    )
    result = azure_function(dispatcher, dead_letter=dead_letter)(AzureRequest(b"not json"))
    assert (result["status_code"], json.loads(result["body"])["status"]) == (200, "dead-lettered")
    _, code, _ = cloud_function(dispatcher, dead_letter=dead_letter)(FlaskRequest(b"{"))
    assert code == 200
    assert [field for _, field in letters] == ["event", "event", "event"]
    assert letters[0][0] == {"hello": 1}

    def broken(payload: Any, error: InvalidInput) -> None:
        raise InvalidInput("queue", "full")

    with pytest.raises(InvalidInput):
        lambda_handler(dispatcher, dead_letter=broken)({"hello": 1}, None)
    with pytest.raises(InvalidInput):
        lambda_handler(dispatcher, dead_letter="queue")  # type: ignore[arg-type]


def test_a_failed_action_is_reported_so_the_platform_redelivers(ledger: LocalStore) -> None:
    def action(event: DisasterEvent) -> None:
        raise RuntimeError("token=s3cr3t")

    dispatcher = Dispatcher(Policy([Rule("*", action)]), ledger_store=ledger)
    with pytest.raises(ActionFailed) as info:
        lambda_handler(dispatcher)(load("aws_eventbridge_alarm.json"), None)
    assert "s3cr3t" not in str(info.value)
    result = azure_function(dispatcher)(
        AzureRequest((PAYLOADS / "azure_common_traffic_manager_fired.json").read_bytes())
    )
    assert result["status_code"] == 500
    _, code, _ = cloud_function(dispatcher)(
        FlaskRequest(json.dumps(load("gcp_webhook_incident_open.json")).encode())
    )
    assert code == 500
    with pytest.raises(ActionFailed):
        cloud_function(dispatcher)(load("gcp_cloudevent_pubsub_incident_open.json"))


def test_a_ledger_outage_answers_503_over_http(ledger: LocalStore) -> None:
    dispatcher = Dispatcher(Policy([Rule("*", lambda e: None)]), ledger_store=ledger)
    ledger.fail_region("region-a")
    result = azure_function(dispatcher)(
        AzureRequest(json.dumps(load("azure_common_traffic_manager_fired.json")).encode())
    )
    assert result["status_code"] == 503


SPEC = """
[deployment]
name = "dr"
provider = "local"

[[regions]]
name = "region-a"
endpoint = "127.0.0.2"

[[regions]]
name = "region-b"
endpoint = "127.0.0.3"

[route]
name = "app.dr.test"

[store]
path = "state/store"
replicate = false

[bucket]
path = "state/bucket"
"""


def test_from_config_reads_the_spec_once_at_the_first_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MULTIREGION_CONFIG", raising=False)
    lazy = from_config(Policy([Rule("*", "backup")]))  # nothing is read yet
    handler = lambda_handler(lazy)
    with pytest.raises(InvalidInput) as info:
        handler(load("aws_eventbridge_alarm.json"), None)
    assert info.value.field == "MULTIREGION_CONFIG"
    (tmp_path / "deploy.toml").write_text(SPEC)
    monkeypatch.setenv("MULTIREGION_CONFIG", str(tmp_path / "deploy.toml"))
    first = lazy()
    assert lazy() is first
    try:
        assert handler(load("aws_eventbridge_alarm.json"), None)["status"] == "ran"
        [manifest] = Backups(LocalBucket(tmp_path / "state" / "bucket")).list()
        # The ledger lives in the same store, so the backup holds the claim of its own event.
        assert manifest.item_count == 1
    finally:
        first.ledger_store.close()


def test_a_direct_lambda_alarm_action_runs_the_action(ledger: LocalStore) -> None:
    calls: list[DisasterEvent] = []
    dispatcher = Dispatcher(Policy([Rule("lambda-demo-*", calls.append)]), ledger_store=ledger)
    payload = json.loads((PAYLOADS / "aws_lambda_action_metric.json").read_text())
    assert lambda_handler(dispatcher)(payload, None)["status"] == "ran"
    assert [e.name for e in calls] == ["lambda-demo-metric-alarm"]


def test_a_test_notification_starts_nothing(ledger: LocalStore) -> None:
    calls: list[DisasterEvent] = []
    dispatcher = Dispatcher(Policy([Rule("*", calls.append)]), ledger_store=ledger)
    body = (PAYLOADS / "gcp_webhook_test_notification.json").read_bytes()
    text, code, _ = cloud_function(dispatcher)(FlaskRequest(body))
    assert (code, json.loads(text)["status"]) == (200, "ignored-test")
    assert calls == []


def test_every_alarm_of_an_sqs_batch_is_handled(ledger: LocalStore) -> None:
    calls: list[DisasterEvent] = []
    dispatcher = Dispatcher(Policy([Rule("*", calls.append)]), ledger_store=ledger)
    batch = json.loads((PAYLOADS / "aws_sns_metric_math.json").read_text())
    result = lambda_handler(dispatcher)(batch, None)
    assert [o["status"] for o in result["outcomes"]] == ["ran", "duplicate"]
    assert len(calls) == 1
