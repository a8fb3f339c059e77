"""Where each link stands: the sending end's live state and both directions as the store holds
them, for the operator API, ``kuroshio link status`` and the demo.

:class:`LinkStatus` is kept in memory by a running link; :func:`link_reports` reads the rest
from one store snapshot, so it works whether or not the node is serving. It changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import msgspec

from kuroshio.exchange.inbox import InboxState, link_state
from kuroshio.exchange.outbox import OutboxState, state
from kuroshio.store.transaction import Transaction


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


def link_reports(
    tx: Transaction, urls: Mapping[str, str], live: Mapping[str, LinkStatus] | None = None
) -> list[LinkReport]:
    """Every pinned partner's link (``urls``: party → URL), read from ``tx`` and, when given,
    the live status."""
    return [
        LinkReport(
            partner=party,
            url=url,
            outgoing=state(tx, party),
            incoming=link_state(tx, party),
            live=(live or {}).get(party),
        )
        for party, url in sorted(urls.items())
    ]


__all__ = ["LinkReport", "LinkStatus", "link_reports"]
