"""The PostgreSQL store, for deployments that outgrow one machine; same semantics as SQLite.

Tables live in one schema (default ``kuroshio``) so several nodes can share a server, made by the
same numbered migrations as the embedded store (:mod:`kuroshio.store.schema`). It keeps the same
columns and rules as :mod:`kuroshio.store.sqlite` and passes the same tests; it is not an ORM and
does not manage the server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import re
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Final, TypeAlias

import msgspec
import psycopg

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
from kuroshio.store import schema as schema_steps
from kuroshio.store.sql import (
    CURRENT_COLUMNS,
    event_row,
    event_where,
    index_row,
    micros,
    observation_where,
    where_clause,
)

_STEPS: Final = "migrations"
"""The ``meta`` key counting the migrations taken."""

Connection: TypeAlias = psycopg.Connection[tuple[Any, ...]]
_observation_decoder = msgspec.json.Decoder(Observation)
_event_decoder = msgspec.json.Decoder(Event)
_UPSERT_CURRENT = (
    f"INSERT INTO current ({', '.join(CURRENT_COLUMNS)})"
    f" VALUES ({', '.join(['%s'] * len(CURRENT_COLUMNS))})"
    " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in CURRENT_COLUMNS[1:])
)


class PostgresStore:
    """The :class:`~kuroshio.store.Store` on a PostgreSQL server (one connection, thread-safe)."""

    def __init__(self, dsn: str, *, schema: str = "kuroshio") -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            raise StoreError(f"invalid schema name {schema!r} (lower case letters, digits, _)")
        self.schema = schema
        self._lock = threading.RLock()
        try:
            self._conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
            self._conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            self._conn.execute(f"SET search_path TO {schema}")
            with self._conn.transaction():
                # One node at a time migrates (concurrent CREATE IF NOT EXISTS races).
                self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (schema,))
                self._migrate()
        except psycopg.Error as exc:
            raise StoreError(f"cannot open PostgreSQL store ({_safe(dsn)}): {exc}") from exc

    def _migrate(self) -> None:
        """Take the schema through the same numbered migrations as the embedded store; the
        steps taken are counted in ``meta``."""
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        row = self._conn.execute("SELECT value FROM meta WHERE key = %s", (_STEPS,)).fetchone()
        version = int(row[0]) if row is not None else 0
        if version > schema_steps.SCHEMA_VERSION:
            raise StoreError(
                f"schema {self.schema} is at version {version}, made by a newer kuroshio;"
                f" this one reads up to {schema_steps.SCHEMA_VERSION}"
            )
        for number, step in schema_steps.pending(version):
            schema_steps.apply(self._conn, step, "postgres")
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (_STEPS, str(number)),
            )

    @property
    def schema_version(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = %s", (_STEPS,)).fetchone()
        return 0 if row is None else int(row[0])

    @property
    def connection(self) -> Connection:
        return self._conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self._lock, self._conn.transaction():
            yield self._conn

    def append(self, observations: Sequence[Observation]) -> AppendResult:
        with self.transaction() as conn:
            return self.append_in(conn, observations)

    def append_in(self, conn: Connection, observations: Sequence[Observation]) -> AppendResult:
        result = AppendResult()
        stored_at = micros(dt.datetime.now(dt.UTC))
        for observation in observations:
            body = canonical_bytes(observation)
            digest = hashlib.sha256(body).digest()
            row = conn.execute(
                "INSERT INTO observation_versions (id, version, digest, body, stored_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (id, version) DO NOTHING RETURNING seq",
                (observation.id, observation.version, digest, body, stored_at),
            ).fetchone()
            if row is None:
                existing = conn.execute(
                    "SELECT digest FROM observation_versions WHERE id = %s AND version = %s",
                    observation.key,
                ).fetchone()
                if existing is not None and bytes(existing[0]) == digest:
                    result.record(Outcome.UNCHANGED)
                else:
                    result.outcomes.append(Outcome.CONFLICT)
                    result.conflicts.append(
                        (
                            observation.id,
                            observation.version,
                            "a different record with this id and version is already stored",
                        )
                    )
                continue
            current = conn.execute(
                "SELECT version FROM current WHERE id = %s FOR UPDATE", (observation.id,)
            ).fetchone()
            if current is not None and int(current[0]) > observation.version:
                result.record(Outcome.STALE)
                continue
            conn.execute(_UPSERT_CURRENT, index_row(observation, int(row[0])))
            result.record(Outcome.INSERTED if current is None else Outcome.SUPERSEDED)
        return result

    def get(self, obs_id: str, version: int | None = None) -> Observation | None:
        with self._lock:
            if version is None:
                row = self._conn.execute(
                    "SELECT v.body FROM current c JOIN observation_versions v ON v.seq = c.seq"
                    " WHERE c.id = %s",
                    (obs_id,),
                ).fetchone()
            else:
                row = self._conn.execute(
                    "SELECT body FROM observation_versions WHERE id = %s AND version = %s",
                    (obs_id, version),
                ).fetchone()
        return None if row is None else _observation_decoder.decode(row[0])

    def history(self, obs_id: str) -> list[Observation]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT body FROM observation_versions WHERE id = %s ORDER BY version", (obs_id,)
            ).fetchall()
        return [_observation_decoder.decode(row[0]) for row in rows]

    def query(
        self, selection: ObservationFilter, *, limit: int = 1000, cursor: str | None = None
    ) -> Page:
        if not 1 <= limit <= 100_000:
            raise StoreError(f"limit must be between 1 and 100000, not {limit}")
        where, params = observation_where(selection, "%s")
        if cursor is not None:
            after_t0, after_id = decode_cursor(cursor)
            where.append("(c.t0 > %s OR (c.t0 = %s AND c.id > %s))")
            params.extend([after_t0, after_t0, after_id])
        sql = (
            "SELECT c.t0, c.id, v.body FROM current c JOIN observation_versions v ON v.seq = c.seq"
            + where_clause(where)
            + " ORDER BY c.t0, c.id LIMIT %s"
        )
        params.append(limit + 1)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        items = [_observation_decoder.decode(row[2]) for row in rows]
        next_cursor = encode_cursor(int(rows[-1][0]), str(rows[-1][1])) if more and rows else None
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
        where, params = observation_where(selection, "%s")
        with self._lock:
            row = self._conn.execute(
                "SELECT count(*) FROM current c" + where_clause(where), params
            ).fetchone()
        return int(row[0]) if row else 0

    def count_versions(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT count(*) FROM observation_versions").fetchone()
        return int(row[0]) if row else 0

    def put_events(self, events: Sequence[Event]) -> int:
        with self.transaction() as conn:
            return self.put_events_in(conn, events)

    def put_events_in(self, conn: Connection, events: Sequence[Event]) -> int:
        added = 0
        for event in events:
            cursor = conn.execute(
                "INSERT INTO events (id, kind, at, zone, origin, body)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                event_row(event, canonical_bytes(event)),
            )
            added += cursor.rowcount
        return added

    def query_events(self, selection: EventFilter, *, limit: int = 10_000) -> list[Event]:
        where, params = event_where(selection, "%s")
        sql = "SELECT body FROM events" + where_clause(where) + " ORDER BY at, id LIMIT %s"
        params.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [_event_decoder.decode(row[0]) for row in rows]

    def drop(self) -> None:
        """Remove this store's schema and everything in it (tests and decommissioning)."""
        with self._lock:
            self._conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _safe(dsn: str) -> str:
    # Never print a password that may sit in the connection string.
    return re.sub(
        r"(password=)\S+|(://[^:/@]+:)[^@]+@",
        lambda m: (m.group(1) or m.group(2)) + "***" + ("" if m.group(1) else "@"),
        dsn,
    )
