"""The PostgreSQL store, for a node that outgrows one machine; same semantics as SQLite.

Tables live in one schema (default ``kuroshio``) so several nodes can share a server, made by the
same numbered migrations as the embedded store (:mod:`kuroshio.store.schema`). The unit of work
carries every table, as on SQLite; where several processes share the schema, writers of the audit
log and sealers of a link's batches queue on locks (see :class:`~kuroshio.store.audit.AuditTable`
and :class:`~kuroshio.store.outbox.OutboxTable`). It keeps the same columns and rules as
:mod:`kuroshio.store.sqlite` and passes the same tests; it is not an ORM and does not manage the
server.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import re
import select
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, TypeAlias

import psycopg
from psycopg.types.string import BytesBinaryDumper

from kuroshio.errors import StoreError, StoreUnavailable
from kuroshio.model import Event, Observation, canonical_bytes
from kuroshio.store import (
    AppendResult,
    Outcome,
)
from kuroshio.store import schema as schema_steps
from kuroshio.store.inbox import InboxRow
from kuroshio.store.observations import ObservationTable, PreparedRow, prepare, sent_place
from kuroshio.store.reads import Reads
from kuroshio.store.sql import (
    CURRENT_COLUMNS,
    NOTE_HELD,
    NOTE_SPAN,
    event_row,
    folds_held,
    held_change,
    longest_span_bucket,
    micros,
)
from kuroshio.store.transaction import Transaction

WATCH_POLL_S: Final = 0.5
"""How often a watching thread looks up from its wait to see whether it should stop."""
WATCH_RETRY_S: Final = 1.0
_STEPS: Final = "migrations"
"""The ``meta`` key counting the migrations taken."""

Connection: TypeAlias = psycopg.Connection[tuple[Any, ...]]
_CONFLICT: Final = "a different record with this id and version is already stored"
_VERSION_COLUMNS: Final = (
    "seq",
    "id",
    "version",
    "digest",
    "body",
    "stored_at",
    "sent_by",
    "sent_seq",
    "sent_position",
    "sent_provenance",
)
_UPSERT_CURRENT = (
    f"INSERT INTO current ({', '.join(CURRENT_COLUMNS)})"
    f" VALUES ({', '.join(['%s'] * len(CURRENT_COLUMNS))})"
    " ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in CURRENT_COLUMNS[1:])
)

_FOLD_HELD = (
    "WITH folded AS (DELETE FROM current_held WHERE ctid = ANY (ARRAY("
    "SELECT ctid FROM current_held FOR UPDATE SKIP LOCKED)) RETURNING n)"
    " INSERT INTO current_held (n) SELECT sum(n) FROM folded HAVING count(*) > 0"
)
"""``current_held``'s rows folded into one, but for rows another transaction is folding."""


@functools.lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """A statement written with ``?`` placeholders in psycopg's ``%s`` style."""
    return sql.replace("%", "%%").replace("?", "%s")


_COPY_TYPES: dict[tuple[str, tuple[str, ...]], list[int]] = {}
"""The type of each column a bulk copy writes, by table and columns (every schema of a node is
made by the same migrations, so one look-up per process serves them all)."""
_COPY_TYPES_LOCK = threading.Lock()


COPY_ROWS: Final = 250
"""Rows sent by one ``COPY``. The server buffers up to 1 000 rows of a copy, each in a slot
that its resource owner tracks by the table's row type, and on PostgreSQL 15 every slot's entry
lands in the same hash bucket, so the slots of one copy cost the server time quadratic in their
number: 1 000 rows a copy spent about a tenth of the server's time on a batch's rows in making
and dropping slots. Copies of 250 rows spend about a quarter of that, plus a few hundred
microseconds per extra copy."""


_STAGED: weakref.WeakKeyDictionary[Connection, set[str]] = weakref.WeakKeyDictionary()
"""The staging tables made on each connection (temporary: they live as long as it does)."""


