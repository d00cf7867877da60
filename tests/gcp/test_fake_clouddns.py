"""The Cloud DNS + Compute fake as users see it: Google's JSON shapes and errors through
google-api-python-client, Compute's limits, atomic changes, and DNS answers by health."""

from __future__ import annotations

import time

import pytest
from dnslib import DNSRecord
from googleapiclient.errors import HttpError

from multiregion.model import HealthState
from multiregion.testing.endpoints import start_endpoints
from multiregion.testing.fakes.clouddns import CloudDnsFake
from tests.gcp.conftest import create_zone, fresh_project, raw_apis

CHECK_URL = "https://www.googleapis.com/compute/v1/projects/{}/global/healthChecks/{}"


def _status(exc: pytest.ExceptionInfo[HttpError]) -> int:
    return int(exc.value.resp.status)


def _ask(fake: CloudDnsFake, name: str) -> list[str]:
    host, port = fake.dns_address
    reply = DNSRecord.parse(DNSRecord.question(name, "A").send(host, port, timeout=2))
    return [str(rr.rdata) for rr in reply.rr]


def test_compute_limits_on_source_regions(clouddns_fake: CloudDnsFake) -> None:
    project = fresh_project()
    _, compute = raw_apis(clouddns_fake)
    body = {
        "name": "two-regions",
        "type": "HTTP",
        "checkIntervalSec": 30,
        "sourceRegions": ["us-east1", "us-west1"],
        "httpHealthCheck": {"port": 80},
    }
    with pytest.raises(HttpError) as caught:
        compute.healthChecks().insert(project=project, body=body).execute()
    assert _status(caught) == 400
    body["sourceRegions"] = ["us-east1", "us-west1", "europe-west1"]
    body["checkIntervalSec"] = 10
    with pytest.raises(HttpError) as caught:
        compute.healthChecks().insert(project=project, body=body).execute()
    assert _status(caught) == 400
    body["checkIntervalSec"] = 30
    operation = compute.healthChecks().insert(project=project, body=body).execute()
    assert operation["status"] == "DONE"
    with pytest.raises(HttpError) as caught:
        compute.healthChecks().insert(project=project, body=body).execute()
    assert _status(caught) == 409


def test_changes_are_atomic_and_deletions_must_match(clouddns_fake: CloudDnsFake) -> None:
    project = fresh_project()
    create_zone(clouddns_fake, project, "zone", "atomic.test")
    dns, _ = raw_apis(clouddns_fake)
    record = {"name": "a.atomic.test.", "type": "A", "ttl": 60, "rrdatas": ["127.0.0.5"]}
    dns.changes().create(
        project=project, managedZone="zone", body={"additions": [record]}
    ).execute()
    stale = {**record, "ttl": 30}
    other = {"name": "b.atomic.test.", "type": "A", "ttl": 60, "rrdatas": ["127.0.0.6"]}
    change = {"additions": [other], "deletions": [stale]}
    with pytest.raises(HttpError) as caught:
        dns.changes().create(project=project, managedZone="zone", body=change).execute()
    assert _status(caught) == 412
    names = [
        r["name"]
        for r in dns.resourceRecordSets()
        .list(project=project, managedZone="zone")
        .execute()["rrsets"]
    ]
    assert "b.atomic.test." not in names
    with pytest.raises(HttpError) as caught:
        dns.changes().create(
            project=project, managedZone="zone", body={"additions": [record]}
        ).execute()
    assert _status(caught) == 409
    assert _ask(clouddns_fake, "a.atomic.test") == ["127.0.0.5"]


