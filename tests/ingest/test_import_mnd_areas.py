"""Taiwan MND activity maps since 2024-01-16 (areas, balloons, closest approaches), facts checked.

The facts asserted here were read from the descriptions and properties of the file itself.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from cli_run import run
from kuroshio.errors import ImportRecordError
from kuroshio.geo import derive_events
from kuroshio.ingest.mnd_areas import balloon_time, parse_description, parse_feet, parse_group
from kuroshio.ingest.mnd_tracks import read_mnd_tracks
from kuroshio.ingest.records import Record
from kuroshio.ingest.source_files import TAIWAN
from kuroshio.model import Interval, LineString, Observation, Polygon

AREAS = "twreporter/Taiwan/20240116-20240331_v2.geojson"
DAILY = "pla-dashboard/daily_counts_to_2024.csv"


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=TAIWAN)


@pytest.fixture(scope="module")
def records(shared_data: Path) -> list[Record]:
    return read_mnd_tracks(shared_data / AREAS)


@pytest.fixture(scope="module")
def observations(records: list[Record]) -> dict[str, Observation]:
    return {item.id: item for _, item in records if isinstance(item, Observation)}


def _day(observations: dict[str, Observation], day: str) -> list[Observation]:
    return [o for o in observations.values() if o.id.split(":")[2] == day]


def test_every_feature_is_read_and_none_refused(
    shared_data: Path, records: list[Record], observations: dict[str, Observation]
) -> None:
    features = json.loads((shared_data / AREAS).read_text("utf-8"))["features"]
    categories = [f["properties"]["category"] for f in features]
    assert [item for _, item in records if isinstance(item, ImportRecordError)] == []
    balloons = [o for o in observations.values() if o.kind == "air"]
    areas = [o for o in observations.values() if o.kind == "area"]
    # three parts (two ellipses and an arrow) to a balloon
    assert len(balloons) == categories.count("balloon") // 3 == 61
    groups = sum(
        len(f["properties"]["description"].split("；"))
        for f in features
        if f["properties"]["category"] in ("polygon_#each", "polygon_#multi")
    )
    # one group of 2024-02-20 is a bracketed note about the group before it
    assert len(areas) == groups - 1 == 159
    approaches = sum(len(o.approaches) for o in observations.values() if o.approaches)
    assert approaches == categories.count("distance") == 163


def test_an_area_with_its_window_count_classes_and_crossing(
    observations: dict[str, Observation],
) -> None:
    # 2024-02-10 #0: 0719-1500時殲擊機主戰機及無人機計5架次（其中2架次過中線）
    area = observations["TWN:mnd-area:2024-02-10:133"]
    assert area.kind == "area" and isinstance(area.geometry, Polygon)
    # the map of 2024-02-10 reports the 9th
    assert (area.observed_at, area.until) == (_at("2024-02-09T07:19"), _at("2024-02-09T15:00"))
    assert area.platform is not None
    assert (area.platform.count, area.platform.nationality) == (5, "CHN")
    assert area.platform.classes == ("fighter", "uav", "main_combat")
    assert area.crossed_median_line == 2
    assert area.provenance.importer == "mnd-areas"
    crossing = [e for e in derive_events(area) if e.kind == "median_line_crossing"]
    assert len(crossing) == 1
    assert crossing[0].platform is not None and crossing[0].platform.count == 2
    assert crossing[0].estimated is True
    assert area.until is not None
    assert crossing[0].interval == Interval(start=area.observed_at, end=area.until)


def test_a_window_past_midnight_ends_the_next_day(observations: dict[str, Observation]) -> None:
    # 2024-03-21 #multi group 2: 1614-0005時無人機計1架
    drone = observations["TWN:mnd-area:2024-03-21:364-2"]
    assert (drone.observed_at, drone.until) == (_at("2024-03-20T16:14"), _at("2024-03-21T00:05"))
    assert drone.platform is not None and drone.platform.platform_class == "uav"


def test_a_group_without_a_window_spans_the_maps_day(
    observations: dict[str, Observation],
) -> None:
    # 2024-01-16 #multi: 偵獲晉江等機場殲10等主、輔戰機計13架次；偵獲無人機及運8反潛機各1架次
    first, second = (observations[f"TWN:mnd-area:2024-01-16:001-{n}"] for n in (1, 2))
    assert (first.observed_at, first.until) == (_at("2024-01-15T00:00"), _at("2024-01-16T06:00"))
    assert first.platform is not None and first.platform.count == 13
    assert first.platform.classes == ("fighter", "main_combat", "support")
    # 各1架次: one drone and one Y-8 ASW aircraft
    assert second.platform is not None and second.platform.count == 2
    assert second.platform.classes == ("uav", "asw")


def test_multi_groups_take_the_separate_outlines_and_are_counted_once(
    shared_data: Path, observations: dict[str, Observation]
) -> None:
    features = json.loads((shared_data / AREAS).read_text("utf-8"))["features"]
    # 2024-02-26: #multi $227 (9 + 1) with #separate $228 and $229, #each $230 (1)
    day = _day(observations, "2024-02-26")
    areas = [o for o in day if o.kind == "area"]
    assert sorted(o.platform.count for o in areas if o.platform) == [1, 1, 9]
    first = observations["TWN:mnd-area:2024-02-26:227-1"]
    separate = next(f for f in features if f["properties"]["id"] == "$228")
    assert isinstance(first.geometry, Polygon)
    drawn = [tuple(round(v, 7) for v in p) for p in separate["geometry"]["coordinates"][0]]
    assert list(first.geometry.coordinates[0]) == [*dict.fromkeys(drawn), drawn[0]]
    assert first.provenance.record is not None and "outline" in first.provenance.record


def test_a_bracketed_note_adds_its_crossings_to_the_group_before(
    observations: dict[str, Observation],
) -> None:
    # 2024-02-20: …計22架次（其中4架逾越中線）；（7架逾越中線進入西南空域）
    areas = [o for o in _day(observations, "2024-02-20") if o.kind == "area"]
    assert sum(o.platform.count for o in areas if o.platform) == 24
    group = observations["TWN:mnd-area:2024-02-20:205"]
    assert group.platform is not None and group.platform.count == 22
    assert group.crossed_median_line == 11


def test_a_balloon_is_a_track_from_ellipse_to_ellipse(
    shared_data: Path, observations: dict[str, Observation]
) -> None:
    balloon = observations["TWN:mnd-balloon:2024-02-10:1"]  # 2/9 7:09 to 2/9 7:42, 3萬0,000呎
    assert balloon.kind == "air" and isinstance(balloon.geometry, LineString)
    assert (balloon.observed_at, balloon.until) == (
        _at("2024-02-09T07:09"),
        _at("2024-02-09T07:42"),
    )
    assert balloon.kinematics is not None and balloon.kinematics.altitude_m == 9144.0
    assert balloon.platform is not None
    assert (balloon.platform.type, balloon.platform.platform_class) == ("Balloon", "balloon")
    features = json.loads((shared_data / AREAS).read_text("utf-8"))["features"]
    parts = {f["properties"]["category_figma_2"]: f for f in features[1:4]}
    start = shapely.Polygon(parts["ellipse_#start"]["geometry"]["coordinates"][0]).centroid
    end = shapely.Polygon(parts["ellipse_#end"]["geometry"]["coordinates"][0]).centroid
    first, last = balloon.geometry.coordinates[0], balloon.geometry.coordinates[-1]
    assert first == pytest.approx((start.x, start.y)) and last == pytest.approx((end.x, end.y))


def test_closest_approaches_are_kept_on_what_they_point_at(
    observations: dict[str, Observation],
) -> None:
    # 2024-02-10: 約43浬 from 基隆 to a flight (the day's one area), 約68浬 from 基隆 to a balloon
    area = observations["TWN:mnd-area:2024-02-10:133"]
    assert area.approaches
    assert {(a.place, a.distance_nmi) for a in area.approaches} == {
        ("基隆", 43.0),
        ("鵝鑾鼻", 92.0),
    }
    balloons = [o for o in _day(observations, "2024-02-10") if o.kind == "air"]
    kept = [(a.place, a.distance_nmi) for o in balloons for a in o.approaches or ()]
    assert sorted(kept) == sorted(
        [("基隆", 68.0), ("基隆", 71.0), ("基隆", 77.0), ("基隆", 92.0), ("基隆", 89.0),
         ("台中", 55.0), ("台中", 65.0), ("屏東", 87.0)]
    )  # fmt: skip
    for approach in area.approaches:
        assert approach.line is not None and len(approach.line.coordinates) == 2


# --- the description, by rule ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "window", "count", "crossed", "classes"),
    [
        ("0719-1500時殲擊機主戰機及無人機計5架次（其中2架次過中線）", (439, 900), 5, 2,
         ("fighter", "main_combat", "uav")),
        ("0931-1714時殲擊機等主、輔戰機計5架次（其中1架逾越中線）", (571, 1034), 5, 1,
         ("fighter", "main_combat", "support")),
        ("1021-1708殲擊機等主戰機計4架次", (621, 1028), 4, None, ("fighter", "main_combat")),
        ("0913-1313時輔戰機計1架1次", (553, 793), 1, None, ("support",)),
        ("輔戰機計1架次", None, 1, None, ("support",)),
        ("1641-1821時直升機1架", (1001, 1101), 1, None, ("helicopter",)),
        ("偵獲無人機及輔戰機各1架次", None, 2, None, ("uav", "support")),
        ("0929-0600時輔戰機及無人機計3架次", (569, 360), 3, None, ("support", "uav")),
        ("07:19-15:00殲擊機計2架次", (439, 900), 2, None, ("fighter",)),
        ("0719時至1500時主戰機計2架次（其中1架次越過中線）", (439, 900), 2, 1, ("main_combat",)),
        ("殲擊機計2架次（0719-1500時）", (439, 900), 2, None, ("fighter",)),
    ],
)  # fmt: skip
def test_groups_as_mnd_writes_them(
    text: str,
    window: tuple[int, int] | None,
    count: int,
    crossed: int | None,
    classes: tuple[str, ...],
) -> None:
    group = parse_group(text)
    assert (group.window, group.count, group.crossed) == (window, count, crossed)
    assert group.classes == classes
    assert not group.note


def test_a_description_of_two_groups_and_a_note() -> None:
    groups = parse_description(
        "0746-2101時主戰機計22架次（其中4架逾越中線）；（7架逾越中線進入西南空域）；輔戰機計1架次"
    )
    assert [(g.count, g.crossed) for g in groups] == [(22, 11), (1, None)]


@pytest.mark.parametrize(
    "text",
    ["殲擊機若干", "0719-1500時", "2599-1000時主戰機計1架", "主戰機計0架", "（其中2架過中線）"],
)
def test_unreadable_groups_are_refused_with_the_reason(text: str) -> None:
    with pytest.raises(ValueError, match=r"架|HHMM|aircraft|note"):
        parse_description(text)


@pytest.mark.parametrize(
    ("text", "feet"),
    [("3萬0,000呎", 30_000), ("2萬1000呎", 21_000), ("3萬呎", 30_000), ("1萬5,000呎", 15_000),
     ("22,000呎", 22_000)],
)  # fmt: skip
def test_heights_as_the_maps_write_them(text: str, feet: int) -> None:
    assert parse_feet(text) == feet


@pytest.mark.parametrize(
    ("text", "at"),
    [("2/9 7:09", "2024-02-09T07:09"), ("2/17 1:41", "2024-02-17T01:41"),
     ("2月9日 7時09分", "2024-02-09T07:09")],
)  # fmt: skip
def test_balloon_times_take_the_year_of_the_map(text: str, at: str) -> None:
    assert balloon_time(text, dt.date(2024, 2, 17 if "17" in text else 10)) == _at(at)


def test_a_balloon_time_across_the_new_year() -> None:
    assert balloon_time("12/31 23:10", dt.date(2025, 1, 1)) == _at("2024-12-31T23:10")
    with pytest.raises(ValueError, match="not within the days of the map"):
        balloon_time("6/1 10:00", dt.date(2024, 2, 10))


@given(st.integers(min_value=1, max_value=14), st.integers(min_value=0, max_value=9_999))
def test_heights_in_wan_and_thousands(wan: int, rest: int) -> None:
    assert parse_feet(f"{wan}萬{rest:,}呎") == wan * 10_000 + rest


@given(st.text(max_size=60))
def test_the_description_parser_only_ever_raises_value_error(text: str) -> None:
    try:
        groups = parse_description(text)
    except ValueError:
        return
    assert all(g.count is not None and 1 <= g.count <= 500 for g in groups)


# --- bad input: clear reasons, the rest goes on ------------------------------------------------


def _feature(category: str, geometry: Any, **properties: Any) -> dict[str, Any]:
    base = {"date": "2024-05-02", "category": category, "category_figma_2": "", "id": "$1"}
    return {"type": "Feature", "properties": base | properties, "geometry": geometry}


SQUARE = {
    "type": "Polygon",
    "coordinates": [[[120, 22], [121, 22], [121, 23], [120, 23], [120, 22]]],
}
LINE = {"type": "LineString", "coordinates": [[121.7, 25.1], [121.0, 23.0]]}


def test_bad_features_are_refused_and_the_rest_stored(tmp_path: Path) -> None:
    features = [
        _feature("polygon_#each", SQUARE, description="0800-0900時主戰機計3架次", id="$1"),
        _feature("polygon_#multi", SQUARE, id="$2",
                 description="0800-1000時無人機計1架；1000-1100時輔戰機計1架"),
        # drawn separately, but no group of the #multi reads like it
        _feature("polygon_#separate", SQUARE, description="0500-0600時直升機計4架", id="$3"),
        _feature("polygon_#each", SQUARE, description="主戰機若干", id="$4"),
        _feature("balloon", SQUARE, category_figma_2="ellipse_#start", balloon_start="5/1 9:00",
                 balloon_end="5/1 8:00", balloon_height="2萬呎", id="$5"),
        _feature("balloon", LINE, category_figma_2="arrow", balloon_start="5/1 9:00",
                 balloon_end="5/1 8:00", balloon_height="2萬呎", id="$5"),
        _feature("distance", LINE, distance="約40浬", distance_ref_location="基隆",
                 distance_target="ship", id="$6"),
    ]  # fmt: skip
    path = tmp_path / "areas.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    records = read_mnd_tracks(path)
    refused = {
        item.location: item.reason for _, item in records if isinstance(item, ImportRecordError)
    }
    stored = [item for _, item in records if isinstance(item, Observation)]
    assert sorted(o.id for o in stored) == [
        "TWN:mnd-area:2024-05-02:001",
        "TWN:mnd-area:2024-05-02:002-1",
        "TWN:mnd-area:2024-05-02:002-2",
    ]
    assert "matches no group" in refused["areas.geojson#2"]
    assert "no number of aircraft" in refused["areas.geojson#3"]
    assert "before it starts" in refused["areas.geojson#4"]
    assert "neither flight nor balloon" in refused["areas.geojson#6"]


# --- through the user's door ---------------------------------------------------------------


def test_import_twice_and_the_daily_report(shared_data: Path, tmp_path: Path) -> None:
    node = tmp_path / "twn"
    run("init", "--party", "TWN", node, check=True)
    first = json.loads(
        run("import", "mnd-tracks", shared_data / AREAS, "-n", node, "--json", check=True).stdout
    )
    assert (first["inserted"], first["rejected"]) == (220, [])
    again = json.loads(
        run("import", "mnd-tracks", shared_data / AREAS, "-n", node, "--json", check=True).stdout
    )
    assert (again["inserted"], again["unchanged"], again["events_new"]) == (0, 220, 0)
    run("import", "daily-counts", shared_data / DAILY, "-n", node, check=True)
    report = json.loads(run("report", "daily", "-n", node, "--json", check=True).stdout)
    areas = report["by_format"]["areas"]
    # every map from 2024-01-16 to 2024-03-31 has a count of the day it reports
    assert areas["compared"] == 74
    assert areas["exact"] / areas["compared"] >= 0.9
    assert areas["within_one"] == areas["compared"]
    day = next(d for d in report["days"] if d["day"] == "2024-02-20")
    assert (day["count_day"], day["track_aircraft"], day["daily_count"]) == ("2024-02-19", 24, 24)
    shown = run("events", "-n", node, "--kind", "median_line_crossing", "--limit", "3", check=True)
    assert "~ 2024-" in shown.stdout  # estimated times are shown as the span they lie in
