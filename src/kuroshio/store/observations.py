"""The rows of observations and events: every version of an observation kept, the current one
indexed for queries, and the events derived from them.

``observation_versions`` is the append-only history (id, version, digest, canonical body, and
for a version received from a partner where it sat in the batch that first brought it);
``current`` indexes the highest version of each id. Appends are set-based and idempotent; this
module only reads and writes rows, inside the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import sqlite3
from collections.abc import Sequence
from typing import Any, Final, TypeAlias

import msgspec

from kuroshio.errors import StoreError
from kuroshio.model import Event, Observation, canonical_bytes
from kuroshio.store import AppendResult, Outcome
from kuroshio.store.inbox import InboxRow
from kuroshio.store.sql import (
    CURRENT_COLUMNS,
    HELD,
    LONG,
    NOTE_HELD,
    NOTE_SPAN,
    SHORT,
    STARTED_SINCE,
    event_row,
    folds_held,
    held_change,
    index_row,
    insert_rows,
    longest_span_bucket,
    micros,
)

_observation_decoder = msgspec.json.Decoder(Observation)

_LOOKUP_CHUNK = 500
"""Ids per look-up query (well under SQLite's limit on bound parameters)."""


NOT_SENT: Final = (None, None, None, None)
"""The place columns of a history row of a version not received from a partner."""


def sent_place(sent_in: Sequence[InboxRow] | None, position: int) -> tuple[Any, ...]:
    """The history row's place columns (sent by, batch seq, position in it, provenance as sent)
    of the observation at ``position`` of an append, from its ``sent_in`` row."""
    if sent_in is None:
        return NOT_SENT
    partner, seq, place, _, _, provenance = sent_in[position]
    return (partner, seq, place, provenance)


def _start(row: Any) -> int:
    return int(row[0])


def _now_micros() -> int:
    return micros(dt.datetime.now(dt.UTC))


PreparedRow: TypeAlias = tuple[bytes, bytes, tuple[Any, ...]]
"""One observation ready to store: canonical body, its SHA-256, and its ``current`` row."""


def prepare(observations: Sequence[Observation]) -> list[PreparedRow]:
    """The rows of :meth:`ObservationTable.append`, made without the store: work a caller can do
    outside the transaction (a receiving link does it while the batch before is taken in)."""
    sha256 = hashlib.sha256
    rows: list[PreparedRow] = []
    for observation in observations:
        body = canonical_bytes(observation)
        rows.append((body, sha256(body).digest(), index_row(observation, None)))
    return rows


class ObservationTable:
    """Observations (every version, the current one indexed) and derived events, on one
    connection taking ``?`` placeholders. Reads serve both backends; :meth:`append` and
    :meth:`put_events` are SQLite's (PostgreSQL's are in :mod:`kuroshio.store.postgres`)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def append(
        self,
        observations: Sequence[Observation],
        prepared: Sequence[PreparedRow] | None = None,
        sent_in: Sequence[InboxRow] | None = None,
    ) -> AppendResult:
        """Append inside the caller's transaction (e.g. with an outbox write).

        Set-based: one look-up of the stored versions and current rows for the whole call, then
        one batched insert per table; each observation's outcome is as if appended one by one.
        ``prepared`` is :func:`prepare` of the same observations, done before the transaction.
        ``sent_in``: for observations taken in from a partner's batch, where each sat in it
        (kept in the history row of each version stored here; the caller keeps the places of
        the others, see :meth:`~kuroshio.store.inbox.InboxTable.keep_places`).
        """
        result = AppendResult()
        if not observations:
            return result
        if prepared is None:
            prepared = prepare(observations)
        elif len(prepared) != len(observations):
            raise StoreError(f"{len(prepared)} prepared rows for {len(observations)} observations")
        stored_at = _now_micros()
        ids = list({observation.id: None for observation in observations})
        conn = self._conn
        digests, currents, retracted = _known(conn, ids)
        # History rows get their seq here (the next ones after the last ever given), so that
        # each current row can name its history row without looking it up.
        row = conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'observation_versions'"
        ).fetchone()
        last_seq = int(row[0]) if row is not None else 0
        versions: list[tuple[Any, ...]] = []
        indexed: dict[str, tuple[Any, ...]] = {}
        known_ids = set(currents)
        for position, (observation, (body, digest, row)) in enumerate(
            zip(observations, prepared, strict=True)
        ):
            obs_id, version = observation.id, observation.version
            known = digests.get((obs_id, version))
            if known is not None:
                if known == digest:
                    result.record(Outcome.UNCHANGED)
                else:
                    result.outcomes.append(Outcome.CONFLICT)
                    result.conflicts.append(
                        (
                            obs_id,
                            version,
                            "a different record with this id and version is already stored",
                        )
                    )
                continue
            digests[(obs_id, version)] = digest
            last_seq += 1
            versions.append(
                (last_seq, obs_id, version, digest, body, stored_at, *sent_place(sent_in, position))
            )
            current = currents.get(obs_id)
            if current is not None and current > version:
                result.record(Outcome.STALE)
                continue
            currents[obs_id] = version
            indexed[obs_id] = (obs_id, version, last_seq, *row[3:])
            result.record(Outcome.INSERTED if current is None else Outcome.SUPERSEDED)
        span = longest_span_bucket(indexed.values())
        if span:
            conn.execute(NOTE_SPAN, (span,))
        held = held_change(indexed, retracted)
        if held:
            conn.execute(NOTE_HELD, (held,))
        if folds_held(last_seq - len(versions) + 1, last_seq):
            (total,) = conn.execute(f"SELECT {HELD}").fetchone()
            conn.execute("DELETE FROM current_held")
            conn.execute(NOTE_HELD, (total,))
        insert_rows(
            conn,
            "INSERT INTO observation_versions (seq, id, version, digest, body, stored_at,"
            " sent_by, sent_seq, sent_position, sent_provenance)",
            versions,
        )
        # An id without a current row before this call gets its first one (an insert, no
        # conflict to resolve); the others replace theirs.
        columns = ", ".join(["?"] * len(CURRENT_COLUMNS))
        insert_rows(
            conn,
            "INSERT INTO current",
            [row for obs_id, row in indexed.items() if obs_id not in known_ids],
        )
        superseding = [row for obs_id, row in indexed.items() if obs_id in known_ids]
        if superseding:
            conn.executemany(f"INSERT OR REPLACE INTO current VALUES ({columns})", superseding)
        return result

    def get(self, obs_id: str, version: int | None = None) -> Observation | None:
        conn = self._conn
        if version is None:
            row = conn.execute(
                "SELECT v.body FROM current c JOIN observation_versions v ON v.seq = c.seq"
                " WHERE c.id = ?",
                (obs_id,),
            ).fetchone()
        else:
            row = conn.execute(
                "SELECT body FROM observation_versions WHERE id = ? AND version = ?",
                (obs_id, version),
            ).fetchone()
        return None if row is None else _observation_decoder.decode(row[0])

    def _last_seq(self) -> int:
        row = self._conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'observation_versions'"
        ).fetchone()
        return int(row[0]) if row is not None else 0

    def mark(self) -> str:
        """The last history row's seq given so far: one writer at a time gives them in the
        order the transactions commit, so what is stored after a mark is the rows after it."""
        return str(self._last_seq())

    def ids_of_origin_since(self, origin: str, mark: str, limit: int) -> list[str] | None:
        """The ids of ``origin``'s (``origin:…``) of which a version not received from a partner
        (the node's own: every one) was stored as a history row after :meth:`mark` gave
        ``mark``, at most ``limit``: a range of the history's key."""
        seq = int(mark)
        if self._last_seq() < seq:
            return None
        rows = self._conn.execute(
            "SELECT DISTINCT id FROM observation_versions WHERE seq > ? AND id >= ? AND id < ?"
            " AND sent_by IS NULL LIMIT ?",
            (seq, f"{origin}:", f"{origin};", limit),
        ).fetchall()
        return [str(row[0]) for row in rows]

    def current_keys_of_ids(
        self, origin: str, ids: Sequence[str], start_us: int, end_us: int
    ) -> list[tuple[int, int, str, int, int]]:
        """:meth:`current_keys_of_origin` of the observations ``ids`` only (in no order)."""
        keys: list[tuple[int, int, str, int, int]] = []
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = list(ids[start : start + _LOOKUP_CHUNK])
            marks = ", ".join("?" * len(chunk))
            keys.extend(
                tuple(row)
                for row in self._conn.execute(
                    f"SELECT t0, t1, id, version, seq FROM current WHERE id IN ({marks})"
                    " AND origin = ? AND received = 0 AND retracted = 0 AND t1 >= ? AND t0 <= ?",
                    [*chunk, origin, start_us, end_us],
                ).fetchall()
            )
        return keys

    def current_keys_of_origin(
        self, origin: str, start_us: int, end_us: int, limit: int
    ) -> list[tuple[int, int, str, int, int]]:
        """``origin``'s current, unretracted observations not received from a partner (the
        node's own: every one) whose interval meets ``[start_us, end_us]``, by start time, at
        most ``limit``, undecoded: (start µs, end µs, id, version, history seq) each (their
        bodies: :meth:`versions_at`). A range of the index of rows not received."""
        own = "c.received = 0 AND c.retracted = 0 AND c.t1 >= ?"
        short = self._conn.execute(
            f"SELECT t0, t1, id, version, seq FROM current c WHERE c.origin = ? AND {own}"
            f" AND c.t0 <= ? AND c.t0 >= ? - {STARTED_SINCE} AND {SHORT} ORDER BY c.t0 LIMIT ?",
            (origin, start_us, end_us, start_us, limit),
        ).fetchall()
        # The long rows (few) by their end (see :data:`~kuroshio.store.sql.LONG`): neither
        # their origin nor their start is offered to the planner, which would otherwise read
        # every own row of the origin from the index of rows not received.
        long = self._conn.execute(
            f"SELECT t0, t1, id, version, seq FROM current c WHERE c.origin || '' = ? AND {own}"
            f" AND +c.t0 <= ? AND {LONG} ORDER BY +c.t0 LIMIT ?",
            (origin, start_us, end_us, limit),
        ).fetchall()
        return [tuple(row) for row in heapq.merge(short, long, key=_start)][:limit]

    def versions_at(self, seqs: Sequence[int]) -> list[Observation]:
        """The versions stored as history rows ``seqs``, in that order (a seq that names no
        row raises :class:`StoreError`)."""
        bodies: dict[int, bytes] = {}
        for start in range(0, len(seqs), _LOOKUP_CHUNK):
            chunk = list(seqs[start : start + _LOOKUP_CHUNK])
            marks = ", ".join("?" * len(chunk))
            bodies.update(
                self._conn.execute(
                    f"SELECT seq, body FROM observation_versions WHERE seq IN ({marks})", chunk
                ).fetchall()
            )
        try:
            return [_observation_decoder.decode(bodies[seq]) for seq in seqs]
        except KeyError as missing:
            raise StoreError(f"no stored version has history row {missing}") from None

    def put_events(self, events: Sequence[Event]) -> int:
        """Store derived events (idempotent on event id); how many were new."""
        conn = self._conn
        before = conn.total_changes
        conn.executemany(
            "INSERT OR IGNORE INTO events (id, kind, at, zone, origin, body)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [event_row(e, canonical_bytes(e)) for e in events],
        )
        return int(conn.total_changes - before)


def _known(
    conn: sqlite3.Connection, ids: list[str]
) -> tuple[dict[tuple[str, int], bytes], dict[str, int], dict[str, int]]:
    """Stored (id, version) → digest, and current id → version and → its ``retracted`` flag,
    for the given ids."""
    digests: dict[tuple[str, int], bytes] = {}
    currents: dict[str, int] = {}
    retracted: dict[str, int] = {}
    for start in range(0, len(ids), _LOOKUP_CHUNK):
        chunk = ids[start : start + _LOOKUP_CHUNK]
        marks = ", ".join("?" * len(chunk))
        for obs_id, version, digest in conn.execute(
            f"SELECT id, version, digest FROM observation_versions WHERE id IN ({marks})",
            chunk,
        ):
            digests[(obs_id, version)] = digest
        for obs_id, version, gone in conn.execute(
            f"SELECT id, version, retracted FROM current WHERE id IN ({marks})", chunk
        ):
            currents[obs_id] = version
            retracted[obs_id] = gone
    return digests, currents, retracted


__all__ = ["NOT_SENT", "ObservationTable", "PreparedRow", "prepare", "sent_place"]
