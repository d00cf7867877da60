"""The docs stay true to the code: every Python sample parses and calls what exists with
arguments it takes, every command line names commands and options the CLI has, and the
samples that run on this machine alone run as shown (the others have their own tests:
test_readme.py, failover/test_runbooks_doc.py)."""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from multiregion import cli, deployment, registry, specfile

ROOT = Path(__file__).parent.parent
PAGES = sorted(
    [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "examples").glob("*/README.md")]
)

ROUTE_TYPES = ("Route", "Endpoint", "Failover", "Weighted", "Latency", "Geo")
# Names the samples use without importing them (the page says where they come from).
PRELUDE = {
    "registry": "multiregion:registry",
    **{name: f"multiregion:{name}" for name in ROUTE_TYPES},
    "ProbeTarget": "multiregion:ProbeTarget",
    "HealthCheck": "multiregion:HealthCheck",
    "Policy": "multiregion.serverless:Policy",
    "Rule": "multiregion.serverless:Rule",
    "BucketJournal": "multiregion.failover.shared_journal:BucketJournal",
    "StoreJournal": "multiregion.failover.shared_journal:StoreJournal",
    "ApprovalTokens": "multiregion.failover.approvals:ApprovalTokens",
}
USERS_OWN = {"my_package", "shop"}
"""Modules of the user's own that samples import."""
REGISTRY_PARTS = {"router", "store", "bucket", "probe"}
REGIONS = ["region-a", "region-b"]


def samples(language: str = "python") -> Iterator[tuple[str, int, str]]:
    """(page, line of the fence, code) of every fenced block in ``language``."""
    for page in PAGES:
        text = page.read_text()
        for found in re.finditer(rf"```{language}\n(.*?)```", text, re.S):
            line = text.count("\n", 0, found.start()) + 2
            yield str(page.relative_to(ROOT)), line, found.group(1)


def _named(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def _resolve(node: ast.expr, names: dict[str, Any], types: dict[str, type]) -> Any:
    """What a call's function is, where the sample says (None when it cannot be known)."""
    if isinstance(node, ast.Name):
        if node.id in names:
            return names[node.id]
        return _named(PRELUDE[node.id]) if node.id in PRELUDE else None
    if isinstance(node, ast.Attribute):
        if isinstance(node.value, ast.Name) and node.value.id in types:
            return getattr(types[node.value.id], node.attr, AttributeError)
        owner = _resolve(node.value, names, types)
        if inspect.ismodule(owner) or inspect.isclass(owner):
            return getattr(owner, node.attr, AttributeError)
    return None


def _target(call: ast.Call, names: dict[str, Any], types: dict[str, type]) -> Any:
    function = _resolve(call.func, names, types)
    if (
        function in {getattr(registry, part) for part in REGISTRY_PARTS}
        and call.args
        and isinstance(call.args[0], ast.Constant)
    ):  # registry.store("aws", ...): the provider's factory takes the settings
        part = function.__name__
        return registry.provider(call.args[0].value).factory(part), call.args[1:]
    return function, call.args


def _check_calls(code: str) -> list[str]:
    tree = ast.parse(code)
    names: dict[str, Any] = {}
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom) and statement.module in USERS_OWN:
            continue
        if isinstance(statement, ast.Import | ast.ImportFrom):
            exec(compile(ast.Module([statement], []), "<sample>", "exec"), names)
    types: dict[str, type] = {}
    for node in ast.walk(tree):  # what a variable holds: x = Class(...) / with Class(...) as x
        pairs: list[tuple[ast.expr, ast.expr | None]] = []
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            pairs.append((node.value, node.targets[0]))
        if isinstance(node, ast.With):
            pairs += [(item.context_expr, item.optional_vars) for item in node.items]
        for value, target in pairs:
            if isinstance(value, ast.Call) and isinstance(target, ast.Name):
                made, _ = _target(value, names, types)
                if inspect.isclass(made):
                    types[target.id] = made
    wrong = []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        function, args = _target(call, names, types)
        shown = ast.unparse(call.func)
        if function is AttributeError:
            wrong.append(f"line {call.lineno}: {shown} does not exist")
            continue
        if not callable(function) or any(isinstance(a, ast.Starred) for a in args):
            continue
        if any(k.arg is None for k in call.keywords):
            continue
        try:
            signature = inspect.signature(function)
        except (TypeError, ValueError):
            continue
        bound = [None] * len(args)
        owner = call.func.value if isinstance(call.func, ast.Attribute) else None
        if isinstance(owner, ast.Name) and owner.id in types and inspect.isfunction(function):
            bound.insert(0, None)  # self: a method looked up on the instance's class
        try:
            signature.bind(*bound, **{k.arg: None for k in call.keywords if k.arg})
        except TypeError as exc:
            wrong.append(f"line {call.lineno}: {shown}{signature}: {exc}")
    return wrong


