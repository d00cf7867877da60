"""The Cloud DNS v1 and Compute v1 REST clients the router and the probe share.

google-api-python-client with the discovery documents it ships (no network needed to build
them); google-cloud-dns cannot express routing policies. ``endpoint`` replaces Google's
``https://dns.googleapis.com/`` and ``https://compute.googleapis.com/`` roots, for the fake
(which serves ``dns/v1/...`` and ``compute/v1/...`` under one root, as Google's URLs do).
"""

from __future__ import annotations

import json
import threading
import time
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import quote

import google_auth_httplib2  # type: ignore[import-untyped]
import httplib2  # type: ignore[import-untyped]
from googleapiclient.discovery import build

from multiregion import validate
from multiregion.errors import InvalidInput, MultiregionError, NotFound, Unavailable, Unsupported
from multiregion.providers.gcp import connection
from multiregion.providers.gcp.errors import translated

COMPUTE_URL = "https://www.googleapis.com/compute/v1/"
_OPERATION_WAIT_S = 300.0


@cache
def gcp_regions() -> dict[str, Any]:
    """Google Cloud's regions, from one dated data file (``data/regions.json``, sources inside)."""
    text = resources.files("multiregion.providers.gcp").joinpath("data/regions.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def gcp_region(field: str, value: str) -> str:
    """A Google Cloud region: Cloud DNS geo and backup locations, Compute source regions."""
    if value not in gcp_regions()["regions"]:
        raise InvalidInput(
            field, f"{value!r} is no Google Cloud region (list of {gcp_regions()['retrieved']})"
        )
    return value


class RestApis:
    """Authorised DNS and Compute clients for one project."""

    def __init__(
        self,
        *,
        project: str,
        endpoint: str | None,
        credentials: Any,
        timeout_s: float,
        num_retries: int,
    ) -> None:
        self.project = connection.project_id(project)
        self.endpoint = None if endpoint is None else connection.endpoint_url("endpoint", endpoint)
        self.emulated = self.endpoint is not None and connection.is_loopback_url(self.endpoint)
        self.timeout_s = validate.seconds("timeout_s", timeout_s, 0, 600)
        self.num_retries = validate.int_range("num_retries", num_retries, 0, 10)
        self._credentials = connection.credentials(self.emulated, credentials)
        self._threads = threading.local()
        dns_options = compute_options = None
        if self.endpoint is not None:  # compute's method paths leave out its service path
            dns_options = {"api_endpoint": self.endpoint}
            compute_options = {"api_endpoint": self.endpoint + "compute/v1/"}
        self.dns = build(
            "dns", "v1", http=self._http(), client_options=dns_options, static_discovery=True
        )
        self.compute = build(
            "compute",
            "v1",
            http=self._http(),
            client_options=compute_options,
            static_discovery=True,
        )

    def _http(self) -> Any:
        return google_auth_httplib2.AuthorizedHttp(
            self._credentials, http=httplib2.Http(timeout=self.timeout_s)
        )

    def _thread_http(self) -> Any:
        """This thread's own connection: httplib2 is not thread-safe, and one ``Http`` shared
        by threads mixes their responses up or hangs (google-api-python-client's thread-safety
        guide: a ``Http`` per thread, passed to ``execute``)."""
        http = getattr(self._threads, "http", None)
        if http is None:
            http = self._threads.http = self._http()
        return http

    def call(self, request: Any, operation: str) -> Any:
        """Runs one request (with the client's retries of 429 and 5xx), errors translated."""
        with translated(operation):
            return request.execute(http=self._thread_http(), num_retries=self.num_retries)

    def check_url(self, name: str) -> str:
        return f"{COMPUTE_URL}projects/{self.project}/global/healthChecks/{name}"

    def wait(self, operation: dict[str, Any], what: str) -> None:
        """Waits for a global Compute operation to finish; raises its error if it failed."""
        deadline = time.monotonic() + _OPERATION_WAIT_S
        while operation.get("status") != "DONE":
            if time.monotonic() > deadline:
                raise Unavailable(f"{what}: operation {operation.get('name')} did not finish")
            time.sleep(1.0)
            operation = self.call(
                self.compute.globalOperations().get(
                    project=self.project, operation=operation["name"]
                ),
                "globalOperations.get",
            )
        if operation.get("error"):
            codes = [e.get("code", "") for e in operation["error"].get("errors", [])]
            raise MultiregionError(f"{what} failed: {', '.join(codes)}")

    def zone(self, name: str) -> dict[str, Any]:
        zone: dict[str, Any] = self.call(
            self.dns.managedZones().get(project=self.project, managedZone=name),
            "managedZones.get",
        )
        return zone

    def rrsets(self, zone: str, name: str | None = None) -> list[dict[str, Any]]:
        """Every record set of ``zone`` (or only those named ``name``), following pages."""
        found: list[dict[str, Any]] = []
        request = self.dns.resourceRecordSets().list(
            project=self.project, managedZone=zone, **({} if name is None else {"name": name})
        )
        while request is not None:
            page = self.call(request, "resourceRecordSets.list")
            found.extend(page.get("rrsets", []))
            request = self.dns.resourceRecordSets().list_next(request, page)
        return found

    def change(
        self, zone: str, additions: list[dict[str, Any]], deletions: list[dict[str, Any]]
    ) -> None:
        """One atomic change; Cloud DNS refuses it whole (412) if a deletion is stale."""
        if not additions and not deletions:
            return
        body = {"additions": additions, "deletions": deletions}
        self.call(
            self.dns.changes().create(project=self.project, managedZone=zone, body=body),
            "changes.create",
        )

    def fake_health(self, check: str) -> dict[str, Any]:
        """Verdicts from the fake's own resource (Google exposes none for external endpoints)."""
        if self.endpoint is None or not self.emulated:
            raise Unsupported("health verdicts are readable from the project's fake only")
        url = (
            f"{self.endpoint}fake/v1/projects/{quote(self.project)}/global/healthChecks/"
            f"{quote(check)}/health"
        )
        with translated("fake health"):
            response, content = self._http().request(url, "GET")
        if int(response.status) == 404:
            raise NotFound(f"health check {check} does not exist")
        result: dict[str, Any] = json.loads(content)
        return result


def _without_kind(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_kind(v) for k, v in value.items() if k != "kind"}
    if isinstance(value, list):
        return [_without_kind(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def comparable(rrset: dict[str, Any]) -> str:
    """A record set as text that ignores what Cloud DNS adds (``kind``, int vs float)."""
    fields = {k: rrset.get(k) for k in ("name", "type", "ttl", "rrdatas", "routingPolicy")}
    return json.dumps(_without_kind(fields), sort_keys=True)
