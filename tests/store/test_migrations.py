"""A node directory made by kuroshio's first release opens with this one: its store migrates in
place, keeps every row, and everything signed in it still verifies."""

from __future__ import annotations

import datetime as dt
import sqlite3
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import psycopg
import pytest

from kuroshio.audit import tree_head
from kuroshio.errors import StoreError
from kuroshio.exchange import outbox
from kuroshio.exchange.inbox import verify_received
from kuroshio.exchange.receipt import open_receipt
from kuroshio.federation.inbox import Inbox
from kuroshio.fusion import SortieGate
from kuroshio.merkle import merkle_root
from kuroshio.model import Observation
from kuroshio.node import Node, open_node
from kuroshio.policy import reciprocity
from kuroshio.policy.ledger import given_entry
from kuroshio.store import ObservationFilter, schema
from kuroshio.store.postgres import PostgresStore
from kuroshio.store.sqlite import SQLiteStore
from observations import T0, observation

FIXTURE = Path(__file__).parent / "fixtures" / "nodes-schema1.tar.gz"
TABLES = (
    "observation_versions",
    "current",
    "events",
    "outbox",
    "sent_batches",
    "inbox_links",
    "inbox_batches",
    "inbox_items",
    "origin_proofs",
    "ledger",
    "reciprocity_state",
    "audit_log",
    "daily_counts",
)