@pytest.mark.parametrize(
    ("page", "line", "code"), [pytest.param(*s, id=f"{s[0]}:{s[1]}") for s in samples()]
)
def test_python_samples_call_what_exists(page: str, line: int, code: str) -> None:
    assert _check_calls(code) == [], f"{page}:{line}"


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def test_command_lines_in_the_docs_name_real_commands_and_options() -> None:
    parser = cli.build_parser()
    commands = _subcommands(parser)
    wrong = []
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            where = f"{page.relative_to(ROOT)}:{number}"
            for found in re.finditer(r"multiregion ((?:-[vq]+ )*)([a-z][a-z-]*)([^`|]*)", line):
                word, rest = found.group(2), found.group(3).split()
                if word not in commands:
                    if found.group(1) or line.lstrip().startswith("$"):
                        wrong.append(f"{where}: no command {word!r}")
                    continue
                command = commands[word]
                actions = _subcommands(command)
                if actions and rest and rest[0] in actions:
                    command, rest = actions[rest[0]], rest[1:]
                for token in rest:
                    option = token.split("=")[0].rstrip(",.;:)'\"")
                    if re.fullmatch(r"--?[a-z][a-z-]*", option) and option not in _options(command):
                        wrong.append(f"{where}: {word} has no option {option}")
    assert wrong == []


def _transcript(page: str) -> list[str]:
    text = (ROOT / page).read_text()
    found = re.search(r"```\n(\$ multiregion validate --config deploy.toml\n.*?)```", text, re.S)
    assert found is not None, page
    return found.group(1).splitlines()


