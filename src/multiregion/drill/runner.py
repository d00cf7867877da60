"""Run a drill: steady traffic, a fault, the failover layer's reaction, measurement, failback.

Traffic is what a client sees: it resolves the route through the router (keeping the answer
for its TTL, like a stub resolver), sends the route's health-check request to the answered
address, and writes one document per tick to the store. Every figure is measured from the
instant the fault is injected. Lost writes are counted before anything is healed, since healing
would let replication bring them back and hide the data loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import attrs

from multiregion import validate
from multiregion.deployment import Objectives
from multiregion.drill.faults import Fault, effects_of
from multiregion.drill.phases import PHASES, Phase, predict
from multiregion.drill.report import DrillReport, Failback
from multiregion.drill.timeline import Span, Timeline, spans_from_samples
from multiregion.errors import InvalidInput, MultiregionError, NotFound
from multiregion.failover.controller import ActivePassiveController, HealthSource
from multiregion.interfaces import ReplicatedStore, TrafficRouter
from multiregion.model import EndpointStatus, Failover, HealthCheck, HealthState, Weighted
from multiregion.probing import probe_once

logger = logging.getLogger("multiregion.drill")

OnEvent = Callable[[float, str], None]


@attrs.frozen
class DrillSettings:
    steady_s: float = 1.0
    """Traffic before the fault, to show the baseline."""
    timeout_s: float = 30.0
    """How long to wait for recovery before calling the drill failed."""
    confirm_s: float = 1.0
    """Traffic kept after recovery, to show it holds."""
    tick_s: float = 0.05
    rollback: str = "always"
    """After measuring: "always" fail back; "never" stay failed over; "on-deviation" fail back
    only when the drill deviated from its objectives (not recovered, or RTO or RPO missed),
    as Chaos Toolkit runs rollbacks. The fault itself is always reverted."""
    request_timeout_s: float | None = None
    """How long the client waits for an answer (default: the health check's timeout)."""
    force_failback: bool = False
    """Fail back even past the guard rails (the returning region unhealthy, or behind by more
    than the RPO objective): its missing writes are then left to the divergence log."""
    catch_up_s: float = 2.0
    """How long the controller waits for a reachable old write region's replica to catch up
    before moving without it (stores whose promote does not catch up by itself)."""
    time_scale: float = 1.0
    """The clock the health checks run on, a fraction of real time (fakes with a
    ``time_scale``): the predictions are scaled to it; the TTL is not."""

    def __attrs_post_init__(self) -> None:
        validate.seconds("steady_s", self.steady_s, 0, 600)
        validate.seconds("timeout_s", self.timeout_s, 0, 3600)
        validate.seconds("confirm_s", self.confirm_s, 0, 600)
        validate.seconds("tick_s", self.tick_s, 0, 10)
        validate.member("rollback", self.rollback, ROLLBACKS)
        validate.seconds("catch_up_s", self.catch_up_s, 0, 600)
        if not 0 < validate.finite_non_negative("time_scale", self.time_scale) <= 1:
            raise InvalidInput("time_scale", "must be above 0 and at most 1")
        if self.request_timeout_s is not None:
            validate.seconds("request_timeout_s", self.request_timeout_s, 0, 600)


ROLLBACKS = ("always", "never", "on-deviation")
MAX_IN_FLIGHT = 32
"""Users whose requests may hang at once (a blackhole holds each for the client's timeout)."""


class Aborted(Exception):
    """Raised inside the drill loop when the abort event is set."""


class NotSteady(Exception):
    """The steady-state hypothesis did not hold within ``timeout_s``: no fault is injected."""


@attrs.define
class _Observations:
    health: dict[str, list[tuple[float, str]]] = attrs.field(factory=dict)
    dns: list[tuple[float, str]] = attrs.field(factory=list)
    """The router's own answer, looked up every tick."""
    client_dns: list[tuple[float, str]] = attrs.field(factory=list)
    """The client's answer, looked up when its cached one expired or failed."""
    write_region: list[tuple[float, str]] = attrs.field(factory=list)
    overrides: list[tuple[float, str]] = attrs.field(factory=list)
    acked: dict[str, float] = attrs.field(factory=dict)
    first: dict[str, float] = attrs.field(factory=dict)
    requests_ok: int = 0
    requests_failed: int = 0
    fault_ok: int = 0
    """Requests while the fault held, until recovery."""
    fault_failed: int = 0
    converged_s: float | None = None
    """Active-active: seconds from the start of failback until every replica matched."""
    divergent: int | None = None
    """Entries in the store's divergence log after healing (superseded or conflicting)."""
    conflicts: int | None = None
    """The drill's keys the replicas still disagreed on after healing (no digest)."""
    writes_failed: int = 0

    def once(self, what: str, at: float) -> bool:
        """Record the first time ``what`` happened; True if this was it."""
        return self.first.setdefault(what, at) is at  # atomic: the client has a thread


class _OneCallAtATime:
    """``router`` called from the drill's threads (users, the observer, the controller) one call
    at a time: SDK clients are rarely thread-safe (httplib2, under google-api-python-client, is
    not), and a call mangled by another thread would hang or fail for reasons no user sees."""

    def __init__(self, router: TrafficRouter) -> None:
        self._router = router
        self._lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._router, name)
        if not callable(found):
            return found

        def one_at_a_time(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return found(*args, **kwargs)

        return one_at_a_time


class Drill:
    """A drill of one route: a Failover route with its store and the active-passive controller,
    or a Weighted route (active-active) with a multi-writer store, where traffic shifts away
    from the failed region by health alone and the drill checks convergence after healing."""

    def __init__(
        self,
        router: TrafficRouter,
        route_name: str,
        *,
        fault: Fault,
        region: str,
        health: HealthSource,
        store: ReplicatedStore | None = None,
        objectives: Objectives | None = None,
        settings: DrillSettings | None = None,
        ssl_context: ssl.SSLContext | None = None,
        on_event: OnEvent | None = None,
        multi_writer: bool | None = None,
    ) -> None:
        """``multi_writer``: whether ``store`` takes writes in every region, as its spec says
        (None: its own ``multi_writer``, which the local store has). A Weighted route on a
        single-writer store is drilled with every write sent to the write region."""
        route = router.get(route_name)
        if not isinstance(route.policy, Failover | Weighted):
            raise InvalidInput("route.policy", "a drill needs a Failover or a Weighted route")
        self.active_active = isinstance(route.policy, Weighted)
        if multi_writer is None:
            multi_writer = getattr(store, "multi_writer", False) is True
        self.local_writes = self.active_active and multi_writer
        """Each write goes to the region DNS sent the client to; otherwise to the store's
        write region, as an active-active app on a single-writer store (Firestore) does."""
        if route.health_check is None:
            raise InvalidInput("route.health_check", "a drill sends the route's health check")
        if region not in {e.region for e in route.endpoints}:
            raise InvalidInput("region", f"{region!r} is not a region of {route.name}")
        router = cast(TrafficRouter, _OneCallAtATime(router))
        self.router, self.route, self.store, self.fault = router, route, store, fault
        self.region, self.health = region, health
        self.objectives = objectives or Objectives()
        self.settings = settings or DrillSettings()
        self._ssl = ssl_context
        self._on_event = on_event
        self.controller = (
            None
            if self.active_active
            else ActivePassiveController(
                router,
                route.name,
                health=health,
                store=store,
                catch_up_s=self.settings.catch_up_s,
                rpo_s=self.objectives.rpo_s,
            )
        )
        self.timeline = Timeline()
        self._obs = _Observations()
        self._counting = threading.Lock()
        self._lookup = threading.Lock()
        self._run_id = uuid.uuid4().hex[:8]
        self._seq = 0
        self._start = 0.0
        self._started_at = ""
        self._fault_at: float | None = None
        self._measuring = False  # from the fault until failback starts
        self._answer: tuple[str, str, float] | None = None  # address, endpoint, valid until

    # ------------------------------------------------------------------ the run

    def plan(self) -> dict[str, Any]:
        """What ``run`` would do, with each phase's prediction; nothing is touched."""
        predicted = self._predicted()
        parts = getattr(self.fault, "faults", [self.fault])
        leases = [lease for f in parts if (lease := getattr(f, "lease_s", None)) is not None]
        wait = self.settings.timeout_s
        return {
            "route": self.route.name,
            "mode": "active-active" if self.active_active else "active-passive",
            "region": self.region,
            "fault": self.fault.description,
            "lease_s": max(leases, default=None),
            "steps": [
                f"check the steady state: every region healthy (waiting up to {wait:g}s)",
                f"send traffic for {self.settings.steady_s:g}s",
                f"inject: {self.fault.description}",
                f"wait up to {wait:g}s for requests and writes to recover",
                {
                    "always": "revert the fault and fail back",
                    "never": "revert the fault, stay failed over",
                    "on-deviation": "revert the fault; fail back if an objective was missed",
                }[self.settings.rollback],
            ],
            "predicted_s": {k: v for k, v in predicted.items() if v is not None},
            "objective_rto_s": self.objectives.rto_s,
            "objective_rpo_s": self.objectives.rpo_s,
        }

    def run(self, abort: threading.Event | None = None) -> DrillReport:
        abort = abort or threading.Event()
        overrides = self.router.endpoint_status(self.route.name)
        write_region = self.store.write_region if self.store is not None else None
        self._start = time.monotonic()
        self._started_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        outcome = "recovered"
        to_region: str | None = None
        lost: list[float] = []
        failback = Failback(attempted=False, ok=False, seconds=None, detail="not attempted")
        try:
            self._event("steady traffic")
            self._sample_state()
            self._loop(self.settings.steady_s, abort)
            if not self._loop(self.settings.timeout_s, abort, until=self._steady):
                raise NotSteady(self._unsteady())
            self._event(f"fault: {self.fault.description}")
            self._fault_at = self._now()
            self._measuring = True
            self.fault.inject()
            self._sample_state()
            recovered = self._loop(self.settings.timeout_s, abort, until=self._recovered)
            if recovered:
                self._obs.once("recovered", self._now())
                self._event("recovered: requests and writes succeed again")
                self._loop(self.settings.confirm_s, abort)
            else:
                outcome = "not recovered"
                self._event(f"not recovered within {self.settings.timeout_s:g}s")
            self._measuring = False
            to_region = self._moved_to()
            lost = self._lost_writes(to_region or self._survivor())
            if self._rolls_back(outcome, lost):
                failback = self._failback(abort)
        except NotSteady as exc:
            outcome = "not steady"
            self._event(f"not steady, no fault injected: {exc}")
        except Aborted:
            outcome = "aborted"
            self._event("aborted: restoring routing and write region")
            self._restore(overrides, write_region)
        finally:
            with contextlib.suppress(MultiregionError):
                self.fault.revert()
            self._cleanup()
        return self._report(outcome, to_region, lost, failback)

    def _loop(
        self,
        seconds: float,
        abort: threading.Event,
        *,
        until: Callable[[], bool] | None = None,
    ) -> bool:
        """Observe and step the controller every tick while users send requests and the writer
        writes, in threads of their own: a request hanging on a blackholed region delays
        neither the other users nor the measurement of the other phases."""
        stop = threading.Event()
        workers = [
            threading.Thread(target=self._users, args=(stop,), name="drill-users"),
            threading.Thread(target=self._writer, args=(stop,), name="drill-writer"),
        ]
        for worker in workers:
            worker.start()
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                if abort.is_set():
                    raise Aborted
                tick = time.monotonic()
                self._observe()
                if until is not None and until():
                    return True
                abort.wait(max(0.0, self.settings.tick_s - (time.monotonic() - tick)))
            return until is None
        finally:
            stop.set()
            for worker in workers:
                worker.join()

    def _users(self, stop: threading.Event) -> None:
        """A user arrives every tick and sends one request, in a thread of its own (at most
        ``MAX_IN_FLIGHT`` hang at once): the first one served after the fault is the RTO,
        whatever the ones before it still wait for."""
        slots = threading.BoundedSemaphore(MAX_IN_FLIGHT)
        sent: list[threading.Thread] = []
        while not stop.is_set():
            tick = time.monotonic()
            if slots.acquire(blocking=False):
                user = threading.Thread(target=self._user, args=(slots,), name="drill-user")
                user.start()
                sent = [t for t in sent if t.is_alive()] + [user]
            stop.wait(max(0.0, self.settings.tick_s - (time.monotonic() - tick)))
        for user in sent:
            user.join()

    def _user(self, slots: threading.BoundedSemaphore) -> None:
        try:
            self._request()
        finally:
            slots.release()

    def _writer(self, stop: threading.Event) -> None:
        """One write a tick, each after the last (a write region takes them in order)."""
        while not stop.is_set():
            tick = time.monotonic()
            self._write()
            stop.wait(max(0.0, self.settings.tick_s - (time.monotonic() - tick)))

    def _steady(self) -> bool:
        """The steady-state hypothesis, checked before any fault: every region healthy."""
        return not self._unsteady()

    def _unsteady(self) -> str:
        latest = {region: samples[-1][1] for region, samples in self._obs.health.items()}
        bad = [f"{r} {state}" for r, state in sorted(latest.items()) if state != "healthy"]
        return ", ".join(bad) if latest else "no health read yet"

    def _recovered(self) -> bool:
        """Requests and writes succeed again and, once the failed region was seen unhealthy,
        the controller has moved the write region (else the move would land in failback)."""
        first = self._obs.first
        need = ["request-after-fault"] + (["write-after-fault"] if self.store is not None else [])
        if self.active_active:
            # Some requests succeed at once (DNS also answers the others): recovered means the
            # region was seen unhealthy and DNS stopped answering it.
            return all(k in first for k in need) and self._shifted() is not None
        if "detect" in first:
            need.append("promote")
        return all(key in first for key in need)

    def _shifted(self) -> float | None:
        """Since when the router's answers have not named the failed region (active-active):
        after its last answer naming it, and never before health found it failed (a weighted
        answer may skip a region by chance)."""
        detected = self._obs.first.get("detect")
        if detected is None:
            return None
        until = self._obs.first.get("recovered", float("inf"))
        samples = [(at, r) for at, r in self._obs.dns if (self._fault_at or 0.0) <= at <= until]
        last = max((i for i, (_, r) in enumerate(samples) if r == self.region), default=-1)
        if last + 1 >= len(samples):
            return None
        return max(samples[last + 1][0], detected)

    def _moved_to(self) -> str | None:
        if self.controller is None or self.controller.active == self.region:
            return None
        return self.controller.active

    def _survivor(self) -> str | None:
        """Where lost writes are looked for: the write region, or (active-active) another."""
        if self.store is None:
            return None
        if self.active_active:
            return next(r for r in self.store.regions if r != self.region)
        return self.store.write_region

    # ------------------------------------------------------------------ one tick

    def _tick(self) -> None:
        self._observe()
        self._request()
        self._write()

    def _observe(self) -> None:
        self._sample_health()
        self._sample_dns()
        if self.controller is None:
            return
        try:
            move = self.controller.step()
        except MultiregionError as exc:
            logger.warning("controller step failed: %s", exc)
        else:
            if move is not None:
                self._sample_state()
            if move is not None and self._measuring:
                at = self._now()
                self._obs.once("decision", at - move.duration_s)
                self._obs.once("promote", at)
                epoch = f", fence epoch {move.fence.epoch}" if move.fence is not None else ""
                self._event(f"{move.decision.action} to {move.decision.to_region}{epoch}")

    def _sample_dns(self) -> None:
        """The router's own answer now, as a resolver without a cache would get it."""
        try:
            answer = self.router.resolve(self.route.name)
        except MultiregionError:
            region = "no answer"
        else:
            names = answer.endpoints or answer.records
            region = self._region_of(names[0]) if names else "empty"
        at = self._now()
        self._obs.dns.append((at, region))
        moved = (
            region not in (self.region, "no answer", "empty")
            and self._measuring
            and not self.active_active  # its answers name several regions all along
        )
        if moved and self._obs.once("switch", at):
            self._event(f"DNS answers {region}")

    def _sample_state(self) -> None:
        """The write region and the endpoint overrides, where the drill or controller moved them."""
        at = self._now()
        if self.store is not None:
            with contextlib.suppress(MultiregionError):
                self._obs.write_region.append((at, self.store.write_region))
        with contextlib.suppress(MultiregionError):
            forced = self.router.endpoint_status(self.route.name)
            down = sorted(n for n, status in forced.items() if status is EndpointStatus.DOWN)
            self._obs.overrides.append((at, "down: " + ", ".join(down) if down else "none"))

    def _sample_health(self) -> None:
        at = self._now()
        for region, state in self.health().items():
            self._obs.health.setdefault(region, []).append((at, state.value))
            if (
                region == self.region
                and state is HealthState.UNHEALTHY
                and self._measuring
                and self._obs.once("detect", at)
            ):
                self._event(f"{region} detected unhealthy")

    def _resolve(self) -> tuple[str, str] | None:
        """The client's answer: cached for its TTL, one lookup at a time (as a stub resolver
        sends one query while the users wait for it; SDK clients are rarely thread-safe)."""
        with self._lookup:
            return self._lookup_once()

    def _lookup_once(self) -> tuple[str, str] | None:
        now = time.monotonic()
        if self._answer is not None and now < self._answer[2]:
            return self._answer[0], self._answer[1]
        try:
            answer = self.router.resolve(self.route.name)
        except MultiregionError as exc:
            logger.info("resolve failed: %s", exc)
            self._answer = None
            return None
        if not answer.records:
            self._answer = None
            return None
        endpoint = answer.endpoints[0] if answer.endpoints else answer.records[0]
        self._answer = (answer.records[0], endpoint, now + answer.ttl)
        region = self._region_of(endpoint)
        at = self._now()
        self._obs.client_dns.append((at, region))
        if region != self.region and self._measuring and not self.active_active:
            # The router's answer moved no later than a client's lookup saw it move.
            if self._obs.once("switch", at):
                self._event(f"DNS answers {region}")
            if self._obs.once("client-switch", at):
                self._event(f"the client's lookup answers {region}")
        return answer.records[0], endpoint

    def _region_of(self, endpoint: str) -> str:
        try:
            return self.route.endpoint(endpoint).region
        except InvalidInput:
            return endpoint

    def _request(self) -> None:
        resolved = self._resolve()
        at = self._now()
        ok = False
        if resolved is not None:
            check = self.route.health_check
            assert check is not None
            ok = asyncio.run(self._send(resolved[0], check))
            if not ok:
                self._answer = None  # a client retries the lookup after a failed connection
        self.timeline.mark("requests", at, "ok" if ok else "failed", ok)
        with self._counting:  # users run in threads of their own
            self._count(ok)
        if ok:
            # Recovery means being served elsewhere: a cached answer may still reach a region
            # that was only forced out of DNS.
            assert resolved is not None
            if self._measuring and self._region_of(resolved[1]) != self.region:
                self._obs.once("request-after-fault", at)

    def _count(self, ok: bool) -> None:
        if self._measuring and "recovered" not in self._obs.first:
            if ok:
                self._obs.fault_ok += 1
            else:
                self._obs.fault_failed += 1
        if ok:
            self._obs.requests_ok += 1
        else:
            self._obs.requests_failed += 1

    async def _send(self, address: str, check: HealthCheck) -> bool:
        timeout = self.settings.request_timeout_s
        try:
            result = await asyncio.wait_for(
                probe_once(address, check, ssl_context=self._ssl), timeout
            )
        except TimeoutError:
            return False
        return result.ok

    def _write(self) -> None:
        if self.store is None:
            return
        self._seq += 1
        key = f"multiregion-drill/{self._run_id}/{self._seq:06d}"
        try:
            if self.active_active:
                # Written where the client was sent, with one key every region updates: what
                # healing must then reconcile.
                answer = self._answer
                region = self._region_of(answer[1]) if answer is not None else self.region
                target = region if self.local_writes else None
                self.store.put(key, {"seq": self._seq, "region": region}, region=target)
                shared = {"seq": self._seq, "region": region}
                self.store.put(f"multiregion-drill/{self._run_id}/shared", shared, region=target)
            else:
                self.store.put(key, {"seq": self._seq})
        except MultiregionError:
            self._obs.writes_failed += 1
            self.timeline.mark("writes", self._now(), "failed", False)
            return
        at = self._now()
        self.timeline.mark("writes", at, "ok")
        self._obs.acked[key] = at
        if self._measuring:
            self._obs.once("write-after-fault", at)

    # ------------------------------------------------------------------ after the fault

    def _lost_writes(self, region: str | None) -> list[float]:
        """Acknowledgement times of writes the surviving ``region`` does not have."""
        if self.store is None or region is None:
            return []
        lost = []
        for key, at in self._obs.acked.items():
            try:
                self.store.get(key, region=region)
            except NotFound:
                lost.append(at)
            except MultiregionError as exc:
                logger.warning("cannot count lost writes in %s: %s", region, exc)
                self._event(f"lost writes not counted: {region} unreadable")
                return []
        return sorted(lost)

    def _rolls_back(self, outcome: str, lost: list[float]) -> bool:
        if self.settings.rollback != "on-deviation":
            return self.settings.rollback == "always"
        rto, rpo = self._since_fault("request-after-fault"), (lost[-1] - lost[0] if lost else 0)
        objectives = self.objectives
        return (
            outcome != "recovered"
            or (objectives.rto_s is not None and (rto is None or rto > objectives.rto_s))
            or (objectives.rpo_s is not None and rpo > objectives.rpo_s)
        )

    def _failback(self, abort: threading.Event) -> Failback:
        started = self._now()
        self._event("failback: fault reverted")
        try:
            self.fault.revert()
            self._sample_state()
            deadline = time.monotonic() + self.settings.timeout_s
            while self.health().get(self.region) is not HealthState.HEALTHY:
                if time.monotonic() > deadline:
                    return Failback(True, False, None, f"{self.region} never became healthy")
                self._tick()
                abort.wait(self.settings.tick_s)
            if self.controller is not None and self.controller.active != self.region:
                self.controller.failback("drill failback", force=self.settings.force_failback)
                self._sample_state()
            self._answer = None
            while True:
                resolved = self._resolve()
                if resolved is not None and self._region_of(resolved[1]) == self.region:
                    break
                if time.monotonic() > deadline:
                    return Failback(True, False, None, "DNS did not answer the primary again")
                self._answer = None
                abort.wait(self.settings.tick_s)
            seconds = self._now() - started
            self._event(f"failback complete: {self.region} serves again")
            self._loop(self.settings.confirm_s, abort)
            if self.active_active:
                self._converge(started, deadline, abort)
            return Failback(True, True, seconds, f"{self.region} serving again")
        except MultiregionError as exc:
            return Failback(True, False, None, f"failback failed: {exc}")

    def _converge(self, started: float, deadline: float, abort: threading.Event) -> None:
        """Wait until every replica holds the same content (where the store can say), and
        count what healing had to reconcile."""
        digest = getattr(self.store, "content_digest", None)
        if self.store is None:
            return
        if not self.local_writes:
            self._event("one write region: no concurrent writes to reconcile")
            return
        if not callable(digest):
            self._count_conflicts(started, abort)
            return
        while len({digest(r) for r in self.store.regions}) > 1:
            if time.monotonic() > deadline:
                self._event("replicas did not converge")
                return
            abort.wait(self.settings.tick_s)
        self._obs.converged_s = round(self._now() - started, 3)
        self._event(f"replicas converged {self._obs.converged_s:.2f}s after healing")
        with contextlib.suppress(MultiregionError):
            self._obs.divergent = len(self.store.divergence(include_resolved=True))

    def _count_conflicts(self, started: float, abort: threading.Event) -> None:
        """The drill's keys the replicas disagree on (``conflicts()``: DynamoDB, Cosmos), waited
        for at most ``catch_up_s`` to settle; converged when none is left."""
        assert self.store is not None
        prefix = f"multiregion-drill/{self._run_id}/"
        deadline = time.monotonic() + self.settings.catch_up_s
        while True:
            try:
                found = [v for v in self.store.conflicts() if v[0].key.startswith(prefix)]
            except MultiregionError as exc:  # Unsupported included: nothing to say
                self._event(f"conflicts not counted: {exc}")
                return
            if not found or time.monotonic() > deadline:
                break
            abort.wait(self.settings.tick_s)
        self._obs.conflicts = len(found)
        if found:
            self._event(f"{len(found)} keys still differ between replicas after healing")
        else:
            self._obs.converged_s = round(self._now() - started, 3)
            self._event(f"replicas agree {self._obs.converged_s:.2f}s after healing")

    def _restore(self, overrides: dict[str, EndpointStatus], write_region: str | None) -> None:
        with contextlib.suppress(MultiregionError):
            self.fault.revert()
        for name, status in overrides.items():
            with contextlib.suppress(MultiregionError):
                self.router.set_endpoint_status(self.route.name, name, status)
        if self.store is not None and write_region is not None and not self.active_active:
            with contextlib.suppress(MultiregionError):
                if self.store.write_region != write_region:
                    self.store.promote(write_region)

    def _cleanup(self) -> None:
        if self.store is None:
            return
        for key in self._obs.acked:
            with contextlib.suppress(MultiregionError):
                self.store.delete(key)

    # ------------------------------------------------------------------ reporting

    def _now(self) -> float:
        return time.monotonic() - self._start

    def _event(self, text: str) -> None:
        at = self._now()
        self.timeline.mark("events", at, text)
        logger.info("%.2fs %s", at, text)
        if self._on_event is not None:
            self._on_event(at, text)

    def _since_fault(self, what: str) -> float | None:
        at = self._obs.first.get(what)
        if at is None or self._fault_at is None:
            return None
        return round(at - self._fault_at, 3)

    def _report(
        self, outcome: str, to_region: str | None, lost: list[float], failback: Failback
    ) -> DrillReport:
        end = self._now()
        for region, samples in sorted(self._obs.health.items()):
            self.timeline.spans.extend(spans_from_samples(f"health:{region}", samples, end))
        for lane, samples in (
            ("dns", self._obs.dns),
            ("client-dns", self._obs.client_dns),
            ("write-region", self._obs.write_region),
            ("overrides", self._obs.overrides),
        ):
            self.timeline.spans.extend(spans_from_samples(lane, samples, end))
        if self.active_active and outcome == "recovered":
            shifted = self._shifted()
            if shifted is not None:
                # Users stop failing once DNS stops answering the failed region.
                self._obs.once("switch", shifted)
                first = self._obs.first
                first["request-after-fault"] = max(first["request-after-fault"], shifted)
        phases = self._phases()
        during = self._obs.fault_ok + self._obs.fault_failed
        return DrillReport(
            started_at=self._started_at,
            duration_s=round(end, 3),
            mode="active-active" if self.active_active else "active-passive",
            route=self.route.name,
            fault=self.fault.description,
            region=self.region,
            to_region=to_region,
            outcome=outcome,
            detection_s=self._since_fault("detect"),
            dns_switch_s=self._since_fault("switch"),
            promote_s=self._since_fault("promote"),
            rto_s=self._since_fault("request-after-fault"),
            write_rto_s=self._since_fault("write-after-fault"),
            rpo_s=round(lost[-1] - lost[0], 3) if lost else 0.0,
            lost_writes=len(lost),
            acknowledged_writes=len(self._obs.acked),
            expected_rto_s=round(self.router.expected_failover_s(self.route), 3),
            worst_rto_s=round(self.router.worst_failover_s(self.route), 3),
            objective_rto_s=self.objectives.rto_s,
            objective_rpo_s=self.objectives.rpo_s,
            requests_ok=self._obs.requests_ok,
            requests_failed=self._obs.requests_failed,
            error_rate_during_fault=round(self._obs.fault_failed / during, 3) if during else None,
            phases=phases,
            converged_s=self._obs.converged_s,
            divergent_writes=self._obs.divergent,
            conflicts=self._obs.conflicts,
            failback=failback,
            timeline=self.timeline,
        )

    def _predicted(self) -> dict[str, float | None]:
        confirm = self.controller.policy.confirm if self.controller is not None else None
        effects = effects_of([self.fault])
        settings = self.settings
        return predict(
            self.router,
            self.route,
            effects,
            settings.tick_s,
            confirm,
            promote_delay_s=0.0 if self.store is None else self.store.promote_delay_s,
            time_scale=settings.time_scale,
        )

    def _phases(self) -> list[Phase]:
        """Each phase predicted and measured, drawn as a lane (a bar measured, a diamond
        predicted) when the fault happened."""
        predicted = self._predicted()
        measured = {
            phase: self._since_fault(key)
            for phase, key in (
                ("detection", "detect"),
                ("decision", "decision"),
                ("dns_switch", "switch"),
                ("promotion", "promote"),
                ("first_request", "request-after-fault"),
            )
        }
        switch, client = measured["dns_switch"], self._since_fault("client-switch")
        cache = None if switch is None or client is None else round(max(0.0, client - switch), 3)
        measured["client_cache"] = cache
        starts = {
            "decision": measured["detection"],
            "promotion": measured["decision"],
            "client_cache": switch,
        }
        phases = [
            Phase(name, predicted[name], measured[name], starts.get(name, 0.0)) for name in PHASES
        ]
        if self._fault_at is not None:
            for phase in phases:
                self._draw(phase, self._fault_at)
        return phases

    def _draw(self, phase: Phase, fault_at: float) -> None:
        lane = f"phase:{phase.name}"
        start = phase.started_s
        if phase.measured_s is not None and start is not None:
            end = start + phase.measured_s if phase.name == "client_cache" else phase.measured_s
            self.timeline.spans.append(
                Span(lane, fault_at + start, fault_at + max(end, start), "measured")
            )
        if phase.predicted_s is not None:
            at = phase.predicted_s
            if phase.name == "client_cache":
                if start is None:
                    return
                at += start
            self.timeline.mark(lane, fault_at + at, f"predicted {phase.predicted_s:.2f}s")
