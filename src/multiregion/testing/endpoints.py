"""Tiny HTTP, HTTPS and TCP servers on loopback addresses, to probe and route to in tests.

``LoopbackEndpoint`` serves on one loopback address and port and can be told to fail (HTTP
503), recover, stop listening and listen again. ``start_endpoints`` starts several on distinct
loopback addresses sharing one port, which is what DNS records and a single health check need
(Linux routes all of 127.0.0.0/8 to the loopback interface). HTTPS certificates come from a
``trustme`` certificate authority made once per process; ``client_ssl_context()`` trusts it.
"""

from __future__ import annotations

import contextlib
import errno
import http
import ipaddress
import logging
import random
import selectors
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from multiregion.closing import Closing
from multiregion.errors import InvalidInput, Unavailable, Unsupported
from multiregion.model import PROTOCOLS

logger = logging.getLogger(__name__)

Respond = Callable[[str, str], tuple[int, bytes]]
"""Scripts an HTTP answer: (method, path) -> (status, body)."""

_CONNECTION_TIMEOUT_S = 2.0
_MAX_HEAD = 64 * 1024
_FIRST = int(ipaddress.IPv4Address("127.0.1.0"))
_LAST = int(ipaddress.IPv4Address("127.0.250.255"))

# --------------------------------------------------------------------------- certificates

_ca_lock = threading.Lock()
_ca: Any = None
_ca_dir: tempfile.TemporaryDirectory[str] | None = None
_server_contexts: dict[str, ssl.SSLContext] = {}


def _authority() -> Any:
    """The process's test certificate authority (ECDSA keys: issuing takes milliseconds)."""
    global _ca, _ca_dir
    with _ca_lock:
        if _ca is None:
            try:
                import trustme
            except ModuleNotFoundError as exc:
                raise Unsupported(
                    "HTTPS test endpoints need trustme: pip install 'multiregion[dev]'"
                ) from exc
            ca = trustme.CA(key_type=trustme.KeyType.ECDSA)
            _ca_dir = tempfile.TemporaryDirectory(prefix="multiregion-ca-")
            ca.cert_pem.write_to_path(str(Path(_ca_dir.name) / "ca.pem"))
            _ca = ca
        return _ca


def ca_pem_path() -> str:
    """Path of the PEM file of the CA that signs every HTTPS endpoint's certificate."""
    _authority()
    assert _ca_dir is not None
    return str(Path(_ca_dir.name) / "ca.pem")


