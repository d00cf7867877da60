"""Cloud alarm payloads -> one neutral DisasterEvent.

Understood formats:
- AWS: a CloudWatch "Alarm State Change" event from EventBridge; the same alarm delivered through
  SNS (a Lambda ``Records[].Sns`` event or a bare SNS notification); a Route 53 health check alarm
  is a CloudWatch alarm on ``AWS/Route53 HealthCheckStatus`` and names the health check.
- Azure: Azure Monitor's common alert schema (``schemaId: azureMonitorCommonAlertSchema``).
- GCP: Cloud Monitoring incidents by webhook (``{"incident": ..., "version": "1.2"}``) and by
  Pub/Sub (a push envelope ``{"message": {"data": base64}}``, a background-function event
  ``{"data": base64}``, or a CloudEvent whose ``data.message.data`` is base64).

Anything else raises InvalidInput saying what was not understood.
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

Status = Literal["fired", "resolved"]
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
        text = value.strip().replace("Z", "+00:00")
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
    """The Route 53 health check an alarm watches, if it watches one."""
    if not isinstance(trigger, Mapping) or trigger.get("Namespace") != "AWS/Route53":
        return None
    for dimension in trigger.get("Dimensions") or []:
        if isinstance(dimension, Mapping) and dimension.get("name") == "HealthCheckId":
            value = dimension.get("value")
            return f"route53-health-check/{value}" if isinstance(value, str) else None
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


def _from_eventbridge(payload: Mapping[str, Any]) -> DisasterEvent:
    where = "CloudWatch alarm state change"
    detail = _field(payload, "detail", where=where)
    name = _field(detail, "alarmName", where=where)
    state = _field(detail, "state", where=where)
    value = _field(state, "value", where=where)
    status = _aws_status(value, where)
    if status is None:
        raise InvalidInput("event", f"{where}: INSUFFICIENT_DATA is neither fired nor resolved")
    when = _time(state.get("timestamp") or _field(payload, "time", where=where), where)
    metrics = (detail.get("configuration") or {}).get("metrics") or []
    resource = None
    for metric in metrics:
        stat = metric.get("metricStat", {}).get("metric", {}) if isinstance(metric, Mapping) else {}
        dims = stat.get("dimensions") or {}
        if stat.get("namespace") == "AWS/Route53" and "HealthCheckId" in dims:
            resource = f"route53-health-check/{dims['HealthCheckId']}"
    resources = payload.get("resources") or []
    return DisasterEvent(
        provider="aws",
        name=str(name),
        status=status,
        severity="unknown",
        time=when,
        region=payload.get("region") or _arn_region(resources[0] if resources else None),
        resource=resource or (resources[0] if resources else None),
        reason=str(state.get("reason", "")),
        key=_key("aws", name, value, when),
        raw=payload,
    )


def _from_alarm_message(message: Mapping[str, Any], raw: Mapping[str, Any]) -> DisasterEvent:
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
        region=_arn_region(arn) or message.get("Region"),
        resource=_health_check(message.get("Trigger")) or (arn if isinstance(arn, str) else None),
        reason=str(message.get("NewStateReason", "")),
        key=_key("aws", name, value, when),
        raw=raw,
    )


def _from_sns(payload: Mapping[str, Any]) -> DisasterEvent:
    records = payload.get("Records")
    if isinstance(records, list):
        if len(records) != 1 or not isinstance(records[0], Mapping):
            raise InvalidInput("event", "SNS event: expected exactly one record")
        notification = _field(records[0], "Sns", where="SNS event")
    else:
        notification = payload
    text = _field(notification, "Message", where="SNS notification")
    try:
        message = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        message = None
    if not isinstance(message, Mapping):
        raise InvalidInput("event", "SNS notification: Message is not a CloudWatch alarm (JSON)")
    return _from_alarm_message(message, payload)


def _from_azure(payload: Mapping[str, Any]) -> DisasterEvent:
    where = "Azure Monitor common alert"
    essentials = _field(payload, "data", "essentials", where=where)
    condition = _field(essentials, "monitorCondition", where=where)
    if condition not in ("Fired", "Resolved"):
        raise InvalidInput(
            "event", f"{where}: monitorCondition {condition!r} is not Fired or Resolved"
        )
    status: Status = "fired" if condition == "Fired" else "resolved"
    stamp = essentials.get("resolvedDateTime") if status == "resolved" else None
    when = _time(stamp or _field(essentials, "firedDateTime", where=where), where)
    targets = essentials.get("alertTargetIDs") or []
    custom = (payload.get("data") or {}).get("customProperties") or {}
    severity = _AZURE_SEVERITY.get(str(essentials.get("severity", "")).lower(), "unknown")
    return DisasterEvent(
        provider="azure",
        name=str(_field(essentials, "alertRule", where=where)),
        status=status,
        severity=severity,
        time=when,
        region=custom.get("region") if isinstance(custom, Mapping) else None,
        resource=targets[0] if targets else None,
        reason=str(essentials.get("description") or ""),
        key=_key("azure", essentials.get("alertId"), condition, when),
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


def _kind(payload: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], DisasterEvent] | None:
    if payload.get("detail-type") == "CloudWatch Alarm State Change":
        return _from_eventbridge
    records = payload.get("Records")
    if (
        isinstance(records, list)
        and records
        and isinstance(records[0], Mapping)
        and ("Sns" in records[0])
    ):
        return _from_sns
    if payload.get("Type") == "Notification" and "Message" in payload:
        return _from_sns
    if payload.get("schemaId") == "azureMonitorCommonAlertSchema":
        return _from_azure
    if isinstance(payload.get("incident"), Mapping):
        return lambda p: _from_gcp(p, p)
    if "message" in payload or "data" in payload:
        return _from_pubsub
    return None


def parse_event(payload: Mapping[str, Any] | str | bytes) -> DisasterEvent:
    """The DisasterEvent in a cloud alarm payload (a dict, or its JSON text)."""
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
            "not a CloudWatch alarm (EventBridge or SNS), an Azure Monitor common alert or a "
            f"Cloud Monitoring incident (webhook or Pub/Sub); it has {keys}",
        )
    return parser(payload)
