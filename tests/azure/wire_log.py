"""Every request the adapters send, read from the request logs the SDKs' transports keep.

No SDK method is replaced or wrapped: the transports log each request they send, and a
filter on those loggers reads the records (method, path, query, header names; never a
header value, never a body) and drops them.

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
    """Which client sent it: ``cosmos`` (azure-cosmos) or ``azure`` (azure-core: Resource
    Manager, Blob Storage), told by the logging policy that logged its headers; ``gcs``
    (google-cloud-storage) or ``aws`` (botocore) from the stack; ``google-api``
    (googleapiclient); ``grpc`` (Firestore). A session's recorder runs on after its own
    directory's tests, so each cloud's check keeps only its clients' requests."""

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


_STACK_SDKS = (("google.cloud.storage", "gcs"), ("botocore", "aws"))


def _sdk_on_stack() -> str:
    frame = sys._getframe(1)
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        for prefix, sdk in _STACK_SDKS:
            if module.startswith(prefix):
                return sdk
        frame = frame.f_back  # type: ignore[assignment]
    return ""


class WireLog:
    """The requests the library sent while a :func:`recording` block ran."""

    def __init__(self) -> None:
        self.requests: set[Request] = set()


class _Reader(logging.Filter):
    """Reads each record of the transports' loggers into the open :class:`WireLog` s, then
    drops it: the records go to no handler (pytest captures even non-propagating loggers, and
    these records carry header values: Cosmos logs its authorization header)."""

    def __init__(self) -> None:
        super().__init__()
        self.logs: list[WireLog] = []
        self._headers = threading.local()
        self._guard = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        request = self.parse(record)
        if request is not None and from_library():
            with self._guard:
                for log in self.logs:
                    log.requests.add(request)
        return False

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
                Request("GRPC", str(rpc).rsplit("/", 1)[-1], sdk="grpc")
                if text.startswith("Sending")
                else None
            )
        if (found := _URLLIB3.match(text)) is not None:
            path, _, query = found.group(2).partition("?")
            headers: frozenset[str] = getattr(self._headers, "names", frozenset())
            sdk: str = getattr(self._headers, "sdk", "") or _sdk_on_stack()
            self._headers.names, self._headers.sdk = frozenset(), ""
            return Request(found.group(1), path, _query(query), headers, sdk)
        if (found := _DISCOVERY.match(text)) is not None:
            path, _, query = found.group(2).partition("?")
            return Request(found.group(1), path, _query(query), sdk="google-api")
        return None


_READER = _Reader()
_saved_levels: list[int] = []


@contextlib.contextmanager
def recording() -> Iterator[WireLog]:
    """A :class:`WireLog` of the requests sent during the block (blocks may nest)."""
    log = WireLog()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    if not _READER.logs:
        _saved_levels[:] = [logger.level for logger in loggers]
        for logger in loggers:
            logger.addFilter(_READER)
            logger.setLevel(logging.DEBUG)
    _READER.logs.append(log)
    try:
        yield log
    finally:
        _READER.logs.remove(log)
        if not _READER.logs:
            for logger, level in zip(loggers, _saved_levels, strict=True):
                logger.removeFilter(_READER)
                logger.setLevel(level)


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
    sdks: frozenset[str],
) -> Iterator[set[Request]]:
    """The body of a session fixture: records the run, then fails on what one of ``sdks``
    sent that is not covered."""
    with recording() as log:
        yield log.requests
    rules = tuple(rules)
    requests = [r for r in log.requests if r.sdk in sdks]
    if written := os.environ.get(LOG_ENV):  # what was sent, for a look at the table
        lines = [f"{r}  ->  {_needs(rules, r)}" for r in requests]
        Path(written).write_text("".join(f"{line}\n" for line in sorted(lines)))
    absent = missing(rules, requests, granted(), covers, table)
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
