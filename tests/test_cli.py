"""The command line through the user's door: ``kuroshio`` in a subprocess on real node files."""

from __future__ import annotations

import csv
import io
import json
import tomllib
from pathlib import Path

import msgspec
import pytest

from cli_run import run
from kuroshio.model import Observation
from observations import observation


def _ndjson(observations: list[Observation]) -> bytes:
    return b"".join(msgspec.json.encode(o) + b"\n" for o in observations)


@pytest.fixture
def node(tmp_path: Path) -> Path:
    directory = tmp_path / "twn"
    run("init", "--party", "TWN", directory, check=True)
    return directory


def test_init_creates_a_validated_node_directory(node: Path) -> None:
    config = tomllib.loads((node / "kuroshio.toml").read_text())
    assert config["node"] == {"party": "TWN", "name": "twn-1"}
    assert (node / config["store"]["path"]).is_file()


def test_init_refuses_an_unknown_party_and_an_existing_node(tmp_path: Path, node: Path) -> None:
    bad = run("init", "--party", "XXX", tmp_path / "x")
    assert bad.returncode != 0
    assert "unknown party code 'XXX'" in bad.stderr
    again = run("init", "--party", "TWN", node)
    assert again.returncode != 0
    assert "already a node directory" in again.stderr


def test_add_then_query_as_table_ndjson_geojson_and_csv(tmp_path: Path, node: Path) -> None:
    source = tmp_path / "obs.ndjson"
    source.write_bytes(_ndjson([observation(i, lon=120.0 + i / 10) for i in range(5)]))
    added = run("add", "--node", node, source, "--json", check=True)
    assert json.loads(added.stdout)["inserted"] == 5

    table = run("query", "--node", node, check=True)
    assert "5 of 5 observations" in table.stdout
    assert "H-6K ×2" in table.stdout

    lines = run("query", "--node", node, "--format", "ndjson", check=True).stdout.splitlines()
    assert sorted(msgspec.json.decode(line, type=Observation).id for line in lines) == [
        f"TWN:test:{i}" for i in range(5)
    ]

    collection = json.loads(run("query", "-n", node, "-f", "geojson", check=True).stdout)
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == 5
    assert collection["features"][0]["geometry"]["type"] == "Point"

    rows = list(csv.DictReader(io.StringIO(run("query", "-n", node, "-f", "csv").stdout)))
    assert [float(r["lon"]) for r in rows] == [120.0, 120.1, 120.2, 120.3, 120.4]


def test_query_filters_reach_the_store(tmp_path: Path, node: Path) -> None:
    source = tmp_path / "obs.ndjson"
    source.write_bytes(_ndjson([observation(1, lon=121.0), observation(2, lon=125.0)]))
    run("add", "-n", node, source, check=True)
    out = run("query", "-n", node, "--bbox", "120,21,122,23", "-f", "ndjson", check=True)
    assert [json.loads(line)["id"] for line in out.stdout.splitlines()] == ["TWN:test:1"]
    none = run("query", "-n", node, "--class", "destroyer", "-f", "ndjson", check=True)
    assert none.stdout == ""


def test_add_reads_standard_input_and_json_arrays(tmp_path: Path, node: Path) -> None:
    run("add", "-n", node, "-", stdin=_ndjson([observation(1)]), check=True)
    array = tmp_path / "array.json"
    array.write_bytes(msgspec.json.encode([observation(2), observation(3)]))
    run("add", "-n", node, array, check=True)
    assert len(run("query", "-n", node, "-f", "ndjson").stdout.splitlines()) == 3


