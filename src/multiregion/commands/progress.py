"""Progress of long commands, always on stderr: a rich bar or spinner on a terminal, plain
lines otherwise (a CI log shows that a wait started and how long it took)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

PLAIN_EVERY = 10_000
"""Items between two plain progress lines."""


_quiet = False


@contextlib.contextmanager
def quiet(on: bool) -> Iterator[None]:
    """No plain wait lines while this is on (``multiregion -q``); spinners are not lines."""
    global _quiet
    before, _quiet = _quiet, on
    try:
        yield
    finally:
        _quiet = before


SHOW_AFTER_S = 1.0
"""A plain wait line appears only for a wait longer than this (quick commands stay quiet)."""


@contextlib.contextmanager
def waiting(text: str, console: Console | None = None) -> Iterator[None]:
    """Shows that a wait of unknown length is going on: a spinner on a terminal; elsewhere a
    line once it has lasted a second, and one with its duration when it ends."""
    shown = console or Console(stderr=True, highlight=False, soft_wrap=True)
    if shown.is_terminal or _quiet:
        with shown.status(text) if shown.is_terminal else contextlib.nullcontext():
            yield
        return
    started = time.monotonic()
    announce = threading.Timer(SHOW_AFTER_S, lambda: shown.print(f"{text} ...", markup=False))
    announce.daemon = True
    announce.start()
    try:
        yield
    finally:
        announce.cancel()
        if time.monotonic() - started >= SHOW_AFTER_S:
            took = time.monotonic() - started
            shown.print(f"{text}: done in {took:.1f}s", markup=False)


@contextlib.contextmanager
def meter(
    console: Console, label: str, total: int | None = None
) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``; ``total`` None shows a count without a bar's end."""
    if console.is_terminal:
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn() if total is not None else TextColumn("{task.completed} items"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(label, total=total)
            yield lambda n: progress.advance(task, n)
        return
    done = 0
    next_line = PLAIN_EVERY

    def advance(n: int) -> None:
        nonlocal done, next_line
        done += n
        if done >= next_line:
            of = f"/{total}" if total is not None else ""
            console.print(f"{label}: {done}{of} items", highlight=False)
            next_line = (done // PLAIN_EVERY + 1) * PLAIN_EVERY

    yield advance
