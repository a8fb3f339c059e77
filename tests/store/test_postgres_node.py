"""A node's whole store on PostgreSQL, shared by several processes: the audit chain stays one
chain and each link's batches stay numbered and chained, whoever writes."""

from __future__ import annotations

import datetime as dt
import select
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest

from agreements import agree
from kuroshio.audit import AuditLog
from kuroshio.exchange import outbox
from kuroshio.exchange.batch import GENESIS_HASH, read_header
from kuroshio.exchange.inbox import link_state
from kuroshio.exchange.wire import SignedReceipt
from kuroshio.federation.inbox import Inbox
from kuroshio.model import Marking
from kuroshio.node import Node, init_node, open_node
from kuroshio.pki import create_identity
from kuroshio.store import Outcome
from kuroshio.store.postgres import PostgresReader, PostgresStore
from observations import observation
from pinning import pin
from sealing import sealed_batch

T = TypeVar("T")
WRITERS = 4
ENTRIES_EACH = 30


@pytest.fixture
def schema(postgres_dsn: str) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield name
    with PostgresStore(postgres_dsn, schema=name) as store:
        store.drop()


def at_once(work: Callable[[T], None], args: Sequence[T]) -> list[BaseException]:
    """``work(arg)`` for each of ``args`` at once, each in a thread of its own (as each process
    of a node would run, on a connection of its own); what any of them raised."""
    failures: list[BaseException] = []

    def run(arg: T) -> None:
        try:
            work(arg)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=run, args=(arg,)) for arg in args]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_concurrent_writers_extend_one_audit_chain(
    postgres_dsn: str, schema: str, tmp_path: Path
) -> None:
    identity = create_identity(tmp_path / "keys", "TWN", "twn-1")

    def write(number: int) -> None:
        with PostgresStore(postgres_dsn, schema=schema) as store:
            log = AuditLog(store, identity, "TWN")
            for entry in range(ENTRIES_EACH):
                with store.transaction() as tx:
                    log.append(tx, "ingest", f"writer {number} entry {entry}", {"n": entry})

    assert at_once(write, range(WRITERS)) == []
    with PostgresStore(postgres_dsn, schema=schema) as store:
        report = AuditLog(store, identity, "TWN").verify()
    assert report.ok, report.problems
    assert report.checked == WRITERS * ENTRIES_EACH


