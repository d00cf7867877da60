"""Launchers for the Azure emulators: Azurite (Blob) and @vercel/cosmosdb-server (Cosmos DB).

Both are npm packages pinned in ``emulators/package.json`` (``make emulators`` installs them).
They are found under ``emulators/node_modules`` of the source tree, or under the directory
named by ``MULTIREGION_EMULATORS_DIR`` (the directory that holds ``node_modules``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
from pathlib import Path

from multiregion.errors import Unavailable
from multiregion.testing.emulators.process import LOOPBACK, EmulatorProcess, free_port
from multiregion.testing.fakes.serving import Served

EMULATORS_ENV = "MULTIREGION_EMULATORS_DIR"

AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
"""Azurite's well-known development key, published by Microsoft; it guards nothing."""

COSMOS_KEY = "bXVsdGlyZWdpb24tZW11bGF0b3Ita2V5"
"""cosmosdb-server accepts any key; the SDK wants it base64-encoded."""


def emulators_dir() -> Path:
    """The directory holding ``node_modules`` with the Azure emulators."""
    configured = os.environ.get(EMULATORS_ENV)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[4] / "emulators"


def _installed(relative: str) -> Path:
    path = emulators_dir() / "node_modules" / relative
    if not path.exists():
        raise Unavailable(
            f"{path} is missing: run `make emulators` or set {EMULATORS_ENV} to the directory "
            "holding node_modules"
        )
    return path


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise Unavailable("node (Node.js 20) is needed to run the Azure emulators")
    return node


class Azurite(EmulatorProcess):
    """Azurite's Blob service in memory on a free loopback port."""

    def __init__(self, *, port: int | None = None) -> None:
        super().__init__(
            [
                str(_installed(".bin/azurite-blob")),
                "--blobHost",
                LOOPBACK,
                "--blobPort",
                "{port}",
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--silent",
            ],
            port=port,
        )

    @property
    def account_url(self) -> str:
        return f"{self.url}/{AZURITE_ACCOUNT}"


_KEEP_ALIVE_SERVER = (
    "const [lib, host, port] = process.argv.slice(1);"
    "require(lib).createHttpsServer({keepAlive: true}).listen(Number(port), host);"
)
"""cosmosdb-server's own CLI answers every request with ``Connection: close``, so that each
request paid a TLS handshake on both sides; the service keeps connections open, and so does
the server with ``keepAlive``, an option its library takes and its CLI does not pass."""


class CosmosServer(EmulatorProcess):
    """cosmosdb-server (HTTPS, self-signed) on a free loopback port; one per emulated region."""

    def __init__(self, *, port: int | None = None) -> None:
        lib = _installed("@vercel/cosmosdb-server/lib/index.js")
        super().__init__(
            [_node(), "-e", _KEEP_ALIVE_SERVER, str(lib), LOOPBACK, "{port}"], port=port
        )

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}/"


class RegionProxy(Served):
    """A TCP forwarder on its own loopback port to one emulator: a region's endpoint.

    ``stop`` refuses connections and cuts open ones (a regional outage); ``start`` serves again
    on the same port. Several proxies in front of one cosmosdb-server give one logical account
    with one endpoint per region, as Cosmos DB has, where a single region can fail.
    """

    def __init__(self, upstream_port: int, *, port: int | None = None) -> None:
        self.upstream_port = upstream_port
        self.port = port if port is not None else free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}/"

    def start(self) -> RegionProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((LOOPBACK, self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._open = self._open, set()
        for sock in [*sockets, *([listener] if listener else [])]:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection((LOOPBACK, self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with self._lock:
                    self._open.discard(sock)
            source.close()
