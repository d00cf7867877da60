"""examples/active_passive on this machine as a user runs it for a drill: its local spec with
free ports and its state in a folder of its own, ``multiregion faultproxy`` in front of both
regions, and each region's ``app.py`` behind it. Used by the test and by
``benches/drill_outage.py``."""

from __future__ import annotations

import argparse
import importlib.util
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from multiregion.deployment import Deployment, load
from multiregion.errors import Unavailable
from multiregion.faultproxy import spec as proxied
from multiregion.faultproxy.command import run_faultproxy
from multiregion.testing.endpoints import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "active_passive"


@contextmanager
def behind_proxy(workdir: Path) -> Iterator[Path]:
    """The example's spec in ``workdir``, served behind the fault proxy; yields its path."""
    source = EXAMPLE / "deploy.local.toml"
    addresses = [r.endpoint for r in load(source).regions]
    front, back = free_port(addresses), free_port(addresses)
    text, found = re.subn(r"^port = 8080\b", f"port = {front}", source.read_text(), flags=re.M)
    assert found == 1
    config = workdir / "deploy.local.toml"
    config.write_text(re.sub(r"^dns_port = .*$", "", text, flags=re.M))

    stop = threading.Event()
    args = argparse.Namespace(config=str(config), app_port=back, control=("127.0.0.1", 0))
    proxy = threading.Thread(target=run_faultproxy, args=(args, stop), daemon=True)
    proxy.start()
    loader = importlib.util.spec_from_file_location("active_passive_app", EXAMPLE / "app.py")
    assert loader is not None
    assert loader.loader is not None
    app = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(app)
    with Deployment.from_file(config) as deployment:
        servers = [
            app.start(deployment, region, proxied.app_address(deployment.spec, region, back))
            for region in deployment.spec.region_names
        ]
        try:
            deadline = time.monotonic() + 10
            while proxied.announced(deployment.spec) is None:  # it announces once it listens
                if time.monotonic() > deadline:
                    raise Unavailable("the fault proxy did not announce itself")
                time.sleep(0.05)
            yield config
        finally:
            stop.set()
            proxy.join(timeout=5)
            for server in servers:
                server.shutdown()
                server.server_close()
