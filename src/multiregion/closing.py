"""``with`` for everything the library hands out that holds connections, files or threads."""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self


class Closing(abc.ABC):
    """Closed when its ``with`` block ends, however it ends."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the object holds; closing twice does nothing more."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
