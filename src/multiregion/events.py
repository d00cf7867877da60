"""Cloud alarm payloads -> one neutral DisasterEvent.

Understood formats:
- AWS: a CloudWatch "Alarm State Change" event from EventBridge; the same alarm delivered through
  SNS (a Lambda ``Records[].Sns`` event or a bare SNS notification, with or without
  ``AlarmArn``), through SQS (``Records[].body`` holding the SNS notification or, with raw
  delivery, the alarm message), and as a direct Lambda alarm action (``source``, ``alarmArn``,
  ``alarmData``); metric, metric-math and composite alarms. A Route 53 health check alarm is a
  CloudWatch alarm on ``AWS/Route53 HealthCheckStatus`` (also inside metric math) and names the
  health check.
- Azure: Azure Monitor's common alert schema (``schemaId: azureMonitorCommonAlertSchema``):
  metric, log search, smart detector and cost budget alerts, and activity log alerts, which are
  stateless (``monitorCondition`` stays ``Fired``): a Service Health notice is resolved by its
  ``stage``, a Resource Health event by ``currentHealthStatus``.
- GCP: Cloud Monitoring incidents by webhook (``{"incident": ..., "version": "1.2"}``) and by
  Pub/Sub (a push envelope ``{"message": {"data": base64}}``, a background-function event
  ``{"data": base64}``, or a CloudEvent whose ``data.message.data`` is base64); a test
  notification (``"version": "test"``) is an event of status ``test``, which starts nothing.

Anything else raises InvalidInput saying what was not understood. SNS and SQS deliver batches:
``parse_events`` reads every record, ``parse_event`` exactly one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import attrs

from multiregion.errors import InvalidInput

Status = Literal["fired", "resolved", "test"]
Severity = Literal["critical", "error", "warning", "info", "unknown"]

_AZURE_SEVERITY: dict[str, Severity] = {
    "sev0": "critical",
    "sev1": "error",
    "sev2": "warning",
    "sev3": "info",
    "sev4": "info",
}
_GCP_SEVERITY: dict[str, Severity] = {
    "critical": "critical",
    "error": "error",
    "warning": "warning",
}


@attrs.frozen
class DisasterEvent:
    """One alarm occurrence, whatever cloud sent it.

    ``key`` identifies the occurrence (alarm, state, time of the change), so the same delivery
    seen twice has the same key and a handler can run it once.
    """

    provider: Literal["aws", "azure", "gcp"]
    name: str
    status: Status
    severity: Severity
    time: float
    region: str | None
    resource: str | None
    reason: str
    key: str
    raw: Mapping[str, Any] = attrs.field(eq=False, hash=False, repr=False)

    @property
    def fired(self) -> bool:
        return self.status == "fired"


def _field(data: Mapping[str, Any], *path: str, where: str) -> Any:
    value: Any = data
    for part in path:
        if not isinstance(value, Mapping) or part not in value:
            raise InvalidInput("event", f"{where}: missing {'.'.join(path)}")
        value = value[part]
    return value


def _time(value: object, where: str) -> float:
    """ISO-8601 (with Z, +00:00 or +0000) or epoch seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        text = "".join(value.split()).replace("Z", "+00:00")
        if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
            text = f"{text[:-2]}:{text[-2:]}"
        # Azure gives seven fractional digits; Python takes six.
        head, dot, rest = text.partition(".")
        if dot:
            digits = "".join(c for c in rest if c.isdigit())
            text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    raise InvalidInput("event", f"{where}: {value!r} is not a time")


def _key(provider: str, *parts: object) -> str:
    text = json.dumps([provider, *parts], sort_keys=True, default=str)
    return f"{provider}-{hashlib.sha256(text.encode()).hexdigest()[:24]}"


def _arn_region(arn: object) -> str | None:
    if isinstance(arn, str) and arn.startswith("arn:"):
        parts = arn.split(":")
        if len(parts) > 3 and parts[3]:
            return parts[3]
    return None


def _health_check(trigger: Mapping[str, Any] | None) -> str | None:
    """The Route 53 health check an alarm watches, if it watches one: the trigger's own metric,
    or one of the metrics of a metric-math alarm (``Trigger.Metrics[].MetricStat.Metric``)."""
    if not isinstance(trigger, Mapping):
        return None
    metrics: list[Any] = [trigger]
    for entry in trigger.get("Metrics") or []:
        if isinstance(entry, Mapping):
            metrics.append((entry.get("MetricStat") or {}).get("Metric") or {})
    for metric in metrics:
        if not isinstance(metric, Mapping) or metric.get("Namespace") != "AWS/Route53":
            continue
        for dimension in metric.get("Dimensions") or []:
            if isinstance(dimension, Mapping) and dimension.get("name") == "HealthCheckId":
                value = dimension.get("value")
                if isinstance(value, str):
                    return f"route53-health-check/{value}"
    return None


