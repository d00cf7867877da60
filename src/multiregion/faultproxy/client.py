"""The control API from another process: ``ControlClient``, and ``Held`` faults that renew
their lease in a background thread until released.

    client = ControlClient("http://127.0.0.1:8474")
    with client.hold("region-a", Blackhole(), lease_s=3):
        ...  # region-a's traffic is swallowed; if this process dies, it passes again in 3 s
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
from types import TracebackType
from typing import Any

from multiregion import validate
from multiregion.errors import AlreadyExists, InvalidInput, MultiregionError, NotFound, Unavailable
from multiregion.faultproxy.control import loopback_host
from multiregion.faultproxy.toxics import Toxic, to_dict

DEFAULT_LEASE_S = 5.0
REQUEST_TIMEOUT_S = 5.0
_ERRORS: dict[int, type[MultiregionError]] = {404: NotFound, 409: AlreadyExists}


class ControlClient:
    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http":
            raise InvalidInput("url", f"{url!r} is not an http:// URL")
        loopback_host("url", parts.hostname or "")
        self.url = url.rstrip("/")

    def listeners(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._send("GET", "/listeners")
        return found

    def install(self, listener: str, toxic: Toxic, lease_s: float = DEFAULT_LEASE_S) -> str:
        """Install ``toxic`` on ``listener`` under a lease; returns the lease's id."""
        answer = self._send(
            "POST", f"/listeners/{listener}/toxics", {"toxic": to_dict(toxic), "lease_s": lease_s}
        )
        lease_id: str = answer["lease"]["id"]
        return lease_id

    def renew(self, lease_id: str, lease_s: float = DEFAULT_LEASE_S) -> None:
        """NotFound once the lease ran out: the proxy already removed its toxic."""
        self._send("POST", f"/leases/{lease_id}", {"lease_s": lease_s})

    def release(self, lease_id: str) -> None:
        self._send("DELETE", f"/leases/{lease_id}")

    def remove(self, listener: str, kind: str) -> None:
        self._send("DELETE", f"/listeners/{listener}/toxics/{kind}")

    def reset(self) -> None:
        self._send("POST", "/reset")

    def hold(self, listener: str, toxic: Toxic, lease_s: float = DEFAULT_LEASE_S) -> Held:
        """``toxic`` installed now and kept by renewing its lease until ``release()``."""
        return Held(self, listener, toxic, lease_s)

    def _send(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        # The URL was checked to be http(s) on loopback in __init__.
        request = urllib.request.Request(self.url + path, data, headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("message", exc.reason)
            except ValueError:
                message = exc.reason
            if exc.code == 400:
                field, _, problem = str(message).partition(": ")
                raise InvalidInput(field, problem) from exc
            raise _ERRORS.get(exc.code, Unavailable)(message) from exc
        except OSError as exc:
            raise Unavailable(f"fault proxy control at {self.url} did not answer: {exc}") from exc


class Held:
    """A toxic whose lease is renewed every third of the lease until released."""

    def __init__(self, client: ControlClient, listener: str, toxic: Toxic, lease_s: float) -> None:
        self.lease_s = validate.seconds("lease_s", lease_s, 0, 3600)
        self.client, self.listener, self.toxic = client, listener, toxic
        self.lease_id = client.install(listener, toxic, self.lease_s)
        self.lost: MultiregionError | None = None
        """Why renewing stopped early (the proxy gone, the lease run out), if it did."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="faultproxy-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                self.client.renew(self.lease_id, self.lease_s)
            except MultiregionError as exc:
                self.lost = exc
                return

    def release(self) -> None:
        """Stop renewing and remove the toxic (already gone if its lease ran out)."""
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(NotFound):
            self.client.release(self.lease_id)

    def __enter__(self) -> Held:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
