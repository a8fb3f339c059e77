"""The receiving end of links on a node: check a batch against the link's state and take it in,
once.

A batch that passes :meth:`Inbox.open` (signature, Merkle root, items, origin proofs: no link
state needed) is taken in by one transaction (:meth:`Inbox.take_in`): its items stored through
the node (provenance: partner and batch, hops as the sender counted them) and entered in the
reciprocity ledger, the link's position advanced, the batch header, leaf hashes and receipt
kept, a ``receive`` audit entry written. A duplicate of the last batch is answered with the same
receipt; anything else out of sequence is refused. The protocol it applies is
:mod:`kuroshio.exchange.inbox`'s.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import msgspec

from kuroshio.exchange.batch import batch_label, open_batch
from kuroshio.exchange.inbox import (
    MAX_CONFLICTS_LISTED,
    CheckedBatch,
    InboxState,
    as_received,
    check_origin_proofs,
    check_sequence,
    issued_receipts,
    link_state,
    places_apart,
    received_rows,
)
from kuroshio.exchange.receipt import Receipt, sign_receipt
from kuroshio.exchange.wire import BatchFrame, LinkRefused, SignedReceipt
from kuroshio.messages import dialogue
from kuroshio.node import Node
from kuroshio.partners import Partner
from kuroshio.store import AppendResult, Outcome
from kuroshio.store.sql import micros
from kuroshio.store.transaction import Transaction

_STORED_BEFORE: Final = (Outcome.UNCHANGED, Outcome.CONFLICT)
"""Outcomes of an item whose version was not stored from its batch."""


class Inbox:
    """Takes in batches for one node; every method opens its own transaction."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def welcome(self, partner: Partner, acked_seq: int) -> tuple[InboxState, list[SignedReceipt]]:
        """The link's state and the receipts issued after the sender's last stored one."""
        with self.node.store.transaction() as tx:
            self._not_revoked(tx, partner)
            state = link_state(tx, partner.party)
            receipts = issued_receipts(tx, partner.party, after_seq=acked_seq)
        return state, receipts

    def _not_revoked(self, tx: Transaction, partner: Partner, seq: int | None = None) -> None:
        reason = self.node.revocation(tx, partner.party, partner.signing_key)
        if reason is not None:
            raise LinkRefused(
                "revoked", f"{partner.party}'s key is revoked on this node: {reason}", seq=seq
            )

    def accept(self, partner: Partner, frame: BatchFrame) -> SignedReceipt:
        """Verify and take in one batch; the receipt to send back.

        Raises :class:`LinkRefused` with nothing stored when any check fails.
        """
        return self.take_in(partner, self.open(partner, frame))

    def open(self, partner: Partner, frame: BatchFrame) -> CheckedBatch:
        """Every check of a batch that needs no inbox state (signature, Merkle root, items,
        origin proofs), outside any transaction: a link may open the next batch while the one
        before is taken in. Raises :class:`LinkRefused`."""
        opened = open_batch(
            frame,
            sender=partner.party,
            receiver=self.node.party,
            sender_key=partner.signing_keys,
            max_items=self.node.config.exchange.batch_items,
        )
        proven = check_origin_proofs(frame, opened, partner.party, self.node.pinned_keys())
        label = batch_label(partner.party, self.node.party, opened.header.seq)
        received = as_received(opened.observations, partner.party, label, frozenset(proven))
        prepared, places = (
            received_rows(
                partner.party, opened.header.seq, frame.items, opened.observations, received
            )
            if opened.observations
            else ([], [])  # a dialogue batch: its items are taken in as they are
        )
        return CheckedBatch(
            frame=frame,
            opened=opened,
            origin_proofs=list(proven.values()),
            received=received,
            prepared=prepared,
            inbox_rows=places,
        )

    def take_in(self, partner: Partner, checked: CheckedBatch) -> SignedReceipt:
        """Take in a batch :meth:`open` checked, in one transaction, after the sequence and chain
        checks against the link's state; the receipt to send back. Raises :class:`LinkRefused`
        with nothing stored."""
        me = self.node.party
        frame, opened, origin_proofs = checked.frame, checked.opened, checked.origin_proofs
        header = opened.header
        label = batch_label(partner.party, me, header.seq)
        with self.node.store.transaction() as tx:
            tx.inbox.claim(partner.party)  # the position read below stays ours until commit
            # A revocation made by any process takes effect here, at the next batch.
            self._not_revoked(tx, partner, header.seq)
            if check_sequence(link_state(tx, partner.party), opened):
                receipt, signature = tx.inbox.receipt(partner.party, header.seq)
                return SignedReceipt(receipt=receipt, signature=signature)
            now = dt.datetime.now(dt.UTC)
            # The batch and its origin proofs go in before the items are stored, so that
            # releasing them on (inside store_in) finds the proofs to pass on with them.
            tx.inbox.keep_batch(
                partner.party,
                header.seq,
                digest=opened.hash,
                header=frame.header,
                signature=frame.signature,
                leaves=opened.leaves,
                received_at_us=micros(now),
            )
            tx.inbox.keep_proofs(origin_proofs)
            if opened.dialogue:
                taken, kept = dialogue.take_in(
                    tx, opened.dialogue, partner.party, now, audit=self.node.audit, batch=label
                )
                result = AppendResult(inserted=taken, unchanged=kept)
            else:
                result, _ = self.node.store_in(
                    tx,
                    checked.received,
                    received_from=partner.party,
                    prepared=checked.prepared,
                    sent_in=checked.inbox_rows,
                )
                # Each version stored keeps its place in its history row; the others here.
                tx.inbox.keep_places(
                    places_apart(
                        [
                            place
                            for place, outcome in zip(
                                checked.inbox_rows, result.outcomes, strict=True
                            )
                            if outcome in _STORED_BEFORE
                        ],
                        checked.received,
                    )
                )
            details: dict[str, object] = {
                "partner": partner.party,
                "seq": header.seq,
                "hash": opened.hash.hex(),
                "count": header.count,
                "stored": result.stored,
                "unchanged": result.unchanged,
            }
            if result.conflicts:
                details["conflicts"] = [
                    f"{obs_id} v{version}"
                    for obs_id, version, _ in result.conflicts[:MAX_CONFLICTS_LISTED]
                ]
            if origin_proofs:
                details["origin_proofs"] = len(origin_proofs)
            self.node.audit.append(tx, "receive", f"batch {label}", details)
            # The receipt carries the log's head with this entry in it.
            head = self.node.audit.witness(tx, partner.party, now)
            receipt_record = Receipt(
                sender=partner.party,
                receiver=me,
                seq=header.seq,
                batch_hash=opened.hash,
                count=header.count,
                stored=result.stored,
                unchanged=result.unchanged,
                conflicts=len(result.conflicts),
                received_at=now,
                audit_size=head.size,
                audit_root=head.root,
                audit_since=msgspec.UNSET if head.since is None else head.since,
                audit_proof=msgspec.UNSET if head.since is None else head.proof,
            )
            signed = sign_receipt(self.node.identity, receipt_record)
            tx.inbox.give_receipt(
                partner.party,
                header.seq,
                opened.hash,
                signed.receipt,
                signed.signature,
                micros(now),
            )
        if result.stored:
            self.node.notify_stored()
        return signed

    def refuse(self, party: str | None, peer: str, refused: LinkRefused) -> None:
        """Audit a refusal (``verify_failure``) in its own transaction."""
        subject = f"link {party}>{self.node.party}" if party else f"peer {peer}"
        details: dict[str, object] = {"code": refused.code, "reason": refused.reason[:1_000]}
        if party:
            details["partner"] = party
        details["peer"] = peer
        if refused.seq is not None:
            details["seq"] = refused.seq
        with self.node.store.transaction() as tx:
            self.node.audit.append(tx, "verify_failure", subject, details)


__all__ = ["Inbox"]
