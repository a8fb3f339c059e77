"""The federation endpoint: the receiving side of every link, on the node's partner-facing port.

Each channel a transport hands over is one partner's link into this node: ``Hello`` then
``Welcome``, then batches answered by receipts, or by one ``Refusal`` (audited as
``verify_failure``) before the channel closes. It is not the operator API (:mod:`kuroshio.api`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

from kuroshio.errors import ChannelClosed, StoreUnavailable
from kuroshio.exchange.inbox import CheckedBatch
from kuroshio.exchange.wire import (
    PROTOCOL,
    BatchFrame,
    Hello,
    LinkRefused,
    Welcome,
    decode,
    encode,
)
from kuroshio.federation.inbox import Inbox
from kuroshio.federation.transports import TRY_AGAIN_LATER, Channel
from kuroshio.federation.transports.wss import MESSAGE_TOO_BIG
from kuroshio.node import Node
from kuroshio.partners import Partner

T = TypeVar("T")
logger = logging.getLogger("kuroshio.endpoint")

HELLO_TIMEOUT_S: Final = 15.0
SHED_CODE: Final = 1012
"""WebSocket close code "service restart": the link is to connect again (see :meth:`shed`)."""
REFUSALS_PER_MINUTE: Final = 60
"""Handshake refusals audited per minute; beyond that they are counted into the next entry, so
a flood of bad connections cannot flood the audit log."""
OPENED_AHEAD: Final = 4
"""Batches of a link opened and waiting to be taken in, at most (a sender's window)."""


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
        self.on_partner: Callable[[str], None] | None = None
        """Called (in a worker thread) with a partner's code when its link has said hello (it
        is up again)."""

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
        except StoreUnavailable as unavailable:
            # The store comes back (a database restart). Each batch is taken in by one
            # transaction, so none is half stored; the sender reconnects and resumes from the
            # receipts this node holds.
            logger.warning("link %s>%s: store unavailable: %s", party, self.node.party, unavailable)
            await channel.close(TRY_AGAIN_LATER, "store unavailable")
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
        if self.on_partner is not None:
            # In a thread: telling the node's other processes is a write to its store.
            await asyncio.to_thread(self.on_partner, party)
        state, receipts = await asyncio.to_thread(self.inbox.welcome, partner, hello.acked_seq)
        await channel.send(
            encode(Welcome(last_seq=state.last_seq, last_hash=state.last_hash, receipts=receipts))
        )
        # Two stages: the next batches are opened (signature, Merkle root, every item decoded
        # and checked) while the one before is taken in, so the opening never waits for a
        # commit to reach the disk. Batches are still taken in one at a time, in order, and each
        # receipt goes back as soon as its batch is committed.
        checked: asyncio.Queue[CheckedBatch] = asyncio.Queue(maxsize=OPENED_AHEAD)
        take_in = asyncio.get_running_loop().create_task(self._take_in(channel, partner, checked))
        try:
            while True:
                message = decode(await _unless_failed(channel.receive(), take_in))
                if not isinstance(message, BatchFrame):
                    raise LinkRefused(
                        "unexpected", f"expected a batch, got {type(message).__name__}"
                    )
                batch = await asyncio.to_thread(self.inbox.open, partner, message)
                await _unless_failed(checked.put(batch), take_in)
        except LinkRefused:
            # What was checked before the refusal is still taken in and receipted first.
            await _settle(take_in, checked)
            raise
        finally:
            take_in.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await take_in

    async def _take_in(
        self, channel: Channel, partner: Partner, checked: asyncio.Queue[CheckedBatch]
    ) -> None:
        while True:
            batch = await checked.get()
            try:
                signed = await asyncio.to_thread(self.inbox.take_in, partner, batch)
                await channel.send(encode(signed))
            finally:
                checked.task_done()

    def shed(self, keep: int) -> None:
        """Close this process's links beyond the first ``keep`` (the newest go), so that their
        senders connect again and another receiving process of the node, holding fewer, takes
        them (a batch being taken in meanwhile is committed or not; the sender resends it and
        is answered once either way)."""
        for party in list(self._sessions)[keep:]:
            channel = self._sessions[party]
            task = asyncio.get_running_loop().create_task(
                channel.close(SHED_CODE, "moved to another receiving process of the node")
            )
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        for task in list(self._background):
            with contextlib.suppress(Exception):
                await task


async def _unless_failed(step: Coroutine[Any, Any, T], take_in: asyncio.Task[None]) -> T:
    """Await ``step``, unless the take-in stage fails first: then raise its error."""
    task = asyncio.ensure_future(step)
    await asyncio.wait({task, take_in}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    take_in.result()  # the take-in stage runs until it fails: this raises its error
    raise RuntimeError("the take-in stage ended")


async def _settle(take_in: asyncio.Task[None], checked: asyncio.Queue[CheckedBatch]) -> None:
    """Wait until every checked batch is taken in, or the take-in fails (its error wins)."""
    await _unless_failed(checked.join(), take_in)
