"""The receiver's side of links: check a batch against the link's state and take it in, once.

A batch that passes :func:`~kuroshio.exchange.batch.open_batch` is taken in by one transaction:
its items stored (provenance: partner and batch, hops as the sender counted them) and entered in
the reciprocity ledger, the link's state advanced, the batch header, leaf hashes and receipt
kept, a ``receive`` audit entry written. A duplicate of the last batch is answered with the same
receipt; anything else out of sequence is refused. Keeping the header and leaves lets any stored
item be proven to its origin later (:func:`item_proof`); an item a partner relays from another
origin is proven by the origin's proof it carries, checked on arrival and kept with it.
"""

from __future__ import annotations

import copy
import datetime as dt
import sqlite3
from typing import Final, Literal

import msgspec

from kuroshio.errors import VerificationError
from kuroshio.exchange.batch import (
    GENESIS_HASH,
    OpenedBatch,
    batch_label,
    open_batch,
)
from kuroshio.exchange.proofs import (
    KeptProof,
    ProofFinder,
    check_relayed,
    content_bytes,
    encode_proof,
    keep_in,
    leaf_tree,
    verify_batch_proof,
    verify_item_proof,
)
from kuroshio.exchange.proofs import create_tables as create_proof_tables
from kuroshio.exchange.receipt import Receipt, sign_receipt
from kuroshio.exchange.wire import (
    MAX_WELCOME_RECEIPTS,
    BatchFrame,
    ItemProof,
    LinkRefused,
    SignedReceipt,
)
from kuroshio.model import Observation, Provenance, canonical_bytes
from kuroshio.node import Node
from kuroshio.partners import Partner
from kuroshio.pki import key_fingerprint
from kuroshio.store.sqlite import PreparedRow, prepare

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


class ReceivedCheck(msgspec.Struct, frozen=True, kw_only=True):
    """How far a received item checks out, and against whose signature."""

    status: Literal["verified", "relayed", "unverified", "failed"]
    detail: str


