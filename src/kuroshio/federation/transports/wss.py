"""WebSocket over mutual TLS 1.3: the embedded transport of links.

The sender connects with the ``websockets`` client, trusting only the partner's pinned CA. The
listener runs TLS itself on memory BIOs (so a refused certificate is audited and answered with
its alert, not silently dropped) and speaks WebSocket through the ``websockets`` sans-I/O
protocol; the peer's party is read from the certificate it presented. Frames only: the link
protocol is elsewhere.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import socket
import ssl
from collections.abc import Coroutine, Mapping
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, PayloadTooBig
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from kuroshio.errors import ChannelClosed, IdentityError, TransportError, VerificationError
from kuroshio.federation.transports import ChannelHandler, RefusalHandler
from kuroshio.partners import Partner
from kuroshio.pki import NodeIdentity, client_ssl_context, peer_party, server_ssl_context

LINK_PATH: Final = "/kuroshio/link/v1"
HANDSHAKE_TIMEOUT: Final = 10.0
CLOSE_TIMEOUT: Final = 5.0
MAX_QUEUED_MESSAGES: Final = 2
"""Whole messages held per connection before reading pauses (back-pressure on the sender)."""
MESSAGE_TOO_BIG: Final = 1009
POLICY_VIOLATION: Final = 1008
ABNORMAL_CLOSURE: Final = 1006
ACCEPT_DEFER_S: Final = 0.5
"""On a listening socket shared by several processes of a node, one that already holds its share
of connections waits this long before it takes a new one, so a process holding fewer takes it
first; if none does (a half-dead connection not yet noticed), it is still taken."""
ACCEPT_RETRY_S: Final = 0.5
"""Wait after accept fails for want of resources (file descriptors), before trying again."""

logger = logging.getLogger("kuroshio.wss")


def link_url(url: str) -> str:
    """The WebSocket URL of a partner's link endpoint from its federation URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "wss") or not parts.hostname:
        raise TransportError(url, "a federation URL is https://host:port or wss://host:port")
    return urlunsplit(("wss", parts.netloc, LINK_PATH, "", ""))


def _describe(error: BaseException) -> str:
    cause = error.__cause__ or error.__context__
    if isinstance(error, InvalidHandshake) and isinstance(cause, OSError):
        # A TLS alert (e.g. "unknown ca") surfaces as a broken HTTP response; name the alert.
        return f"{error}: {_describe(cause)}"
    if isinstance(error, TimeoutError):
        return "timed out"
    text = str(error)
    return f"{error.__class__.__name__}: {text}" if text else error.__class__.__name__


def _tls_reason(error: ssl.SSLError) -> str:
    detail = getattr(error, "verify_message", None)
    reason = (error.reason or "TLS error").lower().replace("_", " ")
    return f"{reason}: {detail}" if detail else reason


def _closed(error: ConnectionClosed) -> ChannelClosed:
    frame = error.rcvd or error.sent
    if frame is None:
        return ChannelClosed(ABNORMAL_CLOSURE, "connection lost")
    return ChannelClosed(frame.code, frame.reason)


class _ClientChannel:
    """The sender's end: a ``websockets`` client connection to one partner."""

    def __init__(self, connection: ClientConnection, party: str, peer: str) -> None:
        self._connection = connection
        self._party = party
        self._peer = peer

    @property
    def peer_party(self) -> str:
        return self._party

    @property
    def peer(self) -> str:
        return self._peer

    async def send(self, message: bytes) -> None:
        try:
            await self._connection.send(message)
        except ConnectionClosed as error:
            raise _closed(error) from None

    async def receive(self) -> bytes:
        try:
            data = await self._connection.recv()
        except ConnectionClosed as error:
            raise _closed(error) from None
        return data.encode("utf-8") if isinstance(data, str) else data

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._connection.close(code, reason[:120])


class _Listening:
    """What every accepted connection of one listener shares."""

    def __init__(
        self,
        context: ssl.SSLContext,
        trusted: list[bytes],
        parties: frozenset[str],
        handler: ChannelHandler,
        on_refused: RefusalHandler,
        max_frame_bytes: int,
    ) -> None:
        self.context = context
        self.trusted = trusted
        self.parties = parties
        self.handler = handler
        self.on_refused = on_refused
        self.max_frame_bytes = max_frame_bytes
        self.connections: set[_ServerConnection] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coroutine: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


