"""The rows of tracks and feeds: each source track's newest update, and each feed's last status.

``track_heads`` holds, per (origin, track), where the track was last seen and since when it is
known, so that an update arriving later can be judged against the one before it (events along a
track, a track counted once). ``feed_status`` holds what the process running a node's feeds last
reported of each, so that any process of the node (an API worker, ``kuroshio feed status``) can
show it. The rules live in :mod:`kuroshio.geo.track_events` and :mod:`kuroshio.feeds`; this module
only reads and writes rows, inside the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from kuroshio.store.sql import micros, utc_time


class TrackHead(NamedTuple):
    """The newest update of one track as the store holds it."""

    origin: str
    track: str
    at: dt.datetime
    lon: float
    lat: float
    obs_id: str
    obs_version: int
    first_at: dt.datetime
    """When the track's first update stored was observed."""
    updates: int
    """Updates stored for the track."""


_HEAD_COLUMNS = "origin, track, at, lon, lat, obs_id, obs_version, first_at, updates"


class TrackTable:
    """Track heads, on one connection."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def heads(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], TrackHead]:
        """The heads of the (origin, track) pairs that have one."""
        found: dict[tuple[str, str], TrackHead] = {}
        wanted = sorted(set(keys))
        for start in range(0, len(wanted), 400):
            chunk = wanted[start : start + 400]
            terms = " OR ".join(["(origin = ? AND track = ?)"] * len(chunk))
            params = [value for key in chunk for value in key]
            rows = self._conn.execute(
                f"SELECT {_HEAD_COLUMNS} FROM track_heads WHERE {terms}", params
            ).fetchall()
            for row in rows:
                head = _head(row)
                found[(head.origin, head.track)] = head
        return found

    def put(self, heads: Sequence[TrackHead]) -> None:
        """Write heads (replacing the ones of the same tracks)."""
        self._conn.executemany(
            f"INSERT INTO track_heads ({_HEAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (origin, track) DO UPDATE SET at = excluded.at, lon = excluded.lon,"
            " lat = excluded.lat, obs_id = excluded.obs_id, obs_version = excluded.obs_version,"
            " first_at = excluded.first_at, updates = excluded.updates",
            [
                (
                    h.origin,
                    h.track,
                    micros(h.at),
                    h.lon,
                    h.lat,
                    h.obs_id,
                    h.obs_version,
                    micros(h.first_at),
                    h.updates,
                )
                for h in heads
            ],
        )

    def count(self, origin: str | None = None) -> int:
        """Tracks known (of one origin, or of all)."""
        if origin is None:
            row = self._conn.execute("SELECT COUNT(*) FROM track_heads").fetchone()
        else:
            row = self._conn.execute(
                "SELECT COUNT(*) FROM track_heads WHERE origin = ?", (origin,)
            ).fetchone()
        return int(row[0])


def _head(row: Sequence[Any]) -> TrackHead:
    return TrackHead(
        origin=str(row[0]),
        track=str(row[1]),
        at=utc_time(int(row[2])),
        lon=float(row[3]),
        lat=float(row[4]),
        obs_id=str(row[5]),
        obs_version=int(row[6]),
        first_at=utc_time(int(row[7])),
        updates=int(row[8]),
    )


class FeedStatusTable:
    """The last reported status of each feed, on one connection (bodies are opaque bytes)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def report(
        self, rows: Sequence[tuple[str, dt.datetime, bytes]], *, configured: Sequence[str]
    ) -> None:
        """(feed, reported at, status body) of feeds running now; the rows of feeds no longer
        ``configured`` go, so that a feed taken out of the configuration is not shown."""
        if configured:
            marks = ", ".join("?" * len(configured))
            self._conn.execute(
                f"DELETE FROM feed_status WHERE feed NOT IN ({marks})", list(configured)
            )
        else:
            self._conn.execute("DELETE FROM feed_status")
        self._conn.executemany(
            "INSERT INTO feed_status (feed, reported_at, body) VALUES (?, ?, ?)"
            " ON CONFLICT (feed) DO UPDATE SET reported_at = excluded.reported_at,"
            " body = excluded.body",
            [(name, micros(at), body) for name, at, body in rows],
        )

    def all(self) -> list[tuple[str, dt.datetime, bytes]]:
        """(feed, reported at, body) of every feed, by name."""
        return [
            (str(name), utc_time(int(at)), bytes(body))
            for name, at, body in self._conn.execute(
                "SELECT feed, reported_at, body FROM feed_status ORDER BY feed"
            )
        ]


__all__ = ["FeedStatusTable", "TrackHead", "TrackTable"]
