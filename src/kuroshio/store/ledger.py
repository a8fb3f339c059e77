"""The rows of the reciprocity ledger: one per item version given to or received from a partner,
and each partner's last judged standing.

The arithmetic (days, windows, ratios, novelty) lives in :mod:`kuroshio.policy.ledger`; this
module only reads and writes rows, inside the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeAlias

from kuroshio.store.sql import insert_rows, micros

LedgerRow: TypeAlias = tuple[
    str, str, str, int, str, int, int, int, float | None, int, int | None, str | None
]
"""flow, partner, item, version, kind, observed at (µs), at (µs), sorties, grid km, retracted,
novel (None: not judged), source track (None: none)."""
_COLUMNS = (
    "flow, partner, item, version, kind, observed_at, at, sorties, grid_km, retracted, novel, track"
)
_COLUMN_NAMES = tuple(_COLUMNS.split(", "))


class WindowCounts(NamedTuple):
    """What one flow of a partner's ledger counts over a window (see
    :meth:`LedgerTable.window_counts`)."""

    items: int
    sorties: int
    novel_items: int


class LedgerTable:
    """The ledger of every partner, on one connection (``dialect``: ``sqlite`` or
    ``postgres``)."""

    def __init__(self, conn: Any, dialect: str = "sqlite") -> None:
        self._conn = conn
        self._dialect = dialect

    def record(self, rows: Sequence[LedgerRow], *, first_stored: bool = False) -> None:
        """Write rows; an item version already recorded for that partner and flow is kept as
        first recorded. ``first_stored``: the rows are of item versions this transaction stored
        for the first time (received from the partner they name), so none is recorded yet, and
        PostgreSQL takes them in with one plain ``COPY``, without a staging table and a check of
        each row for a conflict."""
        if self._dialect == "postgres":  # a row per item taken in or given: copied
            self._conn.copy_rows("ledger", _COLUMN_NAMES, rows, skip_conflicts=not first_stored)
            return
        insert_rows(
            self._conn,
            f"INSERT INTO ledger ({_COLUMNS})",
            rows,
            " ON CONFLICT DO NOTHING",
        )

    def rows(
        self, *, partner: str | None = None, since: dt.datetime | None = None
    ) -> list[LedgerRow]:
        """Recorded rows, oldest first, for one partner or all, from ``since`` on."""
        where: list[str] = []
        params: list[object] = []
        if partner is not None:
            where.append("partner = ?")
            params.append(partner)
        if since is not None:
            where.append("at >= ?")
            params.append(micros(since))
        sql = (
            f"SELECT {_COLUMNS} FROM ledger"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY at"
        )
        return [tuple(row) for row in self._conn.execute(sql, params)]

    def window_counts(
        self, partner: str, start: dt.datetime, end: dt.datetime
    ) -> dict[str, WindowCounts]:
        """Per flow, what ``partner``'s rows recorded in ``[start, end)`` count, summed in the
        database: items, sorties and items not judged old news (``novel`` not 0).

        One item per id, as its latest version in the window stands; a retracted item does not
        count. The updates of one source track (items of one origin naming the same ``track``)
        are one sortie, carried by the update that arrived first (the lowest id breaking a
        tie); the others count as items with no sorties. A flow with nothing to count is left
        out. :func:`kuroshio.policy.ledger.reciprocity_status` counts the same from the rows."""
        if self._dialect == "postgres":
            origin, item = "split_part(item, ':', 1)", 'item COLLATE "C"'
        else:
            origin, item = "substr(item, 1, instr(item, ':') - 1)", "item"
        # Each item as its latest version in the window stands (no sort: the window reads
        # the key's order), then the first update of each track; only tracked items are sorted.
        sql = (
            "WITH versions AS ("
            " SELECT flow, item, version, sorties, retracted, novel, track,"
            " MIN(at) OVER per_item AS first_at, MAX(version) OVER per_item AS newest"
            " FROM ledger WHERE partner = ? AND at >= ? AND at < ?"
            " WINDOW per_item AS (PARTITION BY flow, item)),"
            " items AS (SELECT * FROM versions WHERE version = newest),"
            " tracked AS (SELECT flow, sorties, retracted, ROW_NUMBER() OVER ("
            f"PARTITION BY flow, {origin}, track ORDER BY first_at, {item}) AS nth"
            " FROM items WHERE track IS NOT NULL)"
            " SELECT flow, SUM(n_items), SUM(n_sorties), SUM(n_novel) FROM ("
            " SELECT flow, COUNT(*) AS n_items,"
            " SUM(CASE WHEN track IS NULL THEN sorties ELSE 0 END) AS n_sorties,"
            " COUNT(*) - COUNT(CASE WHEN novel = 0 THEN 1 END) AS n_novel"
            " FROM items WHERE retracted = 0 GROUP BY flow"
            " UNION ALL SELECT flow, 0, SUM(sorties), 0"
            " FROM tracked WHERE nth = 1 AND retracted = 0 GROUP BY flow"
            ") AS counts GROUP BY flow"
        )
        rows = self._conn.execute(sql, (partner, micros(start), micros(end)))
        return {
            str(flow): WindowCounts(int(items), int(sorties), int(novel))
            for flow, items, sorties, novel in rows
        }

    def given(self, partner: str, item: str) -> bool:
        """Whether ``partner`` was given (signed for) any version of ``item``."""
        row = self._conn.execute(
            "SELECT 1 FROM ledger WHERE flow = 'given' AND partner = ? AND item = ? LIMIT 1",
            (partner, item),
        ).fetchone()
        return row is not None

    def given_whole(self, partner: str, versions: Sequence[tuple[str, int]]) -> None:
        """Note (item, version) pairs of other origins that ``partner`` signed for as passed on
        unchanged, with their origin's proof (it keeps them under the origin's id)."""
        self._conn.executemany(
            "INSERT INTO given_whole (partner, id, version) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            [(partner, item, version) for item, version in versions],
        )

    def versions_given_whole(self, partner: str, item: str) -> list[int]:
        """Versions of ``item`` that ``partner`` signed for as passed on unchanged, oldest
        first."""
        return [
            int(row[0])
            for row in self._conn.execute(
                "SELECT version FROM given_whole WHERE partner = ? AND id = ? ORDER BY version",
                (partner, item),
            )
        ]

    def standing(self, partner: str) -> tuple[str, str] | None:
        """(agreement, state) last noted for ``partner``."""
        row = self._conn.execute(
            "SELECT agreement, state FROM reciprocity_state WHERE partner = ?", (partner,)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def note_standing(
        self, partner: str, agreement: str, state: str, message: str, at: dt.datetime
    ) -> None:
        self._conn.execute(
            "INSERT INTO reciprocity_state (partner, agreement, state, message, changed_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (partner) DO UPDATE SET"
            " agreement = excluded.agreement, state = excluded.state,"
            " message = excluded.message, changed_at = excluded.changed_at",
            (partner, agreement, state, message, micros(at)),
        )


__all__ = ["LedgerRow", "LedgerTable", "WindowCounts"]
