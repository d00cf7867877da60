"""examples/serverless_backup: the handler backs up the local spec's store; specs and template."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from multiregion.backup import Backups
from multiregion.deployment import Deployment, load
from multiregion.providers.local.bucket import LocalBucket

from .payloads import load as load_payload

EXAMPLE = Path(__file__).parents[2] / "examples" / "serverless_backup"


def import_handler(name: str) -> ModuleType:
    """A fresh copy of handler.py (its dispatcher is built once per module, as per container)."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLE / "handler.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def local_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    spec = tmp_path / "deploy.local.toml"
    shutil.copy(EXAMPLE / "deploy.local.toml", spec)
    monkeypatch.setenv("MULTIREGION_CONFIG", str(spec))
    with Deployment.from_file(spec) as deployment:
        deployment.store.put_many((f"order/{i}", {"item": "widget", "n": i}) for i in range(40))
    return spec


def backups_in(spec: Path) -> Backups:
    return Backups(LocalBucket(spec.parent / "state" / "bucket"))


def test_the_lambda_handler_backs_up_the_store_once_per_alarm(local_spec: Path) -> None:
    module = import_handler("example_handler_lambda")
    payload = load_payload("aws_eventbridge_alarm.json")
    try:
        assert module.handler(payload, None)["status"] == "ran"
        assert module.handler(payload, None)["status"] == "duplicate"
        resolved = load_payload("aws_eventbridge_route53_ok.json")
        assert module.handler(resolved, None)["status"] == "ignored-resolved"
    finally:
        module.dispatcher().ledger_store.close()
    [manifest] = backups_in(local_spec).list()
    assert manifest.source["alarm"] == "ServerCpuTooHigh"
    # The 40 orders, and the ledger's claim of the alarm being handled (same store).
    assert manifest.item_count == 41
    assert backups_in(local_spec).check(manifest.backup_id) == 41


def test_the_gcp_entry_point_backs_up_from_a_cloud_event(local_spec: Path) -> None:
    module = import_handler("example_handler_gcp")
    try:
        outcome = module.on_alarm(load_payload("gcp_cloudevent_pubsub_incident_open.json"))
    finally:
        module.dispatcher().ledger_store.close()
    assert outcome["status"] == "ran"
    assert [m.backup_id for m in backups_in(local_spec).list()] == [outcome["detail"]]


def test_main_py_reexports_the_gcp_entry_point(local_spec: Path) -> None:
    sys.path.insert(0, str(EXAMPLE))
    try:
        spec = importlib.util.spec_from_file_location("example_main", EXAMPLE / "main.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLE))
        sys.modules.pop("handler", None)
    assert callable(module.on_alarm)


@pytest.mark.parametrize("cloud", ["local", "aws", "azure", "gcp"])
def test_every_spec_of_the_example_is_valid(cloud: str) -> None:
    spec = load(EXAMPLE / f"deploy.{cloud}.toml")
    assert spec.providers["store"] == cloud
    assert spec.providers["bucket"] == cloud


def test_the_sam_template_passes_cfn_lint() -> None:
    if importlib.util.find_spec("cfnlint") is None:
        pytest.skip("cfn-lint not installed")
    from cfnlint.api import lint_file

    matches = lint_file(EXAMPLE / "template.yaml")
    assert [str(m) for m in matches] == []
