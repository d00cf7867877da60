"""Notifiers deliver run events, never break a run, and never show a webhook's secrets."""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from multiregion.errors import InvalidInput, Unavailable
from multiregion.failover.notify import (
    Broadcast,
    LogNotifier,
    RunEvent,
    WebhookNotifier,
    deliver,
)
from multiregion.failover.runbook import Runbook, RunContext, Step, StepResult

PATH_SECRET = "T0K3N-in-the-path"
QUERY_SECRET = "q-s3cr3t"
HEADER_SECRET = "Bearer h3ad3r-s3cr3t"
SECRETS = (PATH_SECRET, QUERY_SECRET, HEADER_SECRET)


class Hook:
    """A loopback HTTP server that records POSTed JSON and answers with ``status``."""

    def __init__(self, status: int = 204, location: str | None = None) -> None:
        self.received: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append((self.path, dict(self.headers), json.loads(body)))
                self.send_response(hook.status)
                if location is not None:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                return None

        self.status = status
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/hooks/{PATH_SECRET}?token={QUERY_SECRET}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    yield server
    server.close()


def two_step_runbook(notifier: Any) -> Runbook:
    return Runbook(
        "webhooked",
        [
            Step("status", lambda ctx: StepResult("status page says degraded")),
            Step("restore", lambda ctx: None, role="technical_lead"),
        ],
        roles={"technical_lead": "bo"},
        notify=notifier,
    )


def test_the_webhook_receives_every_event_of_a_run_as_json(hook: Hook, tmp_path: Path) -> None:
    notifier = WebhookNotifier(hook.url(), headers={"Authorization": HEADER_SECRET})
    result = two_step_runbook(notifier).run(tmp_path / "run.jsonl")
    assert result.outcome == "finished"
    kinds = [body["kind"] for _, _, body in hook.received]
    assert kinds == [
        "run-started",
        "step-started",
        "step-finished",
        "step-started",
        "step-finished",
        "run-finished",
    ]
    path, headers, body = hook.received[2]
    assert path == f"/hooks/{PATH_SECRET}?token={QUERY_SECRET}"
    assert headers["Authorization"] == HEADER_SECRET
    assert headers["Content-Type"] == "application/json"
    assert body["runbook"] == "webhooked"
    assert body["step"] == "status"
    assert body["message"] == "status page says degraded"
    assert (body["done"], body["total"]) == (1, 2)
    assert hook.received[3][2]["person"] == "bo"
    journal_text = (tmp_path / "run.jsonl").read_text()
    assert all(secret not in journal_text for secret in SECRETS)


def test_a_failing_webhook_never_breaks_the_run_nor_leaks_its_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Hook(status=500)
    unreachable = Hook()
    unreachable.close()  # nothing listens on its port any more
    try:
        notifiers = [
            WebhookNotifier(broken.url(), headers={"Authorization": HEADER_SECRET}),
            WebhookNotifier(unreachable.url(), timeout_s=2),
        ]
        caplog.set_level(logging.DEBUG)
        for position, notifier in enumerate(notifiers):
            result = two_step_runbook(notifier).run(tmp_path / f"run-{position}.jsonl")
            assert result.outcome == "finished"
            assert result.completed == ("status", "restore")
        assert len(broken.received) == 6  # it was asked every time, and failed every time
    finally:
        broken.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 12
    assert "HTTP 500" in warnings[0].getMessage()
    assert "WebhookNotifier(http://127.0.0.1/...)" in warnings[0].getMessage()
    assert "refused" in warnings[-1].getMessage().lower()
    for secret in SECRETS:
        assert secret not in caplog.text


def test_reprs_and_errors_show_only_scheme_and_host() -> None:
    notifier = WebhookNotifier(
        f"https://hooks.example.com/services/{PATH_SECRET}?token={QUERY_SECRET}",
        headers={"Authorization": HEADER_SECRET},
    )
    assert repr(notifier) == "WebhookNotifier(https://hooks.example.com/...)"
    assert str(notifier) == repr(notifier)
    assert repr(Broadcast(notifier, LogNotifier())) == (
        "Broadcast(WebhookNotifier(https://hooks.example.com/...), "
        "LogNotifier('multiregion.runbook'))"
    )
    bad_urls = {
        f"http://hooks.example.com/{PATH_SECRET}": "only for loopback",
        f"ftp://hooks.example.com/{PATH_SECRET}": "https://",
        f"https://user:{PATH_SECRET}@hooks.example.com/x": "credentials",
        f"https:///{PATH_SECRET}": "no host",
        f"https://hooks.example.com/{PATH_SECRET} x": "spaces",
    }
    for url, problem in bad_urls.items():
        with pytest.raises(InvalidInput, match=problem) as caught:
            WebhookNotifier(url)
        assert caught.value.field == "url"
        assert PATH_SECRET not in str(caught.value)
    with pytest.raises(InvalidInput) as caught:
        WebhookNotifier("https://h.example.com/", headers={"Authorization": f"{HEADER_SECRET}\n"})
    assert caught.value.field == "headers"
    assert HEADER_SECRET not in str(caught.value)
    with pytest.raises(InvalidInput) as caught:
        WebhookNotifier("https://h.example.com/", timeout_s=0)
    assert caught.value.field == "timeout_s"


def test_https_certificates_are_verified(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    authority = trustme.CA()
    server = Hook()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    try:
        notifier = WebhookNotifier(server.url("https"), timeout_s=3)
        event = RunEvent("note", "r", "hello", 0.0)
        with pytest.raises(Unavailable, match="CERTIFICATE_VERIFY_FAILED") as caught:
            notifier.notify(event)
        assert PATH_SECRET not in str(caught.value)
        assert server.received == []
    finally:
        server.close()


def test_redirects_are_not_followed() -> None:
    elsewhere = Hook()
    redirecting = Hook(status=307, location=elsewhere.url())
    try:
        with pytest.raises(Unavailable, match="HTTP 307"):
            WebhookNotifier(redirecting.url()).notify(RunEvent("note", "r", "x", 0.0))
        assert len(redirecting.received) == 1
        assert elsewhere.received == []
    finally:
        redirecting.close()
        elsewhere.close()


def test_the_log_notifier_and_broadcast(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    class Failing:
        def notify(self, event: RunEvent) -> None:
            raise RuntimeError("chat service down")

    caplog.set_level(logging.INFO)
    logged = LogNotifier("tests.runbook")

    def step(ctx: RunContext) -> None:
        ctx.log("halfway")

    runbook = Runbook(
        "logged",
        [Step("only", step, role="ic")],
        roles={"ic": "ana"},
        notify=Broadcast(Failing(), logged),
    )
    assert runbook.run(tmp_path / "run.jsonl").outcome == "finished"
    lines = [r.getMessage() for r in caplog.records if r.name == "tests.runbook"]
    assert lines == [
        "[logged] run-started: 1 steps",
        "[logged] step-started only (ana, ic): attempt 1",
        "[logged] note only (ana, ic): halfway",
        "[logged] step-finished only (ana, ic): done",
        "[logged] run-finished: all 1 steps done",
    ]
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(failures) == 5
    assert all("chat service down" in line for line in failures)
    assert deliver(Failing(), RunEvent("note", "r", "x", 0.0)) is False
    assert deliver(logged, RunEvent("note", "r", "x", 0.0)) is True
    with pytest.raises(InvalidInput) as caught:
        Broadcast(logged, object())  # type: ignore[arg-type]
    assert caught.value.field == "notifiers[1]"
