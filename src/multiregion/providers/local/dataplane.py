"""The local router's data plane: a real DNS server on loopback answering by policy and health.

It serves the routes of a state directory over UDP and TCP (one port for both), probes every
endpoint of every health-checked route, and computes each answer when the query arrives with
``selection.choose``, so weighted answers differ between queries and a failover shows up in
the next answer. Route and override changes made by other processes are picked up at the next
query (the state's generation token is checked each time) and by a background refresh, which
also writes the current health back into the state directory for the router's callers.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import random
import signal
import ssl
import threading
import time
import types
from collections.abc import Mapping
from os import PathLike
from typing import Any

from dnslib import AAAA, CNAME, QTYPE, RCODE, RR, A, DNSLabel, DNSRecord
from dnslib.server import DNSHandler, DNSLogger, TCPServer, UDPServer

from multiregion import validate
from multiregion.errors import InvalidInput, MultiregionError, Unavailable
from multiregion.model import EndpointHealth, HealthState, ProbeTarget, Route
from multiregion.probing import ProbeScheduler
from multiregion.providers.local.routing_state import RoutingState, StoredRoute
from multiregion.selection import choose

_log = logging.getLogger(__name__)

REFRESH_S = 0.1
"""How often the background refresh looks for route changes and publishes health."""
HEALTH_REWRITE_S = 1.0
"""Health is written when a verdict changes, and at least this often otherwise."""
_RDATA = {"A": A, "AAAA": AAAA, "CNAME": CNAME}


class LocalDataPlane:
    """A DNS server for the routes in ``state_dir``. Use ``start``/``close`` or ``with``."""

    def __init__(
        self,
        state_dir: str | PathLike[str],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        validate.target("host", host)
        validate.int_range("port", port, 0, 65535)
        if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
            raise InvalidInput("ssl_context", "must be an ssl.SSLContext")
        self.host = host
        self._requested_port = port
        self._ssl_context = ssl_context
        self.state = RoutingState(state_dir)
        self._rng = random.Random()
        self._lock = threading.RLock()  # guards the route cache, the probe set and the rng
        self._routes: dict[str, StoredRoute] = {}
        self._generation: str | None = None
        self._targets: dict[str, ProbeTarget] = {}
        self._published: dict[str, tuple[float, dict[str, tuple[HealthState, str]]]] = {}
        self._probes: ProbeScheduler | None = None
        self._servers: list[Any] = []  # dnslib's UDPServer and TCPServer
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The port answering DNS (UDP and TCP); known once started."""
        if self._port is None:
            raise Unavailable("the data plane is not started")
        return self._port

    def start(self) -> LocalDataPlane:
        if self._servers:
            return self
        self._stop.clear()
        self._probes = ProbeScheduler(ssl_context=self._ssl_context)
        try:
            self._servers = _bind(self.host, self._requested_port, _Resolver(self))
            self._port = int(self._servers[0].server_address[1])
            self.refresh()
        except BaseException:
            self.close()
            raise
        for server in self._servers:
            self._spawn(server.serve_forever, name=f"dns-{type(server).__name__}", poll=0.05)
        self._spawn(self._refresh_loop, name="dns-refresh")
        self.state.advertise(self.host, self._port)
        return self

    def close(self) -> None:
        """Stop answering and probing; safe to call twice."""
        self._stop.set()
        if self._threads:  # shutdown() waits for serve_forever, so only once it runs
            for server in self._servers:
                server.shutdown()
        for server in self._servers:
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        with contextlib.suppress(MultiregionError):
            if self._port is not None and self.state.advertised() == (self.host, self._port):
                self.state.withdraw()
        if self._probes is not None:
            self._probes.close()
        self._servers, self._threads, self._probes, self._port = [], [], None, None
        self._generation, self._targets, self._published = None, {}, {}

    def __enter__(self) -> LocalDataPlane:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- answers

    def reply(self, request: DNSRecord) -> DNSRecord:
        """The response to one DNS query (what the UDP and TCP servers send back)."""
        reply = request.reply()
        try:
            self.refresh()
            qname = str(request.q.qname)
            name = qname.rstrip(".").lower()
            stored = self._routes.get(name)
            if stored is None:
                reply.header.rcode = RCODE.NXDOMAIN
                return reply
            route = stored.route
            rtype = route.endpoints[0].record_type
            qtype = QTYPE[request.q.qtype]
            if rtype != "CNAME" and qtype not in (rtype, "ANY"):
                return reply  # the name exists, with no records of that type (NODATA)
            with self._lock:
                chosen = choose(route, self._health_states(route), stored.overrides, rng=self._rng)
            for endpoint in chosen:
                rdata = _RDATA[rtype](endpoint.target)
                reply.add_answer(
                    RR(DNSLabel(qname), getattr(QTYPE, rtype), rdata=rdata, ttl=route.ttl)
                )
        except Exception:  # noqa: BLE001 - a server answers SERVFAIL rather than dying
            _log.exception("answering %s failed", request.q.qname)
            reply = request.reply()
            reply.header.rcode = RCODE.SERVFAIL
        return reply

    def health(self, name: str) -> dict[str, EndpointHealth]:
        """The current verdict on each endpoint of a health-checked route (empty without one)."""
        name = validate.dns_name("name", name)
        self.refresh()
        stored = self._routes.get(name)
        if stored is None:
            return {}
        with self._lock:
            return self._health(stored.route)

    # -- state and probes

    def refresh(self) -> None:
        """Reload routes and overrides if another process changed them; adjust the probes."""
        generation = self.state.generation()
        if generation == self._generation:
            return
        with self._lock:
            routes: dict[str, StoredRoute] = {}
            for name in self.state.names():
                try:
                    stored = self.state.load(name)
                except MultiregionError as exc:
                    _log.warning("not serving route %s: %s", name, exc)
                    continue
                if stored is not None:
                    routes[name] = stored
            self._routes = routes
            self._sync_probes()
            self._generation = generation

    def _sync_probes(self) -> None:
        assert self._probes is not None
        wanted: dict[str, ProbeTarget] = {}
        for name, stored in self._routes.items():
            check = stored.route.health_check
            if check is None:
                continue
            for endpoint in stored.route.endpoints:
                key = _probe_key(name, endpoint.name)
                wanted[key] = ProbeTarget(name=endpoint.name, address=endpoint.target, check=check)
        for key, target in list(self._targets.items()):
            if wanted.get(key) != target:
                self._probes.remove(key)
                del self._targets[key]
        for key, target in wanted.items():
            if key not in self._targets:
                self._probes.add(key, target)
                self._targets[key] = target
        for name in set(self._published) - set(self._routes):
            del self._published[name]

    def _health(self, route: Route) -> dict[str, EndpointHealth]:
        assert self._probes is not None
        found = {}
        for endpoint in route.endpoints:
            key = _probe_key(route.name, endpoint.name)
            if key in self._targets:
                found[endpoint.name] = self._probes.health(key)
        return found

    def _health_states(self, route: Route) -> Mapping[str, HealthState]:
        return {name: h.state for name, h in self._health(route).items()}

    def _refresh_loop(self) -> None:
        while not self._stop.wait(REFRESH_S):
            try:
                self.refresh()
                self._publish_health()
            except MultiregionError as exc:
                _log.warning("refreshing %s failed: %s", self.state.root, exc)

    def _publish_health(self) -> None:
        now = time.monotonic()
        with self._lock:
            current = {
                name: self._health(stored.route)
                for name, stored in self._routes.items()
                if stored.route.health_check is not None
            }
        for name, health in current.items():
            verdicts = {k: (h.state, h.detail) for k, h in health.items()}
            written_at, written = self._published.get(name, (0.0, {}))
            if verdicts != written or now - written_at >= HEALTH_REWRITE_S:
                self.state.write_health(name, health)
                self._published[name] = (now, verdicts)

    def _spawn(self, target: Any, *, name: str, poll: float | None = None) -> None:
        kwargs = {} if poll is None else {"poll_interval": poll}
        thread = threading.Thread(target=target, kwargs=kwargs, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)


