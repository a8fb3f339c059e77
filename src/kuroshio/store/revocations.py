"""The rows of revoked partner keys: which party, which key (its fingerprint, or ``*`` for any),
why and when. Kept in the store so that a serving node reads a revocation made by another
process in the next transaction it opens. The rules live in :mod:`kuroshio.node`; this module
only reads and writes rows, inside the caller's transaction."""

from __future__ import annotations

from typing import Any, Final

ANY_KEY: Final = "*"


class RevocationTable:
    """Revoked partner keys, on one connection."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def revoke(self, party: str, key: str, reason: str, at_us: int) -> None:
        self._conn.execute(
            "INSERT INTO revocations (party, key, reason, revoked_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (party, key) DO UPDATE SET reason = excluded.reason",
            (party, key, reason, at_us),
        )

    def reason(self, party: str, key: str) -> str | None:
        """Why ``party``'s key ``key`` (a fingerprint) is revoked; None while it is not."""
        row = self._conn.execute(
            "SELECT reason FROM revocations WHERE party = ? AND key IN (?, ?) LIMIT 1",
            (party, key, ANY_KEY),
        ).fetchone()
        return None if row is None else str(row[0])

    def all(self) -> list[tuple[str, str, str, int]]:
        """(party, key, reason, revoked at µs) of every revocation, oldest first."""
        return [
            (str(p), str(k), str(r), int(a))
            for p, k, r, a in self._conn.execute(
                "SELECT party, key, reason, revoked_at FROM revocations ORDER BY revoked_at"
            )
        ]


__all__ = ["ANY_KEY", "RevocationTable"]
