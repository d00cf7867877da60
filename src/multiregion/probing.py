"""Active health probes run by this process: one probe, a round of probes, and a scheduler.

Only stdlib ``asyncio`` and ``ssl``. A probe never raises for a network failure: it returns a
failed ``ProbeResult`` with a short ``detail``. ``HealthTracker`` turns results into a verdict
with thresholds (hysteresis); ``ProbeScheduler`` probes registered targets at their intervals
on a background thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import ssl
import threading
import time
from collections.abc import Callable, Sequence

import attrs

from multiregion.closing import Closing
from multiregion.errors import InvalidInput, NotFound, Unavailable
from multiregion.model import EndpointHealth, HealthCheck, HealthState, ProbeTarget

logger = logging.getLogger(__name__)

OnChange = Callable[[str, EndpointHealth], None]

_DEFAULT_PORTS = {"http": 80, "https": 443}


@attrs.frozen
class ProbeResult:
    """One probe's outcome: ``latency_s`` is the probe's wall time, ``at`` a ``time.time()``."""

    ok: bool
    latency_s: float
    detail: str
    at: float


@functools.cache
def _default_ssl_context() -> ssl.SSLContext:
    """The system trust store, verification on; built once, as loading it takes milliseconds."""
    return ssl.create_default_context()


def _host_header(host: str, port: int, protocol: str) -> str:
    try:
        literal = f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        literal = host
    return literal if _DEFAULT_PORTS.get(protocol) == port else f"{literal}:{port}"


def _status_of(line: bytes) -> int | None:
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        return None
    return int(parts[1])


def _describe_os_error(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    return exc.strerror or str(exc) or type(exc).__name__


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


async def _exchange(address: str, check: HealthCheck, ssl_context: ssl.SSLContext | None) -> str:
    """Runs one probe; returns "" when it passed, else why not. Network errors propagate."""
    tls = None
    server_hostname = None
    if check.protocol == "https":
        tls = ssl_context if ssl_context is not None else _default_ssl_context()
        server_hostname = check.host or address
    reader, writer = await asyncio.open_connection(
        address, check.port, ssl=tls, server_hostname=server_hostname
    )
    try:
        if check.protocol == "tcp":
            return ""
        host = _host_header(check.host or address, check.port, check.protocol)
        writer.write(
            f"GET {check.path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: multiregion-probe\r\n"
            "Accept: */*\r\nConnection: close\r\n\r\n".encode("ascii", "replace")
        )
        await writer.drain()
        line = await reader.readline()
        if not line:
            return "connection closed before a response"
        status = _status_of(line)
        if status is None:
            return "not an HTTP response"
        low, high = check.expected_status
        return "" if low <= status <= high else f"status {status}"
    finally:
        await _close(writer)


async def probe_once(
    address: str, check: HealthCheck, *, ssl_context: ssl.SSLContext | None = None
) -> ProbeResult:
    """Probe ``address`` once with ``check``, within ``check.timeout_s``; never raises for I/O.

    HTTP(S): a GET of ``check.path`` (Host: ``check.host`` or the address); a status within
    ``check.expected_status`` passes. HTTPS verifies the certificate against ``ssl_context``
    (default: the system trust store) for ``check.host`` or the address. TCP: a connection.
    """
    if not isinstance(check, HealthCheck):
        raise InvalidInput("check", "must be a HealthCheck")
    if not isinstance(address, str) or not address:
        raise InvalidInput("address", "must be an IP address or a host name")
    at = time.time()
    start = time.perf_counter()
    try:
        async with asyncio.timeout(check.timeout_s):
            problem = await _exchange(address, check, ssl_context)
    except TimeoutError:
        problem = f"timeout after {check.timeout_s:g}s"
    except OSError as exc:
        problem = _describe_os_error(exc)
    except (EOFError, ValueError):  # a truncated or oversized status line
        problem = "bad response"
    latency = time.perf_counter() - start
    return ProbeResult(ok=not problem, latency_s=latency, detail=problem or "ok", at=at)


async def probe_round(
    targets: Sequence[ProbeTarget],
    *,
    ssl_context: ssl.SSLContext | None = None,
    concurrency: int = 1000,
) -> list[ProbeResult]:
    """Probe every target once, concurrently (at most ``concurrency`` at a time).

    Results come in the order of ``targets``; the round lasts about as long as its slowest
    probe, not the sum of them.
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise InvalidInput("concurrency", f"{concurrency!r} must be a whole number above 0")
    for target in targets:
        if not isinstance(target, ProbeTarget):
            raise InvalidInput("targets", "every entry must be a ProbeTarget")
    gate = asyncio.Semaphore(concurrency)

    async def one(target: ProbeTarget) -> ProbeResult:
        async with gate:
            return await probe_once(target.address, target.check, ssl_context=ssl_context)

    return list(await asyncio.gather(*(one(t) for t in targets)))


