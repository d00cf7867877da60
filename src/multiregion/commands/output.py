"""What every command shares: ``--json``, its consoles, and where its results go.

A result goes to stdout, either as JSON (``--json``: one object, or a list from a command
that lists) or as text for a person; progress and log lines go to stderr. On a terminal text
has colours and wraps to the terminal; in a pipe or a CI log it is plain and never folded
(rich would wrap it at 80 columns).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console

PLAIN_WIDTH = 1000
"""Columns of a console that is not a terminal: wide enough that nothing is folded."""


def add_json(
    parser: argparse.ArgumentParser, what: str = "the result", *, as_list: bool = False
) -> None:
    shape = "a JSON list" if as_list else "one JSON object"
    parser.add_argument("--json", action="store_true", help=f"print {what} as {shape} on stdout")


def console(*, stderr: bool = False) -> Console:
    """A console for a person: colours on a terminal, plain unfolded text elsewhere."""
    shown = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not shown.is_terminal:
        shown = Console(stderr=stderr, highlight=False, soft_wrap=True, width=PLAIN_WIDTH)
    return shown


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """The command's result: ``data`` as JSON with ``--json``, else ``text``."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str))
    else:
        console().print(text, markup=False)