def client_ssl_context() -> ssl.SSLContext:
    """A client context trusting only the test CA, with hostname checks on."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _authority().configure_trust(context)
    return context


def _server_context(address: str) -> ssl.SSLContext:
    ca = _authority()
    with _ca_lock:
        context = _server_contexts.get(address)
        if context is None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ca.issue_cert(address, "localhost").configure_cert(context)
            _server_contexts[address] = context
        return context


# --------------------------------------------------------------------------- validation


def _loopback(field: str, value: object) -> str:
    try:
        address = ipaddress.ip_address(value)  # type: ignore[arg-type]
    except ValueError:
        raise InvalidInput(field, f"{value!r} is not an IP address") from None
    if not address.is_loopback:
        raise InvalidInput(field, f"{value!r} is not a loopback address")
    return str(address)


def _family(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def _bind(address: str, port: int) -> socket.socket:
    sock = socket.socket(_family(address), socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    return sock


# --------------------------------------------------------------------------- the endpoint


class LoopbackEndpoint(Closing):
    """A server on ``address:port`` for ``protocol`` "http", "https" or "tcp"; listens at once.

    HTTP(S) answers every request with 200 (or ``respond(method, path)``), or 503 after
    ``fail()``. TCP accepts and closes each connection. ``port=0`` picks a free port, which
    stays the endpoint's across ``stop()``/``start()``.
    """

    def __init__(
        self,
        protocol: str = "http",
        address: str = "127.0.0.1",
        port: int = 0,
        *,
        respond: Respond | None = None,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise InvalidInput("protocol", f"{protocol!r} is not one of http, https, tcp")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidInput("port", f"{port!r} must be a whole number from 0 to 65535")
        if respond is not None and not callable(respond):
            raise InvalidInput("respond", "must be a callable (method, path) -> (status, body)")
        self.protocol = protocol
        self.address = _loopback("address", address)
        self.port = port
        self.respond = respond
        self._tls = _server_context(self.address) if protocol == "https" else None
        self._lock = threading.Lock()
        self._hits = 0
        self._failing = False
        self._closed = False
        self._listener: socket.socket | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._acceptor: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._workers: set[threading.Thread] = set()
        self.start()

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.protocol}://{host}:{self.port}/"

    @property
    def hits(self) -> int:
        """Requests answered (HTTP) or connections accepted (TCP)."""
        with self._lock:
            return self._hits

    @property
    def listening(self) -> bool:
        return self._listener is not None

    @property
    def ca_path(self) -> str | None:
        """The CA PEM file a client must trust (HTTPS only)."""
        return ca_pem_path() if self.protocol == "https" else None

    def client_ssl_context(self) -> ssl.SSLContext:
        return client_ssl_context()

    def fail(self) -> None:
        """HTTP(S): answer 503 from now on. TCP: stop listening."""
        if self.protocol == "tcp":
            self.stop()
        else:
            self._failing = True

    def recover(self) -> None:
        """Undo ``fail()``."""
        if self.protocol == "tcp":
            self.start()
        else:
            self._failing = False

    def start(self) -> None:
        """Listen (again) on the same address and port; a no-op when listening.

        Raises ``Unavailable`` when the port is taken, the original ``OSError`` as cause.
        """
        with self._lock:
            if self._closed:
                raise Unavailable(f"endpoint {self.url} is closed")
            if self._listener is not None:
                return
            try:
                listener = _bind(self.address, self.port)
                listener.listen(128)
            except OSError as exc:
                raise Unavailable(f"cannot listen on {self.address}:{self.port}: {exc}") from exc
            self.port = listener.getsockname()[1]
            self._listener = listener
            self._wake = socket.socketpair()
            self._acceptor = threading.Thread(
                target=self._accept_loop,
                args=(listener, self._wake[0]),
                name=f"endpoint-{self.address}:{self.port}",
                daemon=True,
            )
            self._acceptor.start()

    def stop(self) -> None:
        """Stop listening (new connections are refused) and end open connections."""
        with self._lock:
            listener, wake, acceptor = self._listener, self._wake, self._acceptor
            self._listener = self._wake = self._acceptor = None
            if listener is None or wake is None or acceptor is None:
                return
            connections = list(self._connections)
        wake[1].send(b"x")
        acceptor.join()
        listener.close()
        for sock in wake:
            sock.close()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(_CONNECTION_TIMEOUT_S)

    def close(self) -> None:
        self.stop()
        self._closed = True

    def __repr__(self) -> str:
        state = "listening" if self.listening else "stopped"
        return f"<LoopbackEndpoint {self.url} {state}{' failing' if self._failing else ''}>"

    # ------------------------------------------------------------------ server threads

    def _accept_loop(self, listener: socket.socket, wake: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if wake in ready:
                    return
                try:
                    conn, _ = listener.accept()
                except OSError:  # out of descriptors, or the client gave up: back off a little
                    wake_up = selector.select(0.01)
                    if any(key.fileobj is wake for key, _ in wake_up):
                        return
                    continue
                if self.protocol == "tcp":
                    self._count()
                    conn.close()
                    continue
                worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
                with self._lock:
                    self._connections.add(conn)
                    self._workers.add(worker)
                worker.start()

    def _count(self) -> None:
        with self._lock:
            self._hits += 1

    def _serve(self, conn: socket.socket) -> None:
        sock = conn
        try:
            conn.settimeout(_CONNECTION_TIMEOUT_S)
            if self._tls is not None:
                sock = self._tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
                self._track(conn, sock)
                sock.do_handshake()
            head = _read_head(sock)
            if head is not None:
                self._count()
                sock.sendall(self._answer(*head))
        except OSError:
            pass  # the client went away, timed out or refused our certificate
        finally:
            sock.close()
            with self._lock:
                self._connections.discard(sock)
                self._workers.discard(threading.current_thread())

    def _track(self, old: socket.socket, new: socket.socket) -> None:
        """Follows a connection wrapped in TLS, so that ``stop`` can still shut it down."""
        with self._lock:
            self._connections.discard(old)
            self._connections.add(new)

    def _answer(self, method: str, path: str) -> bytes:
        if self._failing:
            status, body = 503, b"failing\n"
        elif self.respond is not None:
            try:
                status, body = self.respond(method, path)
            except Exception:
                logger.exception("respond hook of %s failed", self.url)
                status, body = 500, b"respond hook failed\n"
        else:
            status, body = 200, b"ok\n"
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode("ascii")
        return head if method == "HEAD" else head + body


def _read_head(sock: socket.socket) -> tuple[str, str] | None:
    """The method and path of one request, or None when it is not a request."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk or len(data) > _MAX_HEAD:
            return None
        data += chunk
    parts = data.split(b"\r\n", 1)[0].decode("latin-1").split()
    return (parts[0], parts[1]) if len(parts) == 3 else None


# --------------------------------------------------------------------------- groups


def free_port(addresses: Sequence[str]) -> int:
    """A TCP port nobody listens on at any of ``addresses`` (loopback addresses)."""
    if isinstance(addresses, str) or not addresses:
        raise InvalidInput("addresses", "must be a non-empty list of loopback addresses")
    checked = [_loopback("addresses", a) for a in addresses]
    for _ in range(100):
        first = _bind(checked[0], 0)
        port: int = first.getsockname()[1]
        held = [first]
        try:
            for address in checked[1:]:
                held.append(_bind(address, port))
            return port
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise Unavailable(f"cannot bind on loopback: {exc}") from exc
        finally:
            for sock in held:
                sock.close()
    raise Unavailable("no port is free on every address")


def _distinct_addresses(n: int) -> list[str]:
    start = random.randint(_FIRST, _LAST - 2 * n)
    picked: list[str] = []
    value = start
    while len(picked) < n:
        if value & 0xFF not in (0, 255):
            picked.append(str(ipaddress.IPv4Address(value)))
        value += 1
    return picked


def start_endpoints(n: int, protocol: str = "http") -> list[LoopbackEndpoint]:
    """``n`` endpoints on distinct loopback addresses (127.0.x.y) sharing one port."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 10_000:
        raise InvalidInput("n", f"{n!r} must be a whole number from 1 to 10000")
    if protocol not in PROTOCOLS:
        raise InvalidInput("protocol", f"{protocol!r} is not one of http, https, tcp")
    for _ in range(20):
        addresses = _distinct_addresses(n)
        port = free_port(addresses)
        started: list[LoopbackEndpoint] = []
        try:
            for address in addresses:
                started.append(LoopbackEndpoint(protocol, address, port))
            return started
        except Unavailable:  # someone took the port in between: try elsewhere
            for endpoint in started:
                endpoint.close()
    raise Unavailable(f"could not start {n} endpoints sharing a port")
