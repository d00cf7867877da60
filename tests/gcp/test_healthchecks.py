"""ComputeHealthProbe on the Cloud DNS + Compute fake: the probe contract, and read-backs of
the health check and probe record set through the raw REST clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from multiregion.errors import InvalidInput, NotFound
from multiregion.model import HealthCheck, ProbeTarget
from multiregion.providers.gcp.healthchecks import ComputeHealthProbe
from multiregion.testing.contract.harness import ProbeHarness
from multiregion.testing.contract.probe import ProbeContract
from multiregion.testing.endpoints import LoopbackEndpoint
from multiregion.testing.fakes.clouddns import CloudDnsFake
from tests.gcp.conftest import create_zone, fresh_project, raw_apis

ZONE = "probes-zone"


def gcp_check(protocol: str, port: int) -> HealthCheck:
    """The quickest check Compute runs from three source regions: every 30 s (the timeout
    as long as it may be: on the fake's clock 10 s is 0.1 s, which a loaded machine can miss
    on loopback, and a missed answer counts as a failure)."""
    return HealthCheck(
        protocol,
        port,
        interval_s=30,
        timeout_s=30,
        failure_threshold=2,
        success_threshold=1,
        expected_status=(200, 200),
    )


def open_probe(fake: CloudDnsFake, project: str, **settings: Any) -> ComputeHealthProbe:
    return ComputeHealthProbe(
        project=project, zone=ZONE, endpoint=fake.url, num_retries=0, timeout_s=10, **settings
    )


@pytest.fixture
def project(clouddns_fake: CloudDnsFake) -> str:
    project = fresh_project()
    create_zone(clouddns_fake, project, ZONE, "probes.example.test")
    return project


@pytest.fixture
def probe_harness(clouddns_fake: CloudDnsFake, project: str) -> Iterator[ProbeHarness]:
    endpoints: list[LoopbackEndpoint] = []

    def serve(protocol: str) -> LoopbackEndpoint:
        endpoint = LoopbackEndpoint(protocol, "127.0.0.1")
        endpoints.append(endpoint)
        return endpoint

    probe = open_probe(clouddns_fake, project)
    yield ProbeHarness(probe=probe, serve=serve, check=gcp_check, wait_s=3.0)
    for name in probe.list():
        probe.delete(name)
    for endpoint in endpoints:
        endpoint.close()


class TestComputeHealthProbe(ProbeContract):
    pass


def test_ensure_creates_the_check_and_a_health_checked_record(
    clouddns_fake: CloudDnsFake, project: str
) -> None:
    probe = open_probe(clouddns_fake, project)
    check = HealthCheck(
        "https", 8443, path="/healthz", host="app.example.test", interval_s=60, timeout_s=7,
        failure_threshold=4, success_threshold=3, expected_status=(200, 200),
    )  # fmt: skip
    assert probe.ensure(ProbeTarget("web-1", "127.0.0.9", check)) == "mr-web-1"
    dns, compute = raw_apis(clouddns_fake)
    stored = compute.healthChecks().get(project=project, healthCheck="mr-web-1").execute()
    assert stored["type"] == "HTTPS"
    assert stored["httpsHealthCheck"]["port"] == 8443
    assert stored["httpsHealthCheck"]["requestPath"] == "/healthz"
    assert stored["httpsHealthCheck"]["host"] == "app.example.test"
    assert (stored["checkIntervalSec"], stored["timeoutSec"]) == (60, 7)
    assert (stored["unhealthyThreshold"], stored["healthyThreshold"]) == (4, 3)
    assert stored["sourceRegions"] == ["us-central1", "us-east1", "europe-west1"]
    assert json.loads(stored["description"])["address"] == "127.0.0.9"
    records = dns.resourceRecordSets().list(project=project, managedZone=ZONE).execute()
    [record] = [r for r in records["rrsets"] if r["name"].startswith("mr-web-1.")]
    policy = record["routingPolicy"]
    assert policy["healthCheck"].endswith(f"/projects/{project}/global/healthChecks/mr-web-1")
    assert policy["wrr"]["items"][0]["healthCheckedTargets"]["externalEndpoints"] == ["127.0.0.9"]
    probe.delete("web-1")
    with pytest.raises(Exception, match="not found"):
        compute.healthChecks().get(project=project, healthCheck="mr-web-1").execute()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"interval_s": 10, "timeout_s": 5}, "health_check.interval_s"),
        ({"interval_s": 30.5}, "health_check.interval_s"),
        ({"interval_s": 600, "timeout_s": 5}, "health_check.interval_s"),
        ({"timeout_s": 2.5}, "health_check.timeout_s"),
        ({"expected_status": (200, 399)}, "health_check.expected_status"),
    ],
)
def test_what_compute_cannot_run_is_refused_before_any_call(
    clouddns_fake: CloudDnsFake, project: str, change: dict[str, Any], field: str
) -> None:
    probe = open_probe(clouddns_fake, project)
    fields: dict[str, Any] = {
        "interval_s": 30, "timeout_s": 5, "expected_status": (200, 200), **change
    }  # fmt: skip
    with pytest.raises(InvalidInput) as caught:
        probe.ensure(ProbeTarget("web", "127.0.0.1", HealthCheck("http", 80, **fields)))
    assert caught.value.field == field
    assert probe.list() == []


def test_without_source_regions_short_intervals_are_allowed(
    clouddns_fake: CloudDnsFake, project: str
) -> None:
    probe = open_probe(clouddns_fake, project, source_regions=None)
    assert probe.capabilities.min_interval_s == 1
    check = HealthCheck("tcp", 80, interval_s=5, timeout_s=5)
    probe.ensure(ProbeTarget("tcp-5", "127.0.0.1", check))
    _, compute = raw_apis(clouddns_fake)
    stored = compute.healthChecks().get(project=project, healthCheck="mr-tcp-5").execute()
    assert "sourceRegions" not in stored
    assert stored["checkIntervalSec"] == 5


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"source_regions": ["us-east1", "us-west1"]}, "source_regions"),
        ({"source_regions": "us-east1"}, "source_regions"),
        ({"source_regions": ["us-east1", "us-west1", "mars-north1"]}, "source_regions"),
        ({"endpoint": "http://dns.example.com/"}, "endpoint"),
        ({"project": "Bad_Project"}, "project"),
    ],
)
def test_bad_settings_are_refused(
    clouddns_fake: CloudDnsFake, settings: dict[str, Any], field: str
) -> None:
    args: dict[str, Any] = {"project": "proj-settings", "zone": ZONE, "endpoint": clouddns_fake.url}
    with pytest.raises(InvalidInput) as caught:
        ComputeHealthProbe(**{**args, **settings})
    assert caught.value.field == field


def test_host_names_and_odd_target_names_are_refused(
    clouddns_fake: CloudDnsFake, project: str
) -> None:
    probe = open_probe(clouddns_fake, project)
    check = gcp_check("http", 80)
    with pytest.raises(InvalidInput) as caught:
        probe.ensure(ProbeTarget("web", "origin.example.test", check))
    assert caught.value.field == "target.address"
    with pytest.raises(InvalidInput) as caught:
        probe.ensure(ProbeTarget("Web_1", "127.0.0.1", check))
    assert caught.value.field == "target.name"
    with pytest.raises(NotFound):
        probe.status("web")


def test_only_the_fake_reports_verdicts(clouddns_fake: CloudDnsFake, project: str) -> None:
    """Real Compute health checks on external endpoints report to Cloud Logging only; the probe
    says so up front, so `multiregion status` does not wait for a verdict that cannot come."""
    from google.auth.credentials import AnonymousCredentials

    assert open_probe(clouddns_fake, project).capabilities.reports_status is True
    real = ComputeHealthProbe(project=project, zone=ZONE, credentials=AnonymousCredentials())
    assert real.capabilities.reports_status is False
