"""The reference geography as package data: the published coordinates, names, sides, lookups."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
import shapely
from pyproj import Geod

from kuroshio.errors import GeographyError, UnknownZoneError
from kuroshio.geo import Geography, load, parse

GEOD = Geod(ellps="WGS84")

EXPECTED_IDS = {
    "twn-adiz",
    "twn-adiz-sw",
    "jpn-adiz-sw",
    "chn-ecs-adiz",
    "median-line",
    "gate-miyako",
    "gate-yonaguni",
    "gate-bashi",
    "gate-balintang",
    "gate-osumi",
    "gate-tokara",
    "gate-tokara-islands",
    "gate-tsushima-e",
    "gate-tsushima-w",
    "gate-yonaguni-iriomote",
    "gate-miyako-ishigaki",
    "gate-taiwan-strait-n",
    "gate-taiwan-strait-s",
}


@pytest.fixture(scope="module")
def geography() -> Geography:
    return load()


def test_every_zone_and_gate_is_there_named_in_three_languages(geography: Geography) -> None:
    assert {zone.id for zone in geography} == EXPECTED_IDS
    for zone in geography:
        assert zone.name and zone.name_zh and zone.name_ja
        assert zone.source and zone.confidence
        assert shapely.is_prepared(zone.geometry)
    assert geography["gate-miyako"].name == "Miyako Strait"
    assert geography["gate-miyako"].name_ja == "宮古海峡"
    assert geography["median-line"].name_zh == "臺灣海峽中線"


def test_load_is_parsed_once(geography: Geography) -> None:
    assert load() is geography


def test_taiwan_adiz_has_the_published_vertices_and_area(geography: Geography) -> None:
    adiz = geography["twn-adiz"].geometry
    corners = set(map(tuple, shapely.get_coordinates(adiz).tolist()))
    # 29N 117°30'E, 29N 123E, 22°30'N 123E, 21N 121°30'E, 21N 117°30'E
    assert corners == {(117.5, 29.0), (123.0, 29.0), (123.0, 22.5), (121.5, 21.0), (117.5, 21.0)}
    area_km2 = abs(GEOD.geometry_area_perimeter(adiz)[0]) / 1e6
    # The reference computes 478,700 km² (MND 2013: 487,000 km² "theoretical").
    assert area_km2 == pytest.approx(478_700, rel=0.005)


def test_median_line_runs_from_27n_122e_to_23n_118e(geography: Geography) -> None:
    line = geography["median-line"]
    assert shapely.get_coordinates(line.geometry).tolist() == [[122.0, 27.0], [118.0, 23.0]]
    length_km = GEOD.geometry_length(line.geometry) / 1000
    assert length_km == pytest.approx(599, abs=2)


@pytest.mark.parametrize(
    ("gate_id", "length_km"),
    [
        ("gate-miyako", 267.0),
        ("gate-yonaguni", 107.6),
        ("gate-bashi", 141.2),
        ("gate-osumi", 60.2),
        ("gate-tokara", 57.7),
        ("gate-tsushima-w", 52.2),
        ("gate-taiwan-strait-n", 198.3),
        ("gate-taiwan-strait-s", 404.9),
    ],
)
def test_gate_lengths_match_the_published_figures(
    geography: Geography, gate_id: str, length_km: float
) -> None:
    assert GEOD.geometry_length(geography[gate_id].geometry) / 1000 == pytest.approx(
        length_km, abs=0.3
    )


def _side_name(geography: Geography, gate_id: str, lon: float, lat: float) -> str:
    """Which named side of a gate a point is on, judged against the gate's nearest edge."""
    zone = geography[gate_id]
    xy = shapely.get_coordinates(zone.geometry).tolist()
    edges = list(itertools.pairwise(xy))
    (ax, ay), (bx, by) = min(
        edges,
        key=lambda e: math.dist(((e[0][0] + e[1][0]) / 2, (e[0][1] + e[1][1]) / 2), (lon, lat)),
    )
    left = (bx - ax) * (lat - ay) - (by - ay) * (lon - ax) > 0
    side = zone.left_side if left else zone.right_side
    assert side is not None
    return side.name


