"""The local router's data plane: a real DNS server on loopback answering by policy and health.

It serves the routes of a state directory over UDP and TCP (one port for both) from an
asyncio loop on a thread of its own, and probes every endpoint of every health-checked route.
Answers are not computed per query: each route's answer records are kept as wire bytes, built
again only when the routing state or a health verdict changes, so a query costs a lookup by
its name's bytes and a copy of its question. Weighted routes still pick one endpoint per
query (from records built ahead). Route and override changes made by other processes show in
the next answer: each query compares the state's generation file's identity (``os.stat``: a
new file is moved into place on every change) with the one the answers were built from, and
a background refresh re-reads the generation token itself every ``REFRESH_S``; that refresh
also writes the current health back into the state directory for the router's callers.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
import signal
import socket
import ssl
import struct
import threading
import time
import types
from collections.abc import Mapping
from os import PathLike
from typing import Any

import attrs
from dnslib import DNSError, DNSHeader, DNSRecord

from multiregion import validate
from multiregion.errors import InvalidInput, MultiregionError, Unavailable
from multiregion.model import (
    Endpoint,
    EndpointHealth,
    EndpointStatus,
    HealthState,
    ProbeTarget,
    Route,
    Weighted,
)
from multiregion.probing import ProbeScheduler
from multiregion.providers.local.routing_state import (
    NONCE_NAME,
    RoutingState,
    StoredRoute,
    new_nonce,
)
from multiregion.selection import choose

_log = logging.getLogger(__name__)

REFRESH_S = 0.1
"""How often the background refresh looks for route changes and publishes health."""
HEALTH_REWRITE_S = 1.0
"""Health is written when a verdict changes, and at least this often otherwise."""
UDP_BURST = 64
"""Datagrams read per wake-up of the loop before it looks at anything else."""

_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")  # type, class, TTL, rdata length (after the name pointer)
_NAME_POINTER = b"\xc0\x0c"  # the question's name, at offset 12 of every reply
_TYPE_CODE = {"A": 1, "CNAME": 5, "TXT": 16, "AAAA": 28}
_ANY = 255
_NOERROR, _SERVFAIL, _NXDOMAIN = 0, 2, 3
_FLAGS_KEPT = 0x0110  # RD and CD are echoed; QR, AA and RA are set, as dnslib's reply() does
_FLAGS_SET = 0x8000 | 0x0400 | 0x0080


@attrs.frozen
class _Answers:
    """One route's answer, ready as wire bytes for any query naming it."""

    rtype: int
    fixed: tuple[int, bytes] | None
    """(record count, records) when the answer does not change per query."""
    route: Route | None = None
    health: Mapping[str, HealthState] = attrs.field(factory=dict)
    overrides: Mapping[str, EndpointStatus] = attrs.field(factory=dict)
    records: Mapping[str, bytes] = attrs.field(factory=dict)
    """Each endpoint's answer record, for routes that pick per query."""


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
        self._rng = random.Random()  # used from the loop's thread only
        self._lock = threading.RLock()  # guards the routes, the probe set and the answers
        self._routes: dict[str, StoredRoute] = {}
        self._generation: str | None = None
        self._stamp: object = None  # the generation file's identity the answers come from
        self._answers: dict[bytes, _Answers] = {}
        self._health_changes = 0  # bumped by the probes' thread on every verdict change
        self._answers_health = -1  # the count the answers were built at
        self._targets: dict[str, ProbeTarget] = {}
        self._published: dict[str, tuple[float, dict[str, tuple[HealthState, str]]]] = {}
        self._probes: ProbeScheduler | None = None
        self._sockets: list[socket.socket] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._port: int | None = None
        self._nonce = new_nonce()  # answered for NONCE_NAME; a new one at every start

    @property
    def port(self) -> int:
        """The port answering DNS (UDP and TCP); known once started."""
        if self._port is None:
            raise Unavailable("the data plane is not started")
        return self._port

    def start(self) -> LocalDataPlane:
        if self._sockets:
            return self
        self._stop.clear()
        self._nonce = new_nonce()
        self._probes = ProbeScheduler(ssl_context=self._ssl_context, on_change=self._on_health)
        try:
            self._sockets = _bind(self.host, self._requested_port)
            self._port = int(self._sockets[0].getsockname()[1])
            self.refresh()
            self._loop = asyncio.new_event_loop()
            udp, tcp = self._sockets
            self._loop.add_reader(udp.fileno(), self._read_datagrams, udp)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._stream, sock=tcp)
            )
        except BaseException:
            self.close()
            raise
        self._spawn(self._loop.run_forever, name="dns-loop")
        self._spawn(self._refresh_loop, name="dns-refresh")
        self.state.advertise(self.host, self._port, self._nonce)
        return self

    def close(self) -> None:
        """Stop answering and probing; safe to call twice."""
        self._stop.set()
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        for thread in self._threads:
            thread.join(timeout=5)
        if loop is not None and not loop.is_running():
            _shut(loop, self._server, self._sockets[0])
        for sock in self._sockets:
            sock.close()
        if self._port is not None:
            self.state.withdraw(self._nonce)
        if self._probes is not None:
            self._probes.close()
        self._sockets, self._threads, self._probes, self._port = [], [], None, None
        self._loop, self._server = None, None
        self._generation, self._stamp, self._targets, self._published = None, None, {}, {}

    def __enter__(self) -> LocalDataPlane:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- answers

    def answer(self, query: bytes) -> bytes | None:
        """The reply to one DNS message (None for one that is not DNS: it gets no reply)."""
        try:
            self._follow_state()
            parts = _split_question(query)
            if parts is None:
                return self._answer_parsed(query)
            return self._reply(*parts)
        except Exception:  # noqa: BLE001 - a server answers SERVFAIL rather than dying
            _log.exception("answering a query failed")
            return _servfail(query)

    def _answer_parsed(self, query: bytes) -> bytes | None:
        """What ``answer`` does for messages the quick split refuses (dnslib parses them)."""
        try:
            request = DNSRecord.parse(query)
        except DNSError:
            return None
        question = DNSRecord(DNSHeader(), q=request.q).pack()[_HEADER.size :]
        name = b"".join(bytes([len(label)]) + label for label in request.q.qname.label) + b"\0"
        header = request.header
        return self._reply(header.id, header.bitmap, question, name.lower(), request.q.qtype)

    def _reply(self, ident: int, flags: int, question: bytes, name: bytes, qtype: int) -> bytes:
        answers = self._answers.get(name)
        if answers is None:
            count, records, rcode = 0, b"", _NXDOMAIN
        elif answers.rtype != _TYPE_CODE["CNAME"] and qtype not in (answers.rtype, _ANY):
            count, records, rcode = 0, b"", _NOERROR  # the name exists without that type
        elif answers.fixed is not None:
            (count, records), rcode = answers.fixed, _NOERROR
        else:
            assert answers.route is not None
            chosen = choose(answers.route, answers.health, answers.overrides, rng=self._rng)
            count, rcode = len(chosen), _NOERROR
            records = b"".join(answers.records[e.name] for e in chosen)
        header = _HEADER.pack(ident, (flags & _FLAGS_KEPT) | _FLAGS_SET | rcode, 1, count, 0, 0)
        return header + question + records

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
        stamp = self.state.generation_stamp()
        generation = self.state.generation()
        if generation == self._generation:
            self._stamp = stamp
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
            self._build_answers()
            self._generation, self._stamp = generation, stamp

    def _follow_state(self) -> None:
        """Before each answer: reload if the state changed, rebuild if a verdict did."""
        if self.state.generation_stamp() != self._stamp:
            self.refresh()
        if self._health_changes != self._answers_health:
            with self._lock:
                self._build_answers()

    def _on_health(self, _key: str, _health: EndpointHealth) -> None:
        self._health_changes += 1

    def _build_answers(self) -> None:
        self._answers_health = self._health_changes
        nonce = self._nonce.encode()
        txt = _NAME_POINTER + _RR.pack(_TYPE_CODE["TXT"], 1, 0, len(nonce) + 1)
        answers = {
            _wire_name(NONCE_NAME): _Answers(
                _TYPE_CODE["TXT"], (1, txt + bytes([len(nonce)]) + nonce)
            )
        }
        for name, stored in self._routes.items():
            route = stored.route
            health = {endpoint: h.state for endpoint, h in self._health(route).items()}
            records = {e.name: _record(e, route.ttl) for e in route.endpoints}
            fixed = None
            if not isinstance(route.policy, Weighted):  # the others answer alike every time
                chosen = choose(route, health, stored.overrides, rng=self._rng)
                fixed = (len(chosen), b"".join(records[e.name] for e in chosen))
            rtype = _TYPE_CODE[route.endpoints[0].record_type]
            answers[_wire_name(name)] = _Answers(
                rtype, fixed, route, health, stored.overrides, records
            )
        self._answers = answers

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

    # -- the servers, on the loop's thread

    def _read_datagrams(self, sock: socket.socket) -> None:
        """Answers the datagrams waiting, up to ``UDP_BURST`` (a reader callback)."""
        for _ in range(UDP_BURST):
            try:
                query, client = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. an ICMP error for an earlier reply
                _log.debug("reading a datagram failed: %s", exc)
                continue
            reply = self.answer(query)
            if reply is not None:
                with contextlib.suppress(OSError):  # a full buffer drops it, as UDP may
                    sock.sendto(reply, client)

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """DNS over TCP: length-prefixed messages, answered in turn until the client closes."""
        try:
            while True:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
                reply = self.answer(await reader.readexactly(length))
                if reply is None:
                    break
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _spawn(self, target: Any, *args: Any, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)


