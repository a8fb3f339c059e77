"""Both stores, on a real SQLite file and a real PostgreSQL server: same rules, same answers."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import POSTGRES_DSN
from kuroshio.errors import StoreError
from kuroshio.exchange.outbox import record_receipt, wire_bytes
from kuroshio.exchange.receipt import Receipt
from kuroshio.exchange.wire import SignedReceipt
from kuroshio.fusion import SortieGate, same_sortie
from kuroshio.fusion.novelty import OwnReports, PreparedReport
from kuroshio.model import Event, LineString, Observation, Platform, Point, Provenance, Source
from kuroshio.policy import reciprocity
from kuroshio.policy.agreement import Reciprocity
from kuroshio.policy.ledger import given_entry, reciprocity_status
from kuroshio.policy.reciprocity import given_fields
from kuroshio.store import EventFilter, ObservationFilter, Outcome
from kuroshio.store.backend import NodeStore, Reader
from kuroshio.store.postgres import PostgresStore
from kuroshio.store.sql import LONG, micros
from kuroshio.store.sqlite import SQLiteStore
from observations import T0, observation

MINUTE = dt.timedelta(minutes=1)

AnyStore = SQLiteStore | PostgresStore


@pytest.fixture(params=["sqlite", "postgres"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], AnyStore]]:
    """Opens (and reopens) one store of each implementation; all tests run on both."""
    opened: list[AnyStore] = []
    schema = f"test_{uuid.uuid4().hex[:12]}"

    def make() -> AnyStore:
        if request.param == "sqlite":
            s: AnyStore = SQLiteStore(tmp_path / "store.sqlite")
        else:
            s = PostgresStore(request.getfixturevalue("postgres_dsn"), schema=schema)
        opened.append(s)
        return s

    yield make
    if request.param == "postgres" and opened:
        cleanup = PostgresStore(POSTGRES_DSN, schema=schema)
        cleanup.drop()
        cleanup.close()
    for s in opened:
        s.close()


@pytest.fixture
def store(make_store: Callable[[], AnyStore]) -> AnyStore:
    return make_store()


def test_store_satisfies_the_store_protocol(store: AnyStore) -> None:
    assert isinstance(store, NodeStore)
    reader = store.reader()
    try:
        assert isinstance(reader, Reader) and not isinstance(reader, NodeStore)
    finally:
        reader.close()


def test_sqlite_file_uses_write_ahead_logging(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.sqlite")
    mode = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_same_id_and_version_is_a_no_op(store: AnyStore) -> None:
    first = store.append([observation(1)])
    again = store.append([observation(1)])
    assert (first.inserted, again.inserted, again.unchanged) == (1, 0, 1)
    assert store.count_versions() == 1


def test_higher_version_supersedes_and_history_is_kept(store: AnyStore) -> None:
    store.append([observation(1, lon=121.0)])
    result = store.append([observation(1, version=2, lon=122.0)])
    assert result.outcomes == [Outcome.SUPERSEDED]
    current = store.get("TWN:test:1")
    assert current is not None and current.version == 2
    assert [o.version for o in store.history("TWN:test:1")] == [1, 2]
    assert store.get("TWN:test:1", version=1) == observation(1, lon=121.0)


def test_lower_version_is_kept_in_history_but_not_current(
    store: AnyStore,
) -> None:
    store.append([observation(1, version=3)])
    result = store.append([observation(1, version=2)])
    assert result.outcomes == [Outcome.STALE]
    current = store.get("TWN:test:1")
    assert current is not None and current.version == 3
    assert [o.version for o in store.history("TWN:test:1")] == [2, 3]


def test_conflicting_content_at_the_same_version_is_refused(
    store: AnyStore,
) -> None:
    store.append([observation(1, lon=121.0)])
    result = store.append([observation(1, lon=125.0), observation(2)])
    assert result.outcomes == [Outcome.CONFLICT, Outcome.INSERTED]
    assert result.conflicts[0][:2] == ("TWN:test:1", 1)
    stored = store.get("TWN:test:1")
    assert stored is not None and stored.geometry == Point(coordinates=(121.0, 22.0))


def test_ids_made_in_code_with_spaces_are_found_again(store: AnyStore) -> None:
    """A decoded id holds no space, but one made in code can (and is refused when read back):
    its stored versions are found all the same, appended alone or among plain ids."""
    spaced = msgspec.structs.replace(observation(1), id="TWN:test: 1")
    other = msgspec.structs.replace(observation(1, lon=125.0), id="TWN:test: 1")
    assert store.append([spaced, observation(2)]).inserted == 2
    again = store.append([spaced, observation(2), observation(3)])
    assert again.outcomes == [Outcome.UNCHANGED, Outcome.UNCHANGED, Outcome.INSERTED]
    assert store.append([other]).outcomes == [Outcome.CONFLICT]
    superseded = store.append([msgspec.structs.replace(spaced, version=2)])
    assert superseded.outcomes == [Outcome.SUPERSEDED]
    assert store.count_versions() == 4


def test_the_own_window_is_read_from_an_index_of_the_rows_not_received(
    store: AnyStore,
) -> None:
    """The node's own reports in a window come from an index that leaves out what partners
    sent (most of a busy node's rows): each current row says whether it was received, from the
    item's provenance, and only those not received are indexed by origin."""
    own = [observation(n, origin="JPN", lon=121.0 + n / 10) for n in range(3)]
    sent = Provenance(partner="TWN", batch="TWN>JPN#1", hops=1)
    received = [
        msgspec.structs.replace(observation(10 + n, lon=121.0 + n / 10), provenance=sent)
        for n in range(3)
    ]
    store.append([*received, *own])
    start, end = micros(T0 - MINUTE), micros(T0 + MINUTE)
    with store.transaction() as tx:
        keys = tx.observations.current_keys_of_origin("JPN", start, end, 10)
        assert sorted(key[2] for key in keys) == sorted(o.id for o in own)
        assert tx.observations.current_keys_of_origin("TWN", start, end, 10) == []
    window = (
        "SELECT t0, t1, id, version, seq FROM current WHERE origin = 'JPN' AND received = 0"
        " AND retracted = 0 AND t1 >= 0 AND t0 <= 0 ORDER BY t0"
    )
    if isinstance(store, SQLiteStore):
        conn = sqlite3.connect(store.path)
        try:
            flags = dict(conn.execute("SELECT id, received FROM current").fetchall())
            plan = " ".join(str(row) for row in conn.execute(f"EXPLAIN QUERY PLAN {window}"))
        finally:
            conn.close()
        assert "current_not_received" in plan
    else:
        flags = dict(store.connection.execute("SELECT id, received FROM current").fetchall())
        indexes = dict(
            store.connection.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"
            ).fetchall()
        )
        assert "WHERE (received = 0)" in indexes["current_not_received"]
        assert "WHERE (sent_by IS NULL)" in indexes["observation_versions_not_received_by_xact"]
        assert "current_by_origin" not in indexes
    assert flags == {o.id: 0 for o in own} | {o.id: 1 for o in received}


