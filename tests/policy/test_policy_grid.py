"""The release grid: snapped positions are grid nodes, close to where they were, and stable."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kuroshio.geo.grid import KM_PER_DEGREE, latitude_step, longitude_step, on_grid, snap
from kuroshio.model import Point

grid_sizes = st.sampled_from([0.1, 0.5, 1.0, 2.5, 10.0, 27.5, 100.0, 500.0])
lons = st.floats(min_value=-180, max_value=180, allow_nan=False)
lats = st.floats(min_value=-90, max_value=90, allow_nan=False)


def ground_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    (lon1, lat1), (lon2, lat2) = a, b
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(min(1.0, h)))


@given(lons, lats, grid_sizes)
def test_a_snapped_position_is_a_grid_node_even_as_stored(
    lon: float, lat: float, km: float
) -> None:
    snapped = snap(lon, lat, km)
    assert -180 <= snapped[0] <= 180 and -90 <= snapped[1] <= 90
    stored = Point(coordinates=snapped).coordinates  # rounded to 7 decimals by the model
    assert on_grid(*stored, km)
    assert snap(*stored, km) == pytest.approx(snapped, abs=1e-9)


@given(lons, st.floats(min_value=-75, max_value=75), st.sampled_from([0.1, 1.0, 10.0, 27.5, 100.0]))
def test_snapping_moves_a_position_by_less_than_one_cell(lon: float, lat: float, km: float) -> None:
    moved = ground_km((lon, lat), snap(lon, lat, km))
    # Half a cell's diagonal is 0.71 km per km of grid; the row's own latitude adds a little.
    assert moved <= 0.75 * km


def test_a_10_km_grid_near_taiwan_has_cells_about_10_km_wide() -> None:
    lon1, lat = snap(121.0, 23.5, 10.0)
    lon2, _ = snap(lon1 + 0.11, lat, 10.0)
    assert ground_km((lon1, lat), (lon2, lat)) == pytest.approx(10.0, rel=1e-3)
    assert latitude_step(10.0) * KM_PER_DEGREE == pytest.approx(10.0, rel=1e-3)


def test_exact_positions_are_not_on_a_coarse_grid() -> None:
    assert not on_grid(121.123456, 22.654321, 10.0)


def test_the_poles_and_the_antimeridian_are_on_every_grid() -> None:
    for km in (0.1, 1.0, 7.0, 10.0, 27.5, 100.0, 1000.0):
        assert on_grid(180.0, 0.0, km) and on_grid(-180.0, 0.0, km)
        assert abs(snap(179.999, 0.0, km)[0] - 179.999) <= longitude_step(km, 0.0) / 2 + 1e-9
        assert snap(10.0, 90.0, km)[1] == 90.0
        assert on_grid(*snap(-179.99, 89.99, km), km)


def test_grid_sizes_outside_the_allowed_range_are_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        snap(121.0, 23.0, 0.0)
