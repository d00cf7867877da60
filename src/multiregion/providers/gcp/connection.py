"""Credentials, projects and endpoints shared by the GCP adapters.

With no endpoint the adapters use Application Default Credentials and Google's endpoints, with
TLS verified. An endpoint on a loopback address (an emulator or the project's fake) gets
anonymous credentials and may be plain HTTP; any other endpoint must be HTTPS.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from multiregion.errors import InvalidInput
from multiregion.providers.gcp.errors import translated

_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")


def project_id(value: object) -> str:
    if not isinstance(value, str) or not _PROJECT.match(value):
        raise InvalidInput("project", f"{value!r} is not a GCP project id (6-30 of a-z 0-9 -)")
    return value


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


def endpoint_url(field: str, value: object) -> str:
    """An absolute URL ending in ``/``; plain HTTP only for a loopback host."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, "must be a URL")
    parts = urlsplit(value)
    if not parts.hostname or parts.scheme not in ("http", "https"):
        raise InvalidInput(field, f"{value!r} is not an absolute http(s) URL")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise InvalidInput(field, f"{value!r}: plain http is only allowed for loopback emulators")
    return value if value.endswith("/") else value + "/"


def emulator_host(field: str, value: object) -> str:
    """``host:port`` of a loopback emulator (gRPC, no TLS)."""
    if not isinstance(value, str) or ":" not in value:
        raise InvalidInput(field, "must be host:port")
    host, _, port = value.rpartition(":")
    if not is_loopback_host(host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(field, f"{value!r} must be a loopback host:port (an emulator)")
    return value


def credentials(anonymous: bool, given: object = None) -> Any:
    """Anonymous credentials for emulators, ``given`` if any, else Application Default
    Credentials (whose token is never logged or shown)."""
    if anonymous:
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    if given is not None:
        if not callable(getattr(given, "refresh", None)):
            raise InvalidInput("credentials", "must be google.auth credentials")
        return given
    import google.auth

    with translated("Application Default Credentials"):
        found, _project = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
    return found
