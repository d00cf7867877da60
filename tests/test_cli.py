"""The ``multiregion`` command: argument errors, and how library errors become exit codes."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from multiregion import cli
from multiregion.demo import command as demo_command
from multiregion.errors import InvalidInput, Unavailable


def _exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    code = info.value.code
    assert isinstance(code, int)
    return code


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code([]) == 2
    assert "COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["demo", "--replication", "eventual"], "invalid choice: 'eventual'"),
        (["demo", "--lag", "soon"], "invalid float value: 'soon'"),
        (["demo", "--colour"], "unrecognized arguments: --colour"),
        (["teleport"], "invalid choice: 'teleport'"),
    ],
)
def test_argument_errors_exit_2(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _exit_code(argv) == 2
    assert complaint in capsys.readouterr().err


def test_invalid_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--lag", "-1"]) == 2  # refused before anything starts
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("multiregion: error: lag: ")
    assert err.count("\n") == 1


def _with_handler(
    monkeypatch: pytest.MonkeyPatch, raised: BaseException | None, code: int = 0
) -> None:
    def handler(_args: argparse.Namespace) -> int:
        if raised is not None:
            raise raised
        return code

    monkeypatch.setattr(demo_command, "run", handler)


@pytest.mark.parametrize(
    "error", [Unavailable("region-b did not answer"), InvalidInput("route", "bad")]
)
def test_library_errors_exit_2_without_traceback(
    error: Exception, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _with_handler(monkeypatch, error)
    assert cli.main(["demo"]) == 2
    assert capsys.readouterr().err == f"multiregion: error: {error}\n"


def test_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _with_handler(monkeypatch, KeyboardInterrupt())
    assert cli.main(["demo"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_a_command_chooses_its_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_handler(monkeypatch, None, code=3)
    assert cli.main(["demo", "--replication", "sync"]) == 3


def test_bugs_are_not_disguised_as_library_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_handler(monkeypatch, RuntimeError("a bug"))
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main(["demo"])


def test_python_dash_m_runs_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "multiregion", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0
    assert "demo" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "multiregion", "demo", "--lag", "-1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "lag" in done.stderr


def test_a_group_listed_twice_is_registered_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, *cli.COMMAND_MODULES))
    assert cli.main(["demo", "--lag", "-1"]) == 2  # argparse refuses a second "demo"
    assert "lag" in capsys.readouterr().err
