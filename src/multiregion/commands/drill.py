"""``multiregion drill``: inject a fault into the deployment, measure, fail back, report.

The faults are listed in ``FAULTS`` (and in ``--help``). Those that fail a region the way an
outage does go through the fault proxy in front of the region's app (``multiregion
faultproxy``); their toxics hold a lease the drill renews, so a killed drill leaves no fault
behind. Ctrl-C aborts the drill and leaves routing and the write region as they were.

A cloud spec whose emulators ``multiregion faultproxy --emulators`` runs is drilled the same
way: its store replicas are behind the proxy too (where the emulator serves regions apart),
the drill predicts on the fakes' clock, and where the provider's checks never probe (Route 53
on moto) the library's own probes are the controller's health source.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import textwrap
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import attrs
from rich.console import Console
from rich.table import Table

from multiregion import registry
from multiregion.commands.connection import open_deployment
from multiregion.commands.output import add_json
from multiregion.deployment import Deployment, load
from multiregion.drill import chaostoolkit, history
from multiregion.drill.faults import (
    Fault,
    ForceDown,
    Partition,
    ProxyFault,
    StoreOutage,
    Together,
)
from multiregion.drill.phases import LABELS, Effects
from multiregion.drill.report import DrillReport
from multiregion.drill.runner import ROLLBACKS, Drill, DrillSettings
from multiregion.errors import InvalidInput, NotFound, Unsupported
from multiregion.failover.controller import HealthSource, probe_health
from multiregion.faultproxy import command as faultproxy_command
from multiregion.faultproxy import spec as proxied
from multiregion.faultproxy.client import DEFAULT_LEASE_S, ControlClient
from multiregion.faultproxy.toxics import Blackhole, Engage, HttpErrors, Latency, Toxic
from multiregion.model import Failover, Route, Weighted

if TYPE_CHECKING:
    from multiregion.testing.emulators.clouds import Emulation

FAULTS = {
    "region-outage": "the region's app blackholed through the fault proxy (connections accepted,"
    " never answered: health probes time out) and its store replica failed where the store can"
    " (local) or blackholed (moto, cosmosdb-server under --emulators); the controller must"
    " detect it, promote the standby and DNS must move (on a"
    " weighted route: DNS must stop answering the region, and replicas converge after healing)",
    "brownout": "the region's app slowed (--latency, --jitter) and a share of its HTTP requests"
    " answered 503 (--error-rate), through the fault proxy; health checks may or may not see it",
    "partition": "the store's replication and fencing links between the region and the others"
    " cut while users still reach it (local store only: no cloud emulator replicates between"
    " regions): its writes stop, since its side is a minority, and health checks see"
    " nothing; the report shows what users saw",
    "force-down": "the region forced out of DNS answers by the router's own override (any"
    " provider); nothing tells the controller, so the write region stays",
    "store-outage": "the region's store replica failed (local store) or blackholed through the"
    " proxy (moto, cosmosdb-server under --emulators); its app keeps answering, so health"
    " checks see nothing",
}
PROXIED = ("region-outage", "brownout")
EXIT_FAILED = 1
NO_REPLICA_WAIT_S = 0.2


def register(commands: argparse._SubParsersAction[Any]) -> None:
    text = "inject a fault, measure detection, switch, RTO and RPO, fail back"
    faults = "\n".join(f"  {name:14} {line}" for name, line in _fault_lines())
    parser = commands.add_parser(
        "drill",
        help=text,
        description=text,
        epilog=f"faults (docs/drills.md):\n{faults}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", required=True, metavar="FILE", help="the deployment spec (TOML)"
    )
    parser.add_argument(
        "--region", metavar="REGION", help="the region to fail (default: the route's primary)"
    )
    parser.add_argument(
        "--fault",
        choices=tuple(FAULTS),
        default="force-down",
        help="what to inject (default force-down; each is described below)",
    )
    parser.add_argument(
        "--proxy",
        metavar="URL",
        help="the fault proxy's control API (default: the one `multiregion faultproxy` announced)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.2,
        metavar="SECONDS",
        help="brownout: seconds added (default %(default)s)",
    )
    parser.add_argument(
        "--jitter",
        type=float,
        default=0.05,
        metavar="SECONDS",
        help="brownout: +/- seconds (default %(default)s)",
    )
    parser.add_argument(
        "--error-rate",
        type=float,
        default=0.5,
        metavar="SHARE",
        help="brownout: share of requests answered 503 (default %(default)s)",
    )
    parser.add_argument(
        "--lease",
        type=float,
        default=DEFAULT_LEASE_S,
        metavar="SECONDS",
        help="seconds a proxy fault outlives the drill if it dies (default %(default)s)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait to recover (default %(default)s)",
    )
    parser.add_argument(
        "--steady",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="traffic before the fault (default %(default)s)",
    )
    parser.add_argument(
        "--rollback",
        choices=ROLLBACKS,
        default="always",
        help="after measuring: fail back always (default), never, or on-deviation (only when"
        " an objective was missed); the fault itself is always reverted",
    )
    parser.add_argument(
        "--no-failback", action="store_true", help="stay failed over (--rollback never)"
    )
    parser.add_argument(
        "--svg", metavar="FILE", help="where to write the timeline (default drill-<time>.svg)"
    )
    parser.add_argument(
        "--history",
        metavar="DIR",
        help="where reports are kept (default state/drills next to the spec)",
    )
    parser.add_argument("--no-history", action="store_true", help="keep no report")
    parser.add_argument(
        "--journal", metavar="FILE", help="also write the report as a Chaos Toolkit journal"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan and the predictions; inject nothing"
    )
    add_json(parser, "the report")
    parser.set_defaults(handler=run_drill)
    faultproxy_command.register(commands)
    _register_history(commands)


def _register_history(commands: argparse._SubParsersAction[Any]) -> None:
    text = "the drills kept so far: RTO and RPO against the objectives over time, as a picture"
    drills = commands.add_parser("drills", help=text, description=text)
    actions = drills.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help=text, description=text)
    listing.add_argument("--config", required=True, metavar="FILE", help="the deployment spec")
    listing.add_argument("--history", metavar="DIR", help="default state/drills next to the spec")
    listing.add_argument(
        "--svg", metavar="FILE", help="where to draw them (default history.svg in the folder)"
    )
    add_json(listing, "the kept reports")
    listing.set_defaults(handler=list_drills)


def _history_dir(args: argparse.Namespace) -> Path:
    return Path(args.history) if args.history else Path(args.config).parent / "state" / "drills"


def list_drills(args: argparse.Namespace) -> int:
    spec = load(args.config)
    folder = _history_dir(args)
    entries = history.load(folder)
    if not entries:
        raise NotFound(f"no drill kept in {folder}: run `multiregion drill --config {args.config}`")
    svg = Path(args.svg) if args.svg else folder / "history.svg"
    svg.write_text(history.render_svg(entries, f"Drills of {spec.route.name}"), encoding="utf-8")
    if args.json:
        print(json.dumps({"drills": entries, "svg": str(svg.resolve())}, indent=2))
        return 0
    table = Table(title=f"Drills of {spec.route.name} ({folder})")
    for column in ("when", "fault", "outcome", "RTO", "RPO", "errors", "passed"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            str(entry["at"]).replace("T", " ")[:19],
            str(entry["fault"]),
            str(entry["outcome"]),
            _against(entry.get("rto_s"), entry.get("objective_rto_s"), entry.get("rto_met")),
            _against(entry.get("rpo_s"), entry.get("objective_rpo_s"), entry.get("rpo_met")),
            ""
            if entry.get("error_rate_during_fault") is None
            else f"{entry['error_rate_during_fault']:.0%}",
            "yes" if entry.get("passed") else "[red]no[/]",
        )
    console = Console()
    console.print(table)
    console.print(f"picture: {svg}")
    return 0


def _against(value: float | None, objective: float | None, met: bool | None) -> str:
    shown = "never" if value is None else f"{value:.2f} s"
    if objective is None:
        return shown
    verdict = "[green]met[/]" if met else "[red]missed[/]"
    return f"{shown} / {objective:g} s {verdict}"


def _fault_lines() -> list[tuple[str, str]]:
    """Each fault's description wrapped under its name, for the help's epilog."""
    lines = []
    for name, text in FAULTS.items():
        for number, line in enumerate(textwrap.wrap(text, 62)):
            lines.append((name if number == 0 else "", line))
    return lines


def _fault(
    args: argparse.Namespace, deployment: Deployment, region: str, emulation: Emulation | None
) -> Fault:
    route = deployment.spec.route.name
    store = deployment.store
    if args.fault == "force-down":
        return ForceDown(deployment.router, route, region)
    if args.fault == "partition":
        if emulation is not None and emulation.partition:
            raise Unsupported(
                f"a partition on {emulation.provider}'s emulators: {emulation.partition}"
            )
        lever = _on_proxy(args, _proxy(args, deployment, needed=False), f"{region}.partition")
        return lever or Partition(store, region)
    if args.fault == "store-outage":
        replica = _on_proxy(args, _proxy(args, deployment, needed=False), f"{region}.store")
        if replica is not None:
            return replica
        if emulation is not None:
            raise Unsupported(
                f"a store outage on {emulation.provider}: {emulation.no_store_listener}"
            )
        return StoreOutage(store, region)
    client = _proxy(args, deployment)
    if args.fault == "brownout":
        toxics: list[Toxic] = [Latency(args.latency, args.jitter), HttpErrors(args.error_rate)]
        text = f"brownout of {region}: +{args.latency:g}s latency, {args.error_rate:.0%} 503s"
        return ProxyFault(client, region, toxics, text, lease_s=args.lease)
    app = ProxyFault(client, region, [Blackhole()], f"{region} blackholed", lease_s=args.lease)
    replica = _on_proxy(args, client, f"{region}.store")
    if replica is None and emulation is None:
        with contextlib.suppress(Unsupported):  # a store that cannot: the app's outage alone
            replica = StoreOutage(store, region)
    return app if replica is None else Together([app, replica])


def _on_proxy(args: argparse.Namespace, client: ControlClient | None, name: str) -> Fault | None:
    """A store fault held on the proxy under the drill's lease, if the proxy has ``name``: a
    listener in front of the region's replica (on emulators that serve regions apart), which
    it blackholes, or a lever (the local store's own faults, engaged by the proxy's process).
    Either reverts by itself if the drill dies. Alone it fails writes, not health checks."""
    if client is None:
        return None
    entry = next((e for e in client.listeners() if e["name"] == name), None)
    if entry is None:
        return None
    if "lever" in entry:
        toxic: Toxic = Engage()
        text = str(entry["lever"])
    else:
        toxic, text = Blackhole(), f"{name.rpartition('.')[0]}'s store replica blackholed"
    return ProxyFault(client, name, [toxic], text, lease_s=args.lease, effects=Effects())


@overload
def _proxy(args: argparse.Namespace, deployment: Deployment) -> ControlClient: ...


@overload
def _proxy(
    args: argparse.Namespace, deployment: Deployment, *, needed: bool
) -> ControlClient | None: ...


def _proxy(
    args: argparse.Namespace, deployment: Deployment, *, needed: bool = True
) -> ControlClient | None:
    if args.proxy:
        return ControlClient(args.proxy)
    client = proxied.announced(deployment.spec)
    if client is None and needed:
        raise InvalidInput(
            "--fault",
            f"{args.fault} fails the region through the fault proxy: run `multiregion faultproxy"
            f" --config {args.config}` and the apps with --behind-proxy, or give --proxy URL",
        )
    return client


def run_drill(args: argparse.Namespace) -> int:
    console = Console(stderr=args.json)
    with (
        open_deployment(args.config, needs_dns=True) as deployment,
        contextlib.ExitStack() as closing,
    ):
        spec = deployment.spec
        route = spec.route
        if not isinstance(route.policy, Failover | Weighted):
            raise InvalidInput(
                f"{spec.source}: route.policy", "a drill needs a failover or a weighted route"
            )
        try:
            deployment.router.get(route.name)
        except NotFound as exc:
            raise NotFound(f"{route.name} is not applied: run `multiregion apply` first") from exc
        first = route.policy.primary if isinstance(route.policy, Failover) else None
        region = args.region or (spec.region_of(first) if first else spec.region_names[0])
        emulation = proxied.emulation_of(spec)
        if emulation is not None and emulation.no_store_listener and args.fault == "region-outage":
            console.print(f"note: only the app is blackholed: {emulation.no_store_listener}")
        drill = Drill(
            deployment.router,
            route.name,
            fault=_fault(args, deployment, region, emulation),
            region=region,
            health=_health(deployment, route, emulation, closing),
            store=deployment.store if spec.settings["store"] else None,
            objectives=spec.objectives,
            settings=_settings(args, route, emulation),
            on_event=lambda at, text: console.print(f"[dim]{at:7.2f}s[/] {text}"),
            multi_writer=spec.settings["store"].get("multi_writer") is True,
        )
        if args.dry_run:
            return _show_plan(drill.plan(), console, as_json=args.json)
        report = _run_abortably(drill, console)
    svg = report.write_svg(args.svg or f"drill-{time.strftime('%Y%m%dT%H%M%S')}.svg")
    if args.journal:
        Path(args.journal).write_text(
            json.dumps(chaostoolkit.journal(report), indent=2) + "\n", encoding="utf-8"
        )
    kept = None
    if not args.no_history:
        kept = history.save(report, _history_dir(args), svg=str(Path(svg).resolve()))
    if args.json:
        extra = {"svg": str(Path(svg).resolve()), "kept": str(kept) if kept else None}
        print(json.dumps({**report.to_dict(), **extra}, indent=2))
    else:
        report.show(console)
        console.print(f"timeline: {svg}" + (f"; report kept in {kept}" if kept else ""))
    return 0 if report.passed else EXIT_FAILED


def _settings(args: argparse.Namespace, route: Route, emulation: Emulation | None) -> DrillSettings:
    settings = DrillSettings(
        steady_s=args.steady,
        timeout_s=args.timeout,
        confirm_s=min(3.0, args.steady),
        rollback="never" if args.no_failback else args.rollback,
    )
    if emulation is None or route.health_check is None:
        return settings
    settings = attrs.evolve(
        settings,
        time_scale=emulation.time_scale,  # the fakes' clock; a client gives up as they do
        request_timeout_s=emulation.scaled(route.health_check.timeout_s),
    )
    if emulation.replicates:
        return settings
    # moto's replicas never catch up: waiting long for them says no more than waiting briefly,
    # and failing back must pass the guard rail that wants them caught up
    return attrs.evolve(settings, catch_up_s=NO_REPLICA_WAIT_S, force_failback=True)


def _health(
    deployment: Deployment,
    route: Route,
    emulation: Emulation | None,
    closing: contextlib.ExitStack,
) -> HealthSource:
    """The controller's health: the provider's checks, or the library's own probes at the
    fakes' clock where the provider's never probe on its emulator (Route 53 on moto)."""
    if emulation is None or not emulation.library_probes or route.health_check is None:
        return probe_health(deployment.probe, route)
    from multiregion.testing.emulators.clouds import scaled_check

    probe = closing.enter_context(contextlib.closing(registry.probe("local")))
    check = scaled_check(route.health_check, emulation)
    return probe_health(probe, attrs.evolve(route, health_check=check))


def _show_plan(plan: dict[str, Any], console: Console, *, as_json: bool) -> int:
    if as_json:
        print(json.dumps(plan, indent=2))
        return 0
    console.print(f"Drill plan for {plan['route']} ({plan['mode']}), failing {plan['region']}:")
    for number, step in enumerate(plan["steps"], start=1):
        console.print(f"  {number}. {step}")
    if plan["lease_s"] is not None:
        console.print(
            f"  proxied faults hold a {plan['lease_s']:g}s lease: if this process dies they"
            " revert by themselves"
        )
    for phase, seconds in plan["predicted_s"].items():
        console.print(f"  predicted {LABELS[phase]}: {seconds:.2f}s")
    if plan["objective_rto_s"] is not None:
        console.print(f"  objective RTO: {plan['objective_rto_s']:g}s")
    return 0


def _run_abortably(drill: Drill, console: Console) -> DrillReport:
    """The drill in a worker thread, so that Ctrl-C can abort it and still get its report."""
    abort = threading.Event()
    result: list[DrillReport] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            result.append(drill.run(abort))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
            failure.append(exc)

    worker = threading.Thread(target=work, name="multiregion-drill")
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        console.print("aborting: restoring routing and write region ...")
        abort.set()
        worker.join()
    if failure:
        raise failure[0]
    return result[0]
