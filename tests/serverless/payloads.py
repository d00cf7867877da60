"""The alarm payload samples of tests/events/payloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PAYLOADS = Path(__file__).parent.parent / "events" / "payloads"
NOT_ONE_ALARM = frozenset(
    {
        "aws_sns_metric_math.json",  # a batch of two
        "azure_budget_aip_notification.json",  # no common alert schema: refused
        "gcp_webhook_test_notification.json",  # a test: starts nothing
    }
)
"""Samples the entry-point tests handle one by one, not as one alarm each."""
SAMPLES = sorted(p.name for p in PAYLOADS.glob("*.json") if p.name not in NOT_ONE_ALARM)


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data
