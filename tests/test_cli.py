"""The ``multiregion`` command: argument errors, and how library errors become exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from multiregion import cli
from multiregion.commands import progress
from multiregion.demo import command as demo_command
from multiregion.errors import InvalidInput, Unavailable
from tests.commands import conftest as commands
from tests.commands.conftest import EXAMPLES, Run


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
    assert err.startswith("multiregion: error: --lag: ")
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


# --------------------------------------------------------------------------- one convention


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """The command run in-process, as the operate tests run it."""
    invoke: Run = commands.run.__wrapped__(monkeypatch, capsys)
    return invoke


@pytest.fixture
def local_example(tmp_path: Path) -> Callable[[str], Path]:
    """An example's local spec copied into tmp_path, as the operate tests copy it."""
    copy: Callable[[str], Path] = commands.local_example.__wrapped__(tmp_path)
    return copy


NOT_REPORTING = {"serve", "faultproxy"}
"""Commands that run until stopped rather than report a result."""
METAVARS = {
    "config": "FILE",
    "svg": "FILE",
    "region": "REGION",
    "to": "REGION",
    "into_region": "REGION",
    "backup_id": "BACKUP_ID",
    "incremental_from": "BACKUP_ID",
    "timeout": "SECONDS",
    "steady": "SECONDS",
    "lag": "SECONDS",
    "port": "PORT",
    "app_port": "PORT",
}
"""The same kind of value is named the same way in every command."""


def _leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _leaves(sub, (*path, name))
    return found or [(" ".join(path), parser)]


LEAVES = _leaves(cli.build_parser())


@pytest.mark.parametrize(("command", "parser"), LEAVES, ids=[name for name, _ in LEAVES])
def test_every_command_follows_one_convention(
    command: str, parser: argparse.ArgumentParser
) -> None:
    options = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert [a.dest for a in options if not a.help] == [], f"{command}: options without help"
    for action in options:
        takes_value = action.nargs != 0 and not isinstance(action, argparse._CountAction)
        if takes_value and action.choices is None:
            assert isinstance(action.metavar, str), f"{command} {action.dest}: no metavar"
            assert action.metavar.isupper(), f"{command} {action.dest}: {action.metavar}"
            wanted = METAVARS.get(action.dest, action.metavar)
            assert action.metavar == wanted, f"{command} {action.dest}: {action.metavar}"
    if command.split()[0] not in NOT_REPORTING:
        assert any("--json" in a.option_strings for a in options), f"{command}: no --json"


