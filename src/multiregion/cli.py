"""The ``multiregion`` command.

Each command group lives in its own module with a ``register(commands)`` function that adds
its subcommands to the argparse subparsers and sets ``handler`` (``args -> exit code``) on each;
list the module in ``COMMAND_MODULES`` to add a group. Library errors become one line on
stderr and exit code 2; argument errors exit 2 too (argparse's convention).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from multiregion.errors import MultiregionError

COMMAND_MODULES: tuple[str, ...] = (
    "multiregion.demo.command",
    "multiregion.commands.operate",
    "multiregion.commands.backup",
    "multiregion.commands.runbook",
    "multiregion.commands.drill",
)

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


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
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in dict.fromkeys(COMMAND_MODULES):  # each group once, in order
        importlib.import_module(module_name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except MultiregionError as exc:
        print(f"multiregion: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("multiregion: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code
