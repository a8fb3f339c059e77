"""The receiver's side of links: check a batch against the link's state and take it in, once.

A batch that passes :func:`~kuroshio.exchange.batch.open_batch` is taken in by one transaction:
its items stored (provenance: partner and batch, hops as the sender counted them) and entered in
the reciprocity ledger, the link's state advanced, the batch header, leaf hashes and receipt
kept, a ``receive`` audit entry written. A duplicate of the last batch is answered with the same
receipt; anything else out of sequence is refused. Keeping the header and leaves lets any stored
item be proven to its origin later (:func:`item_proof`).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Final

import msgspec

from kuroshio.exchange.batch import (
    GENESIS_HASH,
    SIGNATURE_CONTEXT,
    OpenedBatch,
    batch_label,
    open_batch,
    read_header,
)
from kuroshio.exchange.merkle import (
    HASH_SIZE,
    InclusionError,
    InclusionProof,
    MerkleTree,
    check_inclusion,
)
from kuroshio.exchange.receipt import Receipt, sign_receipt
from kuroshio.exchange.wire import MAX_WELCOME_RECEIPTS, BatchFrame, LinkRefused, SignedReceipt
from kuroshio.model import Observation, Provenance, canonical_bytes
from kuroshio.node import Node
from kuroshio.partners import Partner
from kuroshio.pki import VerificationError, verify

SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS inbox_links (
        partner TEXT PRIMARY KEY,
        last_seq INTEGER NOT NULL,
        last_hash BLOB NOT NULL,
        updated_at INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS inbox_batches (
        partner TEXT NOT NULL,
        seq INTEGER NOT NULL,
        hash BLOB NOT NULL,
        header BLOB NOT NULL,
        signature BLOB NOT NULL,
        leaves BLOB NOT NULL,
        receipt BLOB NOT NULL,
        receipt_signature BLOB NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (partner, seq)
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS inbox_items (
        partner TEXT NOT NULL,
        seq INTEGER NOT NULL,
        position INTEGER NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        sent_provenance BLOB NOT NULL,
        PRIMARY KEY (partner, seq, position)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS inbox_items_by_id ON inbox_items (id, version)",
)

_provenance_encoder = msgspec.json.Encoder(order="sorted")
_provenance_decoder = msgspec.json.Decoder(Provenance)


class InboxState(msgspec.Struct, frozen=True, kw_only=True):
    """Where one link stands on the receiving side."""

    partner: str
    last_seq: int
    last_hash: bytes
    updated_at: dt.datetime | None


class ItemProof(msgspec.Struct, frozen=True, kw_only=True):
    """One received item as its origin signed it: the bytes, the signed header, the path."""

    item: bytes
    header: bytes
    signature: bytes
    proof: InclusionProof


def create_tables(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        conn.execute(statement)


def _micros(at: dt.datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def link_state(conn: sqlite3.Connection, partner: str) -> InboxState:
    row = conn.execute(
        "SELECT last_seq, last_hash, updated_at FROM inbox_links WHERE partner = ?", (partner,)
    ).fetchone()
    if row is None:
        return InboxState(partner=partner, last_seq=0, last_hash=GENESIS_HASH, updated_at=None)
    return InboxState(
        partner=partner,
        last_seq=int(row[0]),
        last_hash=bytes(row[1]),
        updated_at=dt.datetime.fromtimestamp(row[2] / 1_000_000, dt.UTC),
    )


def issued_receipts(
    conn: sqlite3.Connection, partner: str, *, after_seq: int, limit: int = MAX_WELCOME_RECEIPTS
) -> list[SignedReceipt]:
    return [
        SignedReceipt(receipt=bytes(receipt), signature=bytes(signature))
        for receipt, signature in conn.execute(
            "SELECT receipt, receipt_signature FROM inbox_batches WHERE partner = ? AND seq > ?"
            " ORDER BY seq LIMIT ?",
            (partner, after_seq, limit),
        )
    ]


def _check_sequence(state: InboxState, opened: OpenedBatch) -> bool:
    """True for a duplicate of the last batch; raises :class:`LinkRefused` when out of sequence."""
    header = opened.header
    if header.seq == state.last_seq and opened.hash == state.last_hash:
        return True
    if header.seq <= state.last_seq:
        raise LinkRefused(
            "replayed",
            f"batch {header.seq} is older than the last one received ({state.last_seq})",
            seq=header.seq,
        )
    if header.seq != state.last_seq + 1:
        raise LinkRefused(
            "out_of_order",
            f"expected batch {state.last_seq + 1}, got {header.seq}",
            seq=header.seq,
        )
    if header.prev_hash != state.last_hash:
        raise LinkRefused(
            "chain_broken",
            f"prev_hash does not name batch {state.last_seq} as received",
            seq=header.seq,
        )
    return False


class Inbox:
    """Takes in batches for one node; every method opens its own transaction."""

    def __init__(self, node: Node) -> None:
        self.node = node
        with node.store.transaction() as conn:
            create_tables(conn)

    def welcome(self, partner: Partner, acked_seq: int) -> tuple[InboxState, list[SignedReceipt]]:
        """The link's state and the receipts issued after the sender's last stored one."""
        with self.node.store.transaction() as conn:
            state = link_state(conn, partner.party)
            receipts = issued_receipts(conn, partner.party, after_seq=acked_seq)
        return state, receipts

    def accept(self, partner: Partner, frame: BatchFrame) -> SignedReceipt:
        """Verify and take in one batch; the receipt to send back.

        Raises :class:`LinkRefused` with nothing stored when any check fails.
        """
        me = self.node.party
        opened = open_batch(
            frame,
            sender=partner.party,
            receiver=me,
            sender_key=partner.signing_key,
            max_items=self.node.config.exchange.batch_items,
        )
        header = opened.header
        label = batch_label(partner.party, me, header.seq)
        with self.node.store.transaction() as conn:
            state = link_state(conn, partner.party)
            if _check_sequence(state, opened):
                row = conn.execute(
                    "SELECT receipt, receipt_signature FROM inbox_batches"
                    " WHERE partner = ? AND seq = ?",
                    (partner.party, header.seq),
                ).fetchone()
                return SignedReceipt(receipt=bytes(row[0]), signature=bytes(row[1]))
            received = [
                msgspec.structs.replace(
                    observation,
                    provenance=Provenance(
                        partner=partner.party,
                        batch=label,
                        # The sender counted its hop when it released the item; an item
                        # relayed from another origin has made at least two.
                        hops=max(
                            observation.provenance.hops,
                            1 if observation.origin == partner.party else 2,
                        ),
                        transforms=observation.provenance.transforms,
                    ),
                )
                for observation in opened.observations
            ]
            result, _ = self.node.store_in(conn, received, received_from=partner.party)
            now = dt.datetime.now(dt.UTC)
            conn.executemany(
                "INSERT INTO inbox_items (partner, seq, position, id, version, sent_provenance)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        partner.party,
                        header.seq,
                        position,
                        observation.id,
                        observation.version,
                        _provenance_encoder.encode(observation.provenance),
                    )
                    for position, observation in enumerate(opened.observations)
                ],
            )
            receipt = Receipt(
                sender=partner.party,
                receiver=me,
                seq=header.seq,
                batch_hash=opened.hash,
                count=header.count,
                stored=result.stored,
                unchanged=result.unchanged,
                conflicts=len(result.conflicts),
                received_at=now,
            )
            signed = sign_receipt(self.node.identity, receipt)
            conn.execute(
                "INSERT INTO inbox_batches (partner, seq, hash, header, signature, leaves,"
                " receipt, receipt_signature, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    partner.party,
                    header.seq,
                    opened.hash,
                    frame.header,
                    frame.signature,
                    opened.leaves,
                    signed.receipt,
                    signed.signature,
                    _micros(now),
                ),
            )
            conn.execute(
                "INSERT OR REPLACE INTO inbox_links (partner, last_seq, last_hash, updated_at)"
                " VALUES (?, ?, ?, ?)",
                (partner.party, header.seq, opened.hash, _micros(now)),
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
                    f"{obs_id} v{version}" for obs_id, version, _ in result.conflicts[:20]
                ]
            self.node.audit.append("receive", f"batch {label}", details)
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
        with self.node.store.transaction():
            self.node.audit.append("verify_failure", subject, details)


def item_proof(conn: sqlite3.Connection, node: Node, obs_id: str, version: int) -> ItemProof | None:
    """The origin's proof for a received item: its bytes as sent, the signed header, the path."""
    row = conn.execute(
        "SELECT i.partner, i.seq, i.position, i.sent_provenance, b.header, b.signature, b.leaves"
        " FROM inbox_items i JOIN inbox_batches b ON b.partner = i.partner AND b.seq = i.seq"
        " WHERE i.id = ? AND i.version = ? ORDER BY i.seq DESC LIMIT 1",
        (obs_id, version),
    ).fetchone()
    if row is None:
        return None
    _, _, position, sent_provenance, header, signature, leaves = row
    stored = node.store.get(obs_id, version)
    if stored is None:
        return None
    as_sent = msgspec.structs.replace(
        stored, provenance=_provenance_decoder.decode(sent_provenance)
    )
    leaf_list = [bytes(leaves[at : at + HASH_SIZE]) for at in range(0, len(leaves), HASH_SIZE)]
    return ItemProof(
        item=canonical_bytes(as_sent),
        header=bytes(header),
        signature=bytes(signature),
        proof=MerkleTree.from_leaf_hashes(leaf_list).inclusion_proof(position),
    )


def verify_item_proof(proof: ItemProof, origin_key: bytes) -> Observation:
    """Check an item against its origin's signature; the item as the origin sent it.

    Raises :class:`~kuroshio.pki.VerificationError` saying why it does not check out.
    """
    try:
        verify(origin_key, proof.signature, SIGNATURE_CONTEXT + proof.header)
    except VerificationError as error:
        raise VerificationError(error.reason, "batch signature") from None
    try:
        header = read_header(proof.header)
    except LinkRefused as error:
        raise VerificationError(error.reason, "batch header") from None
    try:
        check_inclusion(proof.item, proof.proof, header.root)
    except InclusionError as error:
        raise VerificationError(error.reason, "inclusion proof") from None
    observation = msgspec.json.decode(proof.item, type=Observation)
    if observation.origin != header.sender:
        raise VerificationError(f"item from {observation.origin}, batch from {header.sender}")
    return observation
