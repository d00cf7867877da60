"""The local DNS data plane against knotd (Debian's ``knot``) on the same record, same run.

Both servers run in processes of their own on loopback and serve ``www.example.test A``: ours
from a failover route in a state directory (``serve``), knotd from a zone file with the same
record and TTL. One load generator (``_flood``, a process of its own) keeps ``WINDOW``
queries in flight over UDP for ``--seconds`` against each server in turn, every round; the
ratio is ours over knotd's answers per second. Without knotd on PATH (``apt-get install
knot``) our rate is still measured and the ratio is left out, saying why.

    python -m benches.dns [--seconds 1.0] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dnslib import QTYPE, DNSRecord

from benches.measure import ROUNDS, show, spread
from multiregion.model import Endpoint, Failover, Route
from multiregion.providers.local.routing_state import RoutingState
from multiregion.testing.emulators.process import free_port, wait_for_port

NAME = "www.example.test"
TARGET = "127.0.0.21"
TTL = 60
WINDOW = 32
"""Queries in flight at once: enough to keep a server busy, few enough for socket buffers."""

ZONE = f"""$ORIGIN example.test.
$TTL {TTL}
@    SOA ns.example.test. admin.example.test. 1 3600 600 86400 60
@    NS  ns
ns   A   127.0.0.1
www  {TTL} A {TARGET}
"""

KNOT_CONF = """server:
    rundir: "{work}"
    listen: 127.0.0.1@{port}
database:
    storage: "{work}"
template:
  - id: default
    storage: "{work}"
zone:
  - domain: example.test
    file: "example.test.zone"
log:
  - target: stderr
    any: error
"""


def _flood(port: int, seconds: float, result: Any) -> None:
    """Answers per second from ``port``, ``WINDOW`` queries in flight (in its own process)."""
    queries = []
    for i in range(WINDOW):
        question = DNSRecord.question(NAME, "A")
        question.header.id = i + 1
        queries.append(question.pack())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        sock.settimeout(0.2)
        answered = 0
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            for query in queries:
                sock.send(query)
            for _ in queries:
                try:
                    sock.recv(512)
                except TimeoutError:
                    break  # a lost datagram: send the window again
                answered += 1
        result.value = answered / (time.perf_counter() - started)


def rate(port: int, seconds: float) -> float:
    result = multiprocessing.Value("d", 0.0)
    process = multiprocessing.Process(target=_flood, args=(port, seconds, result))
    process.start()
    process.join()
    return float(result.value)


def answer(port: int) -> tuple[str, int]:
    """What the server at ``port`` answers for the record: (address, TTL)."""
    reply = DNSRecord.parse(DNSRecord.question(NAME, "A").send("127.0.0.1", port, timeout=2))
    records = [(str(rr.rdata), rr.ttl) for rr in reply.rr if rr.rtype == QTYPE.A]
    if len(records) != 1:
        raise RuntimeError(f"unexpected answer from port {port}: {reply}")
    return records[0]


@contextmanager
def ours(work: Path) -> Iterator[int]:
    state = RoutingState(work / "state")
    endpoints = [Endpoint("a", "region-a", TARGET), Endpoint("b", "region-b", "127.0.0.22")]
    state.save(Route(NAME, endpoints, Failover("a", ["b"]), ttl=TTL))
    port = free_port()
    code = "import sys; from multiregion.providers.local.dataplane import serve; "
    code += "serve(sys.argv[1], port=int(sys.argv[2]))"
    process = subprocess.Popen([sys.executable, "-c", code, str(state.root), str(port)])
    try:
        deadline = time.monotonic() + 30
        while state.advertised() is None:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the local data plane did not start")
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def knot(work: Path) -> Iterator[int]:
    port = free_port()
    (work / "example.test.zone").write_text(ZONE)
    (work / "knot.conf").write_text(KNOT_CONF.format(work=work, port=port))
    process = subprocess.Popen(["knotd", "-c", str(work / "knot.conf")])
    try:
        wait_for_port(port, timeout_s=15)
        deadline = time.monotonic() + 15
        while True:  # the TCP port opens before the zone is loaded
            try:
                answer(port)
                break
            except (RuntimeError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(10)


def main(seconds: float = 1.0, rounds: int = ROUNDS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-dns-") as tmp:
        work = Path(tmp)
        with ours(work) as port:
            if answer(port) != (TARGET, TTL):
                raise RuntimeError(f"the data plane answers {answer(port)}")
            if shutil.which("knotd") is None:
                rates = [rate(port, seconds) for _ in range(rounds + 1)][1:]
                figures: dict[str, Any] = {
                    "local_per_s": spread(rates),
                    "knot": "skipped: knotd is not installed (apt-get install knot)",
                }
                print(f"  local data plane {figures['local_per_s']['median']:,.0f} queries/s")
                print(f"  {figures['knot']}")
                return figures
            with knot(work) as knot_port:
                if answer(knot_port) != (TARGET, TTL):
                    raise RuntimeError(f"knotd answers {answer(knot_port)}")
                samples: dict[str, list[float]] = {"local": [], "knot": []}
                for number in range(rounds + 1):  # round 0 warms both up
                    for side, at in (("local", port), ("knot", knot_port)):
                        measured = rate(at, seconds)
                        if number:
                            samples[side].append(measured)
    figures = {f"{side}_per_s": spread(values) for side, values in samples.items()}
    figures["ratio"] = spread(
        [a / b for a, b in zip(samples["local"], samples["knot"], strict=True)]
    )
    figures["ratio_of"] = "local data plane / knotd, queries answered per second"
    figures["window"] = WINDOW
    show("DNS vs knotd", figures)
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    args = parser.parse_args()
    print(json.dumps(main(args.seconds, args.rounds)))
