"""Moving a node's store between its SQLite file and a schema of a PostgreSQL server, either way:
every table, row for row, in one transaction on each side.

Both stores are made by the same numbered migrations (:mod:`kuroshio.store.schema`), so each
table of one has its twin in the other with the same columns, but for a few a backend keeps for
itself (:data:`BACKEND_ONLY`: filled by their defaults on PostgreSQL, not needed on SQLite). The
source is read in a transaction that holds up every writer, so it does not change meanwhile;
the target must hold no rows yet. Rows keep their keys and numbers (history seqs, outbox rows,
audit seqs), and each counter of the target goes on after the highest number the source ever
gave, so what the node gave out under those numbers (receipts, batches, cursors) still names
the same rows. The source is left as it was.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, Protocol

import msgspec
import psycopg

from kuroshio.errors import StoreError
from kuroshio.store.postgres import Connection, PostgresStore, application_name, copy_rows
from kuroshio.store.sql import insert_rows
from kuroshio.store.sqlite import SQLiteStore

ROWS_PER_READ: Final = 5_000
"""Rows read from the source at a time (a store of millions of rows is never held whole)."""
BACKEND_ONLY: Final = frozenset({("observation_versions", "xact")})
"""Columns one backend keeps for itself: on PostgreSQL the transaction that stored each history
row (migration ``0020``), which a file has no use for."""
_OWN_META: Final = frozenset({"migrations", "schema_version"})
"""``meta`` keys each backend keeps for itself (its migration count), never moved."""


class MovedTable(msgspec.Struct, frozen=True, kw_only=True):
    """One table copied: its name and how many rows it holds on both sides."""

    table: str
    rows: int


class _Side(Protocol):
    """One store as the move sees it, inside its transaction."""

    def tables(self) -> list[str]: ...

    def columns(self, table: str) -> list[str]: ...

    def refers(self, table: str) -> set[str]:
        """The tables ``table``'s foreign keys refer to."""
        ...

    def rows(self, table: str, columns: Sequence[str]) -> Iterator[list[Any]]:
        """The rows of ``table``, a chunk at a time."""
        ...

    def write(self, table: str, columns: Sequence[str], rows: Sequence[Any]) -> None: ...

    def count(self, table: str) -> int:
        """Rows of ``table`` (``meta``: but the backend's own keys)."""
        ...

    def counters(self) -> dict[str, int]:
        """The highest number each table's counter ever gave (by table)."""
        ...

    def continue_counters(self, given: dict[str, int]) -> None:
        """Set each counter past the highest number its column holds or ``given`` names."""
        ...


