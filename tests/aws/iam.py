"""The IAM policies of docs/providers/aws.md, and the API operations the adapters call.

Operations are recorded from botocore's ``before-send`` events on boto3's default session
(which the adapters' clients come from) and told apart by the ``multiregion/<part>`` suffix
of their User-Agent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

DOC = Path(__file__).resolve().parents[2] / "docs" / "providers" / "aws.md"
PARTS = ("bucket", "probe", "router", "store")
SIGNING_NAMES = {"s3": "s3", "dynamodb": "dynamodb", "route-53": "route53"}
IAM_ACTIONS = {
    "s3:HeadObject": ("s3:GetObject",),
    "s3:ListObjectsV2": ("s3:ListBucket",),
    "s3:CreateMultipartUpload": ("s3:PutObject",),
    "s3:UploadPart": ("s3:PutObject",),
    "s3:CompleteMultipartUpload": ("s3:PutObject",),
    "dynamodb:TransactWriteItems": (
        "dynamodb:ConditionCheckItem",
        "dynamodb:PutItem",
        "dynamodb:DeleteItem",
    ),
}
"""API operations whose IAM actions differ from their names."""
_USER_AGENT = re.compile(r"multiregion/(\w+)")
_JSON_BLOCK = re.compile(r"```json\n(.*?)```", re.DOTALL)


def policies(text: str | None = None) -> dict[str, set[str]]:
    """Allowed actions by part, from the JSON blocks whose Id is ``multiregion-aws-<part>``."""
    found: dict[str, set[str]] = {}
    for block in _JSON_BLOCK.findall(DOC.read_text() if text is None else text):
        policy = json.loads(block)
        part = str(policy.get("Id", "")).removeprefix("multiregion-aws-")
        actions = found.setdefault(part, set())
        for statement in policy["Statement"]:
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
    return found


def needed(operation: str, headers: Mapping[str, Any]) -> tuple[str, ...]:
    """The IAM actions an API call (``service:Operation``) needs."""
    actions = IAM_ACTIONS.get(operation, (operation,))
    if operation in ("s3:PutObject", "s3:CreateMultipartUpload") and (
        "x-amz-object-lock-mode" in headers
    ):
        actions = (*actions, "s3:PutObjectRetention")
    if operation == "s3:HeadObject":
        actions = (*actions, "s3:GetObjectRetention")
    return actions


def missing(
    calls: Iterable[tuple[str, str]], allowed: Mapping[str, set[str]]
) -> list[tuple[str, str]]:
    """Each (part, action) called that the part's policy does not allow."""
    return sorted({(part, a) for part, a in calls if a not in allowed.get(part, set())})


class Recorder:
    """Collects (part, IAM action) for every request an adapter sends."""

    def __init__(self) -> None:
        self.calls: set[tuple[str, str]] = set()

    def __call__(self, request: Any, event_name: str, **_: Any) -> None:
        agent = request.headers.get("User-Agent", b"")
        text = agent.decode() if isinstance(agent, bytes) else str(agent)
        part = _USER_AGENT.search(text)
        if part is None:
            return  # the tests' own raw clients
        _, service, operation = event_name.split(".", 2)
        name = f"{SIGNING_NAMES.get(service, service)}:{operation}"
        headers = {str(k).lower(): v for k, v in request.headers.items()}
        for action in needed(name, headers):
            self.calls.add((part.group(1), action))
