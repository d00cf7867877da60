"""A lever: a fault that is not TCP, switched by the proxy's own process and held under the
same leases as toxics, so that it too reverts by itself when the drill holding it dies.

A local store's replica failed or partitioned on purpose is a marker in the store's folder:
nothing would undo it after a ``kill -9`` of the drill that set it. ``multiregion faultproxy``
on a local spec puts it behind a lever (``<region>.store``, ``<region>.partition``), which the
drill engages (``Engage()``) under a lease like any toxic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from multiregion.errors import InvalidInput
from multiregion.faultproxy.toxics import Engage, Toxic


class Lever:
    def __init__(
        self, name: str, engage: Callable[[], None], release: Callable[[], None], what: str
    ) -> None:
        self.name, self.what = name, what
        self._engage, self._release = engage, release
        self.toxics: dict[str, Toxic] = {}

    def check(self, toxic: Toxic) -> None:
        if not isinstance(toxic, Engage):
            raise InvalidInput("toxic.kind", f"{self.name} is a lever: it takes engage only")

    def describe(self) -> dict[str, str]:
        return {"lever": self.what}

    async def start(self) -> None:
        """Nothing listens."""

    async def stop(self) -> None:
        await self.remove(Engage.kind)

    async def set(self, toxic: Toxic) -> None:
        self.check(toxic)
        if Engage.kind not in self.toxics:
            await asyncio.to_thread(self._engage)  # file work: off the proxy's loop
        self.toxics[Engage.kind] = toxic

    async def remove(self, kind: str) -> None:
        if self.toxics.pop(kind, None) is not None:
            await asyncio.to_thread(self._release)