class HealthTracker:
    """Turns probe results into a verdict, with hysteresis.

    Starts UNKNOWN; ``check.failure_threshold`` consecutive failures make it UNHEALTHY and
    ``check.success_threshold`` consecutive successes make it HEALTHY; anything shorter keeps
    the current state, so a flapping endpoint does not flip the verdict on every probe.
    """

    def __init__(self, name: str, check: HealthCheck) -> None:
        if not isinstance(check, HealthCheck):
            raise InvalidInput("check", "must be a HealthCheck")
        self.name = name
        self.check = check
        self._state = HealthState.UNKNOWN
        self._failures = 0
        self._successes = 0
        self._last: ProbeResult | None = None

    @property
    def health(self) -> EndpointHealth:
        last = self._last
        return EndpointHealth(
            name=self.name,
            state=self._state,
            checked_at=None if last is None else last.at,
            detail="" if last is None else last.detail,
            consecutive_failures=self._failures,
            consecutive_successes=self._successes,
        )

    def observe(self, result: ProbeResult) -> EndpointHealth:
        self._last = result
        if result.ok:
            self._successes += 1
            self._failures = 0
            if self._successes >= self.check.success_threshold:
                self._state = HealthState.HEALTHY
        else:
            self._failures += 1
            self._successes = 0
            if self._failures >= self.check.failure_threshold:
                self._state = HealthState.UNHEALTHY
        return self.health


@attrs.define(eq=False)
class _Entry:
    """One registered key: its target, its verdict, and (once the loop has it) its task."""

    key: str
    target: ProbeTarget
    tracker: HealthTracker
    task: asyncio.Task[None] | None = None
    removed: bool = False


class ProbeScheduler(Closing):
    """Probes registered targets at their checks' intervals on one background thread.

    Every method is thread-safe. ``on_change(key, health)`` is called from the scheduler's
    thread each time a key's observed state changes (a new key's first verdict included); it
    must be quick and must not call ``close``.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        on_change: OnChange | None = None,
    ) -> None:
        self._ssl_context = ssl_context
        self._on_change = on_change
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._stopped = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="multiregion-probes", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public API

    def add(self, key: str, target: ProbeTarget) -> None:
        """Probe ``target`` under ``key`` (first probe at once), replacing what ``key`` held.

        A replacement with the same address and check keeps the verdict and the schedule.
        """
        if not isinstance(key, str) or not key:
            raise InvalidInput("key", "must be a non-empty string")
        if not isinstance(target, ProbeTarget):
            raise InvalidInput("target", "must be a ProbeTarget")
        with self._lock:
            self._require_open()
            old = self._entries.get(key)
            if old is not None and (old.target.address, old.target.check) == (
                target.address,
                target.check,
            ):
                old.target = target
                old.tracker.name = target.name
                return
            entry = _Entry(key, target, HealthTracker(target.name, target.check))
            self._entries[key] = entry
            if old is not None:
                old.removed = True
                self._loop.call_soon_threadsafe(self._cancel, old)
            self._loop.call_soon_threadsafe(self._spawn, entry)

    def remove(self, key: str) -> None:
        """Stop probing ``key``. Raises ``NotFound`` for a key not registered."""
        with self._lock:
            entry = self._entries.pop(key, None)
            if entry is None:
                raise NotFound(f"no probe registered as {key!r}")
            entry.removed = True
            if not self._closed:
                self._loop.call_soon_threadsafe(self._cancel, entry)

    def keys(self) -> list[str]:
        with self._lock:
            return sorted(self._entries)

    def health(self, key: str) -> EndpointHealth:
        """The verdict for ``key`` now. Raises ``NotFound`` for a key not registered."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                raise NotFound(f"no probe registered as {key!r}")
            return entry.tracker.health

    def snapshot(self) -> dict[str, EndpointHealth]:
        with self._lock:
            return {key: entry.tracker.health for key, entry in self._entries.items()}

    def close(self) -> None:
        """Stop probing and the thread; idempotent. Keys and verdicts stay readable."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join()
        self._loop.close()

    # ------------------------------------------------------------------ scheduler thread

    def _require_open(self) -> None:
        if self._closed:
            raise Unavailable("the probe scheduler is closed")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._stopped.wait())
            tasks = asyncio.all_tasks(self._loop)
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)

    def _spawn(self, entry: _Entry) -> None:
        if not entry.removed and not self._stopped.is_set():
            entry.task = self._loop.create_task(self._probe_forever(entry))

    @staticmethod
    def _cancel(entry: _Entry) -> None:
        if entry.task is not None:
            entry.task.cancel()

    async def _probe_forever(self, entry: _Entry) -> None:
        interval = entry.target.check.interval_s
        due = self._loop.time()
        while not entry.removed:
            try:
                result = await probe_once(
                    entry.target.address, entry.target.check, ssl_context=self._ssl_context
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("probe of %s failed unexpectedly", entry.key)
            else:
                self._record(entry, result)
            due += interval
            now = self._loop.time()
            if due < now:  # a slow probe or a busy machine: skip the missed turns
                due = now
            await asyncio.sleep(due - now)

    def _record(self, entry: _Entry, result: ProbeResult) -> None:
        with self._lock:
            if entry.removed:
                return
            before = entry.tracker.health.state
            health = entry.tracker.observe(result)
        if health.state is not before and self._on_change is not None:
            try:
                self._on_change(entry.key, health)
            except Exception:
                logger.exception("on_change callback failed for %s", entry.key)
