"""A recording HTTP proxy for loopback emulators: counts and shows what an adapter sends.

Point an adapter's endpoint at ``RecordingProxy(upstream_url).url``; every request is forwarded
unchanged to the emulator and recorded (method, path, query, headers) before the answer is
relayed. Tests use it to count requests per operation and to check a request against the
service's API reference where the emulator ignores a header (encryption keys, retention, holds).
It never touches the SDK: the adapter's real client talks real HTTP through it.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlsplit

import attrs

from multiregion.errors import InvalidInput
from multiregion.testing.emulators.process import LOOPBACK
from multiregion.testing.fakes.serving import Served

BODY_KEPT = 64 * 1024
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "proxy-connection"})


@attrs.frozen
class Recorded:
    method: str
    path: str
    query: Mapping[str, tuple[str, ...]] = attrs.field(hash=False)
    headers: Mapping[str, str] = attrs.field(hash=False)
    """Header names in lower case."""
    status: int = 0
    body: bytes = attrs.field(default=b"", repr=False)
    """The first ``BODY_KEPT`` bytes of the request body (JSON metadata of an upload)."""


class RecordingProxy(Served):
    """Forwards HTTP requests on its own loopback port to ``upstream`` and records them."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname not in (LOOPBACK, "localhost"):
            raise InvalidInput("upstream", "must be an http:// loopback URL (an emulator)")
        self._upstream = (parts.hostname, parts.port or 80)
        self._prefix = parts.path.rstrip("/")
        self._lock = threading.Lock()
        self._requests: list[Recorded] = []
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start the proxy first"
        return f"http://{LOOPBACK}:{self._server.server_address[1]}{self._prefix}"

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def start(self) -> Self:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _relay(self) -> None:
                body = _request_body(self)
                parts = urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                upstream = http.client.HTTPConnection(*proxy._upstream, timeout=60)
                try:
                    upstream.putrequest(
                        self.command, self.path, skip_host=True, skip_accept_encoding=True
                    )
                    for name, value in self.headers.items():
                        if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                            upstream.putheader(name, value)
                    upstream.putheader("Content-Length", str(len(body)))
                    upstream.endheaders(body)
                    response = upstream.getresponse()
                    payload = response.read()
                    with proxy._lock:
                        proxy._requests.append(
                            Recorded(
                                self.command,
                                parts.path,
                                {k: tuple(v) for k, v in parse_qs(parts.query).items()},
                                headers,
                                response.status,
                                body[:BODY_KEPT],
                            )
                        )
                    self.send_response_only(response.status, response.reason)
                    for name, value in response.getheaders():
                        if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                            self.send_header(name, value)
                    length = response.getheader("Content-Length")
                    if self.command == "HEAD" and length is not None:
                        self.send_header("Content-Length", length)
                    elif self.command != "HEAD":
                        self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                finally:
                    upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _relay

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _request_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, from Content-Length or chunked transfer encoding."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        pieces: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(pieces)
            pieces.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""
