"""The federation endpoint: the receiving side of every link, on the node's partner-facing port.

Each channel a transport hands over is one partner's link into this node: ``Hello`` then
``Welcome``, then batches answered by receipts, or by one ``Refusal`` (audited as
``verify_failure``) before the channel closes. Also the operator's read-only view of links,
``GET /api/links``. It is not the operator API (see :mod:`kuroshio.api.observations`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Final

import msgspec
from fastapi import APIRouter, Request, Response

from kuroshio.exchange.inbox import Inbox
from kuroshio.exchange.link import LinkStatus, link_reports
from kuroshio.exchange.transports import Channel, ChannelClosed
from kuroshio.exchange.transports.wss import MESSAGE_TOO_BIG
from kuroshio.exchange.wire import (
    PROTOCOL,
    BatchFrame,
    Hello,
    LinkRefused,
    Welcome,
    decode,
    encode,
)
from kuroshio.node import Node

HELLO_TIMEOUT_S: Final = 15.0
REFUSALS_PER_MINUTE: Final = 60
"""Handshake refusals audited per minute; beyond that they are counted into the next entry, so
a flood of bad connections cannot flood the audit log."""


class FederationEndpoint:
    """Serves the receiving side of links for one node."""

    def __init__(self, node: Node, inbox: Inbox) -> None:
        self.node = node
        self.inbox = inbox
        self._sessions: dict[str, Channel] = {}
        self._window_start = time.monotonic()
        self._refusals_in_window = 0
        self._suppressed = 0
        self._background: set[asyncio.Task[None]] = set()

    def on_refused(self, peer: str, reason: str) -> None:
        """A connection refused before any channel (TLS handshake, unpinned certificate)."""
        now = time.monotonic()
        if now - self._window_start >= 60:
            self._window_start, self._refusals_in_window = now, 0
        if self._refusals_in_window >= REFUSALS_PER_MINUTE:
            self._suppressed += 1
            return
        self._refusals_in_window += 1
        suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            reason = f"{reason} (and {suppressed} earlier refusals not audited one by one)"
        refused = LinkRefused("not_pinned", reason)
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self.inbox.refuse, None, peer, refused)
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def handle(self, channel: Channel) -> None:
        party = channel.peer_party
        try:
            await self._serve(channel, party)
        except LinkRefused as refused:
            await asyncio.to_thread(self.inbox.refuse, party, channel.peer, refused)
            with contextlib.suppress(ChannelClosed):
                await channel.send(encode(refused.refusal()))
            await channel.close(1008, refused.code)
        except ChannelClosed as closed:
            if closed.code == MESSAGE_TOO_BIG:
                too_big = LinkRefused("frame_too_big", closed.reason)
                await asyncio.to_thread(self.inbox.refuse, party, channel.peer, too_big)
        except TimeoutError:
            await channel.close(1008, "no hello in time")
        finally:
            if self._sessions.get(party) is channel:
                del self._sessions[party]

    async def _serve(self, channel: Channel, party: str) -> None:
        partner = self.node.partners.get(party)
        if partner is None:
            raise LinkRefused("not_pinned", f"party {party} is not pinned on this node")
        hello = decode(await asyncio.wait_for(channel.receive(), HELLO_TIMEOUT_S))
        if not isinstance(hello, Hello):
            raise LinkRefused("unexpected", f"expected hello, got {type(hello).__name__}")
        if hello.protocol != PROTOCOL:
            raise LinkRefused(
                "unexpected", f"protocol {hello.protocol!r}, this node speaks {PROTOCOL}"
            )
        if hello.sender != party or hello.receiver != self.node.party:
            raise LinkRefused(
                "wrong_link",
                f"hello for link {hello.sender}>{hello.receiver} from a {party} certificate",
            )
        earlier = self._sessions.get(party)
        if earlier is not None:
            # One session per link: a reconnecting sender replaces its half-dead predecessor.
            task = asyncio.get_running_loop().create_task(
                earlier.close(1000, "replaced by a newer connection")
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        self._sessions[party] = channel
        state, receipts = await asyncio.to_thread(self.inbox.welcome, partner, hello.acked_seq)
        await channel.send(
            encode(Welcome(last_seq=state.last_seq, last_hash=state.last_hash, receipts=receipts))
        )
        while True:
            message = decode(await channel.receive())
            if not isinstance(message, BatchFrame):
                raise LinkRefused("unexpected", f"expected a batch, got {type(message).__name__}")
            signed = await asyncio.to_thread(self.inbox.accept, partner, message)
            await channel.send(encode(signed))

    async def close(self) -> None:
        for task in list(self._background):
            with contextlib.suppress(Exception):
                await task


status_router = APIRouter(prefix="/api", tags=["federation"])
_json = msgspec.json.Encoder()


@status_router.get("/links", summary="Links to and from every pinned partner")
def links(request: Request) -> Response:
    node: Node = request.app.state.node
    live: Mapping[str, LinkStatus] = request.app.state.links
    reports = link_reports(node, dict(live))
    return Response(_json.encode(reports), media_type="application/json")
