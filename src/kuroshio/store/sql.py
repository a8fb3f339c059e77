"""SQL shared by the relational stores: the index row of an observation and the query filters.

Both the SQLite and the PostgreSQL store keep the same columns; only the parameter placeholder
differs (``?`` and ``%s``). Nothing here touches a connection but :func:`insert_rows`, which
writes many rows on the caller's SQLite connection.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import msgspec

from kuroshio.model import Event, Observation, bounding_box
from kuroshio.store import EventFilter, ObservationFilter
from kuroshio.store.schema import LONG_SPAN_US, span_bucket

CURRENT_COLUMNS = (
    "id",
    "version",
    "seq",
    "origin",
    "kind",
    "t0",
    "t1",
    "min_lon",
    "min_lat",
    "max_lon",
    "max_lat",
    "platform_class",
    "platform_type",
    "retracted",
    "received",
)


_T0: Final = CURRENT_COLUMNS.index("t0")
_T1: Final = CURRENT_COLUMNS.index("t1")
_RETRACTED: Final = CURRENT_COLUMNS.index("retracted")
STARTED_SINCE: Final = "(SELECT coalesce(max(bucket), 0) FROM current_spans)"
"""How long before a window a current row not longer than :data:`LONG_SPAN_US` that meets it can
start at most (µs): the longest such interval stored, rounded up (``current_spans``, migrations
``0019`` and ``0026``). A window's query bounds ``t0`` from below by it, so that the start-time
indexes give a range, not every row before the window's end; longer rows are found by their
end (:data:`LONG`)."""
SHORT: Final = f"c.t1 - c.t0 <= {LONG_SPAN_US}"
LONG: Final = f"c.t1 - c.t0 > {LONG_SPAN_US}"
"""The term that picks long rows over ``current c``, as the index ``current_long`` is made (the
planners use a partial index only for a query that states its condition)."""
NOTE_SPAN: Final = "INSERT INTO current_spans (bucket) VALUES (?) ON CONFLICT DO NOTHING"
HELD: Final = "(SELECT coalesce(sum(n), 0) FROM current_held)"
"""How many current rows are not retracted (migration ``0026``)."""
NOTE_HELD: Final = "INSERT INTO current_held (n) VALUES (?)"
FOLD_HELD_EVERY: Final = 4_096
"""An append that takes the history past a multiple of this many seqs folds ``current_held``'s
rows into one: the table holds at most about this many rows."""


def longest_span_bucket(rows: Iterable[Sequence[Any]]) -> int:
    """The bucket of the longest interval among ``current`` rows, long ones left out (0: none is
    an interval), to be noted with :data:`NOTE_SPAN` in the transaction that writes them."""
    longest = max(
        (span for row in rows if (span := row[_T1] - row[_T0]) <= LONG_SPAN_US), default=0
    )
    return span_bucket(longest) if longest > 0 else 0


def held_change(rows: Mapping[str, Sequence[Any]], before: Mapping[str, int]) -> int:
    """How many more current rows are not retracted once ``rows`` (``current`` rows by id) are
    written, where ``before`` holds the ``retracted`` flag (0 or 1) of each id's row that was
    current before (an id not in it had none)."""
    change: int = len(rows) - sum(map(operator.itemgetter(_RETRACTED), rows.values()))
    for obs_id, retracted in before.items():
        if obs_id in rows:
            change -= 1 - retracted
    return change


def folds_held(first_seq: int, last_seq: int) -> bool:
    """Whether an append that gave the history the seqs ``first_seq`` to ``last_seq`` folds
    ``current_held`` (one of them is a multiple of :data:`FOLD_HELD_EVERY`)."""
    return first_seq <= last_seq and (first_seq - 1) // FOLD_HELD_EVERY != (
        last_seq // FOLD_HELD_EVERY
    )


MAX_VARIABLES: Final = 999
"""Parameters one statement may take on any SQLite (3.32 and later allow 32 766)."""


def insert_rows(conn: Any, head: str, rows: Sequence[Sequence[Any]], tail: str = "") -> None:
    """``head VALUES (…), (…), … tail`` for ``rows`` (each as many values as the first), on
    SQLite.

    Whole chunks of as many rows as :data:`MAX_VARIABLES` allows go as one statement each (the
    same text every time, so the connection's statement cache keeps it), the rest one row at a
    time. Against ``executemany``, SQLite runs one statement per chunk instead of one per row,
    and the sqlite3 module binds a chunk's values in one call and lets go of the interpreter
    lock once per chunk, not once per row (where another thread waiting for the lock takes
    it, and the writer then waits for it back)."""
    if not rows:
        return
    width = len(rows[0])
    per = max(1, MAX_VARIABLES // width)
    one = "(" + ", ".join(["?"] * width) + ")"
    whole = len(rows) - len(rows) % per
    if whole:
        statement = f"{head} VALUES {', '.join([one] * per)}{tail}"
        for start in range(0, whole, per):
            conn.execute(statement, [value for row in rows[start : start + per] for value in row])
    if whole < len(rows):
        conn.executemany(f"{head} VALUES {one}{tail}", rows[whole:])


def micros(value: dt.datetime) -> int:
    """Microseconds since the epoch: the stores' time column."""
    return int(value.timestamp() * 1_000_000)


def utc_time(value: int) -> dt.datetime:
    """A time column (microseconds since the epoch) as an aware UTC time."""
    return dt.datetime.fromtimestamp(value / 1_000_000, dt.UTC)


def index_row(observation: Observation, seq: int | None) -> tuple[Any, ...]:
    """The ``current`` row of an observation stored as history row ``seq`` (``received``: 1 for
    an item taken in from a partner's batch, which names the partner in its provenance)."""
    min_lon, min_lat, max_lon, max_lat = bounding_box(observation.geometry)
    t0 = micros(observation.observed_at)
    until = observation.until
    platform = observation.platform
    return (
        observation.id,
        observation.version,
        seq,
        observation.origin,
        observation.kind,
        t0,
        t0 if until is None else micros(until),
        min_lon,
        min_lat,
        max_lon,
        max_lat,
        platform.platform_class if platform else None,
        platform.type if platform else None,
        int(observation.retracted),
        0 if observation.provenance.partner is None else 1,
    )


def event_row(event: Event, body: bytes) -> tuple[Any, ...]:
    return (event.id, event.kind, micros(event.at), event.zone, event.origin, body)


def _in(column: str, values: tuple[str, ...], mark: str) -> str:
    return f"{column} IN ({', '.join([mark] * len(values))})"


def observation_where(
    selection: ObservationFilter, mark: str, after: tuple[int, str] | None = None
) -> list[tuple[list[str], list[Any]]]:
    """WHERE terms over ``current c`` for a filter, with ``mark`` as the placeholder: one list,
    or, for a filter with a start, two that part the rows between them, the rows not longer than
    :data:`~kuroshio.store.schema.LONG_SPAN_US` (a range of the start-time indexes) and the
    longer ones (a range of ``current_long``). A query asks each and takes both answers.
    ``after``: only rows after this (start µs, id), a page's cursor."""
    if selection.start is None:
        where, params = _observation_terms(selection, mark, "c.t0")
        if after is not None:
            # The cursor's start bounds the range of the start-time index (its test alone
            # would not: the planner takes no range from an OR).
            where.append(f"c.t0 >= {mark}")
            params.append(after[0])
        return [_after(where, params, mark, "c.t0", after)]
    start = micros(selection.start)
    short, short_params = _observation_terms(selection, mark, "c.t0")
    since = f"{mark} - {STARTED_SINCE}"
    if after is None:
        bound, bound_params = since, [start]
    else:
        # The later of the window's bound and the cursor's start, so that each page reads its
        # range of the start-time index from where the last one ended.
        bound = f"CASE WHEN {since} > {mark} THEN {since} ELSE {mark} END"
        bound_params = [start, after[0], start, after[0]]
    # The long rows' start is not offered to the planner as a range (``+``): their range is
    # of their end, in ``current_long``.
    long, long_params = _observation_terms(selection, mark, "+c.t0")
    return [
        _after(
            [f"c.t1 >= {mark} AND c.t0 >= {bound} AND {SHORT}", *short],
            [start, *bound_params, *short_params],
            mark,
            "c.t0",
            after,
        ),
        _after([f"c.t1 >= {mark} AND {LONG}", *long], [start, *long_params], mark, "+c.t0", after),
    ]


def _after(
    where: list[str], params: list[Any], mark: str, t0: str, after: tuple[int, str] | None
) -> tuple[list[str], list[Any]]:
    """``where`` with the rows up to ``after`` (start µs, id) left out."""
    if after is None:
        return where, params
    return (
        [*where, f"({t0} > {mark} OR ({t0} = {mark} AND c.id > {mark}))"],
        [*params, after[0], after[0], after[1]],
    )


def _observation_terms(
    selection: ObservationFilter, mark: str, t0: str
) -> tuple[list[str], list[Any]]:
    """:func:`observation_where`'s terms but the start's, with ``t0`` for ``c.t0``."""
    where: list[str] = []
    params: list[Any] = []
    if selection.end is not None:
        where.append(f"{t0} < {mark}")
        params.append(micros(selection.end))
    if selection.bbox is not None:
        min_lon, min_lat, max_lon, max_lat = selection.bbox
        where.append(
            f"c.max_lon >= {mark} AND c.min_lon <= {mark}"
            f" AND c.max_lat >= {mark} AND c.min_lat <= {mark}"
        )
        params.extend([min_lon, max_lon, min_lat, max_lat])
    for column, values in (
        ("c.kind", selection.kinds),
        ("c.origin", selection.origins),
        ("c.platform_class", selection.platform_classes),
        ("c.platform_type", selection.platform_types),
    ):
        if values:
            where.append(_in(column, values, mark))
            params.extend(values)
    if not selection.include_retracted:
        where.append("c.retracted = 0")
    return where, params


def event_where(selection: EventFilter, mark: str) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if selection.start is not None:
        where.append(f"at >= {mark}")
        params.append(micros(selection.start))
    if selection.end is not None:
        where.append(f"at < {mark}")
        params.append(micros(selection.end))
    for column, values in (
        ("kind", selection.kinds),
        ("zone", selection.zones),
        ("origin", selection.origins),
    ):
        if values:
            where.append(_in(column, values, mark))
            params.extend(values)
    return where, params


def where_clause(terms: list[str]) -> str:
    return " WHERE " + " AND ".join(terms) if terms else ""


class Extent(msgspec.Struct, frozen=True, kw_only=True):
    """The period the store's current observations cover, and how many there are."""

    earliest: dt.datetime | None
    latest: dt.datetime | None
    observations: int
    """Current observations, retractions excluded."""
