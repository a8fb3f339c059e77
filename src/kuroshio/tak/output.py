"""One Cursor-on-Target output: its socket (a listener for TAK clients, or a connection pushed
to a TAK Server), the clients on it and what each is sent.

Every client has a bounded queue: one that falls :data:`CLIENT_QUEUE` events behind is let go
(counted), never waited for, so a slow TAK client cannot hold the others back. A new client is
first sent the picture of the last ``history_s`` seconds (:meth:`CotOutputRunner.welcome`),
then every change. A lost TAK Server is connected to again after 1 s, 2 s, 4 s … up to 60 s,
each moved by up to a quarter either way. What goes out is decided before it gets here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final

import msgspec

from kuroshio.errors import FeedSocketError
from kuroshio.export.config import CotOutput
from kuroshio.export.cot import CotEvent, to_proto, to_xml
from kuroshio.feeds.receivers import client_tls, server_tls

CLIENT_QUEUE: Final = 20_000
"""Events a client may fall behind before it is let go."""
READ_BYTES: Final = 65_536
RECONNECT_FIRST_S: Final = 1.0
RECONNECT_MAX_S: Final = 60.0
RECONNECT_FACTOR: Final = 2.0
RECONNECT_JITTER: Final = 0.25
logger = logging.getLogger("kuroshio.tak")

Welcome = Callable[[], Awaitable[list[CotEvent]]]
"""The events a newly connected client is sent first."""


class OutputStatus(msgspec.Struct, kw_only=True):
    """What an output has done: where it is, its clients and counters."""

    name: str
    endpoint: str
    """As bound (a port 0 in the configuration shows the port taken)."""
    protocol: str
    state: str = "starting"
    clients: int = 0
    connections: int = 0
    sent: int = 0
    """Events written to clients (one event to three clients counts three)."""
    let_go: int = 0
    """Clients dropped for falling too far behind."""
    refused: dict[str, int] = msgspec.field(default_factory=dict)
    """Items withheld from this output, by reason."""
    last_error: str | None = None


class _Client:
    def __init__(self, writer: asyncio.StreamWriter, peer: str) -> None:
        self.writer = writer
        self.peer = peer
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(CLIENT_QUEUE)
        self.ready = False
        self.held: list[bytes] = []

    def offer(self, data: bytes) -> bool:
        if not self.ready:
            self.held.append(data)
            return len(self.held) <= CLIENT_QUEUE
        try:
            self.queue.put_nowait(data)
        except asyncio.QueueFull:
            return False
        return True


class CotOutputRunner:
    """The socket side of one ``[cot.NAME]`` output."""

    def __init__(self, name: str, config: CotOutput, base: Path, welcome: Welcome) -> None:
        self.name = name
        self.config = config
        self.base = base
        self.welcome = welcome
        self.clients: set[_Client] = set()
        self.refused: Counter[str] = Counter()
        self.status = OutputStatus(
            name=name, endpoint=str(config.endpoint), protocol=config.protocol
        )
        self.bound: tuple[str, int] | None = None
        self.up = asyncio.Event()

    def encode(self, event: CotEvent) -> bytes:
        return to_proto(event) if self.config.protocol == "proto" else to_xml(event)

    def deliver(self, events: Sequence[CotEvent]) -> None:
        """Queue ``events`` for every client (encoded once)."""
        if not self.clients or not events:
            return
        data = b"".join(self.encode(event) for event in events)
        for client in list(self.clients):
            if not client.offer(data):
                self._let_go(client)
        self.status.sent += len(events) * len(self.clients)

    def _let_go(self, client: _Client) -> None:
        self.status.let_go += 1
        logger.warning("cot %s: %s fell behind and is let go", self.name, client.peer)
        self.clients.discard(client)
        client.writer.close()

    def snapshot(self) -> OutputStatus:
        self.status.clients = len(self.clients)
        self.status.refused = dict(self.refused)
        return self.status

    async def run(self) -> None:
        if self.config.listen is not None:
            await self._listen()
        else:
            await self._push()

    # --- one client, listening or pushed to -------------------------------------------------

    async def _attend(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        if len(self.clients) >= self.config.max_clients:
            logger.warning(
                "cot %s: %s refused, %d clients already", self.name, peer, len(self.clients)
            )
            writer.close()
            return
        client = _Client(writer, peer)
        self.clients.add(client)
        self.status.connections += 1
        drain = asyncio.create_task(_discard(reader))
        try:
            first = await self.welcome()
            writer.write(b"".join(self.encode(event) for event in first))
            self.status.sent += len(first)
            for data in client.held:
                client.queue.put_nowait(data)
            client.held.clear()
            client.ready = True
            while True:
                waiting = asyncio.create_task(client.queue.get())
                done, _ = await asyncio.wait({waiting, drain}, return_when=asyncio.FIRST_COMPLETED)
                if waiting not in done:
                    waiting.cancel()
                    return
                writer.write(waiting.result())
                await writer.drain()
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as error:
            self.status.last_error = f"{peer}: {error}"
        finally:
            drain.cancel()
            self.clients.discard(client)
            writer.close()

    async def _listen(self) -> None:
        endpoint = self.config.endpoint
        files = None if self.config.tls is None else self.config.tls.resolved(self.base)
        context = server_tls(files) if endpoint.scheme == "tls" and files is not None else None
        try:
            server = await asyncio.start_server(
                self._attend, endpoint.host, endpoint.port, ssl=context, reuse_address=True
            )
        except OSError as error:
            raise FeedSocketError(
                f"cot.{self.name}: {endpoint}: {error.strerror or error}"
            ) from None
        host, port = server.sockets[0].getsockname()[:2]
        self.bound = (host, port)
        self.status.endpoint = f"{endpoint.scheme}://{host}:{port}"
        self.status.state = "up"
        self.up.set()
        try:
            async with server:
                await server.serve_forever()
        finally:
            for client in list(self.clients):
                client.writer.close()

    async def _push(self) -> None:
        endpoint = self.config.endpoint
        files = None if self.config.tls is None else self.config.tls.resolved(self.base)
        delay = RECONNECT_FIRST_S
        self.up.set()
        while True:
            try:
                context = client_tls(files) if endpoint.scheme == "tls" else None
                reader, writer = await asyncio.open_connection(
                    endpoint.host, endpoint.port, ssl=context
                )
            except (OSError, ssl.SSLError, FeedSocketError) as error:
                self.status.state = "down"
                self.status.last_error = f"{endpoint}: {error}"
            else:
                self.status.state = "up"
                delay = RECONNECT_FIRST_S
                await self._attend(reader, writer)
                self.status.state = "down"
                self.status.last_error = self.status.last_error or f"{endpoint} closed"
            wait = delay * random.uniform(1 - RECONNECT_JITTER, 1 + RECONNECT_JITTER)
            await asyncio.sleep(wait)
            delay = min(delay * RECONNECT_FACTOR, RECONNECT_MAX_S)


async def _discard(reader: asyncio.StreamReader) -> None:
    """Read and drop what a TAK client sends (its own position, pings) until it goes."""
    with contextlib.suppress(OSError, ssl.SSLError):
        while await reader.read(READ_BYTES):
            pass


def _peer(writer: asyncio.StreamWriter) -> str:
    name = writer.get_extra_info("peername")
    return f"{name[0]}:{name[1]}" if name else "?"
