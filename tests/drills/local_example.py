"""examples/active_passive on this machine as a user runs it for a drill: one of its specs in a
folder of its own (its state lives next to it), ``multiregion faultproxy`` in front of both
regions (with ``--emulators`` for a cloud spec: the cloud's emulators and fakes behind it too),
and each region's ``app.py`` behind it, as ``app.py --behind-proxy`` starts it. The local spec
gets free ports so that runs never collide, and its DNS data plane runs apart from the drill,
as ``multiregion serve`` does (its probes keep their own schedule); a cloud spec is copied as
it ships. Used by the tests and by ``benches/drill_outage.py`` and ``benches/drill_clouds.py``."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from multiregion.deployment import Deployment, load
from multiregion.errors import Unavailable
from multiregion.faultproxy import spec as proxied
from multiregion.faultproxy.command import run_faultproxy
from multiregion.providers.local.dataplane import LocalDataPlane
from multiregion.testing.endpoints import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "active_passive"
STARTUP_S = 90.0
"""The Firestore emulator's JVM alone may take half a minute on a loaded machine."""


def _local_copy(workdir: Path, example: Path) -> tuple[Path, int]:
    source = example / "deploy.local.toml"
    addresses = [r.endpoint for r in load(source).regions]
    front, back = free_port(addresses), free_port(addresses)
    text, found = re.subn(r"^port = 8080\b", f"port = {front}", source.read_text(), flags=re.M)
    assert found == 1
    config = workdir / source.name
    config.write_text(re.sub(r"^dns_port = .*$", "", text, flags=re.M))
    return config, back


@contextmanager
def behind_proxy(workdir: Path, provider: str = "local", example: Path = EXAMPLE) -> Iterator[Path]:
    """``example``'s ``deploy.<provider>.toml`` in ``workdir``, served by its ``app.py`` behind
    the fault proxy (and on the cloud's emulators); yields the spec's path."""
    cloud = provider != "local"
    if cloud:
        config = workdir / f"deploy.{provider}.toml"
        shutil.copy(example / config.name, config)
        back = None
    else:
        config, back = _local_copy(workdir, example)
    stop = threading.Event()
    args = argparse.Namespace(
        config=str(config),
        app_port=back,
        control=("127.0.0.1", 0),
        emulators=cloud,
        time_scale=None,
    )
    proxy = threading.Thread(target=run_faultproxy, args=(args, stop), daemon=True)
    proxy.start()
    loader = importlib.util.spec_from_file_location(f"{example.name}_app", example / "app.py")
    assert loader is not None
    assert loader.loader is not None
    app = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(app)
    servers = []
    behind = contextlib.ExitStack()
    try:
        if not cloud:
            state_dir = load(config).settings["router"]["state_dir"]
            behind.enter_context(LocalDataPlane(state_dir, host="127.0.0.1", port=0))
        deadline = time.monotonic() + STARTUP_S
        while proxied.announced(load(config)) is None:  # it announces once it listens
            if time.monotonic() > deadline or not proxy.is_alive():
                raise Unavailable("the fault proxy did not announce itself")
            time.sleep(0.05)
        with Deployment(proxied.emulated(load(config))) as deployment:
            for region in deployment.spec.region_names:
                listen = proxied.app_address(deployment.spec, region, back)
                servers.append(app.start(deployment, region, listen))
            yield config
    finally:
        behind.close()
        stop.set()
        proxy.join(timeout=30)
        for server in servers:
            server.shutdown()
            server.server_close()
