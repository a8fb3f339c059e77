"""What a picture reads first, on a node holding millions of reports: the period held and how many
reports (``GET /api/cop/status``), then the pages of its window (``GET /api/observations``).

The node holds ``REPORTS`` current reports of its own radar, one a millisecond (every tenth a
track segment of a minute, every fiftieth retracted), and, as the public record brings them,
a navigation warning in force for three months and a daily report for each of the last ninety
days. Rows are written straight into the node's store at the sizes a node writes them (a body
of about 900 bytes), on SQLite and, when the server answers (``KUROSHIO_BENCH_POSTGRES``, default
the local one), on a schema of PostgreSQL. Each read is timed in process, the median of five
after one to warm the cache. No target: the figures must not grow with the store. Prints one
JSON line.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_postgres import DSN, unreachable
from kuroshio.node import init_node, open_node
from kuroshio.store import ObservationFilter
from kuroshio.store.backend import Reader
from kuroshio.store.schema import span_bucket

QUICK = os.environ.get("KUROSHIO_BENCH_QUICK", "") not in ("", "0")
REPORTS = 200_000 if QUICK else 2_000_000
DAYS = 90
WINDOW = dt.timedelta(minutes=5)
PAGE = 10_000
END_US = 1_786_000_000_000_000
"""The last radar report's time (2026-08-06): the window is the five minutes up to it."""
DAY_US = 86_400_000_000
SEGMENT_US = 60_000_000

# One statement per table, the same on both backends (``n`` numbers the rows from 1).
_VERSIONS = (
    "INSERT INTO observation_versions (seq, id, version, digest, body, stored_at)"
    " SELECT n, 'TWN:radar:' || n, 1, {blob32}, {blob900}, {end} - ({rows} - n) * 1000"
    " FROM {series}"
)
_CURRENT = (
    "INSERT INTO current (id, version, seq, origin, kind, t0, t1, min_lon, min_lat, max_lon,"
    " max_lat, platform_class, platform_type, retracted, received)"
    " SELECT id, 1, seq, 'TWN', CASE WHEN seq > {radar} THEN 'sea' ELSE 'air' END,"
    " CASE WHEN seq > {radar} + 1 THEN {end} - (seq - {radar} - 1) * {day}"
    " WHEN seq > {radar} THEN {end} - 45 * {day} ELSE stored_at END,"
    " CASE WHEN seq > {radar} + 1 THEN {end} - (seq - {radar} - 2) * {day}"
    " WHEN seq > {radar} THEN {end} + 45 * {day}"
    " WHEN seq % 10 = 0 THEN stored_at + {segment} ELSE stored_at END,"
    " 121.0, 22.0, 121.1, 22.1, 'fighter', 'J-16',"
    " CASE WHEN seq <= {radar} AND seq % 50 = 0 THEN 1 ELSE 0 END, 0"
    " FROM observation_versions"
)


def _statements(dialect: str) -> list[str]:
    """The rows: ``REPORTS`` radar reports, then the warning, then one report a day."""
    rows = REPORTS + 1 + DAYS
    if dialect == "sqlite":
        series = (
            f"(WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {rows})"
            " SELECT n FROM s) AS s"
        )
        blob32, blob900 = "randomblob(32)", "randomblob(900)"
    else:
        series = f"generate_series(1, {rows}) AS s(n)"
        blob32 = "decode(md5(n::text) || md5(n::text), 'hex')"
        blob900 = "convert_to(repeat(md5(n::text), 28), 'UTF8')"
    values = {
        "rows": rows,
        "radar": REPORTS,
        "end": END_US,
        "day": DAY_US,
        "segment": SEGMENT_US,
        "series": series,
        "blob32": blob32,
        "blob900": blob900,
    }
    return [_VERSIONS.format(**values), _CURRENT.format(**values), *_kept(dialect)]


def _kept(dialect: str) -> list[str]:
    """What a store keeps beside its rows, made again as its appends would have kept it (on a
    store from before migration ``0026`` the spans of every row, the long ones included)."""
    count = "SELECT count(*) FROM current WHERE retracted = 0 HAVING count(*) > 0"
    try:
        from kuroshio.store.schema import LONG_SPAN_US
    except ImportError:  # before 0026
        longest = DAY_US * 90
        return ["DELETE FROM current_spans", _note_span(longest)]
    assert SEGMENT_US <= LONG_SPAN_US  # the segments are short rows, the rest long
    return [
        "DELETE FROM current_spans",
        _note_span(SEGMENT_US),
        "DELETE FROM current_held",
        f"INSERT INTO current_held (n) {count}",
    ]


