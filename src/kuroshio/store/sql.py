"""SQL shared by the relational stores: the index row of an observation and the query filters.

Both the SQLite and the PostgreSQL store keep the same columns; only the parameter placeholder
differs (``?`` and ``%s``). Nothing here touches a connection but :func:`insert_rows`, which
writes many rows on the caller's SQLite connection.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, Final

import msgspec

from kuroshio.model import Event, Observation, bounding_box
from kuroshio.store import EventFilter, ObservationFilter
from kuroshio.store.schema import span_bucket

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
STARTED_SINCE: Final = "(SELECT coalesce(max(bucket), 0) FROM current_spans)"
"""How long before a window a current row that meets it can start at most (µs): the longest
interval stored, rounded up (``current_spans``, migration ``0019``). A window's query bounds
``t0`` from below by it, so that the start-time indexes give a range, not every row before the
window's end."""
NOTE_SPAN: Final = "INSERT INTO current_spans (bucket) VALUES (?) ON CONFLICT DO NOTHING"


def longest_span_bucket(rows: Iterable[Sequence[Any]]) -> int:
    """The bucket of the longest interval among ``current`` rows (0: none is an interval), to be
    noted with :data:`NOTE_SPAN` in the transaction that writes them."""
    longest = max((row[_T1] - row[_T0] for row in rows), default=0)
    return span_bucket(longest) if longest > 0 else 0


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


def observation_where(selection: ObservationFilter, mark: str) -> tuple[list[str], list[Any]]:
    """WHERE terms over ``current c`` for a filter, with ``mark`` as the placeholder."""
    where: list[str] = []
    params: list[Any] = []
    if selection.start is not None:
        start = micros(selection.start)
        where.append(f"c.t1 >= {mark} AND c.t0 >= {mark} - {STARTED_SINCE}")
        params.extend([start, start])
    if selection.end is not None:
        where.append(f"c.t0 < {mark}")
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
