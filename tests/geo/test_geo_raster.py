"""The area rasters never contradict the exact test: a cell called inside or outside is so for
every position in it, on the boundary and on the grid lines too."""

from __future__ import annotations

import numpy as np
import shapely

from kuroshio.geo import load
from kuroshio.geo.raster import INSIDE, NEAR, OUTSIDE


def _positions(polygon: shapely.Polygon, rng: np.random.Generator) -> np.ndarray:
    min_x, min_y, max_x, max_y = polygon.bounds
    spread = rng.uniform((min_x - 1, min_y - 1), (max_x + 1, max_y + 1), size=(20_000, 2))
    # Vertices, points along each edge and points on cell corners: the hard cases.
    boundary = shapely.get_coordinates(shapely.segmentize(polygon.exterior, 0.01))
    corners = np.floor(spread[:2_000] * 8) / 8
    return np.concatenate([spread, boundary, corners])


def test_every_area_raster_agrees_with_shapely() -> None:
    geography = load()
    rng = np.random.default_rng(20220805)
    decided = 0
    for zone, raster in zip(geography.zones, geography.area_rasters, strict=True):
        if raster is None:
            assert not zone.is_area
            continue
        positions = _positions(zone.geometry, rng)
        states = np.array([raster.state(float(x), float(y)) for x, y in positions])
        inside = states == INSIDE
        outside = states == OUTSIDE
        assert shapely.contains_xy(zone.geometry, *positions[inside].T).all(), zone.name
        assert not shapely.intersects_xy(zone.geometry, *positions[outside].T).any(), zone.name
        # On the boundary itself only the exact test may answer.
        on_edge = shapely.intersects_xy(zone.geometry.boundary, *positions.T)
        assert (states[on_edge] == NEAR).all(), zone.name
        decided += int(inside.sum() + outside.sum())
    # The raster must spare most exact tests, or it is not worth having.
    assert decided > 0.8 * 22_000
