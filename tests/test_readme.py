"""The README's commands and example stay true to the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
