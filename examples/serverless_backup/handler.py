"""Alarm-triggered backup of a deployment's store into its bucket: one module, three clouds.

- AWS Lambda: handler ``handler.handler`` (template.yaml: an EventBridge rule on CloudWatch
  "Alarm State Change" events).
- Azure Functions: ``main`` is the HTTP-triggered function of BackupOnAlarm/function.json
  (this folder is the Function App; an Azure Monitor action group calls it with the common
  alert schema).
- Google Cloud Functions: entry point ``on_alarm`` (functions-framework), HTTP for a Cloud
  Monitoring webhook or a Pub/Sub push, CloudEvent for a Pub/Sub trigger.

Nothing is connected at import: the deployment spec named by ``$MULTIREGION_CONFIG`` is read
at the first alarm and kept while the container stays warm. Each alarm occurrence is backed
up once, however often it is delivered; a resolved alarm starts nothing.
"""

from __future__ import annotations

from typing import Any

from multiregion.serverless import (
    Policy,
    Rule,
    azure_function,
    cloud_function,
    from_config,
    lambda_handler,
)

POLICY = Policy([Rule("*", "backup")])
"""Every alarm that fires snapshots the store; narrow the glob to your alarms' names."""

dispatcher = from_config(POLICY)

handler = lambda_handler(dispatcher)
on_alarm = cloud_function(dispatcher)
_azure = azure_function(dispatcher)


def main(req: Any) -> Any:
    """The Azure Functions entry point (Python v1 model: BackupOnAlarm/function.json)."""
    import azure.functions as func  # present on Azure Functions' Python workers

    return func.HttpResponse(**_azure(req))
