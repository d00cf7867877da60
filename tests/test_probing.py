"""Active probing: verdicts with hysteresis, probes, rounds, the scheduler, test endpoints."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from multiregion.errors import InvalidInput, NotFound, Unavailable
from multiregion.model import EndpointHealth, HealthCheck, HealthState, ProbeTarget
from multiregion.probing import (
    HealthTracker,
    ProbeResult,
    ProbeScheduler,
    probe_once,
    probe_round,
)
from multiregion.testing.endpoints import (
    LoopbackEndpoint,
    ca_pem_path,
    client_ssl_context,
    free_port,
    start_endpoints,
)


def check(protocol: str, port: int, **changes: object) -> HealthCheck:
    settings: dict[str, object] = {"interval_s": 0.1, "timeout_s": 0.1, "failure_threshold": 2}
    settings.update(changes)
    return HealthCheck(protocol, port, **settings)  # type: ignore[arg-type]


def probe(address: str, hc: HealthCheck, **kwargs: object) -> ProbeResult:
    return asyncio.run(probe_once(address, hc, **kwargs))  # type: ignore[arg-type]


def result(ok: bool, detail: str = "") -> ProbeResult:
    return ProbeResult(
        ok=ok, latency_s=0.001, detail=detail or ("ok" if ok else "status 503"), at=1
    )


@pytest.fixture
def http() -> Iterator[LoopbackEndpoint]:
    with LoopbackEndpoint("http") as endpoint:
        yield endpoint


@pytest.fixture
def silent() -> Iterator[socket.socket]:
    """Accepts connections (through the backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock


@pytest.fixture
def raw_server() -> Iterator[Callable[[bytes], tuple[int, list[bytes]]]]:
    """A one-shot server answering ``reply`` verbatim; records what each request said."""
    threads: list[threading.Thread] = []
    socks: list[socket.socket] = []

    def start(reply: bytes) -> tuple[int, list[bytes]]:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        socks.append(sock)
        seen: list[bytes] = []

        def serve() -> None:
            conn, _ = sock.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096)
                seen.append(data)
                conn.sendall(reply)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        threads.append(thread)
        return sock.getsockname()[1], seen

    yield start
    for thread in threads:
        thread.join(2)
    for sock in socks:
        sock.close()


# --------------------------------------------------------------------------- HealthTracker


def test_tracker_starts_unknown_and_needs_the_failure_threshold() -> None:
    tracker = HealthTracker("web", check("http", 80, failure_threshold=3))
    assert tracker.health == EndpointHealth("web", HealthState.UNKNOWN)
    assert tracker.observe(result(False)).state is HealthState.UNKNOWN
    assert tracker.observe(result(False)).state is HealthState.UNKNOWN
    health = tracker.observe(result(False, "connection refused"))
    assert health.state is HealthState.UNHEALTHY
    assert health.consecutive_failures == 3
    assert health.detail == "connection refused"
    assert health.checked_at == 1


def test_tracker_needs_the_success_threshold_to_recover() -> None:
    tracker = HealthTracker("web", check("http", 80, failure_threshold=1, success_threshold=2))
    assert tracker.observe(result(False)).state is HealthState.UNHEALTHY
    assert tracker.observe(result(True)).state is HealthState.UNHEALTHY
    assert tracker.observe(result(False)).state is HealthState.UNHEALTHY
    assert tracker.observe(result(True)).state is HealthState.UNHEALTHY
    health = tracker.observe(result(True))
    assert health.state is HealthState.HEALTHY
    assert (health.consecutive_successes, health.consecutive_failures) == (2, 0)


def test_tracker_hysteresis_keeps_a_flapping_endpoint_healthy() -> None:
    tracker = HealthTracker("web", check("http", 80, failure_threshold=2))
    assert tracker.observe(result(True)).state is HealthState.HEALTHY
    for _ in range(20):
        assert tracker.observe(result(False)).state is HealthState.HEALTHY
        assert tracker.observe(result(True)).state is HealthState.HEALTHY
    assert tracker.observe(result(False)).state is HealthState.HEALTHY
    assert tracker.observe(result(False)).state is HealthState.UNHEALTHY


def test_tracker_refuses_what_is_not_a_check() -> None:
    with pytest.raises(InvalidInput):
        HealthTracker("web", "http")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- probe_once


def test_http_probe_passes_on_200(http: LoopbackEndpoint) -> None:
    outcome = probe(http.address, check("http", http.port))
    assert outcome.ok
    assert outcome.detail == "ok"
    assert 0 < outcome.latency_s < 0.1
    assert abs(outcome.at - time.time()) < 5
    assert http.hits == 1


