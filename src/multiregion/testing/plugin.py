"""The pytest plugin: registered through the ``pytest11`` entry point when multiregion is installed.

It only adds markers and the opt-in switch for live cloud runs; the contract classes and
emulator fixtures are imported explicitly by the test modules that use them.
"""

from __future__ import annotations

import os

import pytest

LIVE_ENV = "MULTIREGION_LIVE"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "live: runs against a real cloud account; opt-in with MULTIREGION_LIVE=aws,..."
    )


def live_enabled(provider: str) -> bool:
    """True when the user opted in to live tests for ``provider`` (``MULTIREGION_LIVE=aws,gcp``)."""
    wanted = {p.strip() for p in os.environ.get(LIVE_ENV, "").split(",") if p.strip()}
    return provider in wanted or "all" in wanted


def require_live(provider: str) -> None:
    """Skip, with the reason shown, unless live tests for ``provider`` were asked for."""
    if not live_enabled(provider):
        pytest.skip(f"live {provider} run not requested: set {LIVE_ENV}={provider} and credentials")
