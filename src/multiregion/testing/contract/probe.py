"""The HealthProbe contract: every probe provider's behaviour, stated once.

A provider runs it by subclassing ``ProbeContract`` in a test module and defining a
``probe_harness`` fixture that returns a ``ProbeHarness``. Checks are addressed by the target's
name: ``status``, ``delete`` and ``list`` speak target names, whatever id ``ensure`` returns.
A protocol or interval the provider's capabilities exclude must be refused with ``InvalidInput``
naming the field. Tests that watch verdicts change skip, saying so, where the backend never
probes (``harness.probes_run`` is False). HTTPS endpoints from ``harness.serve`` carry
certificates from the test CA (``multiregion.testing.endpoints.ca_pem_path()``): the harness
sets the probe up to trust it.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

import attrs
import pytest

from multiregion.errors import InvalidInput, NotFound
from multiregion.interfaces import HealthProbe
from multiregion.model import PROTOCOLS, HealthCheck, HealthState, ProbeTarget
from multiregion.testing.contract.harness import ProbeHarness
from multiregion.testing.contract.hooks import hooks_blocked

HOOKS = ("_ensure", "_status", "_list", "_delete", "_expected_detection_s")
"""The adapter's side of ``HealthProbe``: every service call happens in one of these."""
_POLL_S = 0.02
_NOT_PROBING = "this backend never probes (probes_run=False): verdicts cannot change"


def _name() -> str:
    return f"ct-{uuid.uuid4().hex[:10]}"


def _protocol(harness: ProbeHarness) -> str:
    """HTTP when the provider has it (it can fail without stopping), else what it has."""
    protocols = harness.probe.capabilities.protocols
    return next(p for p in ("http", "https", "tcp") if p in protocols)


def _target(harness: ProbeHarness, protocol: str) -> ProbeTarget:
    endpoint = harness.serve(protocol)
    check = harness.check(protocol, endpoint.port)
    return ProbeTarget(name=_name(), address=endpoint.address, check=check)


def _unrunnable_intervals(probe: HealthProbe) -> list[float]:
    """Intervals the probe's capabilities exclude (none where it declares no limit)."""
    caps = probe.capabilities
    bad: list[float] = []
    if caps.intervals_s is not None:
        bad.append(next(v for v in (1.0, 7.0, 45.0, 3600.0) if v not in caps.intervals_s))
    if caps.min_interval_s > 0:
        bad.append(caps.min_interval_s / 2)
    return bad


def _with_interval(check: HealthCheck, interval: float) -> HealthCheck:
    return attrs.evolve(check, interval_s=interval, timeout_s=min(check.timeout_s, interval))


def _wait_for(harness: ProbeHarness, name: str, state: HealthState) -> float:
    """Polls until ``name`` reaches ``state``; returns the seconds it took."""
    start = time.monotonic()
    deadline = start + harness.wait_s
    health = harness.probe.status(name)
    while health.state is not state and time.monotonic() < deadline:
        time.sleep(_POLL_S)
        health = harness.probe.status(name)
    assert health.state is state, (
        f"{name} still {health.state.value} after {harness.wait_s:g}s (last: {health.detail!r})"
    )
    return time.monotonic() - start


