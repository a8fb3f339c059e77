"""``kuroshio import``, ``events`` and ``report daily`` run as a user runs them, on real data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli_run import run

TAIWAN = (
    "twreporter/Taiwan/20220801-20230915_fixed.geojson",
    "twreporter/Taiwan/20230918-20240115.geojson",
)
JAPAN = "twreporter/Japan/jp_data_cleaned.csv"
DAILY = "pla-dashboard/daily_counts_to_2024.csv"


def _json(*args: str | Path, exit_code: int = 0) -> Any:
    """The JSON summary of a command that must exit with ``exit_code`` (1: records refused)."""
    done = run(*args)
    assert done.returncode == exit_code, done.stdout + done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def node(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TWN node holding the MND tracks, the JSO tracks and the daily counts."""
    directory = tmp_path_factory.mktemp("nodes") / "twn"
    run("init", "--party", "TWN", directory, check=True)
    return directory


@pytest.fixture(scope="module")
def first_import(node: Path, shared_data: Path) -> Any:
    # One record is refused (a track without a count): the summary is printed, then exit 1.
    return _json(
        "import", "mnd-tracks", *(shared_data / f for f in TAIWAN), "-n", node, "--json",
        exit_code=1,
    )  # fmt: skip


def test_mnd_import_counts_and_reasons(first_import: Any) -> None:
    assert first_import["read"] == 1261
    assert first_import["inserted"] == first_import["accepted"] == 1259
    assert [s["location"] for s in first_import["skipped"]] == [
        "20220801-20230915_fixed.geojson#199"
    ]
    assert first_import["rejected"] == [
        {
            "location": "20220801-20230915_fixed.geojson#184",
            "reason": "num (the aircraft count) is empty",
        }
    ]
    assert first_import["events_new"] == first_import["events_derived"] > 1000


def test_reimport_stores_nothing_new(node: Path, shared_data: Path, first_import: Any) -> None:
    again = _json(
        "import", "mnd-tracks", *(shared_data / f for f in TAIWAN), "-n", node, "--json",
        exit_code=1,
    )  # fmt: skip
    assert (again["inserted"], again["superseded"], again["unchanged"]) == (0, 0, 1259)
    assert again["events_new"] == 0
    assert again["events_derived"] == first_import["events_derived"]


def test_human_summary_lists_reasons(node: Path, shared_data: Path, first_import: Any) -> None:
    done = run("import", "mnd-tracks", shared_data / TAIWAN[0], "-n", node)
    assert done.returncode == 1  # after the summary, because a record was refused
    shown = done.stdout
    assert "kuroshio import mnd-tracks → TWN" in shown
    assert "num (the aircraft count) is empty" in shown
    assert "rejected" in shown and "skipped" in shown


def test_miyako_transits_of_jso_tracks_are_listed_as_events(
    node: Path, shared_data: Path, first_import: Any
) -> None:
    imported = _json("import", "jso-tracks", shared_data / JAPAN, "-n", node, "--json")
    assert (imported["inserted"], len(imported["skipped"]), imported["rejected"]) == (388, 117, [])
    found = _json(
        "events", "-n", node, "--kind", "strait_transit", "--zone", "miyako",
        "--start", "2023-08-25T00:00+09:00", "--end", "2023-08-26T00:00+09:00", "--json",
    )  # fmt: skip
    bombers = [e for e in found["events"] if e["observations"][0][0] == "JPN:jso:p20230825_01:0318"]
    assert [e["direction"] for e in bombers] == [
        "East China Sea to Pacific",
        "Pacific to East China Sea",
    ]
    assert all(e["zone"] == "Miyako Strait" and e["origin"] == "JPN" for e in bombers)
    table = run("events", "-n", node, "--kind", "median_line_crossing", "--limit", "5", check=True)
    assert "Taiwan Strait median line" in table.stdout


def test_daily_report_puts_maps_beside_counts(
    node: Path, shared_data: Path, first_import: Any
) -> None:
    imported = _json("import", "daily-counts", shared_data / DAILY, "-n", node, "--json")
    assert imported["inserted"] == 1435 and len(imported["notes"]) == 4
    report = _json("report", "daily", "-n", node, "--json")
    day = next(d for d in report["days"] if d["day"] == "2022-08-05")
    assert day == {
        "day": "2022-08-05", "tracks": 6, "track_aircraft": 49, "daily_count": 49, "match": True,
        "count_day": "2022-08-05", "format": "tracks", "within_one": True, "reason": None,
    }  # fmt: skip
    assert report["days_compared"] == 379
    assert report["days_matching"] == 8
    assert report["days_tracks_within_count"] == 329
    shifted = _json("report", "daily", "-n", node, "--json", "--offset-days", "-1")
    assert shifted["days_tracks_within_count"] / shifted["days_compared"] > 0.97
    table = run("report", "daily", "-n", node, "--start", "2022-08-01", "--end", "2022-08-07")
    assert "agreement:" in table.stdout and "2022-08-05" in table.stdout
