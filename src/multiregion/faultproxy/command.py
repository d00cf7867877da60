"""``multiregion faultproxy``: the fault proxy in front of every region of a deployment.

    multiregion faultproxy --config examples/active_passive/deploy.local.toml

listens on each region's endpoint address and the health check's port, forwards to the app
behind it (``--app-port``, by default the health check's port + 10000), serves the control API
on loopback and announces it next to the spec for ``multiregion drill``. Ctrl-C stops it.

    multiregion faultproxy --config examples/active_passive/deploy.aws.toml --emulators

does the same for a cloud spec on this machine: it also runs the cloud's emulators and fakes
(``multiregion.testing.emulators.clouds``), a listener in front of each region's store replica,
and announces where the spec's parts connect, which every command and app then uses.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import attrs
from rich.console import Console

from multiregion.deployment import Deployment, DeploymentSpec, load
from multiregion.errors import InvalidInput
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
    parser.add_argument(
        "--emulators",
        action="store_true",
        help="a cloud spec: also run its cloud's emulators and fakes, each region's store"
        " behind the proxy too, and point every command and app at them (docs/drills.md)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        metavar="SCALE",
        help="with --emulators: the fakes' clock, a fraction of real time (default per cloud)",
    )
    parser.set_defaults(handler=run_faultproxy)


@contextlib.contextmanager
def _sigterm_sets(stop: threading.Event) -> Iterator[None]:
    """SIGTERM sets ``stop``, as Ctrl-C would stop us: the emulators and the announcement are
    cleaned up either way (the emulators run in process groups of their own)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _store_levers(proxy: FaultProxy, spec: DeploymentSpec, stack: contextlib.ExitStack) -> None:
    """The local store's own faults (a replica failed, a region partitioned) behind levers
    (``<region>.store``, ``<region>.partition``), so that a drill holds them under a lease."""
    from multiregion.drill.faults import Partition, StoreOutage

    if spec.providers["store"] != "local" or not spec.settings["store"]:
        return
    settings = {**spec.settings, "store": {**spec.settings["store"], "replicate": False}}
    store = stack.enter_context(Deployment(attrs.evolve(spec, settings=settings))).store
    for region in spec.region_names:
        for name, fault in (
            (f"{region}.store", StoreOutage(store, region)),
            (f"{region}.partition", Partition(store, region)),
        ):
            proxy.add_lever(name, fault.inject, fault.revert, fault.description)


def run_faultproxy(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    console = Console()
    stop = stop or threading.Event()
    spec = load(args.config)
    # the proxy closes first: its levers are released while the store they act on is open
    with _sigterm_sets(stop), contextlib.ExitStack() as behind, FaultProxy() as proxy:
        emulation = None
        if args.emulators:
            from multiregion.testing.emulators import clouds

            console.print(f"starting the {spec.providers['router']} emulators and fakes ...")
            emulation, stack = clouds.start(spec, proxy, time_scale=args.time_scale)
            behind.enter_context(stack)
            spec = clouds.overlay(spec, emulation)
        elif spec.providers["router"] != "local":
            raise InvalidInput(
                "--emulators",
                f"on {spec.providers['router']} the endpoints are load balancers, not on this"
                " machine: --emulators runs the cloud's emulators here, behind the proxy",
            )
        else:
            _store_levers(proxy, spec, behind)
        port = args.app_port if emulation is None else emulation.app_port
        for region, (listen, upstream) in proxied.listeners(spec, port).items():
            proxy.add_listener(region, listen, upstream)
        for entry in proxy.listeners():
            where = entry.get("lever") or f"{entry['listen']} -> {entry['upstream']}"
            console.print(f"{entry['name']}: {where}", highlight=False)
        url = proxy.serve_control(*args.control)
        path = proxied.announce(spec, url, emulation)
        console.print(f"control API on {url} (announced in {path}); Ctrl-C stops", highlight=False)
        try:
            stop.wait()
        finally:
            proxied.withdraw(spec)
    return 0
