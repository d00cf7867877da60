"""One rule for secrets, used by every spec, adapter repr, error and log line.

A value is secret when its name says so (``key``, ``account_key``, ``password``, ``token``,
``sig``, ``credential``, ``connection_string``...): it is replaced by ``***`` whole. Free text
(an error message, a URL) keeps its shape with the secret parts replaced: a URL's password and
its secret query parameters (a SAS token's ``sig``), ``AccountKey=`` and ``Password=`` in
connection strings, ``Bearer`` tokens. Nothing here imports the rest of the library, so that
``errors`` can use it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

_SECRET_NAME = re.compile(
    r"(?i)(?:^|[_\-.])(?:key|secret|password|passwd|pwd|token|sig|signature|sas|credentials?"
    r"|connection_?string|auth(?:orization)?|private|apikey|api_key|access_?key)(?:$|[_\-.])"
    r"|^(?:accountkey|sharedaccesskey|sharedaccesssignature|x-amz-signature"
    r"|x-amz-security-token|x-goog-signature|code|client_secret)$"
)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_ASSIGNMENT = re.compile(r"\b([A-Za-z][A-Za-z0-9_.-]*)=([^;&\s'\"]+)")
"""``name=value`` in a query string or a connection string; hidden when the name is secret."""
_BEARER = re.compile(r"(?i)\b(Bearer|SharedKey|Basic)\s+[A-Za-z0-9._~+/:=-]+")


def is_secret_name(name: object) -> bool:
    """True for a setting, parameter or field name that holds a secret."""
    return isinstance(name, str) and bool(_SECRET_NAME.search(name))


def url(value: str) -> str:
    """``value`` with the password and secret query parameters replaced (a SAS token's sig)."""
    try:
        parts = urlsplit(value)
        query = parse_qsl(parts.query, keep_blank_values=True)
        netloc = parts.netloc
        if parts.password is not None:
            netloc = netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    except ValueError:
        return _assignments(value)
    if not query and netloc == parts.netloc:
        return value
    hidden = [(k, MASK if is_secret_name(k) else v) for k, v in query]
    return urlunsplit(
        parts._replace(netloc=netloc, query=urlencode(hidden, safe="*") if query else "")
    )


def _assignments(value: str) -> str:
    return _ASSIGNMENT.sub(
        lambda m: f"{m.group(1)}={MASK}" if is_secret_name(m.group(1)) else m.group(0), value
    )


def text(value: str) -> str:
    """Free text with every secret it carries replaced (URLs, connection strings, tokens)."""
    value = _URL.sub(lambda m: url(m.group(0)), value)
    value = _assignments(value)
    return _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", value)


def value(name: object, item: Any) -> Any:
    """A setting as it may be shown: masked whole when ``name`` is secret, else its text
    redacted; mappings and lists are redacted inside."""
    if item is None:
        return None
    if is_secret_name(name):
        return MASK
    if isinstance(item, str):
        return text(item)
    if isinstance(item, Mapping):
        return settings(item)
    if isinstance(item, list | tuple):
        return type(item)(value(name, i) for i in item)
    return item


def settings(table: Mapping[Any, Any]) -> dict[Any, Any]:
    """A copy of a settings table (or of nested ones) safe to show."""
    return {k: value(k, v) for k, v in table.items()}


def settings_repr(table: Mapping[Any, Any]) -> str:
    """For ``attrs.field(repr=...)``: a settings mapping shown without its secrets."""
    return repr(settings(table))


class RedactingFilter(logging.Filter):
    """Formats each record once and removes secrets from the text (attach to a handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
