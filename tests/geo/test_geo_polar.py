"""A radar's polar measurement lands where the ellipsoid says it should."""

from __future__ import annotations

import math

import pytest
from pyproj import Geod

from kuroshio.geo.polar import ground_range, mean_radius_at, polar_position

WGS84 = Geod(ellps="WGS84")


def test_the_position_lies_at_the_azimuth_and_ground_range_from_the_site() -> None:
    site = (121.5, 25.0, 300.0)  # a radar on a hill in northern Taiwan
    lon, lat = polar_position(*site, 135.0, 180_000.0, 9_000.0)
    azimuth, _, distance = WGS84.inv(site[0], site[1], lon, lat)
    assert azimuth % 360 == pytest.approx(135.0, abs=1e-6)
    expected = ground_range(180_000.0, 300.0, 9_000.0, mean_radius_at(25.0))
    assert distance == pytest.approx(expected, abs=0.01)


def test_ground_range_closes_the_triangle_through_the_earths_centre() -> None:
    radius = mean_radius_at(25.0)
    slant, site_height, target_height = 250_000.0, 50.0, 12_000.0
    angle = ground_range(slant, site_height, target_height, radius) / radius
    a, b = radius + site_height, radius + target_height
    assert math.sqrt(a * a + b * b - 2 * a * b * math.cos(angle)) == pytest.approx(slant, abs=0.01)
    # a high target is nearer along the ground than along the beam
    assert ground_range(slant, site_height, target_height, radius) < slant


def test_without_a_height_the_target_is_taken_at_the_sites_height() -> None:
    assert polar_position(121.5, 25.0, 0.0, 90.0, 50_000.0, None) == polar_position(
        121.5, 25.0, 0.0, 90.0, 50_000.0, 0.0
    )
