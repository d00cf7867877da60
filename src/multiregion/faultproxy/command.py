"""``multiregion faultproxy``: the fault proxy in front of every region of a deployment.

    multiregion faultproxy --config examples/active_passive/deploy.local.toml

listens on each region's endpoint address and the health check's port, forwards to the app
behind it (``--app-port``, by default the health check's port + 10000), serves the control API
on loopback and announces it next to the spec for ``multiregion drill``. Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import threading
from typing import Any

from rich.console import Console

from multiregion.deployment import load
from multiregion.faultproxy import spec as proxied
from multiregion.faultproxy.proxy import FaultProxy


def host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT")
    return host, int(port)


def register(commands: argparse._SubParsersAction[Any]) -> None:
    text = "run the fault proxy in front of each region's app, for drills (docs/faultproxy.md)"
    parser = commands.add_parser("faultproxy", help=text, description=text)
    parser.add_argument(
        "--config", required=True, metavar="FILE", help="the deployment spec (TOML)"
    )
    parser.add_argument(
        "--app-port",
        type=int,
        metavar="PORT",
        help="where the apps listen (default: health check port + 10000)",
    )
    parser.add_argument(
        "--control",
        type=host_port,
        default=("127.0.0.1", 0),
        metavar="HOST:PORT",
        help="the HTTP control API, on loopback (default: a free port, announced)",
    )
    parser.set_defaults(handler=run_faultproxy)


def run_faultproxy(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    console = Console()
    spec = load(args.config)
    plan = proxied.listeners(spec, args.app_port)
    with FaultProxy() as proxy:
        for region, (listen, upstream) in plan.items():
            proxy.add_listener(region, listen, upstream)
            console.print(f"{region}: {listen[0]}:{listen[1]} -> {upstream[0]}:{upstream[1]}")
        url = proxy.serve_control(*args.control)
        path = proxied.announce(spec, url)
        console.print(f"control API on {url} (announced in {path}); Ctrl-C stops", highlight=False)
        try:
            (stop or threading.Event()).wait()
        finally:
            proxied.withdraw(spec)
    return 0