def _shut(
    loop: asyncio.AbstractEventLoop, server: asyncio.Server | None, udp: socket.socket
) -> None:
    """Ends the loop's servers and connections, once it has stopped running."""
    with contextlib.suppress(ValueError, OSError):
        loop.remove_reader(udp.fileno())
    if server is not None:
        server.close()
    for task in asyncio.all_tasks(loop):
        task.cancel()
    with contextlib.suppress(Exception):
        loop.run_until_complete(asyncio.sleep(0))  # the cancelled connections close
    loop.close()


def _split_question(query: bytes) -> tuple[int, int, bytes, bytes, int] | None:
    """(id, flags, question, lowercase name, qtype) of a plain one-question query.

    None for anything else (compressed names, several questions, a truncated message): those
    go through dnslib's parser instead.
    """
    if len(query) < 17 or query[4:6] != b"\x00\x01":
        return None
    end = 12
    while True:
        if end >= len(query):
            return None
        length = query[end]
        if length == 0:
            break
        if length > 63 or end - 12 > 255:
            return None
        end += length + 1
    if end + 5 > len(query):
        return None
    ident, flags = struct.unpack_from("!HH", query)
    qtype = struct.unpack_from("!H", query, end + 1)[0]
    return ident, flags, query[12 : end + 5], query[12 : end + 1].lower(), qtype


