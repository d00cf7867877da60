"""One region of the example order service, configured by the deployment spec.

    python examples/active_passive/app.py --config examples/active_passive/deploy.local.toml \
        --region region-a

It serves ``multiregion.demo.webapp``'s order service (``POST /orders``, ``GET /health``,
``GET /``) on the region's endpoint address and the health check's port, and writes to the
store the spec configures. Only the store's write region accepts orders; the others answer 503
until a failover promotes them. On a cloud, run it behind the region's load balancer with
``--listen 0.0.0.0:8080``.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence
from http.server import ThreadingHTTPServer

from multiregion.demo.webapp import RegionalApp, serve
from multiregion.deployment import Deployment
from multiregion.errors import InvalidInput, MultiregionError


def listen_address(deployment: Deployment, region: str) -> tuple[str, int]:
    """The region's endpoint address and the health check's port, as the spec gives them."""
    spec = deployment.spec
    addresses = {r.name: r.endpoint for r in spec.regions}
    if region not in addresses:
        raise InvalidInput("region", f"{region!r} is not one of {', '.join(addresses)}")
    if spec.route.health_check is None:
        raise InvalidInput("health_check", "the app serves on the health check's port")
    return addresses[region], spec.route.health_check.port


def start(
    deployment: Deployment, region: str, listen: tuple[str, int] | None = None
) -> ThreadingHTTPServer:
    """A started server (daemon thread) for ``region``; stop it with ``shutdown()``."""
    host, port = listen or listen_address(deployment, region)
    return serve(RegionalApp(region, deployment.store), host, port)


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT")
    return host, int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", required=True, help="the deployment spec (TOML)")
    parser.add_argument("--region", required=True, help="the region this process serves")
    parser.add_argument("--listen", type=_listen, metavar="HOST:PORT", help="where to listen")
    args = parser.parse_args(argv)
    try:
        with Deployment.from_file(args.config) as deployment:
            server = start(deployment, args.region, args.listen)
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


if __name__ == "__main__":
    raise SystemExit(main())
