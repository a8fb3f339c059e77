"""China MSA navigation warnings read from the real file into area observations."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest
from pyproj import Geod

from kuroshio.errors import ImportRecordError
from kuroshio.ingest.nav_warnings import parse_periods, read_nav_warnings
from kuroshio.ingest.records import Record
from kuroshio.ingest.source_files import CHINA, SkippedRecord
from kuroshio.model import LineString, Observation, Polygon

WARNINGS = "pla-dashboard/msa_military_exercise_warnings.csv"


@pytest.fixture(scope="module")
def records(shared_data: Path) -> list[Record]:
    return read_nav_warnings(shared_data / WARNINGS, origin="TWN")


def _by_title(records: list[Record], title: str) -> list[Observation]:
    return [
        item
        for _, item in records
        if isinstance(item, Observation) and item.remarks and f" {title} " in item.remarks
    ]


def test_every_warning_is_accounted_for(records: list[Record]) -> None:
    observations = [item for _, item in records if isinstance(item, Observation)]
    skipped = [item for _, item in records if isinstance(item, SkippedRecord)]
    refused = [
        item
        for _, item in records
        if isinstance(item, ImportRecordError) and not isinstance(item, SkippedRecord)
    ]
    assert len({location for location, _ in records}) == 187
    assert len(observations) == 139
    assert all(o.kind == "area" and o.origin == "TWN" for o in observations)
    assert len({o.id for o in observations}) == 139
    assert len(skipped) == 39
    assert sum("another edition" in s.reason for s in skipped) == 37
    reasons = Counter(r.reason.split(":")[0] for r in refused)
    assert reasons == {"no validity window": 21, "no coordinates, and none in the text": 1}


def test_chinese_edition_in_beijing_time_english_edition_skipped(records: list[Record]) -> None:
    (area,) = _by_title(records, "军事训练—桂航警51/26")
    assert area.observed_at == dt.datetime(2026, 3, 16, 10, tzinfo=CHINA)
    assert area.until == dt.datetime(2026, 3, 17, 18, tzinfo=CHINA)
    assert isinstance(area.geometry, Polygon)
    assert area.geometry.coordinates[0][0] == area.geometry.coordinates[0][-1]
    assert len(area.geometry.coordinates[0]) == 5
    english = [
        item
        for location, item in records
        if location.endswith(":3") and isinstance(item, SkippedRecord)
    ]
    assert english and "GX20/26" in english[0].reason and "桂航警51/26" in english[0].reason


def test_a_single_position_with_a_radius_is_a_circle(records: list[Record]) -> None:
    (area,) = _by_title(records, "火箭发射—琼航警116/26")  # 5.4 海里 around 19-36.00N 110-55.80E
    assert isinstance(area.geometry, Polygon)
    ring = area.geometry.coordinates[0]
    assert len(ring) == 37
    _, _, distances = Geod(ellps="WGS84").inv(
        [110.93] * (len(ring) - 1), [19.6] * (len(ring) - 1), *zip(*ring[:-1], strict=True)
    )
    assert all(abs(d - 5.4 * 1852) < 1.0 for d in distances)


def test_a_warning_of_two_areas_gives_two_polygons(records: list[Record]) -> None:
    areas = _by_title(records, "军事活动—云航警125/26")
    assert len(areas) == 2
    assert all(isinstance(a.geometry, Polygon) for a in areas)
    assert [len(a.geometry.coordinates[0]) for a in areas if isinstance(a.geometry, Polygon)] == [
        5,
        5,
    ]
    assert areas[0].id.endswith("-1") and areas[1].id.endswith("-2")


def test_positions_along_a_line_give_a_line(records: list[Record]) -> None:
    (route,) = _by_title(records, "军事活动-渤海海峡—鲁航警602/26")
    assert isinstance(route.geometry, LineString)
    assert len(route.geometry.coordinates) == 20


def test_corners_listed_across_the_area_are_put_in_order(records: list[Record]) -> None:
    (area,) = _by_title(records, "军事任务—辽航警345/26")
    assert area.remarks is not None and "taken in order around it" in area.remarks


def test_origin_is_the_importing_party(shared_data: Path) -> None:
    records = read_nav_warnings(shared_data / WARNINGS, origin="JPN")
    first = next(item for _, item in records if isinstance(item, Observation))
    assert first.origin == "JPN" and first.id.startswith("JPN:msa:")
    assert first.marking.tlp == "CLEAR"
    assert first.provenance.importer == "nav-warnings"


def test_periods() -> None:
    published = dt.date(2026, 12, 28)
    windows = parse_periods("12/31 2200 至 01/02 0600；01/03 0800-1200", published, CHINA)
    assert [(w.start, w.end) for w in windows] == [
        (dt.datetime(2026, 12, 31, 22, tzinfo=CHINA), dt.datetime(2027, 1, 2, 6, tzinfo=CHINA)),
        (dt.datetime(2027, 1, 3, 8, tzinfo=CHINA), dt.datetime(2027, 1, 3, 12, tzinfo=CHINA)),
    ]
    (overnight,) = parse_periods("03/05 2000-0300", dt.date(2026, 3, 1), dt.UTC)
    assert overnight.end - overnight.start == dt.timedelta(hours=7)
    with pytest.raises(ValueError, match="not in a known form"):
        parse_periods("sometime soon", published, CHINA)
