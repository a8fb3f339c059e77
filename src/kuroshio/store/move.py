"""Moving a node's store from its SQLite file into a schema of a PostgreSQL server: every table,
row for row, in one transaction on each side.

Both stores are made by the same numbered migrations (:mod:`kuroshio.store.schema`), so each
table of the file has its twin in the schema, with the same columns (the schema may have more:
its own, filled by their defaults). The file is read inside a write transaction that writes
nothing, so no other process changes it meanwhile; the schema must hold no rows yet. Rows keep
their keys and numbers (history seqs, outbox rows, audit seqs), and each counter of the schema
goes on after the highest number the file ever gave, so what the node gave out under those
numbers (receipts, batches, cursors) still names the same rows. The file is left as it was.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Final

import msgspec
import psycopg

from kuroshio.errors import StoreError
from kuroshio.store.postgres import Connection, PostgresStore, copy_rows
from kuroshio.store.sqlite import SQLiteStore

ROWS_PER_READ: Final = 5_000
"""Rows read from the file at a time (a store of millions of rows is never held whole)."""
_STEPS_KEY: Final = "migrations"


class MovedTable(msgspec.Struct, frozen=True, kw_only=True):
    """One table copied: its name and how many rows it holds on both sides."""

    table: str
    rows: int


def move_to_postgres(
    source: SQLiteStore,
    target: PostgresStore,
    *,
    on_rows: Callable[[str, int], None] | None = None,
) -> list[MovedTable]:
    """Copy every row of ``source`` into ``target`` (an empty schema), in one transaction: all of
    it or, on any error, nothing. ``on_rows(table, n)`` is called as each ``n`` rows are copied.
    Raises :class:`StoreError` saying which table and why."""
    if source.schema_version != target.schema_version:
        raise StoreError(
            f"the file is at schema version {source.schema_version}, the schema at"
            f" {target.schema_version}: open both with the same kuroshio"
        )
    pg = target.connection
    moved: list[MovedTable] = []
    with source.transaction() as held, pg.transaction():
        conn = held.connection
        # No other process moves into the same schema meanwhile, nor migrates it.
        pg.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (target.schema,))
        tables = _in_order(_tables(conn), pg)
        columns = {table: _columns(conn, table, pg) for table in tables}
        _check_empty(pg, target.schema)
        for table in tables:
            count = _copy_table(conn, pg, table, columns[table], on_rows)
            moved.append(MovedTable(table=table, rows=count))
        _continue_counters(conn, pg)
    return moved


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [
        str(name)
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
    ]


def _in_order(tables: list[str], pg: Connection) -> list[str]:
    """``tables`` with every table a foreign key refers to before the tables that refer to it."""
    refers: dict[str, set[str]] = {table: set() for table in tables}
    for table, referred in pg.execute(
        "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c"
        " JOIN pg_namespace n ON n.oid = c.connamespace"
        " WHERE c.contype = 'f' AND n.nspname = current_schema()"
    ).fetchall():
        if table in refers and referred != table:
            refers[table].add(referred)
    ordered: list[str] = []
    while refers:
        ready = sorted(table for table, before in refers.items() if not before - set(ordered))
        if not ready:
            raise StoreError(f"tables {sorted(refers)} refer to each other in a circle")
        for table in ready:
            ordered.append(table)
            del refers[table]
    return ordered


def _columns(conn: sqlite3.Connection, table: str, pg: Connection) -> tuple[str, ...]:
    """The file's columns of ``table``, each of which the schema's table must have."""
    mine = tuple(str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})"))
    theirs = {
        str(name)
        for (name,) in pg.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        ).fetchall()
    }
    if not theirs:
        raise StoreError(f"table {table} of the file has no twin in the schema")
    missing = [column for column in mine if column not in theirs]
    if missing:
        raise StoreError(f"table {table}: the schema lacks the columns {', '.join(missing)}")
    return mine


def _check_empty(pg: Connection, schema: str) -> None:
    """Refuse a schema that holds any row but its own migration count."""
    tables = [
        str(name)
        for (name,) in pg.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema ="
            " current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
        ).fetchall()
    ]
    held = [
        table
        for table in tables
        if pg.execute(
            f"SELECT EXISTS (SELECT 1 FROM {table}"
            + (" WHERE key <> %s)" if table == "meta" else ")"),
            (_STEPS_KEY,) if table == "meta" else (),
        ).fetchone()
        == (True,)
    ]
    if held:
        raise StoreError(
            f"schema {schema} already holds rows (in {', '.join(held)}): a store moves only into"
            " an empty schema; name another with --schema, or drop this one if it is not in use"
        )


def _copy_table(
    conn: sqlite3.Connection,
    pg: Connection,
    table: str,
    columns: tuple[str, ...],
    on_rows: Callable[[str, int], None] | None,
) -> int:
    """Copy the file's ``table`` into the schema's; how many rows it copied."""
    rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table}")
    # The schema counts its migrations under a key of its own in ``meta``; the file's other
    # keys go with it.
    skip = columns.index("key") if table == "meta" else None
    read = copied = 0
    while chunk := rows.fetchmany(ROWS_PER_READ):
        kept = chunk if skip is None else [row for row in chunk if row[skip] != _STEPS_KEY]
        try:
            copy_rows(pg, table, columns, kept)
        except (psycopg.Error, TypeError, ValueError, OverflowError) as error:
            raise StoreError(
                f"table {table}, rows {read + 1}–{read + len(chunk)} of the file: {error}"
            ) from None
        read += len(chunk)
        copied += len(kept)
        if on_rows is not None:
            on_rows(table, len(chunk))
    (held,) = pg.execute(
        f"SELECT count(*) FROM {table}" + (" WHERE key <> %s" if skip is not None else ""),
        (_STEPS_KEY,) if skip is not None else (),
    ).fetchone() or (0,)
    if int(held) != copied:
        raise StoreError(f"table {table}: {copied} rows copied, but the schema holds {held}")
    return copied


def _continue_counters(conn: sqlite3.Connection, pg: Connection) -> None:
    """Set each counter of the schema (a serial column's sequence) past the highest number its
    column holds or the file ever gave (``sqlite_sequence``: numbers of rows deleted since
    are not given again)."""
    given = {
        str(name): int(seq)
        for name, seq in conn.execute("SELECT name, seq FROM sqlite_sequence").fetchall()
    }
    for table, column in pg.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%%'"
    ).fetchall():
        row = pg.execute(f"SELECT max({column}) FROM {table}").fetchone()
        highest = max(int(row[0]) if row and row[0] is not None else 0, given.get(str(table), 0))
        if highest > 0:
            pg.execute(
                "SELECT setval(pg_get_serial_sequence(%s, %s), %s)", (table, column, highest)
            )


__all__ = ["MovedTable", "move_to_postgres"]
