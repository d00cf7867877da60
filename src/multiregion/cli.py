"""The ``multiregion`` command.

Each command group lives in its own module with a ``register(commands)`` function that adds
its subcommands to the argparse subparsers and sets ``handler`` (``args -> exit code``) on each;
list the module in ``COMMAND_MODULES`` to add a group. The conventions every command follows
(``--json``, consoles, result on stdout and the rest on stderr) are in ``commands.output``.

Logging is configured here, once: one stderr handler, secrets removed (``redact``); ``-v``
shows what the library does (``-vv`` everything), ``-q`` only errors. The controllers' own
notices of a move are left to ``-v``, since the command reports the move itself.
Library errors become one line on stderr and exit code 2, naming options and spec keys as
the user wrote them; argument errors exit 2 too (argparse's convention).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version

from multiregion import redact
from multiregion.commands import progress
from multiregion.errors import InvalidInput, MultiregionError

COMMAND_MODULES: tuple[str, ...] = (
    "multiregion.demo.command",
    "multiregion.commands.validate",
    "multiregion.commands.operate",
    "multiregion.commands.reconcile",
    "multiregion.commands.backup",
    "multiregion.commands.runbook",
    "multiregion.commands.drill",
    "multiregion.commands.cost",
)

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE, what a shell reports for a command whose reader went away."""

REPORTED_BY_THE_COMMAND = ("multiregion.failover",)
"""Loggers whose notices repeat what the command prints: shown only with -v."""

LIBRARY_NAMES = {"to_region": "to"}
"""Argument names inside the library that differ from the option's (``--to``)."""
SPEC_KEYS = {"policy.weights": "route.weights", "policy": "route.policy"}
"""Model fields -> the spec's keys."""


def _version() -> str:
    try:
        return version("multiregion")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="multiregion",
        description="Multi-region failover on AWS, Azure, GCP and a local embedded provider.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_loudness(parser, verbose=0, quiet=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in dict.fromkeys(COMMAND_MODULES):  # each group once, in order
        importlib.import_module(module_name).register(commands)
    for command in _commands(parser):
        # -v/-q after the command too; unset there, they leave what came before it alone
        _add_loudness(command, verbose=argparse.SUPPRESS, quiet=argparse.SUPPRESS)
        command.set_defaults(option_names=_option_names(command))
    return parser


def _add_loudness(parser: argparse.ArgumentParser, *, verbose: object, quiet: object) -> None:
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=verbose,
        help="log what the library does on stderr (-vv: everything)",
    )
    loudness.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=quiet,
        help="log only errors (results still print)",
    )


def _commands(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser below ``parser`` that runs a command (subcommands included)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in dict.fromkeys(action.choices.values()):
                yield command
                yield from _commands(command)


def _option_names(command: argparse.ArgumentParser) -> dict[str, str]:
    """Each argument's dest -> how the user wrote it (``--into-region``, ``BACKUP_ID``)."""
    names = {}
    for action in command._actions:
        if action.option_strings:
            names[action.dest] = max(action.option_strings, key=len)
        elif isinstance(action.metavar, str):
            names[action.dest] = action.metavar
    return names


@contextlib.contextmanager
def configured_logging(verbose: int, quiet: bool) -> Iterator[logging.Handler]:
    """One stderr handler on the ``multiregion`` logger, secrets removed, for the command's
    duration (then the logging of the process is as it was: commands also run in-process)."""
    level = (
        logging.ERROR
        if quiet
        else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("multiregion: %(levelname)s: %(message)s"))
    handler.addFilter(redact.RedactingFilter())
    loggers = [logging.getLogger("multiregion"), *map(logging.getLogger, REPORTED_BY_THE_COMMAND)]
    before = [logger.level for logger in loggers]
    loggers[0].addHandler(handler)  # found first: Python's last-resort handler stays unused
    loggers[0].setLevel(level)
    for logger in loggers[1:]:
        logger.setLevel(max(level, logging.ERROR) if verbose == 0 else logging.NOTSET)
    try:
        yield handler
    finally:
        loggers[0].removeHandler(handler)
        for logger, old in zip(loggers, before, strict=True):
            logger.setLevel(old)


def user_facing(exc: MultiregionError, args: argparse.Namespace) -> str:
    """The error's text, naming the option or spec key the user wrote rather than the
    library's argument (``--to``, not ``to_region``; the command when it has no such option)."""
    if not isinstance(exc, InvalidInput):
        return str(exc)
    field = SPEC_KEYS.get(exc.field, exc.field)
    dest = LIBRARY_NAMES.get(exc.field, exc.field)
    options: dict[str, str] = getattr(args, "option_names", {})
    if dest in options:
        field = options[dest] if getattr(args, dest, None) is not None else args.command
    elif dest in LIBRARY_NAMES.values():
        field = args.command
    return redact.text(f"{field}: {exc.problem}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with configured_logging(args.verbose, args.quiet), progress.quiet(args.quiet):
            code: int = args.handler(args)
    except MultiregionError as exc:
        print(f"multiregion: error: {user_facing(exc, args)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("multiregion: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader left (``| head``): stop quietly, as a shell tool does on SIGPIPE; stdout
        # goes to /dev/null so that Python's flush at exit cannot fail on the pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code