def copy_rows(
    conn: Connection,
    table: str,
    columns: tuple[str, ...],
    rows: Sequence[Any],
    *,
    skip_conflicts: bool = False,
) -> None:
    """Insert ``rows`` into ``table`` with one binary ``COPY``, inside the caller's transaction.

    Same effect as an ``INSERT`` of each row (constraints, triggers, defaults), at a fraction of
    the cost: psycopg's ``executemany`` sends and prepares each row as a statement of its own,
    which costs the client about seven times as much CPU per row as a row of a copy. With
    ``skip_conflicts`` (``INSERT … ON CONFLICT DO NOTHING``) the rows are copied into a
    temporary staging table of the connection (emptied at every commit, truncated in place:
    temporary tables are never vacuumed) and inserted from there with one statement."""
    if not rows:
        return
    target = f"staged_{table}" if skip_conflicts else table
    if skip_conflicts:
        stage(conn, table)
    _copy(conn, target, columns, rows)
    if skip_conflicts:
        listed = ", ".join(columns)
        # Rows an earlier call of this transaction staged are in the table already: inserting
        # them again does nothing.
        conn.execute(
            f"INSERT INTO {table} ({listed}) SELECT {listed} FROM {target} ON CONFLICT DO NOTHING"
        )


def stage(conn: Connection, table: str) -> None:
    """Make ``table``'s staging table on ``conn`` (``staged_<table>``, temporary), unless it is
    known to be there. Made outside a transaction it is known from then on; made inside one, it
    is made again (if not there) the next time, since a rollback would take it away."""
    if table in _STAGED.get(conn, ()):
        return
    conn.execute(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS staged_{table} (LIKE {table}) ON COMMIT DELETE ROWS"
    )
    if conn.info.transaction_status is psycopg.pq.TransactionStatus.IDLE:
        _STAGED.setdefault(conn, set()).add(table)


STAGED_TABLES: Final = ("ledger",)
"""The tables written through a staging table (:func:`copy_rows` with ``skip_conflicts``)."""


def _copy(conn: Connection, table: str, columns: tuple[str, ...], rows: Sequence[Any]) -> None:
    key = (table, columns)
    with _COPY_TYPES_LOCK:
        types = _COPY_TYPES.get(key)
    if types is None:
        found: dict[str, int] = dict(
            conn.execute(
                "SELECT attname, atttypid FROM pg_attribute WHERE attrelid = %s::regclass"
                " AND attnum > 0 AND NOT attisdropped",
                (table,),
            ).fetchall()
        )
        types = [int(found[column]) for column in columns]
        with _COPY_TYPES_LOCK:
            _COPY_TYPES[key] = types
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    with conn.cursor() as cursor:
        for start in range(0, len(rows), COPY_ROWS):
            with cursor.copy(statement) as copy:
                copy.set_types(types)
                for row in rows[start : start + COPY_ROWS]:
                    copy.write_row(row)


def any_id(ids: Sequence[str]) -> tuple[str, Any]:
    """A condition that ``id`` is one of ``ids``, and its one parameter: the ids as one text,
    apart by spaces (an observation's id holds none), which the server splits; an array only
    where an id holds a space (one made in code, not decoded). psycopg puts an array together in
    Python element by element (as text it quotes each with a regular expression; in binary it
    packs each): about 2 300 instructions per id of a batch taken in."""
    joined = " ".join(ids)
    if joined.count(" ") == len(ids) - 1:
        return "id = ANY(string_to_array(%s, ' '))", joined
    return "id = ANY(%b)", list(ids)


FEW_IDS: Final = 64
"""The most ids an append locks one by one; a larger append locks the origins of its ids."""


