"""A validating layer in front of moto: Route 53's own rules, which moto does not apply.

A loopback HTTP proxy forwards every request to moto unchanged, except that Route 53 requests
are first checked the way Route 53 checks them (API reference: ChangeResourceRecordSets,
ResourceRecord, GeoLocation, ResourceRecordSet.Region, CreateHealthCheck) and refused with
Route 53's error codes:

- a change batch is atomic and validated as a whole: CREATE of an existing record set, DELETE
  of a missing or different one, mixed routing policies under one name and type, more than
  1,000 records or 32,000 value characters (an UPSERT counts twice), a value over 4,000
  characters, a TXT string over 255, a geolocation or latency region Route 53 does not know;
- CreateHealthCheck honours CallerReference: the same reference and settings return the check
  made before; a reference of a deleted check, or with other settings, is HealthCheckAlreadyExists.

It also records each operation (name, start, end), so tests can count requests and see
whether they overlapped.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import attrs
import boto3
from botocore.config import Config

from multiregion.providers.aws.route53_rules import data, limit

NS = "https://route53.amazonaws.com/doc/2013-04-01/"
_Q = f"{{{NS}}}"
_RRSET = re.compile(r"^/2013-04-01/hostedzone/([^/]+)/rrset/?$")
_CHECK = re.compile(r"^/2013-04-01/healthcheck/([^/?]+)$")
_TXT_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
POLICY_FIELDS = ("Failover", "Weight", "Region", "GeoLocation")


@attrs.define
class Call:
    operation: str
    started: float
    ended: float = float("inf")


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


def _operation(method: str, path: str) -> str:
    if _RRSET.match(path):
        return "ChangeResourceRecordSets" if method == "POST" else "ListResourceRecordSets"
    if path.rstrip("/") == "/2013-04-01/healthcheck":
        return "CreateHealthCheck" if method == "POST" else "ListHealthChecks"
    if _CHECK.match(path):
        return {"POST": "UpdateHealthCheck", "DELETE": "DeleteHealthCheck"}.get(
            method, "GetHealthCheck"
        )
    return f"{method} {path}"


def _text(element: ET.Element | None, name: str) -> str | None:
    if element is None:
        return None
    found = element.find(_Q + name)
    return None if found is None else (found.text or "")


def _record(element: ET.Element) -> dict[str, Any]:
    """A ResourceRecordSet element as the fields Route 53 compares."""
    record: dict[str, Any] = {}
    for child in element:
        tag = child.tag.removeprefix(_Q)
        if tag == "ResourceRecords":
            record[tag] = sorted(_text(r, "Value") or "" for r in child)
        elif len(child):
            record[tag] = {c.tag.removeprefix(_Q): c.text for c in child}
        else:
            record[tag] = child.text
    record["Name"] = record["Name"].rstrip(".").lower() + "."
    return record


def _xml_text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _from_boto(record: dict[str, Any]) -> dict[str, Any]:
    """A record set as listed by boto3, in the shape of ``_record``."""
    found: dict[str, Any] = {}
    for key, value in record.items():
        if key == "ResourceRecords":
            found[key] = sorted(v["Value"] for v in value)
        elif isinstance(value, dict):
            found[key] = {k: _xml_text(v) for k, v in value.items()}
        else:
            found[key] = _xml_text(value)
    found["Name"] = found["Name"].lower()
    return found


def _key(record: dict[str, Any]) -> tuple[str, str, str]:
    return record["Name"], record["Type"], record.get("SetIdentifier") or ""


class Route53Rules:
    """The proxy: ``url`` for the adapters, ``calls`` for the tests."""

    def __init__(self, moto_url: str) -> None:
        self._moto = urlsplit(moto_url)
        self._reader = boto3.session.Session().client(
            "route53",
            region_name="us-east-1",
            endpoint_url=moto_url,
            config=Config(retries={"max_attempts": 1}),
        )
        self.calls: list[Call] = []
        self._batch_lock = threading.Lock()
        self._local = threading.local()
        self._checks_lock = threading.Lock()
        self._references: dict[str, tuple[str, str]] = {}
        """CallerReference -> (settings, check id) of every check created through here."""
        self._deleted: set[str] = set()
        self.batch_barrier: threading.Barrier | None = None
        """When set, change batches wait there: concurrent applies meet before either writes."""
        rules = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: botocore reuses its connections
            disable_nagle_algorithm = True  # else each answer waits out a delayed ACK

            def log_message(self, *_args: Any) -> None:
                pass

            def _any(self) -> None:
                rules._handle(self)

            do_GET = do_POST = do_DELETE = do_PUT = do_HEAD = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Route53Rules:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def count(self, operation: str) -> int:
        return sum(1 for c in self.calls if c.operation == operation)

    def max_overlap(self, operation: str) -> int:
        """The most ``operation`` requests that were in flight at once."""
        spans = [c for c in self.calls if c.operation == operation]
        return max(
            (sum(1 for o in spans if o.started < c.ended and c.started < o.ended) for c in spans),
            default=0,
        )

    # ------------------------------------------------------------------ plumbing

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        path = urlsplit(handler.path).path
        operation = _operation(handler.command, path)
        call = Call(operation, started)
        self.calls.append(call)
        try:
            if operation == "ChangeResourceRecordSets":
                if self.batch_barrier is not None:
                    self.batch_barrier.wait()
                with self._batch_lock:
                    self._check_batch(_RRSET.match(path).group(1), body)  # type: ignore[union-attr]
                    self._forward(handler, body)
            elif operation == "CreateHealthCheck":
                self._create_check(handler, body)
            else:
                self._forward(handler, body)
                if operation == "DeleteHealthCheck":
                    self._forget(_CHECK.match(path).group(1))  # type: ignore[union-attr]
        except Refused as refused:
            self._refuse(handler, refused)
        call.ended = time.monotonic()

    def _send_to_moto(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request on this thread's kept-alive connection to moto (opened again once if
        moto closed it)."""
        for attempt in (1, 2):
            connection = getattr(self._local, "moto", None)
            if connection is None:
                connection = http.client.HTTPConnection(
                    self._moto.hostname, self._moto.port, timeout=60
                )
                connection.connect()
                connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._local.moto = connection
            try:
                connection.request(method, path, body=body, headers=headers)
                answer = connection.getresponse()
                return answer.status, answer.getheaders(), answer.read()
            except (http.client.HTTPException, OSError):
                connection.close()
                self._local.moto = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> int:
        headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
        status, answer_headers, answer = self._send_to_moto(
            handler.command, handler.path, body, headers
        )
        self._reply(handler, status, answer_headers, answer)
        return status

    @staticmethod
    def _reply(
        handler: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        handler.send_response(status)
        for name, value in headers:
            if name.lower() not in (
                "content-length",
                "transfer-encoding",
                "connection",
                "server",
                "date",
            ):
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _refuse(self, handler: BaseHTTPRequestHandler, refused: Refused) -> None:
        error = ET.Element("ErrorResponse", xmlns=NS)
        inner = ET.SubElement(error, "Error")
        ET.SubElement(inner, "Type").text = "Sender"
        ET.SubElement(inner, "Code").text = refused.code
        ET.SubElement(inner, "Message").text = str(refused)
        ET.SubElement(error, "RequestId").text = str(uuid.uuid4())
        body = ET.tostring(error, xml_declaration=True, encoding="utf-8")
        self._reply(handler, refused.status, [("Content-Type", "text/xml")], body)

    # ------------------------------------------------------------------ change batches

    def _current(self, zone_id: str) -> dict[tuple[str, str, str], dict[str, Any]]:
        found = {}
        for page in self._reader.get_paginator("list_resource_record_sets").paginate(
            HostedZoneId=zone_id
        ):
            for record in page["ResourceRecordSets"]:
                record = _from_boto(record)
                found[_key(record)] = record
        return found

    def _check_batch(self, zone_id: str, body: bytes) -> None:
        changes = ET.fromstring(body).find(f"{_Q}ChangeBatch/{_Q}Changes")
        assert changes is not None
        records = self._current(zone_id)
        count = chars = 0
        for change in changes:
            action = _text(change, "Action")
            element = change.find(_Q + "ResourceRecordSet")
            assert element is not None
            record = _record(element)
            key = _key(record)
            times = 2 if action == "UPSERT" else 1
            values = record.get("ResourceRecords", [])
            count += times * max(len(values), 1)
            chars += times * sum(len(v) for v in values)
            self._check_record(record)
            if action == "CREATE":
                if key in records:
                    raise self._invalid(
                        f"Tried to create resource record set {key} but it already exists"
                    )
                records[key] = record
            elif action == "DELETE":
                if records.get(key) != record:
                    raise self._invalid(
                        f"Tried to delete resource record set {key} but it was not found "
                        "or the values provided do not match"
                    )
                del records[key]
            else:
                records[key] = record
            self._check_policies(records, key[:2])
        if count > limit("changes_per_batch") or chars > limit("value_chars_per_batch"):
            raise Refused(400, "InvalidChangeBatch", f"{count} records, {chars} characters")

    def _check_policies(
        self, records: dict[tuple[str, str, str], dict[str, Any]], group: tuple[str, str]
    ) -> None:
        """Route 53 applies a batch's changes in order, each against the state so far: no
        change may leave two routing policies under one name and type."""
        kinds = {
            next((f for f in POLICY_FIELDS if f in r), "simple")
            for k, r in records.items()
            if k[:2] == group
        }
        if len(kinds) > 1:
            raise self._invalid(f"RRSet {group} would mix routing policies {sorted(kinds)}")

    @staticmethod
    def _invalid(message: str) -> Refused:
        return Refused(400, "InvalidChangeBatch", message)

    @staticmethod
    def _check_record(record: dict[str, Any]) -> None:
        for value in record.get("ResourceRecords", []):
            if len(value) > limit("value_chars"):
                raise Refused(400, "InvalidInput", f"a value of {len(value)} characters (max 4000)")
            if record["Type"] == "TXT":
                for string in _TXT_STRING.findall(value):
                    if len(string) > limit("txt_string_chars"):
                        raise Refused(400, "InvalidChangeBatch", "TXT character string over 255")
        known = data()
        geo = record.get("GeoLocation")
        if geo is not None:
            country, subdivision = geo.get("CountryCode"), geo.get("SubdivisionCode")
            valid = (
                geo.get("ContinentCode") in known["continents"]
                if "ContinentCode" in geo
                else country == "*"
                or (country in known["countries"] and subdivision is None)
                or subdivision in known["subdivisions"].get(country, ())
            )
            if not valid:
                raise Refused(400, "InvalidInput", f"unknown geolocation {geo}")
        region = record.get("Region")
        if region is not None and region not in known["latency_regions"]:
            raise Refused(400, "InvalidInput", f"{region} is not a valid region")

    # ------------------------------------------------------------------ health checks

    def _create_check(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        request = ET.fromstring(body)
        reference = _text(request, "CallerReference") or ""
        config = request.find(_Q + "HealthCheckConfig")
        assert config is not None
        settings = ET.tostring(config)
        with self._checks_lock:
            if reference in self._deleted:
                raise Refused(409, "HealthCheckAlreadyExists", "the reference of a deleted check")
            if reference in self._references:
                known, check_id = self._references[reference]
                if known != settings.decode():
                    raise Refused(409, "HealthCheckAlreadyExists", "same reference, other settings")
                headers = {
                    k: v
                    for k, v in handler.headers.items()
                    if k.lower() not in ("host", "content-length")
                }
                status, answer_headers, answer = self._send_to_moto(
                    "GET", f"/2013-04-01/healthcheck/{check_id}", b"", headers
                )
                answer = answer.replace(b"GetHealthCheckResponse", b"CreateHealthCheckResponse")
                self._reply(handler, 201, answer_headers, answer)
                return
            headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
            status, answer_headers, answer = self._send_to_moto("POST", handler.path, body, headers)
            if status < 300:
                check_id = _text(ET.fromstring(answer).find(_Q + "HealthCheck"), "Id") or ""
                self._references[reference] = (settings.decode(), check_id)
        self._reply(handler, status, answer_headers, answer)

    def _forget(self, check_id: str) -> None:
        with self._checks_lock:
            for reference, (_settings, known) in list(self._references.items()):
                if known == check_id:
                    self._deleted.add(reference)
                    del self._references[reference]


def started(moto_url: str) -> Iterator[Route53Rules]:
    rules = Route53Rules(moto_url).start()
    try:
        yield rules
    finally:
        rules.stop()
