"""Every published payload sample parses into the right DisasterEvent; anything else is refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from multiregion import InvalidInput
from multiregion.events import parse_event, parse_events

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
    "aws_eventbridge_metric_math.json": {
        "provider": "aws",
        "name": "TotalNetworkTrafficTooHigh",
        "status": "fired",
        "region": "us-east-1",
        "resource": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:TotalNetworkTrafficTooHigh",
        "time": ts("2019-10-02T17:20:48.554"),
    },
    "aws_lambda_action_metric.json": {
        "provider": "aws",
        "name": "lambda-demo-metric-alarm",
        "status": "fired",
        "region": "us-east-1",
        "resource": "arn:aws:cloudwatch:us-east-1: 444455556666:alarm:lambda-demo-metric-alarm",
        "reason": "test",
        "time": ts("2023-08-04T12:36:15.490"),
    },
    "aws_lambda_action_composite.json": {
        "provider": "aws",
        "name": "CompositeDemo.Main",
        "status": "fired",
        "region": "us-east-1",
        "time": ts("2023-08-04T12:56:46.138"),
    },
    "aws_sns_without_alarm_arn.json": {
        "provider": "aws",
        "name": "cw-to-slack-Alarm-9THDKWBS1876",
        "status": "fired",
        "region": "us-east-1",  # from the topic, not "US East (N. Virginia)"
        "resource": None,
        "time": ts("2017-10-30T13:20:35.831"),
    },
    "aws_sqs_sns_without_alarm_arn.json": {
        "provider": "aws",
        "name": "cw-to-slack-Alarm-9THDKWBS1876",
        "status": "fired",
        "region": "us-east-1",
        "time": ts("2017-10-30T13:20:35.831"),
    },
    "azure_metric_fired.json": {
        "provider": "azure",
        "name": "test-metricAlertRule",
        "status": "fired",
        "severity": "info",
        "time": ts("2021-11-15T09:35:24.346850"),
    },
    "azure_log_search_v2_fired.json": {
        "provider": "azure",
        "name": "test-logAlertRule-v2",
        "status": "fired",
        "time": ts("2021-11-16T11:47:41.472823"),
    },
    "azure_activity_log_administrative.json": {
        "provider": "azure",
        "name": "test-activityLogAlertRule",
        "status": "fired",
        "time": ts("2021-11-16T08:29:01.293246"),
    },
    "azure_service_health_resolved.json": {
        "provider": "azure",
        "name": "test-ServiceHealthAlertRule",
        "status": "resolved",  # monitorCondition says Fired: activity log alerts are stateless
        "time": ts("2021-11-17T05:34:48.062317"),
    },
    "azure_resource_health_unavailable.json": {
        "provider": "azure",
        "name": "test-ResourceHealthAlertRule",
        "status": "fired",
        "resource": "/subscriptions/11111111-1111-1111-1111-111111111111/resourcegroups/test-RG/"
        "providers/microsoft.compute/virtualmachines/test-VM",
    },
    "azure_cost_budget_actual.json": {
        "provider": "azure",
        "name": "Test_actual_cost_budget",  # alertRule is null
        "status": "fired",
        "severity": "unknown",
        "resource": None,
        "time": ts("2022-12-07T21:13:20.645"),
    },
    "azure_smart_detector_fired.json": {
        "provider": "azure",
        "name": "Dependency Latency Degradation - test-applicationInsights",
        "status": "fired",
    },
    "gcp_webhook_test_notification.json": {
        "provider": "gcp",
        "status": "test",  # not a firing incident of 1970
        "name": "12345",
    },
}
BATCHES = {"aws_sns_metric_math.json": 2}
"""Samples holding several alarms (an SNS batch)."""
REFUSED = {"azure_budget_aip_notification.json": "no base64 data"}
"""Published samples of what is no alarm the library handles: refused, naming why."""


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
    assert {p.name for p in PAYLOADS.glob("*.json")} == {*EXPECTED, *BATCHES, *REFUSED}
    sources = (PAYLOADS / "SOURCES.md").read_text()
    for path in PAYLOADS.glob("*.json"):
        assert f"`{path.name}`" in sources, f"{path.name} has no recorded source"


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_published_payloads_of_other_kinds_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match=REFUSED[name]):
        parse_event(load(name))


def test_a_batch_is_read_record_by_record() -> None:
    payload = load("aws_sns_metric_math.json")
    events = parse_events(payload)
    assert len(events) == BATCHES["aws_sns_metric_math.json"]
    assert {(e.name, e.status, e.region) for e in events} == {("EXAMPLE", "fired", "REGION")}
    with pytest.raises(InvalidInput, match="parse_events"):
        parse_event(payload)


def test_a_metric_math_route53_alarm_names_its_health_check() -> None:
    """The documented metric-math sample, its metric turned into Route 53's HealthCheckStatus."""
    payload = load("aws_sns_metric_math.json")
    record = payload["Records"][0]
    message = json.loads(record["Sns"]["Message"])
    metric = message["Trigger"]["Metrics"][1]["MetricStat"]["Metric"]
    metric.update(
        Namespace="AWS/Route53",
        MetricName="HealthCheckStatus",
        Dimensions=[{"value": "abcdef11-2222-3333-4444-555555fedcba", "name": "HealthCheckId"}],
    )
    record["Sns"]["Message"] = json.dumps(message)
    event = parse_event({"Records": [record]})
    assert event.resource == "route53-health-check/abcdef11-2222-3333-4444-555555fedcba"


def test_stateless_activity_log_alerts_read_their_own_state() -> None:
    health = load("azure_service_health_resolved.json")
    context = health["data"]["alertContext"]
    context["properties"]["stage"] = context["status"] = "Active"
    assert parse_event(health).status == "fired"
    resource = load("azure_resource_health_unavailable.json")
    properties = resource["data"]["alertContext"]["properties"]
    properties.update(currentHealthStatus="Available", previousHealthStatus="Unavailable")
    assert parse_event(resource).status == "resolved"


def test_a_lambda_alarm_action_back_to_ok_is_resolved() -> None:
    payload = load("aws_lambda_action_metric.json")
    payload["alarmData"]["state"]["value"] = "OK"
    assert parse_event(payload).status == "resolved"


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