def _metrics_health_check(configuration: object) -> str | None:
    """The health check in an EventBridge or Lambda-action alarm's ``configuration.metrics``."""
    metrics = configuration.get("metrics") if isinstance(configuration, Mapping) else None
    for metric in metrics or []:
        stat = metric.get("metricStat", {}).get("metric", {}) if isinstance(metric, Mapping) else {}
        dims = stat.get("dimensions") or {}
        if stat.get("namespace") == "AWS/Route53" and "HealthCheckId" in dims:
            return f"route53-health-check/{dims['HealthCheckId']}"
    return None


def _aws_status(state: object, where: str) -> Status | None:
    if state == "ALARM":
        return "fired"
    if state == "OK":
        return "resolved"
    if state == "INSUFFICIENT_DATA":
        return None
    raise InvalidInput(
        "event", f"{where}: alarm state {state!r} is not ALARM, OK or INSUFFICIENT_DATA"
    )


def _from_state_change(
    payload: Mapping[str, Any], section: str, arn: object, where: str
) -> DisasterEvent:
    """An alarm state change as EventBridge (``detail``) and a direct Lambda alarm action
    (``alarmData``) carry it: the same fields under another key."""
    data = _field(payload, section, where=where)
    name = _field(data, "alarmName", where=where)
    state = _field(data, "state", where=where)
    value = _field(state, "value", where=where)
    status = _aws_status(value, where)
    if status is None:
        raise InvalidInput("event", f"{where}: INSUFFICIENT_DATA is neither fired nor resolved")
    when = _time(state.get("timestamp") or _field(payload, "time", where=where), where)
    return DisasterEvent(
        provider="aws",
        name=str(name),
        status=status,
        severity="unknown",
        time=when,
        region=payload.get("region") or _arn_region(arn),
        resource=_metrics_health_check(data.get("configuration"))
        or (arn if isinstance(arn, str) else None),
        reason=str(state.get("reason", "")),
        key=_key("aws", name, value, when),
        raw=payload,
    )


def _from_eventbridge(payload: Mapping[str, Any]) -> DisasterEvent:
    resources = payload.get("resources") or [None]
    return _from_state_change(payload, "detail", resources[0], "CloudWatch alarm state change")


def _from_lambda_action(payload: Mapping[str, Any]) -> DisasterEvent:
    """A CloudWatch alarm that invokes a Lambda function directly (metric or composite)."""
    arn = payload.get("alarmArn")
    return _from_state_change(payload, "alarmData", arn, "CloudWatch Lambda alarm action")


def _from_alarm_message(
    message: Mapping[str, Any], raw: Mapping[str, Any], topic: object = None
) -> DisasterEvent:
    """An alarm message as CloudWatch publishes it to SNS. Without ``AlarmArn`` (older alarms)
    the region comes from the topic's ARN (alarms publish to topics of their own region):
    the message's ``Region`` is a display name ("US East (N. Virginia)"), never used."""
    where = "CloudWatch alarm notification"
    name = _field(message, "AlarmName", where=where)
    value = _field(message, "NewStateValue", where=where)
    status = _aws_status(value, where)
    if status is None:
        raise InvalidInput("event", f"{where}: INSUFFICIENT_DATA is neither fired nor resolved")
    when = _time(_field(message, "StateChangeTime", where=where), where)
    arn = message.get("AlarmArn")
    return DisasterEvent(
        provider="aws",
        name=str(name),
        status=status,
        severity="unknown",
        time=when,
        region=_arn_region(arn) or _arn_region(topic),
        resource=_health_check(message.get("Trigger")) or (arn if isinstance(arn, str) else None),
        reason=str(message.get("NewStateReason", "")),
        key=_key("aws", name, value, when),
        raw=raw,
    )


def _alarm_json(text: object, where: str) -> Mapping[str, Any]:
    try:
        found = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        found = None
    if not isinstance(found, Mapping):
        raise InvalidInput("event", f"{where} is not a CloudWatch alarm (a JSON object)")
    return found


def _from_notification(notification: Mapping[str, Any], raw: Mapping[str, Any]) -> DisasterEvent:
    """An SNS notification (``Type``, ``TopicArn``, ``Message``) carrying an alarm message."""
    text = _field(notification, "Message", where="SNS notification")
    message = _alarm_json(text, "SNS notification: Message")
    return _from_alarm_message(message, raw, notification.get("TopicArn"))


