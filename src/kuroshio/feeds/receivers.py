"""The sockets of a feed: UDP (joining a multicast group where the address is one), TCP and TLS
listeners (TLS with client certificates, as a TAK Server takes them), and TCP/TLS connections
out to a source such as dump1090.

:func:`receive` runs the one a feed's configuration names until cancelled and hands every
datagram or chunk of stream to the feed's intake; it raises when the socket cannot be opened or a
connection out is lost, for the supervisor to try again. A single client's failure does not stop
a listener. This module decodes nothing.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Protocol

from kuroshio.errors import FeedSocketError
from kuroshio.feeds.base import FeedState
from kuroshio.feeds.config import Endpoint, FeedConfig, TlsFiles
from kuroshio.model import Observation


class _Counters(Protocol):
    connections: int

    def enter(self, state: FeedState) -> None: ...

    def failed(self, error: BaseException) -> None: ...


class _Stream(Protocol):
    def push(self, data: bytes, received_at: float) -> list[Observation]: ...


class Feed(Protocol):
    """What a receiver needs of a feed (:class:`kuroshio.feeds.feed.Feed` is one): where it is
    configured, its counters and clock, and the intake that takes what arrives."""

    config: FeedConfig
    base: Path
    bound: tuple[str, int] | None

    @property
    def stats(self) -> _Counters: ...

    def clock(self) -> float: ...

    def source(self, peer: str) -> _Stream: ...

    def datagram(self, data: bytes, peer: str, received_at: float) -> list[Observation]: ...

    def offer(self, observations: Sequence[Observation]) -> None: ...


READ_BYTES: Final = 65_536
RECEIVE_BUFFER_BYTES: Final = 4 * 1024 * 1024
"""Socket receive buffer asked for UDP feeds, so that a burst is not lost before it is read."""


async def receive(feed: Feed) -> None:
    """Run the feed's receiver (listen or connect) until cancelled."""
    config = feed.config
    endpoint = config.endpoint
    files = None if config.tls is None else config.tls.resolved(feed.base)
    if config.connect is not None:
        await connect(feed, endpoint, files)
    elif endpoint.scheme == "udp":
        await receive_datagrams(feed, endpoint, config.interface)
    else:
        await serve(feed, endpoint, files)


# --- UDP ---------------------------------------------------------------------------------------


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, feed: Feed, closed: asyncio.Future[None]) -> None:
        self.feed = feed
        self.closed = closed

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        feed = self.feed
        feed.offer(feed.datagram(data, f"{addr[0]}:{addr[1]}", feed.clock()))

    def error_received(self, exc: Exception) -> None:
        # an ICMP error for an earlier datagram; the socket goes on receiving
        self.feed.stats.failed(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_exception(exc or ConnectionError("the UDP socket was closed"))


def datagram_socket(endpoint: Endpoint, interface: str = "0.0.0.0") -> socket.socket:
    """A bound UDP socket for ``endpoint``, member of its multicast group when it names one."""
    try:
        infos = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_DGRAM)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
    except OSError as error:
        raise FeedSocketError(f"{endpoint}: {error}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
        if endpoint.multicast:
            if family != socket.AF_INET:
                raise FeedSocketError(f"{endpoint}: only IPv4 multicast groups are joined")
            # Bound to the group (Linux), the socket gets that group's datagrams only.
            sock.bind((endpoint.host if sys.platform.startswith("linux") else "", endpoint.port))
            membership = struct.pack(
                "4s4s", socket.inet_aton(endpoint.host), socket.inet_aton(interface)
            )
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
        else:
            sock.bind(address)
        sock.setblocking(False)
    except FeedSocketError:
        sock.close()
        raise
    except OSError as error:
        sock.close()
        raise FeedSocketError(f"{endpoint}: {error.strerror or error}") from None
    return sock


async def receive_datagrams(feed: Feed, endpoint: Endpoint, interface: str = "0.0.0.0") -> None:
    sock = datagram_socket(endpoint, interface)
    loop = asyncio.get_running_loop()
    closed: asyncio.Future[None] = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(feed, closed), sock=sock)
    feed.bound = sock.getsockname()[:2]
    feed.stats.enter("up")
    try:
        await closed
    finally:
        transport.close()


# --- TCP and TLS ---------------------------------------------------------------------------


def server_tls(files: TlsFiles) -> ssl.SSLContext:
    """TLS for a listener that takes only clients whose certificate ``files.cafile`` signed.
    TLS 1.2 is allowed because TAK clients in the field still speak it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(files.certfile or "", files.keyfile)
        context.load_verify_locations(cafile=files.cafile)
    except (OSError, ssl.SSLError) as error:
        raise FeedSocketError(f"TLS files {files.certfile}, {files.cafile}: {error}") from None
    return context


def client_tls(files: TlsFiles | None) -> ssl.SSLContext:
    """TLS for a connection out: the source's certificate checked against ``files.cafile`` (the
    system's CAs without one), with a client certificate when one is given."""
    try:
        context = ssl.create_default_context(cafile=None if files is None else files.cafile)
        if files is not None and files.certfile:
            context.load_cert_chain(files.certfile, files.keyfile)
    except (OSError, ssl.SSLError) as error:
        raise FeedSocketError(f"TLS files: {error}") from None
    return context


def _peer(writer: asyncio.StreamWriter) -> str:
    host, port = writer.get_extra_info("peername")[:2]
    certificate = writer.get_extra_info("peercert")
    if certificate:
        for field in certificate.get("subject", ()):
            for key, value in field:
                if key == "commonName":
                    return f"{value} ({host}:{port})"
    return f"{host}:{port}"


async def _read(feed: Feed, reader: asyncio.StreamReader, peer: str) -> None:
    source = feed.source(peer)
    feed.stats.connections += 1
    try:
        while data := await reader.read(READ_BYTES):
            feed.offer(source.push(data, feed.clock()))
    finally:
        feed.stats.connections -= 1


async def serve(feed: Feed, endpoint: Endpoint, files: TlsFiles | None) -> None:
    """Listen on TCP (TLS with client certificates for ``tls://``) until cancelled."""
    context = server_tls(files) if endpoint.scheme == "tls" and files is not None else None
    clients: set[asyncio.StreamWriter] = set()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        clients.add(writer)
        try:
            await _read(feed, reader, peer)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as error:
            feed.stats.failed(ConnectionError(f"{peer}: {error}"))
        finally:
            clients.discard(writer)
            writer.close()

    try:
        server = await asyncio.start_server(
            client, endpoint.host, endpoint.port, ssl=context, reuse_address=True
        )
    except OSError as error:
        raise FeedSocketError(f"{endpoint}: {error.strerror or error}") from None
    feed.bound = server.sockets[0].getsockname()[:2]
    feed.stats.enter("up")
    try:
        async with server:
            await server.serve_forever()
    finally:
        # a stopped listener lets its clients go too, so that they connect to the next one
        for writer in list(clients):
            writer.close()


async def connect(feed: Feed, endpoint: Endpoint, files: TlsFiles | None) -> None:
    """Connect to the source and read until it closes; raises then, to be connected again."""
    context = client_tls(files) if endpoint.scheme == "tls" else None
    try:
        reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port, ssl=context)
    except (OSError, ssl.SSLError) as error:
        raise FeedSocketError(f"{endpoint}: {error}") from None
    feed.bound = writer.get_extra_info("sockname")[:2]
    feed.stats.enter("up")
    try:
        await _read(feed, reader, str(endpoint))
    finally:
        writer.close()
    raise ConnectionError(f"{endpoint}: the source closed the connection")
