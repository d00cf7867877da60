"""The examples' cloud specs, as they ship, on each cloud's emulators and fakes.

The active-passive example runs the flow of the local example's test through the Deployment
API, one step per test (in order, sharing one deployment per cloud): apply the route, status
(``collect``), orders only in the write region (the example's app.py), failover to the standby
(``ActivePassiveController``, as ``multiregion failover`` builds it), what a new process sees,
failback. A step a cloud's emulator cannot show is skipped with the reason. The active-active
specs are loaded, built and planned.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest

from multiregion.commands.status import collect
from multiregion.deployment import Deployment, DeploymentSpec, load
from multiregion.errors import PreconditionFailed
from multiregion.failover.controller import ActivePassiveController, probe_health
from multiregion.interfaces import HealthProbe
from multiregion.model import EndpointStatus, Failover, HealthState, Weighted
from multiregion.testing.emulators.process import free_port

from .conftest import Cloud

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CLOUDS = ("aws", "azure", "gcp")
VERDICT_WAIT_S = 3.0
"""How long a step waits for the fakes' first verdicts (scaled checks take about 1 s)."""
MOTO_NO_GLOBAL_TABLES = (
    "moto has no DynamoDB global tables: each region's table stands alone, so the fencing item "
    "that promote() writes in one region never reaches the other"
)
NO_VERDICT = {
    "azure": "the Traffic Manager fake probes loopback IP targets only and the example's "
    "endpoints are host names, so they stay CheckingEndpoint",
}

pytestmark = pytest.mark.filterwarnings(
    # cosmosdb-server's certificate is self-signed; azure-cosmos skips verification on loopback
    "ignore::urllib3.exceptions.InsecureRequestWarning"
)