def test_bad_records_are_reported_with_file_line_and_reason_and_the_rest_stored(
    tmp_path: Path, node: Path
) -> None:
    good = [observation(i) for i in range(4)]
    run("add", "-n", node, "-", stdin=_ndjson([good[0]]), check=True)
    conflicting = msgspec.json.encode(observation(0, lon=130.0))  # same id+version, other content
    lines = [
        msgspec.json.encode(good[1]),
        b'{"id": "TWN:broken", "origin": ',  # malformed JSON
        msgspec.json.encode(good[2]).replace(b'"count":2', b'"count":"two"'),
        msgspec.json.encode(good[3]).replace(b"121.0", b"221.0"),
        b'{"id":"XYZ:a:1","origin":"XYZ","kind":"air",'
        b'"observed_at":"2022-08-05T00:00:00Z","geometry":{"type":"Point","coordinates":[1,2]}}',
        conflicting,
        msgspec.json.encode(observation(7, origin="JPN")),  # a partner's: only over links
    ]
    bad_file = tmp_path / "mixed.ndjson"
    bad_file.write_bytes(b"\n".join(lines) + b"\n")
    result = run("add", "-n", node, bad_file)
    assert result.returncode == 1
    err = result.stderr
    assert f"{bad_file}:2: malformed JSON" in err
    assert f"{bad_file}:3: Expected `int`, got `str` - at `$.platform.count`" in err
    assert f"{bad_file}:4: Expected `float` <= 180.0 - at `$.geometry.coordinates[0]`" in err
    assert f"{bad_file}:5: unknown party code 'XYZ'" in err
    assert f"{bad_file}:6: conflicts with a stored record" in err
    assert f"{bad_file}:7: origin JPN: this node adds only TWN's own observations" in err
    stored = {json.loads(x)["id"] for x in run("query", "-n", node, "-f", "ndjson").stdout.split()}
    assert stored == {"TWN:test:0", "TWN:test:1"}
    kept = json.loads(
        run("query", "-n", node, "-f", "ndjson", "--bbox", "120,21,122,23").stdout.split()[0]
    )
    assert kept["geometry"]["coordinates"] == [121.0, 22.0]  # the conflicting copy did not win


def test_oversized_record_is_rejected_and_the_next_one_read(tmp_path: Path, node: Path) -> None:
    config = node / "kuroshio.toml"
    config.write_text(
        config.read_text().replace("max_record_bytes = 1048576", "max_record_bytes = 2048")
    )
    huge = msgspec.json.encode(observation(1, remarks="x" * 3000))
    source = tmp_path / "big.ndjson"
    source.write_bytes(huge + b"\n" + msgspec.json.encode(observation(2)) + b"\n")
    result = run("add", "-n", node, source)
    assert result.returncode == 1
    assert f"{source}:1: record longer than the limit of 2048 bytes" in result.stderr
    assert [
        json.loads(x)["id"] for x in run("query", "-n", node, "-f", "ndjson").stdout.split()
    ] == ["TWN:test:2"]


def test_errors_are_one_clear_line_with_non_zero_exit(tmp_path: Path, node: Path) -> None:
    missing = run("query", "--node", tmp_path / "nowhere")
    assert missing.returncode == 2
    assert "kuroshio.toml not found" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad_bbox = run("query", "-n", node, "--bbox", "1,2,3")
    assert bad_bbox.returncode == 2 and "--bbox" in bad_bbox.stderr
    no_file = run("add", "-n", node, tmp_path / "absent.ndjson")
    assert no_file.returncode == 1 and "absent.ndjson: cannot open" in no_file.stderr
    config = node / "kuroshio.toml"
    config.write_text(config.read_text().replace("port = 8443", 'port = "x"'))
    bad_config = run("query", "-n", node)
    assert bad_config.returncode == 2
    assert "kuroshio.toml" in bad_config.stderr and "federation.port" in bad_config.stderr


def test_schema_prints_json_schema_of_public_records() -> None:
    schema = json.loads(run("schema", check=True).stdout)
    assert schema["$defs"]["Observation"]["properties"]["origin"]["pattern"] == "^[A-Z]{3}$"


def test_a_node_on_an_unreachable_database_is_refused_and_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = tmp_path / "twn"
    monkeypatch.setenv("KUROSHIO_STORE_DSN", "host=127.0.0.1 port=1 user=kuroshio password=hunter2")
    result = run("init", "--party", "TWN", directory, "--store", "postgres")
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot open PostgreSQL store")
    assert "hunter2" not in result.stderr  # the password is never printed
    assert not (directory / "kuroshio.toml").exists()  # run init again once the server is up
    monkeypatch.delenv("KUROSHIO_STORE_DSN")
    result = run("init", "--party", "TWN", directory, "--store", "postgres")
    assert "[store]" in result.stderr or "store.dsn" in result.stderr  # says what to set


def test_an_error_naming_a_toml_section_prints_it_as_written(node: Path) -> None:
    result = run("serve", "--node", node, "--workers", "2")
    assert result.returncode == 2
    assert '[store] backend = "postgres"' in result.stderr


def test_receiving_processes_are_for_a_node_on_postgresql_only(node: Path) -> None:
    result = run("serve", "--node", node, "--receivers", "2")
    assert result.returncode == 2
    assert '[store] backend = "postgres"' in result.stderr
