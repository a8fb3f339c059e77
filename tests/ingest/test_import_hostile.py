"""Hostile input through the command line, as a user would give it: numbers thousands of digits
long, JSON nested 10 000 deep, a CSV cut off mid-row and files over the node's size limit. A
whole file that cannot be used gives one line naming it, exit status 1, and stores nothing; a
record that cannot be read is refused with its place and reason, the rest stored, and the command
exits 1 after its summary; never a traceback."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import msgspec
import pytest

from cli_run import run
from observations import observation

DAILY = "pla-dashboard/daily_counts_to_2024.csv"
MND = "twreporter/Taiwan/20230918-20240115.geojson"
HUGE = "9" * 5_000


@pytest.fixture
def node(tmp_path: Path) -> Path:
    run("init", "--party", "TWN", tmp_path / "twn", check=True)
    return tmp_path / "twn"


def _count(node: Path, table: str) -> int:
    with sqlite3.connect(node / "store.sqlite") as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _refused_cleanly(
    result: subprocess.CompletedProcess[str], *needles: str, status: int = 1
) -> str:
    assert result.returncode == status
    err = result.stderr
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    assert max(len(line) for line in err.splitlines()) < 400
    return err


def test_a_count_of_5000_digits_is_one_refused_row(
    shared_data: Path, node: Path, tmp_path: Path
) -> None:
    lines = (shared_data / DAILY).read_text(encoding="utf-8").splitlines()[:6]
    cells = lines[3].split(",")
    cells[7] = HUGE
    lines[3] = ",".join(cells)
    source = tmp_path / "daily.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("import", "daily-counts", source, "-n", node, "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [refused] = json.loads(result.stdout)["rejected"]
    assert refused["location"] == "daily.csv:4"
    assert "is not a whole count in 0..1000" in refused["reason"]
    assert len(refused["reason"]) < 200
    assert _count(node, "daily_counts") == 4  # the other rows


def test_a_count_string_of_5000_digits_is_one_refused_track(
    shared_data: Path, node: Path, tmp_path: Path
) -> None:
    document = json.loads((shared_data / MND).read_text(encoding="utf-8"))
    document["features"] = document["features"][:5]
    document["features"][2]["properties"]["num"] = HUGE
    source = tmp_path / "maps.geojson"
    source.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    result = run("import", "mnd-tracks", source, "-n", node, "--json", "--no-events")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    [refused] = json.loads(result.stdout)["rejected"]
    assert refused["location"].startswith("maps.geojson#")
    assert "is not a whole number of aircraft in 1..500" in refused["reason"]
    assert len(refused["reason"]) < 200
    assert _count(node, "observation_versions") == 4


def test_a_truncated_csv_is_refused_whole(shared_data: Path, node: Path, tmp_path: Path) -> None:
    text = (shared_data / DAILY).read_text(encoding="utf-8")
    cut = text[: text.index("\n", len(text) // 2) + 12]  # a dozen characters into a row
    source = tmp_path / "cut.csv"
    source.write_text(cut, encoding="utf-8")
    result = run("import", "daily-counts", source, "-n", node)
    _refused_cleanly(result, "cut.csv:", "truncated CSV")
    assert _count(node, "daily_counts") == 0


def test_files_over_the_nodes_limit_are_refused_before_reading(
    shared_data: Path, node: Path, tmp_path: Path
) -> None:
    config = node / "kuroshio.toml"
    text = config.read_text()
    config.write_text(text.replace("max_file_bytes = 4294967296", "max_file_bytes = 4096"))
    result = run("import", "daily-counts", shared_data / DAILY, "-n", node)
    _refused_cleanly(result, "more than limits.max_file_bytes (4096)")
    source = tmp_path / "many.ndjson"
    source.write_bytes(b"\n".join(msgspec.json.encode(observation(n)) for n in range(40)))
    _refused_cleanly(run("add", "-n", node, source), "many.ndjson", "limits.max_file_bytes")
    assert _count(node, "daily_counts") == 0 and _count(node, "observation_versions") == 0


def test_json_nested_10000_deep_is_refused_with_its_place(node: Path, tmp_path: Path) -> None:
    deep = b'{"id": "TWN:deep:1", "remarks": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    lines = tmp_path / "deep.ndjson"
    lines.write_bytes(msgspec.json.encode(observation(1)) + b"\n" + deep + b"\n")
    _refused_cleanly(run("add", "-n", node, lines), "deep.ndjson:2: ", "$.remarks", status=1)
    assert _count(node, "observation_versions") == 1

    array = tmp_path / "deep.json"
    array.write_bytes(b"[" * 10_000 + b"]" * 10_000)
    _refused_cleanly(run("add", "-n", node, array), "deep.json: ", "nested deeper")
    assert _count(node, "observation_versions") == 1
