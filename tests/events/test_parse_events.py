"""Every published payload sample parses into the right DisasterEvent; anything else is refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from multiregion import InvalidInput
from multiregion.events import parse_event

PAYLOADS = Path(__file__).parent / "payloads"


def load(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


EXPECTED = {
    "aws_eventbridge_alarm.json": {
        "provider": "aws",
        "name": "ServerCpuTooHigh",
        "status": "fired",
        "region": "us-east-1",
        "resource": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:ServerCpuTooHigh",
        "time": ts("2019-10-02T17:04:40.989"),
    },
    "aws_eventbridge_route53_ok.json": {
        "provider": "aws",
        "name": "primary-region-health",
        "status": "resolved",
        "region": "us-east-1",
        "resource": "route53-health-check/abcdef11-2222-3333-4444-555555fedcba",
        "time": ts("2026-11-20T09:12:03.120"),
    },
    "aws_sns_lambda_route53_alarm.json": {
        "provider": "aws",
        "name": "primary-region-health",
        "status": "fired",
        "region": "us-east-1",
        "resource": "route53-health-check/abcdef11-2222-3333-4444-555555fedcba",
        "time": ts("2026-11-20T09:00:12.345"),
    },
    "aws_sns_notification_route53_alarm.json": {
        "provider": "aws",
        "name": "primary-region-health",
        "status": "fired",
        "region": "us-east-1",
        "resource": "route53-health-check/abcdef11-2222-3333-4444-555555fedcba",
        "time": ts("2026-11-20T09:00:12.345"),
    },
    "azure_common_metric_resolved.json": {
        "provider": "azure",
        "name": "WCUS-R2-Gen2",
        "status": "resolved",
        "severity": "info",
        "region": None,
        "resource": "/subscriptions/11111111-2222-3333-4444-555555555555/resourcegroups/"
        "pipelinealertrg/providers/microsoft.compute/virtualmachines/wcus-r2-gen2",
        "time": ts("2019-03-22T14:03:16.224631"),
    },
    "azure_common_traffic_manager_fired.json": {
        "provider": "azure",
        "name": "primary-region-availability",
        "status": "fired",
        "severity": "critical",
        "region": "westeurope",
        "time": ts("2026-11-20T09:00:05.123456"),
    },
    "gcp_webhook_incident_open.json": {
        "provider": "gcp",
        "name": "primary-region-down",
        "status": "fired",
        "severity": "critical",
        "region": "us-central1",
        "resource": "shop-primary VM Instance",
        "time": 1763629212.0,
    },
    "gcp_pubsub_push_incident_closed.json": {
        "provider": "gcp",
        "name": "primary-region-down",
        "status": "resolved",
        "severity": "unknown",
        "region": "us-central1",
        "time": 1763629812.0,
    },
    "gcp_cloudevent_pubsub_incident_open.json": {
        "provider": "gcp",
        "status": "fired",
        "time": 1763629212.0,
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_published_samples_parse(name: str) -> None:
    payload = load(name)
    event = parse_event(payload)
    for field, value in EXPECTED[name].items():
        assert getattr(event, field) == value, field
    assert event.raw == payload
    assert event.fired == (event.status == "fired")
    # JSON text works as well as the dict, with the same identity for de-duplication
    assert parse_event(json.dumps(payload)).key == event.key


def test_every_sample_has_a_test() -> None:
    assert {p.name for p in PAYLOADS.glob("*.json")} == set(EXPECTED)


def test_the_same_alarm_through_two_channels_is_one_occurrence() -> None:
    via_lambda = parse_event(load("aws_sns_lambda_route53_alarm.json"))
    via_sns = parse_event(load("aws_sns_notification_route53_alarm.json"))
    assert via_lambda.key == via_sns.key
    push = parse_event(load("gcp_webhook_incident_open.json"))
    cloudevent = parse_event(load("gcp_cloudevent_pubsub_incident_open.json"))
    assert push.key == cloudevent.key


def test_firing_and_resolving_are_different_occurrences() -> None:
    fired = load("gcp_webhook_incident_open.json")
    resolved = json.loads(json.dumps(fired))
    resolved["incident"].update(state="closed", ended_at=1763629999)
    assert parse_event(fired).key != parse_event(resolved).key
    assert parse_event(resolved).status == "resolved"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"hello": "world"}, "it has hello"),
        ([1, 2], "must be a JSON object"),
        ("{not json", "not JSON"),
        ({"detail-type": "CloudWatch Alarm State Change", "detail": {}}, "missing alarmName"),
        (
            {
                "detail-type": "CloudWatch Alarm State Change",
                "detail": {"alarmName": "x", "state": {"value": "INSUFFICIENT_DATA"}},
                "time": "2026-01-01T00:00:00Z",
            },
            "neither fired nor resolved",
        ),
        ({"Type": "Notification", "Message": "plain text"}, "not a CloudWatch alarm"),
        (
            {
                "schemaId": "azureMonitorCommonAlertSchema",
                "data": {"essentials": {"monitorCondition": "Maybe"}},
            },
            "is not Fired or Resolved",
        ),
        ({"incident": {"state": "open", "started_at": "yesterday"}}, "is not a time"),
        ({"message": {"data": "!!!"}}, "not base64 JSON"),
        (
            {"message": {"data": base64.b64encode(b'{"a": 1}').decode()}},
            "not a Cloud Monitoring incident",
        ),
    ],
)
def test_what_is_not_understood_is_named(payload: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        parse_event(payload)  # type: ignore[arg-type]
    assert info.value.field == "event"
