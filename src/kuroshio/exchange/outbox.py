"""The sender's side of links in SQLite: per-partner outbox, sealed batches and their receipts.

Released items are written to the outbox in the transaction that stores them (see
:meth:`kuroshio.node.Node.store_in`); a batch is sealed (signed, chained, numbered) and kept
before it is first sent, so a resend after a crash is byte for byte the same batch. Items leave
the outbox once their batch's receipt is stored. Every function here runs inside the caller's
transaction and does not commit; none of them talks to the network.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Final

import msgspec

from kuroshio.exchange.batch import GENESIS_HASH, SealedBatch, read_header, seal
from kuroshio.exchange.receipt import Receipt
from kuroshio.exchange.release import decide
from kuroshio.exchange.wire import LinkRefused, SignedReceipt
from kuroshio.model import Observation, canonical_bytes
from kuroshio.partners import Partner
from kuroshio.pki import Signer

SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS outbox (
        row INTEGER PRIMARY KEY AUTOINCREMENT,
        partner TEXT NOT NULL,
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        item BLOB NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS outbox_by_partner ON outbox (partner, row)",
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


class ReleaseSummary(msgspec.Struct, kw_only=True):
    """What one store call released: items per partner, and withheld items per partner and code."""

    released: dict[str, int] = msgspec.field(default_factory=dict)
    withheld: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)


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
    """Items released but not yet in a sealed batch."""
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


def _micros(at: dt.datetime) -> int:
    return int(at.timestamp() * 1_000_000)


def _time(micros: int | None) -> dt.datetime | None:
    if micros is None:
        return None
    return dt.datetime.fromtimestamp(micros / 1_000_000, dt.UTC)


def release_in(
    conn: sqlite3.Connection,
    observations: Sequence[Observation],
    partners: Mapping[str, Partner],
    *,
    own_party: str,
) -> ReleaseSummary:
    """Decide each observation for each partner and queue the released ones."""
    summary = ReleaseSummary()
    if not partners or not observations:
        return summary
    rows: list[tuple[str, str, int, bytes]] = []
    encoded: dict[int, bytes] = {}
    for party, partner in partners.items():
        released = 0
        withheld: dict[str, int] = {}
        for position, observation in enumerate(observations):
            decision = decide(observation, partner, own_party=own_party)
            if not decision.release:
                withheld[decision.code] = withheld.get(decision.code, 0) + 1
                continue
            item = encoded.get(position)
            if item is None:
                item = encoded[position] = wire_bytes(observation)
            rows.append((party, observation.id, observation.version, item))
            released += 1
        summary.released[party] = released
        if withheld:
            summary.withheld[party] = withheld
    conn.executemany("INSERT INTO outbox (partner, id, version, item) VALUES (?, ?, ?, ?)", rows)
    return summary


def _last_sealed(conn: sqlite3.Connection, partner: str) -> tuple[int, bytes, int]:
    row = conn.execute(
        "SELECT seq, hash, last_row FROM sent_batches WHERE partner = ? ORDER BY seq DESC LIMIT 1",
        (partner,),
    ).fetchone()
    if row is None:
        return 0, GENESIS_HASH, 0
    return int(row[0]), bytes(row[1]), int(row[2])


def pending_count(conn: sqlite3.Connection, partner: str, *, limit: int) -> int:
    """Items waiting for a batch, counted up to ``limit``."""
    _, _, last_row = _last_sealed(conn, partner)
    row = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM outbox WHERE partner = ? AND row > ? LIMIT ?)",
        (partner, last_row, limit),
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
    """Seal the next batch of waiting items (at most ``max_items`` and about ``max_bytes``)."""
    seq, prev_hash, last_row = _last_sealed(conn, partner)
    rows = conn.execute(
        "SELECT row, item FROM outbox WHERE partner = ? AND row > ? ORDER BY row LIMIT ?",
        (partner, last_row, max_items),
    ).fetchall()
    if not rows:
        return None
    items: list[bytes] = []
    size = 0
    for _, item in rows:
        if items and size + len(item) > max_bytes:
            break
        items.append(bytes(item))
        size += len(item)
    first_row, end_row = int(rows[0][0]), int(rows[len(items) - 1][0])
    sealed = seal(
        signer,
        sender=sender,
        receiver=partner,
        seq=seq + 1,
        prev_hash=prev_hash,
        items=items,
        sealed_at=now,
    )
    conn.execute(
        "INSERT INTO sent_batches (partner, seq, first_row, last_row, count, header, signature,"
        " hash, sealed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            partner,
            sealed.header.seq,
            first_row,
            end_row,
            len(items),
            sealed.header_bytes,
            sealed.signature,
            sealed.hash,
            _micros(now),
        ),
    )
    return sealed


def sealed_batch(conn: sqlite3.Connection, partner: str, seq: int) -> SealedBatch | None:
    """A batch sealed earlier and not yet acked, rebuilt for resending (None otherwise)."""
    row = conn.execute(
        "SELECT first_row, last_row, count, header, signature, hash FROM sent_batches"
        " WHERE partner = ? AND seq = ? AND acked_at IS NULL",
        (partner, seq),
    ).fetchone()
    if row is None:
        return None
    first_row, end_row, count, header_bytes, signature, digest = row
    items = [
        bytes(item)
        for (item,) in conn.execute(
            "SELECT item FROM outbox WHERE partner = ? AND row BETWEEN ? AND ? ORDER BY row",
            (partner, first_row, end_row),
        )
    ]
    if len(items) != count:
        raise LinkRefused(
            "diverged", f"batch {seq} to {partner} lost items from the outbox", seq=seq
        )
    return SealedBatch(
        header=read_header(bytes(header_bytes)),
        header_bytes=bytes(header_bytes),
        signature=bytes(signature),
        hash=bytes(digest),
        items=items,
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
    """Store a verified receipt, mark its batch acked and drop its items from the outbox.

    Returns False for a receipt already stored; raises :class:`LinkRefused` (``diverged``) for a
    receipt naming a batch this node never sealed.
    """
    row = conn.execute(
        "SELECT hash, count, first_row, last_row, acked_at FROM sent_batches"
        " WHERE partner = ? AND seq = ?",
        (partner, receipt.seq),
    ).fetchone()
    if row is None or bytes(row[0]) != receipt.batch_hash or int(row[1]) != receipt.count:
        raise LinkRefused(
            "diverged",
            f"receipt for batch {receipt.seq} does not match any batch sealed for {partner}",
            seq=receipt.seq,
        )
    if row[4] is not None:
        return False
    conn.execute(
        "UPDATE sent_batches SET receipt = ?, receipt_signature = ?, acked_at = ?"
        " WHERE partner = ? AND seq = ?",
        (signed.receipt, signed.signature, _micros(now), partner, receipt.seq),
    )
    conn.execute(
        "DELETE FROM outbox WHERE partner = ? AND row BETWEEN ? AND ?", (partner, row[2], row[3])
    )
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


def state(conn: sqlite3.Connection, partner: str) -> OutboxState:
    sealed, _, last_row = _last_sealed(conn, partner)
    pending = conn.execute(
        "SELECT count(*) FROM outbox WHERE partner = ? AND row > ?", (partner, last_row)
    ).fetchone()[0]
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
        sealed_seq=sealed,
        acked_seq=acked,
        unacked_items=int(unacked[0]),
        last_sealed_at=_time(times[0]),
        last_acked_at=_time(times[1]),
    )
