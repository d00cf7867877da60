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

from collections.abc import Sequence
from http.server import ThreadingHTTPServer

from multiregion.demo import deployed
from multiregion.demo.deployed import listen_address
from multiregion.demo.webapp import RegionalApp, serve
from multiregion.deployment import Deployment


def start(
    deployment: Deployment, region: str, listen: tuple[str, int] | None = None
) -> ThreadingHTTPServer:
    """A started server (daemon thread) for ``region``; stop it with ``shutdown()``."""
    host, port = listen or listen_address(deployment, region)
    return serve(RegionalApp(region, deployment.store), host, port)


def main(argv: Sequence[str] | None = None) -> int:
    return deployed.main(__doc__, start, argv)


if __name__ == "__main__":
    raise SystemExit(main())
