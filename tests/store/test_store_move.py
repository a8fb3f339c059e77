"""``kuroshio store move``: a node that outgrows its SQLite file moves its whole store into a
PostgreSQL schema (the real server on 5432) and goes on where it stopped: every row as it was,
the audit chain whole, and its partners' links carrying on without noticing."""

from __future__ import annotations

import json
import socket
import sqlite3
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from agreements import agree
from cli_run import run
from kuroshio.exchange import outbox
from kuroshio.exchange.inbox import link_state, verify_received
from kuroshio.exchange.receipt import open_receipt
from kuroshio.federation.inbox import Inbox
from kuroshio.model import Marking
from kuroshio.node import Node, exclusive, open_node
from kuroshio.store.postgres import PostgresStore
from observations import observation
from pinning import pinned_nodes
from sealing import sealed_batch

FIRST_RELEASE = Path(__file__).parent / "fixtures" / "nodes-schema1.tar.gz"


@pytest.fixture
def schema(postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A schema name no one uses, dropped afterwards; the server is named the way a user names
    it (KUROSHIO_STORE_DSN)."""
    monkeypatch.setenv("KUROSHIO_STORE_DSN", postgres_dsn)
    name = f"test_move_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def _exchange(sender: Node, receiver: Node) -> int:
    """One batch from ``sender``'s outbox for ``receiver``, taken in and its receipt stored."""
    signed = Inbox(receiver).accept(
        receiver.partners[sender.party], sealed_batch(sender, receiver.party).frame()
    )
    receipt = open_receipt(signed, receiver.identity.public_key_bytes)
    assert sender.take_receipt(receiver.party, receipt, signed)
    return receipt.seq


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    """TWN and JPN on SQLite files, pinned and agreed, with batches exchanged both ways."""
    twn, jpn = pinned_nodes(tmp_path, ("TWN", "JPN"))
    agree([twn, jpn], tmp_path / "agreements")
    for start in (0, 40):
        twn.ingest(
            [
                observation(n, marking=Marking(releasable_to=("JPN",)))
                for n in range(start, start + 40)
            ]
        )
        _exchange(twn, jpn)
    jpn.ingest(
        [observation(n, origin="JPN", marking=Marking(releasable_to=("TWN",))) for n in range(25)]
    )
    _exchange(jpn, twn)
    # Something still waiting in JPN's outbox: it must go out from the schema, in its turn.
    jpn.ingest(
        [
            observation(n, origin="JPN", marking=Marking(releasable_to=("TWN",)))
            for n in range(25, 30)
        ]
    )
    jpn.close()
    yield twn, jpn
    twn.close()
    jpn.close()


def _refused(directory: Path, *options: str, saying: str, stays: str) -> None:
    """``store move`` with ``options`` fails, says ``saying`` (no traceback), and leaves the
    node on the store it was on (``stays``: its backend)."""
    refused = run("store", "move", "-n", directory, *options)
    assert refused.returncode != 0
    assert saying in " ".join(refused.stderr.split()) and "Traceback" not in refused.stderr
    with open_node(directory) as node:
        assert node.config.store.backend == stays


def _file_rows(path: Path) -> dict[str, tuple[list[str], list[tuple[object, ...]]]]:
    """Every table of a store file: its columns and its rows, read without kuroshio."""
    conn = sqlite3.connect(path)
    try:
        tables = [
            str(row[0])
            for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        found = {}
        for table in tables:
            columns = [str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")]
            rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
            found[table] = (columns, sorted(rows, key=repr))
        return found
    finally:
        conn.close()


def _without_own(meta: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return [row for row in meta if row[0] not in ("migrations", "schema_version")]


def _schema_rows(dsn: str, schema: str, table: str, columns: list[str]) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(f"SELECT {', '.join(columns)} FROM {schema}.{table}").fetchall()
    return sorted(rows, key=repr)


def test_a_node_moved_to_postgresql_keeps_every_row_and_its_links_go_on(
    pair: tuple[Node, Node], schema: str, postgres_dsn: str
) -> None:
    twn, jpn = pair
    directory = jpn.directory
    before = _file_rows(directory / "store.sqlite")
    assert before["inbox_batches"][1] and before["ledger"][1] and before["outbox"][1]
    with open_node(directory) as old:
        head = old.audit.verify().head

    moved = run("store", "move", "-n", directory, "--schema", schema, check=True)

    assert f"moved into PostgreSQL schema {schema}" in " ".join(moved.stdout.split())
    # The node now runs on the schema, and the file is left as it was.
    assert _file_rows(directory / "store.sqlite") == before
    with open_node(directory) as node:
        assert node.config.store.backend == "postgres"
        assert isinstance(node.store, PostgresStore) and node.store.schema == schema
    # Every row of every table, as the file held it (meta: the file's keys; the schema adds
    # its own migration count).
    for table, (columns, rows) in before.items():
        kept = _schema_rows(postgres_dsn, schema, table, columns)
        if table == "meta":  # each backend counts its own migrations
            kept, rows = _without_own(kept), _without_own(rows)
        assert kept == rows, f"{table} differs after the move"
    verified = run("audit", "verify", "-n", directory, check=True)
    assert f"head seq {head.seq} {head.hash.hex()[:16]}" in verified.stdout

    jpn = open_node(directory)
    try:
        # A received item still checks out against the sender's signed batch.
        received = jpn.store.get("TWN:test:3")
        assert received is not None
        with jpn.store.transaction() as tx:
            assert verify_received(tx, jpn.pinned_keys(), received).status == "verified"
            assert link_state(tx, "TWN").last_seq == 2
        # TWN's link goes on with its next batch, and JPN's log grows from the same head.
        twn.ingest([observation(n, marking=Marking(releasable_to=("JPN",))) for n in range(80, 90)])
        assert _exchange(twn, jpn) == 3
        # JPN's waiting items go out next, chained to the batch it sent from the file.
        assert _exchange(jpn, twn) == 2
        jpn.ingest(
            [
                observation(n, origin="JPN", marking=Marking(releasable_to=("TWN",)))
                for n in range(30, 33)
            ]
        )
        assert _exchange(jpn, twn) == 3
        with jpn.store.transaction() as tx:
            assert outbox.state(tx, "TWN").pending == 0
        assert jpn.store.count_versions() == 80 + 30 + 10 + 3
        report = jpn.audit.verify()
        assert report.ok, report.problems
        assert report.checked > head.seq
    finally:
        jpn.close()
    # TWN checks that the heads JPN signed in its receipts, before and after, are one log.
    partner = run("audit", "verify", "-n", twn.directory, "--partner", "JPN")
    assert partner.returncode == 0, partner.stdout + partner.stderr


def test_a_store_made_by_the_first_release_moves_too(tmp_path: Path, schema: str) -> None:
    with tarfile.open(FIRST_RELEASE) as archive:
        archive.extractall(tmp_path, filter="data")
    directory = tmp_path / "jpn"
    moved = json.loads(
        run("store", "move", "-n", directory, "--schema", schema, "--json", check=True).stdout
    )
    assert moved["schema"] == schema and moved["file"] == str(directory / "store.sqlite")
    assert moved["tables"]["inbox_items"] > 0 and moved["tables"]["ledger"] > 0
    with open_node(directory) as jpn:
        report = jpn.audit.verify()
        assert report.ok and report.checked > 5
        received = jpn.store.get("TWN:fixture:0")
        assert received is not None and received.provenance.partner == "TWN"
        with jpn.store.transaction() as tx:
            assert verify_received(tx, jpn.pinned_keys(), received).status == "verified"


def test_a_store_does_not_move_into_a_schema_that_holds_rows(
    pair: tuple[Node, Node], schema: str, postgres_dsn: str, tmp_path: Path
) -> None:
    twn, jpn = pair
    run("store", "move", "-n", twn.directory, "--schema", schema, check=True)
    with PostgresStore(postgres_dsn, schema=schema) as store:
        versions = store.count_versions()

    _refused(
        jpn.directory,
        "--schema",
        schema,
        saying=f"schema {schema} already holds rows",
        stays="sqlite",
    )
    with PostgresStore(postgres_dsn, schema=schema) as store:
        assert store.count_versions() == versions  # and TWN's rows are untouched


def test_a_served_node_does_not_move(pair: tuple[Node, Node], schema: str) -> None:
    _, jpn = pair
    with open_node(jpn.directory) as node, exclusive(node):
        _refused(
            jpn.directory,
            "--schema",
            schema,
            saying="already served by another process",
            stays="sqlite",
        )


def test_a_move_without_a_server_named_says_how_to_name_one(
    pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, jpn = pair
    monkeypatch.delenv("KUROSHIO_STORE_DSN", raising=False)
    _refused(jpn.directory, saying="set KUROSHIO_STORE_DSN", stays="sqlite")


def test_a_move_that_fails_midway_moves_nothing(
    pair: tuple[Node, Node], schema: str, postgres_dsn: str
) -> None:
    _, jpn = pair
    # A row the server cannot take (a text with a NUL character, which SQLite keeps): the
    # copy fails at that table, and everything copied before it is rolled back.
    with sqlite3.connect(jpn.directory / "store.sqlite") as conn:
        conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", ("note", "a\x00b"))

    _refused(jpn.directory, "--schema", schema, saying="table meta, rows", stays="sqlite")

    with open_node(jpn.directory) as node:
        assert node.store.count_versions() == 110
    with psycopg.connect(postgres_dsn) as conn:
        for table in ("audit_log", "current", "daily_counts", "observation_versions"):
            held = conn.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone()
            assert held == (0,), f"{table} kept rows of a move that failed"


def test_a_node_moved_back_to_a_file_keeps_every_row_and_its_links_go_on(
    pair: tuple[Node, Node], schema: str, postgres_dsn: str
) -> None:
    twn, jpn = pair
    directory = jpn.directory
    run("store", "move", "-n", directory, "--schema", schema, check=True)
    # On PostgreSQL, the node goes on: its next batch out is acked (its outbox rows deleted)
    # and another comes in.
    jpn = open_node(directory)
    try:
        assert _exchange(jpn, twn) == 2
        twn.ingest([observation(n, marking=Marking(releasable_to=("JPN",))) for n in range(80, 90)])
        assert _exchange(twn, jpn) == 3
        head = jpn.audit.verify().head
    finally:
        jpn.close()

    # The file it moved from is out of date: it does not move back over it.
    _refused(directory, saying="exists", stays="postgres")
    back = run("store", "move", "-n", directory, "--file", "back.sqlite", "--json", check=True)

    assert json.loads(back.stdout)["backend"] == "sqlite"
    copied = _file_rows(directory / "back.sqlite")
    for table, (columns, rows) in copied.items():
        kept = _schema_rows(postgres_dsn, schema, table, columns)
        if table == "meta":
            kept, rows = _without_own(kept), _without_own(rows)
        assert rows == kept, f"{table} differs after the move back"
    assert len(copied["observation_versions"][1]) == 80 + 30 + 10
    with psycopg.connect(postgres_dsn) as conn:
        (given,) = conn.execute(f"SELECT last_value FROM {schema}.outbox_row_seq").fetchone() or (
            0,
        )
    with sqlite3.connect(directory / "back.sqlite") as conn:
        counters = dict(conn.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
    assert counters["outbox"] >= given > 0  # numbers given on PostgreSQL are not given again
    verified = run("audit", "verify", "-n", directory, check=True)
    assert f"head seq {head.seq} {head.hash.hex()[:16]}" in verified.stdout

    jpn = open_node(directory)
    try:
        assert jpn.config.store.backend == "sqlite" and jpn.config.store.path == "back.sqlite"
        jpn.ingest(
            [
                observation(n, origin="JPN", marking=Marking(releasable_to=("TWN",)))
                for n in range(40, 45)
            ]
        )
        assert _exchange(jpn, twn) == 3
        twn.ingest([observation(n, marking=Marking(releasable_to=("JPN",))) for n in range(90, 95)])
        assert _exchange(twn, jpn) == 4
        assert jpn.audit.verify().ok
    finally:
        jpn.close()
    partner = run("audit", "verify", "-n", twn.directory, "--partner", "JPN")
    assert partner.returncode == 0, partner.stdout + partner.stderr


def test_a_store_does_not_move_back_while_another_process_uses_its_schema(
    pair: tuple[Node, Node], schema: str, postgres_dsn: str
) -> None:
    _, jpn = pair
    run("store", "move", "-n", jpn.directory, "--schema", schema, check=True)
    # A process of the node on another machine (the serve lock is this machine's only).
    with PostgresStore(postgres_dsn, schema=schema):
        _refused(
            jpn.directory,
            "--file",
            "back.sqlite",
            saying="stop every process of the node, on every machine",
            stays="postgres",
        )
    assert not (jpn.directory / "back.sqlite").exists()


def test_a_move_to_a_server_that_does_not_answer_says_so_and_moves_nothing(
    pair: tuple[Node, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, jpn = pair
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv("KUROSHIO_STORE_DSN", f"host=127.0.0.1 port={port} user=kuroshio")
    _refused(jpn.directory, saying="cannot open PostgreSQL store", stays="sqlite")
