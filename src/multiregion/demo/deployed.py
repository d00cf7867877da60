"""What the reference deployments' apps (``examples/active_*/app.py``) share: the address a
deployment spec gives a region, and the command line that serves one region until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable, Sequence
from http.server import ThreadingHTTPServer

from multiregion.deployment import Deployment, load
from multiregion.errors import InvalidInput, MultiregionError
from multiregion.faultproxy import spec as proxied
from multiregion.faultproxy.command import host_port

Start = Callable[[Deployment, str, tuple[str, int] | None], ThreadingHTTPServer]
"""``start(deployment, region, listen)``: a started server for ``region``."""


def listen_address(deployment: Deployment, region: str) -> tuple[str, int]:
    """The region's endpoint address and the health check's port, as the spec gives them."""
    spec = deployment.spec
    addresses = {r.name: r.endpoint for r in spec.regions}
    if region not in addresses:
        raise InvalidInput("region", f"{region!r} is not one of {', '.join(addresses)}")
    if spec.route.health_check is None:
        raise InvalidInput("health_check", "the app serves on the health check's port")
    return addresses[region], spec.route.health_check.port


def main(doc: str | None, start: Start, argv: Sequence[str] | None = None) -> int:
    """Parse ``--config``, ``--region`` and ``--listen`` or ``--behind-proxy``, then serve with
    ``start`` until Ctrl-C; ``doc`` is the app's docstring (its first line describes it)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--config", required=True, help="the deployment spec (TOML)")
    parser.add_argument("--region", required=True, help="the region this process serves")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--listen", type=host_port, metavar="HOST:PORT", help="where to listen")
    where.add_argument(
        "--behind-proxy",
        action="store_true",
        help="listen behind `multiregion faultproxy` (the region's address, its app port)",
    )
    args = parser.parse_args(argv)
    try:
        with Deployment(proxied.emulated(load(args.config))) as deployment:
            listen = args.listen
            if args.behind_proxy:
                listen = proxied.app_address(deployment.spec, args.region)
            server = start(deployment, args.region, listen)
            host, port = server.server_address[:2]
            print(f"{args.region}: orders on http://{host!s}:{port}/ (Ctrl-C stops)", flush=True)
            try:
                threading.Event().wait()
            finally:
                server.shutdown()
                server.server_close()
    except KeyboardInterrupt:
        return 0
    except MultiregionError as exc:
        print(f"app: {exc}", file=sys.stderr)
        return 2
    return 0