class _File:
    """A SQLite file, on the connection of a write transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def tables(self) -> list[str]:
        return [
            str(name)
            for (name,) in self._conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]

    def columns(self, table: str) -> list[str]:
        return [str(row[1]) for row in self._conn.execute(f"PRAGMA table_info({table})")]

    def refers(self, table: str) -> set[str]:
        return {str(row[2]) for row in self._conn.execute(f"PRAGMA foreign_key_list({table})")}

    def rows(self, table: str, columns: Sequence[str]) -> Iterator[list[Any]]:
        cursor = self._conn.execute(f"SELECT {', '.join(columns)} FROM {table}")
        while chunk := cursor.fetchmany(ROWS_PER_READ):
            yield chunk

    def write(self, table: str, columns: Sequence[str], rows: Sequence[Any]) -> None:
        insert_rows(self._conn, f"INSERT INTO {table} ({', '.join(columns)})", rows)

    def count(self, table: str) -> int:
        return _count(self._conn.execute, table, "?")

    def counters(self) -> dict[str, int]:
        return {
            str(name): int(seq)
            for name, seq in self._conn.execute("SELECT name, seq FROM sqlite_sequence")
        }

    def continue_counters(self, given: dict[str, int]) -> None:
        # A row inserted with its number moves its table's counter up to it; a higher number
        # given before (its row deleted since) is set here.
        for table, highest in given.items():
            self._conn.execute(
                "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = ?", (highest, table)
            )
            self._conn.execute(
                "INSERT INTO sqlite_sequence (name, seq) SELECT ?, ?"
                " WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?)",
                (table, highest, table),
            )


class _Schema:
    """A PostgreSQL schema, on the connection of a transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def tables(self) -> list[str]:
        return [
            str(name)
            for (name,) in self._conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema ="
                " current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
            ).fetchall()
        ]

    def columns(self, table: str) -> list[str]:
        return [
            str(name)
            for (name,) in self._conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema ="
                " current_schema() AND table_name = %s ORDER BY ordinal_position",
                (table,),
            ).fetchall()
        ]

    def refers(self, table: str) -> set[str]:
        return {
            str(name)
            for (name,) in self._conn.execute(
                "SELECT c.confrelid::regclass::text FROM pg_constraint c"
                " WHERE c.contype = 'f' AND c.conrelid = %s::regclass",
                (table,),
            ).fetchall()
        }

    def rows(self, table: str, columns: Sequence[str]) -> Iterator[list[Any]]:
        with self._conn.cursor(name=f"move_{table}") as cursor:
            cursor.execute(f"SELECT {', '.join(columns)} FROM {table}")
            while chunk := cursor.fetchmany(ROWS_PER_READ):
                yield chunk

    def write(self, table: str, columns: Sequence[str], rows: Sequence[Any]) -> None:
        copy_rows(self._conn, table, tuple(columns), rows)

    def count(self, table: str) -> int:
        return _count(self._conn.execute, table, "%s")

    def _serials(self) -> list[tuple[str, str]]:
        return [
            (str(table), str(column))
            for table, column in self._conn.execute(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%%'"
            ).fetchall()
        ]

    def counters(self) -> dict[str, int]:
        given: dict[str, int] = {}
        for table, column in self._serials():
            row = self._conn.execute(
                f"SELECT last_value, is_called FROM {self._sequence(table, column)}"
            ).fetchone()
            if row is not None and row[1]:
                given[table] = int(row[0])
        return given

    def continue_counters(self, given: dict[str, int]) -> None:
        for table, column in self._serials():
            row = self._conn.execute(f"SELECT max({column}) FROM {table}").fetchone()
            held = int(row[0]) if row is not None and row[0] is not None else 0
            highest = max(held, given.get(table, 0))
            if highest > 0:
                self._conn.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, %s), %s)", (table, column, highest)
                )

    def _sequence(self, table: str, column: str) -> str:
        row = self._conn.execute(
            "SELECT pg_get_serial_sequence(%s, %s)", (table, column)
        ).fetchone()
        assert row is not None and row[0] is not None, f"{table}.{column} has no sequence"
        return str(row[0])


def _count(execute: Callable[..., Any], table: str, marker: str) -> int:
    own = ", ".join([marker] * len(_OWN_META))
    where = f" WHERE key NOT IN ({own})" if table == "meta" else ""
    row = execute(
        f"SELECT count(*) FROM {table}{where}", tuple(_OWN_META) if table == "meta" else ()
    ).fetchone()
    return int(row[0]) if row is not None else 0


def move_to_postgres(
    source: SQLiteStore,
    target: PostgresStore,
    *,
    on_rows: Callable[[str, int], None] | None = None,
) -> list[MovedTable]:
    """Copy every row of ``source`` into ``target`` (an empty schema), in one transaction: all of
    it or, on any error, nothing. ``on_rows(table, n)`` is called as each ``n`` rows are copied.
    Raises :class:`StoreError` saying which table and why."""
    _same_version(source, target)
    pg = target.connection
    with (
        _failing(f"moving {source.path} into schema {target.schema}"),
        source.transaction() as held,
        pg.transaction(),
    ):
        # No other process moves into the same schema meanwhile, nor migrates it.
        pg.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (target.schema,))
        schema = _Schema(pg)
        held_tables = [t for t in schema.tables() if schema.count(t)]
        if held_tables:
            raise StoreError(
                f"schema {target.schema} already holds rows (in {', '.join(held_tables)}):"
                " a store moves only into an empty schema; name another with --schema, or drop"
                " this one if it is not in use"
            )
        return _move(_File(held.connection), schema, on_rows)


