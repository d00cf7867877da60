"""Connection settings shared by the AWS adapters, and the boto3 clients built from them.

Credentials always come from boto3's default chain (environment, profile, SSO, instance role);
the library never takes keys as arguments, so none can end up in a repr or a log line.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

import attrs
import boto3
from botocore.config import Config

from multiregion import validate
from multiregion.errors import InvalidInput


def _endpoint_url(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("endpoint_url", "must be an http(s) URL")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("endpoint_url", f"{value!r} is not an http(s) URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise InvalidInput("endpoint_url", "plain http is allowed for loopback emulators only")
    return value.rstrip("/")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _attempts(value: object) -> int:
    return validate.int_range("max_attempts", value, 1, 20)


def _timeout(field: str) -> Any:
    def check(_instance: Any, _attribute: Any, value: object) -> None:
        validate.seconds(field, value, 0, 600)

    return check


@attrs.frozen
class Connection:
    """Where and how to reach AWS: an optional endpoint (an emulator), retries and timeouts."""

    endpoint_url: str | None = attrs.field(default=None, converter=_endpoint_url)
    max_attempts: int = attrs.field(default=5, converter=_attempts)
    connect_timeout_s: float = attrs.field(default=5.0, validator=_timeout("connect_timeout_s"))
    read_timeout_s: float = attrs.field(default=30.0, validator=_timeout("read_timeout_s"))

    @property
    def verify_tls(self) -> bool:
        """Verification stays on, except for an https emulator on a loopback address."""
        if self.endpoint_url is None:
            return True
        return not is_loopback(urlsplit(self.endpoint_url).hostname or "")

    def client(self, service: str, region: str, part: str, **config: Any) -> Any:
        """A client from boto3's default session, with botocore's standard retries up to
        ``max_attempts`` tries; its User-Agent names the adapter (``multiregion/<part>``), so
        its calls can be told apart in CloudTrail and in the IAM policy test."""
        settings = Config(
            region_name=region,
            retries={"max_attempts": self.max_attempts, "mode": "standard"},
            connect_timeout=self.connect_timeout_s,
            read_timeout=self.read_timeout_s,
            user_agent_extra=f"multiregion/{part}",
            **config,
        )
        return boto3.client(
            service,  # type: ignore[call-overload]
            region_name=region,
            endpoint_url=self.endpoint_url,
            verify=self.verify_tls,
            config=settings,
        )
