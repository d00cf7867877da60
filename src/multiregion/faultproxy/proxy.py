"""``FaultProxy``: listeners on an event loop in a background thread, driven from plain Python.

    with FaultProxy() as proxy:
        host, port = proxy.add_listener("app", ("127.0.0.1", 0), ("127.0.0.1", 8080))
        with proxy.toxic("app", Latency(0.2)):
            ...  # requests to host:port take 0.2 s longer
        control = proxy.serve_control()  # the HTTP control API, for other processes

Every method is thread-safe: it runs its work on the proxy's loop and waits for it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, Self, TypeVar

from multiregion import validate
from multiregion.closing import Closing
from multiregion.errors import AlreadyExists, InvalidInput, NotFound
from multiregion.faultproxy.lease import Lease, Leases
from multiregion.faultproxy.lever import Lever
from multiregion.faultproxy.listener import Address, Listener
from multiregion.faultproxy.toxics import Toxic, to_dict

R = TypeVar("R")
REAP_EVERY_S = 0.02
CALL_TIMEOUT_S = 10.0


class FaultProxy(Closing):
    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="multiregion-faultproxy", daemon=True
        )
        self._listeners: dict[str, Listener | Lever] = {}
        self._leases = Leases()
        self._reaper: asyncio.Task[None] | None = None
        self._control: Any = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> FaultProxy:
        if not self._thread.is_alive():
            self._thread.start()
            self._reaper = self._call(self._start_reaper())
        return self

    def close(self) -> None:
        """Stop the control API and every listener (open connections are reset)."""
        if self._control is not None:
            self._control.close()
            self._control = None
        if not self._thread.is_alive():
            return
        self._call(self._stop_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def serve_control(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start the HTTP control API on a loopback address; returns its base URL."""
        from multiregion.faultproxy.control import ControlServer

        if self._control is None:
            self._control = ControlServer(self, host, port)
        url: str = self._control.url
        return url

    # ------------------------------------------------------------------ listeners

    def add_listener(self, name: str, listen: Address, upstream: Address) -> Address:
        """Listen on ``listen`` (port 0: any free port) for ``upstream``; the bound address."""
        name = validate.endpoint_name("name", name)
        listener = Listener(name, _address("listen", listen), _address("upstream", upstream))
        self._call(self._add(listener))
        return listener.listen

    def add_lever(
        self, name: str, engage: Callable[[], None], release: Callable[[], None], what: str
    ) -> None:
        """A fault that is not TCP (``engage``/``release`` run in this process), switched on by
        the toxic ``Engage()`` on ``name``, under a lease like any toxic: ``lever.py``."""
        name = validate.endpoint_name("name", name)
        self._call(self._add(Lever(name, engage, release, what)))

    def remove_listener(self, name: str) -> None:
        listener = self._listener(name)
        self._call(self._drop(listener))

    def listeners(self) -> list[dict[str, Any]]:
        """Each listener, its addresses and its toxics with the time left on their leases."""
        return self._call(self._describe())

    # ------------------------------------------------------------------ toxics

    def set_toxic(
        self, listener: str, toxic: Toxic, *, lease_s: float | None = None
    ) -> Lease | None:
        """Install ``toxic`` (replacing one of its kind). With ``lease_s`` it is removed by
        itself unless the returned lease is renewed in time."""
        return self._call(self._set(self._listener(listener), toxic, lease_s))

    def remove_toxic(self, listener: str, kind: str) -> None:
        self._call(self._remove(self._listener(listener), kind))

    def clear(self, listener: str | None = None) -> None:
        """Every toxic removed (from one listener, or from all): plain pass-through."""
        names = [listener] if listener is not None else list(self._listeners)
        for name in names:
            for kind in list(self._listener(name).toxics):
                self.remove_toxic(name, kind)

    @contextmanager
    def toxic(self, listener: str, toxic: Toxic) -> Iterator[None]:
        """``toxic`` installed for the ``with`` block."""
        self.set_toxic(listener, toxic)
        try:
            yield
        finally:
            self.remove_toxic(listener, toxic.kind)

    def renew(self, lease_id: str, lease_s: float) -> Lease:
        """Extend a lease; NotFound once it ran out (its toxic is then gone)."""
        return self._call(self._renew(lease_id, lease_s))

    def release(self, lease_id: str) -> None:
        """End a lease now, removing its toxic."""
        self._call(self._release(lease_id))

    # ------------------------------------------------------------------ on the loop

    def _call(self, coro: Coroutine[Any, Any, R]) -> R:
        if not self._thread.is_alive():
            coro.close()
            raise InvalidInput("proxy", "the proxy is not started (use start() or `with`)")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CALL_TIMEOUT_S)

    def _listener(self, name: str) -> Listener | Lever:
        try:
            return self._listeners[name]
        except KeyError:
            raise NotFound(f"no listener {name!r}") from None

    async def _start_reaper(self) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        """Revert what expired leases held: the dead-man switch."""
        while True:
            for lease in self._leases.expired():
                listener = self._listeners.get(lease.listener)
                if listener is not None:
                    await listener.remove(lease.kind)
            await asyncio.sleep(REAP_EVERY_S)

    async def _set(
        self, listener: Listener | Lever, toxic: Toxic, lease_s: float | None
    ) -> Lease | None:
        listener.check(toxic)
        lease = None
        if lease_s is None:
            self._leases.forget(listener.name, toxic.kind)
        else:
            lease = self._leases.grant(listener.name, toxic.kind, lease_s)
        await listener.set(toxic)
        return lease

    async def _remove(self, listener: Listener | Lever, kind: str) -> None:
        self._leases.forget(listener.name, kind)
        await listener.remove(kind)

    async def _renew(self, lease_id: str, lease_s: float) -> Lease:
        return self._leases.renew(lease_id, lease_s)

    async def _release(self, lease_id: str) -> None:
        lease = self._leases.release(lease_id)
        listener = self._listeners.get(lease.listener)
        if listener is not None:
            await listener.remove(lease.kind)

    async def _describe(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        found = []
        for listener in self._listeners.values():
            leases = self._leases.on(listener.name)
            toxics = []
            for kind, toxic in listener.toxics.items():
                entry = to_dict(toxic)
                lease = leases.get(kind)
                if lease is not None:
                    entry["lease"] = {
                        "id": lease.id,
                        "expires_in_s": round(lease.expires_at - now, 3),
                    }
                toxics.append(entry)
            found.append({"name": listener.name, **listener.describe(), "toxics": toxics})
        return found

    async def _add(self, listener: Listener | Lever) -> None:
        if listener.name in self._listeners:
            raise AlreadyExists(f"listener {listener.name!r} exists")
        await listener.start()
        self._listeners[listener.name] = listener

    async def _drop(self, listener: Listener | Lever) -> None:
        self._leases.forget(listener.name)
        self._listeners.pop(listener.name, None)
        await listener.stop()

    async def _stop_all(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for listener in self._listeners.values():
            await listener.stop()
        # The connections just reset finish on the loop's next turns: let them, before it stops.
        others = {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}
        if others:
            await asyncio.wait(others, timeout=1.0)


def _address(field: str, value: object) -> Address:
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not isinstance(value[0], str)
        or not value[0]
    ):
        raise InvalidInput(field, "must be a (host, port) pair")
    return value[0], validate.int_range(f"{field}.port", value[1], 0, 65535)