def _rows(
    path: Path, columns: dict[str, list[str]] | None = None
) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table the first release kept, read without kuroshio: all columns, or
    the ``columns`` named per table (a later migration may add columns)."""
    conn = sqlite3.connect(path)
    try:
        present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        return {
            table: sorted(
                conn.execute(
                    f"SELECT {', '.join(columns[table]) if columns else '*'} FROM {table}"
                ).fetchall(),
                key=repr,
            )
            for table in TABLES
            if table in present and (not columns or columns.get(table))
        }
    finally:
        conn.close()


def _columns(path: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    try:
        found = {
            table: [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            for table in TABLES
        }
        return {table: names for table, names in found.items() if names}
    finally:
        conn.close()


@pytest.fixture
def old_nodes(tmp_path: Path) -> Iterator[Path]:
    with tarfile.open(FIXTURE) as archive:
        archive.extractall(tmp_path, filter="data")
    yield tmp_path


def _open(root: Path) -> tuple[Node, Node]:
    return open_node(root / "twn"), open_node(root / "jpn")


def test_a_first_release_store_migrates_in_place_and_keeps_every_row(old_nodes: Path) -> None:
    columns = {party: _columns(old_nodes / party / "store.sqlite") for party in ("twn", "jpn")}
    before = {party: _rows(old_nodes / party / "store.sqlite") for party in ("twn", "jpn")}
    assert (
        before["twn"]["ledger"] and before["twn"]["daily_counts"] and before["jpn"]["inbox_items"]
    )
    twn, jpn = _open(old_nodes)
    for node in (twn, jpn):
        assert node.store.schema_version == schema.SCHEMA_VERSION
    twn.close(), jpn.close()
    for party in ("twn", "jpn"):
        after = _rows(old_nodes / party / "store.sqlite", columns[party])
        for table, rows in before[party].items():
            assert after[table] == rows, f"{party}: {table} changed"
    # Opening again takes no step twice.
    with SQLiteStore(old_nodes / "twn" / "store.sqlite") as store:
        assert store.schema_version == schema.SCHEMA_VERSION
    # The current rows, made again without their foreign key, are indexed as before.
    conn = sqlite3.connect(old_nodes / "jpn" / "store.sqlite")
    try:
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(current)")}
        assert not conn.execute("PRAGMA foreign_key_list(current)").fetchall()
        # The batch tables, made again with rowids, keep one row per link and seq.
        for table in ("sent_batches", "inbox_batches"):
            (made,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,))
            assert "WITHOUT ROWID" not in made[0]
            assert [row[2] for row in conn.execute(f"PRAGMA index_list({table})")] == [1]
    finally:
        conn.close()
    assert {"current_time", "current_not_received"} <= indexes


def test_audit_chains_receipts_and_proofs_of_the_first_release_still_verify(
    old_nodes: Path,
) -> None:
    twn, jpn = _open(old_nodes)
    try:
        for node in (twn, jpn):
            report = node.audit.verify()
            assert report.ok and report.checked > 5
            # The log's Merkle tree was built from the entries already there.
            with sqlite3.connect(node.store.path) as conn:
                leaves = [
                    bytes(r[0]) for r in conn.execute("SELECT hash FROM audit_log ORDER BY seq")
                ]
            with node.store.transaction() as tx:
                assert tree_head(tx.audit) == (len(leaves), merkle_root(leaves))
        with twn.store.transaction() as tx:
            receipts = outbox.receipts(tx, "JPN", limit=1_000)
        assert receipts and all(row.receipt is not None for row in receipts)
        for row in receipts:
            assert row.receipt is not None
            assert open_receipt(row.receipt, jpn.identity.public_key_bytes).seq == row.seq
        received = jpn.store.get("TWN:fixture:0")
        assert received is not None and received.provenance.partner == "TWN"
        with jpn.store.transaction() as tx:
            check = verify_received(tx, jpn.pinned_keys(), received)
        assert check.status == "verified", check.detail
    finally:
        twn.close(), jpn.close()


def test_a_migrated_node_goes_on_exchanging(old_nodes: Path) -> None:
    twn, jpn = _open(old_nodes)
    try:
        with twn.store.transaction() as tx:
            # Two reports and a correction left waiting by the first release.
            assert outbox.state(tx, "JPN").pending == 3
            sealed = outbox.seal_next(
                tx,
                "JPN",
                signer=twn.identity,
                sender="TWN",
                max_items=10,
                max_bytes=1 << 20,
                now=dt.datetime.now(dt.UTC),
            )
        assert sealed is not None and sealed.header.seq == 2  # the chain goes on
        signed = Inbox(jpn).accept(jpn.partners["TWN"], sealed.frame())
        receipt = open_receipt(signed, jpn.identity.public_key_bytes)
        assert receipt.stored == 3
        with twn.store.transaction() as tx:
            assert outbox.record_receipt(tx, "JPN", receipt, signed, now=receipt.received_at)
            assert outbox.state(tx, "JPN").pending == 0
            given = reciprocity.entries(tx, partner="JPN", since=receipt.received_at)
        # Queued without the ledger's fields, the items are read back for their given rows.
        as_sent = [msgspec.json.decode(item, type=Observation) for item in sealed.items]
        assert sorted(given, key=lambda e: (e.item, e.version)) == sorted(
            (given_entry(o, "JPN", receipt.received_at) for o in as_sent),
            key=lambda e: (e.item, e.version),
        )
        for node in (twn, jpn):
            assert node.audit.verify().ok
    finally:
        twn.close(), jpn.close()


def test_a_store_from_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer kuroshio"):
        SQLiteStore(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION + 1
    conn.close()


def test_intervals_stored_before_the_window_bound_was_kept_are_found_after_migrating(
    tmp_path: Path,
) -> None:
    """A store from before ``current_spans`` (migration 0019) holding a report that spans six
    days and a point: migrating bounds window queries by the short rows' spans alone, and the
    window at the report's end still finds it, by its end (``current_long``, migration 0026)."""
    path = tmp_path / "store.sqlite"
    with SQLiteStore(path) as store:
        store.append(
            [
                observation(1, kind="sea", at=T0 - dt.timedelta(days=6), until=T0),
                observation(2, at=T0 - dt.timedelta(days=6)),
            ]
        )
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute("DROP TABLE current_spans")
            conn.execute("UPDATE meta SET value = '18' WHERE key = 'schema_version'")
            conn.execute("PRAGMA user_version = 18")
    finally:
        conn.close()
    window = ObservationFilter(start=T0 - dt.timedelta(hours=1), end=T0 + dt.timedelta(hours=1))
    with SQLiteStore(path) as store:
        assert store.schema_version == schema.SCHEMA_VERSION
        assert [o.id for o in store.iter_query(window)] == ["TWN:test:1"]
    conn = sqlite3.connect(path)
    try:
        # Six days are longer than LONG_SPAN_US, and the point spans nothing: no bucket.
        assert conn.execute("SELECT bucket FROM current_spans").fetchall() == []
        assert conn.execute("SELECT sum(n) FROM current_held").fetchall() == [(2,)]
    finally:
        conn.close()