def test_http_probe_fails_on_a_status_outside_the_range(http: LoopbackEndpoint) -> None:
    http.fail()
    outcome = probe(http.address, check("http", http.port))
    assert (outcome.ok, outcome.detail) == (False, "status 503")
    assert probe(http.address, check("http", http.port, expected_status=(500, 503))).ok


def test_http_probe_sends_path_and_host(raw_server: Callable[..., tuple[int, list[bytes]]]) -> None:
    port, seen = raw_server(b"HTTP/1.1 204 No Content\r\n\r\n")
    assert probe("127.0.0.1", check("http", port, path="/healthz?deep=1")).ok
    port2, seen2 = raw_server(b"HTTP/1.0 200 OK\r\n\r\n")
    assert probe("127.0.0.1", check("http", port2, host="app.example.test")).ok
    head = seen[0].decode()
    assert head.startswith("GET /healthz?deep=1 HTTP/1.1\r\n")
    assert f"\r\nHost: 127.0.0.1:{port}\r\n" in head
    assert "\r\nConnection: close\r\n" in head
    assert f"\r\nHost: app.example.test:{port2}\r\n" in seen2[0].decode()


@pytest.mark.parametrize(
    ("reply", "detail"),
    [
        (b"SSH-2.0-OpenSSH\r\n", "not an HTTP response"),
        (b"", "connection closed before a response"),
    ],
)
def test_http_probe_fails_on_a_non_http_answer(
    raw_server: Callable[..., tuple[int, list[bytes]]], reply: bytes, detail: str
) -> None:
    port, _ = raw_server(reply)
    outcome = probe("127.0.0.1", check("http", port))
    assert (outcome.ok, outcome.detail) == (False, detail)


@pytest.mark.parametrize("protocol", ["http", "https", "tcp"])
def test_refused_connection_fails_quickly(protocol: str) -> None:
    port = free_port(["127.0.0.1"])
    outcome = probe("127.0.0.1", check(protocol, port, timeout_s=2, interval_s=5))
    assert (outcome.ok, outcome.detail) == (False, "connection refused")
    assert outcome.latency_s < 1


@pytest.mark.parametrize("protocol", ["http", "https"])
def test_silent_server_times_out(silent: socket.socket, protocol: str) -> None:
    port = silent.getsockname()[1]
    start = time.monotonic()
    outcome = probe("127.0.0.1", check(protocol, port, timeout_s=0.2, interval_s=1))
    elapsed = time.monotonic() - start
    assert (outcome.ok, outcome.detail) == (False, "timeout after 0.2s")
    assert 0.19 <= outcome.latency_s <= elapsed < 1


def test_tcp_probe_passes_when_connected() -> None:
    with LoopbackEndpoint("tcp") as endpoint:
        assert probe(endpoint.address, check("tcp", endpoint.port)).ok
        endpoint.fail()
        assert not probe(endpoint.address, check("tcp", endpoint.port)).ok


def test_https_probe_verifies_the_certificate() -> None:
    with LoopbackEndpoint("https") as endpoint:
        hc = check("https", endpoint.port)
        assert probe(endpoint.address, hc, ssl_context=client_ssl_context()).ok
        untrusted = probe(endpoint.address, hc)
        assert not untrusted.ok
        assert untrusted.detail.startswith("certificate not trusted")
        wrong_name = check("https", endpoint.port, host="other.example.test")
        mismatch = probe(endpoint.address, wrong_name, ssl_context=client_ssl_context())
        assert not mismatch.ok
        assert "certificate" in mismatch.detail
        assert endpoint.hits == 1


def test_ipv6_loopback_is_probed() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        endpoint = LoopbackEndpoint("https", "::1")
    except Unavailable as exc:
        pytest.skip(f"::1 is not configured: {exc}")
    with endpoint:
        assert endpoint.url == f"https://[::1]:{endpoint.port}/"
        assert probe("::1", check("https", endpoint.port), ssl_context=client_ssl_context()).ok


def test_probe_once_refuses_bad_arguments() -> None:
    with pytest.raises(InvalidInput):
        probe("127.0.0.1", "http")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        probe("", check("tcp", 80))


# --------------------------------------------------------------------------- probe_round


def _slow(delay_s: float, status: int) -> Callable[[str, str], tuple[int, bytes]]:
    def respond(_method: str, _path: str) -> tuple[int, bytes]:
        time.sleep(delay_s)
        return status, b""

    return respond


