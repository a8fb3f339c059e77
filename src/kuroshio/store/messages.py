"""The rows of the dialogue channel: each message sent or received (its canonical bytes and
where it stands), standing requests and incidents. The rules live in
:mod:`kuroshio.messages`; this module only reads and writes rows, inside the caller's
transaction."""

from __future__ import annotations

from typing import Any, NamedTuple


class MessageRow(NamedTuple):
    """One message as kept: ``direction`` is ``out`` (sent from here) or ``in`` (received)."""

    id: str
    direction: str
    partner: str
    thread: str
    kind: str
    precedence: str
    sent_at: int
    deadline: int | None
    state: str
    escalations: int
    updated_at: int
    body: bytes


_COLUMNS = (
    "id, direction, partner, thread, kind, precedence, sent_at, deadline, state, escalations,"
    " updated_at, body"
)


def _row(raw: tuple[Any, ...]) -> MessageRow:
    values = list(raw)
    values[-1] = bytes(values[-1])
    return MessageRow(*values)


class MessageTable:
    """Messages, on one connection."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def put(self, row: MessageRow) -> bool:
        """Keep a message; False when one with its id is kept already (nothing changes)."""
        cursor = self._conn.execute(
            f"INSERT INTO messages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO NOTHING",
            tuple(row),
        )
        return bool(cursor.rowcount == 1)

    def get(self, message_id: str) -> MessageRow | None:
        raw = self._conn.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (message_id,)
        ).fetchone()
        return None if raw is None else _row(raw)

    def set_state(self, message_id: str, state: str, at_us: int) -> None:
        self._conn.execute(
            "UPDATE messages SET state = ?, updated_at = ? WHERE id = ?",
            (state, at_us, message_id),
        )

    def escalate(self, message_id: str, deadline_us: int, at_us: int) -> None:
        """Mark escalated, count it, and set the next deadline."""
        self._conn.execute(
            "UPDATE messages SET state = 'escalated', escalations = escalations + 1,"
            " deadline = ?, updated_at = ? WHERE id = ?",
            (deadline_us, at_us, message_id),
        )

    def overdue(self, at_us: int, limit: int) -> list[MessageRow]:
        """Messages sent from here awaiting acknowledgement whose deadline is at or before
        ``at_us``, oldest deadline first."""
        return [
            _row(raw)
            for raw in self._conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE direction = 'out'"
                " AND state IN ('queued', 'delivered', 'read', 'escalated')"
                " AND deadline IS NOT NULL AND deadline <= ? ORDER BY deadline, id LIMIT ?",
                (at_us, limit),
            )
        ]

    def listing(
        self, *, partner: str | None, thread: str | None, state: str | None, limit: int
    ) -> list[MessageRow]:
        """Messages, newest first, narrowed to a partner, a thread or a state when given."""
        clauses, values = ["1 = 1"], []
        for column, value in (("partner", partner), ("thread", thread), ("state", state)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        return [
            _row(raw)
            for raw in self._conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE {' AND '.join(clauses)}"
                " ORDER BY sent_at DESC, id DESC LIMIT ?",
                (*values, limit),
            )
        ]


class RequestTable:
    """Standing requests, on one connection: ``owner`` is the party that asked, ``partner`` the
    other side (the party asked, on the asking node; the asker, on the node asked)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def put(self, request_id: str, owner: str, partner: str, at_us: int, body: bytes) -> bool:
        cursor = self._conn.execute(
            "INSERT INTO standing_requests (id, owner, partner, created_at, body)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (request_id, owner, partner, at_us, body),
        )
        return bool(cursor.rowcount == 1)

    def cancel(self, request_id: str, at_us: int) -> bool:
        cursor = self._conn.execute(
            "UPDATE standing_requests SET cancelled_at = ? WHERE id = ? AND cancelled_at IS NULL",
            (at_us, request_id),
        )
        return bool(cursor.rowcount == 1)

    def active(self, owner: str | None = None) -> list[tuple[str, str, str, bytes]]:
        """(id, owner, partner, body) of requests not cancelled, oldest first."""
        where, values = ("AND owner = ?", (owner,)) if owner is not None else ("", ())
        return [
            (str(i), str(o), str(p), bytes(b))
            for i, o, p, b in self._conn.execute(
                "SELECT id, owner, partner, body FROM standing_requests"
                f" WHERE cancelled_at IS NULL {where} ORDER BY created_at, id",
                values,
            )
        ]

    def all(self) -> list[tuple[str, str, str, int, int | None, bytes]]:
        """(id, owner, partner, created µs, cancelled µs, body) of every request, oldest first."""
        return [
            (str(i), str(o), str(p), int(c), None if x is None else int(x), bytes(b))
            for i, o, p, c, x, b in self._conn.execute(
                "SELECT id, owner, partner, created_at, cancelled_at, body"
                " FROM standing_requests ORDER BY created_at, id"
            )
        ]


class IncidentTable:
    """Incidents, every version kept, on one connection."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def put(
        self, incident_id: str, version: int, opened_by: str, status: str, at_us: int, body: bytes
    ) -> bool:
        """Keep one version; False when that version is kept already (nothing changes)."""
        cursor = self._conn.execute(
            "INSERT INTO incidents (id, version, opened_by, status, updated_at, body)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id, version) DO NOTHING",
            (incident_id, version, opened_by, status, at_us, body),
        )
        return bool(cursor.rowcount == 1)

    def latest(self, incident_id: str) -> bytes | None:
        row = self._conn.execute(
            "SELECT body FROM incidents WHERE id = ? ORDER BY version DESC LIMIT 1",
            (incident_id,),
        ).fetchone()
        return None if row is None else bytes(row[0])

    def current(self, limit: int) -> list[bytes]:
        """The newest version of each incident, most recently updated first."""
        return [
            bytes(body)
            for (body,) in self._conn.execute(
                "SELECT i.body FROM incidents i WHERE i.version ="
                " (SELECT MAX(j.version) FROM incidents j WHERE j.id = i.id)"
                " ORDER BY i.updated_at DESC, i.id LIMIT ?",
                (limit,),
            )
        ]

    def history(self, incident_id: str) -> list[bytes]:
        return [
            bytes(body)
            for (body,) in self._conn.execute(
                "SELECT body FROM incidents WHERE id = ? ORDER BY version", (incident_id,)
            )
        ]


__all__ = ["IncidentTable", "MessageRow", "MessageTable", "RequestTable"]
