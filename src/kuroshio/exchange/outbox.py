"""The sender's side of links in SQLite: per-partner outbox, sealed batches and their receipts.

Released items are written to the outbox in the transaction that stores them (see
:mod:`kuroshio.exchange.release`), each with the time before which it may not leave (a delay
the agreement sets) and, for an item relayed unchanged, its origin's proof; a batch of due items
is sealed (signed, chained, numbered) and kept before it is first sent, so a resend after a crash
is byte for byte the same batch, origin proofs included. Items leave the
outbox once their batch's receipt is stored, and enter the reciprocity ledger as given. Every
function here runs inside the caller's transaction and does not commit; none of them talks to
the network.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Final, TypeAlias

import msgspec

from kuroshio.exchange.batch import GENESIS_HASH, SealedBatch, read_header, seal
from kuroshio.exchange.proofs import decode_proof
from kuroshio.exchange.receipt import Receipt
from kuroshio.exchange.wire import LinkRefused, OriginProof, SignedReceipt
from kuroshio.model import Observation, canonical_bytes
from kuroshio.pki import Signer
from kuroshio.policy import ledger_store

SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS outbox (
        row INTEGER PRIMARY KEY AUTOINCREMENT,
        partner TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        item BLOB NOT NULL,
        not_before INTEGER,
        seq INTEGER,
        origin_proof BLOB
    )""",
    """CREATE TABLE IF NOT EXISTS sent_batches (
        partner TEXT NOT NULL,
        seq INTEGER NOT NULL,
        first_row INTEGER NOT NULL,
        last_row INTEGER NOT NULL,
        count INTEGER NOT NULL,
        header BLOB NOT NULL,
        signature BLOB NOT NULL,
        hash BLOB NOT NULL,
        sealed_at INTEGER NOT NULL,
        receipt BLOB,
        receipt_signature BLOB,
        acked_at INTEGER,
        PRIMARY KEY (partner, seq)
    ) WITHOUT ROWID""",
)
_INDEXES: Final = (
    "DROP INDEX IF EXISTS outbox_by_partner",
    # Waiting items of a link in release order; sealed items by their batch.
    "CREATE INDEX IF NOT EXISTS outbox_by_batch ON outbox (partner, seq, row)",
)
QueuedItem: TypeAlias = tuple[str, str, int, bytes, int | None, bytes | None]
"""One released item for the outbox: partner, id, version, bytes as sent, not before (µs), and
the origin's proof (:func:`kuroshio.exchange.proofs.encode_proof`) for an item relayed as is."""


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


def create_tables(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        conn.execute(statement)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(outbox)")}
    if "seq" not in columns:
        # An outbox from before delays: give its sealed items their batch, in place.
        conn.execute("ALTER TABLE outbox ADD COLUMN not_before INTEGER")
        conn.execute("ALTER TABLE outbox ADD COLUMN seq INTEGER")
        conn.execute(
            "UPDATE outbox SET seq = (SELECT b.seq FROM sent_batches b WHERE b.partner ="
            " outbox.partner AND outbox.row BETWEEN b.first_row AND b.last_row)"
        )
    if "origin_proof" not in columns:
        # An outbox from before relayed items carried their origin's proof.
        conn.execute("ALTER TABLE outbox ADD COLUMN origin_proof BLOB")
    for statement in _INDEXES:
        conn.execute(statement)
    ledger_store.create_tables(conn)


def _micros(at: dt.datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def _time(micros: int | None) -> dt.datetime | None:
    if micros is None:
        return None
    return dt.datetime.fromtimestamp(micros / 1_000_000, dt.UTC)


def queue_in(conn: sqlite3.Connection, items: Sequence[QueuedItem]) -> None:
    """Put released items in their partners' outboxes (inside the caller's transaction)."""
    conn.executemany(
        "INSERT INTO outbox (partner, id, version, item, not_before, origin_proof)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        items,
    )


def _last_sealed(conn: sqlite3.Connection, partner: str) -> tuple[int, bytes]:
    row = conn.execute(
        "SELECT seq, hash FROM sent_batches WHERE partner = ? ORDER BY seq DESC LIMIT 1",
        (partner,),
    ).fetchone()
    if row is None:
        return 0, GENESIS_HASH
    return int(row[0]), bytes(row[1])


_DUE: Final = "partner = ? AND seq IS NULL AND (not_before IS NULL OR not_before <= ?)"


def pending_count(
    conn: sqlite3.Connection, partner: str, *, limit: int, now: dt.datetime | None = None
) -> int:
    """Items due for a batch at ``now`` (default: the current time), counted up to ``limit``.
    Items held by a delay are not due until their ``not_before``."""
    at = _micros(now or dt.datetime.now(dt.UTC))
    row = conn.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM outbox WHERE {_DUE} LIMIT ?)",
        (partner, at, limit),
    ).fetchone()
    return int(row[0])


