"""Where each link stands: the sending end's live state and both directions as the store holds
them, for the operator API, ``kuroshio link status`` and the demo.

:class:`LinkStatus` is kept in memory by a running link, and written to the store by the process
running the links (:func:`keep_live`, at least every :data:`KEEP_LIVE_S`) for other processes:
the API workers of a node served by several, ``kuroshio link status``. :func:`link_reports`
reads the rest from one store snapshot, so it works whether or not the node is serving. Reading
changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Final

import msgspec

from kuroshio.exchange.inbox import InboxState, link_state
from kuroshio.exchange.outbox import OutboxState, state
from kuroshio.store.sql import micros
from kuroshio.store.transaction import Transaction

KEEP_LIVE_S: Final = 5.0
"""The process running the links writes their status at least this often, and at once (within
a second) when it changes."""
LIVE_FOR_S: Final = 3 * KEEP_LIVE_S
"""A status written longer ago than this is not shown as live: no process runs that link now."""


class LinkStatus(msgspec.Struct, kw_only=True):
    """What the sending end of one link is doing now (in memory, for the API and the demo)."""

    partner: str
    url: str
    connected: bool = False
    sent_batches: int = 0
    sent_items: int = 0
    acked_batches: int = 0
    acked_items: int = 0
    acked_seq: int = 0
    last_error: str | None = None
    last_error_at: dt.datetime | None = None
    connected_at: dt.datetime | None = None
    failed_attempts: int = 0
    """Attempts to reach the partner that failed since the link was last connected."""


class LinkReport(msgspec.Struct, frozen=True, kw_only=True):
    """A link in both directions as the store shows it (works without ``serve`` running)."""

    partner: str
    url: str
    outgoing: OutboxState
    incoming: InboxState
    live: LinkStatus | None = None


_status_encoder = msgspec.json.Encoder()
_status_decoder = msgspec.json.Decoder(LinkStatus)


def encode_live(status: LinkStatus) -> bytes:
    return _status_encoder.encode(status)


def keep_live(tx: Transaction, statuses: Sequence[bytes], now: dt.datetime) -> None:
    """Write the sending links' status (each :func:`encode_live`'s) for the node's other
    processes."""
    at = micros(now)
    tx.outbox.keep_link_status(
        [(_status_decoder.decode(status).partner, status, at) for status in statuses]
    )


def kept_live(tx: Transaction, now: dt.datetime) -> dict[str, LinkStatus]:
    """The sending links' status as the process running them last wrote it, where it did so
    within :data:`LIVE_FOR_S` of ``now``."""
    since = micros(now - dt.timedelta(seconds=LIVE_FOR_S))
    return {
        partner: _status_decoder.decode(status)
        for partner, status in tx.outbox.link_statuses(since)
    }


def link_reports(
    tx: Transaction, urls: Mapping[str, str], live: Mapping[str, LinkStatus] | None = None
) -> list[LinkReport]:
    """Every pinned partner's link (``urls``: party → URL), read from ``tx``, with the live
    status: ``live`` where this process runs the links, else as the store keeps it (written by
    the process of the node that runs them, if one does)."""
    if live is None:
        live = kept_live(tx, dt.datetime.now(dt.UTC))
    return [
        LinkReport(
            partner=party,
            url=url,
            outgoing=state(tx, party),
            incoming=link_state(tx, party),
            live=live.get(party),
        )
        for party, url in sorted(urls.items())
    ]


__all__ = [
    "KEEP_LIVE_S",
    "LIVE_FOR_S",
    "LinkReport",
    "LinkStatus",
    "encode_live",
    "keep_live",
    "kept_live",
    "link_reports",
]