def _from_sqs_body(record: Mapping[str, Any], raw: Mapping[str, Any]) -> DisasterEvent:
    """An SQS message: an SNS notification, or with raw delivery the alarm message itself."""
    body = _alarm_json(_field(record, "body", where="SQS record"), "SQS record: body")
    if "Message" in body and body.get("Type") == "Notification":
        return _from_notification(body, raw)
    return _from_alarm_message(body, raw, record.get("eventSourceARN"))


def _from_records(payload: Mapping[str, Any]) -> tuple[DisasterEvent, ...]:
    """Every alarm in an SNS or SQS batch (``Records``)."""
    records = payload.get("Records")
    if not isinstance(records, list) or not records:
        raise InvalidInput("event", "Records: expected a non-empty list")
    events = []
    for record in records:
        if not isinstance(record, Mapping):
            raise InvalidInput("event", "Records: each record must be an object")
        if "Sns" in record:
            events.append(_from_notification(_field(record, "Sns", where="SNS record"), payload))
        elif record.get("eventSource") == "aws:sqs":
            events.append(_from_sqs_body(record, payload))
        else:
            raise InvalidInput("event", "Records: neither an SNS nor an SQS record")
    return tuple(events)


_RESOLVED_STAGES = frozenset({"resolved", "rca", "complete"})


def _azure_status(essentials: Mapping[str, Any], context: Mapping[str, Any]) -> Status:
    """Fired or resolved, read from the field that really says so. Activity log alerts are
    stateless (``monitorCondition`` stays ``Fired``): Service Health carries its resolution in
    ``properties.stage``, Resource Health in ``properties.currentHealthStatus``. Cost budget
    alerts have no condition at all: each one is a threshold crossed."""
    where = "Azure Monitor common alert"
    service = str(essentials.get("monitoringService") or "")
    found = context.get("properties")
    properties: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    if essentials.get("signalType") == "Activity Log":
        if service == "ServiceHealth":
            stage = str(properties.get("stage") or context.get("status") or "").lower()
            return "resolved" if stage in _RESOLVED_STAGES else "fired"
        if service in ("Resource Health", "ResourceHealth"):
            health = properties.get("currentHealthStatus")
            return "resolved" if health == "Available" else "fired"
        return "fired"
    if service == "CostAlerts":
        return "fired"
    condition = _field(essentials, "monitorCondition", where=where)
    if condition not in ("Fired", "Resolved"):
        raise InvalidInput(
            "event", f"{where}: monitorCondition {condition!r} is not Fired or Resolved"
        )
    return "fired" if condition == "Fired" else "resolved"


def _azure_name(essentials: Mapping[str, Any], context: Mapping[str, Any]) -> str:
    """The alert rule; a cost alert has none (null) and names its budget instead."""
    rule = essentials.get("alertRule")
    if isinstance(rule, str) and rule:
        return rule
    budget = (context.get("AlertData") or {}).get("BudgetName")
    if isinstance(budget, str) and budget:
        return budget
    raise InvalidInput("event", "Azure Monitor common alert: no alertRule nor budget name")


def _from_azure(payload: Mapping[str, Any]) -> DisasterEvent:
    where = "Azure Monitor common alert"
    essentials = _field(payload, "data", "essentials", where=where)
    context = (payload.get("data") or {}).get("alertContext") or {}
    if not isinstance(context, Mapping):
        raise InvalidInput("event", f"{where}: alertContext is not an object")
    status = _azure_status(essentials, context)
    stateful = essentials.get("monitorCondition") == "Resolved"
    stamp = essentials.get("resolvedDateTime") if stateful else None
    when = _time(stamp or _field(essentials, "firedDateTime", where=where), where)
    targets = essentials.get("alertTargetIDs") or []
    custom = (payload.get("data") or {}).get("customProperties") or {}
    severity = _AZURE_SEVERITY.get(str(essentials.get("severity") or "").lower(), "unknown")
    return DisasterEvent(
        provider="azure",
        name=_azure_name(essentials, context),
        status=status,
        severity=severity,
        time=when,
        region=custom.get("region") if isinstance(custom, Mapping) else None,
        resource=targets[0] if targets else None,
        reason=str(essentials.get("description") or ""),
        key=_key("azure", essentials.get("alertId"), status, when),
        raw=payload,
    )


def _gcp_region(resource: Mapping[str, Any]) -> str | None:
    labels = resource.get("labels") or {}
    for name in ("region", "location"):
        if isinstance(labels.get(name), str):
            return str(labels[name])
    zone = labels.get("zone")
    if isinstance(zone, str) and zone.count("-") >= 2:
        return zone.rsplit("-", 1)[0]
    return None


