"""The release grid: positions snapped to cells of about N km by N km, in lat/lon degrees.

Rows are ``90 / ceil(90 / (N / 111.195))`` degrees of latitude apart (N km, shortened by a hair
so the poles are rows); within a row, columns are ``180 / ceil(180 / (N / (111.195 · cos(row
latitude))))`` degrees of longitude apart (N km at the row's latitude, shortened so ±180° is a
column). It is a pure function of (position, N); it does not decide when to coarsen.
:func:`coarsen_geometry` snaps every vertex of a geometry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from kuroshio.model import Geometry, LineString, MultiLineString, Point, Polygon, Position

EARTH_RADIUS_KM: Final = 6371.0088
"""Mean Earth radius (IUGG), the sphere the grid is laid on."""
KM_PER_DEGREE: Final = EARTH_RADIUS_KM * math.pi / 180.0
"""Length of one degree of latitude on that sphere, about 111.195 km."""
ON_GRID_TOLERANCE_DEG: Final = 1e-6
"""Positions are stored to 7 decimal places, so a snapped position is on the grid to within this."""
MIN_GRID_KM: Final = 0.1
MAX_GRID_KM: Final = 1000.0


def _even_step(raw_step: float, span: float) -> float:
    # The largest step no longer than raw_step that divides span exactly.
    return span / math.ceil(span / raw_step - 1e-9)


def latitude_step(grid_km: float) -> float:
    """Degrees of latitude between two rows of the grid."""
    _check_grid(grid_km)
    return _even_step(grid_km / KM_PER_DEGREE, 90.0)


def longitude_step(grid_km: float, row_latitude: float) -> float:
    """Degrees of longitude between two columns in the row at ``row_latitude``.

    Towards the poles the step grows until it reaches 180°, where a row has two nodes.
    """
    cosine = math.cos(math.radians(row_latitude))
    raw = grid_km / (KM_PER_DEGREE * cosine) if cosine > 1e-12 else 180.0
    return _even_step(min(raw, 180.0), 180.0)


def snap(lon: float, lat: float, grid_km: float) -> tuple[float, float]:
    """The grid node nearest to (lon, lat): a position no finer than ``grid_km``."""
    dlat = latitude_step(grid_km)
    row = round(lat / dlat) * dlat
    dlon = longitude_step(grid_km, row)
    column = round(lon / dlon) * dlon
    # Both spans are whole numbers of steps, so ±90 and ±180 are nodes and nothing overshoots.
    return max(-180.0, min(180.0, column)) + 0.0, max(-90.0, min(90.0, row)) + 0.0


def on_grid(lon: float, lat: float, grid_km: float) -> bool:
    """True when (lon, lat) is a node of the ``grid_km`` grid (to the stored precision)."""
    dlat = latitude_step(grid_km)
    row = round(lat / dlat) * dlat
    if abs(lat - row) > ON_GRID_TOLERANCE_DEG:
        return False
    dlon = longitude_step(grid_km, row)
    column = round(lon / dlon) * dlon
    return abs(lon - column) <= ON_GRID_TOLERANCE_DEG


def _check_grid(grid_km: float) -> None:
    if not MIN_GRID_KM <= grid_km <= MAX_GRID_KM:
        raise ValueError(f"grid size {grid_km} km is outside {MIN_GRID_KM}–{MAX_GRID_KM} km")


def _snapped(positions: Sequence[Position], grid_km: float) -> list[Position]:
    snapped: list[Position] = []
    for lon, lat in positions:
        point = snap(lon, lat, grid_km)
        # Repeated cells would tell how long the track stayed in each one; keep one of each run.
        if not snapped or snapped[-1] != point:
            snapped.append(point)
    return snapped


def _line(positions: Sequence[Position], grid_km: float) -> tuple[Position, ...]:
    snapped = _snapped(positions, grid_km)
    if len(snapped) == 1:
        snapped.append(snapped[0])
    return tuple(snapped)


def _ring(positions: Sequence[Position], grid_km: float) -> tuple[Position, ...]:
    snapped = _snapped(positions, grid_km)
    if snapped[0] != snapped[-1]:
        snapped.append(snapped[0])
    while len(snapped) < 4:
        snapped.insert(-1, snapped[-1])
    return tuple(snapped)


def coarsen_geometry(geometry: Geometry, grid_km: float) -> Geometry:
    """Every vertex snapped to the ``grid_km`` grid."""
    if isinstance(geometry, Point):
        return Point(coordinates=snap(*geometry.coordinates, grid_km))
    if isinstance(geometry, LineString):
        return LineString(coordinates=_line(geometry.coordinates, grid_km))
    if isinstance(geometry, MultiLineString):
        parts = tuple(_line(part, grid_km) for part in geometry.coordinates)
        return MultiLineString(coordinates=parts)
    return Polygon(coordinates=tuple(_ring(ring, grid_km) for ring in geometry.coordinates))