def seal_next(
    conn: sqlite3.Connection,
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
    seq, prev_hash = _last_sealed(conn, partner)
    rows = conn.execute(
        f"SELECT row, item, origin_proof FROM outbox WHERE {_DUE} ORDER BY row LIMIT ?",
        (partner, _micros(now), max_items),
    ).fetchall()
    if not rows:
        return None
    items: list[bytes] = []
    size = 0
    for _, item, proof in rows:
        # An origin proof rides in the same frame, so it counts against the same bound.
        length = len(item) + (len(proof) if proof is not None else 0)
        if items and size + length > max_bytes:
            break
        items.append(bytes(item))
        size += length
    taken = [int(row[0]) for row in rows[: len(items)]]
    sealed = seal(
        signer,
        sender=sender,
        receiver=partner,
        seq=seq + 1,
        prev_hash=prev_hash,
        items=items,
        sealed_at=now,
        origin_proofs=_origin_proofs(row[2] for row in rows[: len(items)]),
    )
    # The rows taken are exactly the due rows up to the last one taken (same condition, same
    # order), so one ranged statement tags them all with their batch.
    conn.execute(
        f"UPDATE outbox SET seq = ? WHERE {_DUE} AND row <= ?",
        (sealed.header.seq, partner, _micros(now), taken[-1]),
    )
    conn.execute(
        "INSERT INTO sent_batches (partner, seq, first_row, last_row, count, header, signature,"
        " hash, sealed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            partner,
            sealed.header.seq,
            taken[0],
            taken[-1],
            len(items),
            sealed.header_bytes,
            sealed.signature,
            sealed.hash,
            _micros(now),
        ),
    )
    return sealed


def _origin_proofs(proofs: Iterable[bytes | None]) -> list[OriginProof]:
    return [
        OriginProof(position=position, proof=decode_proof(bytes(proof)))
        for position, proof in enumerate(proofs)
        if proof is not None
    ]


def _batch_items(conn: sqlite3.Connection, partner: str, seq: int) -> list[bytes]:
    return [
        bytes(item)
        for (item,) in conn.execute(
            "SELECT item FROM outbox WHERE partner = ? AND seq = ? ORDER BY row", (partner, seq)
        )
    ]


def sealed_batch(conn: sqlite3.Connection, partner: str, seq: int) -> SealedBatch | None:
    """A batch sealed earlier and not yet acked, rebuilt for resending (None otherwise)."""
    row = conn.execute(
        "SELECT count, header, signature, hash FROM sent_batches"
        " WHERE partner = ? AND seq = ? AND acked_at IS NULL",
        (partner, seq),
    ).fetchone()
    if row is None:
        return None
    count, header_bytes, signature, digest = row
    rows = conn.execute(
        "SELECT item, origin_proof FROM outbox WHERE partner = ? AND seq = ? ORDER BY row",
        (partner, seq),
    ).fetchall()
    if len(rows) != count:
        raise LinkRefused(
            "diverged", f"batch {seq} to {partner} lost items from the outbox", seq=seq
        )
    return SealedBatch(
        header=read_header(bytes(header_bytes)),
        header_bytes=bytes(header_bytes),
        signature=bytes(signature),
        hash=bytes(digest),
        items=[bytes(item) for item, _ in rows],
        origin_proofs=_origin_proofs(proof for _, proof in rows),
    )


