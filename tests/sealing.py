"""A node's next batch for a partner, sealed and signed as its sending link would seal it."""

from __future__ import annotations

import datetime as dt

from kuroshio.exchange import outbox
from kuroshio.exchange.batch import SealedBatch
from kuroshio.node import Node


def sealed_batch(sender: Node, partner: str) -> SealedBatch:
    """Seal what ``sender``'s outbox holds for ``partner`` (up to 1 000 items); there must be
    something to seal."""
    with sender.store.transaction() as tx:
        sealed = outbox.seal_next(
            tx,
            partner,
            signer=sender.identity,
            sender=sender.party,
            max_items=1000,
            max_bytes=8 * 1024 * 1024,
            now=dt.datetime.now(dt.UTC),
        )
    assert sealed is not None, f"nothing for {partner} in {sender.party}'s outbox"
    return sealed