def test_postgresql_takes_the_same_migrations(postgres_dsn: str, tmp_path: Path) -> None:
    schema_name = f"test_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(postgres_dsn, schema=schema_name)
    try:
        assert store.schema_version == schema.SCHEMA_VERSION
        tables = {
            row[0]
            for row in store.connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema_name,),
            )
        }
        embedded = SQLiteStore(tmp_path / "embedded.sqlite")
        embedded.close()
        assert set(_rows(tmp_path / "embedded.sqlite")) <= tables
        with (
            pytest.raises(psycopg.errors.RaiseException, match="append-only"),
            store.connection.transaction(),
        ):
            store.connection.execute(
                "INSERT INTO audit_log VALUES (1, 'x', 'TWN', 'ingest', 's', '{}', '', '', '')"
            )
            store.connection.execute("DELETE FROM audit_log")
    finally:
        store.drop()
        store.close()


def test_history_stored_before_rows_named_their_transaction_is_never_read_as_new(
    postgres_dsn: str,
) -> None:
    """A PostgreSQL store from before history rows named their transaction (migration 0020):
    the rows already there name none and count as stored before any reading, so a batch's
    own reports kept for the next batch serve it; a report stored after migrating counts
    once stored."""
    schema_name = f"test_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(postgres_dsn, schema=schema_name)
    try:
        store.append([observation(n, origin="JPN", lon=121.0 + n) for n in range(3)])
        with store.connection.transaction():
            store.connection.execute("ALTER TABLE observation_versions DROP COLUMN xact")
            store.connection.execute("UPDATE meta SET value = '19' WHERE key = 'migrations'")
        store.close()
        store = PostgresStore(postgres_dsn, schema=schema_name)
        assert store.schema_version == schema.SCHEMA_VERSION
        unnamed = store.connection.execute(
            "SELECT count(*) FROM observation_versions WHERE xact IS NULL"
        ).fetchone()
        assert unnamed == (3,)
        gate, window = SortieGate(), reciprocity.OwnWindow()
        received = [observation(100, lon=125.5)]

        def judged() -> list[bool]:
            with store.transaction() as tx:
                return reciprocity.judge_novelty(tx, received, "JPN", gate, window)

        with store.transaction() as tx:
            mark = tx.observations.mark()
        assert judged() == [True]
        with store.transaction() as tx:
            assert tx.observations.ids_of_origin_since("JPN", mark, 10) == []
        store.append([observation(7, origin="JPN", lon=125.51)])  # the node's own, 1 km away
        with store.transaction() as tx:
            assert tx.observations.ids_of_origin_since("JPN", mark, 10) == ["JPN:test:7"]
        assert judged() == [False]
    finally:
        store.drop()
        store.close()


def test_postgresql_text_compares_byte_wise_whatever_the_server_locale(
    postgres_dsn: str,
) -> None:
    """A PostgreSQL store made before text compared byte-wise (migration 0021), on a server
    whose locale sorts case-insensitively: migrating keeps its rows and makes every text column
    compare as SQLite's do, so 'TWN' sorts before 'a'."""
    schema_name = f"test_{uuid.uuid4().hex[:12]}"
    store = PostgresStore(postgres_dsn, schema=schema_name)
    try:
        store.append([observation(n) for n in range(3)])
        with store.connection.transaction():
            for table, column in (("current", "origin"), ("outbox", "partner")):
                store.connection.execute(
                    f'ALTER TABLE {table} ALTER COLUMN {column} TYPE TEXT COLLATE "en-US-x-icu"'
                )
            before = store.connection.execute("SELECT bool_and(origin < 'a') FROM current")
            assert before.fetchone() == (False,)
            store.connection.execute("UPDATE meta SET value = '20' WHERE key = 'migrations'")
        store.close()
        store = PostgresStore(postgres_dsn, schema=schema_name)
        assert store.schema_version == schema.SCHEMA_VERSION
        after = store.connection.execute("SELECT bool_and(origin < 'a'), count(*) FROM current")
        assert after.fetchone() == (True, 3)
        not_bytewise = store.connection.execute(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = %s AND data_type = 'text'"
            " AND collation_name IS DISTINCT FROM 'C'",
            (schema_name,),
        ).fetchall()
        assert not_bytewise == []
        assert [o.id for o in store.iter_query(ObservationFilter())] == [
            f"TWN:test:{n}" for n in range(3)
        ]
    finally:
        store.drop()
        store.close()
