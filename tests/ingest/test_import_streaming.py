"""Files read record by record: a large file gives the records the whole document holds, and a
file found bad only at its end (cut off, a malformed or too deeply nested last record, a record
over the size limit) stores nothing at all and names the file and the record, exit status 1.

Memory is the benchmark's to measure (``benchmarks/bench_import.py``), not these tests'.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import uuid
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cli_run import run
from conftest import POSTGRES_SCHEMAS
from kuroshio.errors import ImportFileError
from kuroshio.ingest.json_stream import json_records
from kuroshio.ingest.mnd_tracks import read_mnd_tracks, stream_mnd_tracks
from kuroshio.model import Observation
from observations import observation

MND = "twreporter/Taiwan/20220801-20230915_fixed.geojson"
DAILY = "pla-dashboard/daily_counts_to_2024.csv"
COPIES = 6


@pytest.fixture
def node(tmp_path: Path) -> Path:
    run("init", "--party", "TWN", tmp_path / "twn", check=True)
    return tmp_path / "twn"


@pytest.fixture
def maps(shared_data: Path) -> dict[str, Any]:
    """The real track maps, as the whole-document parser reads them."""
    document: dict[str, Any] = json.loads((shared_data / MND).read_text(encoding="utf-8"))
    return document


def _write(path: Path, document: dict[str, Any]) -> Path:
    # Indented: features span many lines and every read of the parser ends mid-feature.
    path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


@pytest.fixture
def large(maps: dict[str, Any], tmp_path: Path) -> Path:
    """The real maps six times over (a few MB)."""
    return _write(tmp_path / "large.geojson", {**maps, "features": maps["features"] * COPIES})


def _count(node: Path, table: str, where: str = "") -> int:
    with sqlite3.connect(node / "store.sqlite") as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table} {where}").fetchone()[0])


def _nothing_stored(node: Path) -> None:
    assert _count(node, "observation_versions") == 0
    assert _count(node, "events") == 0
    assert _count(node, "audit_log", "WHERE kind = 'ingest'") == 0


def _refused(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def _content(item: Observation | Exception) -> Any:
    """A record without what names its place (id number, location)."""
    if isinstance(item, Observation):
        content = msgspec.to_builtins(item)
        del content["id"], content["provenance"]
        return content
    return str(item).split(": ", 1)[1]


def test_a_large_file_gives_what_the_whole_document_holds(
    maps: dict[str, Any], large: Path, node: Path
) -> None:
    with large.open("rb") as handle:
        streamed = list(
            json_records(
                handle,
                "large.geojson",
                prefix="features.item",
                place="large.geojson#{}",
                max_record_bytes=1 << 20,
                max_file_bytes=1 << 30,
            )
        )
    assert streamed == json.loads(large.read_text(encoding="utf-8"))["features"]

    once = read_mnd_tracks(_write(large.parent / "once.geojson", maps))
    records = read_mnd_tracks(large)
    assert len(records) == COPIES * len(once)
    for copy in range(COPIES):
        part = records[copy * len(once) : (copy + 1) * len(once)]
        assert [_content(item) for _, item in part] == [_content(item) for _, item in once]

    result = run("import", "mnd-tracks", large, "-n", node, "--json", "--no-events")
    summary = json.loads(result.stdout)
    accepted = sum(isinstance(item, Observation) for _, item in once)
    assert (summary["read"], summary["inserted"]) == (COPIES * len(once), COPIES * accepted)
    assert _count(node, "observation_versions") == COPIES * accepted


def test_a_file_cut_off_at_its_end_stores_nothing(large: Path, node: Path) -> None:
    data = large.read_bytes()
    large.write_bytes(data[: len(data) - 300])
    last = COPIES * 995 - 1
    result = run("import", "mnd-tracks", large, "-n", node)
    _refused(result, "large.geojson:", "truncated JSON", f"in record large.geojson#{last}")
    _nothing_stored(node)


@pytest.mark.parametrize(
    ("last_feature", "problem"),
    [
        (b'{"type": "Feature", "properties": {"num": 007}}', "malformed or truncated JSON"),
        (b'{"type": "Feature", "geometry": ' + b"[" * 100 + b"]" * 100 + b"}", "nested deeper"),
        (b'{"type": "Feature", "properties": {"num": ' + b"9" * 5000 + b"}}", "integer overflow"),
    ],
    ids=["malformed", "too-deep", "5000-digit-number"],
)
def test_a_bad_record_at_the_very_end_stores_nothing(
    maps: dict[str, Any], large: Path, node: Path, last_feature: bytes, problem: str
) -> None:
    data = large.read_bytes().rstrip()
    end = data.rindex(b"]")  # the end of the features
    large.write_bytes(data[:end] + b", " + last_feature + data[end:])
    result = run("import", "mnd-tracks", large, "-n", node, "--no-events")
    _refused(result, problem, f"large.geojson#{COPIES * len(maps['features'])}")
    _nothing_stored(node)


def test_a_feature_over_the_record_limit_is_refused_clearly(
    maps: dict[str, Any], tmp_path: Path
) -> None:
    features = maps["features"][:5]
    features[3] = {**features[3], "properties": {**features[3]["properties"], "x": "y" * 20_000}}
    path = _write(tmp_path / "wide.geojson", {**maps, "features": features})
    with pytest.raises(
        ImportFileError, match=r"wide\.geojson#3 is larger than the limit of 4096 bytes"
    ):
        list(stream_mnd_tracks(path, max_record_bytes=4096))


def _array(path: Path, count: int, tail: bytes = b"") -> Path:
    items = [msgspec.json.encode(observation(n, lon=120 + n / 10_000)) for n in range(count)]
    path.write_bytes(b"[\n" + b",\n".join(items) + tail + b"\n]\n")
    return path


def test_an_array_adds_what_the_same_records_as_ndjson_add(tmp_path: Path, node: Path) -> None:
    array = _array(tmp_path / "many.json", 3_000)
    lines = tmp_path / "many.ndjson"
    lines.write_bytes(
        b"\n".join(msgspec.json.encode(item) for item in json.loads(array.read_bytes()))
    )
    other = tmp_path / "other"
    run("init", "--party", "TWN", other, check=True)
    run("add", "-n", node, array, check=True)
    run("add", "-n", other, lines, check=True)
    listed = [run("query", "-n", n, "--format", "ndjson", check=True).stdout for n in (node, other)]
    assert listed[0] == listed[1] and len(listed[0].splitlines()) == 3_000


def test_an_array_cut_off_or_bad_at_its_end_adds_nothing(tmp_path: Path, node: Path) -> None:
    cut = _array(tmp_path / "cut.json", 3_000)
    cut.write_bytes(cut.read_bytes()[:-40])
    _refused(run("add", "-n", node, cut), "cut.json:", "truncated JSON", "in record cut.json[2999]")
    bad = _array(tmp_path / "bad.json", 3_000, b',\n{"id": tru}')
    _refused(run("add", "-n", node, bad), "bad.json:", "in record bad.json[3000]")
    _nothing_stored(node)


def test_a_record_over_the_nodes_limit_is_refused_clearly(tmp_path: Path, node: Path) -> None:
    config = node / "kuroshio.toml"
    config.write_text(
        config.read_text().replace("max_record_bytes = 1048576", "max_record_bytes = 4096")
    )
    huge = msgspec.json.encode(observation(9, remarks="x" * 2_000)).replace(
        b'"remarks"', b'"padding": "' + b"y" * 200_000 + b'", "remarks"'
    )
    source = _array(tmp_path / "huge.json", 10, b",\n" + huge)
    result = run("add", "-n", node, source)
    _refused(result, "record huge.json[10] is larger than the limit of 4096 bytes")
    _nothing_stored(node)

    # A record a little over the limit is refused on its own; the others are stored.
    wide = _array(
        tmp_path / "wide.json",
        10,
        b",\n" + msgspec.json.encode(observation(10, remarks="x" * 3_990)),
    )
    result = run("add", "-n", node, wide, "--json")
    assert result.returncode == 1
    [refused] = json.loads(result.stdout)["rejected"]
    assert refused["location"].endswith("/wide.json[10]")
    assert refused["reason"] == "record longer than the limit of 4096 bytes"
    assert _count(node, "observation_versions") == 10


def test_a_csv_cut_off_inside_its_last_row_stores_nothing(
    shared_data: Path, tmp_path: Path, node: Path
) -> None:
    text = (shared_data / DAILY).read_text(encoding="utf-8").rstrip("\n")
    source = tmp_path / "cut.csv"
    source.write_text(text[: text.rindex("\n") + 12], encoding="utf-8")
    last = text.count("\n") + 1
    _refused(run("import", "daily-counts", source, "-n", node), f"cut.csv:{last}", "truncated CSV")
    assert _count(node, "daily_counts") == 0


def test_a_file_bad_at_its_end_stores_nothing_on_either_store(
    backend: str, large: Path, tmp_path: Path
) -> None:
    node = tmp_path / "node"
    store = ["--store", backend]
    if backend == "postgres":
        schema = f"kuroshio_stream_{uuid.uuid4().hex[:12]}"
        POSTGRES_SCHEMAS.append(schema)
        store += ["--store-schema", schema]
    run("init", "--party", "TWN", node, *store, check=True)
    good = large.read_bytes()
    large.write_bytes(good[: len(good) - 300])
    _refused(run("import", "mnd-tracks", large, "-n", node), "truncated JSON")
    assert run("query", "-n", node, "--format", "ndjson", check=True).stdout == ""

    large.write_bytes(good)
    result = run("import", "mnd-tracks", large, "-n", node, "--json", "--no-events")
    inserted = json.loads(result.stdout)["inserted"]
    listed = run("query", "-n", node, "--format", "ndjson", "--limit", "100000", check=True)
    assert inserted > 5_000 and len(listed.stdout.splitlines()) == inserted
