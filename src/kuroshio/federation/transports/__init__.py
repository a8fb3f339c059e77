"""The transport interface of links: a channel of whole binary messages to or from one partner.

A transport connects to a partner (sender side) and listens for partners (receiver side); it
authenticates the peer's party and moves frames, nothing more. What the frames mean is
:mod:`kuroshio.exchange.wire`. Implementations: :mod:`~kuroshio.federation.transports.wss`
(WebSocket over mutual TLS 1.3) and :mod:`~kuroshio.federation.transports.nats` (NATS JetStream).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from kuroshio.partners import Partner

TRY_AGAIN_LATER: Final = 1013
"""The close code (RFC 6455's "try again later") of a channel ended because this node cannot
serve it for now, its store being unavailable; the peer reconnects and resumes."""


class Channel(Protocol):
    """One open, authenticated connection carrying whole binary messages."""

    @property
    def peer_party(self) -> str:
        """The party the peer proved to be (from its certificate)."""
        ...

    @property
    def peer(self) -> str:
        """Where the peer is, for logs and audit entries (e.g. an address)."""
        ...

    async def send(self, message: bytes) -> None: ...

    async def receive(self) -> bytes:
        """The next whole message; raises :class:`ChannelClosed` at the end."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


ChannelHandler = Callable[[Channel], Awaitable[None]]
RefusalHandler = Callable[[str, str], None]
"""Called with (peer, reason) when a peer is refused before any channel exists."""


class Listener(Protocol):
    """A running listener; ``close`` stops accepting and ends open channels."""

    @property
    def port(self) -> int: ...

    async def close(self) -> None: ...


class Transport(Protocol):
    """Connects to partners and listens for them."""

    async def connect(self, partner: Partner) -> Channel: ...

    async def listen(
        self, host: str, port: int, handler: ChannelHandler, on_refused: RefusalHandler
    ) -> Listener: ...
