"""The probe contract on LocalProbe (0.1 s checks), plus what only in-process probing promises."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from multiregion import registry
from multiregion.errors import InvalidInput, Unavailable
from multiregion.model import HealthCheck, HealthState, ProbeTarget
from multiregion.providers.local.probe import LocalProbe
from multiregion.testing.contract.harness import ProbeHarness
from multiregion.testing.contract.probe import ProbeContract
from multiregion.testing.endpoints import LoopbackEndpoint, client_ssl_context


def fast_check(protocol: str, port: int) -> HealthCheck:
    return HealthCheck(
        protocol, port, interval_s=0.1, timeout_s=0.1, failure_threshold=2, success_threshold=1
    )


@pytest.fixture
def probe_harness() -> Iterator[ProbeHarness]:
    endpoints: list[LoopbackEndpoint] = []

    def serve(protocol: str) -> LoopbackEndpoint:
        endpoint = LoopbackEndpoint(protocol, "127.0.0.1")
        endpoints.append(endpoint)
        return endpoint

    probe = LocalProbe(ssl_context=client_ssl_context())
    yield ProbeHarness(probe=probe, serve=serve, check=fast_check, wait_s=2.0)
    probe.close()
    for endpoint in endpoints:
        endpoint.close()


class TestLocalProbe(ProbeContract):
    pass


def _wait(probe: LocalProbe, name: str, state: HealthState, wait_s: float = 2.0) -> None:
    deadline = time.monotonic() + wait_s
    while probe.status(name).state is not state:
        assert time.monotonic() < deadline, probe.status(name)
        time.sleep(0.02)


def test_registry_builds_a_local_probe() -> None:
    probe = registry.probe("local")
    try:
        assert isinstance(probe, LocalProbe)
    finally:
        probe.close()


def test_interval_below_minimum_names_the_field() -> None:
    with LoopbackEndpoint("tcp") as endpoint:
        probe = LocalProbe()
        try:
            check = HealthCheck("tcp", endpoint.port, interval_s=0.01)
            with pytest.raises(InvalidInput) as excinfo:
                probe.ensure(ProbeTarget("quick", endpoint.address, check))
            assert excinfo.value.field == "health_check.interval_s"
            assert endpoint.hits == 0
        finally:
            probe.close()


def test_wrong_types_are_refused() -> None:
    probe = LocalProbe()
    try:
        with pytest.raises(InvalidInput) as excinfo:
            probe.expected_detection_s("http")  # type: ignore[arg-type]
        assert excinfo.value.field == "health_check"
        with pytest.raises(InvalidInput):
            probe.status(5)  # type: ignore[arg-type]
    finally:
        probe.close()
    with pytest.raises(InvalidInput):
        LocalProbe(ssl_context="ca.pem")  # type: ignore[arg-type]


def test_without_the_test_ca_https_is_unhealthy() -> None:
    """The default context trusts the system store only: the test CA's certificate fails."""
    with LoopbackEndpoint("https") as endpoint:
        probe = LocalProbe()
        try:
            probe.ensure(ProbeTarget("tls", endpoint.address, fast_check("https", endpoint.port)))
            _wait(probe, "tls", HealthState.UNHEALTHY)
            assert "certificate" in probe.status("tls").detail
        finally:
            probe.close()


def test_close_stops_probing_and_refuses_new_checks() -> None:
    with LoopbackEndpoint("http") as endpoint:
        probe = LocalProbe()
        target = ProbeTarget("web", endpoint.address, fast_check("http", endpoint.port))
        probe.ensure(target)
        _wait(probe, "web", HealthState.HEALTHY)
        probe.close()
        probe.close()
        hits = endpoint.hits
        time.sleep(0.3)
        assert endpoint.hits == hits
        assert probe.status("web").state is HealthState.HEALTHY
        with pytest.raises(Unavailable):
            probe.ensure(target)


def test_delete_stops_probing() -> None:
    with LoopbackEndpoint("http") as endpoint:
        probe = LocalProbe()
        try:
            probe.ensure(ProbeTarget("web", endpoint.address, fast_check("http", endpoint.port)))
            _wait(probe, "web", HealthState.HEALTHY)
            probe.delete("web")
            time.sleep(0.05)  # a probe in flight may still land
            hits = endpoint.hits
            time.sleep(0.3)
            assert endpoint.hits == hits
            assert probe.list() == []
        finally:
            probe.close()
