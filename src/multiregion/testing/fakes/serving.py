"""Plumbing shared by the loopback fakes and emulator helpers: start/stop as a context manager,
JSON over ``BaseHTTPRequestHandler``, and the TLS context of a prober that verifies nothing."""

from __future__ import annotations

import abc
import json
import ssl
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, Self


class Served(abc.ABC):
    """Something started and stopped around a ``with`` block: ``with X() as x`` starts it."""

    @abc.abstractmethod
    def start(self) -> Self:
        """Start serving; returns self."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop serving."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def unverified_tls() -> ssl.SSLContext:
    """A client TLS context that checks neither the certificate nor the host name, as the
    services' HTTPS health probers do not."""
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    return tls


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body (``Content-Length`` bytes; empty without one)."""
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def send_json(
    handler: BaseHTTPRequestHandler,
    status: int,
    payload: Any,
    content_type: str,
    *,
    phrase: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Answer with ``payload`` as JSON (an empty body for None)."""
    data = b"" if payload is None else json.dumps(payload).encode()
    handler.send_response(status, phrase)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)
