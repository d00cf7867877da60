"""Progress of long commands: a rich bar on a terminal, a plain line every so often otherwise."""

from __future__ import annotations

import contextlib
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
