"""One region of the example active-active order service, configured by the deployment spec.

    python examples/active_active/app.py --config examples/active_active/deploy.local.toml \
        --region region-a

It serves ``multiregion.demo.webapp``'s order service (``POST /orders``, ``GET /health``,
``GET /``) on the region's endpoint address and the health check's port. Every region takes
orders: with a store that writes in every region (``multi_writer = true`` in the spec's
``[store]``) each writes to its own replica; with a single-writer store (the DynamoDB and
Firestore adapters) each sends its writes to the store's write region. On a cloud, run it
behind the region's load balancer with ``--listen 0.0.0.0:8080``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any

from multiregion.demo import deployed
from multiregion.demo.deployed import listen_address
from multiregion.demo.webapp import ORDER_PREFIX, RegionalApp, serve
from multiregion.deployment import Deployment
from multiregion.errors import InvalidInput, PreconditionFailed, Unavailable
from multiregion.interfaces import ReplicatedStore


class ActiveActiveApp(RegionalApp):
    """Takes orders in every region; ``local_writes`` says whether its own replica accepts them."""

    def __init__(self, region: str, store: ReplicatedStore, *, local_writes: bool) -> None:
        super().__init__(region, store)
        self.local_writes = local_writes
        self._write_lock = threading.Lock()

    def place_order(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        order_id = uuid.uuid4().hex
        value = {"order_id": order_id, "region": self.region, "at": time.time(), "body": body}
        target = self.region if self.local_writes else None  # None: the store's write region
        try:
            with self._write_lock:
                self.store.put(ORDER_PREFIX + order_id, value, create_only=True, region=target)
        except InvalidInput as exc:
            return HTTPStatus.BAD_REQUEST, {"error": str(exc)}
        except (PreconditionFailed, Unavailable) as exc:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc), "region": self.region}
        return HTTPStatus.CREATED, {"order_id": order_id, "region": self.region}


def start(
    deployment: Deployment, region: str, listen: tuple[str, int] | None = None
) -> ThreadingHTTPServer:
    """A started server (daemon thread) for ``region``; stop it with ``shutdown()``."""
    host, port = listen or listen_address(deployment, region)
    local_writes = deployment.spec.settings["store"].get("multi_writer") is True
    app = ActiveActiveApp(region, deployment.store, local_writes=local_writes)
    return serve(app, host, port)


def main(argv: Sequence[str] | None = None) -> int:
    return deployed.main(__doc__, start, argv)


if __name__ == "__main__":
    raise SystemExit(main())