def test_probe_round_runs_concurrently_and_keeps_order() -> None:
    endpoints = [
        LoopbackEndpoint("http", respond=_slow(0.2, 200 + 300 * (i % 2))) for i in range(8)
    ]
    try:
        targets = [
            ProbeTarget(f"e{i}", e.address, check("http", e.port, interval_s=2, timeout_s=1))
            for i, e in enumerate(endpoints)
        ]
        start = time.monotonic()
        results = asyncio.run(probe_round(targets))
        assert time.monotonic() - start < 0.2 * 4  # the sequential sum would be 1.6 s
        assert [r.ok for r in results] == [i % 2 == 0 for i in range(8)]
        assert all(r.latency_s >= 0.19 for r in results)
        start = time.monotonic()
        asyncio.run(probe_round(targets[:3], concurrency=1))
        assert time.monotonic() - start >= 0.6
    finally:
        for endpoint in endpoints:
            endpoint.close()


def test_probe_round_refuses_bad_arguments() -> None:
    target = ProbeTarget("e", "127.0.0.1", check("tcp", 9))
    with pytest.raises(InvalidInput) as excinfo:
        asyncio.run(probe_round([target], concurrency=0))
    assert excinfo.value.field == "concurrency"
    with pytest.raises(InvalidInput):
        asyncio.run(probe_round([target, "127.0.0.1"]))  # type: ignore[list-item]
    assert asyncio.run(probe_round([])) == []


# --------------------------------------------------------------------------- ProbeScheduler


def _until(predicate: Callable[[], bool], wait_s: float = 2.0) -> None:
    deadline = time.monotonic() + wait_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_scheduler_tracks_health_and_reports_changes(http: LoopbackEndpoint) -> None:
    changes: list[tuple[str, HealthState]] = []
    with ProbeScheduler(on_change=lambda key, h: changes.append((key, h.state))) as scheduler:
        scheduler.add("route/web", ProbeTarget("web", http.address, check("http", http.port)))
        assert scheduler.keys() == ["route/web"]
        _until(lambda: scheduler.health("route/web").healthy)
        http.fail()
        _until(lambda: scheduler.health("route/web").state is HealthState.UNHEALTHY)
        http.recover()
        _until(lambda: scheduler.health("route/web").healthy)
        assert scheduler.snapshot()["route/web"].name == "web"
    assert changes == [
        ("route/web", HealthState.HEALTHY),
        ("route/web", HealthState.UNHEALTHY),
        ("route/web", HealthState.HEALTHY),
    ]


def test_scheduler_probes_at_the_interval(http: LoopbackEndpoint) -> None:
    with ProbeScheduler() as scheduler:
        scheduler.add("k", ProbeTarget("web", http.address, check("http", http.port)))
        _until(lambda: http.hits >= 1, 0.5)  # the first probe is immediate
        time.sleep(0.5)
    assert 4 <= http.hits <= 8  # 0.1 s interval: about 6 probes


def test_scheduler_replacement_keeps_or_resets_the_verdict(http: LoopbackEndpoint) -> None:
    with ProbeScheduler() as scheduler:
        target = ProbeTarget("web", http.address, check("http", http.port))
        scheduler.add("k", target)
        _until(lambda: scheduler.health("k").consecutive_successes >= 3)
        scheduler.add("k", ProbeTarget("renamed", http.address, target.check))
        kept = scheduler.health("k")
        assert (kept.name, kept.state) == ("renamed", HealthState.HEALTHY)
        assert kept.consecutive_successes >= 3
        port = free_port(["127.0.0.1"])
        scheduler.add("k", ProbeTarget("web", "127.0.0.1", check("tcp", port)))
        assert scheduler.health("k").consecutive_successes == 0
        _until(lambda: scheduler.health("k").state is HealthState.UNHEALTHY)
        assert scheduler.keys() == ["k"]


def test_scheduler_unknown_keys_and_closing(silent: socket.socket) -> None:
    before = threading.active_count()
    scheduler = ProbeScheduler()
    with pytest.raises(NotFound):
        scheduler.health("nope")
    with pytest.raises(NotFound):
        scheduler.remove("nope")
    with pytest.raises(InvalidInput):
        scheduler.add("", ProbeTarget("x", "127.0.0.1", check("tcp", 9)))
    hanging = check("http", silent.getsockname()[1], interval_s=30, timeout_s=20)
    scheduler.add("b", ProbeTarget("hang", "127.0.0.1", hanging))
    scheduler.add("a", ProbeTarget("hang", "127.0.0.1", hanging))
    assert scheduler.keys() == ["a", "b"]
    scheduler.remove("b")
    assert list(scheduler.snapshot()) == ["a"]
    time.sleep(0.05)  # let the probe start hanging
    start = time.monotonic()
    scheduler.close()
    assert time.monotonic() - start < 0.5
    scheduler.close()
    assert threading.active_count() == before
    assert scheduler.health("a").state is HealthState.UNKNOWN
    with pytest.raises(Unavailable):
        scheduler.add("c", ProbeTarget("x", "127.0.0.1", hanging))