def _app_module() -> ModuleType:
    path = EXAMPLES / "active_passive" / "app.py"
    spec = importlib.util.spec_from_file_location("active_passive_cloud_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def post_order(server: Any) -> int:
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("POST", "/orders", body=json.dumps({"item": "widget"}))
        return conn.getresponse().status
    finally:
        conn.close()


@attrs.define
class Flow:
    cloud: Cloud
    spec: DeploymentSpec
    deployment: Deployment
    apps: dict[str, Any]
    passed: set[str] = attrs.Factory(set)
    controller: ActivePassiveController | None = None
    epoch: int = 0

    @property
    def primary(self) -> str:
        return self.spec.region_names[0]

    @property
    def standby(self) -> str:
        return self.spec.region_names[1]

    def endpoint_of(self, region: str) -> str:
        return next(e.name for e in self.spec.route.endpoints if e.region == region)

    def needs(self, *steps: str) -> None:
        missing = [s for s in steps if s not in self.passed]
        if missing:
            pytest.skip(f"needs the step(s) {', '.join(missing)}, which did not pass or run")


@pytest.fixture(scope="class", params=CLOUDS)
def flow(request: pytest.FixtureRequest) -> Iterator[Flow]:
    """The active-passive example on one cloud's emulators, the app serving both regions."""
    cloud: Cloud = request.getfixturevalue(f"{request.param}_cloud")
    spec = cloud.emulate(load(EXAMPLES / "active_passive" / f"deploy.{cloud.name}.toml"))
    cloud.provision(spec)
    deployment = Deployment(spec)
    app = _app_module()
    apps = {}
    try:
        for region in spec.region_names:
            apps[region] = app.start(deployment, region, ("127.0.0.1", free_port()))
        yield Flow(cloud, spec, deployment, apps)
    finally:
        for server in apps.values():
            server.shutdown()
            server.server_close()
        deployment.close()


def _verdicts(probe: HealthProbe, flow: Flow) -> dict[str, HealthState]:
    """Each region's verdict asked of the probe by its target's name (the endpoint's name)."""
    states = {}
    for endpoint in flow.spec.route.endpoints:
        states[endpoint.region] = probe.status(endpoint.name).state
    return states


class TestActivePassiveExample:
    """In order; each test is one step of the local example's flow."""

    def test_apply_creates_the_failover_route(self, flow: Flow) -> None:
        router, route = flow.deployment.router, flow.spec.route
        plan = router.apply(route)
        assert plan, "the first apply creates the route"
        applied = router.get(route.name)
        assert isinstance(applied.policy, Failover)
        assert applied.policy == route.policy
        assert applied.health_check == route.health_check
        assert not router.apply(route), "apply is idempotent"
        rto = flow.spec.objectives.rto_s
        assert rto is not None
        assert router.expected_failover_s(route) <= rto
        flow.passed.add("apply")

    def test_status_reports_route_health_and_store(self, flow: Flow) -> None:
        flow.needs("apply")
        deployment, route = flow.deployment, flow.spec.route
        check = route.health_check
        assert check is not None
        read = probe_health(deployment.probe, route)  # what collect reads health with
        deadline = time.monotonic() + VERDICT_WAIT_S
        direct = _verdicts(deployment.probe, flow)
        while HealthState.UNKNOWN in direct.values() and time.monotonic() < deadline:
            time.sleep(0.1)
            direct = _verdicts(deployment.probe, flow)
        waits = check.worst_detection_s() + check.interval_s
        if HealthState.UNKNOWN in direct.values():
            reason = NO_VERDICT.get(flow.cloud.name, "no verdict")
            pytest.skip(f"{flow.cloud.name}: {reason}; collect would wait {waits:.0f} s")
        assert read() == direct  # what the controller and `status` see
        status = collect(deployment)
        assert status.route == route.name
        assert status.store is not None
        assert status.store.write_region == flow.primary
        rows = {row.region: row for row in status.endpoints}
        assert {r: row.override for r, row in rows.items()} == {
            flow.primary: "auto",
            flow.standby: "auto",
        }
        assert {r: row.health for r, row in rows.items()} == {
            r: state.value for r, state in direct.items()
        }
        assert status.answer.endpoints == (flow.endpoint_of(flow.primary),)
        assert status.rto_objective_s == flow.spec.objectives.rto_s
        assert status.dns is None, "a cloud's DNS is its data plane"

    def test_only_the_primary_takes_orders(self, flow: Flow) -> None:
        flow.needs("apply")
        store = flow.deployment.store
        assert store.write_region == flow.primary
        flow.epoch = store.fence().epoch
        assert post_order(flow.apps[flow.primary]) == 201
        assert post_order(flow.apps[flow.standby]) == 503
        answer = flow.deployment.router.resolve(flow.spec.route.name)
        assert answer.endpoints == (flow.endpoint_of(flow.primary),)
        flow.passed.add("orders")

    def test_failover_moves_writes_and_pins_the_primary_down(self, flow: Flow) -> None:
        flow.needs("apply")
        deployment, name = flow.deployment, flow.spec.route.name
        controller = ActivePassiveController(
            deployment.router, name, health=lambda: {}, store=deployment.store, catch_up_s=1.0
        )
        flow.controller = controller
        assert controller.active == flow.primary
        force = False
        if flow.cloud.name == "aws":
            # moto keeps no global tables: the standby's replica never catches up, and a
            # switchover says so instead of moving writes ahead of their data.
            with pytest.raises(PreconditionFailed, match="switchover aborted"):
                controller.failover(flow.standby, "drill")
            assert deployment.store.write_region == flow.primary
            force = True
        move = controller.failover(flow.standby, "drill", force=force)
        assert move.fence is not None
        assert move.fence.region == flow.standby
        assert move.fence.epoch > flow.epoch
        assert deployment.store.write_region == flow.standby
        overrides = deployment.router.endpoint_status(name)
        assert overrides.get(flow.endpoint_of(flow.primary)) is EndpointStatus.DOWN
        assert overrides.get(flow.endpoint_of(flow.standby), EndpointStatus.AUTO) in {
            EndpointStatus.AUTO,
            EndpointStatus.UP,
        }
        answer = deployment.router.resolve(name)
        assert answer.endpoints == (flow.endpoint_of(flow.standby),)
        assert post_order(flow.apps[flow.standby]) == 201
        flow.passed.add("failover")

    def test_the_old_primary_refuses_orders(self, flow: Flow) -> None:
        flow.needs("failover")
        if flow.cloud.name == "aws":
            pytest.skip(f"aws: {MOTO_NO_GLOBAL_TABLES}: the old primary's table still names it")
        assert post_order(flow.apps[flow.primary]) == 503

    def test_a_new_process_sees_the_pinned_route(self, flow: Flow) -> None:
        flow.needs("failover")
        with Deployment(flow.spec) as fresh:
            overrides = fresh.router.endpoint_status(flow.spec.route.name)
            assert overrides.get(flow.endpoint_of(flow.primary)) is EndpointStatus.DOWN

    def test_a_new_process_sees_the_write_region(self, flow: Flow) -> None:
        """What each ``multiregion`` command, a new process, takes as the active region."""
        flow.needs("failover")
        if flow.cloud.name == "aws":
            pytest.skip(f"aws: {MOTO_NO_GLOBAL_TABLES}; a new handle reads the primary's")
        with Deployment(flow.spec) as fresh:
            assert fresh.store.write_region == flow.standby
            controller = ActivePassiveController(
                fresh.router, flow.spec.route.name, health=lambda: {}, store=fresh.store
            )
            assert controller.active == flow.standby

    def test_failback_returns_writes_and_traffic(self, flow: Flow) -> None:
        flow.needs("failover")
        assert flow.controller is not None
        deployment, name = flow.deployment, flow.spec.route.name
        # moto's replicas never catch up (no global tables): failing back must be forced there
        move = flow.controller.failback("drill over", force=flow.cloud.name == "aws")
        assert (move.decision.from_region, move.decision.to_region) == (
            flow.standby,
            flow.primary,
        )
        assert move.fence is not None
        assert move.fence.region == flow.primary
        assert deployment.store.write_region == flow.primary
        overrides = deployment.router.endpoint_status(name)
        assert EndpointStatus.DOWN not in overrides.values()
        answer = deployment.router.resolve(name)
        assert answer.endpoints == (flow.endpoint_of(flow.primary),)
        assert post_order(flow.apps[flow.primary]) == 201
        if flow.cloud.name != "aws":  # on moto the standby's own table still names it
            assert post_order(flow.apps[flow.standby]) == 503
            assert move.fence.epoch == flow.epoch + 2


@pytest.mark.parametrize("cloud", CLOUDS, indirect=True)
def test_active_active_spec_builds_on_the_emulators(cloud: Cloud) -> None:
    spec = cloud.emulate(load(EXAMPLES / "active_active" / f"deploy.{cloud.name}.toml"))
    assert isinstance(spec.route.policy, Weighted)
    cloud.provision(spec)
    with Deployment(spec) as deployment:
        router, store = deployment.router, deployment.store
        assert deployment.bucket is not None
        assert deployment.probe is not None
        assert store.regions == spec.region_names
        assert store.write_region in spec.region_names
        plan = router.plan(spec.route)
        assert plan, "nothing applied yet in this namespace: the plan creates the route"
        rto = spec.objectives.rto_s
        assert rto is not None
        assert router.expected_failover_s(spec.route) <= rto