def test_top_level_verbosity_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert _exit_code(["-v", "-q", "demo"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err
    parser = cli.build_parser()
    assert parser.parse_args(["-vv", "demo"]).verbose == 2
    assert parser.parse_args(["-q", "demo"]).quiet


def test_verbosity_options_are_taken_after_the_command_too(
    capsys: pytest.CaptureFixture[str],
) -> None:
    parser = cli.build_parser()
    for argv, verbose, quiet in (
        (["demo", "-vv"], 2, False),
        (["demo", "-q"], 0, True),
        (["-v", "demo"], 1, False),
        (["backups", "list", "-q", "--config", "x"], 0, True),
    ):
        parsed = parser.parse_args(argv)
        assert (parsed.verbose, parsed.quiet) == (verbose, quiet), argv
    assert _exit_code(["demo", "-v", "-q"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_reader_that_leaves_early_gets_no_traceback() -> None:
    """``multiregion ... | head``: the pipe closes before the output is written."""
    shown = subprocess.Popen(
        [sys.executable, "-m", "multiregion", "validate", "--schema"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert shown.stdout is not None
    assert shown.stderr is not None
    shown.stdout.close()
    err = shown.stderr.read().decode()
    assert shown.wait(timeout=30) == cli.EXIT_BROKEN_PIPE
    assert err == ""


def test_q_leaves_errors_only_and_v_shows_info(capsys: pytest.CaptureFixture[str]) -> None:
    log = logging.getLogger("multiregion.anything")
    for verbose, quiet, shown in ((0, True, ["error"]), (1, False, ["info", "warning", "error"])):
        with cli.configured_logging(verbose, quiet), progress.quiet(quiet):
            log.debug("debug")
            log.info("info")
            log.warning("warning")
            log.error("error")
            with progress.waiting("a wait", console=Console(file=sys.stderr)):
                time.sleep(progress.SHOW_AFTER_S + 0.1)
        err = capsys.readouterr().err
        assert [line.split(": ")[-1] for line in err.splitlines() if "a wait" not in line] == shown
        assert ("a wait" in err) is not quiet


def _lines(text: str, needle: str) -> int:
    return sum(needle in line for line in text.splitlines())


def test_a_move_is_reported_once_and_logged_only_with_v(
    local_example: Callable[[str], Path], run: Run
) -> None:
    config = str(local_example("active_passive"))
    assert run("apply", "--config", config).code == 0
    moved = run("failover", "--config", config, "--to", "region-b", "--force")
    assert moved.code == 0
    assert _lines(moved.out + moved.err, "failover region-a -> region-b") == 1
    back = run("-v", "failback", "--config", config, "--force")
    assert _lines(back.out, "failback region-b -> region-a") == 1
    assert _lines(back.err, "multiregion: WARNING: failback region-b -> region-a") == 1


@pytest.mark.parametrize(
    ("argv", "keys"),
    [
        (["validate"], {"file", "valid", "providers"}),
        (["plan"], {"route", "changes"}),
        (["apply"], {"route", "changes", "expected_failover_s"}),
        (["status"], {"route", "endpoints", "answer"}),
    ],
)
def test_json_is_one_object_on_stdout(
    argv: list[str], keys: set[str], local_example: Callable[[str], Path], run: Run
) -> None:
    config = str(local_example("active_passive"))
    if argv[0] == "status":
        assert run("apply", "--config", config).code == 0
    result = run(*argv, "--config", config, "--json")
    assert result.code == 0, result.err
    assert keys <= set(result.json())


def test_drain_and_undrain_report_weights_as_json(
    local_example: Callable[[str], Path], run: Run
) -> None:
    config = str(local_example("active_active"))
    assert run("apply", "--config", config).code == 0
    drained = run("drain", "--config", config, "--region", "region-a", "--json").json()
    assert drained["action"] == "drained"
    assert drained["weights"]["region-a"] == 0
    restored = run("undrain", "--config", config, "--region", "region-a", "--json").json()
    assert restored["weights"]["region-a"] > 0


def test_validate_lists_every_problem_with_the_name_meant(tmp_path: Path, run: Run) -> None:
    spec = tmp_path / "deploy.toml"
    text = (EXAMPLES / "active_passive" / "deploy.local.toml").read_text()
    text = text.replace("lag_s =", "lag_sec =").replace("failure_threshold", "failure_treshold")
    spec.write_text(text)
    result = run("validate", "--config", str(spec))
    assert result.code == 1
    assert "did you mean 'lag_s'?" in result.out
    assert "did you mean 'failure_threshold'?" in result.out
    report = run("validate", "--config", str(spec), "--json").json()
    assert report["valid"] is False
    assert {p["path"] for p in report["problems"]} == {"store", "health_check"}
    schema = run("validate", "--schema")
    assert json.loads(schema.out)["title"] == "multiregion deployment spec"


def test_output_in_a_pipe_is_plain_and_never_folded(tmp_path: Path) -> None:
    spec = tmp_path / ("a-long-folder-name-" * 4) / "deploy.toml"
    spec.parent.mkdir()
    spec.write_text((EXAMPLES / "active_passive" / "deploy.local.toml").read_text())
    done = subprocess.run(
        [sys.executable, "-m", "multiregion", "validate", "--config", str(spec)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "80", "FORCE_COLOR": ""},
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout
    assert len(done.stdout.splitlines()) == 1
    assert len(done.stdout) > 120
