"""The failover demo: two regions on loopback, a health-checked DNS route, steady traffic, and
an outage of the primary, measured end to end.

Each region runs the example web app (``multiregion.demo.webapp``) as its own process, bound
to its own loopback address behind a fault proxy (``multiregion.faultproxy``) that holds the
region's address and port, where DNS sends users and the health checks probe; all share one
local store. The apps run the store's replicator (each pulls into its replicas; the store makes
concurrent pullers safe), so replication lives with the regions as it would in a cloud: the
demo's own handle on the store only fails a region, promotes, and reads. The outage is what a
real one looks like: region-a's address stops answering (the proxy blackholes it: connections
accepted, never answered, so probes time out) and its replica fails at the same instant, so
writes not yet pulled into region-b are lost, which is what ``async`` replication risks and
``sync`` does not.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

import multiregion
from multiregion import validate
from multiregion.closing import Closing
from multiregion.demo.report import DemoReport, first_success_after, rpo_seconds
from multiregion.demo.traffic import OrderClient, StubResolver
from multiregion.demo.view import RegionState, Snapshot, View
from multiregion.demo.webapp import ORDER_PREFIX
from multiregion.errors import MultiregionError, NotFound, Unavailable
from multiregion.faultproxy import Blackhole, FaultProxy
from multiregion.model import Endpoint, Failover, HealthCheck, Route

if TYPE_CHECKING:  # imported when run: ``multiregion`` alone does not load the provider
    from multiregion.providers.local.router import LocalRouter
    from multiregion.providers.local.store import LocalStore

NAME = "app.demo.multiregion.test"
PRIMARY, STANDBY = "region-a", "region-b"
ADDRESSES = {PRIMARY: "127.0.0.2", STANDBY: "127.0.0.3"}
WITNESS = "witness"
"""The store's third fencing vote: with it, region-b alone still reaches a majority."""
DNS_HOST = "127.0.0.1"
POLL_S = 0.02


def _replication(value: str) -> str:
    return validate.one_of("replication", value, frozenset({"async", "sync"}))


def _lag(value: object) -> float:
    return validate.seconds("lag", value, 0, 10)


@attrs.frozen
class DemoConfig:
    replication: str = attrs.field(default="async", converter=_replication)
    lag_s: float = attrs.field(default=0.5, converter=_lag)
    steady_s: float = 3.0
    """Traffic before the outage."""
    random_phases: bool = True
    """Start traffic at a random point of the TTL and the outage at a random point of the probe
    interval, as they would fall in real life; the expected figures are means over those
    phases. Without this both would follow the first healthy verdict in lockstep."""
    recovered_s: float = 2.0
    """Traffic kept flowing after it recovered."""
    recovery_timeout_s: float = 20.0
    request_period_s: float = 0.05
    ttl: int = 1

    def health_check(self, port: int) -> HealthCheck:
        return HealthCheck(
            "http",
            port,
            "/health",
            interval_s=0.5,
            timeout_s=0.25,
            failure_threshold=4,
            success_threshold=2,
        )

    def route(self, port: int) -> Route:
        return Route(
            NAME,
            [Endpoint(region, region, address) for region, address in ADDRESSES.items()],
            Failover(PRIMARY, [STANDBY]),
            ttl=self.ttl,
            health_check=self.health_check(port),
        )


@attrs.define
class Milestones:
    """Monotonic instants the monitor saw first; None until seen."""

    outage: float | None = None
    detected: float | None = None
    dns_switched: float | None = None
    promoted: float | None = None
    recovered: float | None = None


