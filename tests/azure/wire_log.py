"""Every request the adapters send, read from the request logs the SDKs' transports keep.

No SDK method is replaced or wrapped: the transports log each request they send, and a
handler on those loggers reads the records (method, path, query, header names; never a
header value, never a body).

- ``urllib3.connectionpool`` logs one line per HTTP request answered, with its path and
  query: azure-core's default transport and google-cloud-storage send through it;
- azure-core's ``HttpLoggingPolicy`` and azure-cosmos's ``CosmosHttpLoggingPolicy`` log each
  request's header names just before urllib3 sends it, on the same thread: a request's
  permissions can depend on a header (Cosmos upserts and queries, Blob immutability), and
  which of the two logged it tells a Cosmos DB path from a Blob path of the same shape;
- ``googleapiclient.discovery`` logs each REST call it builds (httplib2, under it, logs
  nothing);
- the Firestore client's gRPC transport logs each unary call's method; its streaming calls
  are not logged, so tests/gcp/test_iam.py reads those off the wire (``GrpcTap``).

Only requests sent from inside the library count: a ``multiregion`` frame on the sending
thread's stack (``multiregion.testing`` excepted). The tests' own read-back clients do not. A
request from an SDK worker thread (parallel block uploads), whose stack holds neither the
library nor a test, counts as the library's: strictness costs only a wider table.
The GCP tests use this module too (tests/gcp/iam.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import attrs

from multiregion.testing.emulators.process import LOOPBACK, free_port

_URLLIB3 = re.compile(r'^https?://[^ ]+ "(\w+) (\S+) HTTP/[\d.]+"')
_DISCOVERY = re.compile(r"^URL being requested: (\w+) https?://[^/]+(/\S*)")
_POLICY_HEADER = re.compile(r"^\s+'([^']+)':", re.MULTILINE)
_GRPC_METHOD = re.compile(rb"/google\.firestore\.v1\.Firestore/(\w+)")
LOG_ENV = "MULTIREGION_IAM_LOG"
"""A file to write each recorded request to, with the permissions it needs."""
VALUED_PARAMETERS = frozenset({"comp", "restype"})
"""Query parameters whose value names the operation (Blob); of the others only the name."""

POLICY_LOGGERS = {
    "azure.core.pipeline.policies.http_logging_policy": "azure",
    "azure.cosmos._cosmos_http_logging_policy": "cosmos",
}
LOGGERS = (
    "urllib3.connectionpool",
    "googleapiclient.discovery",
    "google.cloud.firestore_v1.services.firestore.transports.grpc",
    *POLICY_LOGGERS,
)


@attrs.frozen
class Request:
    """One request as sent. ``query`` holds ``comp=...``/``restype=...`` and the names of the
    other parameters; ``headers`` the lowercased header names. gRPC calls have method
    ``"GRPC"`` and the method's name (``Commit``) as path."""

    method: str
    path: str
    query: frozenset[str] = frozenset()
    headers: frozenset[str] = frozenset()
    sdk: str = ""
    """Which client sent it, told by the logging policy that logged its headers: ``cosmos``
    (azure-cosmos), ``azure`` (azure-core: Resource Manager, Blob Storage), or empty."""

    def __str__(self) -> str:
        query = "?" + "&".join(sorted(self.query)) if self.query else ""
        return f"{self.method} {self.path}{query}"


def _query(text: str) -> frozenset[str]:
    pairs = parse_qsl(text, keep_blank_values=True)
    return frozenset(k if k not in VALUED_PARAMETERS else f"{k}={v}" for k, v in pairs)


TEST_SIDE = ("tests.", "_pytest.", "pluggy", "multiregion.testing")
"""Modules whose frames mark a request as the tests' own (read-backs, fakes, emulators)."""


def from_library() -> bool:
    """Whether the current thread's stack is inside the library (see the module's doc)."""
    frame = sys._getframe(1)
    in_test = False
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith("multiregion.") and not module.startswith("multiregion.testing"):
            return True
        if module != __name__:  # this handler's own frames say nothing of the sender
            in_test = in_test or module.startswith(TEST_SIDE)
        frame = frame.f_back  # type: ignore[assignment]
    return not in_test


