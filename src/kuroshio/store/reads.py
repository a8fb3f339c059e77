"""The queries every store and reader answers the same way, on either backend: observations by
filter and cursor, one observation and its history, events, the extent of what is held and the
change feed.

A backend supplies :meth:`Reads._qmark`, its connection (under its lock) taking ``?``
placeholders, and its own :meth:`snapshot`; the statements are written once, here.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import msgspec

from kuroshio.errors import StoreError
from kuroshio.model import Event, Observation
from kuroshio.store import EventFilter, ObservationFilter, Page, decode_cursor, encode_cursor
from kuroshio.store.observations import ObservationTable
from kuroshio.store.sql import (
    HELD,
    LONG,
    SHORT,
    STARTED_SINCE,
    Extent,
    event_where,
    observation_where,
    utc_time,
    where_clause,
)
from kuroshio.store.transaction import Transaction

T = TypeVar("T")
_LAST_STARTED = 1_000
"""How many of the rows that start last give the end a period's last end is sought from."""
_EXTENT = (
    "SELECT (SELECT c.t0 FROM current c WHERE c.retracted = 0 ORDER BY c.t0 LIMIT 1),"
    # The last end among the rows that start last is no later than the last end of all; a
    # short row (not longer than STARTED_SINCE) that starts that long before it ends before
    # it, so cannot end last: where the short rows' last end is sought from.
    " (SELECT max(t1) FROM (SELECT c.t1 FROM current c WHERE c.retracted = 0"
    f" ORDER BY c.t0 DESC LIMIT {_LAST_STARTED}) AS last) - {STARTED_SINCE},"
    f" (SELECT max(c.t1) FROM current c WHERE c.retracted = 0 AND {LONG}),"
    f" {HELD}"
)
# A statement of its own, so that the planner knows the range (PostgreSQL's planned a scan of
# the whole table for a bound computed in the same statement).
_LAST_SHORT_END = f"SELECT max(c.t1) FROM current c WHERE c.retracted = 0 AND {SHORT} AND c.t0 >= ?"


_PAGE = "SELECT c.t0, c.id, v.body FROM current c JOIN observation_versions v ON v.seq = c.seq"
# Each long row's body looked up by itself: joined, PostgreSQL misjudged how few long rows
# meet a window and read the whole history to join them.
_LONG_PAGE = (
    "SELECT c.t0, c.id, (SELECT v.body FROM observation_versions v WHERE v.seq = c.seq)"
    " FROM current c"
)


def _by_start(row: Any) -> tuple[int, str]:
    return (int(row[0]), str(row[1]))


_observation_decoder = msgspec.json.Decoder(Observation)
_event_decoder = msgspec.json.Decoder(Event)