def move_to_sqlite(
    source: PostgresStore,
    target: SQLiteStore,
    *,
    on_rows: Callable[[str, int], None] | None = None,
) -> list[MovedTable]:
    """Copy every row of ``source`` into ``target`` (a new file), in one transaction: all of it
    or, on any error, nothing. The schema's tables are held up for writers meanwhile, and no
    other process of the node may be connected to it (another machine's workers would go on
    writing the schema after the move). Raises :class:`StoreError` saying which table and why."""
    _same_version(source, target)
    pg = source.connection
    with (
        _failing(f"moving schema {source.schema} into {target.path}"),
        pg.transaction(),
        target.transaction() as held,
    ):
        pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        others = pg.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
            " AND pid <> pg_backend_pid()",
            (application_name(source.schema),),
        ).fetchone()
        if others is not None and int(others[0]):
            raise StoreError(
                f"{others[0]} other connections of the node use schema {source.schema}: stop"
                " every process of the node, on every machine, before it moves"
            )
        schema = _Schema(pg)
        pg.execute(f"LOCK TABLE {', '.join(schema.tables())} IN SHARE MODE")
        file = _File(held.connection)
        held_tables = [t for t in file.tables() if file.count(t)]
        if held_tables:
            raise StoreError(f"{target.path} already holds rows (in {', '.join(held_tables)})")
        return _move(schema, file, on_rows)


@contextlib.contextmanager
def _failing(what: str) -> Iterator[None]:
    """A database error anywhere in a move (the server gone, a disk full) as a
    :class:`StoreError` that says what was moving; the move's transactions roll back."""
    try:
        yield
    except (psycopg.Error, sqlite3.Error) as error:
        raise StoreError(f"{what}: {error}") from None


def _same_version(source: SQLiteStore | PostgresStore, target: SQLiteStore | PostgresStore) -> None:
    if source.schema_version != target.schema_version:
        raise StoreError(
            f"the source is at schema version {source.schema_version}, the target at"
            f" {target.schema_version}: open both with the same kuroshio"
        )


def _move(
    source: _Side, target: _Side, on_rows: Callable[[str, int], None] | None
) -> list[MovedTable]:
    tables = _in_order(source.tables(), target)
    columns = {table: _columns(source, target, table) for table in tables}
    moved: list[MovedTable] = []
    for table in tables:
        copied = _copy_table(source, target, table, columns[table], on_rows)
        held = target.count(table)
        if held != copied:
            raise StoreError(f"table {table}: {copied} rows copied, but the target holds {held}")
        moved.append(MovedTable(table=table, rows=copied))
    target.continue_counters(source.counters())
    return moved


def _in_order(tables: list[str], target: _Side) -> list[str]:
    """``tables`` with every table a foreign key of ``target`` refers to before the tables that
    refer to it."""
    refers = {table: target.refers(table) - {table} for table in tables}
    ordered: list[str] = []
    while refers:
        ready = sorted(table for table, before in refers.items() if not before - set(ordered))
        if not ready:
            raise StoreError(f"tables {sorted(refers)} refer to each other in a circle")
        for table in ready:
            ordered.append(table)
            del refers[table]
    return ordered


def _columns(source: _Side, target: _Side, table: str) -> list[str]:
    """The columns of ``table`` to copy: the source's, each of which the target must have but
    for the ones a backend keeps for itself."""
    theirs = set(target.columns(table))
    if not theirs:
        raise StoreError(f"table {table} has no twin in the store moved to")
    mine = [c for c in source.columns(table) if c in theirs or (table, c) not in BACKEND_ONLY]
    missing = [column for column in mine if column not in theirs]
    if missing:
        raise StoreError(
            f"table {table}: the store moved to lacks the columns {', '.join(missing)}"
        )
    return mine


def _copy_table(
    source: _Side,
    target: _Side,
    table: str,
    columns: list[str],
    on_rows: Callable[[str, int], None] | None,
) -> int:
    """Copy ``table``; how many rows it copied."""
    # Each backend counts its migrations in ``meta``: the other keys go with the store.
    skip = columns.index("key") if table == "meta" else None
    read = copied = 0
    for chunk in source.rows(table, columns):
        kept = chunk if skip is None else [row for row in chunk if row[skip] not in _OWN_META]
        try:
            target.write(table, columns, kept)
        except (psycopg.Error, sqlite3.Error, TypeError, ValueError, OverflowError) as error:
            raise StoreError(
                f"table {table}, rows {read + 1}–{read + len(chunk)}: {error}"
            ) from None
        read += len(chunk)
        copied += len(kept)
        if on_rows is not None:
            on_rows(table, len(chunk))
    return copied


__all__ = ["BACKEND_ONLY", "MovedTable", "move_to_postgres", "move_to_sqlite"]
