"""Running the ``multiregion`` command in-process with the operate group plugged in."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest

from multiregion import cli
from multiregion.deployment import Deployment, load
from multiregion.testing.endpoints import free_port

OPERATE = "multiregion.commands.operate"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@attrs.frozen
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Run = Callable[..., Result]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """``run("status", "--config", path)``: the exit code and what was printed."""
    if OPERATE not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, OPERATE))

    def invoke(*argv: str) -> Result:
        capsys.readouterr()
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return invoke


@pytest.fixture
def local_example(tmp_path: Path) -> Callable[[str], Path]:
    """``local_example("active_passive")``: that example's local spec, copied into tmp_path.

    Its state goes to tmp_path, its apps get a port free on both addresses, and its fixed DNS
    port is dropped (a data plane takes a free one), so that runs never collide.
    """

    def copy(name: str) -> Path:
        source = EXAMPLES / name / "deploy.local.toml"
        addresses = [r.endpoint for r in load(source).regions]
        text, found = re.subn(
            r"^port = 8080\b", f"port = {free_port(addresses)}", source.read_text(), flags=re.M
        )
        assert found == 1
        text, found = re.subn(r"^dns_port = .*$", "", text, flags=re.M)
        assert found == 1
        target = tmp_path / name / "deploy.local.toml"
        target.parent.mkdir()
        target.write_text(text)
        return target

    return copy


def app_module(example: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{example}_app", EXAMPLES / example / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def active_passive(local_example: Callable[[str], Path]) -> Iterator[Path]:
    """The local active-passive example in tmp_path: both regions' apps serving."""
    config = local_example("active_passive")
    app = app_module("active_passive")
    with Deployment.from_file(config) as deployment:
        servers = [app.start(deployment, region) for region in deployment.spec.region_names]
        try:
            yield config
        finally:
            for server in servers:
                server.shutdown()
                server.server_close()
