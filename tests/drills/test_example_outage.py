"""``multiregion drill --fault region-outage`` on examples/active_passive as a user runs it: the
fault proxy in front of both regions (``multiregion faultproxy``), each region's app behind it,
and the drill finding the proxy through its announcement. The spec's own health check and TTL
are kept; only ports and state move so that runs never collide."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from multiregion import cli
from multiregion.deployment import Deployment, load
from multiregion.faultproxy import spec as proxied
from multiregion.faultproxy.command import run_faultproxy
from multiregion.testing.endpoints import free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "active_passive"


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Path]:
    source = EXAMPLE / "deploy.local.toml"
    addresses = [r.endpoint for r in load(source).regions]
    front, back = free_port(addresses), free_port(addresses)
    text, found = re.subn(r"^port = 8080\b", f"port = {front}", source.read_text(), flags=re.M)
    assert found == 1
    text = re.sub(r"^dns_port = .*$", "", text, flags=re.M)
    config = tmp_path / "deploy.local.toml"
    config.write_text(text)

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
            yield config
        finally:
            stop.set()
            proxy.join(timeout=5)
            for server in servers:
                server.shutdown()
                server.server_close()


def test_a_region_outage_of_the_example_recovers_within_its_objectives(
    example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(50):  # the proxy announces itself once it listens
        if proxied.announced(load(example)) is not None:
            break
        threading.Event().wait(0.05)
    assert cli.main(["apply", "--config", str(example)]) == 0
    capsys.readouterr()
    code = cli.main(
        [
            *("drill", "--config", str(example), "--fault", "region-outage"),
            *("--steady", "0.3", "--timeout", "15", "--no-failback", "--json"),
            *("--svg", str(tmp_path / "outage.svg")),
        ]
    )
    report = json.loads(capsys.readouterr().out)
    print(json.dumps({k: v for k, v in report.items() if k != "events"}, indent=1))
    assert code == 0, report
    assert report["outcome"] == "recovered"
    assert report["to_region"] == "region-b"
    assert report["rto_met"] is True
    assert report["rto_s"] <= report["worst_rto_s"]
    assert report["promote_s"] is not None
