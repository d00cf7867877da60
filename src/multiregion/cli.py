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
import importlib
import logging
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from multiregion import redact
from multiregion.errors import InvalidInput, MultiregionError

COMMAND_MODULES: tuple[str, ...] = (
    "multiregion.demo.command",
    "multiregion.commands.validate",
    "multiregion.commands.operate",
    "multiregion.commands.backup",
    "multiregion.commands.runbook",
    "multiregion.commands.drill",
)

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

REPORTED_BY_THE_COMMAND = ("multiregion.failover",)
"""Loggers whose notices repeat what the command prints: shown only with -v."""

OPTION_DESTS = {
    "to_region": "to",
    "region": "region",
    "into_region": "into_region",
    "weight": "weight",
    "incremental_from": "incremental_from",
}
"""Argument names inside the library -> the command-line option (argparse dest) they come from."""
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
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log what the library does on stderr (-vv: everything)",
    )
    loudness.add_argument(
        "-q", "--quiet", action="store_true", help="log only errors (results still print)"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in dict.fromkeys(COMMAND_MODULES):  # each group once, in order
        importlib.import_module(module_name).register(commands)
    return parser


def configure_logging(verbose: int, quiet: bool) -> logging.Handler:
    """One stderr handler on the ``multiregion`` logger, secrets removed; returns it."""
    level = (
        logging.ERROR
        if quiet
        else {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    )
    root = logging.getLogger("multiregion")
    for old in [h for h in root.handlers if getattr(h, "multiregion_cli", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.multiregion_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("multiregion: %(levelname)s: %(message)s"))
    handler.addFilter(redact.RedactingFilter())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False  # no second copy through the root logger or the last resort
    for name in REPORTED_BY_THE_COMMAND:
        logging.getLogger(name).setLevel(logging.ERROR if verbose == 0 else logging.NOTSET)
    return handler


def user_facing(exc: MultiregionError, args: argparse.Namespace) -> str:
    """The error's text, naming the option or spec key the user wrote rather than the
    library's argument (``--to``, not ``to_region``; the command when it has no such option)."""
    if not isinstance(exc, InvalidInput):
        return str(exc)
    field = SPEC_KEYS.get(exc.field, exc.field)
    dest = OPTION_DESTS.get(exc.field)
    if dest is not None:
        given = getattr(args, dest, None) is not None
        field = f"--{dest.replace('_', '-')}" if given else args.command
    return redact.text(f"{field}: {exc.problem}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose, args.quiet)
    try:
        code: int = args.handler(args)
    except MultiregionError as exc:
        print(f"multiregion: error: {user_facing(exc, args)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("multiregion: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code