class Reads:
    """Queries over observations and events; see the module docstring."""

    def _qmark(self) -> contextlib.AbstractContextManager[Any]:
        """The backend's connection, held for one statement or a few (``?`` placeholders)."""
        raise NotImplementedError

    def snapshot(self) -> contextlib.AbstractContextManager[Transaction]:
        """Every table as of one moment (a read transaction)."""
        raise NotImplementedError

    def read(self, query: Callable[[Transaction], T]) -> T:
        """``query`` run on one snapshot."""
        with self.snapshot() as tx:
            return query(tx)

    def get(self, obs_id: str, version: int | None = None) -> Observation | None:
        """The current version (or the given one) of an observation, retracted or not."""
        with self._qmark() as conn:
            return ObservationTable(conn).get(obs_id, version)

    def history(self, obs_id: str) -> list[Observation]:
        """Every stored version of an observation, oldest first."""
        with self._qmark() as conn:
            rows = conn.execute(
                "SELECT body FROM observation_versions WHERE id = ? ORDER BY version", (obs_id,)
            ).fetchall()
        return [_observation_decoder.decode(row[0]) for row in rows]

    def query(
        self, selection: ObservationFilter, *, limit: int = 1000, cursor: str | None = None
    ) -> Page:
        """Current observations ordered by (observed_at, id), one page at a time."""
        bodies, next_cursor = self.query_bodies(selection, limit=limit, cursor=cursor)
        return Page(
            items=[_observation_decoder.decode(body) for body in bodies], next_cursor=next_cursor
        )

    def query_bodies(
        self, selection: ObservationFilter, *, limit: int = 1000, cursor: str | None = None
    ) -> tuple[list[bytes], str | None]:
        """:meth:`query`'s page as each observation's stored canonical JSON, not decoded (for an
        answer that passes them on as they are), and the cursor of the next page (None: no
        more)."""
        if not 1 <= limit <= 100_000:
            raise StoreError(f"limit must be between 1 and 100000, not {limit}")
        after = decode_cursor(cursor) if cursor is not None else None
        answers = []
        with self._qmark() as conn:
            for number, (where, params) in enumerate(observation_where(selection, "?", after)):
                # The long rows (a second part, few) are sorted, not read in the order of the
                # start-time index, which would take the planner through every row.
                t0 = "c.t0" if number == 0 else "+c.t0"
                answers.append(
                    conn.execute(
                        (_PAGE if number == 0 else _LONG_PAGE)
                        + where_clause(where)
                        + f" ORDER BY {t0}, c.id LIMIT ?",
                        [*params, limit + 1],
                    ).fetchall()
                )
        rows = list(itertools.islice(heapq.merge(*answers, key=_by_start), limit + 1))
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(int(rows[-1][0]), str(rows[-1][1])) if more and rows else None
        return [bytes(row[2]) for row in rows], next_cursor

    def iter_query(
        self, selection: ObservationFilter, *, page_size: int = 1000
    ) -> Iterator[Observation]:
        """All current observations matching, fetched page by page (bounded memory)."""
        cursor: str | None = None
        while True:
            page = self.query(selection, limit=page_size, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def count(self, selection: ObservationFilter) -> int:
        total = 0
        with self._qmark() as conn:
            for where, params in observation_where(selection, "?"):
                row = conn.execute("SELECT count(*) FROM current c" + where_clause(where), params)
                found = row.fetchone()
                total += int(found[0]) if found else 0
        return total

    def count_versions(self) -> int:
        """Every stored version (history included)."""
        with self._qmark() as conn:
            found = conn.execute("SELECT count(*) FROM observation_versions").fetchone()
        return int(found[0]) if found else 0

    def query_events(self, selection: EventFilter, *, limit: int = 10_000) -> list[Event]:
        return [_event_decoder.decode(body) for body in self.query_event_bodies(selection, limit)]

    def query_event_bodies(self, selection: EventFilter, limit: int = 10_000) -> list[bytes]:
        """:meth:`query_events` as each event's stored canonical JSON, not decoded."""
        where, params = event_where(selection, "?")
        sql = "SELECT body FROM events" + where_clause(where) + " ORDER BY at, id LIMIT ?"
        params.append(limit)
        with self._qmark() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [bytes(row[0]) for row in rows]

    def extent(self) -> Extent:
        """The period the current observations cover, and how many there are: ranges of the
        indexes and the count kept, whatever the store holds."""
        with self._qmark() as conn:
            found = conn.execute(_EXTENT).fetchone()
            first, since, last_long, count = found if found is not None else (None,) * 4
            last_short = None
            if since is not None:
                (last_short,) = conn.execute(_LAST_SHORT_END, (since,)).fetchone()
        last = max((int(t1) for t1 in (last_short, last_long) if t1 is not None), default=None)
        return Extent(
            earliest=None if first is None else utc_time(int(first)),
            latest=None if last is None else utc_time(last),
            observations=int(count or 0),
        )

    def change_head(self) -> int:
        """The ``seq`` of the newest stored observation version (0: none)."""
        with self._qmark() as conn:
            found = conn.execute("SELECT max(seq) FROM observation_versions").fetchone()
        return int(found[0] or 0) if found is not None else 0

    def changes(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        """(seq, canonical body) of observation versions stored after ``after``, in the order
        they were stored (by any process), at most ``limit``."""
        with self._qmark() as conn:
            rows = conn.execute(
                "SELECT seq, body FROM observation_versions WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [(int(seq), bytes(body)) for seq, body in rows]


__all__ = ["Reads"]