class WireLog(logging.Handler):
    """Collects each :class:`Request` the library sends."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.requests: set[Request] = set()
        self._headers = threading.local()
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        request = self.parse(record)
        if request is not None and from_library():
            with self._guard:
                self.requests.add(request)

    def parse(self, record: logging.LogRecord) -> Request | None:
        """The request a record reports, if it reports one (header names are kept per thread
        until urllib3 reports the request they were sent with)."""
        text = record.getMessage()
        if record.name in POLICY_LOGGERS:
            if text.startswith("Request URL"):
                self._headers.names = frozenset(h.lower() for h in _POLICY_HEADER.findall(text))
                self._headers.sdk = POLICY_LOGGERS[record.name]
            return None
        rpc = getattr(record, "rpcName", None)
        if rpc is not None:
            return (
                Request("GRPC", str(rpc).rsplit("/", 1)[-1]) if text.startswith("Sending") else None
            )
        if (found := _URLLIB3.match(text)) is not None:
            path, _, query = found.group(2).partition("?")
            headers: frozenset[str] = getattr(self._headers, "names", frozenset())
            sdk: str = getattr(self._headers, "sdk", "")
            self._headers.names, self._headers.sdk = frozenset(), ""
            return Request(found.group(1), path, _query(query), headers, sdk)
        if (found := _DISCOVERY.match(text)) is not None:
            path, _, query = found.group(2).partition("?")
            return Request(found.group(1), path, _query(query))
        return None


@contextlib.contextmanager
def recording() -> Iterator[WireLog]:
    """A :class:`WireLog` on the transports' loggers for the block. Their records go nowhere
    else meanwhile: they carry header values (Cosmos logs its authorization header)."""
    log = WireLog()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    before = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(log)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
    try:
        yield log
    finally:
        for logger, (level, propagate) in zip(loggers, before, strict=True):
            logger.removeHandler(log)
            logger.setLevel(level)
            logger.propagate = propagate


@attrs.frozen
class Rule:
    """Requests with ``method`` whose path matches ``path`` (and whose query holds ``query``
    and headers ``headers``) need ``needs``; ``source`` is where that is documented."""

    method: str
    path: str
    needs: tuple[str, ...]
    source: str
    query: frozenset[str] = frozenset()
    headers: frozenset[str] = frozenset()
    exact_query: bool = False
    sdk: str = ""
    """The client the row is about (see :attr:`Request.sdk`); empty: any."""
    instead: bool = False
    """A header row that names the operation itself (a Cosmos upsert or query is a POST to
    the documents like a create) rather than adding to it."""

    def matches(self, request: Request) -> bool:
        if self.sdk and request.sdk != self.sdk:
            return False
        if request.method != self.method or not re.fullmatch(
            self.path, request.path.rstrip("/"), re.IGNORECASE
        ):
            return False
        valued = {q for q in request.query if "=" in q}
        if self.exact_query and valued != self.query:
            return False
        return self.query <= request.query and self.headers <= request.headers


def needed(rules: Iterable[Rule], request: Request) -> tuple[str, ...] | None:
    """The permissions a request needs: the first row without headers that matches names the
    operation, header rows add to it (or replace it); None when no row knows the request."""
    rows = [rule for rule in rules if rule.matches(request)]
    operation = [rule for rule in rows if not rule.headers]
    if not operation:
        return None
    chosen = [rule for rule in rows if rule.instead][:1] or operation[:1]
    chosen += [rule for rule in rows if rule.headers and not rule.instead]
    return tuple(dict.fromkeys(action for rule in chosen for action in rule.needs))


def missing(
    rules: Iterable[Rule],
    requests: Iterable[Request],
    granted: set[str],
    covers: Callable[[set[str], str], bool],
    table: str,
) -> list[str]:
    """One line per request no row of ``table`` knows, or whose permissions are not granted."""
    rules = tuple(rules)
    problems = set()
    for request in requests:
        actions = needed(rules, request)
        if actions is None:
            problems.add(f"{request}: no row of {table} says what it needs")
            continue
        problems.update(f"{request}: needs {a}" for a in actions if not covers(granted, a))
    return sorted(problems)


def _needs(rules: tuple[Rule, ...], request: Request) -> str:
    actions = needed(rules, request)
    return "no row" if actions is None else ", ".join(actions) or "nothing a role grants"


def checked(
    rules: Iterable[Rule],
    granted: Callable[[], set[str]],
    covers: Callable[[set[str], str], bool],
    table: str,
) -> Iterator[set[Request]]:
    """The body of a session fixture: records the run, then fails on what is not covered."""
    with recording() as log:
        yield log.requests
    rules = tuple(rules)
    if written := os.environ.get(LOG_ENV):  # what was sent, for a look at the table
        lines = [f"{r}  ->  {_needs(rules, r)}" for r in log.requests]
        Path(written).write_text("".join(f"{line}\n" for line in sorted(lines)))
    absent = missing(rules, log.requests, granted(), covers, table)
    assert not absent, "requests the shipped roles do not cover:\n" + "\n".join(absent)


class GrpcTap:
    """A loopback TCP forwarder to a gRPC server that reads each call's method name off the
    wire (HTTP/2 ``:path``; gRPC sends a method's name in full the first time on a
    connection, so a set of names misses none)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.methods: set[str] = set()
        self._listener = socket.create_server((LOOPBACK, self.port))
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
                upstream = socket.create_connection((LOOPBACK, self.upstream_port), timeout=5)
            except OSError:
                return
            upstream.settimeout(None)
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, read: bool) -> None:
        tail = b""
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if read:
                    self.methods.update(m.decode() for m in _GRPC_METHOD.findall(tail + data))
                    tail = data[-64:]
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
