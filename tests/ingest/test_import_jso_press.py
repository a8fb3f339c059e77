"""JSO press-release texts (japan_mod_texts_dev.json) as observations, one per activity."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pyproj import Geod

from cli_run import run
from kuroshio.errors import ImportRecordError
from kuroshio.ingest.jso_press import PLACES, read_jso_press
from kuroshio.ingest.jso_press_text import parse_press_release
from kuroshio.ingest.records import Record
from kuroshio.ingest.source_files import JAPAN, SkippedRecord
from kuroshio.model import Observation, Point

TEXTS = "pla-dashboard/japan_mod_texts_dev.json"


@pytest.fixture(scope="module")
def records(shared_data: Path) -> list[Record]:
    return read_jso_press(shared_data / TEXTS)


def _observations(records: list[Record]) -> dict[str, Observation]:
    return {item.id: item for _, item in records if isinstance(item, Observation)}


def _activities(shared_data: Path) -> int:
    texts = json.loads((shared_data / TEXTS).read_text(encoding="utf-8"))["texts"]
    return sum(
        len(parse_press_release(entry["text"], source_name=name).activities)
        for name, entry in texts.items()
    )


def test_every_release_gives_activities_or_a_reason(
    shared_data: Path, records: list[Record]
) -> None:
    skipped = {item.location: item.reason for _, item in records if isinstance(item, SkippedRecord)}
    refused = [
        item
        for _, item in records
        if isinstance(item, ImportRecordError) and not isinstance(item, SkippedRecord)
    ]
    assert refused == []
    # one observation per activity the parser finds; the 9 others say why they give none
    assert len(_observations(records)) == _activities(shared_data) > 30
    assert len(skipped) == 9
    assert "コブラ・ゴールド" in skipped["japan_mod_texts_dev.json#p20260220_01.pdf"]
    assert "災害派遣" in skipped["japan_mod_texts_dev.json#p20260419_01.pdf"]
    assert "scramble statistics" in skipped["japan_mod_texts_dev.json#p20260313_01.pdf"]


def test_unrelated_releases_yield_no_observation(records: list[Record]) -> None:
    unrelated = ("p20260220_01", "p20260419_01", "p20260522_02", "p20260708_01")
    assert not [k for k in _observations(records) if k.split(":")[2] in unrelated]


def test_russian_frigates_through_the_yonaguni_iriomote_passage(records: list[Record]) -> None:
    frigates = _observations(records)["JPN:jso-press:p20260422_02:1"]
    assert frigates.origin == "JPN" and frigates.kind == "sea"
    assert frigates.observed_at == dt.datetime(2026, 4, 22, 0, tzinfo=JAPAN)
    assert frigates.platform is not None
    assert (frigates.platform.type, frigates.platform.count) == ("Steregushchiy", 2)
    assert (frigates.platform.nationality, frigates.platform.hull_numbers) == (
        "RUS",
        ("333", "343"),
    )
    assert isinstance(frigates.geometry, Point)
    lon, lat = frigates.geometry.coordinates
    assert 123.0 < lon < 123.7 and 24.3 < lat < 24.5  # between Yonaguni and Iriomote
    assert frigates.source.uncertainty_m >= 20_000


def test_a_position_from_a_named_island(records: list[Record]) -> None:
    destroyer = _observations(records)["JPN:jso-press:p20260721_01:1"]  # 沖ノ鳥島の南西約330km
    assert isinstance(destroyer.geometry, Point)
    lon, lat = PLACES["沖ノ鳥島"]
    azimuth, _, metres = Geod(ellps="WGS84").inv(lon, lat, *destroyer.geometry.coordinates)
    assert round(metres / 1000) == 330
    assert round(azimuth % 360) == 225
    assert destroyer.platform is not None and destroyer.platform.type == "Type 055"


def test_an_aircraft_over_a_sea_has_the_uncertainty_of_the_sea(records: list[Record]) -> None:
    il20 = _observations(records)["JPN:jso-press:p20260727_03:1"]
    assert il20.kind == "air"
    assert il20.platform is not None and il20.platform.type == "Il-20"
    assert il20.source.uncertainty_m >= 500_000


def test_one_release_as_a_text_file(shared_data: Path, tmp_path: Path) -> None:
    texts = json.loads((shared_data / TEXTS).read_text(encoding="utf-8"))["texts"]
    path = tmp_path / "p20260427_01.txt"
    path.write_text(texts["p20260427_01.pdf"]["text"], encoding="utf-8")
    observations = [item for _, item in read_jso_press(path) if isinstance(item, Observation)]
    assert [o.platform.type for o in observations if o.platform] == ["Type 052D", "Type 903"]
    assert all("passed tsushima" in (o.remarks or "") for o in observations)


def test_cli_import_on_a_japanese_node(shared_data: Path, tmp_path: Path) -> None:
    node = tmp_path / "jpn"
    run("init", "--party", "JPN", node, check=True)
    expected = _activities(shared_data)
    first = json.loads(run("import", "jso-press", shared_data / TEXTS, "-n", node, "--json").stdout)
    assert (first["inserted"], len(first["skipped"]), first["rejected"]) == (expected, 9, [])
    again = json.loads(run("import", "jso-press", shared_data / TEXTS, "-n", node, "--json").stdout)
    assert (again["inserted"], again["unchanged"]) == (0, expected)
