"""Shapes and distances on the WGS84 ellipsoid, as fusion and the ledger's novelty measure them."""

from __future__ import annotations

import pytest
import shapely

from kuroshio.geo.shapes import destination, distance_km, geodesic_km, shape_of
from kuroshio.model import LineString, Point, Polygon


def test_a_degree_of_latitude_is_measured_on_the_ellipsoid_not_a_sphere() -> None:
    # The meridian arc from 23 to 24 N is 110.75 km on WGS84; a sphere of the mean radius
    # would say 111.19 km.
    near_equator = geodesic_km(121.0, 23.0, 121.0, 24.0)
    near_pole = geodesic_km(121.0, 80.0, 121.0, 81.0)
    assert near_equator == pytest.approx(110.75, abs=0.01)
    assert near_pole > near_equator  # the ellipsoid is flatter towards the poles


def test_distance_between_a_track_and_a_point_is_to_the_nearest_position() -> None:
    track = shape_of(LineString(coordinates=((121.5, 23.0), (121.5, 24.0))))
    point = shape_of(Point(coordinates=(121.0, 23.5)))
    # Half a degree of longitude at 23.5 N, along the ellipsoid.
    assert distance_km(track, point) == pytest.approx(
        geodesic_km(121.0, 23.5, 121.5, 23.5), abs=0.05
    )
    assert distance_km(point, track) == distance_km(track, point)


def test_touching_or_overlapping_shapes_are_zero_apart() -> None:
    square = shape_of(
        Polygon(
            coordinates=(
                ((121.0, 23.0), (122.0, 23.0), (122.0, 24.0), (121.0, 24.0), (121.0, 23.0)),
            )
        )
    )
    assert distance_km(square, shapely.Point(121.5, 23.5)) == 0.0
    assert distance_km(square, shapely.LineString([(122.0, 23.5), (123.0, 23.5)])) == 0.0


def test_destination_and_distance_agree() -> None:
    lon, lat = destination(123.0, 24.5, 45.0, 100.0)
    assert geodesic_km(123.0, 24.5, lon, lat) == pytest.approx(100.0, abs=1e-6)
    assert lon > 123.0 and lat > 24.5


def test_a_self_crossing_area_is_repaired_not_refused() -> None:
    bow_tie = Polygon(
        coordinates=(((121.0, 23.0), (122.0, 24.0), (122.0, 23.0), (121.0, 24.0), (121.0, 23.0)),)
    )
    shape = shape_of(bow_tie)
    assert shape.is_valid and shape.area > 0
