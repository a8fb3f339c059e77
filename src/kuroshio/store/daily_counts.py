"""The rows of the public daily counts: one per dataset and day, figures where the source gives
them.

Reading and checking the published files lives in :mod:`kuroshio.ingest.daily_counts`; this
module only reads and writes rows, inside the caller's transaction.
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias

FIGURES: Final = ("aircraft", "vessels", "carrier", "yonaguni", "miyako", "osumi", "tsushima")
Figures: TypeAlias = tuple[int | None, ...]
"""The values of :data:`FIGURES`, in that order."""


class DailyCountTable:
    """The daily counts of every dataset, on one connection."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def figures(self, dataset: str, day: str) -> Figures | None:
        row = self._conn.execute(
            f"SELECT {', '.join(FIGURES)} FROM daily_counts WHERE dataset = ? AND day = ?",
            (dataset, day),
        ).fetchone()
        return None if row is None else tuple(row)

    def put(self, dataset: str, day: str, figures: Figures, record: str) -> None:
        """Write one day (replacing what the dataset held for it)."""
        self._conn.execute(
            f"INSERT INTO daily_counts (dataset, day, {', '.join(FIGURES)}, record)"
            f" VALUES (?, ?, {', '.join('?' * len(FIGURES))}, ?) ON CONFLICT (dataset, day)"
            " DO UPDATE SET "
            + ", ".join(f"{name} = excluded.{name}" for name in (*FIGURES, "record")),
            (dataset, day, *figures, record),
        )

    def days(self, dataset: str) -> list[tuple[str, Figures, str]]:
        """(day, figures, record) of every stored day of ``dataset``, in order."""
        return [
            (str(row[0]), tuple(row[1:-1]), str(row[-1]))
            for row in self._conn.execute(
                f"SELECT day, {', '.join(FIGURES)}, record FROM daily_counts WHERE dataset = ?"
                " ORDER BY day",
                (dataset,),
            )
        ]


__all__ = ["FIGURES", "DailyCountTable", "Figures"]