def test_retraction_is_a_version_that_hides_the_observation(
    store: AnyStore,
) -> None:
    store.append([observation(1), observation(2)])
    store.append([observation(1, version=2, retracted=True)])
    assert [o.id for o in store.iter_query(ObservationFilter())] == ["TWN:test:2"]
    with_retracted = store.iter_query(ObservationFilter(include_retracted=True))
    assert {o.id for o in with_retracted} == {"TWN:test:1", "TWN:test:2"}
    assert len(store.history("TWN:test:1")) == 2


def test_query_by_time_window_overlaps_intervals(store: AnyStore) -> None:
    store.append(
        [
            observation(1, at=T0),
            observation(2, at=T0 + dt.timedelta(hours=5)),
            # A daily map: starts before the window, ends inside it.
            observation(3, at=T0 - dt.timedelta(hours=2), until=T0 + dt.timedelta(minutes=30)),
        ]
    )
    window = ObservationFilter(start=T0 - dt.timedelta(minutes=1), end=T0 + dt.timedelta(hours=1))
    assert {o.id for o in store.iter_query(window)} == {"TWN:test:1", "TWN:test:3"}
    half_open = ObservationFilter(start=T0 - dt.timedelta(hours=1), end=T0)
    assert {o.id for o in store.iter_query(half_open)} == {"TWN:test:3"}


def test_a_window_finds_intervals_that_began_long_before_it_after_a_long_history(
    store: AnyStore,
) -> None:
    """A window's query (the picture's, the API's) and the own reports novelty is judged against
    find every current report whose interval meets the window, however long before it the
    interval began, and nothing that ended before it, with a month of reports behind."""
    store.append(
        [observation(100 + n, at=T0 - dt.timedelta(days=30, minutes=-n)) for n in range(300)]
    )
    hour = dt.timedelta(hours=1)
    window = ObservationFilter(start=T0, end=T0 + hour)

    def found() -> tuple[set[str], int, list[str]]:
        keys = store.read(
            lambda tx: tx.observations.current_keys_of_origin(
                "TWN", micros(T0), micros(T0 + hour), 100
            )
        )
        return (
            {o.id for o in store.iter_query(window)},
            store.count(window),
            [obs_id for _, _, obs_id, _, _ in keys],
        )

    assert found() == (set(), 0, [])
    # A ship watched for six days up to the window; later, one watched for twenty.
    week = observation(1, kind="sea", at=T0 - dt.timedelta(days=6), until=T0 + 5 * MINUTE)
    store.append([week, observation(3, at=T0 + 10 * MINUTE)])
    assert found() == ({"TWN:test:1", "TWN:test:3"}, 2, ["TWN:test:1", "TWN:test:3"])
    month = observation(2, kind="sea", at=T0 - dt.timedelta(days=20), until=T0 + 30 * MINUTE)
    store.append([month])
    assert found() == (
        {"TWN:test:1", "TWN:test:2", "TWN:test:3"},
        3,
        ["TWN:test:2", "TWN:test:1", "TWN:test:3"],
    )
    # Corrected to end the day before the window, the long one is no longer in it.
    store.append([msgspec.structs.replace(month, version=2, until=T0 - dt.timedelta(days=1))])
    assert found() == ({"TWN:test:1", "TWN:test:3"}, 2, ["TWN:test:1", "TWN:test:3"])


