"""The embedded store: one SQLite file per node, WAL journal, every version kept.

``observation_versions`` is the append-only history (id, version, digest, canonical body);
``current`` indexes the highest version of each id for queries. Opening a file takes it through
the numbered migrations of :mod:`kuroshio.store.schema`; every other table the node keeps (links,
ledger, audit, daily counts) is written through the unit of work :meth:`SQLiteStore.transaction`
yields, and read through :meth:`SQLiteStore.reader`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import msgspec

from kuroshio.errors import StoreError
from kuroshio.model import Event, Observation
from kuroshio.store import (
    AppendResult,
    EventFilter,
    ObservationFilter,
    Page,
    decode_cursor,
    encode_cursor,
    schema,
)
from kuroshio.store.observations import ObservationTable
from kuroshio.store.sql import (
    event_where,
    observation_where,
    utc_time,
    where_clause,
)
from kuroshio.store.transaction import Transaction

CACHE_KIB = 32 * 1024
T = TypeVar("T")

_observation_decoder = msgspec.json.Decoder(Observation)
_event_decoder = msgspec.json.Decoder(Event)


class Extent(msgspec.Struct, frozen=True, kw_only=True):
    """The period the store's current observations cover, and how many there are."""

    earliest: dt.datetime | None
    latest: dt.datetime | None
    observations: int
    """Current observations, retractions excluded."""


class _Reads:
    """Queries over the observations and events, on ``_conn`` under ``_lock`` (shared by the
    store and its readers)."""

    _conn: sqlite3.Connection
    _lock: threading.Lock | threading.RLock

    def get(self, obs_id: str, version: int | None = None) -> Observation | None:
        with self._lock:
            return ObservationTable(self._conn).get(obs_id, version)

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

    def query_events(self, selection: EventFilter, *, limit: int = 10_000) -> list[Event]:
        where, params = event_where(selection, "?")
        sql = "SELECT body FROM events" + where_clause(where) + " ORDER BY at, id LIMIT ?"
        params.append(limit)
        with self._lock:
            rows = self._conn.execute(sql, params).fetchall()
        return [_event_decoder.decode(row[0]) for row in rows]

    @staticmethod
    def extent_in(conn: sqlite3.Connection) -> Extent:
        first, last, count = conn.execute(
            "SELECT min(t0), max(t1), count(*) FROM current WHERE retracted = 0"
        ).fetchone()
        return Extent(
            earliest=None if first is None else utc_time(first),
            latest=None if last is None else utc_time(last),
            observations=int(count),
        )

    @staticmethod
    def changes_in(conn: sqlite3.Connection, after: int, limit: int) -> list[tuple[int, bytes]]:
        return [
            (int(seq), bytes(body))
            for seq, body in conn.execute(
                "SELECT seq, body FROM observation_versions WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            )
        ]

    @staticmethod
    def change_head_in(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT max(seq) FROM observation_versions").fetchone()
        return int(row[0] or 0)

    def extent(self) -> Extent:
        """The period the current observations cover, and how many there are."""
        with self._lock:
            return self.extent_in(self._conn)

    def change_head(self) -> int:
        """The ``seq`` of the newest stored observation version (0: none)."""
        with self._lock:
            return self.change_head_in(self._conn)

    def changes(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        """(seq, canonical body) of observation versions stored after ``after``, in the order
        they were stored (by any process), at most ``limit``."""
        with self._lock:
            return self.changes_in(self._conn, after, limit)


class SQLiteStore(_Reads):
    """The embedded :class:`~kuroshio.store.Store` on one SQLite file.

    Safe to share between threads (one connection, serialised by a lock); a second process may
    read the same file while this one writes (WAL).
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not self.path.exists():
                # Only the node's owner may read it; SQLite gives its journal the same mode.
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
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
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc

    def _migrate(self) -> None:
        """Take the file through every migration it has not taken, one transaction each."""
        (version,) = self._conn.execute("PRAGMA user_version").fetchone()
        if version > schema.SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} is at schema version {version}, made by a newer kuroshio;"
                f" this one reads up to {schema.SCHEMA_VERSION}"
            )
        for number, step in schema.pending(int(version)):
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                schema.apply(self._conn, step, "sqlite")
                # Older kuroshio reads the version from meta and refuses a newer store.
                self._conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(number),),
                )
                self._conn.execute(f"PRAGMA user_version = {number}")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    # --- the unit of work ----------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT, rolled back on error) over every
        table."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def reader(self) -> StoreReader:
        """A reading connection of its own on the same file, for work that must not wait for
        the writer (a link polling its outbox, the API): see :class:`StoreReader`."""
        return StoreReader(self)

    # --- observations -------------------------------------------------------------------------

    def append(self, observations: Sequence[Observation]) -> AppendResult:
        with self.transaction() as tx:
            return tx.observations.append(observations)

    # --- events -------------------------------------------------------------------------------

    def put_events(self, events: Sequence[Event]) -> int:
        with self.transaction() as tx:
            return tx.observations.put_events(events)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StoreReader(_Reads):
    """A read-only connection of its own on a store file, shared between threads (one at a
    time). Each :meth:`snapshot` sees one consistent state of the file, committed by any
    process; nothing read through it can write."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                f"file:{store.path}?mode=ro",
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                timeout=30.0,
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read store {store.path}: {exc}") from exc

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Transaction]:
        """Every table as of one moment (a read transaction)."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield Transaction(self._conn)
            finally:
                self._conn.execute("COMMIT")

    def read(self, query: Callable[[Transaction], T]) -> T:
        """``query`` run on one snapshot."""
        with self.snapshot() as tx:
            return query(tx)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