def test_the_validate_transcripts_are_what_validate_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = (ROOT / "examples" / "active_passive" / "deploy.local.toml").read_text()
    spec = spec.replace("\nfailure_threshold", "\nfailure_treshold").replace("\nlag_s", "\nlag_sec")
    (tmp_path / "deploy.toml").write_text(spec)
    monkeypatch.chdir(tmp_path)  # the transcript shows the file as the user named it
    assert cli.main(["validate", "--config", "deploy.toml"]) == 1
    printed = capsys.readouterr().out.splitlines()
    for page in ("README.md", "docs/testing.md"):
        shown = _transcript(page)
        assert shown[1 : 1 + len(printed)] == printed, page
    assert cli.main(["validate", "--config", "deploy.toml", "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"file", "valid", "problems"}
    assert set(result["problems"][0]) == {"path", "problem"}


def test_the_plan_json_in_the_readme_is_what_plan_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (ROOT / "README.md").read_text()
    shown = text.split("$ multiregion plan --config deploy.toml --json\n", 1)[1]
    shown = shown.split("    ...", 1)[0]
    spec = (ROOT / "examples" / "active_passive" / "deploy.local.toml").read_text()
    spec = re.sub(r"\ndns_port = \d+", "", spec)  # no fixed port: a free one
    (tmp_path / "deploy.toml").write_text(spec)
    assert cli.main(["plan", "--config", str(tmp_path / "deploy.toml"), "--json"]) == 0
    assert capsys.readouterr().out.startswith(shown)


def test_the_interfaces_with_sample_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the sample's relative paths
    exec(next(c for _, _, c in samples() if "with registry.store(" in c), {})
    with registry.store("local", path=tmp_path / "state" / "store", regions=REGIONS) as store:
        assert store.get("order/1").value == {"total": 12}


def _sample(page: str, marker: str) -> str:
    return next(c for p, _, c in samples() if p == page and marker in c)


def _run(code: str, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_active_active_samples_run(tmp_path: Path) -> None:
    spec = (ROOT / "examples" / "active_active" / "deploy.local.toml").read_text()
    (tmp_path / "deploy.local.toml").write_text(re.sub(r"\ndns_port = \d+", "", spec))
    printed = _run(_sample("docs/active-active.md", "ActiveActiveController"), tmp_path)
    assert printed == "{'region-a': 1.0, 'region-b': 0.0}\n"
    merge = _sample("docs/active-active.md", "Merge(union)")
    _run(merge + "store.put('t', {'tags': ['a']})\nstore.close()\n", tmp_path)


def test_the_backups_sample_runs(tmp_path: Path) -> None:
    given = """
import os
from multiregion.providers.local.bucket import LocalBucket
from multiregion.providers.local.store import LocalStore
bucket = LocalBucket("bucket")
store = LocalStore("store", ["region-a", "region-b"], replication="sync")
other_store = LocalStore("other", ["region-a", "region-b"])
secret_32_bytes = os.urandom(32)
store.put("order/1", {"total": 12})
"""
    check = "\nprint(other_store.get('order/1').value, later.backup_id != manifest.backup_id)\n"
    printed = _run(given + _sample("docs/backups.md", "EnvelopeKey") + check, tmp_path)
    assert printed == "{'total': 12} True\n"


def _exists(dotted: str) -> bool:
    """``multiregion.a.b`` (or ``multiregion.a:b``) names a module or something in one."""
    parts = dotted.replace(":", ".").split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(found, name):
                return False
            found = getattr(found, name)
        return True
    return False


NOT_FILES = {"tests/test_my_store_contract.py", "multiregion/events"}
"""A user's own file in a sample; the serverless ledger's key prefix."""


def test_paths_and_dotted_names_in_the_docs_exist() -> None:
    path = re.compile(r"(?<![\w/.-])((?:tests|benches|examples|src|docs|multiregion)/[\w./-]*\w)")
    dotted = re.compile(r"(?<![\w/.-])(multiregion(?:\.[A-Za-z_]\w*)+(?::\w+)?)")
    wrong = []
    for page in PAGES:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            where = f"{page.relative_to(ROOT)}:{number}"
            for found in path.finditer(line):
                name = found.group(1)
                places = [ROOT / name, ROOT / "src" / name, page.parent / name]
                if name in NOT_FILES:
                    continue
                if not any(place.exists() for place in places):
                    wrong.append(f"{where}: no file {name}")
            wrong += [
                f"{where}: no {n.group(1)}"
                for n in dotted.finditer(line)
                if not _exists(n.group(1))
            ]
    assert wrong == []


@pytest.mark.parametrize(
    ("page", "line", "table"), [pytest.param(*s, id=f"{s[0]}:{s[1]}") for s in samples("toml")]
)
def test_spec_samples_are_valid_specs(page: str, line: int, table: str) -> None:
    """A spec excerpt, put in place of the same tables of the example's spec, passes the
    checks of `multiregion validate`."""
    example = ROOT / "examples" / "active_passive" / "deploy.local.toml"
    spec = {**tomllib.loads(example.read_text()), **tomllib.loads(table)}
    try:
        deployment.parse(spec, source=f"{page}:{line}")
    except specfile.SpecError as exc:
        pytest.fail(str(exc))
