"""The rows of the audit log: one per entry, append-only, in ``seq`` order; the hashes of its
Merkle tree's complete subtrees; the heads of the log this node signed for partners, and the
heads of their logs partners signed for it.

Hashing, signing and walking the chain live in :mod:`kuroshio.audit`; this module only reads
and writes rows, inside the caller's transaction. The schema's triggers refuse any update or
delete of a log row (:mod:`kuroshio.store.schema`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final, TypeAlias

AuditRow: TypeAlias = tuple[int, str, str, str, str, str, bytes, bytes, bytes]
"""seq, at, party, kind, subject, details (JSON text), prev_hash, hash, signature."""
COLUMNS: Final = "seq, at, party, kind, subject, details, prev_hash, hash, signature"


PartnerHeadRow: TypeAlias = tuple[int, bytes, int, bytes, bytes, bool, int]
"""size, root, batch seq, receipt bytes, receipt signature, consistent, received at (µs)."""


class AuditTable:
    """The audit log's rows, on one connection (``dialect``: ``sqlite`` or ``postgres``)."""

    def __init__(self, conn: Any, dialect: str = "sqlite") -> None:
        self._conn = conn
        self._dialect = dialect

    def claim_head(self) -> tuple[int, bytes] | None:
        """:meth:`head`, held until the transaction ends, so the next entries the caller writes
        extend it: on PostgreSQL, where several processes may write, writers queue on a lock
        of this store's log; a SQLite write transaction holds the whole file already."""
        if self._dialect == "postgres":
            self._conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.audit_log'))"
            )
        return self.head()

    def head(self) -> tuple[int, bytes] | None:
        """(seq, hash) of the last entry."""
        row = self._conn.execute(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def append(self, rows: Sequence[AuditRow]) -> None:
        """Write entries; a seq already taken fails (two writers never fork the chain)."""
        self._conn.executemany(
            f"INSERT INTO audit_log ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )

    def rows(
        self, *, kind: str | None = None, since: str | None = None, after_seq: int = 0
    ) -> Iterator[tuple[Any, ...]]:
        """Rows in seq order, as stored (columns of :data:`COLUMNS`; a damaged store may hold
        values of other types), optionally of one kind and at or after ``since``."""
        clauses = ["seq > ?"]
        parameters: list[object] = [after_seq]
        if kind is not None:
            clauses.append("kind = ?")
            parameters.append(kind)
        if since is not None:
            clauses.append("at >= ?")
            parameters.append(since)
        cursor = self._conn.execute(
            f"SELECT {COLUMNS} FROM audit_log WHERE {' AND '.join(clauses)} ORDER BY seq",
            parameters,
        )
        yield from (tuple(row) for row in cursor)

    def neighbours(self, prev_hash: bytes, digest: bytes) -> list[tuple[int, bool, bool]]:
        """(seq, its hash is ``prev_hash``, its prev_hash is ``digest``) of the entries that
        name, or are named by, an entry with these hashes: where a moved entry came from."""
        return [
            (int(seq), bool(names_prev), bool(named_by))
            for seq, names_prev, named_by in self._conn.execute(
                "SELECT seq, hash = ?, prev_hash = ? FROM audit_log"
                " WHERE hash = ? OR prev_hash = ?",
                (prev_hash, digest, prev_hash, digest),
            )
        ]

    # --- the Merkle tree ------------------------------------------------------------------

    def tree_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """(level, index) → hash of the stored complete subtrees among ``keys``."""
        found: dict[tuple[int, int], bytes] = {}
        for level, index in keys:
            row = self._conn.execute(
                "SELECT hash FROM audit_tree WHERE level = ? AND idx = ?", (level, index)
            ).fetchone()
            if row is not None:
                found[(level, index)] = bytes(row[0])
        return found

    def add_tree_nodes(self, rows: Sequence[tuple[int, int, bytes]]) -> None:
        """Keep subtree hashes; one kept before is replaced (the tree follows the log, even a
        log someone cut and the node then grew again: the heads signed before tell)."""
        self._conn.executemany(
            "INSERT INTO audit_tree (level, idx, hash) VALUES (?, ?, ?)"
            " ON CONFLICT (level, idx) DO UPDATE SET hash = excluded.hash",
            rows,
        )

    def entry_hashes(self, after_seq: int, limit: int) -> list[bytes]:
        """The hashes of the entries after ``after_seq``, in order (for the tree)."""
        return [
            bytes(row[0])
            for row in self._conn.execute(
                "SELECT hash FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
            )
        ]

    # --- heads signed --------------------------------------------------------------------

    def keep_head(self, partner: str, size: int, root: bytes, at_us: int) -> None:
        """A head of this log signed for ``partner`` (in a receipt)."""
        self._conn.execute(
            "INSERT INTO audit_heads (partner, size, root, signed_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (partner, size) DO NOTHING",
            (partner, size, root, at_us),
        )

    def last_head(self, partner: str) -> tuple[int, bytes] | None:
        """(size, root) of the last head of this log signed for ``partner``."""
        row = self._conn.execute(
            "SELECT size, root FROM audit_heads WHERE partner = ? ORDER BY size DESC LIMIT 1",
            (partner,),
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def heads(self) -> list[tuple[str, int, bytes]]:
        """(partner, size, root) of every head of this log signed, smallest first."""
        return [
            (str(partner), int(size), bytes(root))
            for partner, size, root in self._conn.execute(
                "SELECT partner, size, root FROM audit_heads ORDER BY size, partner"
            )
        ]

    def keep_partner_head(self, partner: str, row: PartnerHeadRow) -> None:
        """A head of ``partner``'s log it signed for this node, as received."""
        size, root, seq, receipt, signature, consistent, at_us = row
        self._conn.execute(
            "INSERT INTO partner_heads (partner, size, root, seq, receipt, signature, consistent,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (partner, size) DO NOTHING",
            (partner, size, root, seq, receipt, signature, int(consistent), at_us),
        )

    def partner_heads(self, partner: str) -> list[PartnerHeadRow]:
        """The heads of ``partner``'s log it signed for this node, in the order received."""
        return [
            (int(size), bytes(root), int(seq), bytes(receipt), bytes(sig), bool(ok), int(at))
            for size, root, seq, receipt, sig, ok, at in self._conn.execute(
                "SELECT size, root, seq, receipt, signature, consistent, received_at"
                " FROM partner_heads WHERE partner = ? ORDER BY received_at, size",
                (partner,),
            )
        ]

    def last_partner_head(self, partner: str) -> tuple[int, bytes] | None:
        """(size, root) of the last head of ``partner``'s log received."""
        row = self._conn.execute(
            "SELECT size, root FROM partner_heads WHERE partner = ?"
            " ORDER BY received_at DESC, size DESC LIMIT 1",
            (partner,),
        ).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))


__all__ = ["COLUMNS", "AuditRow", "AuditTable", "PartnerHeadRow"]
