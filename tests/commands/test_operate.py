"""The operate commands: plan and apply, drain and undrain, serve, and the errors they refuse."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from multiregion import EndpointStatus
from multiregion.commands.connection import open_deployment
from multiregion.deployment import load

from .conftest import OPERATE, Run

LocalExample = Callable[[str], Path]


def test_plan_exit_code_says_whether_changes_are_pending(
    local_example: LocalExample, run: Run
) -> None:
    config = str(local_example("active_passive"))
    pending = run("plan", "--config", config, "--exit-code")
    assert pending.code == 1
    assert "+ endpoint region-b: 127.0.0.3 (region-b)" in pending.out
    assert run("plan", "--config", config).code == 0  # without --exit-code

    assert run("apply", "--config", config).code == 0
    again = run("apply", "--config", config)
    assert again.code == 0
    assert "orders.example.test: no changes" in again.out
    assert run("plan", "--config", config, "--exit-code").code == 0


def test_drain_and_undrain_a_region(local_example: LocalExample, run: Run) -> None:
    config = str(local_example("active_active"))
    assert run("apply", "--config", config).code == 0

    drained = run("drain", "--config", config, "--region", "region-b")
    assert drained.code == 0
    assert "drained region-b: weighted region-a=1, region-b=0" in drained.out
    with open_deployment(config, needs_dns=False) as deployment:
        statuses = deployment.router.endpoint_status(deployment.spec.route.name)
    assert statuses["region-b"] is EndpointStatus.DOWN
    # the drained weight differs from the spec: plan shows it, apply would undo it
    assert run("plan", "--config", config, "--exit-code").code == 1

    restored = run("undrain", "--config", config, "--region", "region-b")
    assert "restored region-b: weighted region-a=1, region-b=1" in restored.out  # the spec's
    assert run("plan", "--config", config, "--exit-code").code == 0
    with open_deployment(config, needs_dns=False) as deployment:
        statuses = deployment.router.endpoint_status(deployment.spec.route.name)
    assert statuses["region-b"] is EndpointStatus.AUTO

    heavier = run("undrain", "--config", config, "--region", "region-a", "--weight", "3")
    assert "region-a=3, region-b=1" in heavier.out


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["status"], "is not applied: run multiregion apply"),
        (["failover", "--to", "region-c"], "--to: 'region-c' is not one of"),
        (["failback"], "failback: 'region-a' is already the active region"),
        (["drain", "--region", "region-a"], "an active-active controller needs Weighted"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    argv: list[str], complaint: str, local_example: LocalExample, run: Run
) -> None:
    config = str(local_example("active_passive"))
    if argv[0] != "status":
        assert run("apply", "--config", config).code == 0
    result = run(*argv, "--config", config)
    assert result.code == 2
    assert complaint in result.err
    assert result.out == ""


def test_undrain_of_an_unknown_region_names_the_field(
    local_example: LocalExample, run: Run
) -> None:
    config = str(local_example("active_active"))
    assert run("apply", "--config", config).code == 0
    result = run("undrain", "--config", config, "--region", "region-c")
    assert result.code == 2
    assert "region: 'region-c' is not a region" in result.err


def test_without_a_store_the_active_region_is_the_one_not_pinned_down(
    local_example: LocalExample, run: Run
) -> None:
    path = local_example("active_passive")
    text = path.read_text()
    path.write_text(re.sub(r"\[store\][^\[]*", "", text))
    assert not load(path).settings["store"]
    config = str(path)
    assert run("apply", "--config", config).code == 0

    # No app serves here, so region-b's checks fail: the move needs --force, and says so.
    refused = run("failover", "--config", config, "--to", "region-b")
    assert refused.code == 2
    assert "its health checks report region-b unhealthy" in refused.err
    assert "--force" in refused.err
    moved = run("failover", "--config", config, "--to", "region-b", "--force", "--json")
    assert moved.code == 0
    assert moved.json()["overridden"] == [
        "its health checks report region-b unhealthy, so traffic and writes would go to a "
        "region that fails them"
    ]
    again = run("failover", "--config", config, "--to", "region-b", "--force")
    assert again.code == 2
    assert "'region-b' is already the active region" in again.err
    back = run("failback", "--config", config, "--force")
    assert "failback region-b -> region-a: no store" in back.out
    assert "forced past a guard rail" in back.out


def test_serve_is_refused_for_a_cloud_router(run: Run) -> None:
    aws = Path(__file__).resolve().parents[2] / "examples/active_passive/deploy.aws.toml"
    result = run("serve", "--config", str(aws))
    assert result.code == 2
    assert "aws answers DNS itself" in result.err


def _serve(config: str) -> subprocess.Popen[str]:
    code = (
        "import sys; from multiregion import cli; "
        f"cli.COMMAND_MODULES += ({OPERATE!r},); "
        "sys.exit(cli.main(sys.argv[1:]))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--config", config],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_announces_a_data_plane_that_other_commands_use(
    local_example: LocalExample, run: Run
) -> None:
    path = local_example("active_passive")
    config = str(path)
    assert run("apply", "--config", config).code == 0
    announcement = path.parent / "state/dns/dataplane.json"
    server = _serve(config)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert "serving DNS for orders.example.test on 127.0.0.1:" in line
        port = json.loads(announcement.read_text())["port"]
        assert f":{port} " in line

        status = run("status", "--config", config, "--json").json()
        assert status["dns"] == f"127.0.0.1:{port} (multiregion serve)"
        assert status["answer"]["records"] == ["127.0.0.2"]  # no app runs: DNS fails open

        second = run("serve", "--config", config)
        assert second.code == 2
        assert f"a data plane already serves {path.parent / 'state/dns'}" in second.err
    finally:
        os.kill(server.pid, signal.SIGTERM)
        out, err = server.communicate(timeout=10)
    assert server.returncode == 0, err
    assert "stopped" in out
    assert not announcement.exists()


def test_a_stale_announcement_is_ignored(local_example: LocalExample, run: Run) -> None:
    path = local_example("active_passive")
    config = str(path)
    assert run("apply", "--config", config).code == 0
    state = path.parent / "state/dns"
    # a data plane killed with SIGKILL leaves its announcement behind
    (state / "dataplane.json").write_text(json.dumps({"host": "127.0.0.1", "port": 9, "pid": 1}))
    started = time.monotonic()
    status = run("status", "--config", config, "--json").json()
    assert "started by this command" in status["dns"]
    assert time.monotonic() - started < 10


def test_status_counts_conflicts_and_divergent_writes(
    local_example: LocalExample, run: Run
) -> None:
    config = str(local_example("active_active"))
    assert run("apply", "--config", config).code == 0
    with open_deployment(config, needs_dns=False) as deployment:
        store = deployment.store
        store.put("order/1", {"at": "region-a"}, region="region-a")
        store.put("order/1", {"at": "region-b"}, region="region-b")
        store.settle()  # type: ignore[attr-defined]
    status = run("status", "--config", config, "--json")
    assert status.code == 0
    assert status.json()["store"]["conflicts"] == 1
    assert status.json()["store"]["divergent_writes"] == 0
    assert "1 keys with concurrent writes" in run("status", "--config", config).out
