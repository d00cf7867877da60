"""Route 53 health checks against moto: the contract, plus read-backs with raw boto3.

moto never probes (every check reports success), so the contract's verdict-change tests skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from multiregion.errors import InvalidInput
from multiregion.model import HealthCheck, HealthState, ProbeTarget
from multiregion.providers.aws.healthchecks import Route53Probe
from multiregion.testing.contract.harness import ProbeHarness
from multiregion.testing.contract.probe import ProbeContract
from multiregion.testing.endpoints import LoopbackEndpoint
from tests.aws.conftest import FAST
from tests.aws.route53_rules import Route53Rules


def _probe(route53_rules: Route53Rules, namespace: str) -> Route53Probe:
    return Route53Probe(namespace=namespace, endpoint_url=route53_rules.url, **FAST)


@pytest.fixture
def probe_harness(route53_rules: Route53Rules) -> Iterator[ProbeHarness]:
    served: list[LoopbackEndpoint] = []

    def serve(protocol: str) -> LoopbackEndpoint:
        served.append(LoopbackEndpoint(protocol))
        return served[-1]

    yield ProbeHarness(
        probe=_probe(route53_rules, f"ns-{uuid.uuid4().hex[:8]}"),
        serve=serve,
        check=lambda protocol, port: HealthCheck(
            protocol, port, interval_s=10, failure_threshold=1
        ),
        wait_s=1.0,
        probes_run=False,
    )
    for endpoint in served:
        endpoint.close()


class TestRoute53ProbeContract(ProbeContract):
    pass


def test_checks_are_created_as_asked_and_tagged(
    route53_rules: Route53Rules, raw: Callable[..., Any]
) -> None:
    namespace = f"ns-{uuid.uuid4().hex[:8]}"
    probe = _probe(route53_rules, namespace)
    check = HealthCheck("https", 8443, path="/healthz", interval_s=30, failure_threshold=4)
    check_id = probe.ensure(ProbeTarget("eu", "192.0.2.10", check))
    route53 = raw("route53")
    stored = route53.get_health_check(HealthCheckId=check_id)["HealthCheck"]
    config = stored["HealthCheckConfig"]
    assert (config["Type"], config["IPAddress"], config["Port"]) == ("HTTPS", "192.0.2.10", 8443)
    assert (config["ResourcePath"], config["RequestInterval"], config["FailureThreshold"]) == (
        "/healthz",
        30,
        4,
    )
    assert config["EnableSNI"] is True
    assert stored["CallerReference"].startswith("mrp-")
    tags = route53.list_tags_for_resources(ResourceType="healthcheck", ResourceIds=[check_id])
    found = {t["Key"]: t["Value"] for t in tags["ResourceTagSets"][0]["Tags"]}
    assert found["multiregion-probe"] == "eu"
    assert found["multiregion-namespace"] == namespace
    assert probe.status("eu").state is HealthState.HEALTHY  # moto always says success


def test_other_checks_are_never_touched(
    route53_rules: Route53Rules, raw: Callable[..., Any]
) -> None:
    route53 = raw("route53")
    foreign = route53.create_health_check(
        CallerReference=f"someone-{uuid.uuid4().hex}",
        HealthCheckConfig={"Type": "TCP", "IPAddress": "192.0.2.1", "Port": 22},
    )["HealthCheck"]["Id"]
    mine = _probe(route53_rules, f"ns-{uuid.uuid4().hex[:8]}")
    neighbour = _probe(route53_rules, f"ns-{uuid.uuid4().hex[:8]}")
    neighbour.ensure(ProbeTarget("same-name", "192.0.2.2", HealthCheck("tcp", 22)))
    assert mine.list() == []
    mine.ensure(ProbeTarget("same-name", "192.0.2.3", HealthCheck("tcp", 22)))
    mine.delete("same-name")
    assert neighbour.list() == ["same-name"]
    assert route53.get_health_check(HealthCheckId=foreign)["HealthCheck"]["Id"] == foreign


def test_changing_the_interval_replaces_the_check(
    route53_rules: Route53Rules, raw: Callable[..., Any]
) -> None:
    probe = _probe(route53_rules, f"ns-{uuid.uuid4().hex[:8]}")
    first = probe.ensure(ProbeTarget("x", "192.0.2.4", HealthCheck("http", 80, interval_s=10)))
    second = probe.ensure(ProbeTarget("x", "192.0.2.4", HealthCheck("http", 80, interval_s=30)))
    assert second != first
    assert probe.list() == ["x"]
    listed = raw("route53").list_health_checks()["HealthChecks"]
    assert first not in {c["Id"] for c in listed}


@pytest.mark.parametrize(
    ("check", "field"),
    [
        (HealthCheck("http", 80, interval_s=5), "health_check.interval_s"),
        (HealthCheck("http", 80, expected_status=(200, 299)), "health_check.expected_status"),
        (
            HealthCheck("http", 80, failure_threshold=1, success_threshold=2),
            "health_check.success_threshold",
        ),
    ],
)
def test_what_route53_cannot_do_is_refused_before_any_call(
    route53_rules: Route53Rules, check: HealthCheck, field: str
) -> None:
    probe = _probe(route53_rules, f"ns-{uuid.uuid4().hex[:8]}")
    with pytest.raises(InvalidInput) as excinfo:
        probe.ensure(ProbeTarget("x", "192.0.2.5", check))
    assert excinfo.value.field == field
    assert probe.list() == []
