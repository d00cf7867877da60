"""One proxied address: accepts on ``listen``, forwards to ``upstream``, applies its toxics.

Everything here runs on the proxy's event loop. Toxics are read again for every chunk, so one
switched at run time acts on open connections as well as new ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import random
import socket
import struct
from typing import TypeVar

from multiregion.errors import InvalidInput, Unavailable
from multiregion.faultproxy.toxics import (
    Bandwidth,
    Blackhole,
    Engage,
    HttpErrors,
    Latency,
    Refuse,
    ResetAfter,
    SlowClose,
    Toxic,
)

logger = logging.getLogger("multiregion.faultproxy")

Address = tuple[str, int]
T = TypeVar("T", Refuse, Blackhole, Latency, Bandwidth, ResetAfter, HttpErrors, SlowClose)
CHUNK = 64 * 1024
MAX_HTTP_BODY = 1024 * 1024
"""Larger request bodies are passed through without an HTTP error decision."""


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (linger 0), as a crashed peer or a middlebox would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Stop(Exception):
    """The connection is over (reset or answered by the proxy)."""


class Connection:
    def __init__(
        self, listener: Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.listener = listener
        self.client = (reader, writer)
        self.upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.silenced = False
        """Some data was swallowed by a blackhole: the connection is broken for good."""
        self.transferred = 0

    def reset(self) -> None:
        for _, writer in filter(None, (self.client, self.upstream)):
            _reset(writer)

    async def run(self) -> None:
        if Blackhole.kind in self.listener.toxics:
            self.silenced = True
            try:
                await self._swallow(self.client[0])
            finally:
                self.client[1].close()
            return
        try:
            self.upstream = await asyncio.open_connection(*self.listener.upstream)
        except OSError as exc:
            logger.info(
                "%s: upstream %s refused: %s", self.listener.name, self.listener.upstream, exc
            )
            _reset(self.client[1])
            return
        try:
            await asyncio.gather(
                self._pump(self.client[0], self.upstream[1], "upstream"),
                self._pump(self.upstream[0], self.client[1], "downstream"),
            )
        finally:
            for _, writer in (self.client, self.upstream):
                writer.close()

    @staticmethod
    async def _swallow(reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while await reader.read(CHUNK):
                pass

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str
    ) -> None:
        try:
            while True:
                data = await self._read(reader, direction)
                if not data:
                    break
                await self._forward(data, writer, direction)
            if self._toxic(Blackhole) is not None or self.silenced:
                self.silenced = True
                return  # never answer, not even with a close
            slow = self._toxic(SlowClose)
            if slow is not None:
                await asyncio.sleep(slow.delay_s)
            if not writer.is_closing() and writer.can_write_eof():
                writer.write_eof()
        except _Stop:
            return
        except (ConnectionError, OSError):
            self.reset()

    def _toxic(self, kind: type[T]) -> T | None:
        toxic = self.listener.toxics.get(kind.kind)
        return toxic if isinstance(toxic, kind) else None

    async def _read(self, reader: asyncio.StreamReader, direction: str) -> bytes:
        errors = self._toxic(HttpErrors)
        if direction == "upstream" and errors is not None and not self.listener.raw_http(self):
            return await self._http_request(reader, errors)
        bandwidth = self._toxic(Bandwidth)
        size = CHUNK
        if bandwidth is not None and bandwidth.applies(direction):
            size = max(1, min(CHUNK, bandwidth.bytes_per_s // 20))
        return await reader.read(size)

    async def _forward(self, data: bytes, writer: asyncio.StreamWriter, direction: str) -> None:
        if self._toxic(Blackhole) is not None:
            self.silenced = True
            return
        latency = self._toxic(Latency)
        if latency is not None and latency.applies(direction):
            jitter = random.uniform(-latency.jitter_s, latency.jitter_s)
            await asyncio.sleep(max(0.0, latency.latency_s + jitter))
        reset = self._toxic(ResetAfter)
        if reset is not None and self.transferred + len(data) >= reset.bytes:
            writer.write(data[: reset.bytes - self.transferred])
            with contextlib.suppress(ConnectionError, OSError):
                await writer.drain()
            self.reset()
            raise _Stop
        self.transferred += len(data)
        writer.write(data)
        await writer.drain()
        bandwidth = self._toxic(Bandwidth)
        if bandwidth is not None and bandwidth.applies(direction):
            await asyncio.sleep(len(data) / bandwidth.bytes_per_s)

    async def _http_request(self, reader: asyncio.StreamReader, errors: HttpErrors) -> bytes:
        """One whole request (head and Content-Length body), or the proxy's own error answer.

        Clients that pipeline requests are not supported; a chunked or large body switches the
        connection to plain forwarding, without decisions, for the rest of its life.
        """
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            return exc.partial
        except asyncio.LimitOverrunError:
            self.listener.raw.add(self)
            return await reader.read(CHUNK)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"transfer-encoding" or (
                name == b"content-length" and not value.strip().isdigit()
            ):
                self.listener.raw.add(self)
                return head
            if name == b"content-length":
                length = int(value.strip())
        if length > MAX_HTTP_BODY:
            self.listener.raw.add(self)
            return head
        body = await reader.readexactly(length) if length else b""
        if self.listener.error_due(errors):
            status = http.HTTPStatus(errors.status)
            text = f"fault proxy: {status.value} {status.phrase}\n".encode()
            writer = self.client[1]
            writer.write(
                f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(text)}\r\nConnection: close\r\n\r\n".encode()
                + text
            )
            with contextlib.suppress(ConnectionError, OSError):
                await writer.drain()
            writer.close()
            if self.upstream is not None:
                self.upstream[1].close()
            raise _Stop
        return head + body


class Listener:
    def __init__(self, name: str, listen: Address, upstream: Address) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.toxics: dict[str, Toxic] = {}
        self.connections: set[Connection] = set()
        self.raw: set[Connection] = set()
        """Connections whose HTTP requests can no longer be told apart."""
        self._server: asyncio.Server | None = None
        self._error_debt = 0.0

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._accept, self.listen[0], self.listen[1], reuse_address=True
            )
        except OSError as exc:
            host, port = self.listen
            raise Unavailable(f"{self.name}: cannot listen on {host}:{port}: {exc}") from exc
        self.listen = self._server.sockets[0].getsockname()[:2]

    async def stop(self) -> None:
        self._close_server()
        for connection in list(self.connections):
            connection.reset()

    def _close_server(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def check(self, toxic: Toxic) -> None:
        if isinstance(toxic, Engage):
            raise InvalidInput("toxic.kind", f"{self.name} is a listener: engage is for levers")

    def describe(self) -> dict[str, str]:
        return {"listen": "{}:{}".format(*self.listen), "upstream": "{}:{}".format(*self.upstream)}

    async def set(self, toxic: Toxic) -> None:
        self.toxics[toxic.kind] = toxic
        if isinstance(toxic, HttpErrors):
            self._error_debt = 0.0
        if isinstance(toxic, Refuse):
            self._close_server()
            for connection in list(self.connections):
                connection.reset()

    async def remove(self, kind: str) -> None:
        toxic = self.toxics.pop(kind, None)
        if isinstance(toxic, Refuse) and self._server is None:
            await self.start()
        if isinstance(toxic, Blackhole):
            for connection in list(self.connections):
                if connection.silenced:
                    connection.reset()

    def raw_http(self, connection: Connection) -> bool:
        return connection in self.raw

    def error_due(self, errors: HttpErrors) -> bool:
        """Exactly a share ``rate`` of requests, spread evenly (not at random): a drill's
        error rate is then what was asked, run after run."""
        self._error_debt += errors.rate
        if self._error_debt >= 1.0 - 1e-9:
            self._error_debt -= 1.0
            return True
        return False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection(self, reader, writer)
        self.connections.add(connection)
        try:
            await connection.run()
        except Exception:  # a connection's failure must never take the listener down
            logger.exception("%s: connection failed", self.name)
            connection.reset()
        finally:
            self.connections.discard(connection)
            self.raw.discard(connection)
