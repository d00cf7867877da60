"""File plumbing shared by the BackupBucket adapters' ``upload_file`` and ``download_file``."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO

from multiregion import integrity
from multiregion.errors import InvalidInput


def readable_file(path: str | Path) -> Path:
    """``path`` as a Path, or ``InvalidInput`` (field ``path``) if it is not a regular file."""
    source = Path(path)
    if not source.is_file():
        raise InvalidInput("path", f"{str(source)!r} is not a readable file")
    return source


def digest_of(file: IO[bytes]) -> integrity.Digest:
    """SHA-256 and size of what is left to read in ``file``, read to its end."""
    digest = integrity.Digest()
    for _ in digest.passing(integrity.chunks(file)):
        pass
    return digest


@contextlib.contextmanager
def replacing(
    target: Path,
    mode: str = "wb",
    guard: Callable[[], AbstractContextManager[object]] = nullcontext,
) -> Iterator[IO[bytes]]:
    """A temporary file beside ``target``, open in ``mode``, for the body to fill and verify.

    If the body returns, the file is closed and renamed onto ``target``; if anything raises,
    it is removed and ``target`` is left as it was. ``guard`` wraps the creation and the
    rename (an adapter's own mapping of ``OSError``).
    """
    with guard():
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, mode) as out:
            yield out
        with guard():
            os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