def _lock_ids(conn: Connection, ids: Sequence[str]) -> None:
    """Hold ``ids`` until the transaction ends, so that processes appending the same id queue.

    An id begins with its origin's three letters. An append of at most :data:`FEW_IDS` ids
    locks each id, and each of their origins shared: appends of one origin's other ids go on
    side by side, as the live exchange's small batches and operators' posts do. A larger one
    (a received batch, an import's chunk) locks its origins alone, exclusively: the server
    keeps every lock a transaction holds in one table of fixed size shared by all its
    connections (by default 64 per connection), and a lock per id of a batch of 20 000 failed
    with "out of shared memory"; several processes taking batches of 1 000 in at once could
    fill it too. Every append takes origins before ids, each in one order (by hash), so none
    waits for another in a circle."""
    origins = sorted({obs_id[:3] for obs_id in ids})
    few = len(ids) <= FEW_IDS
    conn.execute(
        f"SELECT pg_advisory_xact_lock{'_shared' if few else ''}(h) FROM (SELECT DISTINCT"
        " hashtext(current_schema() || '.origin.' || o) AS h FROM unnest(%b::text[]) AS o"
        " ORDER BY h) AS origins",
        (origins,),
    )
    if few:
        conn.execute(
            "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtext(current_schema()"
            " || '.' || i) AS h FROM unnest(%b::text[]) AS i ORDER BY h) AS ids",
            (ids,),
        )


def _in_pipeline(conn: Connection) -> bool:
    """Whether ``conn`` is still in pipeline mode outside any statement of ours."""
    return conn.pgconn.pipeline_status != psycopg.pq.PipelineStatus.OFF


