"""The sending end of one link: connect, resume from the last receipt, stream, keep receipts.

One :class:`Link` per pinned partner runs in the ``serve`` process. It seals batches from the
outbox (at most ``batch_items`` items, waiting at most ``batch_delay_ms`` to fill one while
another is in flight), keeps at most ``window`` unacknowledged, stores each verified receipt and
reconnects with back-off (and jitter) after any failure. It does not decide releases or verify
batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from typing import Final, TypeVar

from kuroshio.errors import ChannelClosed, StoreUnavailable, TransportError
from kuroshio.exchange import outbox
from kuroshio.exchange.batch import SealedBatch, batch_label
from kuroshio.exchange.receipt import Receipt, open_receipt
from kuroshio.exchange.status import LinkStatus
from kuroshio.exchange.wire import (
    PROTOCOL,
    Hello,
    LinkRefused,
    Refusal,
    SignedReceipt,
    Welcome,
    decode,
    encode,
)
from kuroshio.federation.transports import Channel, Transport
from kuroshio.node import Node
from kuroshio.partners import Partner
from kuroshio.store.transaction import Transaction

logger = logging.getLogger("kuroshio.link")

T = TypeVar("T")

IDLE_POLL_S: Final = 0.05
"""How often an idle link looks for items another process wrote without telling it: on the
embedded store, ``kuroshio add`` run beside ``kuroshio serve``."""
IDLE_POLL_TOLD_S: Final = 1.0
"""How often an idle link looks where every process of the node announces what it stores
(PostgreSQL ``NOTIFY``): a safety net only, each announcement wakes the link at once. At 50 ms
an idle node on PostgreSQL read the outbox of each partner twenty times a second."""
RETRY_MIN_S: Final = 0.2
RETRY_FACTOR: Final = 2.0
"""Each failed connection waits this much longer than the one before, up to the node's
``exchange.reconnect_max_s``; a partner whose own link reaches this node is tried at once."""
RETRY_JITTER: Final = 0.25
"""Up to this share of a wait is added at random, so links that failed together (a partner
restarting) do not all come back at the same instant."""
REFUSED_RETRY_S: Final = 10.0
WELCOME_TIMEOUT_S: Final = 15.0
FRAME_OVERHEAD: Final = 64 * 1024


class PartnerRefused(LinkRefused):
    """The partner refused what this node sent (its Refusal, as received)."""


class Link:
    """Sends what is released to one partner, in order, until cancelled."""

    def __init__(
        self, node: Node, partner: Partner, transport: Transport, *, told: bool = False
    ) -> None:
        """``told``: every process of the node that stores items announces it, and this link
        hears it (a node on PostgreSQL), so an idle link need not look often."""
        self.node = node
        self.partner = partner
        self.transport = transport
        exchange = node.config.exchange
        self.batch_items = exchange.batch_items
        self.batch_delay_s = exchange.batch_delay_ms / 1000
        self.window = exchange.window
        self.max_batch_bytes = max(exchange.max_frame_bytes - FRAME_OVERHEAD, 32 * 1024)
        self.status = LinkStatus(partner=partner.party, url=partner.url)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup = asyncio.Event()
        self._partner_seen = asyncio.Event()
        self._window_open = asyncio.Event()
        self._in_flight = 0
        self._idle_poll_s = IDLE_POLL_TOLD_S if told else IDLE_POLL_S
        self._next_seq = 1
        self._reader = node.store.reader()

    # --- wiring ---------------------------------------------------------------------------

    def wake(self) -> None:
        """Tell the link new items may be waiting (safe from any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wakeup.set)

    def partner_seen(self) -> None:
        """Tell the link its partner has just reached this node (its own link said hello), so
        it is up again: a link waiting to try it again tries now (safe from any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._partner_seen.set)

    def close(self) -> None:
        self._reader.close()

    async def _read(self, query: Callable[[Transaction], T]) -> T:
        return await asyncio.to_thread(self._reader.read, query)

    # --- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, stream, reconnect; returns only when cancelled."""
        self._loop = asyncio.get_running_loop()
        retry = RETRY_MIN_S
        longest = self.node.config.exchange.reconnect_max_s
        party = self.partner.party
        while True:
            self._partner_seen.clear()
            try:
                channel = await self.transport.connect(self.partner)
            except TransportError as error:
                self.status.failed_attempts += 1
                self._failed(f"cannot connect: {error.reason}", quiet=retry > RETRY_MIN_S)
                if await self._until_partner_seen(_jittered(retry)):
                    logger.info(
                        "link %s>%s: %s reached this node; trying it again now",
                        self.node.party,
                        party,
                        party,
                    )
                retry = min(retry * RETRY_FACTOR, longest)
                continue
            retry = RETRY_MIN_S
            self.status.failed_attempts = 0
            self.status.connected = True
            self.status.connected_at = dt.datetime.now(dt.UTC)
            logger.info("link %s>%s connected to %s", self.node.party, party, channel.peer)
            wait = RETRY_MIN_S
            try:
                await self._session(channel)
            except PartnerRefused as refused:
                self._failed(f"refused by {party}: {refused}")
                wait = REFUSED_RETRY_S
            except LinkRefused as refused:
                await asyncio.to_thread(self._audit_failure, refused)
                self._failed(f"refused {party}'s answer: {refused}")
                with contextlib.suppress(ChannelClosed):
                    await channel.close(1008, refused.code)
                wait = REFUSED_RETRY_S
            except ChannelClosed as closed:
                self._failed(f"connection closed: {closed}")
            except TimeoutError:
                self._failed(f"{party} did not answer in time")
            except StoreUnavailable as unavailable:
                # The store comes back (a database restart); the link resumes from its receipts.
                self._failed(f"store unavailable: {unavailable}")
            finally:
                self.status.connected = False
                with contextlib.suppress(Exception):
                    await channel.close(1000, "")
            await asyncio.sleep(_jittered(wait))

    async def _until_partner_seen(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if the partner reaches this node meanwhile (True then)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._partner_seen.wait(), seconds)
            return True
        return False

    def _failed(self, reason: str, *, quiet: bool = False) -> None:
        self.status.last_error = reason
        self.status.last_error_at = dt.datetime.now(dt.UTC)
        (logger.debug if quiet else logger.warning)(
            "link %s>%s: %s", self.node.party, self.partner.party, reason
        )

    def _audit_failure(self, refused: LinkRefused) -> None:
        details: dict[str, object] = {
            "partner": self.partner.party,
            "code": refused.code,
            "reason": refused.reason[:1_000],
        }
        if refused.seq is not None:
            details["seq"] = refused.seq
        with self.node.store.transaction() as tx:
            self.node.audit.append(
                tx, "verify_failure", f"receipts from {self.partner.party}", details
            )

    async def _session(self, channel: Channel) -> None:
        party = self.partner.party
        acked = await self._read(lambda tx: outbox.acked_seq(tx, party))
        await channel.send(
            encode(
                Hello(protocol=PROTOCOL, sender=self.node.party, receiver=party, acked_seq=acked)
            )
        )
        welcome = decode(await asyncio.wait_for(channel.receive(), WELCOME_TIMEOUT_S))
        if isinstance(welcome, Refusal):
            raise PartnerRefused(welcome.code, welcome.reason, seq=welcome.seq)
        if not isinstance(welcome, Welcome):
            raise LinkRefused("unexpected", f"expected a welcome, got {type(welcome).__name__}")
        for signed in welcome.receipts:
            await self._take_receipt(signed)
        acked = await self._read(lambda tx: outbox.acked_seq(tx, party))
        if welcome.last_seq != acked:
            raise LinkRefused(
                "diverged",
                f"{party} has taken in batches up to {welcome.last_seq}, "
                f"this node holds receipts up to {acked}",
            )
        self.status.acked_seq = acked
        self._next_seq = acked + 1
        self._in_flight = 0
        self._window_open.set()
        tasks = [
            asyncio.create_task(self._send_batches(channel)),
            asyncio.create_task(self._take_receipts(channel)),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            error = task.exception()
            if error is not None:
                raise error

    async def _send_batches(self, channel: Channel) -> None:
        while True:
            await self._window_open.wait()
            batch = await self._next_batch()
            await channel.send(encode(batch.frame()))
            self._next_seq = batch.header.seq + 1
            self._in_flight += 1
            if self._in_flight >= self.window:
                self._window_open.clear()
            self.status.sent_batches += 1
            self.status.sent_items += batch.header.count

    async def _next_batch(self) -> SealedBatch:
        party = self.partner.party
        seq = self._next_seq
        resend = await self._read(lambda tx: outbox.sealed_batch(tx, party, seq))
        if resend is not None:
            return resend
        first_seen: float | None = None
        while True:
            self._wakeup.clear()
            pending, held_until = await self._read(
                lambda tx: outbox.due_or_next(tx, party, limit=self.batch_items)
            )
            now = time.monotonic()
            if pending:
                first_seen = now if first_seen is None else first_seen
                waited = now - first_seen
                if (
                    pending >= self.batch_items
                    or self._in_flight == 0
                    or waited >= self.batch_delay_s
                ):
                    sealed = await asyncio.to_thread(self._seal)
                    if sealed is not None:
                        return sealed
                    continue
                timeout = self.batch_delay_s - waited
            else:
                # Nothing due: wait to be woken, or until the first item held by a delay is.
                timeout = self._idle_poll_s
                if held_until is not None:
                    timeout = min(timeout, max(0.0, held_until.timestamp() - time.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    def _seal(self) -> SealedBatch | None:
        party = self.partner.party
        now = dt.datetime.now(dt.UTC)
        with self.node.store.transaction() as tx:
            revoked = self.node.revocation(tx, party, self.partner.signing_key)
            if revoked is not None:
                # Revoked by any process: nothing more leaves; the link retries with back-off.
                raise LinkRefused("revoked", f"{party}'s key is revoked here: {revoked}")
            # The agreement is checked at the moment of sending, whatever waited in the outbox.
            self.node.enforce_at_send(tx, party, now)
            sealed = outbox.seal_next(
                tx,
                party,
                signer=self.node.identity,
                sender=self.node.party,
                max_items=self.batch_items,
                max_bytes=self.max_batch_bytes,
                now=now,
            )
            if sealed is not None:
                self.node.audit.append(
                    tx,
                    "send",
                    f"batch {batch_label(self.node.party, party, sealed.header.seq)}",
                    {
                        "partner": party,
                        "seq": sealed.header.seq,
                        "count": sealed.header.count,
                        "hash": sealed.hash.hex(),
                    },
                )
        return sealed

    async def _take_receipts(self, channel: Channel) -> None:
        while True:
            message = decode(await channel.receive())
            if isinstance(message, Refusal):
                raise PartnerRefused(message.code, message.reason, seq=message.seq)
            if not isinstance(message, SignedReceipt):
                raise LinkRefused("unexpected", f"expected a receipt, got {type(message).__name__}")
            receipt = await self._take_receipt(message)
            self._in_flight = max(0, self._in_flight - 1)
            self._window_open.set()
            self._wakeup.set()
            self.status.acked_batches += 1
            self.status.acked_items += receipt.count
            self.status.acked_seq = max(self.status.acked_seq, receipt.seq)

    async def _take_receipt(self, signed: SignedReceipt) -> Receipt:
        receipt = open_receipt(signed, self.partner.signing_keys)
        if receipt.sender != self.node.party or receipt.receiver != self.partner.party:
            raise LinkRefused(
                "wrong_link",
                f"receipt for link {receipt.sender}>{receipt.receiver}",
                seq=receipt.seq,
            )
        await asyncio.to_thread(self._store_receipt, receipt, signed)
        return receipt

    def _store_receipt(self, receipt: Receipt, signed: SignedReceipt) -> None:
        self.node.take_receipt(self.partner.party, receipt, signed)


def _jittered(seconds: float) -> float:
    return seconds * (1.0 + random.uniform(0.0, RETRY_JITTER))


__all__ = ["Link", "LinkStatus", "PartnerRefused"]