@pytest.mark.parametrize(
    ("gate_id", "point", "expected"),
    [
        ("gate-miyako", (127.0, 24.5), "Pacific"),
        ("gate-miyako", (126.0, 26.0), "East China Sea"),
        ("gate-yonaguni", (122.4, 24.0), "Pacific"),
        ("gate-yonaguni", (122.4, 25.0), "East China Sea"),
        ("gate-bashi", (122.0, 22.0), "Pacific"),
        ("gate-bashi", (120.8, 21.2), "South China Sea"),
        ("gate-osumi", (131.0, 30.7), "Pacific"),
        ("gate-tsushima-e", (130.0, 34.2), "Sea of Japan"),
        ("gate-tsushima-w", (129.0, 34.7), "East China Sea"),
        ("gate-taiwan-strait-n", (120.5, 25.2), "Taiwan Strait"),
        ("gate-taiwan-strait-n", (121.0, 26.5), "East China Sea"),
        ("gate-taiwan-strait-s", (119.0, 23.5), "Taiwan Strait"),
        ("gate-taiwan-strait-s", (118.5, 21.5), "South China Sea"),
        ("median-line", (120.5, 24.0), "east"),
        ("median-line", (119.0, 25.0), "west"),
    ],
)
def test_gate_sides_are_named_for_the_water_on_each_side(
    geography: Geography, gate_id: str, point: tuple[float, float], expected: str
) -> None:
    assert _side_name(geography, gate_id, *point) == expected


def test_lookups_by_id_and_kind(geography: Geography) -> None:
    assert "gate-bashi" in geography
    assert "gate-nowhere" not in geography
    with pytest.raises(UnknownZoneError, match="gate-nowhere") as raised:
        geography.zone("gate-nowhere")
    assert raised.value.zone_id == "gate-nowhere"
    assert {z.id for z in geography.of_kind("median_line")} == {"median-line"}
    assert {z.id for z in geography.of_kind("adiz_sector")} == {"twn-adiz-sw"}
    assert {z.id for z in geography.areas} == {
        "twn-adiz",
        "twn-adiz-sw",
        "jpn-adiz-sw",
        "chn-ecs-adiz",
    }
    assert len(geography.gates) == 13
    assert all(zone.left_side and zone.right_side for zone in geography.lines)
    assert geography.zones[geography.index("gate-osumi")].id == "gate-osumi"


def test_strtree_candidates_are_the_zones_near_a_place(geography: Geography) -> None:
    near_miyako = {z.id for z in geography.candidates(shapely.box(125.5, 24.8, 126.5, 25.5))}
    assert {"gate-miyako", "jpn-adiz-sw", "chn-ecs-adiz"} <= near_miyako
    assert "gate-tsushima-e" not in near_miyako
    assert "twn-adiz" not in near_miyako
    assert geography.candidates(shapely.points(150.0, 0.0)) == ()


def test_the_yonaguni_bulge_overlaps_the_taiwan_adiz(geography: Geography) -> None:
    # Japan moved its ADIZ 14 nm west of Yonaguni in 2010; the ROC does not accept it.
    west_of_yonaguni = (122.8, 24.45)
    assert shapely.contains_xy(geography["jpn-adiz-sw"].geometry, *west_of_yonaguni)
    assert shapely.contains_xy(geography["twn-adiz"].geometry, *west_of_yonaguni)


def test_the_package_file_is_our_curated_subset() -> None:
    path = Path(__file__).resolve().parents[2] / "src" / "kuroshio" / "geo" / "zones.geojson"
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    kinds = {f["properties"]["kind"] for f in features}
    assert kinds == {"adiz", "adiz_sector", "median_line", "gate"}
    assert len({f["properties"]["id"] for f in features}) == len(features)


def _collection(**overrides: object) -> str:
    properties: dict[str, object] = {
        "id": "test-zone",
        "name": "Test zone",
        "name_zh": "測試",
        "name_ja": "テスト",
        "kind": "adiz",
        "source": "a test",
        "confidence": "high",
        "entry_event": "adiz_entry",
    }
    properties.update(overrides)
    ring = [[120, 20], [121, 20], [121, 21], [120, 20]]
    geometry: dict[str, object] = {"type": "Polygon", "coordinates": [ring]}
    if properties["kind"] in ("gate", "median_line"):
        geometry = {"type": "LineString", "coordinates": [[120, 20], [121, 21]]}
    feature = {"type": "Feature", "properties": properties, "geometry": geometry}
    return json.dumps({"type": "FeatureCollection", "features": [feature]})


def test_a_valid_minimal_file_parses() -> None:
    geography = parse(_collection(), location="test.geojson")
    assert [zone.id for zone in geography] == ["test-zone"]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"kind": "fir"}, "kind"),
        ({"id": "Not A Slug"}, "id"),
        ({"entry_event": None}, "entry_event"),
        ({"kind": "gate", "entry_event": None}, "left_side and right_side"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_file_is_refused_naming_the_place_and_reason(
    overrides: dict[str, object], reason: str
) -> None:
    with pytest.raises(GeographyError, match=reason) as raised:
        parse(_collection(**overrides), location="test.geojson")
    assert raised.value.location.startswith("test.geojson")


def test_malformed_json_is_a_geography_error() -> None:
    with pytest.raises(GeographyError, match="not JSON"):
        parse(b"{", location="broken.geojson")
