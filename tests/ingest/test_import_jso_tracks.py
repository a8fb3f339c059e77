"""Japan JSO tracks (jp_data_cleaned.csv / .geojson) read from the real files."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import msgspec
import pytest

from kuroshio.errors import ImportRecordError
from kuroshio.ingest.jso_tracks import (
    parse_geometry_text,
    read_jso_tracks,
    release_date,
    window_from_content,
)
from kuroshio.ingest.records import Record
from kuroshio.ingest.source_files import JAPAN, SkippedRecord
from kuroshio.model import MultiLineString, Observation

CSV = "twreporter/Japan/jp_data_cleaned.csv"
GEOJSON = "twreporter/Japan/jp_data_cleaned.geojson"


@pytest.fixture(scope="module")
def records(shared_data: Path) -> list[Record]:
    return read_jso_tracks(shared_data / CSV)


def _observations(records: list[Record]) -> dict[str, Observation]:
    return {item.id: item for _, item in records if isinstance(item, Observation)}


def test_only_version_new_rows_are_kept(shared_data: Path, records: list[Record]) -> None:
    with (shared_data / CSV).open(encoding="utf-8") as handle:
        versions = [row["version"] for row in csv.DictReader(handle)]
    assert len(versions) == 327
    assert versions.count("new") == 210
    skipped = [item for _, item in records if isinstance(item, SkippedRecord)]
    assert len(skipped) == 117  # 115 old (repeats) + 2 'sum' lines of the carrier deployments
    assert sum("version=old" in s.reason for s in skipped) == 115
    refused = [
        item
        for _, item in records
        if isinstance(item, ImportRecordError) and not isinstance(item, SkippedRecord)
    ]
    assert refused == []
    assert len(_observations(records)) == 388


def test_csv_and_geojson_forms_give_the_same_observations(
    shared_data: Path, records: list[Record]
) -> None:
    from_geojson = _observations(read_jso_tracks(shared_data / GEOJSON))
    assert from_geojson == _observations(records)


def test_miyako_transit_of_luyang_iii_155_on_30_july_2022(records: list[Record]) -> None:
    track = _observations(records)["JPN:jso:p20220801_02:0002"]
    assert track.origin == "JPN" and track.kind == "sea"
    assert track.observed_at == dt.datetime(2022, 7, 30, tzinfo=JAPAN)
    assert track.platform is not None
    assert track.platform.hull_numbers == ("155",)
    assert track.platform.nationality == "CHN"
    assert track.platform.label == "052D旅洋III型導彈驅逐艦"


def test_hour_in_the_label_and_year_across_new_year(records: list[Record]) -> None:
    observations = _observations(records)
    late = observations["JPN:jso:p20220803_03:0011"]  # "7/3122時台（北上）"
    assert late.observed_at == dt.datetime(2022, 7, 31, 22, tzinfo=JAPAN)
    liaoning = observations["JPN:jso:p20230102_01:0120-5"]  # "① 12月17日…晚間8時左右"
    assert liaoning.observed_at == dt.datetime(2022, 12, 17, 20, tzinfo=JAPAN)
    assert liaoning.platform is not None and liaoning.platform.hull_numbers == ("16",)


def test_joint_sailing_is_split_per_type_with_its_navy(records: list[Record]) -> None:
    observations = _observations(records)
    parts = sorted(k for k in observations if k.startswith("JPN:jso:p20220929_03:0057-"))
    assert len(parts) == 5
    russian = [observations[k].platform for k in parts]
    by_label = {p.label: p for p in russian if p is not None}
    slava = by_label["守護級護衛艦"]
    assert (slava.nationality, slava.count, slava.hull_numbers) == ("RUS", 3, ("333", "335", "339"))
    assert by_label["055型刃海級導彈驅逐艦"].nationality == "CHN"


def test_shapes_of_one_text_box_form_one_track(records: list[Record]) -> None:
    observations = _observations(records)
    drone = observations["JPN:jso:p20220805_01:0016"]  # rows 16 and 17, one BZK-005
    assert "JPN:jso:p20220805_01:0017" not in observations
    assert isinstance(drone.geometry, MultiLineString)
    assert drone.kind == "air"
    assert drone.platform is not None and drone.platform.count == 1
    assert drone.provenance.record == "jp_data_cleaned order 16+17 (p20220805_01.pdf)"


def test_a_python_repr_geometry_is_read_without_evaluating_code() -> None:
    value = parse_geometry_text("{'type': 'LineString', 'coordinates': [[1.0, 2.0], [3.0, 4.0]]}")
    assert value == {"type": "LineString", "coordinates": [[1.0, 2.0], [3.0, 4.0]]}
    with pytest.raises(ValueError, match="not a dict literal"):
        parse_geometry_text("__import__('os').system('true')")


def test_dates_in_labels() -> None:
    released = release_date("p20221201_04.pdf")
    window = window_from_content("11/30-12/1_054A江凱II型護衛艦（舷號「577」）", released)
    assert window is not None
    assert (window.start, window.end.date()) == (
        dt.datetime(2022, 11, 30, tzinfo=JAPAN),
        dt.date(2022, 12, 1),
    )
    assert window_from_content("BZK-005偵察型無人機（1機）", released) is None


def test_reimport_is_stable(shared_data: Path, records: list[Record]) -> None:
    again = read_jso_tracks(shared_data / CSV)
    assert msgspec.json.encode([o for _, o in again if isinstance(o, Observation)]) == (
        msgspec.json.encode([o for _, o in records if isinstance(o, Observation)])
    )
