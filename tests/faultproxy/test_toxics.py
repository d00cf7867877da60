"""Each toxic, seen by a real HTTP client (requests) or a raw socket through the proxy."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from multiregion.errors import InvalidInput, NotFound
from multiregion.faultproxy import (
    Bandwidth,
    Blackhole,
    HttpErrors,
    Latency,
    Refuse,
    ResetAfter,
    SlowClose,
)
from multiregion.faultproxy.toxics import from_dict, to_dict
from tests.faultproxy.conftest import Proxied

TIMEOUT_S = 0.4


def elapsed(proxied: Proxied, path: str = "/") -> float:
    started = time.monotonic()
    response = requests.get(proxied.url + path, timeout=5)
    assert response.status_code == 200
    return time.monotonic() - started


def test_without_toxics_traffic_passes(proxied: Proxied) -> None:
    with requests.Session() as session:
        bodies = [session.get(proxied.url + "/bytes/100000", timeout=5).content for _ in range(3)]
    assert bodies == [b"x" * 100000] * 3
    assert proxied.hits == 3


def test_refuse_refuses_connections_until_removed(proxied: Proxied) -> None:
    with proxied.proxy.toxic("app", Refuse()):
        started = time.monotonic()
        with pytest.raises(requests.ConnectionError, match="refused"):
            requests.get(proxied.url, timeout=5)
        assert time.monotonic() - started < 1.0  # refused at once, not timed out
    assert elapsed(proxied) < 5
    assert proxied.hits == 1


def test_a_blackhole_times_a_real_client_out_and_the_upstream_sees_nothing(
    proxied: Proxied,
) -> None:
    with requests.Session() as session:
        assert session.get(proxied.url, timeout=5).ok  # an open keep-alive connection
        with proxied.proxy.toxic("app", Blackhole()):
            for send in (session.get, requests.get):  # the open connection and a new one
                started = time.monotonic()
                with pytest.raises(requests.ReadTimeout):
                    send(proxied.url, timeout=TIMEOUT_S)
                assert time.monotonic() - started >= TIMEOUT_S
        assert proxied.hits == 1
        assert elapsed(proxied) < 5  # lifted: traffic passes again


def test_latency_is_really_added_to_each_direction(proxied: Proxied) -> None:
    baseline = min(elapsed(proxied) for _ in range(3))
    with proxied.proxy.toxic("app", Latency(0.2, jitter_s=0.05)):
        answers = elapsed(proxied)
    with proxied.proxy.toxic("app", Latency(0.2, direction="both")):
        both = elapsed(proxied)
    assert 0.15 <= answers - baseline < 1.0
    assert 0.35 <= both - baseline < 1.5


def test_bandwidth_limits_the_rate(proxied: Proxied) -> None:
    with proxied.proxy.toxic("app", Bandwidth(200_000)):
        took = elapsed(proxied, "/bytes/100000")
    assert took >= 0.45  # 100 kB at 200 kB/s
    assert elapsed(proxied, "/bytes/100000") < took / 2


def test_reset_after_n_bytes_resets_the_connection(proxied: Proxied) -> None:
    with proxied.proxy.toxic("app", ResetAfter(1000)):
        with pytest.raises(requests.exceptions.ChunkedEncodingError, match="reset by peer"):
            requests.get(proxied.url + "/bytes/100000", timeout=5)
        host, port = proxied.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"GET /bytes/100000 HTTP/1.1\r\nHost: x\r\n\r\n")
            received = b""

            def read_to_the_end() -> None:
                nonlocal received
                while chunk := sock.recv(65536):
                    received += chunk

            with pytest.raises(ConnectionResetError):  # an RST, not an orderly close
                read_to_the_end()
        assert 0 < len(received) <= 1000


def test_an_error_rate_answers_exactly_that_share_with_503(proxied: Proxied) -> None:
    with proxied.proxy.toxic("app", HttpErrors(0.25)), requests.Session() as session:
        statuses = [session.post(proxied.url, data=b"order", timeout=5) for _ in range(20)]
    codes = [r.status_code for r in statuses]
    assert codes.count(503) == 5
    assert codes.count(200) == 15
    assert all(r.content == b"order" for r in statuses if r.status_code == 200)
    assert proxied.hits == 15  # the proxy answered the others itself


def test_slow_close_delays_the_close(proxied: Proxied) -> None:
    host, port = proxied.url.removeprefix("http://").split(":")
    with (
        proxied.proxy.toxic("app", SlowClose(0.3)),
        socket.create_connection((host, int(port)), timeout=5) as sock,
    ):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        started = time.monotonic()
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        closed_after = time.monotonic() - started
    assert data.startswith(b"HTTP/1.1 200")
    assert closed_after >= 0.3


def test_toxics_round_trip_as_json_and_bad_ones_name_the_field() -> None:
    for toxic in (Latency(0.1, 0.05, "both"), HttpErrors(0.5, 502), Refuse(), ResetAfter(10)):
        assert from_dict(to_dict(toxic)) == toxic
    with pytest.raises(InvalidInput, match=r"toxic\.kind"):
        from_dict({"kind": "meteor"})
    with pytest.raises(InvalidInput, match=r"latency\.latency_s"):
        from_dict({"kind": "latency", "latency_s": -1})
    with pytest.raises(InvalidInput, match=r"http_errors\.rate"):
        HttpErrors(1.5)
    with pytest.raises(InvalidInput, match=r"toxic\.delay"):
        from_dict({"kind": "slow_close", "delay": 1})


def test_an_unknown_listener_is_named(proxied: Proxied) -> None:
    with pytest.raises(NotFound, match="nope"):
        proxied.proxy.set_toxic("nope", Blackhole())