def test_scheduler_survives_a_failing_callback(http: LoopbackEndpoint) -> None:
    def explode(_key: str, _health: EndpointHealth) -> None:
        raise RuntimeError("boom")

    with ProbeScheduler(on_change=explode) as scheduler:
        scheduler.add("k", ProbeTarget("web", http.address, check("http", http.port)))
        _until(lambda: scheduler.health("k").consecutive_successes >= 3)


# --------------------------------------------------------------------------- endpoints


def test_endpoint_fail_recover_stop_start(http: LoopbackEndpoint) -> None:
    hc = check("http", http.port)
    assert http.url == f"http://127.0.0.1:{http.port}/"
    http.fail()
    assert probe(http.address, hc).detail == "status 503"
    http.recover()
    assert probe(http.address, hc).ok
    http.stop()
    assert not http.listening
    assert probe(http.address, hc).detail == "connection refused"
    http.start()
    assert probe(http.address, hc).ok
    assert http.hits == 3


def test_endpoint_respond_hook_scripts_answers() -> None:
    calls: list[tuple[str, str]] = []

    def respond(method: str, path: str) -> tuple[int, bytes]:
        calls.append((method, path))
        return (200, b"") if len(calls) % 2 else (500, b"")

    with LoopbackEndpoint("http", respond=respond) as endpoint:
        hc = check("http", endpoint.port, path="/x")
        assert [probe(endpoint.address, hc).ok for _ in range(4)] == [True, False, True, False]
    assert calls == [("GET", "/x")] * 4


def test_endpoint_close_leaves_no_threads_and_refuses_start() -> None:
    before = threading.active_count()
    endpoint = LoopbackEndpoint("https")
    with socket.create_connection((endpoint.address, endpoint.port)):
        time.sleep(0.05)  # a connection that never sends a byte
        start = time.monotonic()
        endpoint.close()
        assert time.monotonic() - start < 0.5
    assert threading.active_count() == before
    with pytest.raises(Unavailable):
        endpoint.start()


def test_endpoint_refuses_bad_arguments() -> None:
    with pytest.raises(InvalidInput) as excinfo:
        LoopbackEndpoint("http", "10.0.0.1")
    assert excinfo.value.field == "address"
    with pytest.raises(InvalidInput):
        LoopbackEndpoint("udp")
    with pytest.raises(InvalidInput):
        LoopbackEndpoint("http", port=70000)
    with pytest.raises(InvalidInput):
        free_port(["192.0.2.1"])
    with pytest.raises(InvalidInput):
        start_endpoints(0)


def test_start_endpoints_share_a_port_on_distinct_addresses() -> None:
    endpoints = start_endpoints(3, "https")
    try:
        addresses = {e.address for e in endpoints}
        assert len(addresses) == 3
        assert all(a.startswith("127.") and a != "127.0.0.1" for a in addresses)
        assert len({e.port for e in endpoints}) == 1
        context = client_ssl_context()
        for endpoint in endpoints:
            assert probe(endpoint.address, check("https", endpoint.port), ssl_context=context).ok
        assert endpoints[0].ca_path == ca_pem_path()
        with open(ca_pem_path()) as pem:
            assert "BEGIN CERTIFICATE" in pem.read()
        endpoints[1].stop()
        assert not probe(endpoints[1].address, check("https", endpoints[1].port)).ok
        assert probe(
            endpoints[2].address, check("https", endpoints[2].port), ssl_context=context
        ).ok
    finally:
        for endpoint in endpoints:
            endpoint.close()


def test_free_port_is_free_on_every_address() -> None:
    addresses = ["127.0.0.1", "127.0.3.7"]
    with socket.socket() as taken:
        taken.bind(("127.0.3.7", 0))
        taken.listen(1)
        port = free_port(addresses)
        assert port != taken.getsockname()[1]
    for address in addresses:
        with socket.socket() as sock:
            sock.bind((address, port))
