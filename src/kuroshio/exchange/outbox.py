"""The sender's side of links: released items queued per partner, sealed into signed batches,
dropped once the partner signs for them.

Released items are queued in the transaction that stores them (see
:mod:`kuroshio.exchange.release`), each with the time before which it may not leave (a delay
the agreement sets) and, for an item relayed unchanged, its origin's proof; a batch of due items
is sealed (signed, chained, numbered) and kept before it is first sent, so a resend after a crash
is byte for byte the same batch, origin proofs included. Items leave the outbox once their
batch's receipt is stored, and enter the reciprocity ledger as given. Every function here works
inside the caller's transaction (:class:`~kuroshio.store.transaction.Transaction`); the rows are
:mod:`kuroshio.store.outbox`'s. None of them talks to the network.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import msgspec

from kuroshio.exchange.batch import GENESIS_HASH, SealedBatch, read_header, seal
from kuroshio.exchange.proofs import decode_proof
from kuroshio.exchange.receipt import Receipt
from kuroshio.exchange.wire import LinkRefused, OriginProof, SignedReceipt
from kuroshio.messages import dialogue
from kuroshio.messages.thread import is_dialogue
from kuroshio.model import Observation, canonical_bytes
from kuroshio.pki import Signer
from kuroshio.policy import reciprocity
from kuroshio.store.outbox import QueuedItem
from kuroshio.store.sql import micros, utc_time
from kuroshio.store.transaction import Transaction


class ReceiptRow(msgspec.Struct, frozen=True, kw_only=True):
    """One sealed batch of a link and, once acked, the partner's receipt for it."""

    seq: int
    count: int
    hash: bytes
    sealed_at: dt.datetime
    receipt: SignedReceipt | None
    acked_at: dt.datetime | None


class OutboxState(msgspec.Struct, frozen=True, kw_only=True):
    """Where one link stands on the sending side."""

    partner: str
    pending: int
    """Items released but not yet in a sealed batch (``held`` of them waiting for a delay)."""
    held: int = 0
    sealed_seq: int
    acked_seq: int
    unacked_items: int
    last_sealed_at: dt.datetime | None
    last_acked_at: dt.datetime | None


_observation_decoder = msgspec.json.Decoder(Observation)


def wire_bytes(observation: Observation) -> bytes:
    """The canonical bytes of an observation as any receiver decodes it.

    A record built in code may hold an ``int`` where the schema says ``float`` (``1000`` for
    ``1000.0``); one decode makes it what the receiver will see, so the bytes signed are the
    bytes a receiver re-encodes.
    """
    return canonical_bytes(_observation_decoder.decode(canonical_bytes(observation)))


def _last_sealed(tx: Transaction, partner: str) -> tuple[int, bytes]:
    return tx.outbox.last_sealed(partner) or (0, GENESIS_HASH)


def pending_count(
    tx: Transaction, partner: str, *, limit: int, now: dt.datetime | None = None
) -> int:
    """Items due for a batch at ``now`` (default: the current time), counted up to ``limit``.
    Items held by a delay are not due until their ``not_before``."""
    return tx.outbox.due_count(partner, micros(now or dt.datetime.now(dt.UTC)), limit)


def due_or_next(
    tx: Transaction, partner: str, *, limit: int, now: dt.datetime | None = None
) -> tuple[int, dt.datetime | None]:
    """:func:`pending_count` at ``now`` and, when nothing is due, when the first item held by a
    delay falls due (None: none is held)."""
    now = now or dt.datetime.now(dt.UTC)
    due = pending_count(tx, partner, limit=limit, now=now)
    if due:
        return due, None
    held = tx.outbox.first_held(partner, micros(now))
    return 0, None if held is None else utc_time(held)


class Lapsed(msgspec.Struct, frozen=True, kw_only=True):
    """An item that waited in the outbox past the agreement it was released under."""

    row: int
    id: str
    version: int
    agreement: str | None
    """Digest of the agreement it was released under (None: queued before they were kept)."""


def withdraw_lapsed(
    tx: Transaction,
    partner: str,
    in_force: str | None,
    now: dt.datetime,
    civil: str | None = None,
) -> list[Lapsed]:
    """Take out of ``partner``'s outbox every item due at ``now`` that was released under
    another agreement than the one in force (``in_force``, its digest; None: none is); the items
    taken out. Nothing leaves under an agreement that expired or was superseded while the item
    waited (a delay, a partner unreachable). Incidents travel under the ``civil`` agreement
    in force (its digest), which keeps them as the one in force keeps the rest."""
    rows = tx.outbox.lapsed(partner, micros(now), in_force, civil)
    if rows:
        tx.outbox.withdraw([row for row, _, _, _ in rows])
    return [
        Lapsed(row=row, id=obs_id, version=version, agreement=agreement)
        for row, obs_id, version, agreement in rows
    ]


