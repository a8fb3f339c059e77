"""Fusion: association quality against synthetic truth, and fusing rate on synthetic radar plots.

Scenarios from :mod:`kuroshio.fusion.synthetic` (Taiwan radar plots and Japan's, coarsened to a
10 km grid, late and out of order, some corrected and some sent twice), fused in one batch and,
for one scenario, report by report. Prints one JSON line of results.
"""

from __future__ import annotations

import json
import os
import sys
import time

from kuroshio.fusion import FusionEngine, fuse
from kuroshio.fusion.synthetic import Scores, scenario, score

QUICK = os.environ.get("KUROSHIO_BENCH_QUICK", "") not in ("", "0")
SEEDS = range(1, 4) if QUICK else range(1, 11)


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
    result = {
        "name": "fusion",
        "metrics": {
            **pooled.summary(),
            "batch_reports_per_s": round(reports / seconds, 1),
            "incremental_ms_per_report": round(1000 * incremental / len(world.arrivals), 2),
        },
        "targets": {
            "precision": ">= 0.95",
            "recall": ">= 0.95",
            "cross_precision": ">= 0.95",
            "cross_recall": ">= 0.95",
        },
        "setup": {"seeds": list(SEEDS), "sorties": 16, "hours": 6, "grid_km": 10},
    }
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
