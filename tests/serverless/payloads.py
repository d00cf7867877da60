"""The alarm payload samples of tests/events/payloads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PAYLOADS = Path(__file__).parent.parent / "events" / "payloads"
SAMPLES = sorted(p.name for p in PAYLOADS.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data
