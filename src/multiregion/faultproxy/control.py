"""The proxy's HTTP control API, JSON on a loopback address, for other processes.

    GET    /listeners                          every listener and its toxics (with leases)
    POST   /listeners/{name}/toxics            {"toxic": {"kind": ...}, "lease_s": 5}
                                               -> 201 {"lease": {"id", "expires_in_s"}}
    DELETE /listeners/{name}/toxics/{kind}     remove one toxic
    POST   /leases/{id}                        {"lease_s": 5}: renew; 404 once it ran out
    DELETE /leases/{id}                        release it now, removing its toxic
    POST   /reset                              every toxic removed

A toxic installed here always holds a lease (the dead-man switch): when its installer stops
renewing it, the proxy reverts to pass-through by itself. Errors come back as
``{"error": kind, "message": ...}`` with 400 (bad input), 404 (no such listener or lease) or
409 (conflict).
"""

from __future__ import annotations

import ipaddress
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from multiregion import validate
from multiregion.errors import AlreadyExists, InvalidInput, MultiregionError, NotFound
from multiregion.faultproxy.toxics import from_dict
from multiregion.testing.fakes.serving import read_body, send_json

if TYPE_CHECKING:
    from multiregion.faultproxy.proxy import FaultProxy

JSON = "application/json"
_STATUS = {InvalidInput: 400, NotFound: 404, AlreadyExists: 409}


def loopback_host(field: str, host: str) -> str:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise InvalidInput(field, f"{host!r}: the control API listens on loopback only")
    return host


class ControlServer:
    def __init__(self, proxy: FaultProxy, host: str, port: int) -> None:
        handler = type("Handler", (_Handler,), {"proxy": proxy})
        self._server = ThreadingHTTPServer((loopback_host("control.host", host), port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.05,),
            name="faultproxy-control",
            daemon=True,
        )
        self._thread.start()
        bound_host, bound_port = self._server.server_address[:2]
        self.url = f"http://{bound_host!s}:{bound_port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    proxy: FaultProxy
    server_version = "multiregion-faultproxy"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_DELETE(self) -> None:
        self._answer("DELETE")

    def _answer(self, method: str) -> None:
        try:
            status, payload = self._route(method, self.path.strip("/").split("/"))
        except MultiregionError as exc:
            status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 500)
            payload = {"error": type(exc).__name__, "message": str(exc)}
        send_json(self, status, payload, JSON)

    def _body(self) -> dict[str, Any]:
        raw = read_body(self)
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            raise InvalidInput("body", "is not JSON") from None
        if not isinstance(body, dict):
            raise InvalidInput("body", "must be a JSON object")
        return body

    def _route(self, method: str, parts: list[str]) -> tuple[int, Any]:
        proxy = self.proxy
        match method, parts:
            case "GET", ["listeners"]:
                return 200, proxy.listeners()
            case "POST", ["listeners", name, "toxics"]:
                body = self._body()
                if "lease_s" not in body:
                    raise InvalidInput(
                        "lease_s", "is required: a toxic set over HTTP holds a lease"
                    )
                lease = proxy.set_toxic(name, from_dict(body.get("toxic")), lease_s=body["lease_s"])
                assert lease is not None
                return 201, {"lease": {"id": lease.id, "expires_in_s": body["lease_s"]}}
            case "DELETE", ["listeners", name, "toxics", kind]:
                proxy.remove_toxic(name, kind)
                return 200, {}
            case "POST", ["leases", lease_id]:
                body = self._body()
                proxy.renew(lease_id, validate.seconds("lease_s", body.get("lease_s"), 0, 3600))
                return 200, {"lease": {"id": lease_id, "expires_in_s": body["lease_s"]}}
            case "DELETE", ["leases", lease_id]:
                proxy.release(lease_id)
                return 200, {}
            case "POST", ["reset"]:
                proxy.clear()
                return 200, {}
        raise NotFound(f"no {method} {self.path}")
