"""The embedded store: one SQLite file per node, WAL journal, every version kept.

``observation_versions`` is the append-only history (id, version, digest, canonical body);
``current`` indexes the highest version of each id for queries. It is not a general database layer:
other components (outbox, audit) open their own tables through :meth:`SQLiteStore.transaction`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import msgspec

from kuroshio.errors import StoreError
from kuroshio.model import Event, Observation, canonical_bytes
from kuroshio.store import (
    AppendResult,
    EventFilter,
    ObservationFilter,
    Outcome,
    Page,
    decode_cursor,
    encode_cursor,
)
from kuroshio.store.sql import (
    event_row,
    event_where,
    index_row,
    micros,
    observation_where,
    where_clause,
)

SCHEMA_VERSION = 1
CACHE_KIB = 32 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS observation_versions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    digest BLOB NOT NULL,
    body BLOB NOT NULL,
    stored_at INTEGER NOT NULL,
    UNIQUE (id, version)
);
CREATE TABLE IF NOT EXISTS current (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    seq INTEGER NOT NULL REFERENCES observation_versions (seq),
    origin TEXT NOT NULL,
    kind TEXT NOT NULL,
    t0 INTEGER NOT NULL,
    t1 INTEGER NOT NULL,
    min_lon REAL NOT NULL,
    min_lat REAL NOT NULL,
    max_lon REAL NOT NULL,
    max_lat REAL NOT NULL,
    platform_class TEXT,
    platform_type TEXT,
    retracted INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS current_time ON current (t0, id);
CREATE INDEX IF NOT EXISTS current_origin ON current (origin, t0);
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    zone TEXT NOT NULL,
    origin TEXT NOT NULL,
    body BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_at ON events (at, id);
"""

_observation_decoder = msgspec.json.Decoder(Observation)
_event_decoder = msgspec.json.Decoder(Event)


_LOOKUP_CHUNK = 500
"""Ids per look-up query (well under SQLite's limit on bound parameters)."""


def _now_micros() -> int:
    return micros(dt.datetime.now(dt.UTC))


PreparedRow: TypeAlias = tuple[bytes, bytes, tuple[Any, ...]]
"""One observation ready to store: canonical body, its SHA-256, and its ``current`` row."""


def prepare(observations: Sequence[Observation]) -> list[PreparedRow]:
    """The rows of :meth:`SQLiteStore.append_in`, made without the store: work a caller can do
    outside the transaction (a receiving link does it while the batch before is taken in)."""
    sha256 = hashlib.sha256
    rows: list[PreparedRow] = []
    for observation in observations:
        body = canonical_bytes(observation)
        rows.append((body, sha256(body).digest(), index_row(observation, None)))
    return rows


