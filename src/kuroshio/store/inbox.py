"""The rows of the receiving side of links, and the origin proofs relayed items came with.

``inbox_links`` is each link's position (last batch taken in and its hash); ``inbox_batches``
keeps every batch header, signature, leaf hashes and the receipt given for it; where each item
sat in its batch and its provenance as sent, so any item can be proven to its sender later, is
kept in the history row of the version it brought (``observation_versions.sent_*``) or, for a
version stored before (arriving again), in ``inbox_items``; ``origin_proofs`` the proofs a
relay carried with items it passed on unchanged.
The checks live in :mod:`kuroshio.exchange.inbox` and :mod:`kuroshio.exchange.proofs`; this
module only reads and writes rows, inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final, TypeAlias

InboxRow: TypeAlias = tuple[str, int, int, str, int, bytes]
"""One item of a received batch: partner, seq, position, id, version, provenance as sent (empty
when the kept provenance gives it back: :func:`kuroshio.exchange.proofs.provenance_as_sent`)."""
KeptProof: TypeAlias = tuple[str, int, str, bytes, bool, str, int]
"""One relayed item's origin proof: id, version, origin, proof bytes, verified, partner, seq."""
BatchProofRow: TypeAlias = tuple[int, int, bytes, bytes, bytes, bytes]
"""Where an item sat: seq, position, provenance as sent, batch header, signature, leaves."""
_ITEM_COLUMNS: Final = ("partner", "seq", "position", "id", "version", "sent_provenance")


class InboxTable:
    """The receiving side of every link, on one connection (``dialect``: ``sqlite`` or
    ``postgres``)."""

    def __init__(self, conn: Any, dialect: str = "sqlite") -> None:
        self._conn = conn
        self._dialect = dialect

    def claim(self, partner: str) -> None:
        """Hold ``partner``'s link into this node until the transaction ends, so that one
        process at a time checks its next batch against the link's position and takes it in:
        two connections of the same partner in two receiving processes queue here, and the
        second sees the first's batch committed (a duplicate, answered with the same receipt).
        On PostgreSQL a lock per link; a SQLite write transaction holds the whole file already."""
        if self._dialect == "postgres":
            self._conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.inbox.' || ?))",
                (partner,),
            )

    def position(self, partner: str) -> tuple[int, bytes, int] | None:
        """(last seq, last hash, updated at µs) of ``partner``'s link into this node."""
        row = self._conn.execute(
            "SELECT last_seq, last_hash, updated_at FROM inbox_links WHERE partner = ?", (partner,)
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]), int(row[2]))

    def receipts_after(self, partner: str, seq: int, limit: int) -> list[tuple[bytes, bytes]]:
        """(receipt, signature) given for ``partner``'s batches after ``seq``, in order."""
        return [
            (bytes(receipt), bytes(signature))
            for receipt, signature in self._conn.execute(
                "SELECT receipt, receipt_signature FROM inbox_batches WHERE partner = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (partner, seq, limit),
            )
        ]

    def receipt(self, partner: str, seq: int) -> tuple[bytes, bytes]:
        """(receipt, signature) given for batch ``seq`` of ``partner``."""
        row = self._conn.execute(
            "SELECT receipt, receipt_signature FROM inbox_batches WHERE partner = ? AND seq = ?",
            (partner, seq),
        ).fetchone()
        return bytes(row[0]), bytes(row[1])

    def keep_batch(
        self,
        partner: str,
        seq: int,
        *,
        digest: bytes,
        header: bytes,
        signature: bytes,
        leaves: bytes,
        received_at_us: int,
    ) -> None:
        """Keep a batch (its items' places follow with them, or by :meth:`keep_places`; its
        receipt by :meth:`give_receipt`)."""
        self._conn.execute(
            "INSERT INTO inbox_batches (partner, seq, hash, header, signature, leaves,"
            " receipt, receipt_signature, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (partner, seq, digest, header, signature, leaves, b"", b"", received_at_us),
        )

    def keep_places(self, items: Sequence[InboxRow]) -> None:
        """Keep where items of a batch sat whose versions were stored before it (the place of a
        version stored from a batch is kept in its history row)."""
        if not items:
            return
        if self._dialect == "postgres":
            self._conn.copy_rows("inbox_items", _ITEM_COLUMNS, items)
        else:
            self._conn.executemany(
                f"INSERT INTO inbox_items ({', '.join(_ITEM_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)",
                items,
            )

    def give_receipt(
        self, partner: str, seq: int, digest: bytes, receipt: bytes, signature: bytes, at_us: int
    ) -> None:
        """Keep the receipt given for batch ``seq`` and move the link's position to it."""
        self._conn.execute(
            "UPDATE inbox_batches SET receipt = ?, receipt_signature = ?"
            " WHERE partner = ? AND seq = ?",
            (receipt, signature, partner, seq),
        )
        self._conn.execute(
            "INSERT INTO inbox_links (partner, last_seq, last_hash, updated_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (partner) DO UPDATE SET"
            " last_seq = excluded.last_seq, last_hash = excluded.last_hash,"
            " updated_at = excluded.updated_at",
            (partner, seq, digest, at_us),
        )

    def batch_proof(self, obs_id: str, version: int, partner: str) -> BatchProofRow | None:
        """Where ``partner`` sent this item version last: the batch that proves it to them (the
        one that brought the version, named in its history row, or a later one it came in
        again)."""
        row = self._conn.execute(
            "SELECT p.seq, p.position, p.sent_provenance, b.header, b.signature, b.leaves FROM ("
            " SELECT seq, position, sent_provenance FROM inbox_items"
            " WHERE id = ? AND version = ? AND partner = ?"
            " UNION ALL SELECT sent_seq, sent_position, sent_provenance FROM observation_versions"
            " WHERE id = ? AND version = ? AND sent_by = ?"
            ") AS p JOIN inbox_batches b ON b.partner = ? AND b.seq = p.seq"
            " ORDER BY p.seq DESC LIMIT 1",
            (obs_id, version, partner, obs_id, version, partner, partner),
        ).fetchone()
        if row is None:
            return None
        seq, position, provenance, header, signature, leaves = row
        return (
            int(seq),
            int(position),
            bytes(provenance),
            bytes(header),
            bytes(signature),
            bytes(leaves),
        )

    def keep_proofs(self, rows: Iterable[KeptProof]) -> None:
        """Keep relayed items' origin proofs. A proof already kept stays, unless it could not
        be checked and the new one was."""
        self._conn.executemany(
            "INSERT INTO origin_proofs (id, version, origin, proof, verified, partner, seq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id, version) DO UPDATE SET"
            " origin = excluded.origin, proof = excluded.proof, verified = excluded.verified,"
            " partner = excluded.partner, seq = excluded.seq"
            " WHERE origin_proofs.verified = 0 AND excluded.verified = 1",
            [(*row[:4], int(row[4]), *row[5:]) for row in rows],
        )

    def kept_proof(self, obs_id: str, version: int) -> bytes | None:
        """The encoded origin proof kept for a relayed item, if one came with it."""
        row = self._conn.execute(
            "SELECT proof FROM origin_proofs WHERE id = ? AND version = ?", (obs_id, version)
        ).fetchone()
        return None if row is None else bytes(row[0])


__all__ = ["BatchProofRow", "InboxRow", "InboxTable", "KeptProof"]