def _servfail(query: bytes) -> bytes | None:
    if len(query) < _HEADER.size:
        return None
    ident, flags = struct.unpack_from("!HH", query)
    return _HEADER.pack(ident, (flags & _FLAGS_KEPT) | _FLAGS_SET | _SERVFAIL, 0, 0, 0, 0)


def _wire_name(name: str) -> bytes:
    """A DNS name as the labels of a query carry it (validated route names are ASCII)."""
    labels = name.rstrip(".").split(".")
    return b"".join(bytes([len(label)]) + label.encode("ascii") for label in labels) + b"\0"


def _record(endpoint: Endpoint, ttl: int) -> bytes:
    """An answer record for ``endpoint``, its name a pointer to the question's."""
    rtype = endpoint.record_type
    if rtype == "A":
        rdata = socket.inet_pton(socket.AF_INET, endpoint.target)
    elif rtype == "AAAA":
        rdata = socket.inet_pton(socket.AF_INET6, endpoint.target)
    else:
        rdata = _wire_name(endpoint.target)
    return _NAME_POINTER + _RR.pack(_TYPE_CODE[rtype], 1, ttl, len(rdata)) + rdata


def _probe_key(route: str, endpoint: str) -> str:
    return f"{route}/{endpoint}"


def _bind(host: str, port: int) -> list[socket.socket]:
    """A UDP and a TCP socket on the same port; with port 0, a port free for both."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _attempt in range(20):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        try:
            udp.bind((host, port))
        except OSError as exc:
            udp.close()
            raise Unavailable(f"cannot listen for DNS on {host}:{port}/udp: {exc}") from exc
        actual = int(udp.getsockname()[1])
        tcp = socket.socket(family, socket.SOCK_STREAM)
        try:
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((host, actual))
            tcp.listen(128)
        except OSError as exc:
            udp.close()
            tcp.close()
            if port == 0 and exc.errno == errno.EADDRINUSE:
                continue  # the OS gave a port whose TCP side is taken: ask again
            raise Unavailable(f"cannot listen for DNS on {host}:{actual}/tcp: {exc}") from exc
        udp.setblocking(False)
        tcp.setblocking(False)
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
