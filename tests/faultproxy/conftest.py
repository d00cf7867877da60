"""A keep-alive HTTP upstream and a fault proxy in front of it, for tests with real clients."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import attrs
import pytest

from multiregion.faultproxy import FaultProxy


class _Upstream(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive: ``GET /bytes/N`` answers N bytes, ``POST`` echoes the body."""

    protocol_version = "HTTP/1.1"
    hits = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).hits += 1
        size = int(self.path.rsplit("/", 1)[-1]) if self.path.startswith("/bytes/") else 3
        self._send(b"x" * size)

    def do_POST(self) -> None:
        type(self).hits += 1
        self._send(self.rfile.read(int(self.headers["Content-Length"])))

    def _send(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # resets are what these tests make happen


@attrs.frozen
class Proxied:
    proxy: FaultProxy
    url: str
    upstream: type[_Upstream]

    @property
    def hits(self) -> int:
        return self.upstream.hits


@pytest.fixture
def proxied() -> Iterator[Proxied]:
    handler = type("Upstream", (_Upstream,), {"hits": 0})
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    with FaultProxy() as proxy:
        host, port = proxy.add_listener("app", ("127.0.0.1", 0), server.server_address[:2])
        yield Proxied(proxy, f"http://{host}:{port}", handler)
    server.shutdown()
    server.server_close()
