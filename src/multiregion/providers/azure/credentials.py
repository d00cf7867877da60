"""Credentials and endpoints shared by the Azure adapters."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from multiregion.errors import InvalidInput


def token_credential(value: object) -> Any:
    """``value`` if it is a TokenCredential, else ``DefaultAzureCredential()`` when None."""
    if value is None:
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()
    if not callable(getattr(value, "get_token", None)):
        raise InvalidInput("credential", "must be an azure-core TokenCredential (has get_token)")
    return value


def endpoint_url(field: str, value: object, *, schemes: tuple[str, ...] = ("https",)) -> str:
    """An absolute URL; plain http only for a loopback host (an emulator or fake)."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, "must be a URL")
    parts = urlsplit(value)
    if not parts.hostname:
        raise InvalidInput(field, f"{value!r} is not an absolute URL")
    if parts.scheme not in schemes and not (parts.scheme == "http" and is_loopback(value)):
        raise InvalidInput(field, f"{value!r} must use {' or '.join(schemes)}")
    return value


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