class _Resolver:
    """What dnslib's handler calls, one call per query, from the server threads."""

    def __init__(self, plane: LocalDataPlane) -> None:
        self._plane = plane

    def resolve(self, request: DNSRecord, _handler: DNSHandler) -> DNSRecord:
        return self._plane.reply(request)


def _probe_key(route: str, endpoint: str) -> str:
    return f"{route}/{endpoint}"


def _bind(host: str, port: int, resolver: _Resolver) -> list[Any]:
    """A UDP and a TCP server on the same port; with port 0, a port free for both."""
    logger = DNSLogger("error", prefix=False, logf=_log.debug)
    for _attempt in range(20):
        try:
            udp = UDPServer((host, port), DNSHandler)
        except OSError as exc:
            raise Unavailable(f"cannot listen for DNS on {host}:{port}/udp: {exc}") from exc
        actual = int(udp.server_address[1])
        try:
            tcp = TCPServer((host, actual), DNSHandler)
        except OSError as exc:
            udp.server_close()
            if port == 0 and exc.errno == errno.EADDRINUSE:
                continue  # the OS gave a port whose TCP side is taken: ask again
            raise Unavailable(f"cannot listen for DNS on {host}:{actual}/tcp: {exc}") from exc
        for server in (udp, tcp):
            server.resolver = resolver
            server.logger = logger
        return [udp, tcp]
    raise Unavailable(f"found no port free for both UDP and TCP on {host}")


def serve(state_dir: str | PathLike[str], host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve the routes of ``state_dir`` until interrupted (Ctrl-C or SIGTERM).

    The port actually used is written to ``state_dir/dataplane.json``, where a
    ``LocalRouter(state_dir, serve=False)`` finds it.
    """
    stop = threading.Event()
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()

    def on_term(_signum: int, _frame: types.FrameType | None) -> None:
        stop.set()

    if in_main:
        previous = signal.signal(signal.SIGTERM, on_term)
    try:
        with LocalDataPlane(state_dir, host=host, port=port) as plane:
            _log.info("serving DNS for %s on %s:%d", state_dir, host, plane.port)
            stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if in_main and previous is not None:
            signal.signal(signal.SIGTERM, previous)
