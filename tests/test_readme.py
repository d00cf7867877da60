"""The README's commands and example stay true to the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

README = Path(__file__).parent.parent / "README.md"


def test_the_first_commands_are_make_demo_and_make_test() -> None:
    first_block = re.search(r"```\n(.*?)```", README.read_text(), re.S)
    assert first_block is not None
    assert first_block.group(1).split("\n")[:2] == ["make demo", "make test"]


def test_the_python_example_runs(tmp_path: Path) -> None:
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert code is not None
    script = code.group(1).replace("/tmp/mr-dns", str(tmp_path / "dns"))
    script += "\nrouter.close()\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "app.example.test:"
    assert "+ policy: failover primary > standby" in done.stdout
    assert "Answer(name='app.example.test', record_type='A'" in done.stdout
    assert float(lines[-1]) > 0


DOCS = README.parent / "docs"
SHOP = """
def place_order(store, key, total):
    store.put(key, {"total": total})

def active_region(router, name):
    answer = router.resolve(name)
    return router.get(name).endpoint(answer.endpoints[0]).region
"""


def test_the_readme_shows_validate_json_and_the_fixtures() -> None:
    text = README.read_text()
    for shown in (
        "multiregion validate --config",
        "--json",
        "multiregion_router",
        "docs/testing.md",
    ):
        assert shown in text


def test_the_ten_line_user_test_in_the_docs_runs(pytester: pytest.Pytester) -> None:
    example = re.search(r"```python\n(.*?)```", (DOCS / "testing.md").read_text(), re.S)
    assert example is not None
    assert len(example.group(1).strip().splitlines()) <= 10
    pytester.makepyfile(shop=SHOP, test_shop=example.group(1))
    pytester.syspathinsert()
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_demo_installs_the_package_alone(tmp_path: Path) -> None:
    def planned(target: str) -> str:
        done = subprocess.run(
            ["make", "-n", "-B", target, f"VENV={tmp_path / 'venv'}"],
            cwd=README.parent,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    demo = planned("demo")
    assert "pip install --quiet -e .\n" in demo
    assert "[dev]" not in demo
    assert "npm" not in demo
    assert "pip install --quiet -e '.[dev]'" in planned("test")
