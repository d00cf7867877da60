"""Checks shared by the value types and the adapters; each raises InvalidInput naming the field."""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from multiregion.errors import InvalidInput

_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_REGION = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
_ENDPOINT = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62})$")

MAX_KEY_BYTES = 1024
MAX_TTL = 2**31 - 1
# Object metadata every bucket service can hold: S3 allows 2 KiB of user metadata in all,
# Azure only C#-identifier names (adapters encode the '-'), so names stay small and plain.
MAX_METADATA_BYTES = 1024
RESERVED_METADATA_PREFIX = "multiregion-"
_METADATA_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def dns_name(field: str, value: object) -> str:
    """A fully qualified DNS name, returned lowercase without the trailing dot."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, "must be a non-empty string")
    name = value.lower().rstrip(".")
    if len(name) > 253:
        raise InvalidInput(field, f"{value!r} is longer than 253 characters")
    labels = name.split(".")
    if len(labels) < 2:
        raise InvalidInput(field, f"{value!r} is not a fully qualified DNS name")
    for label in labels:
        if not _LABEL.match(label):
            raise InvalidInput(field, f"{value!r} has an invalid label {label!r}")
    return name


def region(field: str, value: object) -> str:
    if not isinstance(value, str) or not _REGION.match(value):
        raise InvalidInput(field, f"{value!r} is not a region name (lowercase letters, digits, -)")
    return value


def endpoint_name(field: str, value: object) -> str:
    if not isinstance(value, str) or not _ENDPOINT.match(value):
        raise InvalidInput(
            field, f"{value!r} is not an endpoint name (1-63 of letters, digits, _ . -)"
        )
    return value


def target(field: str, value: object) -> str:
    """An IPv4 or IPv6 address, or a host name (served as CNAME)."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, "must be an IP address or a host name")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return dns_name(field, value)


def ttl(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TTL:
        raise InvalidInput(field, f"{value!r} is not a whole number of seconds from 0 to 2**31-1")
    return value


def finite_non_negative(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(field, f"{value!r} is not a number")
    if not math.isfinite(value) or value < 0:
        raise InvalidInput(field, f"{value!r} must be finite and not negative")
    return float(value)


def int_range(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(field, f"{value!r} must be a whole number from {low} to {high}")
    return value


def seconds(field: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(field, f"{value!r} is not a number of seconds")
    if not low < value <= high:
        raise InvalidInput(field, f"{value!r} must be above {low:g} and at most {high:g} seconds")
    return float(value)


def key(field: str, value: object, max_bytes: int = MAX_KEY_BYTES) -> str:
    """A store key or object key: non-empty text without control characters."""
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, not {type(value).__name__}")
    if not value:
        raise InvalidInput(field, "must not be empty")
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise InvalidInput(field, f"is {size} bytes long; at most {max_bytes} are allowed")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(field, "must not contain control characters")
    return value


def prefix(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be a string, not {type(value).__name__}")
    return value if not value else key(field, value)


def document(field: str, value: object) -> dict[str, Any]:
    """A JSON object; returned as a deep copy so that later changes by the caller cannot leak in."""
    if not isinstance(value, Mapping):
        raise InvalidInput(field, f"must be a JSON object (a dict), not {type(value).__name__}")
    try:
        text = json.dumps(value, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(field, f"is not JSON-serialisable: {exc}") from None
    copied: dict[str, Any] = json.loads(text)
    return copied


def document_size(value: Mapping[str, Any]) -> int:
    """The size of a document as the library counts it: compact UTF-8 JSON."""
    return len(json.dumps(value, separators=(",", ":"), sort_keys=True).encode())


def version(field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(field, "must be a version string returned by the store or bucket")
    return value


def one_of(field: str, value: object, allowed: Mapping[str, Any] | frozenset[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInput(field, f"{value!r} is not one of {', '.join(sorted(allowed))}")
    return value


def metadata(field: str, value: object) -> dict[str, str]:
    """User metadata of a bucket object: lowercase ``[a-z0-9-]`` names, printable ASCII values,
    at most MAX_METADATA_BYTES in all; names starting ``multiregion-`` belong to the library."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(field, f"must map names to values, not {type(value).__name__}")
    total = 0
    for name, text in value.items():
        if not isinstance(name, str) or not _METADATA_NAME.match(name):
            raise InvalidInput(field, f"name {name!r} must be lowercase [a-z0-9-]")
        if name.startswith(RESERVED_METADATA_PREFIX):
            raise InvalidInput(field, f"names starting {RESERVED_METADATA_PREFIX!r} are kept")
        if not isinstance(text, str) or not all(" " <= c <= "~" for c in text):
            raise InvalidInput(field, f"the value of {name!r} must be printable ASCII text")
        total += len(name) + len(text)
    if total > MAX_METADATA_BYTES:
        raise InvalidInput(field, f"is {total} bytes; at most {MAX_METADATA_BYTES} allowed")
    return dict(value)
