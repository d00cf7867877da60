"""The demo's client: resolves the service name through real DNS and places orders steadily."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Mapping

import attrs
from dnslib import QTYPE, DNSError, DNSRecord

from multiregion import validate
from multiregion.demo.webapp import loopback
from multiregion.errors import InvalidInput, Unavailable

Clock = Callable[[], float]


@attrs.frozen
class DnsAnswer:
    addresses: tuple[str, ...]
    ttl: int


class StubResolver:
    """Asks one DNS server over UDP and caches each answer for its TTL, like a stub resolver."""

    def __init__(
        self, host: str, port: int, *, timeout_s: float = 0.5, clock: Clock = time.monotonic
    ) -> None:
        self.host = loopback("resolver.host", host)
        self.port = validate.int_range("resolver.port", port, 1, 65535)
        self.timeout_s = timeout_s
        self._clock = clock
        self._cache: dict[str, tuple[float, DnsAnswer]] = {}

    def query(self, name: str) -> DnsAnswer:
        """One uncached A query. Raises ``Unavailable`` when the server does not answer."""
        question = DNSRecord.question(name, "A")
        try:
            reply = DNSRecord.parse(question.send(self.host, self.port, timeout=self.timeout_s))
        except (OSError, DNSError) as exc:
            raise Unavailable(f"DNS {self.host}:{self.port}: {exc}") from exc
        if reply.header.id != question.header.id:
            raise Unavailable(f"DNS {self.host}:{self.port} answered another query")
        records = [rr for rr in reply.rr if rr.rtype == QTYPE.A]
        ttl = min((rr.ttl for rr in records), default=0)
        return DnsAnswer(tuple(str(rr.rdata) for rr in records), ttl)

    def resolve(self, name: str) -> DnsAnswer:
        """The cached answer while its TTL runs, else a fresh one."""
        now = self._clock()
        cached = self._cache.get(name)
        if cached is not None and now < cached[0]:
            return cached[1]
        answer = self.query(name)
        self._cache[name] = (now + answer.ttl, answer)
        return answer


@attrs.frozen
class RequestRecord:
    """One order attempt. Times come from the client's clock (monotonic seconds)."""

    sent_at: float
    done_at: float
    address: str | None
    region: str | None
    status: int | None
    order_id: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 201 and self.order_id is not None


def post_order(address: str, port: int, timeout_s: float) -> tuple[int, str | None, str]:
    """POST one order; returns (status, order id if acknowledged, detail)."""
    conn = http.client.HTTPConnection(address, port, timeout=timeout_s)
    try:
        body = json.dumps({"item": "demo-widget", "quantity": 1})
        conn.request("POST", "/orders", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
    finally:
        conn.close()
    try:
        decoded = json.loads(payload)
    except ValueError:
        decoded = {}
    order_id = decoded.get("order_id") if isinstance(decoded, dict) else None
    if response.status != 201 or not isinstance(order_id, str):
        detail = decoded.get("error", "") if isinstance(decoded, dict) else ""
        return response.status, None, str(detail)
    return response.status, order_id, ""


class OrderClient:
    """Places an order about every ``period_s`` at whatever address DNS answers for ``name``."""

    def __init__(
        self,
        resolver: StubResolver,
        name: str,
        port: int,
        regions_by_address: Mapping[str, str],
        *,
        period_s: float = 0.05,
        timeout_s: float = 1.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.resolver = resolver
        self.name = validate.dns_name("name", name)
        self.port = validate.int_range("port", port, 1, 65535)
        self.regions_by_address = dict(regions_by_address)
        self.period_s = validate.seconds("period_s", period_s, 0, 10)
        self.timeout_s = timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="order-client", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_s + self.resolver.timeout_s + 1)

    def once(self) -> RequestRecord:
        """Resolve (through the cache) and place one order."""
        sent = self._clock()
        try:
            answer = self.resolver.resolve(self.name)
        except Unavailable as exc:
            return RequestRecord(sent, self._clock(), None, None, None, detail=str(exc))
        if not answer.addresses:
            return RequestRecord(sent, self._clock(), None, None, None, detail="dns: no address")
        address = answer.addresses[0]
        region = self.regions_by_address.get(address)
        try:
            loopback("answer", address)
        except InvalidInput as exc:  # never send traffic off this machine
            return RequestRecord(sent, self._clock(), address, region, None, detail=str(exc))
        try:
            status, order_id, detail = post_order(address, self.port, self.timeout_s)
        except (OSError, http.client.HTTPException) as exc:
            return RequestRecord(sent, self._clock(), address, region, None, detail=str(exc))
        return RequestRecord(sent, self._clock(), address, region, status, order_id, detail)

    def _run(self) -> None:
        next_at = self._clock()
        while not self._stop.is_set():
            record = self.once()
            with self._lock:
                self._records.append(record)
            next_at += self.period_s
            now = self._clock()
            if next_at < now:  # a slow request: skip the slots it used up
                next_at = now
            self._stop.wait(next_at - now)
