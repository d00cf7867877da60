"""The local TrafficRouter: routing state in a directory, answers from a real DNS server.

The control plane (``apply``, ``set_endpoint_status``...) only writes files; the data plane
(``LocalDataPlane``, in this process or another) reads them, probes the endpoints and answers
DNS queries. ``resolve`` asks that DNS server over UDP like any client would, so what it
returns is what a client on this machine gets.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
from typing import Any

from dnslib import QTYPE, RCODE, DNSError, DNSRecord

from multiregion import validate
from multiregion.errors import InvalidInput, NotFound, Unavailable
from multiregion.interfaces import RouterCapabilities, TrafficRouter
from multiregion.model import (
    Answer,
    EndpointHealth,
    EndpointStatus,
    Failover,
    Plan,
    Route,
    Weighted,
)
from multiregion.planning import diff_routes
from multiregion.providers.local.dataplane import LocalDataPlane
from multiregion.providers.local.routing_state import RoutingState

QUERY_TIMEOUT_S = 1.0
"""How long ``resolve`` waits for the DNS server before calling it unavailable."""


class LocalRouter(TrafficRouter):
    """Routes kept under ``state_dir`` and served by a DNS server on ``dns_host``.

    With ``serve=True`` the DNS server runs in this process on ``dns_port`` (a free port when
    None) until ``close``. With ``serve=False`` a data plane must already serve the same
    directory (``multiregion.providers.local.dataplane.serve``); ``dns_port`` None means the
    port it announced in the directory.
    """

    capabilities = RouterCapabilities(
        policies=frozenset({Failover, Weighted}), health_checked=True, cname_targets=True
    )

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        dns_host: str = "127.0.0.1",
        dns_port: int | None = None,
        serve: bool = True,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        validate.target("dns_host", dns_host)
        if dns_port is not None:
            validate.int_range("dns_port", dns_port, 0 if serve else 1, 65535)
        if not isinstance(serve, bool):
            raise InvalidInput("serve", "must be True or False")
        self._state = RoutingState(state_dir)
        self._dns_host = dns_host
        self._dns_port = dns_port
        self._plane: LocalDataPlane | None = None
        if serve:
            plane = LocalDataPlane(
                state_dir, host=dns_host, port=dns_port or 0, ssl_context=ssl_context
            )
            self._plane = plane.start()

    @property
    def dns_port(self) -> int:
        """The port the DNS server answers on."""
        if self._plane is not None:
            return self._plane.port
        if self._dns_port is not None:
            return self._dns_port
        announced = self._state.announcement()
        if announced is None:
            raise Unavailable(f"no data plane announced itself in {self._state.root}")
        if not announced.process_alive():
            raise Unavailable(
                f"the data plane announced in {self._state.root} (process {announced.pid}) is gone"
            )
        return announced.port

    # -- control plane

    def _plan(self, route: Route) -> Plan:
        stored = self._state.load(route.name)
        return diff_routes(route.name, None if stored is None else stored.route, route)

    def _apply(self, route: Route, plan: Plan) -> None:
        self._state.save(route)

    def _get(self, name: str) -> Route:
        stored = self._state.load(name)
        if stored is None:
            raise NotFound(f"no route {name}")
        return stored.route

    def _list(self) -> list[str]:
        return self._state.names()

    def _delete(self, name: str) -> None:
        if not self._state.delete(name):
            raise NotFound(f"no route {name}")

    def _set_endpoint_status(self, route: Route, endpoint: str, status: EndpointStatus) -> None:
        if not self._state.set_override(route.name, endpoint, status):
            raise NotFound(f"no route {route.name}")

    def _endpoint_status(self, name: str) -> dict[str, EndpointStatus]:
        stored = self._state.load(name)
        if stored is None:
            raise NotFound(f"no route {name}")
        return {
            e.name: stored.overrides.get(e.name, EndpointStatus.AUTO)
            for e in stored.route.endpoints
        }

    def health(self, name: str) -> dict[str, EndpointHealth]:
        """The data plane's latest verdict on each endpoint (empty without a health check)."""
        route = self.get(name)
        if route.health_check is None:
            return {}
        if self._plane is not None:
            return self._plane.health(route.name)
        return self._state.read_health(route.name)

    # -- data plane

    def _resolve(self, name: str, client_region: str | None) -> Answer:
        """Ask the DNS server, over UDP, for ``name``; ``client_region`` changes nothing here."""
        route = self._get(name)
        record_type = route.endpoints[0].record_type
        reply = self._query(name, record_type)
        if reply.header.rcode == RCODE.NXDOMAIN:
            raise NotFound(f"DNS has no name {name}")
        if reply.header.rcode != RCODE.NOERROR:
            raise Unavailable(f"DNS answered {RCODE[reply.header.rcode]} for {name}")
        records = [rr for rr in reply.rr if QTYPE[rr.rtype] == record_type]
        values = tuple(_record_value(rr.rdata) for rr in records)
        by_target = {}
        for endpoint in reversed(route.endpoints):  # the first endpoint wins a shared target
            by_target[endpoint.target] = endpoint.name
        return Answer(
            name=name,
            record_type=record_type,
            records=values,
            ttl=min((rr.ttl for rr in records), default=route.ttl),
            endpoints=tuple(by_target[v] for v in values if v in by_target),
        )

    def _expected_failover_s(self, route: Route) -> float:
        """Detection by the probes, plus half the TTL for caches to expire on average."""
        check = route.health_check
        detection = 0.0 if check is None else check.expected_detection_s()
        return detection + route.ttl / 2

    def close(self) -> None:
        if self._plane is not None:
            self._plane.close()
            self._plane = None

    def _query(self, name: str, record_type: str) -> Any:
        """One query over a connected UDP socket, so that a closed port fails at once."""
        question = DNSRecord.question(name, record_type)
        host, port = self._dns_host, self.dns_port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.settimeout(QUERY_TIMEOUT_S)
                sock.connect((host, port))
                sock.send(question.pack())
                reply = DNSRecord.parse(sock.recv(65535))
        except OSError as exc:  # refused, timed out, unreachable
            raise Unavailable(f"DNS server {host}:{port} did not answer: {exc}") from exc
        except DNSError as exc:
            raise Unavailable(f"DNS server {host}:{port} sent garbage: {exc}") from exc
        if reply.header.id != question.header.id:
            raise Unavailable(f"DNS server {host}:{port} answered another query")
        return reply


def _record_value(rdata: Any) -> str:
    """An address as text, or a host name without its trailing dot, as endpoints hold them."""
    with contextlib.suppress(ValueError):
        return validate.target("record", str(rdata))
    return str(rdata).rstrip(".")
