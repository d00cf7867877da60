"""The local data plane (a DNS server over the state directory) and the state directory itself."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dnslib import EDNS0, QTYPE, RCODE, DNSRecord

from multiregion.commands.connection import announced_data_plane
from multiregion.errors import CorruptData, InvalidInput, Unavailable
from multiregion.model import (
    Endpoint,
    EndpointStatus,
    Failover,
    Geo,
    HealthCheck,
    HealthState,
    Latency,
    Route,
    Weighted,
)
from multiregion.providers.local import dataplane
from multiregion.providers.local.dataplane import LocalDataPlane
from multiregion.providers.local.router import LocalRouter
from multiregion.providers.local.routing_state import (
    RoutingState,
    route_from_dict,
    route_to_dict,
)
from multiregion.testing.emulators.process import free_port
from multiregion.testing.endpoints import LoopbackEndpoint, start_endpoints

NAME = "www.example.test"
CHECK = HealthCheck("http", 8080, interval_s=0.1, timeout_s=0.1, failure_threshold=2)


def failover(targets: tuple[str, str] = ("127.0.0.21", "127.0.0.22"), **kw: object) -> Route:
    endpoints = [Endpoint("a", "region-a", targets[0]), Endpoint("b", "region-b", targets[1])]
    return Route(NAME, endpoints, Failover("a", ["b"]), **kw)  # type: ignore[arg-type]


def query(port: int, name: str = NAME, qtype: str = "A", *, tcp: bool = False) -> DNSRecord:
    raw = DNSRecord.question(name, qtype).send("127.0.0.1", port, tcp=tcp, timeout=2)
    return DNSRecord.parse(raw)


def answers(reply: DNSRecord) -> list[tuple[str, str, int]]:
    return [(QTYPE[rr.rtype], str(rr.rdata), rr.ttl) for rr in reply.rr]


def eventually(condition: Callable[[], bool], timeout_s: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def state(tmp_path: Path) -> RoutingState:
    return RoutingState(tmp_path / "state")


@pytest.fixture
def plane(state: RoutingState) -> Iterator[LocalDataPlane]:
    with LocalDataPlane(state.root) as running:
        yield running


@pytest.fixture
def live() -> Iterator[list[LoopbackEndpoint]]:
    group = start_endpoints(2, "http")
    yield group
    for endpoint in group:
        endpoint.close()


# --------------------------------------------------------------------------- DNS answers


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_answers_over_udp_and_tcp_with_the_routes_ttl(
    state: RoutingState, plane: LocalDataPlane, tcp: bool
) -> None:
    state.save(failover(ttl=42))
    reply = query(plane.port, tcp=tcp)
    assert reply.header.rcode == RCODE.NOERROR
    assert reply.header.aa == 1
    assert answers(reply) == [("A", "127.0.0.21", 42)]


def test_queries_are_answered_from_prepared_bytes_not_from_the_state_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dataplane, "REFRESH_S", 3600.0)  # no background refresh in between
    other = RoutingState(tmp_path / "s")
    other.save(failover())
    with LocalDataPlane(tmp_path / "s") as plane:
        reads: list[str] = []
        for method in ("generation", "load", "names"):
            original = getattr(plane.state, method)

            def counted(*args: object, _name: str = method, _call: Any = original) -> Any:
                reads.append(_name)
                return _call(*args)

            monkeypatch.setattr(plane.state, method, counted)
        for _ in range(20):
            assert answers(query(plane.port))[0][1] == "127.0.0.21"
        assert reads == []
        other.set_override(NAME, "a", EndpointStatus.DOWN)  # the next answer follows
        assert answers(query(plane.port))[0][1] == "127.0.0.22"
        assert reads.count("load") == 1
        for _ in range(5):
            assert answers(query(plane.port))[0][1] == "127.0.0.22"
        assert reads.count("load") == 1


def test_replies_echo_the_question_and_header_as_sent(
    state: RoutingState, plane: LocalDataPlane
) -> None:
    state.save(failover(ttl=42))
    request = DNSRecord.question("WwW.Example.TEST", "A")
    request.header.id, request.header.rd = 4321, 1
    request.add_ar(EDNS0(udp_len=1232))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.connect(("127.0.0.1", plane.port))
        sock.send(b"not a DNS message")  # dropped without a reply, as before
        sock.send(request.pack())
        raw = sock.recv(512)
    reply = DNSRecord.parse(raw)
    assert (reply.header.id, reply.header.qr, reply.header.aa, reply.header.rd) == (4321, 1, 1, 1)
    assert reply.header.ra == 1
    assert str(reply.q.qname) == "WwW.Example.TEST."  # the question as asked, case and all
    assert [(str(rr.rname), *a) for rr, a in zip(reply.rr, answers(reply), strict=True)] == [
        ("WwW.Example.TEST.", "A", "127.0.0.21", 42)
    ]
    assert reply.ar == []


def test_one_tcp_connection_carries_several_queries(
    state: RoutingState, plane: LocalDataPlane
) -> None:
    state.save(failover())
    with socket.create_connection(("127.0.0.1", plane.port), timeout=2) as conn:
        for name, rcode in ((NAME, RCODE.NOERROR), ("nx.example.test", RCODE.NXDOMAIN)):
            message = DNSRecord.question(name, "A").pack()
            conn.sendall(struct.pack("!H", len(message)) + message)
            (length,) = struct.unpack("!H", conn.recv(2, socket.MSG_WAITALL))
            reply = DNSRecord.parse(conn.recv(length, socket.MSG_WAITALL))
            assert reply.header.rcode == rcode


def test_unknown_names_are_nxdomain_and_other_types_nodata(
    state: RoutingState, plane: LocalDataPlane
) -> None:
    state.save(failover())
    assert query(plane.port, "other.example.test").header.rcode == RCODE.NXDOMAIN
    nodata = query(plane.port, qtype="AAAA")
    assert (nodata.header.rcode, nodata.rr) == (RCODE.NOERROR, [])
    assert answers(query(plane.port, NAME.upper() + ".")) == [("A", "127.0.0.21", 60)]


def test_ipv6_and_host_name_targets(state: RoutingState, plane: LocalDataPlane) -> None:
    state.save(failover(("::1", "::2"), ttl=5))
    assert answers(query(plane.port, qtype="AAAA")) == [("AAAA", "::1", 5)]
    state.save(failover(("a.origin.test", "b.origin.test"), ttl=7))
    assert answers(query(plane.port, qtype="A")) == [("CNAME", "a.origin.test.", 7)]


def test_weighted_answers_are_picked_per_query(state: RoutingState, plane: LocalDataPlane) -> None:
    endpoints = [Endpoint(n, f"region-{n}", f"127.0.0.{30 + i}") for i, n in enumerate("abc")]
    state.save(Route(NAME, endpoints, Weighted({"a": 1, "b": 1, "c": 1})))
    seen = {answers(query(plane.port))[0][1] for _ in range(60)}
    assert seen == {"127.0.0.30", "127.0.0.31", "127.0.0.32"}


def test_changes_by_another_process_show_in_the_next_answer(
    state: RoutingState, plane: LocalDataPlane, tmp_path: Path
) -> None:
    other = RoutingState(tmp_path / "state")  # a second handle, as the CLI would open
    other.save(failover())
    assert answers(query(plane.port))[0][1] == "127.0.0.21"
    other.set_override(NAME, "a", EndpointStatus.DOWN)
    assert answers(query(plane.port))[0][1] == "127.0.0.22"
    other.save(failover(("127.0.0.23", "127.0.0.22")))  # the override outlives the update
    assert answers(query(plane.port))[0][1] == "127.0.0.22"
    other.set_override(NAME, "a", EndpointStatus.AUTO)
    assert answers(query(plane.port))[0][1] == "127.0.0.23"
    other.delete(NAME)
    assert query(plane.port).header.rcode == RCODE.NXDOMAIN


def test_a_corrupt_route_file_does_not_stop_the_others(
    state: RoutingState, plane: LocalDataPlane
) -> None:
    state.save(failover())
    state.save(Route("bad.example.test", [Endpoint("a", "r", "127.0.0.9")], Weighted({"a": 1})))
    (state.root / "routes" / "bad.example.test.json").write_text("{not json")
    state.set_override(NAME, "a", EndpointStatus.DOWN)  # a new generation: the plane reloads
    with pytest.raises(CorruptData):
        state.load("bad.example.test")
    assert answers(query(plane.port))[0][1] == "127.0.0.22"
    assert query(plane.port, "bad.example.test").header.rcode == RCODE.NXDOMAIN


# --------------------------------------------------------------------------- health


def test_probes_decide_and_health_is_written_to_the_state(
    state: RoutingState, plane: LocalDataPlane, live: list[LoopbackEndpoint]
) -> None:
    check = HealthCheck("http", live[0].port, interval_s=0.1, timeout_s=0.1, failure_threshold=2)
    state.save(failover((live[0].address, live[1].address), health_check=check))

    def states() -> dict[str, HealthState]:
        return {k: h.state for k, h in state.read_health(NAME).items()}

    assert eventually(lambda: states() == {"a": HealthState.HEALTHY, "b": HealthState.HEALTHY})
    live[0].fail()  # answers 503
    assert eventually(lambda: states().get("a") is HealthState.UNHEALTHY)
    assert answers(query(plane.port))[0][1] == live[1].address
    assert "503" in state.read_health(NAME)["a"].detail
    live[0].recover()
    assert eventually(lambda: answers(query(plane.port))[0][1] == live[0].address)

    state.save(failover((live[0].address, live[1].address)))  # the check is dropped
    state.delete(NAME)
    time.sleep(0.3)
    assert plane.health(NAME) == {}
    assert not (state.root / "health" / f"{NAME}.json").exists()


def test_router_health_reads_the_data_planes_verdicts(
    tmp_path: Path, live: list[LoopbackEndpoint]
) -> None:
    check = HealthCheck("http", live[0].port, interval_s=0.1, timeout_s=0.1, failure_threshold=2)
    route = failover((live[0].address, live[1].address), health_check=check)
    with LocalRouter(tmp_path / "s") as router:
        router.apply(route)
        live[1].stop()
        assert eventually(lambda: router.health(NAME)["b"].state is HealthState.UNHEALTHY)
        assert router.health(NAME)["a"].healthy
        remote = LocalRouter(tmp_path / "s", serve=False)  # reads what the plane wrote
        assert eventually(lambda: remote.health(NAME)["b"].state is HealthState.UNHEALTHY)
        router.apply(failover((live[0].address, live[1].address)))
        assert router.health(NAME) == {}


# --------------------------------------------------------------------------- lifecycle


def test_serve_runs_in_another_process_until_terminated(tmp_path: Path) -> None:
    state_dir = tmp_path / "shared"
    code = "import sys; from multiregion.providers.local.dataplane import serve; serve(sys.argv[1])"
    proc = subprocess.Popen([sys.executable, "-c", code, str(state_dir)])
    try:
        advertised = state_dir / "dataplane.json"
        assert eventually(advertised.exists, timeout_s=15), "the data plane never started"
        port = json.loads(advertised.read_text())["port"]
        with LocalRouter(state_dir, serve=False) as router:
            assert router.dns_port == port
            router.apply(failover())
            assert router.resolve(NAME).endpoints == ("a",)
            router.set_endpoint_status(NAME, "a", EndpointStatus.DOWN)
            assert router.resolve(NAME).endpoints == ("b",)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not advertised.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_an_announcement_is_trusted_only_from_its_process_with_its_nonce(tmp_path: Path) -> None:
    settings = {"state_dir": str(tmp_path / "a")}
    announcement = tmp_path / "a" / "dataplane.json"
    with LocalDataPlane(tmp_path / "a") as genuine:
        assert announced_data_plane(settings) == ("127.0.0.1", genuine.port)
        port, left_behind = genuine.port, announcement.read_text()
    announcement.write_text(left_behind)  # as a data plane killed before it could withdraw
    with LocalDataPlane(tmp_path / "b", port=port):  # another DNS server on that port now
        assert announced_data_plane(settings) is None
    gone = subprocess.Popen(["true"])
    gone.wait()
    with LocalDataPlane(tmp_path / "c") as other:
        right = json.loads((tmp_path / "c" / "dataplane.json").read_text())
        announcement.write_text(json.dumps({**right, "pid": gone.pid}))  # its process is gone
        assert announced_data_plane(settings) is None
        with pytest.raises(Unavailable, match="gone"):
            _ = LocalRouter(tmp_path / "a", serve=False).dns_port
        announcement.write_text(json.dumps({**right, "started": "0"}))  # a reused pid
        assert announced_data_plane(settings) is None
        announcement.write_text(json.dumps(right))
        assert announced_data_plane(settings) == ("127.0.0.1", other.port)
    assert not (tmp_path / "c" / "dataplane.json").exists()
    assert announcement.exists()  # closing withdraws only its own announcement


def test_resolve_without_a_data_plane_is_unavailable(tmp_path: Path) -> None:
    router = LocalRouter(tmp_path / "s", serve=False, dns_port=free_port())
    router.apply(failover())
    with pytest.raises(Unavailable):
        router.resolve(NAME)
    with pytest.raises(Unavailable):
        _ = LocalRouter(tmp_path / "t", serve=False).dns_port  # nobody announced a port


def test_a_taken_port_is_unavailable_and_close_frees_it(tmp_path: Path) -> None:
    with LocalDataPlane(tmp_path / "s") as first:
        port = first.port
        with pytest.raises(Unavailable):
            LocalDataPlane(tmp_path / "t", port=port).start()
    again = LocalDataPlane(tmp_path / "t", port=port).start()
    again.close()
    again.close()  # twice is harmless
    with pytest.raises(Unavailable):
        _ = again.port


def test_the_router_stops_its_data_plane_on_close(tmp_path: Path) -> None:
    router = LocalRouter(tmp_path / "s")
    router.apply(failover())
    port = router.dns_port
    assert query(port).header.rcode == RCODE.NOERROR
    router.close()
    with pytest.raises(Unavailable):
        LocalRouter(tmp_path / "s", serve=False, dns_port=port).resolve(NAME)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda d: LocalDataPlane(d, port=-1), "port"),
        (lambda d: LocalDataPlane(d, host="not a host"), "host"),
        (lambda d: LocalDataPlane(d, ssl_context="tls"), "ssl_context"),  # type: ignore[arg-type]
        (lambda d: LocalRouter(d, serve=False, dns_port=0), "dns_port"),
        (lambda d: LocalRouter(d, dns_host=""), "dns_host"),
        (lambda d: LocalRouter(d, serve="yes"), "serve"),  # type: ignore[arg-type]
        (lambda d: RoutingState(""), "state_dir"),
    ],
)
def test_bad_settings_are_invalid_input(
    tmp_path: Path, build: Callable[[Path], object], field: str
) -> None:
    with pytest.raises(InvalidInput) as excinfo:
        build(tmp_path / "s")
    assert excinfo.value.field == field


# --------------------------------------------------------------------------- state directory


@pytest.mark.parametrize(
    "route",
    [
        failover(ttl=0, health_check=CHECK),
        failover(("a.origin.test", "b.origin.test")),
        Route(NAME, failover().endpoints, Weighted({"a": 2.5, "b": 0})),
        Route(NAME, failover().endpoints, Latency(), ttl=300),
        Route(
            NAME,
            failover().endpoints,
            Geo({"DE": "b", "EU": "a"}, default="a"),
            health_check=HealthCheck("tcp", 443, expected_status=(200, 204), host="x.test"),
        ),
    ],
    ids=["failover", "cname", "weighted", "latency", "geo"],
)
def test_routes_survive_json(route: Route) -> None:
    assert route_from_dict(json.loads(json.dumps(route_to_dict(route)))) == route


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d.pop("endpoints"),
        lambda d: d["policy"].update(type="random"),
        lambda d: d["endpoints"][0].update(region="Not Valid"),
        lambda d: d.update(health_check={"protocol": "http"}),
        lambda d: d.update(endpoints="abc"),
    ],
)
def test_malformed_route_dicts_are_invalid_input(
    mangle: Callable[[dict[str, object]], object],
) -> None:
    data = route_to_dict(failover(health_check=CHECK))
    mangle(data)
    with pytest.raises(InvalidInput):
        route_from_dict(data)


def test_state_files_are_replaced_whole(state: RoutingState) -> None:
    state.save(failover())
    first = state.generation()
    route_file = state.root / "routes" / f"{NAME}.json"
    inode = os.stat(route_file).st_ino
    state.set_override(NAME, "b", EndpointStatus.UP)
    assert state.generation() != first
    assert os.stat(route_file).st_ino != inode  # a new file moved into place, not rewritten
    assert [p.name for p in route_file.parent.iterdir()] == [route_file.name]
    stored = state.load(NAME)
    assert stored is not None
    assert dict(stored.overrides) == {"b": EndpointStatus.UP}
    with pytest.raises(InvalidInput):
        state.set_override(NAME, "ghost", EndpointStatus.DOWN)
    assert state.set_override("none.example.test", "a", EndpointStatus.DOWN) is False
    assert state.names() == [NAME]


def test_a_data_plane_can_start_again_after_close(
    state: RoutingState, live: list[LoopbackEndpoint]
) -> None:
    check = HealthCheck("http", live[0].port, interval_s=0.1, timeout_s=0.1, failure_threshold=2)
    state.save(failover((live[0].address, live[1].address), health_check=check))
    plane = LocalDataPlane(state.root)
    with plane:
        assert answers(query(plane.port))[0][1] == live[0].address
    with plane:
        assert eventually(lambda: plane.health(NAME).get("a") is not None)
        assert answers(query(plane.port))[0][1] == live[0].address