def create_tables(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        conn.execute(statement)
    create_proof_tables(conn)


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


def _as_received(observations: list[Observation], partner: str, label: str) -> list[Observation]:
    """The batch's items with their provenance as this node keeps it: partner and batch, and
    the hops as the sender counted them (an item relayed from another origin has made at least
    two). Items alike in provenance share one record; each item is a copy, not re-validated."""
    shared: dict[tuple[int, tuple[str, ...], bool], Provenance] = {}
    received: list[Observation] = []
    for observation in observations:
        sent = observation.provenance
        relayed = observation.origin != partner
        key = (sent.hops, sent.transforms, relayed)
        provenance = shared.get(key)
        if provenance is None:
            provenance = shared[key] = Provenance(
                partner=partner,
                batch=label,
                hops=max(sent.hops, 2 if relayed else 1),
                transforms=sent.transforms,
            )
        taken = copy.copy(observation)
        msgspec.structs.force_setattr(taken, "provenance", provenance)
        received.append(taken)
    return received


def _inbox_rows(
    partner: str, seq: int, observations: list[Observation]
) -> list[tuple[str, int, int, str, int, bytes]]:
    """One ``inbox_items`` row per item: where it was in the batch, and its provenance as sent
    (to rebuild the signed bytes later). Equal provenances are encoded once."""
    encoded: dict[Provenance, bytes] = {}
    rows = []
    for position, observation in enumerate(observations):
        sent = observation.provenance
        as_sent = encoded.get(sent)
        if as_sent is None:
            as_sent = encoded[sent] = _provenance_encoder.encode(sent)
        rows.append((partner, seq, position, observation.id, observation.version, as_sent))
    return rows


class CheckedBatch(msgspec.Struct, frozen=True, kw_only=True):
    """A received batch that passed every check needing no inbox state."""

    frame: BatchFrame
    opened: OpenedBatch
    origin_proofs: list[KeptProof]
    received: list[Observation]
    """The items with their provenance as this node keeps them."""
    prepared: list[PreparedRow]
    """The store's rows for ``received``, made outside the transaction."""
    inbox_rows: list[tuple[str, int, int, str, int, bytes]]


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
        return self.take_in(partner, self.open(partner, frame))

    def open(self, partner: Partner, frame: BatchFrame) -> CheckedBatch:
        """Every check of a batch that needs no inbox state (signature, Merkle root, items,
        origin proofs), outside any transaction: a link may open the next batch while the one
        before is taken in. Raises :class:`LinkRefused`."""
        opened = open_batch(
            frame,
            sender=partner.party,
            receiver=self.node.party,
            sender_key=partner.signing_key,
            max_items=self.node.config.exchange.batch_items,
        )
        origin_proofs = self._check_origin_proofs(partner, frame, opened)
        label = batch_label(partner.party, self.node.party, opened.header.seq)
        received = _as_received(opened.observations, partner.party, label)
        return CheckedBatch(
            frame=frame,
            opened=opened,
            origin_proofs=origin_proofs,
            received=received,
            prepared=prepare(received),
            inbox_rows=_inbox_rows(partner.party, opened.header.seq, opened.observations),
        )

    def take_in(self, partner: Partner, checked: CheckedBatch) -> SignedReceipt:
        """Take in a batch :meth:`open` checked, in one transaction, after the sequence and chain
        checks against the link's state; the receipt to send back. Raises :class:`LinkRefused`
        with nothing stored."""
        me = self.node.party
        frame, opened, origin_proofs = checked.frame, checked.opened, checked.origin_proofs
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
            now = dt.datetime.now(dt.UTC)
            # The batch and its origin proofs go in before the items are stored, so that
            # releasing them on (inside store_in) finds the proofs to pass on with them.
            conn.executemany(
                "INSERT INTO inbox_items (partner, seq, position, id, version, sent_provenance)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                checked.inbox_rows,
            )
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
                    b"",
                    b"",
                    _micros(now),
                ),
            )
            keep_in(conn, origin_proofs)
            result, _ = self.node.store_in(
                conn, checked.received, received_from=partner.party, prepared=checked.prepared
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
                "UPDATE inbox_batches SET receipt = ?, receipt_signature = ?"
                " WHERE partner = ? AND seq = ?",
                (signed.receipt, signed.signature, partner.party, header.seq),
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
            if origin_proofs:
                details["origin_proofs"] = len(origin_proofs)
            self.node.audit.append("receive", f"batch {label}", details)
        if result.stored:
            self.node.notify_stored()
        return signed

    def _check_origin_proofs(
        self, partner: Partner, frame: BatchFrame, opened: OpenedBatch
    ) -> list[KeptProof]:
        """Check the origin proofs carried with a batch; the rows to keep. Raises
        :class:`LinkRefused` (``bad_origin_proof``) for the first that does not check out."""
        if not frame.origin_proofs:
            return []
        seq = opened.header.seq
        keys = self.node.pinned_keys()
        seen: set[int] = set()
        rows: list[KeptProof] = []
        for carried in frame.origin_proofs:
            position = carried.position
            if position >= len(opened.observations) or position in seen:
                raise LinkRefused(
                    "bad_origin_proof",
                    f"an origin proof for item {position}, of {len(opened.observations)} items"
                    + (", twice" if position in seen else ""),
                    seq=seq,
                )
            seen.add(position)
            relayed = opened.observations[position]
            where = f"item {position} ({relayed.id} v{relayed.version})"
            if relayed.origin == partner.party:
                raise LinkRefused(
                    "bad_origin_proof",
                    f"{where} comes from its origin {partner.party} and takes no origin proof",
                    seq=seq,
                )
            try:
                verified = check_relayed(carried.proof, relayed, keys.get(relayed.origin))
            except VerificationError as error:
                raise LinkRefused(
                    "bad_origin_proof",
                    f"{where}: the proof from its origin {relayed.origin} does not check out: "
                    f"{error}",
                    seq=seq,
                ) from None
            rows.append(
                (
                    relayed.id,
                    relayed.version,
                    relayed.origin,
                    encode_proof(carried.proof),
                    verified,
                    partner.party,
                    seq,
                )
            )
        return rows

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


def _batch_proof(conn: sqlite3.Connection, observation: Observation) -> ItemProof | None:
    """The proof for a received item from the batch its sending partner signed."""
    row = conn.execute(
        "SELECT i.position, i.sent_provenance, b.header, b.signature, b.leaves"
        " FROM inbox_items i JOIN inbox_batches b ON b.partner = i.partner AND b.seq = i.seq"
        " WHERE i.id = ? AND i.version = ? AND i.partner = ? ORDER BY i.seq DESC LIMIT 1",
        (observation.id, observation.version, observation.provenance.partner),
    ).fetchone()
    if row is None:
        return None
    position, sent_provenance, header, signature, leaves = row
    as_sent = msgspec.structs.replace(
        observation, provenance=_provenance_decoder.decode(sent_provenance)
    )
    return ItemProof(
        item=canonical_bytes(as_sent),
        header=bytes(header),
        signature=bytes(signature),
        proof=leaf_tree(bytes(leaves)).inclusion_proof(int(position)),
    )


def item_proof(conn: sqlite3.Connection, node: Node, obs_id: str, version: int) -> ItemProof | None:
    """The origin's proof for a received item (check it with :func:`verify_item_proof`): from
    the batch the origin sent it in, or the one a relay carried with it. None when this node
    holds no proof signed by the origin (an item a relay transformed, or one sent without)."""
    stored = node.store.get(obs_id, version)
    if stored is None or stored.provenance.partner is None:
        return None
    return ProofFinder(conn).origin_proof(stored)


def verify_received(
    conn: sqlite3.Connection, node: Node, observation: Observation
) -> ReceivedCheck:
    """Check a received item against the signatures this node holds for it: its origin's when
    the origin sent it or a relay passed the origin's proof on, else the relay's batch."""
    sender = observation.provenance.partner
    origin = observation.origin
    batch = _batch_proof(conn, observation) if sender is not None else None
    if sender is None or batch is None:
        return ReceivedCheck(
            status="unverified", detail=f"received from {sender}, but no batch holds this version"
        )
    keys = node.pinned_keys()
    sender_key = keys.get(sender)
    if sender_key is None:
        return ReceivedCheck(
            status="unverified", detail=f"received from {sender}, which is not pinned here"
        )
    proof = batch
    if sender != origin:
        try:
            verify_batch_proof(batch, sender_key)
        except VerificationError as error:
            return ReceivedCheck(
                status="failed", detail=f"{sender}'s batch does not check out: {error}"
            )
        carried = ProofFinder(conn).origin_proof(observation)
        if carried is None:
            changed = any(
                word.startswith(f"{sender}: ") for word in observation.provenance.transforms
            )
            how = "with transforms" if changed else f"without {origin}'s proof"
            return ReceivedCheck(
                status="relayed", detail=f"relayed by {sender} {how}; verified to {sender}"
            )
        origin_key = keys.get(origin)
        if origin_key is None:
            return ReceivedCheck(
                status="relayed",
                detail=f"origin {origin} not pinned here; batch verified to {sender}",
            )
        proof = carried
    else:
        origin_key = sender_key
    try:
        as_signed = verify_item_proof(proof, origin_key)
    except VerificationError as error:
        return ReceivedCheck(status="failed", detail=f"does not check out: {error}")
    if content_bytes(as_signed) != content_bytes(observation):
        return ReceivedCheck(status="failed", detail=f"differs from the item {origin} signed")
    relayed = "" if sender == origin else f"; relayed by {sender}, whose batch checks out too"
    return ReceivedCheck(
        status="verified",
        detail=(
            f"{origin}'s signature over the batch and this item's Merkle inclusion proof checked "
            f"with the pinned key {key_fingerprint(origin_key)}{relayed}"
        ),
    )


__all__ = [
    "Inbox",
    "InboxState",
    "ItemProof",
    "ReceivedCheck",
    "create_tables",
    "issued_receipts",
    "item_proof",
    "link_state",
    "verify_item_proof",
    "verify_received",
]
