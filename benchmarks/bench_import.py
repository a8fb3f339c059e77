"""Full import of every shared public source into a fresh node, timed (and a re-import), and
the memory a large import takes.

Reads ../shared/data (or KUROSHIO_SHARED_DATA), imports each source the way ``kuroshio import``
does (events included) into a new node directory, imports everything again (nothing new is
stored). Then the memory part: a generated ~120 MB MND-tracks file (12 MB with
KUROSHIO_BENCH_QUICK=1) and a daily-counts file of every day of a century are imported by the
real ``kuroshio import`` command in a child process, whose peak RSS (``getrusage`` through
``wait4``) is set against the target: 2 × the largest record + 100 MB. The same command on a
one-feature file gives the floor every run pays (the interpreter and the libraries). Prints
one JSON object with the times, counts and sizes. ``bench_import.py memory`` runs only the
memory part (it needs no shared data).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import subprocess
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


QUICK = os.environ.get("KUROSHIO_BENCH_QUICK", "") not in ("", "0")
MND_BYTES = (12 if QUICK else 120) * 1024 * 1024
MB = 1024 * 1024
TYPES = ("殲-16", "蘇愷-30機", "運-8反潛機", "轟-6K", "無偵-7")


def write_mnd_tracks(path: Path, size: int) -> tuple[int, int]:
    """An MND-tracks file (the 2023-09 schema) of about ``size`` bytes: (features, largest)."""
    rng = random.Random(18)
    first = dt.date(2023, 9, 18)
    count = largest = written = 0
    with path.open("w", encoding="utf-8") as out:
        out.write('{"type": "FeatureCollection", "features": [\n')
        while written < size:
            day = first + dt.timedelta(days=count % 3_000)
            kind = TYPES[count % len(TYPES)]
            lon, lat = 118.0 + rng.random() * 5, 21.0 + rng.random() * 5
            line = [[lon + step * 0.05, lat + rng.random() * 0.1] for step in range(30)]
            feature = {
                "type": "Feature",
                "properties": {
                    "properties_id": f"{day.isoformat()}_{kind}x2",
                    "type": "LineString",
                    "date": day.isoformat(),
                    "aircraft_type": kind,
                    "num": str(1 + count % 4),
                },
                "geometry": {"type": "LineString", "coordinates": line},
            }
            text = (",\n" if count else "") + json.dumps(feature, ensure_ascii=False)
            data = text.encode("utf-8")
            out.write(text)
            written += len(data)
            largest = max(largest, len(data))
            count += 1
        out.write("\n]}\n")
    return count, largest


def write_daily_counts(path: Path) -> tuple[int, int]:
    """A daily-counts file with a row for every day of 2000–2099: (rows, longest row)."""
    columns = ("date", "pla_aircraft_sorties", "china_carrier_present", "Political_statement")
    day, last = dt.date(2000, 1, 1), dt.date(2099, 12, 31)
    rows = longest = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write(",".join((*columns, "與那國", "宮古", "大禹", "對馬")) + "\n")
        while day <= last:
            statement = "國防部聲明：共機擾臺，持續監控" * (1 + rows % 12)
            row = f"{day:%Y/%-m/%-d},{rows % 60},{rows % 2},{statement},0,1,0,0\n"
            out.write(row)
            longest = max(longest, len(row.encode("utf-8")))
            rows += 1
            day += dt.timedelta(days=1)
    return rows, longest


def peak_rss_mb(source: str, path: Path, *options: str) -> tuple[float, int]:
    """Peak RSS (MB) of ``kuroshio import SOURCE PATH`` into a fresh node, in a child process,
    and its exit status."""
    node = path.with_suffix(".node")
    kuroshio = [sys.executable, "-m", "kuroshio"]
    subprocess.run([*kuroshio, "init", "--party", "TWN", node], check=True, capture_output=True)
    with (path.parent / "stderr.txt").open("w+") as errors:
        child = subprocess.Popen(
            [*kuroshio, "import", source, path, "-n", node, *options],
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
        _, status, usage = os.wait4(child.pid, 0)
        errors.seek(0)
        sys.stderr.write(errors.read()[-2000:])
    return usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def memory() -> tuple[dict[str, float | int], dict[str, str]]:
    """Peak RSS of large imports by the real command, against 2 × largest record + 100 MB."""
    metrics: dict[str, float | int] = {}
    targets: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tiny = root / "tiny.geojson"
        write_mnd_tracks(tiny, 1)
        floor, _ = peak_rss_mb("mnd-tracks", tiny)
        metrics["import floor (1-feature file) peak RSS MB"] = round(floor, 1)
        maps = root / "maps.geojson"
        features, largest = write_mnd_tracks(maps, MND_BYTES)
        started = time.perf_counter()
        peak, status = peak_rss_mb("mnd-tracks", maps)
        name = f"mnd-tracks {maps.stat().st_size / MB:.0f} MB"
        metrics[f"{name}: features"] = features
        metrics[f"{name}: exit status"] = status
        metrics[f"{name}: s"] = round(time.perf_counter() - started, 1)
        metrics[f"{name}: peak RSS MB"] = round(peak, 1)
        targets[f"{name}: peak RSS MB"] = f"<= {2 * largest / MB + 100:.1f}"
        metrics[f"{name}: peak RSS above the floor MB"] = round(peak - floor, 1)
        targets[f"{name}: peak RSS above the floor MB"] = f"<= {2 * largest / MB + 100:.1f}"
        metrics[f"{name}: peak RSS ÷ file size"] = round(peak * MB / maps.stat().st_size, 2)
        counts = root / "daily.csv"
        rows, longest = write_daily_counts(counts)
        peak, status = peak_rss_mb("daily-counts", counts)
        name = f"daily-counts {rows} rows {counts.stat().st_size / MB:.0f} MB"
        metrics[f"{name}: exit status"] = status
        metrics[f"{name}: peak RSS MB"] = round(peak, 1)
        targets[f"{name}: peak RSS MB"] = f"<= {2 * longest / MB + 100:.1f}"
        metrics[f"{name}: peak RSS above the floor MB"] = round(peak - floor, 1)
    return metrics, targets


def main() -> None:
    if sys.argv[1:] == ["memory"]:
        metrics, targets = memory()
        print(json.dumps({"name": "import memory", "metrics": metrics, "targets": targets}))
        return
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
    memory_metrics, memory_targets = memory()
    metrics.update(memory_metrics)
    targets = {"full import s": "< 30", "re-import stored": "== 0", **memory_targets}
    print(json.dumps({"name": "import", "metrics": metrics, "targets": targets}))


if __name__ == "__main__":
    main()
