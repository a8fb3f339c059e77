"""Full import of every shared public source into a fresh node, timed (and a re-import).

Reads ../shared/data (or KUROSHIO_SHARED_DATA), imports each source the way ``kuroshio import``
does (events included) into a new node directory, imports everything again (nothing new is
stored), and prints one JSON object with the times and counts.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from kuroshio.ingest.public_record import SourceName, run_import
from kuroshio.node import init_node

DATA = Path(
    os.environ.get(
        "KUROSHIO_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    )
).resolve()

SOURCES: tuple[tuple[SourceName, tuple[str, ...]], ...] = (
    (
        SourceName.mnd_tracks,
        (
            "twreporter/Taiwan/20220801-20230915_fixed.geojson",
            "twreporter/Taiwan/20230918-20240115.geojson",
        ),
    ),
    (SourceName.jso_tracks, ("twreporter/Japan/jp_data_cleaned.csv",)),
    (SourceName.jso_press, ("pla-dashboard/japan_mod_texts_dev.json",)),
    (
        SourceName.daily_counts,
        ("pla-dashboard/daily_counts_to_2024.csv", "pla-dashboard/japan_strait_transits.csv"),
    ),
    (SourceName.nav_warnings, ("pla-dashboard/msa_military_exercise_warnings.csv",)),
)


def main() -> None:
    if not (DATA / "README.md").is_file():
        sys.exit(f"public data not found at {DATA}")
    metrics: dict[str, float | int] = {}
    with tempfile.TemporaryDirectory() as tmp, init_node(Path(tmp) / "node", "TWN") as node:
        started = time.perf_counter()
        for source, files in SOURCES:
            report = run_import(node, source, [DATA / name for name in files])
            metrics[f"{source.value} accepted"] = report.accepted
            metrics[f"{source.value} rejected"] = len(report.summary.rejected)
            metrics[f"{source.value} skipped"] = len(report.skipped)
            metrics[f"{source.value} events"] = report.events_derived
            metrics[f"{source.value} s"] = report.seconds
        metrics["full import s"] = time.perf_counter() - started
        accepted = sum(int(v) for k, v in metrics.items() if k.endswith(" accepted"))
        metrics["records accepted, all sources"] = accepted
        metrics["full import records/s"] = accepted / metrics["full import s"]
        started = time.perf_counter()
        stored_again = 0
        for source, files in SOURCES:
            report = run_import(node, source, [DATA / name for name in files])
            stored_again += report.summary.stored
        metrics["re-import s"] = time.perf_counter() - started
        metrics["re-import stored"] = stored_again
    print(
        json.dumps(
            {
                "name": "import",
                "metrics": metrics,
                "targets": {"full import s": "< 30", "re-import stored": "0"},
            }
        )
    )


if __name__ == "__main__":
    main()