@pytest.fixture
def pair(tmp_path: Path, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    monkeypatch.setenv("KUROSHIO_STORE_DSN", postgres_dsn)
    schemas = {p: f"test_{uuid.uuid4().hex[:12]}" for p in ("TWN", "JPN")}
    made = [
        init_node(tmp_path / p.lower(), p, store={"backend": "postgres", "schema": s})
        for p, s in schemas.items()
    ]
    pin(made[0], made[1])
    pin(made[1], made[0])
    for node in made:
        node.close()
    twn, jpn = open_node(tmp_path / "twn"), open_node(tmp_path / "jpn")
    agree([twn, jpn], tmp_path / "agreements")
    yield twn
    for node in (twn, jpn):
        node.close()
    for name in schemas.values():
        with PostgresStore(postgres_dsn, schema=name) as store:
            store.drop()


def test_processes_sealing_one_link_keep_its_batches_numbered_and_chained(
    pair: Node, tmp_path: Path
) -> None:
    twn = pair
    twn.ingest([observation(n, marking=Marking(releasable_to=("JPN",))) for n in range(400)])
    sealed: list[bytes] = []
    lock = threading.Lock()

    def seal(_: int) -> None:
        node = open_node(tmp_path / "twn")  # a process of its own, on the same schema
        try:
            while True:
                with node.store.transaction() as tx:
                    batch = outbox.seal_next(
                        tx,
                        "JPN",
                        signer=node.identity,
                        sender="TWN",
                        max_items=7,
                        max_bytes=1 << 20,
                        now=dt.datetime.now(dt.UTC),
                    )
                if batch is None:
                    return
                with lock:
                    sealed.append(batch.header_bytes)
        finally:
            node.close()

    assert at_once(seal, range(3)) == []  # no sealer ever collided with another
    headers = sorted((read_header(h) for h in sealed), key=lambda h: h.seq)
    assert [h.seq for h in headers] == list(range(1, len(headers) + 1))
    assert sum(h.count for h in headers) == 400  # every item once
    previous = GENESIS_HASH
    with twn.store.transaction() as tx:
        for header in headers:
            assert header.prev_hash == previous
            batch = outbox.sealed_batch(tx, "JPN", header.seq)
            assert batch is not None
            previous = batch.hash


def test_receiving_processes_given_the_same_batches_take_each_in_once(
    pair: Node, tmp_path: Path
) -> None:
    # Two connections of one partner held by three receiving processes (a sender that
    # reconnected while its old connection lingers): each batch arrives at all of them at once.
    twn = pair
    frames = []
    for number in range(4):
        items = range(number * 50, (number + 1) * 50)
        twn.ingest([observation(n, marking=Marking(releasable_to=("JPN",))) for n in items])
        frames.append(sealed_batch(twn, "JPN").frame())
    receivers = 3
    receipts: list[list[SignedReceipt]] = [[] for _ in frames]
    lock = threading.Lock()
    together = threading.Barrier(receivers)

    def receive(_: int) -> None:
        node = open_node(tmp_path / "jpn")  # a process of its own, on the same schema
        inbox = Inbox(node)
        try:
            for number, frame in enumerate(frames):
                together.wait()
                receipt = inbox.accept(node.partners["TWN"], frame)
                with lock:
                    receipts[number].append(receipt)
        except BaseException:
            together.abort()
            raise
        finally:
            node.close()

    assert at_once(receive, range(receivers)) == []  # no receiver collided with another
    for given in receipts:
        assert len(given) == receivers
        assert len({(receipt.receipt, receipt.signature) for receipt in given}) == 1
    jpn = open_node(tmp_path / "jpn")
    try:
        with jpn.store.transaction() as tx:
            assert link_state(tx, "TWN").last_seq == len(frames)
        assert jpn.store.count_versions() == 50 * len(frames)  # every item once
        assert len(jpn.audit.entries("receive")) == len(frames)  # taken in once each
        report = jpn.audit.verify()
        assert report.ok, report.problems
    finally:
        jpn.close()


@pytest.mark.parametrize(
    "sizes",
    [(300, 300, 300), (40, 40, 40), (300, 40, 40, 40, 40)],
    ids=["batches", "few-ids", "batch-and-few"],
)
def test_processes_appending_the_same_reports_store_each_once(
    postgres_dsn: str, schema: str, sizes: tuple[int, ...]
) -> None:
    """Processes append the same reports at once: appends of many ids lock their origin,
    of a few ids each id (see ``FEW_IDS``); either way each report is stored once."""
    items = [observation(n) for n in range(max(sizes))]
    outcomes: list[list[Outcome]] = []

    def append(size: int) -> None:
        with PostgresStore(postgres_dsn, schema=schema) as store:
            outcomes.append(store.append(items[:size]).outcomes)

    assert at_once(append, sizes) == []
    # Each report is new to exactly one of those that appended it, and the same to the others.
    for position in range(len(items)):
        seen = sorted(o[position].value for o in outcomes if position < len(o))
        assert seen == ["inserted"] + ["unchanged"] * (len(seen) - 1)
    with PostgresStore(postgres_dsn, schema=schema) as store:
        assert store.count_versions() == len(items)


def test_processes_appending_at_once_keep_the_count_held_exact(
    postgres_dsn: str, schema: str
) -> None:
    """Processes append and retract their own reports at once, past several folds of the count
    of reports held: none waits on another's fold, and the count the picture reads is what a
    scan of every current row gives."""
    origins = ("TWN", "JPN", "PHL", "USA")

    def append(origin: str) -> None:
        with PostgresStore(postgres_dsn, schema=schema) as store:
            for round_ in range(30):
                store.append(
                    [
                        observation(n, origin=origin, version=1 + round_)
                        for n in range(round_ * 50, round_ * 50 + 150)
                    ]
                )
                store.append([observation(round_, origin=origin, version=9, retracted=True)])

    assert at_once(append, origins) == []
    with PostgresStore(postgres_dsn, schema=schema) as store:
        assert store.count_versions() > 3 * 4_096
        (scanned,) = store.connection.execute(
            "SELECT count(*) FROM current WHERE retracted = 0"
        ).fetchone()
        (rows,) = store.connection.execute("SELECT count(*) FROM current_held").fetchone()
        # 1 600 ids each, of which the first 30 (met by the first append alone) retracted.
        assert store.extent().observations == scanned == len(origins) * (1_600 - 30)
        assert rows < len(origins) * 30  # of 240 appends that changed it: folded


def test_one_append_of_twenty_thousand_reports_is_stored(postgres_dsn: str, schema: str) -> None:
    """The server's shared lock table holds 64 locks per connection by default: an append
    locking each of its ids ran out of it ("out of shared memory") long before 20 000."""
    items = [observation(n) for n in range(20_000)]
    with PostgresStore(postgres_dsn, schema=schema) as store:
        result = store.append(items)
        assert [o.value for o in result.outcomes] == ["inserted"] * len(items)
        assert store.count_versions() == len(items)


def test_a_connection_left_in_pipeline_mode_is_made_again(postgres_dsn: str, schema: str) -> None:
    """A server restart in the middle of a pipelined statement leaves the connection in
    pipeline mode, neither closed nor marked broken, and every later query refused ("PQsendQuery
    not allowed in pipeline mode"): the store connects again, as after any lost connection."""
    with PostgresStore(postgres_dsn, schema=schema) as store:
        store.append([observation(1)])
        lost = store.connection
        lost.pgconn.enter_pipeline_mode()  # where such a restart leaves it
        store.append([observation(2)])
        assert store.connection is not lost and lost.closed
        assert store.count_versions() == 2


def _end_from_the_server(conn: psycopg.Connection[object], dsn: str) -> None:
    """What a database restart does to an idle connection (``pg_terminate_backend``, as an
    administrator would): the server ends it, and its last words wait on the socket."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
    deadline = time.monotonic() + 10
    while not select.select([conn.pgconn.socket], [], [], 0.1)[0]:
        assert time.monotonic() < deadline, "the server did not end the connection"


def test_a_connection_the_server_ended_while_idle_is_made_again_before_it_is_used(
    postgres_dsn: str, schema: str
) -> None:
    """After a database restart the first operation of each process went to its old connection
    and failed (the operator API answered 503 once per worker, each page's first poll an error):
    the store now finds such a connection without a round trip and connects again first."""
    with PostgresStore(postgres_dsn, schema=schema) as store:
        store.append([observation(1)])
        lost = store.connection
        _end_from_the_server(lost, postgres_dsn)
        assert store.append([observation(2)]).inserted == 1
        assert store.connection is not lost and lost.closed
        with PostgresReader(postgres_dsn, schema) as reader:
            assert reader.count_versions() == 2
            _end_from_the_server(reader._conn, postgres_dsn)
            assert reader.count_versions() == 2
