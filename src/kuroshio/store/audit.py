"""The rows of the audit log: one per entry, append-only, in ``seq`` order.

Hashing, signing and walking the chain live in :mod:`kuroshio.audit`; this module only reads
and writes rows, inside the caller's transaction. The schema's triggers refuse any update or
delete of a row (:mod:`kuroshio.store.schema`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final, TypeAlias

AuditRow: TypeAlias = tuple[int, str, str, str, str, str, bytes, bytes, bytes]
"""seq, at, party, kind, subject, details (JSON text), prev_hash, hash, signature."""
COLUMNS: Final = "seq, at, party, kind, subject, details, prev_hash, hash, signature"


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


__all__ = ["COLUMNS", "AuditRow", "AuditTable"]