def test_primary_backup_fails_over_when_the_primary_stops(clouddns_fake: CloudDnsFake) -> None:
    project = fresh_project()
    create_zone(clouddns_fake, project, "zone", "failover.test")
    dns, compute = raw_apis(clouddns_fake)
    primary, backup = start_endpoints(2)
    try:
        check = {
            "name": "web",
            "type": "HTTP",
            "checkIntervalSec": 30,
            "timeoutSec": 10,
            "unhealthyThreshold": 2,
            "healthyThreshold": 1,
            "sourceRegions": ["us-east1", "us-west1", "europe-west1"],
            "httpHealthCheck": {"port": primary.port},
        }
        compute.healthChecks().insert(project=project, body=check).execute()
        record = {
            "name": "www.failover.test.",
            "type": "A",
            "ttl": 30,
            "routingPolicy": {
                "healthCheck": CHECK_URL.format(project, "web"),
                "primaryBackup": {
                    "primaryTargets": {"externalEndpoints": [primary.address]},
                    "backupGeoTargets": {
                        "items": [
                            {
                                "location": "us-west1",
                                "healthCheckedTargets": {"externalEndpoints": [backup.address]},
                            }
                        ]
                    },
                    "trickleTraffic": 0.0,
                },
            },
        }
        dns.changes().create(
            project=project, managedZone="zone", body={"additions": [record]}
        ).execute()
        assert _ask(clouddns_fake, "www.failover.test") == [primary.address]
        primary.stop()
        deadline = time.monotonic() + 4
        while _ask(clouddns_fake, "www.failover.test") != [backup.address]:
            assert time.monotonic() < deadline, "no failover"
            time.sleep(0.05)
        assert clouddns_fake.health(project, "web")[primary.address] is HealthState.UNHEALTHY
        with pytest.raises(HttpError) as caught:
            compute.healthChecks().delete(project=project, healthCheck="web").execute()
        assert _status(caught) == 400, "a check in use by a record set cannot be deleted"
    finally:
        primary.close()
        backup.close()


def test_unknown_resources_are_404(clouddns_fake: CloudDnsFake) -> None:
    dns, compute = raw_apis(clouddns_fake)
    with pytest.raises(HttpError) as caught:
        dns.managedZones().get(project="proj-nobody", managedZone="none").execute()
    assert _status(caught) == 404
    with pytest.raises(HttpError) as caught:
        compute.healthChecks().get(project="proj-nobody", healthCheck="none").execute()
    assert _status(caught) == 404


def test_the_fake_starts_and_stops_as_a_context_manager() -> None:
    with CloudDnsFake(time_scale=0.5) as fake:
        assert fake.url.startswith("http://127.0.0.1:")
        dns, _ = raw_apis(fake)
        assert dns.managedZones().list(project="proj-solo").execute()["managedZones"] == []
    with pytest.raises(ValueError, match="time_scale"):
        CloudDnsFake(time_scale=0)


@pytest.mark.parametrize(
    "routing",
    [
        {"geo": {"items": [{"location": "moon-central1", "rrdatas": ["127.0.0.5"]}]}},
        {"geo": {"items": [{"location": "eu-west-1", "rrdatas": ["127.0.0.5"]}]}},
    ],
)
def test_locations_that_are_no_google_cloud_region_are_refused(
    clouddns_fake: CloudDnsFake, routing: dict[str, object]
) -> None:
    project = fresh_project()
    create_zone(clouddns_fake, project, "zone", "where.test")
    dns, _ = raw_apis(clouddns_fake)
    record = {"name": "w.where.test.", "type": "A", "ttl": 60, "routingPolicy": routing}
    with pytest.raises(HttpError) as caught:
        dns.changes().create(
            project=project, managedZone="zone", body={"additions": [record]}
        ).execute()
    assert _status(caught) == 400
    good = {"geo": {"items": [{"location": "europe-north2", "rrdatas": ["127.0.0.5"]}]}}
    record["routingPolicy"] = good
    dns.changes().create(
        project=project, managedZone="zone", body={"additions": [record]}
    ).execute()


def test_source_regions_must_be_google_cloud_regions(clouddns_fake: CloudDnsFake) -> None:
    _, compute = raw_apis(clouddns_fake)
    body = {
        "name": "nowhere",
        "type": "HTTP",
        "checkIntervalSec": 30,
        "sourceRegions": ["us-east1", "us-west1", "mars-north1"],
        "httpHealthCheck": {"port": 80},
    }
    with pytest.raises(HttpError) as caught:
        compute.healthChecks().insert(project=fresh_project(), body=body).execute()
    assert _status(caught) == 400
