"""The demo end to end (as a user runs it) and its parts: the web app, the client, the report."""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from multiregion import Endpoint, Failover, InvalidInput, Route, Unavailable
from multiregion.demo import webapp
from multiregion.demo.orchestrator import DemoConfig
from multiregion.demo.report import DemoReport, first_success_after, rpo_seconds
from multiregion.demo.traffic import OrderClient, RequestRecord, StubResolver
from multiregion.demo.view import LiveView, LogView, RegionState, Snapshot
from multiregion.demo.webapp import ORDER_PREFIX, RegionalApp, serve
from multiregion.providers.local.router import LocalRouter
from multiregion.providers.local.store import LocalStore
from multiregion.testing.endpoints import free_port

DEMO = [sys.executable, "-m", "multiregion", "demo"]
KEYS = {
    "detection_s",
    "dns_switch_s",
    "rto_s",
    "rpo_s",
    "lost_writes",
    "expected_rto_s",
    "replication",
    "worst_rto_s",
    "requests_ok",
    "requests_failed",
}

# --------------------------------------------------------------------------- end to end


def _run_json(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [*DEMO, "--json", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)  # exactly one JSON object, nothing else
    return report


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _bindable(host: str, port: int, kind: socket.SocketKind) -> bool:
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _assert_cleaned_up(workdir: str, pids: list[int]) -> None:
    """Checked the moment the demo has exited: it must have reaped its apps itself (they
    would also stop on their own a little later, which must not hide a missing cleanup)."""
    assert not [pid for pid in pids if _alive(pid)]
    assert _processes_mentioning(workdir) == []
    assert not Path(workdir).exists()


def _assert_ports_closed(report: dict[str, Any]) -> None:
    run = report["run"]
    for address in run["addresses"].values():
        assert not _tcp_open(address, run["http_port"])
    host, port = run["dns"].rsplit(":", 1)
    assert _bindable(host, int(port), socket.SOCK_DGRAM)
    assert _bindable(host, int(port), socket.SOCK_STREAM)


def _assert_consistent(report: dict[str, Any]) -> None:
    assert report.keys() >= KEYS
    assert 0 < report["detection_s"] <= report["dns_switch_s"] <= report["rto_s"]
    check = DemoConfig().health_check(port=1)
    # DNS cannot move before failure_threshold probes failed, the first at the earliest at once
    assert report["rto_s"] >= check.interval_s * (check.failure_threshold - 1)
    assert report["rto_s"] <= report["expected_rto_s"] * 1.5, report
    assert report["requests_ok"] > 0
    assert report["requests_failed"] > 0  # the outage was felt
    _assert_cleaned_up(report["run"]["workdir"], list(report["run"]["app_pids"].values()))
    _assert_ports_closed(report)


def _run_in_band(*args: str) -> dict[str, Any]:
    """Run the demo; its RTO must land within 1.5x of the expected RTO, both ways.

    One run's RTO is one sample. The blackholed region's probes wait out their timeout, as the
    expected figure counts, so detection spreads over one probe interval around its mean
    (1.75-2.25 s); the client then waits out the request it had in flight (up to its 1 s
    timeout), and RTO lands from about 1.8 s to 3.3 s, inside the band (1.67-3.75 s). A run
    below the band is checked like any other and then repeated once, and the second must land
    in it.
    """
    reports = []
    for _attempt in range(2):
        report = _run_json(*args)
        _assert_consistent(report)
        if report["rto_s"] >= report["expected_rto_s"] / 1.5:
            return report
        reports.append(report)
    pytest.fail(f"RTO below the band in both runs: {reports}")


def test_sync_replication_fails_over_without_losing_writes() -> None:
    report = _run_in_band("--replication", "sync")
    assert report["replication"] == "sync"
    assert report["lost_writes"] == 0
    assert report["rpo_s"] == 0


def test_async_replication_loses_the_writes_of_the_last_lag_seconds() -> None:
    report = _run_in_band("--replication", "async", "--lag", "0.5")
    assert report["replication"] == "async"
    assert report["lost_writes"] > 0
    # about the lag: writes older than that had reached region-b (3 s of writes were made)
    assert 0 < report["rpo_s"] <= 1.0


def _read_until(proc: subprocess.Popen[str], marker: str, lines: list[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if marker in line:
            return
    pytest.fail(f"the demo ended before {marker!r}: {''.join(lines)}")


def _started(lines: list[str]) -> tuple[str, list[int]]:
    workdir = next(
        line.split("store in ", 1)[1].split(":")[0] for line in lines if "store in" in line
    )
    pids = [int(line.split("pid ")[1].split()[0]) for line in lines if "app started" in line]
    return workdir, pids


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupting_mid_run_stops_every_process_and_removes_the_files(signum: int) -> None:
    proc = subprocess.Popen(DEMO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        _read_until(proc, "traffic started", lines)
        workdir, pids = _started(lines)
        assert len(pids) == 2
        assert all(_alive(pid) for pid in pids)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert "interrupted" in err
    assert "Traceback" not in err
    _assert_cleaned_up(workdir, pids)


def test_apps_exit_by_themselves_when_the_demo_is_killed() -> None:
    proc = subprocess.Popen(DEMO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    try:
        _read_until(proc, "both regions healthy", lines)
        workdir, pids = _started(lines)
        proc.kill()  # no chance to clean up: the apps must notice on their own
        proc.wait()
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in pids if _alive(pid)]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


# --------------------------------------------------------------------------- the parts


def test_rpo_is_the_span_of_the_lost_acknowledgements() -> None:
    assert rpo_seconds([]) == 0
    assert rpo_seconds([5.0]) == 0
    assert rpo_seconds([5.4, 5.0, 5.2]) == pytest.approx(0.4)


def _record(sent: float, status: int | None) -> RequestRecord:
    order = "o" if status == 201 else None
    return RequestRecord(sent, sent + 0.01, "127.0.0.3", "region-b", status, order)


def test_first_success_after_ignores_earlier_and_failed_requests() -> None:
    records = [_record(1.0, 201), _record(2.0, None), _record(2.1, 503), _record(2.2, 201)]
    assert first_success_after(records, 1.5) == records[3]
    assert first_success_after(records[:3], 1.5) is None


def test_demo_config_names_bad_fields() -> None:
    with pytest.raises(InvalidInput) as info:
        DemoConfig(replication="eventual")
    assert info.value.field == "replication"
    with pytest.raises(InvalidInput) as info:
        DemoConfig(lag_s=-1)
    assert info.value.field == "lag"


@pytest.fixture
def store(tmp_path: Path) -> Any:
    handle = LocalStore(tmp_path / "s", ["region-a", "region-b"], replication="sync", witness="w")
    yield handle
    handle.close()


def test_app_acknowledges_orders_only_in_the_write_region(store: LocalStore) -> None:
    status, body = RegionalApp("region-a", store).place_order({"item": "x"})
    assert status == 201
    assert store.get(ORDER_PREFIX + body["order_id"], region="region-b").value["body"] == {
        "item": "x"
    }
    status, body = RegionalApp("region-b", store).place_order({})
    assert status == 503
    assert "write region" in body["error"]
    store.fail_region("region-a")  # a failover: the promote cannot reach region-a
    store.promote("region-b")
    assert RegionalApp("region-b", store).place_order({})[0] == 201


def test_app_refuses_writes_to_an_unavailable_region(store: LocalStore) -> None:
    store.fail_region("region-a")
    status, body = RegionalApp("region-a", store).place_order({})
    assert status == 503
    assert "unavailable" in body["error"]


def _request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body)
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_app_over_http(store: LocalStore) -> None:
    port = free_port(["127.0.0.1"])
    server = serve(RegionalApp("region-a", store), "127.0.0.1", port)
    try:
        assert _request(port, "GET", "/health") == (200, {"status": "ok", "region": "region-a"})
        assert _request(port, "GET", "/")[1]["region"] == "region-a"
        status, body = _request(port, "POST", "/orders", b'{"item": "y"}')
        assert status == 201
        assert store.get(ORDER_PREFIX + body["order_id"]).value["region"] == "region-a"
        assert _request(port, "POST", "/orders", b"not json")[0] == 400
        assert _request(port, "POST", "/orders", b"[1]")[0] == 400
        assert _request(port, "GET", "/nowhere")[0] == 404
        assert _request(port, "POST", "/health")[0] == 404
    finally:
        server.shutdown()
        server.server_close()


def test_stub_resolver_keeps_an_answer_for_its_ttl(tmp_path: Path) -> None:
    now = [100.0]
    with LocalRouter(tmp_path / "router") as router:

        def route(address: str) -> Route:
            endpoints = [Endpoint("a", "region-a", address), Endpoint("b", "region-b", "127.0.0.9")]
            return Route("svc.example.test", endpoints, Failover("a", ["b"]), ttl=5)

        router.apply(route("127.0.0.7"))
        resolver = StubResolver("127.0.0.1", router.dns_port, clock=lambda: now[0])
        assert resolver.resolve("svc.example.test").addresses == ("127.0.0.7",)
        router.apply(route("127.0.0.8"))
        assert resolver.query("svc.example.test").addresses == ("127.0.0.8",)
        now[0] += 4.9
        assert resolver.resolve("svc.example.test").addresses == ("127.0.0.7",)
        now[0] += 0.2
        answer = resolver.resolve("svc.example.test")
        assert answer.addresses == ("127.0.0.8",)
        assert answer.ttl == 5


def test_stub_resolver_only_asks_loopback_servers() -> None:
    with pytest.raises(InvalidInput) as info:
        StubResolver("192.0.2.1", 53)
    assert info.value.field == "resolver.host"


# --------------------------------------------------------------------------- report and views


def _report(**changes: Any) -> DemoReport:
    fields: dict[str, Any] = {
        "replication": "async",
        "lag_s": 0.5,
        "detection_s": 1.8,
        "dns_switch_s": 1.81,
        "promote_s": 1.82,
        "rto_s": 2.25,
        "rpo_s": 0.4512,
        "lost_writes": 9,
        "expected_rto_s": 2.5,
        "worst_rto_s": 3.25,
        "requests_ok": 100,
        "requests_failed": 40,
    }
    return DemoReport(**{**fields, **changes})


def test_report_json_has_every_figure_rounded() -> None:
    data = _report().to_json()
    assert data.keys() >= KEYS | {"rto_ratio", "run"}
    assert data["rpo_s"] == 0.451
    assert data["rto_ratio"] == 0.9
    assert json.loads(json.dumps(data)) == data


def test_report_table_shows_the_figures_and_their_meaning() -> None:
    console = Console(file=io.StringIO(), width=120, record=True)
    _report().print(console)
    text = console.export_text()
    assert "async, lag 0.5s" in text
    assert "2.25" in text
    assert "acknowledged orders missing in region-b" in text


def _snapshot(elapsed: float) -> Snapshot:
    regions = (RegionState("region-a", "127.0.0.2", "down", "unhealthy", "failed"),)
    return Snapshot(elapsed, "outage", regions, "127.0.0.3", 5, 15, 50, 20)


def test_log_view_prints_events_and_a_traffic_line_per_second() -> None:
    out = io.StringIO()
    view = LogView(out)
    view.event(0.5, "something happened")
    for tenths in range(5, 26):
        view.update(_snapshot(tenths / 10))
    lines = out.getvalue().splitlines()
    assert lines[0] == "[  0.50s] something happened"
    assert [line.split("]")[0] for line in lines[1:]] == ["[  1.00s", "[  2.00s"]
    assert "5 ok/s, 15 failed/s; dns -> 127.0.0.3" in lines[1]


def test_live_view_draws_regions_dns_and_events() -> None:
    console = Console(file=io.StringIO(), width=120, force_terminal=True, record=True)
    view = LiveView(console)
    view.event(3.0, "OUTAGE: region-a down")
    view.update(_snapshot(4.0))
    view.close()
    text = console.export_text()
    for shown in ("OUTAGE: region-a down", "unhealthy", "127.0.0.3", "5 ok", "15 failed"):
        assert shown in text


def test_order_client_never_sends_to_an_address_off_this_machine(tmp_path: Path) -> None:
    with LocalRouter(tmp_path / "router") as router:
        endpoints = [Endpoint("a", "region-a", "192.0.2.1"), Endpoint("b", "region-b", "192.0.2.2")]
        router.apply(Route("far.example.test", endpoints, Failover("a", ["b"]), ttl=1))
        resolver = StubResolver("127.0.0.1", router.dns_port)
        record = OrderClient(resolver, "far.example.test", 8080, {"192.0.2.1": "region-a"}).once()
    assert record.address == "192.0.2.1"
    assert record.status is None
    assert not record.ok
    assert "not a loopback address" in record.detail


def test_order_client_records_acknowledged_and_refused_orders(
    store: LocalStore, tmp_path: Path
) -> None:
    port = free_port(["127.0.0.2", "127.0.0.3"])
    servers = [
        serve(RegionalApp("region-a", store), "127.0.0.2", port),
        serve(RegionalApp("region-b", store), "127.0.0.3", port),
    ]
    endpoints = [Endpoint("a", "region-a", "127.0.0.2"), Endpoint("b", "region-b", "127.0.0.3")]
    regions = {"127.0.0.2": "region-a", "127.0.0.3": "region-b"}
    try:
        with LocalRouter(tmp_path / "router") as router:
            router.apply(Route("shop.example.test", endpoints, Failover("a", ["b"]), ttl=0))
            resolver = StubResolver("127.0.0.1", router.dns_port)
            client = OrderClient(resolver, "shop.example.test", port, regions)
            acked = client.once()
            assert acked.ok
            assert acked.region == "region-a"
            assert store.get(ORDER_PREFIX + str(acked.order_id)).value["region"] == "region-a"
            router.apply(Route("shop.example.test", endpoints, Failover("b", ["a"]), ttl=0))
            refused = client.once()  # TTL 0: asks again, gets region-b, a read-only replica
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
    assert refused.region == "region-b"
    assert refused.status == 503
    assert not refused.ok
    assert "write region" in refused.detail


def test_webapp_refuses_non_loopback_hosts_and_taken_ports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--region", "region-a", "--store", str(tmp_path / "s"), "--regions", "region-a"]
    assert webapp.main([*common, "--host", "192.0.2.1", "--port", "8080"]) == 2
    assert "host: 192.0.2.1 is not a loopback address" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert webapp.main([*common, "--host", "127.0.0.1", "--port", port]) == 2
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err


def test_example_wrapper_runs_the_same_program() -> None:
    app = Path(__file__).resolve().parents[1] / "examples" / "webapp" / "app.py"
    done = subprocess.run(
        [sys.executable, str(app), "--help"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0
    assert "--region" in done.stdout
    assert "--replication {async,sync}" in done.stdout


def test_a_silent_dns_server_is_a_failed_request_not_a_crash() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))  # bound, never answers
        resolver = StubResolver("127.0.0.1", silent.getsockname()[1], timeout_s=0.2)
        with pytest.raises(Unavailable):
            resolver.query("shop.example.test")
        record = OrderClient(resolver, "shop.example.test", 8080, {}).once()
    assert record.address is None
    assert not record.ok
    assert "DNS 127.0.0.1" in record.detail
