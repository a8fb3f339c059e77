"""The rows of link hellos' nonces seen lately: a replayed hello is refused even after the node
restarts. How long a nonce is kept is the caller's; this module only reads and writes rows,
inside the caller's transaction."""

from __future__ import annotations

from typing import Any


class NonceTable:
    """Hello nonces and when they were seen, on one connection."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def take(self, nonce: str, at_us: int, forget_before_us: int) -> bool:
        """Keep ``nonce`` (forgetting those seen before ``forget_before_us``); False when it was
        kept already."""
        self._conn.execute("DELETE FROM hello_nonces WHERE seen_at < ?", (forget_before_us,))
        inserted = self._conn.execute(
            "INSERT INTO hello_nonces (nonce, seen_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (nonce, at_us),
        ).rowcount
        return bool(inserted)


__all__ = ["NonceTable"]
