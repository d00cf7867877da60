"""One TLS context for the unverified connections to a loopback emulator, not one per connection.

azure-cosmos sends requests to ``localhost`` and ``127.0.0.1`` unverified (emulators serve
self-signed certificates). urllib3 then builds a fresh TLS context for every connection and
loads the system's certificate store into it, unused: tens of milliseconds of CPU each time. A
server that closes every connection (cosmosdb-server's own CLI does) made every request pay
that, far more than the request itself. This transport gives those unverified connections one
context built once; every request sent with verification (any other host) goes through
requests' usual adapter.
"""

from __future__ import annotations

import ssl
from typing import Any

import requests
from azure.core.pipeline.transport import RequestsTransport
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry


def _no_retries() -> Retry:
    """As azure-core mounts its adapters: its own retry policy does the retrying."""
    return Retry(total=False, redirect=False, raise_on_status=False)


class _UnverifiedOnce(HTTPAdapter):
    """Unverified requests share one TLS context; verified ones go to a plain adapter."""

    def __init__(self) -> None:
        self._verified = HTTPAdapter(max_retries=_no_retries())
        super().__init__(max_retries=_no_retries())

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        super().init_poolmanager(connections, maxsize, block, ssl_context=context, **pool_kwargs)

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: dict[str, str] | None = None,
    ) -> requests.Response:
        if verify is not False:
            return self._verified.send(request, stream, timeout, verify, cert, proxies)
        return super().send(request, stream, timeout, verify, cert, proxies)

    def close(self) -> None:
        self._verified.close()
        super().close()


def transport() -> RequestsTransport:
    """A requests transport for an azure SDK client of a loopback emulator."""
    session = requests.Session()
    adapter = _UnverifiedOnce()
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return RequestsTransport(session=session, session_owner=True)