class SQLiteStore:
    """The embedded :class:`~kuroshio.store.Store` on one SQLite file.

    Safe to share between threads (one connection, serialised by a lock); a second process may
    read the same file while this one writes (WAL).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk when append() returns, even across power loss.
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            # 32 MiB of page cache (the default is 2 MiB): the indexes of a store holding
            # millions of observations stay in memory while batches are appended.
            self._conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            self._conn.executescript(_SCHEMA)
            self._check_schema_version()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc

    def _check_schema_version(self) -> None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        elif int(row[0]) != SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} has schema version {row[0]},"
                f" this kuroshio reads {SCHEMA_VERSION}"
            )

    # --- transactions shared with other components ------------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection, for components that keep tables beside the store's."""
        return self._conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, rolled back on error)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # --- observations -------------------------------------------------------------------------

    def append(self, observations: Sequence[Observation]) -> AppendResult:
        with self.transaction() as conn:
            return self.append_in(conn, observations)

    def append_in(
        self,
        conn: sqlite3.Connection,
        observations: Sequence[Observation],
        prepared: Sequence[PreparedRow] | None = None,
    ) -> AppendResult:
        """Append inside a transaction the caller holds (e.g. with an outbox write).

        Set-based: one look-up of the stored versions and current rows for the whole call, then
        one batched insert per table; each observation's outcome is as if appended one by one.
        ``prepared`` is :func:`prepare` of the same observations, done before the transaction.
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
        digests, currents = self._known(conn, ids)
        # History rows get their seq here (the next ones after the last ever given), so that
        # each current row can name its history row without looking it up.
        row = conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'observation_versions'"
        ).fetchone()
        last_seq = int(row[0]) if row is not None else 0
        versions: list[tuple[int, str, int, bytes, bytes, int]] = []
        indexed: list[tuple[Any, ...]] = []
        for observation, (body, digest, row) in zip(observations, prepared, strict=True):
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
            versions.append((last_seq, obs_id, version, digest, body, stored_at))
            current = currents.get(obs_id)
            if current is not None and current > version:
                result.record(Outcome.STALE)
                continue
            currents[obs_id] = version
            indexed.append((obs_id, version, last_seq, *row[3:]))
            result.record(Outcome.INSERTED if current is None else Outcome.SUPERSEDED)
        conn.executemany(
            "INSERT INTO observation_versions (seq, id, version, digest, body, stored_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            versions,
        )
        conn.executemany(
            "INSERT OR REPLACE INTO current VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            indexed,
        )
        return result

    @staticmethod
    def _known(
        conn: sqlite3.Connection, ids: list[str]
    ) -> tuple[dict[tuple[str, int], bytes], dict[str, int]]:
        """Stored (id, version) → digest and current id → version, for the given ids."""
        digests: dict[tuple[str, int], bytes] = {}
        currents: dict[str, int] = {}
        for start in range(0, len(ids), _LOOKUP_CHUNK):
            chunk = ids[start : start + _LOOKUP_CHUNK]
            marks = ", ".join("?" * len(chunk))
            for obs_id, version, digest in conn.execute(
                f"SELECT id, version, digest FROM observation_versions WHERE id IN ({marks})",
                chunk,
            ):
                digests[(obs_id, version)] = digest
            for obs_id, version in conn.execute(
                f"SELECT id, version FROM current WHERE id IN ({marks})", chunk
            ):
                currents[obs_id] = version
        return digests, currents

    def get(self, obs_id: str, version: int | None = None) -> Observation | None:
        with self._lock:
            if version is None:
                row = self._conn.execute(
                    "SELECT v.body FROM current c JOIN observation_versions v ON v.seq = c.seq"
                    " WHERE c.id = ?",
                    (obs_id,),
                ).fetchone()
            else:
                row = self._conn.execute(
                    "SELECT body FROM observation_versions WHERE id = ? AND version = ?",
                    (obs_id, version),
                ).fetchone()
        return None if row is None else _observation_decoder.decode(row[0])

    def history(self, obs_id: str) -> list[Observation]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT body FROM observation_versions WHERE id = ? ORDER BY version", (obs_id,)
            ).fetchall()
        return [_observation_decoder.decode(row[0]) for row in rows]

    def query(
        self, selection: ObservationFilter, *, limit: int = 1000, cursor: str | None = None
    ) -> Page:
        if not 1 <= limit <= 100_000:
            raise StoreError(f"limit must be between 1 and 100000, not {limit}")
        where, params = observation_where(selection, "?")
        if cursor is not None:
            after_t0, after_id = decode_cursor(cursor)
            where.append("(c.t0 > ? OR (c.t0 = ? AND c.id > ?))")
            params.extend([after_t0, after_t0, after_id])
        sql = (
            "SELECT c.t0, c.id, v.body FROM current c JOIN observation_versions v ON v.seq = c.seq"
            + where_clause(where)
            + " ORDER BY c.t0, c.id LIMIT ?"
        )
        params.append(limit + 1)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        items = [_observation_decoder.decode(row[2]) for row in rows]
        next_cursor = encode_cursor(rows[-1][0], rows[-1][1]) if more and rows else None
        return Page(items=items, next_cursor=next_cursor)

    def iter_query(
        self, selection: ObservationFilter, *, page_size: int = 1000
    ) -> Iterator[Observation]:
        cursor: str | None = None
        while True:
            page = self.query(selection, limit=page_size, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def count(self, selection: ObservationFilter) -> int:
        where, params = observation_where(selection, "?")
        sql = "SELECT count(*) FROM current c" + where_clause(where)
        with self._lock:
            row = self._conn.execute(sql, params).fetchone()
        return int(row[0])

    def count_versions(self) -> int:
        """Every stored version (history included)."""
        with self._lock:
            row = self._conn.execute("SELECT count(*) FROM observation_versions").fetchone()
        return int(row[0])

    # --- events -------------------------------------------------------------------------------

    def put_events(self, events: Sequence[Event]) -> int:
        with self.transaction() as conn:
            return self.put_events_in(conn, events)

    def put_events_in(self, conn: sqlite3.Connection, events: Sequence[Event]) -> int:
        before = conn.total_changes
        conn.executemany(
            "INSERT OR IGNORE INTO events (id, kind, at, zone, origin, body)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [event_row(e, canonical_bytes(e)) for e in events],
        )
        return conn.total_changes - before

    def query_events(self, selection: EventFilter, *, limit: int = 10_000) -> list[Event]:
        where, params = event_where(selection, "?")
        sql = "SELECT body FROM events" + where_clause(where) + " ORDER BY at, id LIMIT ?"
        params.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [_event_decoder.decode(row[0]) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