def _cut_while_idle(conn: Connection) -> bool:
    """Whether the server ended ``conn`` while it sat idle between transactions (a restart or
    an administrator's ``pg_terminate_backend``): its last words then wait on the socket. An
    idle connection of the store's listens to nothing, so anything to read there means the
    same (at worst a notice: the connection is then made again for nothing). One poll of the
    socket with no wait, no round trip; a connection in a transaction is not looked at."""
    pgconn = conn.pgconn
    if pgconn.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        return False
    try:
        readable, _, _ = select.select([pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.OperationalError):
        return True
    return bool(readable)


class QmarkConnection:
    """A psycopg connection that takes the tables' SQL as written for both backends (``?``
    placeholders), so one module holds each table's statements."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def copy_rows(
        self,
        table: str,
        columns: tuple[str, ...],
        rows: Sequence[Any],
        *,
        skip_conflicts: bool = False,
    ) -> None:
        """Insert many rows at once (see :func:`copy_rows`)."""
        copy_rows(self._conn, table, columns, rows, skip_conflicts=skip_conflicts)

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self._conn.execute(_pg(sql), parameters)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cursor = self._conn.cursor()
        rows = list(rows)
        if rows:
            cursor.executemany(_pg(sql), rows)
        return cursor


class PgObservationTable(ObservationTable):
    """Observations (every version, the current one indexed) and events on a PostgreSQL
    connection, inside the caller's transaction: the reads are the embedded store's, appends
    and events are written the server's way."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(QmarkConnection(conn))
        self._pg = conn

    def append(
        self,
        observations: Sequence[Observation],
        prepared: Sequence[PreparedRow] | None = None,
        sent_in: Sequence[InboxRow] | None = None,
    ) -> AppendResult:
        """Append inside the caller's transaction, with the same outcomes as the embedded store.

        Set-based: the call's ids are locked (:func:`_lock_ids`), their stored versions and
        current rows read once, history rows get their seq from the table's sequence in one
        call, and each table is written with one copy (a few for many rows).
        """
        result = AppendResult()
        if not observations:
            return result
        if prepared is None:
            prepared = prepare(observations)
        elif len(prepared) != len(observations):
            raise StoreError(f"{len(prepared)} prepared rows for {len(observations)} observations")
        conn = self._pg
        ids = list({observation.id: None for observation in observations})
        _lock_ids(conn, ids)
        among, listed = any_id(ids)
        digests: dict[tuple[str, int], bytes] = {
            (str(obs_id), int(version)): bytes(digest)
            for obs_id, version, digest in conn.execute(
                f"SELECT id, version, digest FROM observation_versions WHERE {among}", (listed,)
            ).fetchall()
        }
        # Only an id with a stored version can have a current row (a current row names a
        # history row, and history rows are never deleted): a batch of new ids reads nothing.
        stored_ids = list({obs_id: None for obs_id, _ in digests})
        currents: dict[str, int] = {}
        retracted: dict[str, int] = {}
        if stored_ids:
            among, listed = any_id(stored_ids)
            for obs_id, version, gone in conn.execute(
                f"SELECT id, version, retracted FROM current WHERE {among}", (listed,)
            ).fetchall():
                currents[str(obs_id)] = int(version)
                retracted[str(obs_id)] = int(gone)
        fresh = [
            (observation, row)
            for observation, row in zip(observations, prepared, strict=True)
            if (observation.id, observation.version) not in digests
        ]
        # The sequence is looked up once (a sub-select), not once per seq drawn: the look-up
        # by name cost four times the drawing. The seqs are fetched at once (each row read
        # from the cursor by itself cost the node about 4 500 instructions more per item).
        seqs = iter(
            [
                seq
                for (seq,) in conn.execute(
                    "SELECT nextval((SELECT pg_get_serial_sequence('observation_versions', 'seq')"
                    "::regclass)) FROM generate_series(1, %s)",
                    (len(fresh),),
                ).fetchall()
            ]
        )
        stored_at = micros(dt.datetime.now(dt.UTC))
        versions: list[tuple[Any, ...]] = []
        indexed: dict[str, tuple[Any, ...]] = {}
        known_ids = set(currents)
        for position, (observation, (body, digest, index)) in enumerate(
            zip(observations, prepared, strict=True)
        ):
            key = (observation.id, observation.version)
            known = digests.get(key)
            if known is not None:
                if known == digest:
                    result.record(Outcome.UNCHANGED)
                else:
                    result.outcomes.append(Outcome.CONFLICT)
                    result.conflicts.append((*key, _CONFLICT))
                continue
            digests[key] = digest
            seq = next(seqs)
            versions.append(
                (
                    seq,
                    observation.id,
                    observation.version,
                    digest,
                    body,
                    stored_at,
                    *sent_place(sent_in, position),
                )
            )
            current = currents.get(observation.id)
            if current is not None and current > observation.version:
                result.record(Outcome.STALE)
                continue
            currents[observation.id] = observation.version
            # The history row this current row names is copied in by this same call (the
            # table has no key to check it: migration 0014).
            indexed[observation.id] = (observation.id, observation.version, seq, *index[3:])
            result.record(Outcome.INSERTED if current is None else Outcome.SUPERSEDED)
        span = longest_span_bucket(indexed.values())
        if span:
            conn.execute(_pg(NOTE_SPAN), (span,))
        held = held_change(indexed, retracted)
        if held:
            conn.execute(_pg(NOTE_HELD), (held,))
        if versions and folds_held(versions[0][0], versions[-1][0]):
            # Rows another transaction is folding are left to it: none waits on another.
            conn.execute(_FOLD_HELD)
        # The ids are locked and their current rows were read under the lock: an id without
        # one gets its first row here (copied in), the others are updated.
        copy_rows(conn, "observation_versions", _VERSION_COLUMNS, versions)
        copy_rows(
            conn,
            "current",
            CURRENT_COLUMNS,
            [row for obs_id, row in indexed.items() if obs_id not in known_ids],
        )
        superseding = [row for obs_id, row in indexed.items() if obs_id in known_ids]
        if superseding:
            with conn.cursor() as cursor:
                cursor.executemany(_UPSERT_CURRENT, superseding)
        return result

    def mark(self) -> str:
        """The transactions seen committed now (``pg_current_snapshot()``) and this one's own,
        if it has written: several processes' transactions commit in any order of their
        history seqs, so what is stored after a mark is the rows of the transactions it did not
        see committed and of its own (each history row names its transaction: migration
        0020)."""
        row = self._pg.execute(
            "SELECT pg_current_snapshot()::text, pg_current_xact_id_if_assigned()::text"
        ).fetchone()
        assert row is not None
        return f"{row[0]}/{row[1] or ''}"

    def ids_of_origin_since(self, origin: str, mark: str, limit: int) -> list[str] | None:
        """The ids of ``origin``'s (``origin:…``) of which a version not received from a
        partner (the node's own: every one) was stored after :meth:`mark` gave ``mark``, at
        most ``limit``: a range of the index by transaction of the history rows not received,
        from the oldest transaction running then."""
        snapshot, _, own = mark.partition("/")
        rows = self._pg.execute(
            "SELECT DISTINCT id FROM observation_versions"
            " WHERE sent_by IS NULL AND xact >= pg_snapshot_xmin(%s::pg_snapshot)"
            " AND (NOT pg_visible_in_snapshot(xact, %s::pg_snapshot) OR xact = %s::xid8)"
            " AND id >= %s AND id < %s LIMIT %s",
            (snapshot, snapshot, own or None, f"{origin}:", f"{origin};", limit),
        ).fetchall()
        return [str(row[0]) for row in rows]

    def put_events(self, events: Sequence[Event]) -> int:
        added = 0
        for event in events:
            cursor = self._pg.execute(
                "INSERT INTO events (id, kind, at, zone, origin, body)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                event_row(event, canonical_bytes(event)),
            )
            added += cursor.rowcount
        return added


def application_name(schema: str) -> str:
    """How a node's connections name themselves to the server (``pg_stat_activity``)."""
    return f"kuroshio {schema}"


def _connect(dsn: str, schema: str, *, create: bool = False) -> Connection:
    conn: Connection = psycopg.connect(
        dsn, autocommit=True, connect_timeout=10, application_name=application_name(schema)
    )
    if create:
        with conn.transaction():
            # Processes of one node start together; CREATE SCHEMA IF NOT EXISTS alone races.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (schema,))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    conn.execute(f"SET search_path TO {schema}")
    # A binary copy dumps each column by its type, and for bytea psycopg's DB-API module
    # registers a dumper of its own (to take its ``Binary`` wrapper), written in Python: every
    # digest and body a copy sent went through it, about 0.8 µs a value. The dumper of bytes
    # (in C with psycopg's binary package) takes bytea again on this connection.
    conn.adapters.register_dumper(bytes, BytesBinaryDumper)
    return conn


class _PgReads(Reads):
    """The shared queries on a PostgreSQL connection (``_conn`` under ``_lock``), connected
    again when the last one was lost."""

    _conn: Connection
    _lock: threading.Lock | threading.RLock
    _dsn: str
    _schema: str

    @contextlib.contextmanager
    def _qmark(self) -> Iterator[QmarkConnection]:
        with self._session() as conn:
            yield QmarkConnection(conn)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Transaction]:
        """Every table as of one moment (a repeatable-read transaction)."""
        with self._session() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield self._transaction(conn)

    @contextlib.contextmanager
    def _session(self) -> Iterator[Connection]:
        """The connection, under the lock, connected again first when the last one was lost
        (a database restart): an operation that finds it lost midway fails, the next one goes
        on.

        A connection lost in the middle of a pipelined statement (``executemany``) is left in
        pipeline mode, neither closed nor marked broken, and refuses every query after: it is
        given up too, and so is one the server ended while it sat idle (found without a round
        trip, so the first operation after a restart goes on too)."""
        with self._lock:
            try:
                conn = self._conn
                if conn.closed or conn.broken or _in_pipeline(conn) or _cut_while_idle(conn):
                    conn.close()
                    self._conn = _connect(self._dsn, self._schema)
                    self._connected(self._conn)
                yield self._conn
            except psycopg.OperationalError as error:
                raise StoreUnavailable(
                    f"PostgreSQL store {self._schema} ({_safe(self._dsn)}): {error}"
                ) from None

    def _connected(self, conn: Connection) -> None:
        """Prepare a new connection (outside any transaction)."""

    @staticmethod
    def _transaction(conn: Connection) -> Transaction:
        return Transaction(
            QmarkConnection(conn),
            dialect="postgres",
            observations=PgObservationTable(conn),
        )


