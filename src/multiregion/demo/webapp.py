"""The example regional web app: one process per region, all sharing one replicated store.

``POST /orders`` stores an order and answers 201 only once the store acknowledged it, with the
order id in the body; a write the store refuses because this region does not take writes
(``PreconditionFailed``) or cannot be reached (``Unavailable``) answers 503. ``GET /health``
answers 200 and ``GET /`` names the region.

Run it with ``python -m multiregion.demo.webapp --region region-a --host 127.0.0.2 --port 8080
--store DIR --regions region-a,region-b`` (``examples/webapp/app.py`` is the same program).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from multiregion import validate
from multiregion.errors import InvalidInput, MultiregionError, PreconditionFailed, Unavailable
from multiregion.interfaces import ReplicatedStore

ORDER_PREFIX = "orders/"
MAX_BODY_BYTES = 64 * 1024
LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def loopback(field: str, value: object) -> str:
    """An IPv4 loopback address (127.0.0.0/8): the only kind the demo sends traffic to."""
    try:
        address = ipaddress.ip_address(value)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidInput(field, f"{value!r} is not an IP address") from None
    if address not in LOOPBACK:
        raise InvalidInput(field, f"{value} is not a loopback address (127.0.0.0/8)")
    return str(address)


class RegionalApp:
    """What the HTTP handler calls: one region's view of the shared store."""

    def __init__(self, region: str, store: ReplicatedStore) -> None:
        self.region = validate.region("region", region)
        self.store = store
        self._lock = threading.Lock()  # one store call at a time from this process's threads

    def place_order(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        order_id = uuid.uuid4().hex
        value = {"order_id": order_id, "region": self.region, "at": time.time(), "body": body}
        try:
            with self._lock:
                self.store.put(ORDER_PREFIX + order_id, value, create_only=True, region=self.region)
        except InvalidInput as exc:
            return HTTPStatus.BAD_REQUEST, {"error": str(exc)}
        except (PreconditionFailed, Unavailable) as exc:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc), "region": self.region}
        return HTTPStatus.CREATED, {"order_id": order_id, "region": self.region}


def _handler(app: RegionalApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == "/health":
                self._reply(HTTPStatus.OK, {"status": "ok", "region": app.region})
            elif self.path == "/":
                self._reply(HTTPStatus.OK, {"region": app.region, "service": "orders"})
            else:
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such page {self.path}"})

        def do_POST(self) -> None:
            if self.path != "/orders":
                self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such page {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 <= length <= MAX_BODY_BYTES:
                self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"})
                return
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                self._reply(HTTPStatus.BAD_REQUEST, {"error": "body is not JSON"})
                return
            if not isinstance(body, dict):
                self._reply(HTTPStatus.BAD_REQUEST, {"error": "body must be a JSON object"})
                return
            self._reply(*app.place_order(body))

        def _reply(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the demo's own view reports traffic."""

    return Handler


def serve(app: RegionalApp, host: str, port: int) -> ThreadingHTTPServer:
    """A started server (in a daemon thread) for ``app`` on ``host:port``."""
    validate.int_range("port", port, 1, 65535)
    try:
        server = ThreadingHTTPServer((loopback("host", host), port), _handler(app))
    except OSError as exc:
        raise Unavailable(f"cannot listen on {host}:{port}: {exc}") from exc
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=f"http-{app.region}", daemon=True).start()
    return server


def _exit_when_orphaned() -> None:
    """Stop once the process that started this one is gone, even if it was SIGKILLed."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.25)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="webapp", description=__doc__.splitlines()[0])
    parser.add_argument("--region", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", required=True, help="directory of the shared local store")
    parser.add_argument("--regions", required=True, help="comma-separated store regions")
    parser.add_argument("--write-region", default=None)
    parser.add_argument("--replication", choices=("async", "sync"), default="async")
    parser.add_argument("--lag", type=float, default=0.5, help="async replication lag (s)")
    parser.add_argument("--witness", default=None, help="the store's fencing witness region")
    return parser


def run(args: argparse.Namespace) -> None:
    """Serve until the parent process goes away (or Ctrl-C)."""
    from multiregion.providers.local.store import LocalStore

    loopback("host", args.host)
    regions = tuple(r.strip() for r in args.regions.split(",") if r.strip())
    store = LocalStore(
        args.store,
        regions,
        write_region=args.write_region,
        replication=args.replication,
        lag_s=args.lag,
        witness=args.witness,
    )
    try:
        server = serve(RegionalApp(args.region, store), args.host, args.port)
        try:
            _exit_when_orphaned()
        finally:
            server.shutdown()
            server.server_close()
    finally:
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        run(args)
    except KeyboardInterrupt:
        return 130
    except MultiregionError as exc:
        print(f"webapp: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
