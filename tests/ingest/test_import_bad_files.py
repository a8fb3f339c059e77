"""Bad files (truncated, wrong encoding, missing columns) give one clear error and store nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_run import run
from kuroshio.errors import ImportFileError
from kuroshio.ingest.daily_counts import read_daily_counts
from kuroshio.ingest.jso_tracks import read_jso_tracks
from kuroshio.ingest.mnd_tracks import read_mnd_tracks
from kuroshio.ingest.nav_warnings import read_nav_warnings
from kuroshio.ingest.source_files import read_text

MND = "twreporter/Taiwan/20230918-20240115.geojson"
DAILY = "pla-dashboard/daily_counts_to_2024.csv"
WARNINGS = "pla-dashboard/msa_military_exercise_warnings.csv"


@pytest.fixture
def truncated(shared_data: Path, tmp_path: Path) -> Path:
    path = tmp_path / "cut.geojson"
    data = (shared_data / MND).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_truncated_geojson_names_the_file_and_line(truncated: Path) -> None:
    with pytest.raises(ImportFileError, match=r"cut\.geojson:\d+: malformed or truncated JSON"):
        read_mnd_tracks(truncated)


def test_utf16_and_latin1_files_are_refused_whole(shared_data: Path, tmp_path: Path) -> None:
    utf16 = tmp_path / "daily16.csv"
    utf16.write_bytes((shared_data / DAILY).read_text(encoding="utf-8").encode("utf-16"))
    with pytest.raises(ImportFileError, match=r"daily16\.csv: the file is UTF-16 text"):
        read_daily_counts(utf16)
    latin1 = tmp_path / "warnings.csv"
    latin1.write_bytes(
        "publish_date,title,time_periods,coordinates,start_date,end_date\n"
        '2026-03-15,Exercice — zone é,03/16,"21.3,108.7; 21.3,108.9; 21.2,108.9",,\n'.encode(
            "cp1252"
        )
    )
    with pytest.raises(ImportFileError, match=r"warnings\.csv:2: not UTF-8 text \(byte 0x97"):
        read_nav_warnings(latin1, origin="TWN")


def test_csv_without_required_columns(tmp_path: Path) -> None:
    path = tmp_path / "jso.csv"
    path.write_text("order,country,version\n1,china,new\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match=r"jso\.csv: missing required column\(s\) category"):
        read_jso_tracks(path)


def test_file_size_is_bounded(shared_data: Path) -> None:
    with pytest.raises(ImportFileError, match="more than the limit of 1024"):
        read_text(shared_data / DAILY, max_bytes=1024)


def test_cli_stores_nothing_when_one_of_the_files_is_bad(
    shared_data: Path, truncated: Path, tmp_path: Path
) -> None:
    node = tmp_path / "twn"
    run("init", "--party", "TWN", node, check=True)
    failed = run("import", "mnd-tracks", shared_data / MND, truncated, "--node", node)
    assert failed.returncode == 1
    assert "cut.geojson" in failed.stderr and "truncated JSON" in failed.stderr
    assert "Traceback" not in failed.stderr
    listed = run("query", "--node", node, "--format", "ndjson", check=True)
    assert listed.stdout == ""

    missing = tmp_path / "counts.csv"
    missing.write_text("date,year\n2022/8/5,2022\n", encoding="utf-8")
    refused = run("import", "daily-counts", missing, "--node", node, "--json")
    assert refused.returncode == 1
    assert "missing required column(s) pla_aircraft_sorties" in refused.stderr
    report = run("report", "daily", "--node", node, "--json", check=True)
    assert json.loads(report.stdout)["days"] == []
