"""Taiwan MND tracks (The Reporter's digitisation) read from the real files, facts checked."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kuroshio.errors import ImportRecordError
from kuroshio.ingest.mnd_tracks import parse_map_date, read_mnd_tracks, repair_mojibake
from kuroshio.ingest.records import Record
from kuroshio.ingest.source_files import TAIWAN, SkippedRecord
from kuroshio.model import LineString, MultiLineString, Observation

FIRST = "twreporter/Taiwan/20220801-20230915_fixed.geojson"
SECOND = "twreporter/Taiwan/20230918-20240115.geojson"


def _split(records: list[Record]) -> tuple[list[Observation], list[SkippedRecord], list[str]]:
    observations = [item for _, item in records if isinstance(item, Observation)]
    skipped = [item for _, item in records if isinstance(item, SkippedRecord)]
    rejected = [
        str(item)
        for _, item in records
        if isinstance(item, ImportRecordError) and not isinstance(item, SkippedRecord)
    ]
    return observations, skipped, rejected


@pytest.fixture(scope="module")
def first_file(shared_data: Path) -> list[Record]:
    return read_mnd_tracks(shared_data / FIRST)


def test_first_file_gives_993_tracks_one_retrace_skipped_one_without_count(
    first_file: list[Record],
) -> None:
    observations, skipped, rejected = _split(first_file)
    assert len(first_file) == 995
    assert len(observations) == 993
    assert [s.location for s in skipped] == ["20220801-20230915_fixed.geojson#199"]
    assert skipped[0].reason.startswith("a map traced again: trace (2) of the map of 2023-01-15")
    assert rejected == ["20220801-20230915_fixed.geojson#184: num (the aircraft count) is empty"]


def test_2022_08_05_has_six_tracks_of_49_aircraft(first_file: list[Record]) -> None:
    observations, _, _ = _split(first_file)
    day = [o for o in observations if o.id.startswith("TWN:mnd:2022-08-05:")]
    assert len(day) == 6
    assert sum(o.platform.count for o in day if o.platform) == 49
    assert {o.id for o in day} == {f"TWN:mnd:2022-08-05:{n:04d}" for n in range(1, 7)}


def test_roc_date_becomes_the_whole_taiwan_local_day(first_file: list[Record]) -> None:
    observations, _, _ = _split(first_file)
    first = observations[0]  # dates "112-05-19"
    assert first.id == "TWN:mnd:2023-05-19:0001"
    assert first.observed_at == dt.datetime(2023, 5, 19, tzinfo=TAIWAN)
    assert first.until == dt.datetime(2023, 5, 19, 23, 59, 59, 999_999, tzinfo=TAIWAN)
    assert first.origin == "TWN" and first.kind == "air"
    assert first.marking.tlp == "CLEAR"
    assert first.provenance.importer == "mnd-tracks"
    assert first.provenance.record == "20220801-20230915_fixed.geojson#0"


def test_mojibake_type_is_repaired_to_the_chinese_label(first_file: list[Record]) -> None:
    observations, _, _ = _split(first_file)
    assert observations[0].platform is not None
    assert observations[0].platform.label == "直-9反潛直昇機"
    labels = {o.platform.label for o in observations if o.platform}
    assert "殲-16機" in labels
    assert not any("æ" in label or "ç" in label for label in labels if label)


def test_line_and_multiline_tracks_are_kept(first_file: list[Record]) -> None:
    observations, _, _ = _split(first_file)
    kinds = {type(o.geometry) for o in observations}
    assert kinds == {LineString, MultiLineString}
    assert sum(isinstance(o.geometry, MultiLineString) for o in observations) == 73


def test_second_schema_with_iso_dates(shared_data: Path) -> None:
    observations, skipped, rejected = _split(read_mnd_tracks(shared_data / SECOND))
    assert (len(observations), skipped, rejected) == (266, [], [])
    first = observations[0]
    assert first.id == "TWN:mnd:2023-09-18:0001"
    assert first.platform is not None
    assert (first.platform.label, first.platform.count) == ("蘇愷-30機", 10)


def test_reading_twice_gives_identical_observations(shared_data: Path) -> None:
    once = read_mnd_tracks(shared_data / SECOND)
    again = read_mnd_tracks(shared_data / SECOND)
    assert once == again


def _feature(dates: str, geometry: object, *, raw: str = "殲-16機", num: str = "2") -> object:
    return {
        "type": "Feature",
        "properties": {"id": "x", "dates": dates, "Aircraft_Type": raw, "num": num},
        "geometry": geometry,
    }


def test_zero_length_parts_are_dropped_and_an_empty_track_refused(tmp_path: Path) -> None:
    point = [121.0, 22.0]
    features = [
        _feature(
            "111-08-05",
            {
                "type": "MultiLineString",
                "coordinates": [[point, point], [[120.0, 22.0], [121.0, 23.0]]],
            },
        ),
        _feature("111-08-05", {"type": "LineString", "coordinates": [point, point, point]}),
    ]
    path = tmp_path / "tracks.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    observations, _, rejected = _split(read_mnd_tracks(path))
    assert len(observations) == 1
    assert observations[0].geometry == LineString(coordinates=((120.0, 22.0), (121.0, 23.0)))
    assert observations[0].remarks is not None and "1 zero-length part" in observations[0].remarks
    assert rejected == ["tracks.geojson#1: the track has no part of non-zero length"]


def test_an_unknown_type_keeps_its_label_and_no_guessed_type(tmp_path: Path) -> None:
    line = {"type": "LineString", "coordinates": [[120.0, 22.0], [121.0, 23.0]]}
    path = tmp_path / "tracks.geojson"
    path.write_text(
        json.dumps(
            {"type": "FeatureCollection", "features": [_feature("2023-09-18", line, raw="神秘機")]}
        )
    )
    observations, _, _ = _split(read_mnd_tracks(path))
    platform = observations[0].platform
    assert platform is not None
    assert (platform.label, platform.type, platform.platform_class) == ("神秘機", None, None)


def test_repair_mojibake() -> None:
    assert repair_mojibake("æ®²-16æ©\x9f") == "殲-16機"
    assert repair_mojibake("殲-16機") == "殲-16機"  # already proper text
    assert repair_mojibake("æ®²-16æ©") is None  # a byte was lost: not repairable


@given(st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2099, 12, 31)))
def test_roc_and_iso_dates_name_the_same_day(day: dt.date) -> None:
    assert parse_map_date(f"{day.year - 1911}-{day.month:02d}-{day.day:02d}") == day
    assert parse_map_date(day.isoformat()) == day


def test_implausible_or_malformed_dates_are_refused() -> None:
    with pytest.raises(ValueError, match="implausible year"):
        parse_map_date("88-05-19")  # ROC 88 is 1999, before any map
    with pytest.raises(ValueError, match="neither"):
        parse_map_date("112/05/19")
