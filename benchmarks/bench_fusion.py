"""Fusion: association quality against synthetic truth, and fusing rate on synthetic radar plots.

Scenarios from :mod:`kuroshio.fusion.synthetic` (Taiwan radar plots and Japan's, coarsened to a
10 km grid, late and out of order, some corrected and some sent twice), fused in one batch and,
for one scenario, report by report. Dense radar: a live radar feed of many source tracks, each
updated once a second, added report by report to one engine whose picture is read once a scan
(as a display reads it). Shared feeds: two parties' live radar feeds over one area, most of
their tracks on the same aircraft, added to one engine the same way; their tracks are associated
across the parties. Prints one JSON line of results.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time

from kuroshio.fusion import FusionEngine, fuse
from kuroshio.fusion.synthetic import Scores, radar_feed, scenario, score, shared_radar_feeds

QUICK = os.environ.get("KUROSHIO_BENCH_QUICK", "") not in ("", "0")
SEEDS = range(1, 4) if QUICK else range(1, 11)
DENSE_TRACKS = 200 if QUICK else 1000
DENSE_SECONDS = 20 if QUICK else 60
WARM_SECONDS = 3
SHARED_TRACKS = int(os.environ.get("KUROSHIO_BENCH_SHARED_TRACKS", 100 if QUICK else 500))
SHARED_SECONDS = int(os.environ.get("KUROSHIO_BENCH_SHARED_SECONDS", 20 if QUICK else 60))
"""Each party's source tracks and the seconds they are measured for (after the warm-up)."""
SHARED = 0.6


def dense_radar() -> tuple[float, Scores]:
    """Reports/s (CPU) of a live radar feed, and how its updates were put together."""
    feed = radar_feed(5, tracks=DENSE_TRACKS, seconds=DENSE_SECONDS + WARM_SECONDS)
    engine = FusionEngine()
    last = None
    warm = feed.observations[0].observed_at + dt.timedelta(seconds=WARM_SECONDS)
    started = 0.0
    counted = 0
    for observation in feed.observations:
        if observation.observed_at != last:
            engine.picture()
            if observation.observed_at == warm:  # the filters' planes are made; count from here
                started = time.process_time()
        last = observation.observed_at
        engine.add(observation)
        counted += observation.observed_at >= warm
    items = engine.picture()
    rate = counted / (time.process_time() - started)
    return rate, score([[s.id for s in item.sources] for item in items], feed.truth)


def shared_feeds() -> tuple[float, float, Scores]:
    """Reports/s (CPU) of two parties' live feeds into fused tracks, over the whole run and over
    its last minute (lower when an update costs more as tracks grow), and how the parties'
    source tracks were put together (pairs of source tracks against the aircraft they follow)."""
    feeds = shared_radar_feeds(
        5, tracks=SHARED_TRACKS, seconds=SHARED_SECONDS + WARM_SECONDS, shared=SHARED
    )
    engine = FusionEngine()
    warm = feeds.observations[0].observed_at + dt.timedelta(seconds=WARM_SECONDS)
    scan = None
    started = 0.0
    counted = 0
    marks: list[tuple[dt.datetime, float, int]] = []
    """(second, CPU time, reports counted) as each second's scans begin, once warm."""
    for observation in feeds.observations:
        second = observation.observed_at.replace(microsecond=0)
        if second != scan:  # every party's scan of one second, then the display reads
            engine.picture()
            if observation.observed_at == warm:
                started = time.process_time()
            if observation.observed_at >= warm:
                marks.append((second, time.process_time(), counted))
        scan = second
        engine.add(observation)
        counted += observation.observed_at >= warm
    items = engine.picture()
    ended = time.process_time()
    rate = counted / (ended - started)
    last = feeds.observations[-1].observed_at.replace(microsecond=0)
    minute = next(mark for mark in marks if mark[0] >= last - dt.timedelta(seconds=59))
    last_minute = (counted - minute[2]) / (ended - minute[1])
    tracks = [sorted({source.id.split("@")[0] for source in item.sources}) for item in items]
    return rate, last_minute, score(tracks, feeds.track_truth)


def main() -> None:
    pooled: Scores | None = None
    reports = 0
    seconds = 0.0
    for seed in SEEDS:
        world = scenario(seed, sorties=16, hours=6.0)
        observations = [arrival.observation for arrival in world.arrivals]
        started = time.perf_counter()
        items = fuse(observations)
        seconds += time.perf_counter() - started
        reports += len(observations)
        found = score([[s.id for s in item.sources] for item in items], world.truth)
        pooled = found if pooled is None else pooled + found
    assert pooled is not None
    world = scenario(11, sorties=6, hours=2.0)
    engine = FusionEngine()
    started = time.perf_counter()
    for arrival in world.arrivals:
        engine.add(arrival.observation)
        engine.picture()
    incremental = time.perf_counter() - started
    dense_rate, dense = dense_radar()
    shared_rate, shared_last_minute, shared = shared_feeds()
    result = {
        "name": "fusion",
        "metrics": {
            **pooled.summary(),
            "batch_reports_per_s": round(reports / seconds, 1),
            "incremental_ms_per_report": round(1000 * incremental / len(world.arrivals), 2),
            "dense_radar_reports_per_s": round(dense_rate),
            "dense_radar_precision": round(dense.precision, 4),
            "dense_radar_recall": round(dense.recall, 4),
            "shared_feeds_reports_per_s": round(shared_rate),
            "shared_feeds_last_minute_reports_per_s": round(shared_last_minute),
            "shared_feeds_track_precision": round(shared.precision, 4),
            "shared_feeds_track_recall": round(shared.recall, 4),
        },
        "targets": {
            "precision": ">= 0.95",
            "recall": ">= 0.95",
            "cross_precision": ">= 0.95",
            "cross_recall": ">= 0.95",
            "dense_radar_reports_per_s": ">= 5000",
            "shared_feeds_reports_per_s": ">= 5000",
        },
        "setup": {
            "seeds": list(SEEDS),
            "sorties": 16,
            "hours": 6,
            "grid_km": 10,
            "dense_radar": {"tracks": DENSE_TRACKS, "seconds": DENSE_SECONDS, "update_hz": 1},
            "shared_feeds": {
                "parties": 2,
                "tracks_each": SHARED_TRACKS,
                "shared": SHARED,
                "seconds": SHARED_SECONDS,
                "update_hz": 1,
            },
        },
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
