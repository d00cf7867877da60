"""``multiregion backup | restore | verify | backups list`` on a local deployment spec."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from multiregion import cli
from multiregion.backup import Backups
from multiregion.backup_encryption import KEY_ENV, key_from_env
from multiregion.commands import progress
from multiregion.commands.backup import restore_test_warning
from multiregion.deployment import Deployment

SPEC = """
[deployment]
name = "shop"
provider = "local"

[[regions]]
name = "region-a"
endpoint = "127.0.0.2"

[[regions]]
name = "region-b"
endpoint = "127.0.0.3"

[route]
name = "app.shop.test"
policy = "failover"
order = ["region-a", "region-b"]

[store]
path = "state/store"
replicate = false

[bucket]
path = "state/bucket"
"""


@pytest.fixture(autouse=True)
def backup_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "multiregion.commands.backup")
    )


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "deploy.toml"
    path.write_text(SPEC)
    with Deployment.from_file(path) as deployment:
        deployment.store.put_many((f"order/{i:05d}", {"n": i, "pad": "x" * 50}) for i in range(250))
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def backup_id(out: str) -> str:
    found = re.search(r"backup (\S+): ", out)
    assert found, out
    return found.group(1)


def test_backup_list_restore_verify(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "backup", "--config", spec)
    assert (code, err) == (0, "")
    assert "full, 250 items (250 written, 0 deleted)" in out
    full = backup_id(out)

    with Deployment.from_file(spec) as deployment:
        deployment.store.put("order/00000", {"n": -1})
        deployment.store.delete("order/00001")
    code, out, _ = run(capsys, "backup", "--config", spec, "--incremental-from", full)
    assert code == 0
    assert "incremental, 249 items (1 written, 1 deleted)" in out
    incremental = backup_id(out)

    code, out, _ = run(capsys, "backups", "list", "--config", spec, "--json")
    rows = json.loads(out)
    assert [(r["backup_id"], r["kind"], r["base"]) for r in rows] == [
        (full, "full", None),
        (incremental, "incremental", full),
    ]
    code, out, _ = run(capsys, "backups", "list", "--config", spec)
    assert code == 0
    assert full in out
    assert incremental in out
    assert "incremental" in out

    code, out, _ = run(capsys, "verify", "--config", spec, incremental)
    assert code == 0
    assert f"backup {incremental} verified: 249 items" in out

    with Deployment.from_file(spec) as deployment:  # lose everything, then restore the full one
        for item in list(deployment.store.scan("")):
            deployment.store.delete(item.key)
    code, out, _ = run(capsys, "restore", "--config", spec, full, "--into-region", "region-a")
    assert code == 0
    assert "into region-a: 250 items" in out
    with Deployment.from_file(spec) as deployment:
        assert deployment.store.get("order/00000").value["n"] == 0
        assert sum(1 for _ in deployment.store.scan("")) == 250


def test_verify_finds_a_damaged_backup(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "backup", "--config", spec)
    damaged = backup_id(out)
    with Deployment.from_file(spec) as deployment:
        chunk = next(o for o in deployment.bucket.list(f"backups/{damaged}/chunk-"))
        deployment.bucket.delete(chunk.key)
    code, out, err = run(capsys, "verify", "--config", spec, damaged)
    assert code == 2
    assert "missing from the backup" in err


def test_restore_refuses_a_region_that_does_not_take_writes(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(capsys, "backup", "--config", spec)
    full = backup_id(out)
    code, _, err = run(capsys, "restore", "--config", spec, full, "--into-region", "region-b")
    assert code == 2
    assert "--into-region: 'region-b' is not the store's write region (region-a)" in err
    code, _, err = run(capsys, "restore", "--config", spec, full, "--into-region", "region-z")
    assert code == 2
    assert "'region-z' is not one of region-a, region-b" in err


def test_an_empty_bucket_lists_nothing(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "backups", "list", "--config", spec)[1] == "no backups\n"
    assert json.loads(run(capsys, "backups", "list", "--config", spec, "--json")[1]) == []


def test_errors_name_the_file_or_the_backup(
    tmp_path: Path, spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "backup", "--config", tmp_path / "missing.toml")
    assert code == 2
    assert "missing.toml: no such file" in err
    code, _, err = run(capsys, "restore", "--config", spec, "20990101T000000Z-nothere")
    assert code == 2
    assert "backup 20990101T000000Z-nothere: no manifest" in err
    with pytest.raises(SystemExit):
        cli.main(["restore", "--config", str(spec)])  # BACKUP_ID is required
    assert "BACKUP_ID" in capsys.readouterr().err


def test_plain_progress_lines_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "PLAIN_EVERY", 100)
    out = io.StringIO()
    with progress.meter(Console(file=out), "restoring", 250) as advance:
        for _ in range(25):
            advance(10)
    assert out.getvalue().splitlines() == ["restoring: 100/250 items", "restoring: 200/250 items"]


def test_a_progress_bar_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with progress.meter(console, "backing up") as advance:
        advance(5)
    assert "backing up" in out.getvalue()


def test_a_damaged_manifest_is_listed_as_damaged_and_pruning_goes_on(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = [backup_id(run(capsys, "backup", "--config", spec)[1]) for _ in range(3)]
    with Deployment.from_file(spec) as deployment:
        key = f"backups/{ids[1]}/manifest.json"
        deployment.bucket.put(key, b"{ not json")
    code, out, err = run(capsys, "backups", "list", "--config", spec, "--json")
    assert code == 0
    assert f"warning: backup {ids[1]} is damaged and skipped" in err
    rows = json.loads(out)
    assert [r["backup_id"] for r in rows if "damaged" not in r] == [ids[0], ids[2]]
    assert [r["backup_id"] for r in rows if "damaged" in r] == [ids[1]]
    code, out, err = run(capsys, "backups", "list", "--config", spec)
    assert code == 0
    assert "DAMAGED" in out
    code, out, err = run(capsys, "backups", "prune", "--config", spec, "--keep-last", "1")
    assert code == 0
    assert ids[1] in err
    assert out.splitlines() == ["deleted 1 backup(s)", f"  {ids[0]}"]


def test_test_restore_records_and_status_warns_when_it_gets_old(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Deployment.from_file(spec) as deployment:
        assert restore_test_warning(deployment) is None  # no backup yet: nothing to test
    full = backup_id(run(capsys, "backup", "--config", spec)[1])
    with Deployment.from_file(spec) as deployment:
        assert "no restore test recorded" in (restore_test_warning(deployment) or "")
    code, out, err = run(
        capsys,
        "backups",
        "test-restore",
        "--config",
        spec,
        "--sentinel",
        "order/00249",
        "--max-age",
        "3600",
        "--json",
    )
    assert (code, err) == (0, "")
    record = json.loads(out)
    assert (record["backup_id"], record["item_count"], record["max_age_s"]) == (full, 250, 3600)
    with Deployment.from_file(spec) as deployment:
        assert restore_test_warning(deployment) is None
        later = record["verified_at"] + 7200
        warning = restore_test_warning(deployment, now=later)
    assert warning is not None
    assert f"backup {full}) is 2.0 h old, over the 1 h policy" in warning
    code, _, err = run(capsys, "backups", "test-restore", "--config", spec, "--sentinel", "nope/1")
    assert code == 2
    assert "sentinel 'nope/1' is not restored" in err


def test_backups_are_sealed_with_the_key_in_the_environment(
    spec: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = base64.b64encode(bytes(range(32))).decode()
    monkeypatch.setenv(KEY_ENV, f"ops-2026:{secret}")
    code, out, _ = run(capsys, "backup", "--config", spec)
    assert code == 0
    sealed = backup_id(out)
    with Deployment.from_file(spec) as deployment:
        manifest = Backups(deployment.bucket, encryption=key_from_env()).manifest(sealed)
        assert manifest.encryption is not None
        assert manifest.encryption["key_id"] == "ops-2026"
        assert secret not in json.dumps(manifest.encryption)
    code, out, _ = run(capsys, "verify", "--config", spec, sealed)
    assert code == 0
    assert f"backup {sealed} verified: 250 items" in out
    monkeypatch.delenv(KEY_ENV)
    code, _, err = run(capsys, "verify", "--config", spec, sealed)
    assert code == 2
    assert "encrypted under key 'ops-2026': give that key" in err
    monkeypatch.setenv(KEY_ENV, "ops-2026:not-base64!")
    code, _, err = run(capsys, "backups", "list", "--config", spec)
    assert code == 2
    assert KEY_ENV in err
    assert "not-base64" not in err