class ProbeContract:
    """Subclass it and define the ``probe_harness`` fixture."""

    # ------------------------------------------------------------------ managing checks

    def test_ensure_status_list_delete_round_trip(self, probe_harness: ProbeHarness) -> None:
        probe = probe_harness.probe
        first = _target(probe_harness, _protocol(probe_harness))
        second = attrs.evolve(first, name=_name())
        assert first.name not in probe.list()
        check_id = probe.ensure(first)
        assert isinstance(check_id, str)
        assert check_id
        probe.ensure(second)
        names = probe.list()
        assert first.name in names
        assert second.name in names
        assert names == sorted(names)
        health = probe.status(first.name)
        assert health.name == first.name
        assert health.state in set(HealthState)
        probe.delete(first.name)
        assert first.name not in probe.list()
        assert second.name in probe.list()
        with pytest.raises(NotFound):
            probe.status(first.name)
        with pytest.raises(NotFound):
            probe.delete(first.name)

    def test_unknown_check_is_not_found(self, probe_harness: ProbeHarness) -> None:
        with pytest.raises(NotFound):
            probe_harness.probe.status("ct-never-created")
        with pytest.raises(NotFound):
            probe_harness.probe.delete("ct-never-created")

    def test_ensure_twice_is_idempotent(self, probe_harness: ProbeHarness) -> None:
        probe = probe_harness.probe
        target = _target(probe_harness, _protocol(probe_harness))
        first = probe.ensure(target)
        assert probe.ensure(target) == first
        assert probe.list().count(target.name) == 1
        threshold = target.check.failure_threshold % 10 + 1
        changed = attrs.evolve(
            target, check=attrs.evolve(target.check, failure_threshold=threshold)
        )
        assert probe.ensure(changed) == first
        assert probe.list().count(target.name) == 1

    def test_ensure_refuses_what_is_not_a_target(self, probe_harness: ProbeHarness) -> None:
        probe = probe_harness.probe
        with hooks_blocked(probe, HOOKS), pytest.raises(InvalidInput) as excinfo:
            probe.ensure("http://127.0.0.1/")  # type: ignore[arg-type]
        assert excinfo.value.field == "target"

    def test_interval_the_provider_cannot_run_is_refused(self, probe_harness: ProbeHarness) -> None:
        probe = probe_harness.probe
        target = _target(probe_harness, _protocol(probe_harness))
        bad = _unrunnable_intervals(probe)
        if not bad:  # no limits declared: any valid interval must be taken, even an hour
            probe.ensure(attrs.evolve(target, check=attrs.evolve(target.check, interval_s=3600)))
            assert target.name in probe.list()
            return
        for interval in bad:
            check = _with_interval(target.check, interval)
            with hooks_blocked(probe, HOOKS), pytest.raises(InvalidInput) as excinfo:
                probe.ensure(attrs.evolve(target, check=check))
            assert excinfo.value.field == "health_check.interval_s"
            with hooks_blocked(probe, HOOKS), pytest.raises(InvalidInput) as excinfo:
                probe.expected_detection_s(check)
            assert excinfo.value.field == "health_check.interval_s"
        assert target.name not in probe.list()

    def test_bad_names_and_checks_are_refused_before_anything_changes(
        self, probe_harness: ProbeHarness
    ) -> None:
        probe = probe_harness.probe
        target = _target(probe_harness, _protocol(probe_harness))
        probe.ensure(target)
        before = probe.list()
        bad: tuple[Any, ...] = ("", "not a name", "x" * 64, 5, None, target)
        not_checks: tuple[Any, ...] = ("http", None, target)
        with hooks_blocked(probe, HOOKS):
            for name in bad:
                for call in (probe.status, probe.delete):
                    with pytest.raises(InvalidInput) as excinfo:
                        call(name)
                    assert excinfo.value.field == "name", f"{call.__name__}({name!r})"
            for check in not_checks:
                with pytest.raises(InvalidInput) as excinfo:
                    probe.expected_detection_s(check)
                assert excinfo.value.field == "health_check"
        assert probe.list() == before

    # ------------------------------------------------------------------ verdicts

    @pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
    def test_healthy_endpoint_becomes_healthy(
        self, probe_harness: ProbeHarness, protocol: str
    ) -> None:
        probe = probe_harness.probe
        target = _target(probe_harness, protocol)
        if protocol not in probe.capabilities.protocols:
            with hooks_blocked(probe, HOOKS), pytest.raises(InvalidInput) as excinfo:
                probe.ensure(target)
            assert excinfo.value.field == "health_check.protocol"
            assert target.name not in probe.list()
            return
        probe.ensure(target)
        if not probe_harness.probes_run:
            pytest.skip(_NOT_PROBING)
        _wait_for(probe_harness, target.name, HealthState.HEALTHY)
        probe.ensure(target)  # bringing an unchanged check up to date keeps its verdict
        assert probe.status(target.name).state is HealthState.HEALTHY

    @pytest.mark.parametrize("outage", ["stop", "fail"])
    def test_endpoint_down_becomes_unhealthy_then_recovers(
        self, probe_harness: ProbeHarness, outage: str
    ) -> None:
        probe = probe_harness.probe
        if not probe_harness.probes_run:
            pytest.skip(_NOT_PROBING)
        protocol = _protocol(probe_harness)
        endpoint = probe_harness.serve(protocol)
        check = probe_harness.check(protocol, endpoint.port)
        target = ProbeTarget(name=_name(), address=endpoint.address, check=check)
        probe.ensure(target)
        _wait_for(probe_harness, target.name, HealthState.HEALTHY)
        if outage == "stop":
            endpoint.stop()
        else:
            endpoint.fail()
        _wait_for(probe_harness, target.name, HealthState.UNHEALTHY)
        health = probe.status(target.name)
        assert health.detail
        if outage == "stop":
            endpoint.start()
        else:
            endpoint.recover()
        _wait_for(probe_harness, target.name, HealthState.HEALTHY)

    def test_flapping_endpoint_never_goes_unhealthy(self, probe_harness: ProbeHarness) -> None:
        """Failing every other request, under a threshold of 3, never trips the check."""
        probe = probe_harness.probe
        if not probe_harness.probes_run:
            pytest.skip(_NOT_PROBING)
        protocol = _protocol(probe_harness)
        if protocol == "tcp":
            pytest.skip("a TCP endpoint cannot fail one request in two")
        endpoint = probe_harness.serve(protocol)
        check = probe_harness.check(protocol, endpoint.port)
        check = attrs.evolve(check, failure_threshold=max(3, check.failure_threshold))
        target = ProbeTarget(name=_name(), address=endpoint.address, check=check)
        probe.ensure(target)
        _wait_for(probe_harness, target.name, HealthState.HEALTHY)
        answers = itertools.count()
        endpoint.respond = lambda _m, _p: (503, b"") if next(answers) % 2 else (200, b"")
        hits = endpoint.hits
        deadline = time.monotonic() + probe_harness.wait_s
        while time.monotonic() < deadline:
            health = probe.status(target.name)
            assert health.state is HealthState.HEALTHY, f"flipped: {health}"
            time.sleep(_POLL_S)
        assert endpoint.hits - hits >= 4, "too few probes arrived to show anything"

    # ------------------------------------------------------------------ expectations

    def test_expected_detection_grows_with_interval_and_threshold(
        self, probe_harness: ProbeHarness
    ) -> None:
        probe: HealthProbe = probe_harness.probe
        caps = probe.capabilities
        base = probe_harness.check(_protocol(probe_harness), 8080)
        expected = probe.expected_detection_s(base)
        assert expected > 0
        threshold = min(base.failure_threshold + 1, 10)
        if threshold > base.failure_threshold:
            stricter = attrs.evolve(base, failure_threshold=threshold)
            assert probe.expected_detection_s(stricter) > expected
        longer = [v for v in caps.intervals_s or (base.interval_s * 2,) if v > base.interval_s]
        assert longer, "no interval longer than the quickest one: nothing to compare"
        slower: HealthCheck = attrs.evolve(base, interval_s=longer[0])
        assert probe.expected_detection_s(slower) > expected
