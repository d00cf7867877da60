"""The HTTP control API from another process's point of view, and the lease: a fault whose
installer stops renewing it (a drill killed with kill -9) is reverted by the proxy itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from multiregion.errors import InvalidInput, NotFound
from multiregion.faultproxy import Blackhole, ControlClient, Engage, FaultProxy, Latency
from tests.faultproxy.conftest import Proxied

TIMEOUT_S = 0.3


def blackholed(url: str) -> bool:
    try:
        requests.get(url, timeout=TIMEOUT_S)
    except requests.ReadTimeout:
        return True
    return False


def passes(url: str) -> bool:
    try:
        return requests.get(url, timeout=TIMEOUT_S).ok
    except requests.ConnectionError:  # a blackholed connection is reset when it is lifted
        return False
    except requests.ReadTimeout:
        return False


def wait_until_passes(url: str, within_s: float) -> float:
    """Seconds until a request through the proxy succeeds again."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        if passes(url):
            return time.monotonic() - started
    raise AssertionError(f"still blackholed after {within_s}s")


@pytest.fixture
def client(proxied: Proxied) -> ControlClient:
    return ControlClient(proxied.proxy.serve_control())


def test_install_list_renew_and_release_over_http(proxied: Proxied, client: ControlClient) -> None:
    lease = client.install("app", Latency(0.05), lease_s=5)
    [listener] = client.listeners()
    assert listener["name"] == "app"
    [toxic] = listener["toxics"]
    assert toxic["kind"] == "latency"
    assert toxic["latency_s"] == 0.05
    assert toxic["lease"]["id"] == lease
    assert 4 < toxic["lease"]["expires_in_s"] <= 5
    client.renew(lease, 30)
    assert client.listeners()[0]["toxics"][0]["lease"]["expires_in_s"] > 29
    client.release(lease)
    assert client.listeners()[0]["toxics"] == []
    with pytest.raises(NotFound, match=lease):
        client.renew(lease)


def test_bad_requests_are_refused_naming_the_field(client: ControlClient) -> None:
    with pytest.raises(InvalidInput, match=r"toxic\.kind"):
        client._send("POST", "/listeners/app/toxics", {"toxic": {"kind": "x"}, "lease_s": 1})
    with pytest.raises(InvalidInput, match="lease_s"):
        client._send("POST", "/listeners/app/toxics", {"toxic": {"kind": "blackhole"}})
    with pytest.raises(NotFound, match="nope"):
        client.install("nope", Blackhole())
    with pytest.raises(InvalidInput, match="loopback"):
        ControlClient("http://10.0.0.1:8474")
    with FaultProxy() as proxy, pytest.raises(InvalidInput, match="loopback"):
        proxy.serve_control("0.0.0.0")


def test_a_lease_that_runs_out_reverts_to_pass_through(
    proxied: Proxied, client: ControlClient
) -> None:
    client.install("app", Blackhole(), lease_s=0.6)
    installed = time.monotonic()
    assert blackholed(proxied.url)
    wait_until_passes(proxied.url, within_s=3)
    assert time.monotonic() - installed >= 0.6
    assert client.listeners()[0]["toxics"] == []


def test_a_held_fault_stays_while_renewed(proxied: Proxied, client: ControlClient) -> None:
    with client.hold("app", Blackhole(), lease_s=0.3) as held:
        time.sleep(0.5)  # longer than the lease: only renewals keep it
        assert blackholed(proxied.url)
        assert held.lost is None
    assert wait_until_passes(proxied.url, within_s=1) < 0.5  # released at once


HOLDER = """
import sys, time
from multiregion.faultproxy import Blackhole, ControlClient
ControlClient(sys.argv[1]).hold("app", Blackhole(), lease_s=float(sys.argv[2]))
print("held", flush=True)
time.sleep(60)
"""


def test_kill_9_of_the_process_holding_a_fault_leaves_no_fault_once_the_lease_ran_out(
    proxied: Proxied, client: ControlClient
) -> None:
    lease_s = 0.4
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, client.url, str(lease_s)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        time.sleep(lease_s * 1.5)  # it renews: the fault outlives its first lease
        assert blackholed(proxied.url)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=5)
    killed = time.monotonic()
    took = wait_until_passes(proxied.url, within_s=lease_s + 3)
    assert time.monotonic() - killed <= lease_s + 1.5
    assert took > 0  # measured, not assumed
    assert client.listeners()[0]["toxics"] == []


def test_a_lever_runs_its_fault_in_the_proxy_under_a_lease(
    proxied: Proxied, client: ControlClient
) -> None:
    """A fault that is not TCP (``add_lever``): engaged and released by the proxy's process,
    released by itself when its lease runs out, and only ``Engage`` switches it."""
    calls: list[str] = []
    proxied.proxy.add_lever(
        "db.down", lambda: calls.append("engage"), lambda: calls.append("release"), "db down"
    )
    assert {"name": "db.down", "lever": "db down", "toxics": []} in client.listeners()
    with pytest.raises(InvalidInput, match=r"toxic\.kind"):
        client.install("db.down", Blackhole(), lease_s=5)
    with pytest.raises(InvalidInput, match=r"toxic\.kind"):
        client.install("app", Engage(), lease_s=5)
    client.install("db.down", Engage(), lease_s=5)
    client.install("db.down", Engage(), lease_s=5)  # replaced: not engaged twice
    assert calls == ["engage"]
    client.remove("db.down", "engage")
    assert calls == ["engage", "release"]
    client.install("db.down", Engage(), lease_s=0.3)
    deadline = time.monotonic() + 3
    while calls[-1] != "release":
        assert time.monotonic() < deadline, "the lease never ran out"
        time.sleep(0.02)
    assert calls == ["engage", "release", "engage", "release"]