def _note_span(longest: int) -> str:
    return f"INSERT INTO current_spans (bucket) VALUES ({span_bucket(longest)})"


def _timed_ms(read: Callable[[], Any]) -> float:
    times = []
    for _ in range(6):
        began = time.perf_counter()
        read()
        times.append((time.perf_counter() - began) * 1e3)
    return statistics.median(times[1:])


def _figures(reader: Reader, label: str) -> dict[str, float]:
    end = dt.datetime.fromtimestamp(END_US / 1e6, dt.UTC)
    window = ObservationFilter(start=end - WINDOW, end=end)
    extent = reader.extent()
    # Most of the radar's last window (a report a millisecond, every fiftieth retracted).
    expected = 0.9 * min(REPORTS, WINDOW / dt.timedelta(milliseconds=1))
    found = reader.count(window)
    if found < expected or extent.observations != REPORTS - REPORTS // 50 + 1 + DAYS:
        raise RuntimeError(f"{label}: {found} in the window, {extent}: the rows are not as made")
    return {
        f"period and count held ms, {label}": _timed_ms(reader.extent),
        f"window page of {PAGE:,} ms, {label}": _timed_ms(
            lambda: reader.query_bodies(window, limit=PAGE)
        ),
        f"window count ms, {label}": _timed_ms(lambda: reader.count(window)),
        f"whole window page by page ms, {label}": _whole_window_ms(reader, window),
    }


def _whole_window_ms(reader: Reader, window: ObservationFilter) -> float:
    """Every report of the window read through pages of ``PAGE`` and their cursors, as the
    picture loads a window (once: it reads the window several times over)."""
    began = time.perf_counter()
    cursor, read = None, 0
    while True:
        bodies, cursor = reader.query_bodies(window, limit=PAGE, cursor=cursor)
        read += len(bodies)
        if cursor is None:
            break
    elapsed = (time.perf_counter() - began) * 1e3
    if read != reader.count(window):
        raise RuntimeError(f"read {read} reports page by page, counted {reader.count(window)}")
    return elapsed


def _node_figures(directory: Path, label: str) -> dict[str, float]:
    """:func:`_figures` read through the reader of the node in ``directory``, as it serves."""
    with open_node(directory) as node:
        reader = node.store.reader()
        try:
            return _figures(reader, label)
        finally:
            reader.close()


def _sqlite(root: Path) -> tuple[dict[str, float], dict[str, Any]]:
    directory = root / "twn"
    init_node(directory, "TWN").close()
    began = time.perf_counter()
    with sqlite3.connect(directory / "store.sqlite") as conn:
        for statement in _statements("sqlite"):
            conn.execute(statement)
    filled = time.perf_counter() - began
    size_mb = (directory / "store.sqlite").stat().st_size / 1e6
    figures = _node_figures(directory, "SQLite")
    return figures, {"SQLite fill s": round(filled, 1), "SQLite store MB": round(size_mb)}


def _postgres(root: Path) -> tuple[dict[str, float], dict[str, Any]]:
    schema = f"bench_{uuid.uuid4().hex[:10]}_reads"
    directory = root / "twn_pg"
    os.environ["KUROSHIO_STORE_DSN"] = DSN
    init_node(directory, "TWN", store={"backend": "postgres", "schema": schema}).close()
    try:
        began = time.perf_counter()
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f"SET search_path TO {schema}")
            with conn.transaction():
                for statement in _statements("postgres"):
                    conn.execute(statement)  # type: ignore[arg-type]
            conn.execute("ANALYZE")
        filled = time.perf_counter() - began
        figures = _node_figures(directory, "PostgreSQL")
    finally:
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return figures, {"PostgreSQL fill s": round(filled, 1)}


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        metrics, setup = _sqlite(Path(folder))
        why = unreachable()
        if why is None:
            more, filled = _postgres(Path(folder))
            metrics |= more
            setup |= filled
        else:
            setup["PostgreSQL"] = f"not measured: {why}"
    setup |= {"reports": REPORTS, "long rows": 1 + DAYS, "quick": QUICK}
    print(json.dumps({"name": "first_reads", "metrics": metrics, "targets": {}, "setup": setup}))


if __name__ == "__main__":
    main()