class Demo(Closing):
    """One run. Use as a context manager: leaving it stops every process and removes the files."""

    def __init__(self, config: DemoConfig, view: View) -> None:
        self.config = config
        self.view = view
        self.t0 = time.monotonic()
        self.workdir = Path(tempfile.mkdtemp(prefix="multiregion-demo-"))
        self.phase = "starting"
        self.milestones = Milestones()
        self._apps: dict[str, subprocess.Popen[bytes]] = {}
        self._proxy: FaultProxy | None = None
        self._store: LocalStore | None = None
        self._router: LocalRouter | None = None
        self._client: OrderClient | None = None
        self._monitor: threading.Thread | None = None
        self._stop = threading.Event()
        self._view_lock = threading.Lock()
        self._health: dict[str, str] = {}
        self._dns_answer = "-"
        self._write_region = PRIMARY
        self._failed: set[str] = set()
        self.port = 0
        """Where users and probes reach each region: the proxy."""
        self.app_port = 0
        """Where each region's app listens, behind the proxy."""
        self.dns_port = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def store(self) -> LocalStore:
        assert self._store is not None, "the demo has not started"
        return self._store

    @property
    def router(self) -> LocalRouter:
        assert self._router is not None, "the demo has not started"
        return self._router

    def close(self) -> None:
        """Stop traffic, kill the apps, close router and store, delete the work directory."""
        with _ctrl_c_ignored():
            self._close()

    def _close(self) -> None:
        self._stop.set()
        if self._client is not None:
            self._client.stop()
        if self._monitor is not None and self._monitor.ident is not None:  # it was started
            self._monitor.join(timeout=2)
        try:
            if self._proxy is not None:
                self._proxy.close()
            for proc in self._apps.values():
                _kill(proc)
        finally:
            try:
                for part in (self._router, self._store):
                    if part is not None:
                        part.close()
            finally:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def elapsed(self, at: float | None = None) -> float:
        return (time.monotonic() if at is None else at) - self.t0

    def event(self, text: str) -> None:
        with self._view_lock:
            self.view.event(self.elapsed(), text)

    # ------------------------------------------------------------------ the run

    def run(self) -> DemoReport:
        route = self._start()
        self._steady()
        self._outage()
        self._await_recovery()
        return self._report(route)

    def _start(self) -> Route:
        from multiregion.providers.local.router import LocalRouter
        from multiregion.providers.local.store import LocalStore
        from multiregion.testing.endpoints import free_port

        config = self.config
        store_dir = self.workdir / "store"
        self._store = LocalStore(
            store_dir,
            tuple(ADDRESSES),
            write_region=PRIMARY,
            replication=config.replication,
            lag_s=config.lag_s,
            replicate=False,
            witness=WITNESS,
        )
        self.event(
            f"store in {self.workdir}: {config.replication} replication"
            + (f", lag {config.lag_s:g}s" if config.replication == "async" else "")
        )
        self.port = free_port(list(ADDRESSES.values()))
        self.app_port = free_port(list(ADDRESSES.values()))
        for region, address in ADDRESSES.items():
            self._launch(region, address, store_dir)
        self._proxy = FaultProxy().start()
        for region, address in ADDRESSES.items():
            self._wait_listening(region, address)
            self._proxy.add_listener(region, (address, self.port), (address, self.app_port))
        self.event(f"fault proxy on port {self.port} of each address, the apps behind it")

        self._router = LocalRouter(self.workdir / "router", dns_host=DNS_HOST, serve=True)
        self.dns_port = self.router.dns_port
        route = config.route(self.port)
        self.router.apply(route)
        self.event(
            f"DNS on {DNS_HOST}:{self.dns_port} serves {NAME}: failover {PRIMARY} > {STANDBY},"
            f" TTL {route.ttl}s, HTTP /health every 0.5s, down after 4 failures"
        )
        resolver = StubResolver(DNS_HOST, self.dns_port)
        deadline = time.monotonic() + 15
        while True:
            self._observe(resolver)
            healthy = [r for r in ADDRESSES if self._health.get(r) == "healthy"]
            if len(healthy) == len(ADDRESSES) and self._dns_answer == ADDRESSES[PRIMARY]:
                break
            if time.monotonic() > deadline:
                raise Unavailable("the regions did not become healthy within 15s")
            self._show()
            time.sleep(0.05)
        self.event(f"both regions healthy; DNS answers {ADDRESSES[PRIMARY]} ({PRIMARY})")
        self._client = OrderClient(
            StubResolver(DNS_HOST, self.dns_port),
            NAME,
            self.port,
            {address: region for region, address in ADDRESSES.items()},
            period_s=config.request_period_s,
        )
        self._monitor = threading.Thread(
            target=self._watch, args=(resolver,), name="demo-monitor", daemon=True
        )
        return route

    def _launch(self, region: str, address: str, store_dir: Path) -> None:
        argv = [
            sys.executable,
            "-m",
            "multiregion.demo.webapp",
            *("--region", region, "--host", address, "--port", str(self.app_port)),
            *("--store", str(store_dir), "--regions", ",".join(ADDRESSES)),
            *("--write-region", PRIMARY, "--replication", self.config.replication),
            *("--lag", str(self.config.lag_s), "--witness", WITNESS),
        ]
        src = str(Path(multiregion.__file__).resolve().parent.parent)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p),
        }
        with open(self.workdir / f"{region}.log", "wb") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # Ctrl-C reaches the demo only; it stops the apps
            )
        self._apps[region] = proc
        self.event(f"{region} app started: pid {proc.pid} on {address}:{self.app_port}")

    def _wait_listening(self, region: str, address: str) -> None:
        from multiregion.testing.emulators.process import port_open

        proc = self._apps[region]
        deadline = time.monotonic() + 15
        while not port_open(self.app_port, address):
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (self.workdir / f"{region}.log").read_text(errors="replace").strip()
                last = log.splitlines()[-1] if log else "no output"
                raise Unavailable(f"the {region} app did not start: {last}")
            time.sleep(0.05)

    def _steady(self) -> None:
        assert self._client is not None
        assert self._monitor is not None
        interval = self.config.health_check(self.port).interval_s
        if self.config.random_phases:
            self._run_for(random.uniform(0, self.config.ttl))
        self.phase = "steady"
        self._client.start()
        self._monitor.start()
        self.event(f"traffic started: an order every {self.config.request_period_s * 1000:g} ms")
        jitter = random.uniform(0, interval) if self.config.random_phases else 0.0
        self._run_for(self.config.steady_s + jitter)

    def _outage(self) -> None:
        assert self._proxy is not None
        started = time.monotonic()
        self._proxy.set_toxic(PRIMARY, Blackhole())
        self.store.fail_region(PRIMARY)
        self._failed.add(PRIMARY)
        self.milestones.outage = started  # set last: it is what lets the monitor promote
        self.phase = "outage"
        self.event(
            f"OUTAGE: {PRIMARY} blackholed (connections accepted, never answered)"
            " and its store region failed"
        )

    def _await_recovery(self) -> None:
        assert self._client is not None
        assert self._monitor is not None
        assert self.milestones.outage is not None
        deadline = self.milestones.outage + self.config.recovery_timeout_s
        while self.milestones.recovered is None:
            if time.monotonic() > deadline:
                raise Unavailable(
                    f"traffic did not recover within {self.config.recovery_timeout_s:g}s"
                )
            first = first_success_after(self._client.records, self.milestones.outage)
            if first is not None:
                self.milestones.recovered = first.done_at
                self.phase = "recovered"
                self.event(
                    f"first order acknowledged by {first.region} {self._since(first.done_at)}"
                )
            self._show()
            time.sleep(POLL_S)
        self._run_for(self.config.recovered_s)
        self.phase = "stopping"
        self._client.stop()
        self._stop.set()
        self._monitor.join(timeout=2)
        self._show()

    def _run_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self._show()
            time.sleep(min(0.1, left))

    # ------------------------------------------------------------------ watching

    def _since(self, at: float) -> str:
        assert self.milestones.outage is not None
        return f"(+{at - self.milestones.outage:.2f}s after the outage)"

    def _observe(self, resolver: StubResolver) -> None:
        """DNS first, then health: an answer of region-b then always comes with its cause."""
        try:
            answer = resolver.query(NAME)
        except Unavailable:
            self._dns_answer = "no answer"
        else:
            self._dns_answer = ", ".join(answer.addresses) or "empty"
        for name, health in self.router.health(NAME).items():
            self._health[name] = health.state.value

    def _watch(self, resolver: StubResolver) -> None:
        """Record when health and DNS change; be the minimal controller that promotes the store.

        A failed step is shown and retried at the next poll rather than ending the thread.
        """
        while not self._stop.wait(POLL_S):
            try:
                self._observe(resolver)
                self._control()
            except MultiregionError as exc:
                self.event(f"monitor: {exc} (retrying)")

    def _control(self) -> None:
        m, now = self.milestones, time.monotonic()
        if m.outage is None:
            return
        if m.detected is None and self._health.get(PRIMARY) == "unhealthy":
            m.detected = now
            self.event(f"router marks {PRIMARY} unhealthy {self._since(now)}")
        if m.dns_switched is None and self._dns_answer == ADDRESSES[STANDBY]:
            m.dns_switched = now
            self.event(f"DNS answers {ADDRESSES[STANDBY]} ({STANDBY}) {self._since(now)}")
            if m.detected is None:
                # DNS answers from the data plane's verdict in memory; the health file read above
                # trails it by up to one of its write intervals. The switch proves the detection.
                m.detected = now
                self.event(f"router marks {PRIMARY} unhealthy {self._since(now)}")
        if m.dns_switched is not None and m.promoted is None:
            token = self.store.promote(STANDBY)
            m.promoted = time.monotonic()
            self._write_region = STANDBY
            self.event(
                f"controller promoted {STANDBY} in the store (epoch {token.epoch})"
                f" {self._since(m.promoted)}"
            )

    def _show(self) -> None:
        records = self._client.records if self._client is not None else []
        now = time.monotonic()
        recent = [r for r in records if r.done_at >= now - 1.0]
        ok_total = sum(r.ok for r in records)
        running = {region for region, proc in self._apps.items() if proc.poll() is None}
        regions = tuple(
            RegionState(
                name=region,
                address=address,
                app=(
                    "blackholed"
                    if region in self._failed
                    else "up"
                    if region in running
                    else "down"
                ),
                health=self._health.get(region, "unknown"),
                store=(
                    "failed"
                    if region in self._failed
                    else "writes"
                    if region == self._write_region
                    else "replica"
                ),
            )
            for region, address in ADDRESSES.items()
        )
        snapshot = Snapshot(
            elapsed_s=self.elapsed(now),
            phase=self.phase,
            regions=regions,
            dns_answer=self._dns_answer,
            ok_last_s=sum(r.ok for r in recent),
            failed_last_s=sum(not r.ok for r in recent),
            ok_total=ok_total,
            failed_total=len(records) - ok_total,
        )
        with self._view_lock:
            self.view.update(snapshot)

    # ------------------------------------------------------------------ measuring

    def _report(self, route: Route) -> DemoReport:
        assert self._client is not None
        m = self.milestones
        assert m.outage is not None
        assert m.recovered is not None
        if m.detected is None or m.dns_switched is None or m.promoted is None:
            raise Unavailable("traffic recovered before the failover was seen")
        records = self._client.records
        acked = [r for r in records if r.ok]
        missing = [r.done_at for r in acked if not self._in_standby(r.order_id)]
        if missing:
            self.event(f"{len(missing)} acknowledged orders are missing from {STANDBY}")
        return DemoReport(
            replication=self.config.replication,
            lag_s=self.config.lag_s if self.config.replication == "async" else 0.0,
            detection_s=m.detected - m.outage,
            dns_switch_s=m.dns_switched - m.outage,
            promote_s=m.promoted - m.outage,
            rto_s=m.recovered - m.outage,
            rpo_s=rpo_seconds(missing),
            lost_writes=len(missing),
            expected_rto_s=self.router.expected_failover_s(route),
            worst_rto_s=self.router.worst_failover_s(route),
            requests_ok=len(acked),
            requests_failed=len(records) - len(acked),
            run={
                "workdir": str(self.workdir),
                "addresses": dict(ADDRESSES),
                "http_port": self.port,
                "app_port": self.app_port,
                "dns": f"{DNS_HOST}:{self.dns_port}",
                "app_pids": {region: proc.pid for region, proc in self._apps.items()},
            },
        )

    def _in_standby(self, order_id: str | None) -> bool:
        try:
            self.store.get(f"{ORDER_PREFIX}{order_id}", region=STANDBY)
        except NotFound:
            return False
        return True


@contextlib.contextmanager
def _ctrl_c_ignored() -> Iterator[None]:
    """A second Ctrl-C must not cut the cleanup short and leave processes behind."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the app's whole process group and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def run_demo(config: DemoConfig, view: View) -> DemoReport:
    """Run the whole demo; every process and file it made is gone when this returns or raises."""
    with Demo(config, view) as demo:
        return demo.run()
