"""Event derivation rate: synthetic sorties around Taiwan and the Ryukyus through derive_events.

Tracks are seeded random walks (12 positions, a few with two legs) across the Taiwan Strait, the
Ryukyu gates and the ADIZs, so most of them produce events. Prints one JSON line of results.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
import time

from kuroshio.geo import derive_events, load
from kuroshio.model import LineString, MultiLineString, Observation, Platform

COUNT = 20_000
POSITIONS = 12
TARGET = 10_000.0


def synthetic_tracks(count: int, seed: int = 20220805) -> list[Observation]:
    rng = random.Random(seed)
    t0 = dt.datetime(2022, 8, 5, tzinfo=dt.UTC)
    platform = Platform(type="J-16", platform_class="fighter", count=2, nationality="CHN")
    tracks: list[Observation] = []
    for n in range(count):
        lon, lat = rng.uniform(117.0, 129.0), rng.uniform(20.0, 29.0)
        heading_lon, heading_lat = rng.uniform(-0.6, 0.6), rng.uniform(-0.6, 0.6)
        positions: list[tuple[float, float]] = []
        for _ in range(POSITIONS):
            positions.append((lon, lat))
            lon += heading_lon + rng.uniform(-0.15, 0.15)
            lat += heading_lat + rng.uniform(-0.15, 0.15)
        geometry: LineString | MultiLineString
        if n % 5 == 0:
            geometry = MultiLineString(coordinates=(tuple(positions[:6]), tuple(positions[6:])))
        else:
            geometry = LineString(coordinates=tuple(positions))
        tracks.append(
            Observation(
                id=f"TWN:bench:{n}",
                origin="TWN",
                kind="air",
                observed_at=t0 + dt.timedelta(minutes=n),
                until=t0 + dt.timedelta(minutes=n + 90),
                geometry=geometry,
                platform=platform,
            )
        )
    return tracks


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else COUNT
    tracks = synthetic_tracks(count)
    geography = load()
    derive_events(tracks[0], geography)  # warm the caches outside the timed loop
    start = time.perf_counter()
    events = 0
    for track in tracks:
        events += len(derive_events(track, geography))
    elapsed = time.perf_counter() - start
    print(f"{count} tracks, {events} events in {elapsed:.3f} s", file=sys.stderr)
    print(
        json.dumps(
            {
                "name": "events",
                "metrics": {
                    "tracks/s": count / elapsed,
                    "events/s": events / elapsed,
                    "events per track": events / count,
                },
                "targets": {"tracks/s": f">= {TARGET:,.0f}"},
            }
        )
    )


if __name__ == "__main__":
    main()