class _ServerConnection(asyncio.Protocol):
    """One accepted connection: TLS on memory BIOs, then WebSocket (sans-I/O) on top.

    TLS runs here rather than in asyncio's transport so that a refused handshake still sends
    its alert ("unknown ca", "certificate required"): the peer is told why.
    """

    def __init__(self, owner: _Listening) -> None:
        self._owner = owner
        self._ws = ServerProtocol(max_size=owner.max_frame_bytes)
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = owner.context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._transport: asyncio.Transport | None = None
        self._handshaken = False
        self._peer = "unknown peer"
        self._party = ""
        self._fragments: list[bytes] | None = None
        self._messages: collections.deque[bytes] = collections.deque()
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._lost = asyncio.Event()
        self._reading_paused = False
        self._ended = False
        self._timer: asyncio.TimerHandle | None = None

    # --- Channel ------------------------------------------------------------------------

    @property
    def peer_party(self) -> str:
        return self._party

    @property
    def peer(self) -> str:
        return self._peer

    async def send(self, message: bytes) -> None:
        if self._ended or self._ws.state is not State.OPEN:
            raise self._closed()
        self._ws.send_binary(message)
        self._flush()
        await self._writable.wait()

    async def receive(self) -> bytes:
        while not self._messages:
            if self._ended:
                raise self._closed()
            self._readable.clear()
            await self._readable.wait()
        message = self._messages.popleft()
        if self._reading_paused and len(self._messages) < MAX_QUEUED_MESSAGES:
            self._reading_paused = False
            if self._transport is not None and not self._transport.is_closing():
                self._transport.resume_reading()
        return message

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._ws.state is State.OPEN:
            self._ws.send_close(code, reason[:120])
            self._flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._lost.wait(), CLOSE_TIMEOUT)
        self._abort()

    def _closed(self) -> ChannelClosed:
        exc = self._ws.parser_exc
        if isinstance(exc, PayloadTooBig):
            return ChannelClosed(MESSAGE_TOO_BIG, str(exc))
        frame = self._ws.close_rcvd or self._ws.close_sent
        if frame is None:
            return ChannelClosed(ABNORMAL_CLOSURE, "connection lost")
        return ChannelClosed(frame.code, frame.reason)

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peername = transport.get_extra_info("peername")
        if isinstance(peername, tuple) and len(peername) >= 2:
            self._peer = f"{peername[0]}:{peername[1]}"
        self._owner.connections.add(self)
        self._timer = asyncio.get_running_loop().call_later(
            HANDSHAKE_TIMEOUT, self._handshake_timed_out
        )

    def data_received(self, data: bytes) -> None:
        self._incoming.write(data)
        if not self._handshaken and not self._handshake():
            return
        chunks: list[bytes] = []
        eof = False
        while True:
            try:
                chunk = self._tls.read(256 * 1024)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                eof = True
                break
            except ssl.SSLError:
                self._abort()
                return
            if not chunk:
                eof = True
                break
            chunks.append(chunk)
        self._send_tls()
        if chunks:
            self._ws.receive_data(b"".join(chunks))
        if eof:
            self._ws.receive_eof()
        self._process()

    def eof_received(self) -> bool | None:
        self._ws.receive_eof()
        self._process()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended = True
        self._lost.set()
        self._readable.set()
        self._writable.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._owner.connections.discard(self)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # --- TLS ----------------------------------------------------------------------------

    def _handshake(self) -> bool:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._send_tls()
            return False
        except ssl.SSLError as error:
            self._send_tls()  # the alert
            self._refuse(f"TLS handshake refused: {_tls_reason(error)}")
            self._close_transport()
            return False
        self._handshaken = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._send_tls()
        if not self._identify():
            self._close_transport()
            return False
        self._timer = asyncio.get_running_loop().call_later(HANDSHAKE_TIMEOUT, self._abort)
        return True

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if not self._handshaken:
            self._refuse("TLS handshake timed out")
            self._abort()

    def _identify(self) -> bool:
        certificate = self._tls.getpeercert(binary_form=True)
        if not certificate:
            self._refuse("no client certificate")
            return False
        try:
            party = peer_party(certificate, self._owner.trusted)
        except (VerificationError, IdentityError) as error:
            self._refuse(f"client certificate: {error}")
            return False
        if party not in self._owner.parties:
            self._refuse(f"party {party} is not pinned")
            return False
        self._party = party
        return True

    def _refuse(self, reason: str) -> None:
        self._ended = True
        self._readable.set()
        self._owner.on_refused(self._peer, reason)

    def _send_tls(self) -> None:
        data = self._outgoing.read()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _close_transport(self) -> None:
        # close() (not abort) so what is buffered, e.g. a TLS alert, still goes out.
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    # --- WebSocket ----------------------------------------------------------------------

    def _on_request(self, request: Request) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if request.path != LINK_PATH:
            response = self._ws.reject(404, f"no link endpoint at {request.path}\n")
        else:
            response = self._ws.accept(request)
        self._ws.send_response(response)
        self._flush()
        if response.status_code != 101:
            self._ended = True
            self._later_abort()
            return
        self._owner.spawn(self._run_handler())

    async def _run_handler(self) -> None:
        try:
            await self._owner.handler(self)
        finally:
            if not self._lost.is_set():
                await self.close(1000, "")

    def _process(self) -> None:
        for event in self._ws.events_received():
            if isinstance(event, Request):
                self._on_request(event)
            elif isinstance(event, Frame):
                self._on_frame(event)
        if self._ws.parser_exc is not None or self._ws.state is State.CLOSED:
            self._ended = True
            self._readable.set()
        self._flush()

    def _on_frame(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self._fragments = [bytes(frame.data)]
        elif frame.opcode is Opcode.CONT and self._fragments is not None:
            self._fragments.append(bytes(frame.data))
        elif frame.opcode is Opcode.CLOSE:
            self._ended = True
            self._readable.set()
            return
        else:
            return
        if frame.fin and self._fragments is not None:
            self._messages.append(b"".join(self._fragments))
            self._fragments = None
            self._readable.set()
            if len(self._messages) >= MAX_QUEUED_MESSAGES and self._transport is not None:
                self._transport.pause_reading()
                self._reading_paused = True

    def _flush(self) -> None:
        if self._transport is None or not self._handshaken:
            return
        for data in self._ws.data_to_send():
            if data:
                try:
                    self._tls.write(data)
                except ssl.SSLError:
                    self._abort()
                    return
            else:
                # End of stream: close_notify, then close the TCP connection.
                with contextlib.suppress(ssl.SSLError):
                    self._tls.unwrap()
                self._send_tls()
                self._close_transport()
                return
        self._send_tls()
        if self._ws.close_expected():
            self._later_abort()

    def _later_abort(self) -> None:
        if self._timer is None and not self._lost.is_set():
            self._timer = asyncio.get_running_loop().call_later(CLOSE_TIMEOUT, self._abort)

    def _abort(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()


class WssListener:
    """A running federation listener: its own server, or an accepting task on a socket the
    node's processes share (:meth:`WssTransport.listen_on`)."""

    def __init__(
        self,
        server: asyncio.Server | None,
        shared: _Listening,
        *,
        sock: socket.socket | None = None,
        accepting: asyncio.Task[None] | None = None,
    ) -> None:
        self._server = server
        self._shared = shared
        self._sock = sock
        self._accepting = accepting

    @property
    def port(self) -> int:
        sockets = self._server.sockets if self._server is not None else [self._sock]
        for sock in sockets:
            if sock is not None:
                return int(sock.getsockname()[1])
        return 0

    async def close(self) -> None:
        if self._server is None:
            await self._stop_accepting()
        else:
            self._server.close()
        await asyncio.gather(
            *(c.close(1001, "node shutting down") for c in list(self._shared.connections)),
            return_exceptions=True,
        )
        for task in list(self._shared.tasks):
            task.cancel()
        await asyncio.gather(*self._shared.tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), CLOSE_TIMEOUT)

    async def _stop_accepting(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accepting
        if self._sock is not None:
            self._sock.close()  # this process's handle; the other processes keep listening


class WssTransport:
    """Links over WebSocket with mutual TLS 1.3, trusting pinned partner CAs only."""

    def __init__(
        self,
        identity: NodeIdentity,
        partners: Mapping[str, Partner],
        *,
        max_frame_bytes: int,
    ) -> None:
        self._identity = identity
        self._partners = dict(partners)
        self._max_frame_bytes = max_frame_bytes

    async def connect(self, partner: Partner) -> _ClientChannel:
        url = link_url(partner.url)
        context = client_ssl_context(self._identity, [partner.ca_pem])
        try:
            connection = await connect(
                url,
                ssl=context,
                max_size=self._max_frame_bytes,
                compression=None,
                open_timeout=HANDSHAKE_TIMEOUT,
                close_timeout=CLOSE_TIMEOUT,
                ping_interval=20,
                ping_timeout=20,
                user_agent_header=None,
            )
        except (OSError, ssl.SSLError, TimeoutError, InvalidHandshake) as error:
            raise TransportError(url, _describe(error)) from None
        ssl_object = connection.transport.get_extra_info("ssl_object")
        certificate = ssl_object.getpeercert(binary_form=True) if ssl_object else None
        try:
            party = peer_party(certificate or b"", [partner.ca_pem])
        except (VerificationError, IdentityError) as error:
            await connection.close(POLICY_VIOLATION, "unexpected server certificate")
            raise TransportError(url, f"server certificate: {error}") from None
        if party != partner.party:
            await connection.close(POLICY_VIOLATION, "unexpected server party")
            raise TransportError(url, f"server speaks for {party}, not {partner.party}")
        return _ClientChannel(connection, party, url)

    def _listening(self, handler: ChannelHandler, on_refused: RefusalHandler) -> _Listening:
        trusted = [partner.ca_pem for partner in self._partners.values()]
        return _Listening(
            context=server_ssl_context(self._identity, trusted),
            trusted=trusted,
            parties=frozenset(self._partners),
            handler=handler,
            on_refused=on_refused,
            max_frame_bytes=self._max_frame_bytes,
        )

    async def listen_on(
        self,
        sock: socket.socket,
        handler: ChannelHandler,
        on_refused: RefusalHandler,
        *,
        share: int,
    ) -> WssListener:
        """Accept on a listening socket that other processes of the node accept on too (handed
        down by the supervisor). Each connection is taken by one process; a process holding
        ``share`` connections or more lets the others take a new one first, so the partners'
        links spread over the processes."""
        shared = self._listening(handler, on_refused)
        sock.setblocking(False)
        accepting = asyncio.get_running_loop().create_task(_accept(sock, shared, share))
        return WssListener(None, shared, sock=sock, accepting=accepting)

    async def listen(
        self, host: str, port: int, handler: ChannelHandler, on_refused: RefusalHandler
    ) -> WssListener:
        shared = self._listening(handler, on_refused)
        loop = asyncio.get_running_loop()
        try:
            server = await loop.create_server(
                lambda: _ServerConnection(shared), host, port, reuse_address=True
            )
        except OSError as error:
            raise TransportError(f"{host}:{port}", f"cannot listen: {error.strerror}") from None
        return WssListener(server, shared)


async def _accept(sock: socket.socket, shared: _Listening, share: int) -> None:
    """Take connections from a shared listening socket for as long as the listener runs."""
    loop = asyncio.get_running_loop()
    while True:
        await _readable(loop, sock)
        if len(shared.connections) >= share:
            await asyncio.sleep(ACCEPT_DEFER_S)
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            continue  # another process took it
        except OSError as error:
            logger.warning("accepting a federation connection failed: %s", error)
            await asyncio.sleep(ACCEPT_RETRY_S)
            continue
        try:
            await loop.connect_accepted_socket(lambda: _ServerConnection(shared), conn)
        except OSError:
            conn.close()


async def _readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    """Until a connection waits on ``sock`` (or another process took it first: accept says)."""
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())
