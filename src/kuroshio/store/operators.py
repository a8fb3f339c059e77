"""The rows of the people and scripts that may use a node's operator API: operators (name, role,
password hash), their bearer tokens and their browser sessions.

Tokens and sessions are kept only as the SHA-256 of the secret, so the store never holds a
secret that works. Hashing passwords, the roles and what each may do live in
:mod:`kuroshio.access`; this module only reads and writes rows, inside the caller's transaction.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class OperatorRow(NamedTuple):
    name: str
    role: str
    password_hash: str | None
    created_at: int
    disabled: bool


class TokenRow(NamedTuple):
    label: str
    operator: str
    created_at: int
    expires_at: int | None


class SessionRow(NamedTuple):
    operator: str
    csrf: str
    expires_at: int


def _operator(row: Any) -> OperatorRow:
    name, role, password_hash, created_at, disabled = row
    return OperatorRow(name, role, password_hash, int(created_at), bool(disabled))


class OperatorTable:
    """Operators, tokens and sessions, on one connection."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def put(self, name: str, role: str, password_hash: str | None, at_us: int) -> None:
        """Add an operator, or change the role and password of one (enabling it again)."""
        self._conn.execute(
            "INSERT INTO operators (name, role, password_hash, created_at, disabled)"
            " VALUES (?, ?, ?, ?, 0) ON CONFLICT (name) DO UPDATE SET role = excluded.role,"
            " password_hash = COALESCE(excluded.password_hash, operators.password_hash),"
            " disabled = 0",
            (name, role, password_hash, at_us),
        )

    def get(self, name: str) -> OperatorRow | None:
        row = self._conn.execute(
            "SELECT name, role, password_hash, created_at, disabled FROM operators WHERE name = ?",
            (name,),
        ).fetchone()
        return None if row is None else _operator(row)

    def all(self) -> list[OperatorRow]:
        return [
            _operator(row)
            for row in self._conn.execute(
                "SELECT name, role, password_hash, created_at, disabled FROM operators"
                " ORDER BY name"
            )
        ]

    def disable(self, name: str) -> bool:
        """Disable an operator and end its tokens and sessions; False when there is none."""
        changed = self._conn.execute(
            "UPDATE operators SET disabled = 1 WHERE name = ? AND disabled = 0", (name,)
        ).rowcount
        self._conn.execute("DELETE FROM operator_tokens WHERE operator = ?", (name,))
        self._conn.execute("DELETE FROM operator_sessions WHERE operator = ?", (name,))
        return bool(changed)

    def add_token(
        self, digest: bytes, label: str, operator: str, at_us: int, expires_us: int | None
    ) -> None:
        self._conn.execute(
            "INSERT INTO operator_tokens (digest, label, operator, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (digest, label, operator, at_us, expires_us),
        )

    def token(self, digest: bytes) -> TokenRow | None:
        row = self._conn.execute(
            "SELECT label, operator, created_at, expires_at FROM operator_tokens WHERE digest = ?",
            (digest,),
        ).fetchone()
        return None if row is None else TokenRow(*row)

    def token_labelled(self, operator: str, label: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM operator_tokens WHERE operator = ? AND label = ?", (operator, label)
        ).fetchone()
        return row is not None

    def tokens(self) -> list[TokenRow]:
        return [
            TokenRow(*row)
            for row in self._conn.execute(
                "SELECT label, operator, created_at, expires_at FROM operator_tokens"
                " ORDER BY operator, label"
            )
        ]

    def revoke_token(self, operator: str, label: str) -> bool:
        return bool(
            self._conn.execute(
                "DELETE FROM operator_tokens WHERE operator = ? AND label = ?", (operator, label)
            ).rowcount
        )

    def open_session(self, digest: bytes, operator: str, csrf: str, expires_us: int) -> None:
        self._conn.execute(
            "INSERT INTO operator_sessions (digest, operator, csrf, expires_at)"
            " VALUES (?, ?, ?, ?)",
            (digest, operator, csrf, expires_us),
        )

    def session(self, digest: bytes) -> SessionRow | None:
        row = self._conn.execute(
            "SELECT operator, csrf, expires_at FROM operator_sessions WHERE digest = ?",
            (digest,),
        ).fetchone()
        return None if row is None else SessionRow(*row)

    def close_session(self, digest: bytes) -> None:
        self._conn.execute("DELETE FROM operator_sessions WHERE digest = ?", (digest,))

    def forget_expired(self, now_us: int) -> None:
        self._conn.execute("DELETE FROM operator_sessions WHERE expires_at <= ?", (now_us,))


__all__ = ["OperatorRow", "OperatorTable", "SessionRow", "TokenRow"]
