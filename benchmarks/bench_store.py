"""Embedded store append and query rate on a real SQLite file (WAL, synchronous=FULL), and a
window's query at the end of the history (the last hour of 200 000 reports, one a second: the
picture's and the API's query), best of five."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
from pathlib import Path

from kuroshio.model import Observation, Platform, Point, Source
from kuroshio.store import ObservationFilter
from kuroshio.store.sqlite import SQLiteStore

COUNT = 200_000
CHUNK = 1_000


def main() -> None:
    t0 = dt.datetime(2022, 8, 5, tzinfo=dt.UTC)
    observations = [
        Observation(
            id=f"TWN:bench:{n}",
            origin="TWN",
            kind="air",
            observed_at=t0 + dt.timedelta(seconds=n),
            geometry=Point(coordinates=(118 + (n % 500) / 100, 20 + (n % 700) / 100)),
            platform=Platform(type="J-16", platform_class="fighter", count=2, nationality="CHN"),
            source=Source(sensor="radar", confidence=0.9, uncertainty_m=1000),
        )
        for n in range(COUNT)
    ]
    with tempfile.TemporaryDirectory() as tmp, SQLiteStore(Path(tmp) / "s.sqlite") as store:
        start = time.perf_counter()
        for i in range(0, COUNT, CHUNK):
            store.append(observations[i : i + CHUNK])
        append_s = time.perf_counter() - start
        start = time.perf_counter()
        seen = sum(1 for _ in store.iter_query(ObservationFilter(), page_size=5_000))
        scan_s = time.perf_counter() - start
        assert seen == COUNT
        window = ObservationFilter(
            start=t0 + dt.timedelta(seconds=COUNT - 3_600), end=t0 + dt.timedelta(seconds=COUNT)
        )
        window_s = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            seen = sum(1 for _ in store.iter_query(window, page_size=5_000))
            window_s = min(window_s, time.perf_counter() - start)
        assert seen == 3_600
    print(
        json.dumps(
            {
                "name": "store",
                "metrics": {
                    "append obs/s (chunks of 1000, durable)": COUNT / append_s,
                    "query scan obs/s": COUNT / scan_s,
                    "window query ms (last hour of 200 000 reports)": window_s * 1000,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
