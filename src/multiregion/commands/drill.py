"""``multiregion drill``: inject a fault into the deployment, measure, fail back, report.

From a command the drill can only use levers every deployment has: forcing a region out of DNS
(``force-down``, any provider) and, on the local provider, failing a store replica
(``store-outage``); ``region-outage`` does both at once. Ctrl-C aborts the drill and leaves
routing and the write region as they were.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from multiregion.commands.connection import open_deployment
from multiregion.deployment import Deployment
from multiregion.drill.faults import Fault, ForceDown, StoreOutage, Together
from multiregion.drill.report import DrillReport
from multiregion.drill.runner import Drill, DrillSettings
from multiregion.errors import InvalidInput, NotFound
from multiregion.failover.controller import probe_health
from multiregion.model import Failover

FAULTS = ("force-down", "store-outage", "region-outage")
EXIT_FAILED = 1


def register(commands: argparse._SubParsersAction[Any]) -> None:
    text = "inject a fault, measure detection, switch, RTO and RPO, fail back"
    parser = commands.add_parser("drill", help=text, description=text)
    parser.add_argument("--config", required=True, help="the deployment spec (TOML)")
    parser.add_argument("--region", help="the region to fail (default: the route's primary)")
    parser.add_argument("--fault", choices=FAULTS, default="force-down")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait to recover")
    parser.add_argument("--steady", type=float, default=3.0, help="seconds of traffic before")
    parser.add_argument("--no-failback", action="store_true", help="stay failed over")
    parser.add_argument("--svg", help="where to write the timeline (default drill-<time>.svg)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.set_defaults(handler=run_drill)


def _fault(name: str, deployment: Deployment, region: str) -> Fault:
    route = deployment.spec.route.name
    if name == "force-down":
        return ForceDown(deployment.router, route, region)
    if name == "store-outage":
        return StoreOutage(deployment.store, region)
    return Together(
        [ForceDown(deployment.router, route, region), StoreOutage(deployment.store, region)]
    )


def run_drill(args: argparse.Namespace) -> int:
    console = Console(stderr=args.json)
    with open_deployment(args.config, needs_dns=True) as deployment:
        spec = deployment.spec
        route = spec.route
        if not isinstance(route.policy, Failover):
            raise InvalidInput(f"{spec.source}: route.policy", "a drill needs a failover route")
        try:
            deployment.router.get(route.name)
        except NotFound as exc:
            raise NotFound(f"{route.name} is not applied: run `multiregion apply` first") from exc
        region = args.region or spec.region_of(route.policy.primary)
        drill = Drill(
            deployment.router,
            route.name,
            fault=_fault(args.fault, deployment, region),
            region=region,
            health=probe_health(deployment.probe, route),
            store=deployment.store if spec.settings["store"] else None,
            objectives=spec.objectives,
            settings=DrillSettings(
                steady_s=args.steady,
                timeout_s=args.timeout,
                confirm_s=min(3.0, args.steady),
                failback=not args.no_failback,
            ),
            on_event=lambda at, text: console.print(f"[dim]{at:7.2f}s[/] {text}"),
        )
        report = _run_abortably(drill, console)
    svg = report.write_svg(args.svg or f"drill-{time.strftime('%Y%m%dT%H%M%S')}.svg")
    if args.json:
        print(json.dumps({**report.to_dict(), "svg": str(Path(svg).resolve())}, indent=2))
    else:
        report.show(console)
        console.print(f"timeline: {svg}")
    return 0 if report.passed else EXIT_FAILED


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