def seal_next(
    tx: Transaction,
    partner: str,
    *,
    signer: Signer,
    sender: str,
    max_items: int,
    max_bytes: int,
    now: dt.datetime,
) -> SealedBatch | None:
    """Seal the next batch of items due at ``now`` (at most ``max_items`` and about
    ``max_bytes``), in release order; items still held by a delay stay for a later batch."""
    tx.outbox.claim(partner)
    seq, prev_hash = _last_sealed(tx, partner)
    at_us = micros(now)
    rows = tx.outbox.due(partner, at_us, max_items)
    if not rows:
        return None
    items: list[bytes] = []
    size = 0
    # A batch carries observations or dialogue items, never both: it ends where the kind changes.
    dialogue = is_dialogue(rows[0][1])
    for _, item, proof in rows:
        if is_dialogue(item) != dialogue:
            break
        # An origin proof rides in the same frame, so it counts against the same bound.
        length = len(item) + (len(proof) if proof is not None else 0)
        if items and size + length > max_bytes:
            break
        items.append(item)
        size += length
    taken = rows[: len(items)]
    sealed = seal(
        signer,
        sender=sender,
        receiver=partner,
        seq=seq + 1,
        prev_hash=prev_hash,
        items=items,
        sealed_at=now,
        origin_proofs=_origin_proofs(proof for _, _, proof in taken),
    )
    tx.outbox.seal(
        partner,
        sealed.header.seq,
        at_us=at_us,
        first_row=taken[0][0],
        last_row=taken[-1][0],
        count=len(items),
        header=sealed.header_bytes,
        signature=sealed.signature,
        digest=sealed.hash,
    )
    return sealed


def _origin_proofs(proofs: Iterable[bytes | None]) -> list[OriginProof]:
    return [
        OriginProof(position=position, proof=decode_proof(proof))
        for position, proof in enumerate(proofs)
        if proof is not None
    ]


def sealed_batch(tx: Transaction, partner: str, seq: int) -> SealedBatch | None:
    """A batch sealed earlier and not yet acked, rebuilt for resending (None otherwise)."""
    row = tx.outbox.unacked(partner, seq)
    if row is None:
        return None
    count, header_bytes, signature, digest = row
    rows = tx.outbox.batch_items(partner, seq)
    if len(rows) != count:
        raise LinkRefused(
            "diverged", f"batch {seq} to {partner} lost items from the outbox", seq=seq
        )
    return SealedBatch(
        header=read_header(header_bytes),
        header_bytes=header_bytes,
        signature=signature,
        hash=digest,
        items=[item for item, _ in rows],
        origin_proofs=_origin_proofs(proof for _, proof in rows),
    )


def sealed_seq(tx: Transaction, partner: str) -> int:
    return _last_sealed(tx, partner)[0]


def acked_seq(tx: Transaction, partner: str) -> int:
    """The highest seq whose receipt is stored (receipts arrive in order)."""
    return tx.outbox.acked_seq(partner)


def record_receipt(
    tx: Transaction,
    partner: str,
    receipt: Receipt,
    signed: SignedReceipt,
    *,
    now: dt.datetime,
) -> bool:
    """Store a verified receipt, mark its batch acked, record its items in the reciprocity
    ledger as given (at the partner's time of receipt) and drop them from the outbox.

    Returns False for a receipt already stored; raises :class:`LinkRefused` (``diverged``) for a
    receipt naming a batch this node never sealed.
    """
    row = tx.outbox.sealed(partner, receipt.seq)
    if row is None or row[0] != receipt.batch_hash or row[1] != receipt.count:
        raise LinkRefused(
            "diverged",
            f"receipt for batch {receipt.seq} does not match any batch sealed for {partner}",
            seq=receipt.seq,
        )
    if row[2]:
        return False
    # Observations queued with their ledger fields are entered as given in one statement;
    # the rest are read back: dialogue items (a batch carries one kind or the other), and
    # observations queued before the outbox kept those fields.
    unlabelled = tx.outbox.unlabelled_items(partner, receipt.seq)
    if unlabelled and is_dialogue(unlabelled[0]):
        dialogue.delivered(tx, unlabelled, now)
    else:
        tx.outbox.give(partner, receipt.seq, micros(receipt.received_at))
        if unlabelled:
            tx.ledger.record(
                reciprocity.given_ledger_rows(unlabelled, partner, receipt.received_at)
            )
        # Items passed on with their origin's proof are kept there under the origin's id.
        whole = tx.outbox.passed_whole(partner, receipt.seq)
        if whole:
            tx.ledger.given_whole(partner, whole)
    tx.outbox.acknowledge(partner, receipt.seq, signed.receipt, signed.signature, micros(now))
    return True


def receipts(tx: Transaction, partner: str, *, limit: int) -> list[ReceiptRow]:
    """The newest ``limit`` sealed batches of a link, oldest first, with the partner's receipt
    where it came."""
    return [
        ReceiptRow(
            seq=seq,
            count=count,
            hash=digest,
            sealed_at=utc_time(sealed_at),
            receipt=(
                SignedReceipt(receipt=receipt, signature=signature)
                if receipt is not None and signature is not None
                else None
            ),
            acked_at=None if acked_at is None else utc_time(acked_at),
        )
        for seq, count, digest, sealed_at, receipt, signature, acked_at in tx.outbox.receipts(
            partner, limit
        )
    ]


def state(tx: Transaction, partner: str, *, now: dt.datetime | None = None) -> OutboxState:
    pending, held, unacked, sealed_at, acked_at = tx.outbox.counts(
        partner, micros(now or dt.datetime.now(dt.UTC))
    )
    return OutboxState(
        partner=partner,
        pending=pending,
        held=held,
        sealed_seq=sealed_seq(tx, partner),
        acked_seq=acked_seq(tx, partner),
        unacked_items=unacked,
        last_sealed_at=None if sealed_at is None else utc_time(sealed_at),
        last_acked_at=None if acked_at is None else utc_time(acked_at),
    )


__all__ = [
    "Lapsed",
    "OutboxState",
    "QueuedItem",
    "ReceiptRow",
    "acked_seq",
    "pending_count",
    "receipts",
    "record_receipt",
    "seal_next",
    "sealed_batch",
    "sealed_seq",
    "state",
    "wire_bytes",
    "withdraw_lapsed",
]