def _from_gcp(payload: Mapping[str, Any], raw: Mapping[str, Any]) -> DisasterEvent:
    where = "Cloud Monitoring incident"
    incident = _field(payload, "incident", where=where)
    state = str(_field(incident, "state", where=where)).lower()
    if state not in ("open", "closed"):
        raise InvalidInput("event", f"{where}: state {state!r} is not open or closed")
    status: Status = "fired" if state == "open" else "resolved"
    if payload.get("version") == "test":  # "Send test notification": no incident happened
        status = "test"
    stamp = incident.get("ended_at") if status == "resolved" else None
    when = _time(stamp if stamp is not None else _field(incident, "started_at", where=where), where)
    resource = incident.get("resource") or {}
    severity = _GCP_SEVERITY.get(str(incident.get("severity", "")).lower(), "unknown")
    return DisasterEvent(
        provider="gcp",
        name=str(incident.get("policy_name") or _field(incident, "incident_id", where=where)),
        status=status,
        severity=severity,
        time=when,
        region=_gcp_region(resource) if isinstance(resource, Mapping) else None,
        resource=str(incident.get("resource_name") or incident.get("resource_id") or "") or None,
        reason=str(incident.get("summary", "")),
        key=_key("gcp", incident.get("incident_id"), state, when),
        raw=raw,
    )


def _from_pubsub(payload: Mapping[str, Any]) -> DisasterEvent:
    data: object = None
    message = payload.get("message")
    if isinstance(message, Mapping):
        data = message.get("data")
    elif isinstance(payload.get("data"), Mapping):
        data = (payload["data"].get("message") or {}).get("data")
    else:
        data = payload.get("data")
    if not isinstance(data, str):
        raise InvalidInput("event", "Pub/Sub message: no base64 data")
    try:
        decoded = json.loads(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("event", f"Pub/Sub message: data is not base64 JSON ({exc})") from None
    if not isinstance(decoded, Mapping) or "incident" not in decoded:
        raise InvalidInput("event", "Pub/Sub message: data is not a Cloud Monitoring incident")
    return _from_gcp(decoded, payload)


Parser = Callable[[Mapping[str, Any]], tuple[DisasterEvent, ...]]


def _one(parse: Callable[[Mapping[str, Any]], DisasterEvent]) -> Parser:
    return lambda payload: (parse(payload),)


def _kind(payload: Mapping[str, Any]) -> Parser | None:
    if payload.get("detail-type") == "CloudWatch Alarm State Change":
        return _one(_from_eventbridge)
    if payload.get("source") == "aws.cloudwatch" and "alarmData" in payload:
        return _one(_from_lambda_action)
    if isinstance(payload.get("Records"), list):
        return _from_records
    if payload.get("Type") == "Notification" and "Message" in payload:
        return _one(lambda p: _from_notification(p, p))
    if payload.get("schemaId") == "azureMonitorCommonAlertSchema":
        return _one(_from_azure)
    if isinstance(payload.get("incident"), Mapping):
        return _one(lambda p: _from_gcp(p, p))
    if "message" in payload or "data" in payload:
        return _one(_from_pubsub)
    return None


def parse_events(payload: Mapping[str, Any] | str | bytes) -> tuple[DisasterEvent, ...]:
    """Every DisasterEvent in a cloud alarm payload (a dict, or its JSON text): one, or one per
    record of an SNS or SQS batch."""
    if isinstance(payload, str | bytes):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise InvalidInput("event", f"not JSON: {exc}") from None
    if not isinstance(payload, Mapping):
        raise InvalidInput("event", f"must be a JSON object, not {type(payload).__name__}")
    parser = _kind(payload)
    if parser is None:
        keys = ", ".join(sorted(str(k) for k in payload)[:8]) or "no keys"
        raise InvalidInput(
            "event",
            "not a CloudWatch alarm (EventBridge, SNS, SQS or a Lambda alarm action), an Azure "
            f"Monitor common alert or a Cloud Monitoring incident (webhook or Pub/Sub); it has "
            f"{keys}",
        )
    return parser(payload)


def parse_event(payload: Mapping[str, Any] | str | bytes) -> DisasterEvent:
    """The one DisasterEvent in a cloud alarm payload; a batch of several raises InvalidInput."""
    events = parse_events(payload)
    if len(events) != 1:
        raise InvalidInput("event", f"holds {len(events)} alarms; read them with parse_events")
    return events[0]
