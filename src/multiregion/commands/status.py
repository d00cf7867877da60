"""What ``multiregion status`` reports: the route, its endpoints, DNS, the store, the RTO.

``collect`` reads everything through the interfaces and never stops at the first failure: a
part that cannot be read (a store region down, a DNS server not answering) is reported as an
error beside what could be read, since status is what an operator runs when things are wrong.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from rich.console import Console
from rich.table import Table

from multiregion.commands.backup import restore_test_warning
from multiregion.commands.connection import serves_itself
from multiregion.deployment import Deployment
from multiregion.errors import MultiregionError, NotFound
from multiregion.failover.controller import probe_health
from multiregion.interfaces import TrafficRouter
from multiregion.model import EndpointHealth, EndpointStatus, HealthState, Route
from multiregion.planning import describe_check, describe_policy

WAIT_POLL_S = 0.1


@attrs.frozen
class EndpointStatusRow:
    name: str
    region: str
    target: str
    override: str
    health: str
    detail: str = ""


@attrs.frozen
class StoreStatus:
    write_region: str | None = None
    fence_epoch: int | None = None
    replication_lag_s: Mapping[str, float | None] | None = attrs.field(default=None, hash=False)
    promote_delay_s: float = 0.0
    """How long a promote waits before the new write region takes writes (a write lease)."""
    fence_forced: bool = False
    """The current epoch came from a forced promote, without a majority of the voters."""
    conflicts: int | None = None
    """Keys whose replicas hold concurrent writes not settled yet (None where the store cannot
    tell)."""
    divergent_writes: int | None = None
    """Writes a promote superseded before they replicated, not yet reconciled (None where the
    store keeps no divergence log)."""
    """Seconds each region lags (None where unreadable); None when the store cannot measure."""
    error: str | None = None


@attrs.frozen
class AnswerStatus:
    records: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()
    ttl: int | None = None
    error: str | None = None


@attrs.frozen
class Status:
    deployment: str
    route: str
    policy: str
    ttl: int
    health_check: str
    endpoints: tuple[EndpointStatusRow, ...]
    answer: AnswerStatus
    store: StoreStatus | None
    expected_failover_s: float
    rto_objective_s: float | None
    dns: str | None
    """Where the local data plane answers, and whether this command started it."""
    restore_test: str | None = None
    """A warning when the last verified restore is older than its policy (commands.backup)."""

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


Wait = Callable[[str], contextlib.AbstractContextManager[Any]]
"""Shows ``text`` while a slow step runs (a rich spinner on a terminal)."""


def collect(deployment: Deployment, wait: Wait | None = None) -> Status:
    """The status of ``deployment``'s route as applied (not as the spec says)."""
    spec = deployment.spec
    router = deployment.router
    try:
        route = router.get(spec.route.name)
    except NotFound:
        raise NotFound(
            f"route {spec.route.name} is not applied: run multiregion apply --config {spec.source}"
        ) from None
    overrides = router.endpoint_status(route.name)
    health = _health(deployment, router, route, wait or (lambda _text: contextlib.nullcontext()))
    rows = []
    unknown = "unchecked" if route.health_check is None else HealthState.UNKNOWN.value
    for endpoint in route.endpoints:
        verdict = health.get(endpoint.name)
        rows.append(
            EndpointStatusRow(
                name=endpoint.name,
                region=endpoint.region,
                target=endpoint.target,
                override=overrides.get(endpoint.name, EndpointStatus.AUTO).value,
                health=unknown if verdict is None else verdict.state.value,
                detail="" if verdict is None else verdict.detail,
            )
        )
    return Status(
        deployment=spec.name,
        route=route.name,
        policy=describe_policy(route.policy),
        ttl=route.ttl,
        health_check=describe_check(route.health_check),
        endpoints=tuple(rows),
        answer=_answer(router, route),
        store=_store(deployment),
        expected_failover_s=router.expected_failover_s(route),
        rto_objective_s=spec.objectives.rto_s,
        dns=_dns(deployment, router),
        restore_test=restore_test_warning(deployment),
    )


def _health(
    deployment: Deployment, router: TrafficRouter, route: Route, wait: Wait
) -> dict[str, EndpointHealth]:
    """Health per endpoint name: the local data plane's own verdicts, else the probe's.

    A data plane this command just started has no verdicts yet; a first one takes
    ``success_threshold`` or ``failure_threshold`` probes, so this waits that long at most.
    """
    from multiregion.providers.local.router import LocalRouter

    check = route.health_check
    if check is None:
        return {}
    read: Callable[[], dict[str, EndpointHealth]]
    if isinstance(router, LocalRouter):
        local = router
        read = lambda: local.health(route.name)  # noqa: E731
    else:
        read = _probe_reader(deployment, route)
        if not deployment.probe.capabilities.reports_status:
            return read()  # the service keeps its verdicts elsewhere: waiting would not help
    found = read()
    deadline = time.monotonic() + check.worst_detection_s() + check.interval_s
    if _undecided(route, found):
        with wait("waiting for first health verdicts"):
            while _undecided(route, found) and time.monotonic() < deadline:
                time.sleep(WAIT_POLL_S)
                found = read()
    return found


def region_health(deployment: Deployment, wait: Wait) -> dict[str, HealthState]:
    """Health per region of the applied route (a region is as unhealthy as its worst endpoint)."""
    route = deployment.router.get(deployment.spec.route.name)
    found = _health(deployment, deployment.router, route, wait)
    states: dict[str, HealthState] = {}
    for endpoint in route.endpoints:
        verdict = found.get(endpoint.name)
        state = HealthState.UNKNOWN if verdict is None else verdict.state
        if states.get(endpoint.region) is not HealthState.UNHEALTHY:
            states[endpoint.region] = state
    return states