def test_long_intervals_are_found_by_their_end_and_leave_every_windows_range_short(
    store: AnyStore,
) -> None:
    """A navigation warning of three months and reports of three days stay in every window they
    meet, in time order with the points among them, page after page; the range each window reads
    of the start-time index is bounded by the short rows alone (``current_spans``), and the long
    rows are read from an index of their own by their end."""
    hour, day = dt.timedelta(hours=1), dt.timedelta(days=1)
    points = [observation(n, at=T0 + n * MINUTE) for n in range(60)]
    reports = [
        observation(100 + n, kind="sea", at=T0 + (10 * n + 0.5) * MINUTE, until=T0 + 3 * day)
        for n in range(5)
    ]
    warning = observation(200, kind="sea", at=T0 - 90 * day, until=T0 + day)
    ended = observation(201, kind="sea", at=T0 - 90 * day, until=T0 - hour)
    # A track of twenty minutes: short, so it bounds the window's range.
    track = observation(300, at=T0 - 20 * MINUTE, until=T0 + MINUTE)
    store.append([*points, *reports, warning, ended, track])
    window = ObservationFilter(start=T0, end=T0 + hour)
    expected = sorted([*points, *reports, warning, track], key=lambda o: (o.observed_at, o.id))
    seen, cursor = [], None
    while True:
        page = store.query(window, limit=7, cursor=cursor)
        seen.extend(o.id for o in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [o.id for o in expected]
    assert store.count(window) == len(expected)
    later = ObservationFilter(start=T0 + 2 * hour, end=T0 + 3 * hour)
    assert [o.id for o in store.iter_query(later)] == [warning.id, *(o.id for o in reports)]
    own = store.read(
        lambda tx: tx.observations.current_keys_of_origin(
            "TWN", micros(T0 + 2 * hour), micros(T0 + 3 * hour), 3
        )
    )
    assert [key[2] for key in own] == [warning.id, reports[0].id, reports[1].id]
    if isinstance(store, SQLiteStore):
        conn = sqlite3.connect(store.path)
        try:
            buckets = conn.execute("SELECT bucket FROM current_spans").fetchall()
            plan = " ".join(
                str(row)
                for row in conn.execute(
                    "EXPLAIN QUERY PLAN SELECT c.t0 FROM current c WHERE c.t1 >= 0"
                    f" AND {LONG} AND +c.t0 < 0 ORDER BY +c.t0, c.id"
                )
            )
        finally:
            conn.close()
        assert "current_long" in plan
    else:
        buckets = store.connection.execute("SELECT bucket FROM current_spans").fetchall()
    # Twenty minutes are 1.2e9 µs: 2**31 is the next power of two; the long rows count nothing.
    assert buckets == [(2**31,)]


def test_the_own_window_does_not_read_the_own_rows_before_it(tmp_path: Path) -> None:
    """The own reports novelty is judged against (read for every batch taken in) cost the
    engine the same whether the node holds 500 or 5 500 of its own reports from before the
    window, with long reports beside them: neither part reads the rows before the window.
    Counted in SQLite's virtual machine steps, which do not move with the machine's load."""
    hour = dt.timedelta(hours=1)

    def older(first: int, count: int) -> list[Observation]:
        return [
            observation(n, origin="JPN", at=T0 - 2 * hour - n * MINUTE)
            for n in range(first, first + count)
        ]

    with SQLiteStore(tmp_path / "store.sqlite") as store:
        store.append(
            [
                *older(0, 500),
                observation(9_000, origin="JPN", at=T0 - 30 * hour, until=T0 + hour),
                *(observation(9_001 + n, origin="JPN", at=T0 + n * MINUTE) for n in range(20)),
            ]
        )
        steps: list[int] = []

        def own_window() -> tuple[int, list[str]]:
            with store._qmark() as conn:  # the store's own connection: count its steps
                conn.set_progress_handler(lambda: steps.append(1) and 0, 10)
            try:
                before = len(steps)
                keys = store.read(
                    lambda tx: tx.observations.current_keys_of_origin(
                        "JPN", micros(T0), micros(T0 + hour), 100
                    )
                )
                return len(steps) - before, [key[2] for key in keys]
            finally:
                with store._qmark() as conn:
                    conn.set_progress_handler(None, 0)

        few, found = own_window()
        store.append(older(500, 5_000))
        many, found_again = own_window()
    assert found == found_again == ["JPN:test:9000", *(f"JPN:test:{9_001 + n}" for n in range(20))]
    assert many < 2 * few, (few, many)


def test_the_extent_and_count_held_follow_every_append(
    make_store: Callable[[], AnyStore],
) -> None:
    """What the picture asks first (the period held and how many reports) is read from index
    ranges and a kept count: after appends that add, supersede, retract, restore, arrive stale
    or conflict, across several folds of the count, and after reopening, it is what a scan of
    every current row gives."""
    store = make_store()
    rng = random.Random(7)
    versions: dict[int, int] = {}

    def scanned() -> tuple[int | None, int | None, int]:
        with store.transaction() as tx:
            conn = tx.observations._conn  # the store's own connection, in its transaction
            row = conn.execute(
                "SELECT min(t0), max(t1), count(*) FROM current WHERE retracted = 0"
            ).fetchone()
        return (row[0], row[1], row[2])

    def extent() -> tuple[int | None, int | None, int]:
        held = store.extent()
        return (
            None if held.earliest is None else micros(held.earliest),
            None if held.latest is None else micros(held.latest),
            held.observations,
        )

    assert extent() == (None, None, 0)
    for round_ in range(40):
        batch = []
        for _ in range(rng.randint(1, 600)):
            number = rng.randrange(1_500)
            version = versions.get(number, 0) + rng.choice((1, 1, 1, 2))
            if rng.random() < 0.1 and versions.get(number, 0) > 1:
                version = versions[number] - 1  # stale: kept in history only
            at = T0 + dt.timedelta(seconds=rng.randrange(-86_400, 86_400))
            until = None
            if rng.random() < 0.05:
                until = at + dt.timedelta(days=rng.randrange(1, 60))
            elif rng.random() < 0.2:
                until = at + dt.timedelta(minutes=rng.randrange(1, 90))
            batch.append(
                observation(
                    number,
                    version=version,
                    at=at,
                    until=until,
                    retracted=rng.random() < 0.15,
                )
            )
            versions[number] = max(versions.get(number, 0), version)
        store.append(batch)
        if round_ % 6 == 5:
            # The same id and version with other content: refused, nothing changes.
            known = next(iter(versions))
            store.append([observation(known, version=versions[known], lat=10.0)])
        assert extent() == scanned(), f"after append {round_}"
    assert store.count_versions() > 2 * 4_096  # the count was folded more than once
    store.close()
    store = make_store()
    assert extent() == scanned()


def test_query_by_bounding_box_kind_origin_and_platform(store: AnyStore) -> None:
    track = LineString(coordinates=((119.0, 24.0), (121.0, 24.5)))
    store.append(
        [
            observation(1, lon=121.0, lat=22.0),
            observation(2, lon=125.3, lat=24.8, origin="JPN", id="JPN:test:2"),
            observation(
                3,
                geometry=track,
                kind="sea",
                platform=Platform(type="Type 052D", platform_class="destroyer"),
            ),
        ]
    )

    def ids(**selection: object) -> set[str]:
        return {o.id for o in store.iter_query(ObservationFilter(**selection))}  # type: ignore[arg-type]

    assert ids(bbox=(120.0, 21.0, 122.0, 23.0)) == {"TWN:test:1"}
    assert ids(bbox=(120.5, 24.2, 120.6, 24.3)) == {"TWN:test:3"}  # the track's box crosses it
    assert ids(origins=("JPN",)) == {"JPN:test:2"}
    assert ids(kinds=("sea",)) == {"TWN:test:3"}
    assert ids(platform_classes=("bomber",)) == {"TWN:test:1", "JPN:test:2"}
    assert ids(platform_types=("Type 052D",)) == {"TWN:test:3"}


def test_cursor_paging_returns_everything_once_in_time_order(
    store: AnyStore,
) -> None:
    store.append([observation(i, at=T0 + dt.timedelta(seconds=i % 7)) for i in range(2_500)])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = store.query(ObservationFilter(), limit=300, cursor=cursor)
        seen.extend(o.id for o in page.items)
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert pages == 9
    assert len(seen) == len(set(seen)) == 2_500
    times = [store.get(i).observed_at for i in seen[:50]]  # type: ignore[union-attr]
    assert times == sorted(times)


@pytest.mark.parametrize("window", [True, False], ids=["window", "everything"])
def test_each_page_reads_from_where_the_last_one_ended(tmp_path: Path, window: bool) -> None:
    """Paging through a window (as the picture loads one) reads each page's range of the
    start-time index from the cursor on: the last page of a window of 6 000 reports costs the
    engine about what the first does, not a scan of every report before it. Counted in SQLite's
    virtual machine steps (its progress handler), which do not move with the machine's load."""
    with SQLiteStore(tmp_path / "store.sqlite") as store:
        store.append([observation(n, at=T0 + n * dt.timedelta(seconds=1)) for n in range(6_000)])
        selection = (
            ObservationFilter(start=T0, end=T0 + dt.timedelta(hours=2))
            if window
            else ObservationFilter()
        )
        steps: list[int] = []
        cursor, seen = None, 0
        with store._qmark() as conn:  # the store's own connection: count its steps
            conn.set_progress_handler(lambda: steps.append(1) and 0, 100)
        try:
            costs = []
            while True:
                before = len(steps)
                bodies, cursor = store.query_bodies(selection, limit=200, cursor=cursor)
                costs.append(len(steps) - before)
                seen += len(bodies)
                if cursor is None:
                    break
        finally:
            with store._qmark() as conn:
                conn.set_progress_handler(None, 0)
    assert seen == 6_000 and len(costs) == 30
    assert max(costs[-5:]) < 2 * max(costs[:5]), costs


def test_a_bad_cursor_is_a_clear_error(store: AnyStore) -> None:
    with pytest.raises(StoreError, match="invalid cursor"):
        store.query(ObservationFilter(), cursor="not-a-cursor")


def test_events_are_idempotent_and_queryable(store: AnyStore) -> None:
    event = Event(
        id="ev-1",
        kind="strait_transit",
        at=T0,
        zone="Miyako Strait",
        direction="to Pacific",
        origin="JPN",
        observations=(("JPN:test:1", 1),),
    )
    assert store.put_events([event]) == 1
    assert store.put_events([event]) == 0
    assert store.query_events(EventFilter(kinds=("strait_transit",))) == [event]
    assert store.query_events(EventFilter(kinds=("adiz_entry",))) == []


def _ledger_row(item: str, sorties: int) -> tuple[object, ...]:
    return ("received", "TWN", item, 1, "air", 1_000, 2_000, sorties, 10.0, 0, None, None)


def test_the_ledger_keeps_each_row_as_first_recorded(store: AnyStore) -> None:
    with store.transaction() as tx:
        tx.ledger.record([_ledger_row("TWN:1", 1), _ledger_row("TWN:2", 1)])
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.ledger.record([_ledger_row("TWN:3", 1)])
        raise RuntimeError("rolled back")
    with store.transaction() as tx:
        # TWN:2 again (kept as first recorded), TWN:3 again (its first write rolled back), and
        # TWN:4 twice in one call (once)
        again = [_ledger_row("TWN:2", 5), _ledger_row("TWN:3", 1)]
        tx.ledger.record([*again, _ledger_row("TWN:4", 1), _ledger_row("TWN:4", 7)])
    with store.transaction() as tx:
        rows = {row[2]: row[7] for row in tx.ledger.rows()}
    assert rows == {"TWN:1": 1, "TWN:2": 1, "TWN:3": 1, "TWN:4": 1}


def test_a_large_ledger_call_keeps_every_row_as_first_recorded(store: AnyStore) -> None:
    """A call of many rows (the embedded store writes dozens to a statement) keeps the first
    of each item in call order, whether its repeat is in the same statement, a later one, or a
    later call."""
    first = [_ledger_row(f"TWN:{n}", 1) for n in range(700)]
    repeats = [_ledger_row(f"TWN:{n}", 9) for n in (0, 5, 82, 83, 84, 400, 699)]
    with store.transaction() as tx:
        tx.ledger.record(first[:400] + repeats + first[400:])
    with store.transaction() as tx:
        tx.ledger.record([*repeats, _ledger_row("TWN:700", 2)])
    with store.transaction() as tx:
        rows = tx.ledger.rows()
    assert sorted(row[2] for row in rows) == sorted(f"TWN:{n}" for n in range(701))
    # The repeats of items 400 and 699 come before the items themselves in the first call.
    assert {row[2]: row[7] for row in rows} == {
        **{f"TWN:{n}": 1 for n in range(700)},
        "TWN:400": 9,
        "TWN:699": 9,
        "TWN:700": 2,
    }


def test_a_partners_ledger_window_reads_oldest_first_across_flows(store: AnyStore) -> None:
    """The reciprocity window: one partner's rows from a time on, given and received together,
    oldest first, whatever order they were recorded and keyed in."""

    def row(flow: str, partner: str, item: str, at: int) -> tuple[object, ...]:
        return (flow, partner, item, 1, "air", at, at, 1, None, 0, None, None)

    with store.transaction() as tx:
        tx.ledger.record(
            [
                row("received", "TWN", "TWN:a", 4_000),
                row("given", "TWN", "JPN:b", 2_000),
                row("received", "TWN", "TWN:c", 1_000),
                row("given", "TWN", "JPN:a", 3_000),
                row("received", "PHL", "PHL:a", 2_500),
            ]
        )
    since = dt.datetime.fromtimestamp(0.0015, dt.UTC)  # 1 500 µs
    with store.transaction() as tx:
        window = [(r[0], r[2], r[6]) for r in tx.ledger.rows(partner="TWN", since=since)]
        everyone = [r[6] for r in tx.ledger.rows()]
        given = tx.ledger.given("TWN", "JPN:a"), tx.ledger.given("TWN", "TWN:a")
    assert window == [
        ("given", "JPN:b", 2_000),
        ("given", "JPN:a", 3_000),
        ("received", "TWN:a", 4_000),
    ]
    assert everyone == [1_000, 2_000, 2_500, 3_000, 4_000]
    assert given == (True, False)


def test_data_survives_reopening(make_store: Callable[[], AnyStore]) -> None:
    first = make_store()
    first.append([observation(1)])
    first.close()
    assert make_store().get("TWN:test:1") == observation(1)


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.sqlite"
    bogus.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"bogus\.sqlite"):
        SQLiteStore(bogus)


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 4)), max_size=40))
@settings(max_examples=60, deadline=None)
def test_current_is_always_the_highest_version_seen(appends: list[tuple[int, int]]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, SQLiteStore(Path(tmp) / "s.sqlite") as s:
        for number, version in appends:
            s.append([observation(number, version=version)])
        highest: dict[int, int] = {}
        for number, version in appends:
            highest[number] = max(highest.get(number, 0), version)
        for number, version in highest.items():
            current = s.get(f"TWN:test:{number}")
            assert current is not None and current.version == version
        assert s.count_versions() == len(set(appends))


def test_items_due_under_an_agreement_no_longer_in_force_are_found_among_any_others(
    store: AnyStore,
) -> None:
    """Before each batch is sealed the node looks for unsealed items released under another
    agreement than the one in force (or the civil one): those, and only those, whatever digests
    sort before, between or after the ones kept."""
    at_us = 1_000_000
    released = ["b" * 64, None, "a" * 64, "d" * 64, "c" * 64, "b" * 64, "e" * 64, None]
    with store.transaction() as tx:
        tx.outbox.queue(
            [
                ("JPN", f"TWN:{n}", 1, b"{}", None, None, agreement, None)
                for n, agreement in enumerate(released)
            ]
            + [("PHL", "TWN:phl", 1, b"{}", None, None, "a" * 64, None)]
            + [("JPN", "TWN:later", 1, b"{}", at_us + 1, None, "a" * 64, None)]
        )
    with store.transaction() as tx:
        both = tx.outbox.lapsed("JPN", at_us, "b" * 64, "d" * 64)
        one = tx.outbox.lapsed("JPN", at_us, None, "c" * 64)
        none = tx.outbox.lapsed("JPN", at_us, None, None)
    assert [(obs_id, agreement) for _, obs_id, _, agreement in both] == [
        ("TWN:2", "a" * 64),
        ("TWN:4", "c" * 64),
        ("TWN:6", "e" * 64),
    ]
    assert [obs_id for _, obs_id, _, _ in one] == ["TWN:0", "TWN:2", "TWN:3", "TWN:5", "TWN:6"]
    # With no agreement in force, every due item lapses, however it was released.
    assert [obs_id for _, obs_id, _, _ in none] == [f"TWN:{n}" for n in range(8)]


def test_queued_items_are_kept_apart_from_their_rows_and_leave_with_them(
    store: AnyStore,
) -> None:
    """The outbox keeps each item's bytes apart from the row a seal tags: the batch is read back
    byte for byte, in release order, and an item withdrawn or signed for leaves no bytes
    behind."""
    items = [(f"TWN:{n}", b'{"n":%d,"pad":"%s"}' % (n, b"x" * 600)) for n in range(4)]
    with store.transaction() as tx:
        for part in (items[:2], items[2:]):  # two releases: rows rise across them
            tx.outbox.queue([("JPN", key, 1, item, None, None, None, None) for key, item in part])
        rows = tx.outbox.due("JPN", micros(T0), 10)
        assert [item for _, item, _ in rows] == [item for _, item in items]
        assert [row for row, _, _ in rows] == sorted(row for row, _, _ in rows)
        tx.outbox.withdraw([rows[1][0]])
        tx.outbox.seal(
            "JPN",
            1,
            at_us=micros(T0),
            first_row=rows[0][0],
            last_row=rows[2][0],
            count=2,
            header=b"header",
            signature=b"signature",
            digest=b"\x01" * 32,
        )
        assert tx.outbox.batch_items("JPN", 1) == [(items[0][1], None), (items[2][1], None)]
        assert [item for _, item, _ in tx.outbox.due("JPN", micros(T0), 10)] == [items[3][1]]
        tx.outbox.acknowledge("JPN", 1, b"receipt", b"signature", micros(T0))
        assert tx.outbox.batch_items("JPN", 1) == []
    # Only the item still waiting keeps bytes: none of the withdrawn or signed-for remain.
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as conn:
            left = conn.execute("SELECT item FROM outbox_items").fetchall()
            widths = conn.execute("SELECT length(item) FROM outbox").fetchall()
    else:
        left = store.connection.execute("SELECT item FROM outbox_items").fetchall()
        widths = store.connection.execute("SELECT length(item) FROM outbox").fetchall()
    assert [bytes(row[0]) for row in left] == [items[3][1]]
    assert [row[0] for row in widths] == [0]


def test_a_large_release_is_queued_whole_and_in_order(store: AnyStore) -> None:
    """A release of more items than one statement of the embedded store writes is queued
    whole: every item due, in release order, byte for byte, with what was queued with it."""
    items = [(f"TWN:{n}", b'{"n":%d,"pad":"%s"}' % (n, b"x" * (n % 50))) for n in range(1_111)]
    with store.transaction() as tx:
        tx.outbox.queue(
            [
                ("JPN", key, 1 + n % 3, item, None, b"proof" if n % 7 == 0 else None, "a", None)
                for n, (key, item) in enumerate(items)
            ]
        )
        due = tx.outbox.due("JPN", micros(T0), 2_000)
        assert [item for _, item, _ in due] == [item for _, item in items]
        assert [proof for _, _, proof in due] == [
            b"proof" if n % 7 == 0 else None for n in range(len(items))
        ]
        assert [row for row, _, _ in due] == sorted({row for row, _, _ in due})


def test_a_batch_signed_for_enters_the_ledger_as_each_item_was_sent(store: AnyStore) -> None:
    """The receipt of a batch enters its observations in the ledger as given, in one statement
    from the fields queued with each item: the rows are those of a ledger entry made from each
    item as sent. Items queued without those fields (before the outbox kept them) are read back
    and decoded, to the same rows; an item passed on with its origin's proof is noted as
    given whole."""
    sent = [
        observation(1, track="cat062:25/100:4980", provenance=Provenance(grid_km=10)),
        observation(2, kind="sea", platform=None, until=T0 + MINUTE),
        observation(3, kind="area", platform=None, retracted=True, version=2),
        observation(4, platform=Platform(type="J-16", count=4)),
        observation(5, origin="USA"),
    ]
    items = [wire_bytes(o) for o in sent]
    proofs = [None, None, None, None, b"proof"]
    # The fourth is queued as before the outbox kept the ledger's fields.
    fields = [given_fields(o) for o in sent[:3]] + [None, given_fields(sent[4])]
    received_at = T0 + dt.timedelta(hours=1)
    with store.transaction() as tx:
        tx.outbox.queue(
            [
                ("JPN", o.id, o.version, item, None, proof, None, queued)
                for o, item, proof, queued in zip(sent, items, proofs, fields, strict=True)
            ]
        )
        rows = tx.outbox.due("JPN", micros(T0), 10)
        tx.outbox.seal(
            "JPN",
            1,
            at_us=micros(T0),
            first_row=rows[0][0],
            last_row=rows[-1][0],
            count=len(rows),
            header=b"header",
            signature=b"signature",
            digest=b"\x01" * 32,
        )
    receipt = Receipt(
        sender="TWN",
        receiver="JPN",
        seq=1,
        batch_hash=b"\x01" * 32,
        count=len(sent),
        stored=len(sent),
        received_at=received_at,
    )
    with store.transaction() as tx:
        assert record_receipt(
            tx, "JPN", receipt, SignedReceipt(receipt=b"r", signature=b"s"), now=received_at
        )
        given = reciprocity.entries(tx, partner="JPN")
        whole = tx.ledger.versions_given_whole("JPN", "USA:test:5")
        assert tx.outbox.counts("JPN", micros(T0))[:3] == (0, 0, 0)
    as_sent = [msgspec.json.decode(item, type=Observation) for item in items]
    assert sorted(given, key=lambda e: e.item) == [
        given_entry(o, "JPN", received_at) for o in as_sent
    ]
    assert {(e.sorties, e.grid_km, e.retracted, e.track) for e in given} == {
        (2, 10.0, False, "cat062:25/100:4980"),
        (1, None, False, None),
        (0, None, True, None),
        (4, None, False, None),
        (2, None, False, None),
    }
    assert whole == [1]


def test_the_reciprocity_window_counted_by_the_store_is_the_ledgers_own_count(
    store: AnyStore,
) -> None:
    """The node judges a partner's standing from counts the database makes over the window;
    they are the counts the ledger's own arithmetic makes from the rows (the reports and
    ``kuroshio agreement status`` use it): one item per id as its latest version stands,
    retractions out, a track's sortie on its first update, novelty, rows outside the window
    out. Random ledgers, one partner each, with versions, tracks and ties in time."""
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    clause = Reciprocity(window_days=1, min_ratio=0.5)
    start_us = micros(now - dt.timedelta(days=1))
    end_us = micros(now)
    chooser = random.Random(19)
    partners = [f"Q{a}{b}" for a in "ABCDEFGH" for b in "ABCDEFGHIJ"]
    for partner in partners:
        rows = [
            (
                chooser.choice(["given", "received"]),
                partner,
                f"{chooser.choice(['TWN', 'PHL'])}:{chooser.randrange(4)}",
                chooser.randint(1, 3),
                "air",
                start_us - 5_000_000,
                # before, on and after both ends of the window, with ties in time
                chooser.choice([start_us, end_us]) + chooser.randint(-3, 3) * 1_000_000,
                chooser.randint(0, 4),
                None,
                int(chooser.random() < 0.2),
                chooser.choice([None, 0, 1]),
                chooser.choice([None, None, "ais:1", "ais:2"]),
            )
            for _ in range(chooser.randint(0, 30))
        ]
        with store.transaction() as tx:
            tx.ledger.record(rows)
        with store.transaction() as tx:
            entries = reciprocity.entries(tx, partner=partner, since=now - dt.timedelta(days=1))
            expected = reciprocity_status(entries, partner, clause, now)
            counted = reciprocity.standing(tx, partner, clause, now)
        for flow in ("given", "received"):
            want, got = getattr(expected, flow), getattr(counted, flow)
            assert (got.items, got.sorties, got.novel_items) == (
                want.items,
                want.sorties,
                want.novel_items,
            ), (partner, flow, rows)
        assert (counted.ratio, counted.shortfall, counted.message) == (
            expected.ratio,
            expected.shortfall,
            expected.message,
        )


def test_novelty_judged_with_prepared_reports_is_the_matchers_own_verdict(
    store: AnyStore,
) -> None:
    """A received item is novel when none of the node's current own reports is the same
    sortie: the verdicts of the node's fusion gate, which prepares each own report once and
    keeps it for the next batch, and of a plain matcher asked pair by pair, are those of
    comparing the item with every own report there is, on the first batch, on the next ones,
    after some own reports are corrected and after every one is (the new version counts, not
    the one kept). Random
    own and received reports: near and far, in and out of the time window, instants and
    intervals, fighters and bombers in formations of several sizes, retractions among the
    received."""
    chooser = random.Random(2)
    kinds = [
        Platform(type=code, platform_class=kind, count=count, nationality="CHN")
        for code, kind in (("J-16", "fighter"), ("J-10", "fighter"), ("H-6K", "bomber"))
        for count in (1, 2, 8)  # one and eight are too far apart to be one formation
    ]

    def report(origin: str, number: int, version: int = 1) -> Observation:
        at = T0 + dt.timedelta(minutes=chooser.uniform(-90, 90))
        return observation(
            number,
            origin=origin,
            version=version,
            at=at,
            # some own reports cover an interval: one long one reaches far back for matches
            until=at + dt.timedelta(minutes=chooser.uniform(0, 120))
            if origin == "JPN" and chooser.random() < 0.3
            else None,
            lon=chooser.uniform(118, 128),
            lat=chooser.uniform(18, 28),
            platform=chooser.choice(kinds),
            source=Source(sensor="radar", confidence=0.9, uncertainty_m=chooser.uniform(0, 9e4)),
            retracted=origin == "TWN" and chooser.random() < 0.1,
        )

    gate = SortieGate()
    window = reciprocity.OwnWindow()
    own = [report("JPN", n) for n in range(25)]
    store.append(own)
    for batch in range(8):
        if batch in (2, 3, 4, 5):  # some own reports corrected: the rest kept from before
            corrected = [report("JPN", n, version=batch) for n in range(batch - 2, 25, 4)]
            store.append(corrected)
            moved = {mine.id for mine in corrected}
            own = [*corrected, *(mine for mine in own if mine.id not in moved)]
        if batch == 7:  # every own report corrected: moved, maybe another type
            own = [report("JPN", n, version=7) for n in range(25)]
            store.append(own)
        received = [report("TWN", 1000 * batch + n) for n in range(60)]
        expected = [not any(same_sortie(item, mine) for mine in own) for item in received]
        with store.transaction() as tx:
            pair_by_pair = reciprocity.judge_novelty(tx, received, "JPN", same_sortie)
            prepared = reciprocity.judge_novelty(tx, received, "JPN", gate)
        with store.transaction() as tx:
            kept = reciprocity.judge_novelty(tx, received, "JPN", gate, window)
        assert (prepared, pair_by_pair, kept) == (expected, expected, expected), batch
        assert True in expected and False in expected


class _CountingGate(SortieGate):
    """The node's gate, counting how often it is handed the own reports read from the store."""

    reads = 0

    def gather(self, own: Sequence[PreparedReport | None]) -> OwnReports:
        self.reads += 1
        return super().gather(own)


def _judging(store: AnyStore) -> tuple[_CountingGate, list[Observation], Callable[[], list[bool]]]:
    """A node's gate and kept window over ``store``, which holds three own reports far from the
    one received report: the gate, the received report, and a judging of its novelty in a
    transaction of its own."""
    gate, window = _CountingGate(), reciprocity.OwnWindow()
    store.append([observation(n, origin="JPN", lon=121.0 + n) for n in range(3)])
    received = [observation(100, lon=125.5)]

    def judged() -> list[bool]:
        with store.transaction() as tx:
            return reciprocity.judge_novelty(tx, received, "JPN", gate, window)

    return gate, received, judged


def test_own_reports_kept_from_one_batch_serve_the_next_until_the_node_stores_its_own(
    store: AnyStore,
) -> None:
    """The own reports read for one batch's novelty serve the next batches until the node
    stores a report of its own: then they are read again, and a report that now knows a
    received one makes it not novel. A reading made in a transaction that rolls back is not
    kept."""
    gate, received, judged = _judging(store)
    assert judged() == [True]
    assert (judged(), gate.reads) == ([True], 1)
    store.append([observation(100, origin="TWN", lon=125.5)])  # another origin's: no change
    assert (judged(), gate.reads) == ([True], 1)
    mine = observation(7, origin="JPN", lon=125.51)  # the node's own, 1 km away
    store.append([mine])
    assert (judged(), gate.reads) == ([False], 2)
    # Corrected to 300 km away, then back, then retracted: each version as it stands.
    for version, lon, novel in ((2, 122.5, True), (3, 125.5, False)):
        store.append(
            [
                msgspec.structs.replace(
                    mine, version=version, geometry=Point(coordinates=(lon, 22.0))
                )
            ]
        )
        assert judged() == [novel], version
    store.append([msgspec.structs.replace(mine, version=4, retracted=True)])
    assert (judged(), gate.reads) == ([True], 5)
    fresh = reciprocity.OwnWindow()
    with pytest.raises(RuntimeError), store.transaction() as tx:
        reciprocity.judge_novelty(tx, received, "JPN", gate, fresh)
        raise RuntimeError("rolled back")
    with store.transaction() as tx:
        assert reciprocity.judge_novelty(tx, received, "JPN", gate, fresh) == [True]
    assert gate.reads == 7


def test_own_reports_committed_out_of_order_of_their_seqs_are_read_again(
    make_store: Callable[[], AnyStore],
) -> None:
    """Several processes of a node on PostgreSQL commit in any order of their history seqs: an
    own report stored by a transaction still open when a batch's own reports were read (its
    seq lower than one committed before the reading) is read again once it commits, and makes
    the received report it knows not novel."""
    store, feed = make_store(), make_store()
    if isinstance(store, SQLiteStore):
        pytest.skip("SQLite has one writer at a time: seqs are given in commit order")
    gate, _, judged = _judging(store)
    assert judged() == [True]
    with feed.transaction() as slow:  # a feed's transaction, open while others commit
        slow.observations.append([observation(7, origin="JPN", lon=125.51)])  # 1 km away
        store.append([observation(8, origin="JPN", lon=110.0)])  # a later seq, committed
        assert judged() == [True]  # the slow one is not committed yet
        reads = gate.reads
    assert (judged(), gate.reads) == ([False], reads + 1)
    assert (judged(), gate.reads) == ([False], reads + 1)