class PostgresStore(_PgReads):
    """A node's store on a PostgreSQL server (one connection for writes, thread-safe)."""

    def __init__(self, dsn: str, *, schema: str = "kuroshio") -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", schema):
            raise StoreError(f"invalid schema name {schema!r} (lower case letters, digits, _)")
        self.schema = schema
        self._schema = schema
        self._dsn = dsn
        self._lock = threading.RLock()
        try:
            self._conn = _connect(dsn, schema, create=True)
            with self._conn.transaction():
                # One process at a time migrates (concurrent CREATE IF NOT EXISTS races).
                self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (schema,))
                self._migrate()
            self._connected(self._conn)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open PostgreSQL store ({_safe(dsn)}): {exc}") from exc

    def _connected(self, conn: Connection) -> None:
        for table in STAGED_TABLES:
            stage(conn, table)

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
        with self._session() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = %s", (_STEPS,)).fetchone()
        return 0 if row is None else int(row[0])

    @property
    def connection(self) -> Connection:
        """The write connection (for tests and maintenance; the node writes through
        :meth:`transaction`)."""
        return self._conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One write transaction over every table (committed on exit, rolled back on error)."""
        with self._session() as conn:
            with conn.transaction():
                tx = self._transaction(conn)
                yield tx
            tx.committed()

    def reader(self) -> PostgresReader:
        """A reading connection of its own on the same schema."""
        return PostgresReader(self._dsn, self.schema)

    def append(self, observations: Sequence[Observation]) -> AppendResult:
        with self.transaction() as tx:
            return tx.observations.append(observations)

    def put_events(self, events: Sequence[Event]) -> int:
        with self.transaction() as tx:
            return tx.observations.put_events(events)

    @property
    def _channel(self) -> str:
        return f"kuroshio_{self.schema}"

    def announce(self, news: str = "") -> None:
        """Tell the node's other processes that something was stored (after the commit), or,
        with ``news``, what else happened."""
        with self._session() as conn:
            if news:
                conn.execute("SELECT pg_notify(%s, %s)", (self._channel, news))
            else:
                conn.execute(f"NOTIFY {self._channel}")

    def watch(self, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback`` (on a thread of its own) with the news whenever any process of the
        node announces something (``""``: a commit); the function returned stops watching. A
        lost connection is made again, with one call of ``callback("")`` for what may have been
        stored meanwhile."""
        stopped = threading.Event()

        def listen() -> None:
            while not stopped.is_set():
                try:
                    with psycopg.connect(
                        self._dsn,
                        autocommit=True,
                        connect_timeout=10,
                        application_name=application_name(self.schema),
                    ) as conn:
                        conn.execute(f"LISTEN {self._channel}")
                        callback("")
                        while not stopped.is_set():
                            for notice in conn.notifies(timeout=WATCH_POLL_S):
                                callback(notice.payload)
                except psycopg.Error:
                    stopped.wait(WATCH_RETRY_S)

        thread = threading.Thread(target=listen, name=f"watch {self.schema}", daemon=True)
        thread.start()

        def stop() -> None:
            stopped.set()
            thread.join(timeout=WATCH_POLL_S * 4)

        return stop

    def drop(self) -> None:
        """Remove this store's schema and everything in it (tests and decommissioning)."""
        with self._session() as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PostgresReader(_PgReads):
    """A connection of its own on a store's schema, for reads that must not wait for the
    writer; each :meth:`snapshot` is one consistent state of the schema."""

    def __init__(self, dsn: str, schema: str) -> None:
        self._dsn, self._schema = dsn, schema
        self._lock = threading.Lock()
        try:
            self._conn = _connect(dsn, schema)
        except psycopg.Error as exc:
            raise StoreError(f"cannot read PostgreSQL store ({_safe(dsn)}): {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> PostgresReader:
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


__all__ = [
    "PgObservationTable",
    "PostgresReader",
    "PostgresStore",
    "QmarkConnection",
    "copy_rows",
    "stage",
]