def _undecided(route: Route, health: Mapping[str, EndpointHealth]) -> bool:
    """Some endpoint has no verdict yet (none published, or still UNKNOWN)."""
    return any(
        e.name not in health or health[e.name].state is HealthState.UNKNOWN for e in route.endpoints
    )


def _probe_reader(deployment: Deployment, route: Route) -> Callable[[], dict[str, EndpointHealth]]:
    """Health per endpoint from the deployment's probe (checks ensured, keyed by region)."""
    by_region = probe_health(deployment.probe, route)

    def read() -> dict[str, EndpointHealth]:
        states = by_region()
        return {
            e.name: EndpointHealth(e.name, states.get(e.region, HealthState.UNKNOWN))
            for e in route.endpoints
        }

    return read


def _answer(router: TrafficRouter, route: Route) -> AnswerStatus:
    try:
        answer = router.resolve(route.name)
    except MultiregionError as exc:
        return AnswerStatus(error=str(exc))
    return AnswerStatus(records=answer.records, endpoints=answer.endpoints, ttl=answer.ttl)


def _store(deployment: Deployment) -> StoreStatus | None:
    """The store's write region, fence and lag; None when the spec configures no store."""
    if not deployment.spec.settings["store"]:
        return None
    try:
        store = deployment.store
        fence = store.fence()
    except MultiregionError as exc:
        return StoreStatus(error=str(exc))
    lag: dict[str, float | None] | None = None
    if store.capabilities.replication_lag:
        lag = {}
        for region in store.regions:
            try:
                lag[region] = store.replication_lag(region)
            except MultiregionError:
                lag[region] = None
    divergent = conflicts = None
    if store.capabilities.divergence_log:
        with contextlib.suppress(MultiregionError):
            divergent = len(store.divergence())
    if getattr(store, "multi_writer", False):  # only writes in several regions conflict
        with contextlib.suppress(MultiregionError):  # Unsupported where the store cannot tell
            conflicts = len(store.conflicts())
    return StoreStatus(
        write_region=fence.region,
        fence_epoch=fence.epoch,
        replication_lag_s=lag,
        promote_delay_s=store.promote_delay_s,
        fence_forced=fence.forced,
        conflicts=conflicts,
        divergent_writes=divergent,
    )


def _dns(deployment: Deployment, router: TrafficRouter) -> str | None:
    from multiregion.providers.local.router import LocalRouter

    if not isinstance(router, LocalRouter):
        return None
    host = deployment.spec.settings["router"].get("dns_host", "127.0.0.1")
    try:
        where = f"{host}:{router.dns_port}"
    except MultiregionError as exc:
        return str(exc)
    if serves_itself(deployment):
        return f"{where} (started by this command: run multiregion serve to keep one up)"
    return f"{where} (multiregion serve)"


# --------------------------------------------------------------------------- rendering


def render(status: Status, console: Console) -> None:
    """Tables for a person; colours on a terminal, plain text elsewhere."""
    console.print(
        f"[bold]{status.deployment}[/]: {status.route}  {status.policy}  TTL {status.ttl}s"
    )
    console.print(f"health check: {status.health_check}")
    if status.dns is not None:
        console.print(f"DNS: {status.dns}")
    table = Table("endpoint", "region", "target", "override", "health", "detail")
    for row in status.endpoints:
        table.add_row(
            row.name,
            row.region,
            row.target,
            _styled(row.override, {"down": "red", "up": "yellow"}),
            _styled(row.health, {"healthy": "green", "unhealthy": "red"}),
            row.detail,
        )
    console.print(table)
    answer = status.answer
    if answer.error is not None:
        console.print(f"DNS answer: [red]{answer.error}[/]")
    else:
        shown = ", ".join(
            f"{r} ({e})" for r, e in zip(answer.records, answer.endpoints, strict=False)
        )
        console.print(f"DNS answer: {shown or 'empty'}  TTL {answer.ttl}s")
    if status.store is not None:
        _render_store(status.store, console)
    objective = status.rto_objective_s
    line = f"expected failover time: {status.expected_failover_s:.1f}s"
    if objective is not None:
        colour = "green" if status.expected_failover_s <= objective else "red"
        line += f" (RTO objective [{colour}]{objective:g}s[/])"
    console.print(line)
    if status.restore_test is not None:
        console.print(f"[yellow]warning:[/] {status.restore_test}")


def _render_store(store: StoreStatus, console: Console) -> None:
    if store.error is not None:
        console.print(f"store: [red]{store.error}[/]")
        return
    line = f"store: write region [bold]{store.write_region}[/], fence epoch {store.fence_epoch}"
    if store.replication_lag_s is not None:
        lags = ", ".join(
            f"{region} {'?' if lag is None else f'{lag:.2f}s'}"
            for region, lag in store.replication_lag_s.items()
        )
        line += f"; replication lag: {lags}"
    if store.promote_delay_s:
        line += f"; a promote waits {store.promote_delay_s:.2f}s (write lease)"
    console.print(line)
    if store.fence_forced:
        console.print(
            "[red]the current epoch was FORCED (promoted without a majority of the store's "
            "voters): another promote may have issued the same epoch[/]"
        )
    if store.conflicts:
        console.print(
            f"[yellow]{store.conflicts} keys with concurrent writes[/] not settled yet "
            "(the conflict policy decides what reads see)"
        )
    if store.divergent_writes:
        console.print(
            f"[yellow]{store.divergent_writes} divergent writes[/] (accepted by a write region "
            "that a promote replaced before they replicated): multiregion reconcile"
        )


def _styled(text: str, colours: Mapping[str, str]) -> str:
    colour = colours.get(text)
    return text if colour is None else f"[{colour}]{text}[/]"