def sealed_seq(conn: sqlite3.Connection, partner: str) -> int:
    return _last_sealed(conn, partner)[0]


def acked_seq(conn: sqlite3.Connection, partner: str) -> int:
    """The highest seq whose receipt is stored (receipts arrive in order)."""
    row = conn.execute(
        "SELECT max(seq) FROM sent_batches WHERE partner = ? AND acked_at IS NOT NULL", (partner,)
    ).fetchone()
    return int(row[0] or 0)


def record_receipt(
    conn: sqlite3.Connection,
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
    row = conn.execute(
        "SELECT hash, count, acked_at FROM sent_batches WHERE partner = ? AND seq = ?",
        (partner, receipt.seq),
    ).fetchone()
    if row is None or bytes(row[0]) != receipt.batch_hash or int(row[1]) != receipt.count:
        raise LinkRefused(
            "diverged",
            f"receipt for batch {receipt.seq} does not match any batch sealed for {partner}",
            seq=receipt.seq,
        )
    if row[2] is not None:
        return False
    conn.execute(
        "UPDATE sent_batches SET receipt = ?, receipt_signature = ?, acked_at = ?"
        " WHERE partner = ? AND seq = ?",
        (signed.receipt, signed.signature, _micros(now), partner, receipt.seq),
    )
    ledger_store.record(
        conn,
        ledger_store.given_entries(
            _batch_items(conn, partner, receipt.seq), partner, receipt.received_at
        ),
    )
    conn.execute("DELETE FROM outbox WHERE partner = ? AND seq = ?", (partner, receipt.seq))
    return True


def receipts(conn: sqlite3.Connection, partner: str, *, limit: int = 1_000_000) -> list[ReceiptRow]:
    """Sealed batches of a link, oldest first, with the partner's receipt where it came."""
    result: list[ReceiptRow] = []
    for seq, count, digest, sealed_at, receipt, signature, acked_at in conn.execute(
        "SELECT seq, count, hash, sealed_at, receipt, receipt_signature, acked_at"
        " FROM sent_batches WHERE partner = ? ORDER BY seq LIMIT ?",
        (partner, limit),
    ):
        signed = (
            SignedReceipt(receipt=bytes(receipt), signature=bytes(signature))
            if receipt is not None
            else None
        )
        sealed = _time(sealed_at)
        assert sealed is not None
        result.append(
            ReceiptRow(
                seq=seq,
                count=count,
                hash=bytes(digest),
                sealed_at=sealed,
                receipt=signed,
                acked_at=_time(acked_at),
            )
        )
    return result


def state(conn: sqlite3.Connection, partner: str, *, now: dt.datetime | None = None) -> OutboxState:
    sealed, _ = _last_sealed(conn, partner)
    pending, held = conn.execute(
        "SELECT count(*), coalesce(sum(not_before > ?), 0) FROM outbox"
        " WHERE partner = ? AND seq IS NULL",
        (_micros(now or dt.datetime.now(dt.UTC)), partner),
    ).fetchone()
    acked = acked_seq(conn, partner)
    unacked = conn.execute(
        "SELECT coalesce(sum(count), 0), max(sealed_at) FROM sent_batches WHERE partner = ?"
        " AND acked_at IS NULL",
        (partner,),
    ).fetchone()
    times = conn.execute(
        "SELECT max(sealed_at), max(acked_at) FROM sent_batches WHERE partner = ?", (partner,)
    ).fetchone()
    return OutboxState(
        partner=partner,
        pending=int(pending),
        held=int(held),
        sealed_seq=sealed,
        acked_seq=acked,
        unacked_items=int(unacked[0]),
        last_sealed_at=_time(times[0]),
        last_acked_at=_time(times[1]),
    )
