"""Operating a deployment from its spec: ``status``, ``plan``, ``apply``, ``failover``,
``failback``, ``drain``, ``undrain`` and ``serve``, each with ``--config FILE``.

``undrain`` is ``ActiveActiveController.restore`` (``restore`` is the backup group's command).

Each invocation is a new process, so nothing is remembered between commands: the active region
of an active-passive deployment is the store's write region (or, without a store, the first
region of the failover order not pinned down), and ``failback`` is a failover to the route's
primary. How the local router's DNS data plane is found or started: ``connection``.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import attrs
from rich.console import Console

from multiregion.commands import output
from multiregion.commands.connection import (
    announced_data_plane,
    open_deployment,
    uses_local_router,
)
from multiregion.commands.output import add_json
from multiregion.commands.progress import waiting
from multiregion.commands.status import collect, region_health, render
from multiregion.deployment import Deployment, load
from multiregion.errors import AlreadyExists, InvalidInput, Unsupported
from multiregion.failover.controller import (
    ActiveActiveController,
    ActivePassiveController,
    Move,
)
from multiregion.failover.deployed import controller_for
from multiregion.model import HealthState, Plan, Route, Weighted
from multiregion.planning import describe_policy

EXIT_CHANGES_PENDING = 1


def register(commands: argparse._SubParsersAction[Any]) -> None:
    status = _command(commands, "status", "show routing, health, DNS answer and store state")
    add_json(status)
    status.set_defaults(handler=run_status)

    plan = _command(commands, "plan", "show what apply would change in the route")
    plan.add_argument(
        "--exit-code",
        action="store_true",
        help=f"exit {EXIT_CHANGES_PENDING} when changes are pending (0 when none)",
    )
    add_json(plan, "the changes")
    plan.set_defaults(handler=run_plan)

    apply = _command(commands, "apply", "create or update the route as the spec says")
    apply.add_argument("--force", action="store_true", help="go on past the change-safety limits")
    add_json(apply, "the changes made")
    apply.set_defaults(handler=run_apply)

    failover = _command(commands, "failover", "move traffic and writes to another region")
    failover.add_argument("--to", required=True, metavar="REGION", help="the region to activate")
    failover.add_argument(
        "--reason", default="manual failover", metavar="TEXT", help="logged with the move"
    )
    failover.add_argument("--json", action="store_true", help="print the move as JSON")
    failover.add_argument(
        "--force",
        action="store_true",
        help="move even to a region its checks call unhealthy, or that lags more than the RPO "
        "objective, or without a majority of the store's voters (recorded)",
    )
    failover.set_defaults(handler=run_failover)

    failback = _command(commands, "failback", "move traffic and writes back to the primary")
    failback.add_argument(
        "--reason", default="manual failback", metavar="TEXT", help="logged with the move"
    )
    failback.add_argument("--json", action="store_true", help="print the move as JSON")
    failback.add_argument(
        "--force",
        action="store_true",
        help="move even to a region its checks call unhealthy, or that lags more than the RPO "
        "objective, or without a majority of the store's voters (recorded)",
    )
    failback.set_defaults(handler=run_failback)

    drain = _command(commands, "drain", "active-active: send no new traffic to a region")
    drain.add_argument("--region", required=True, metavar="REGION", help="the region to drain")
    add_json(drain, "the route's weights after")
    drain.set_defaults(handler=run_drain)

    undrain = _command(commands, "undrain", "active-active: send traffic to a region again")
    undrain.add_argument(
        "--region", required=True, metavar="REGION", help="the region to send traffic to again"
    )
    undrain.add_argument(
        "--weight", type=float, default=None, metavar="N", help="its weight (default: the spec's)"
    )
    add_json(undrain, "the route's weights after")
    undrain.set_defaults(handler=run_undrain)

    serve = _command(commands, "serve", "run the local router's DNS data plane until Ctrl-C")
    serve.add_argument(
        "--port",
        type=int,
        default=None,
        metavar="PORT",
        help="DNS port (default: the spec's dns_port, or free)",
    )
    serve.set_defaults(handler=run_serve)


def _command(commands: argparse._SubParsersAction[Any], name: str, text: str) -> Any:
    parser = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
    parser.add_argument(
        "--config", required=True, type=Path, metavar="FILE", help="the deployment spec (TOML)"
    )
    return parser


# --------------------------------------------------------------------------- status, plan, apply


def run_status(args: argparse.Namespace) -> int:
    with open_deployment(args.config, needs_dns=True) as deployment:
        status = collect(deployment, wait=waiting)
    if args.json:
        output.emit(args, status.to_json(), "")
    else:
        render(status, output.console())
    return 0


def run_plan(args: argparse.Namespace) -> int:
    with open_deployment(args.config, needs_dns=False) as deployment:
        plan = deployment.router.plan(deployment.spec.route)
    output.emit(args, _plan_json(plan), str(plan))
    return EXIT_CHANGES_PENDING if args.exit_code and plan else 0


def run_apply(args: argparse.Namespace) -> int:
    with open_deployment(args.config, needs_dns=False) as deployment:
        route = deployment.spec.route
        plan = deployment.router.apply(route, force=args.force)
        expected = deployment.router.expected_failover_s(route)
    text = f"{f'applied {plan}' if plan else plan}\nexpected failover time: {expected:.1f}s"
    output.emit(args, {**_plan_json(plan), "expected_failover_s": expected}, text)
    return 0


def _plan_json(plan: Plan) -> dict[str, Any]:
    return {"route": plan.name, "changes": [attrs.asdict(c) for c in plan.changes]}


# --------------------------------------------------------------------------- active-passive


def _controller(deployment: Deployment) -> ActivePassiveController:
    """The deployment's controller; its health source reads the checks once, when a guard rail
    asks, as ``status`` does."""
    read: dict[str, HealthState] = {}

    def health() -> dict[str, HealthState]:
        if not read:
            read.update(region_health(deployment, waiting))
        return read

    return controller_for(deployment, health)


def run_failover(args: argparse.Namespace) -> int:
    with open_deployment(args.config, needs_dns=True) as deployment:
        controller = _controller(deployment)
        with waiting(f"failing over to {args.to}"):
            move = controller.failover(args.to, args.reason, force=args.force)
    _print_move(move, args.json)
    return 0


def run_failback(args: argparse.Namespace) -> int:
    with open_deployment(args.config, needs_dns=True) as deployment:
        controller = _controller(deployment)
        primary = controller.policy.order[0]
        with waiting(f"failing back to {primary} (fencing {controller.active}, catching up)"):
            move = controller.failback(args.reason, force=args.force)
    _print_move(move, args.json)
    return 0


def _print_move(move: Move, as_json: bool) -> None:
    decision = move.decision
    epoch = None if move.fence is None else move.fence.epoch
    if as_json:
        data = {
            "action": decision.action,
            "from": decision.from_region,
            "to": decision.to_region,
            "reason": decision.reason,
            "fence_epoch": epoch,
            "fence_forced": move.fence is not None and move.fence.forced,
            "graceful": move.graceful,
            "overridden": list(move.overridden),
            "notes": list(move.notes),
            "duration_s": move.duration_s,
        }
        print(json.dumps(data, indent=2))
        return
    fence = "no store" if epoch is None else f"fence epoch {epoch}"
    kind = "switchover, nothing left behind" if move.graceful else "failover"
    print(
        f"{decision.action} {decision.from_region} -> {decision.to_region}: {fence}, {kind}, "
        f"{move.duration_s:.2f}s ({decision.reason})"
    )
    if move.fence is not None and move.fence.forced:
        print("FORCED: promoted without a majority of the store's voters (recorded)")
    for text in move.overridden:
        print(f"forced past a guard rail: {text}")
    for text in move.notes:
        print(text)
    if decision.action == "failover":
        print(f"{decision.from_region} is pinned out of DNS until failback")
    else:
        print(f"{decision.from_region} is a health-checked backup again")


# --------------------------------------------------------------------------- active-active


def run_drain(args: argparse.Namespace) -> int:
    with open_deployment(args.config, needs_dns=False) as deployment:
        route = ActiveActiveController(deployment.router, deployment.spec.route.name).drain(
            args.region
        )
    _print_weights(args, "drained", route)
    return 0


def run_undrain(args: argparse.Namespace) -> int:
    with open_deployment(args.config, needs_dns=False) as deployment:
        weight = args.weight
        if weight is None:
            weight = _spec_weight(deployment.spec.route, args.region)
        route = ActiveActiveController(deployment.router, deployment.spec.route.name).restore(
            args.region, weight
        )
    _print_weights(args, "restored", route)
    return 0


def _print_weights(args: argparse.Namespace, action: str, route: Route) -> None:
    weights = dict(route.policy.weights) if isinstance(route.policy, Weighted) else {}
    data = {"action": action, "region": args.region, "route": route.name, "weights": weights}
    output.emit(args, data, f"{action} {args.region}: {describe_policy(route.policy)}")


def _spec_weight(route: Route, region: str) -> float:
    if not isinstance(route.policy, Weighted):
        raise InvalidInput("route.policy", "undrain needs a weighted route")
    for endpoint in route.endpoints:
        if endpoint.region == region:
            return route.policy.weight(endpoint.name)
    raise InvalidInput("region", f"{region!r} is not a region of {route.name}")


# --------------------------------------------------------------------------- serve


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_serve(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM.

    ``LocalDataPlane`` rather than ``dataplane.serve``: the same server, but this way the port
    it got can be printed.
    """
    from multiregion.providers.local.dataplane import LocalDataPlane

    spec = load(args.config)
    if not uses_local_router(spec):
        raise Unsupported(
            f"serve runs the local router's DNS; {spec.providers['router']} answers DNS itself"
        )
    settings = spec.settings["router"]
    if "state_dir" not in settings:
        raise InvalidInput(f"{spec.source}: router.state_dir", "is missing")
    announced = announced_data_plane(settings)
    if announced is not None:
        raise AlreadyExists(
            f"a data plane already serves {settings['state_dir']} on {announced[0]}:{announced[1]}"
        )
    port = args.port if args.port is not None else settings.get("dns_port") or 0
    host = settings.get("dns_host", "127.0.0.1")
    plane = LocalDataPlane(settings["state_dir"], host=host, port=port)
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main else None
    console = Console(highlight=False, soft_wrap=True)
    try:
        with plane:
            console.print(
                f"serving DNS for {', '.join(plane.state.names()) or 'no routes yet'} on "
                f"{host}:{plane.port} (state {settings['state_dir']}); Ctrl-C stops"
            )
            threading.Event().wait()
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0
