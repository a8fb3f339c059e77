"""Shapes and distances on the WGS84 ellipsoid: the one home of both.

:func:`shape_of` turns a record's GeoJSON geometry into a shapely shape (lon/lat);
:func:`distance_km` measures between two shapes along the ellipsoid (``pyproj.Geod``);
:data:`GEOD` is the one ellipsoid every module measures with, and :class:`LocalPlane` a
kilometre plane around a point for filters that do their sums flat. It decides nothing about
what a distance means.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any, Final

import shapely
from pyproj import Geod, Transformer
from shapely.ops import nearest_points

from kuroshio.geo.grid import KM_PER_DEGREE
from kuroshio.model import Geometry, LineString, MultiLineString, Point, Position

GEOD: Final = Geod(ellps="WGS84")
"""The ellipsoid kuroshio measures on."""


def shape_of(geometry: Geometry) -> Any:
    """The observation geometry as a shapely geometry (lon/lat), made valid when needed."""
    if isinstance(geometry, Point):
        return shapely.Point(geometry.coordinates)
    if isinstance(geometry, LineString):
        return shapely.LineString(geometry.coordinates)
    if isinstance(geometry, MultiLineString):
        return shapely.MultiLineString([list(part) for part in geometry.coordinates])
    polygon = shapely.Polygon(geometry.coordinates[0], geometry.coordinates[1:])
    # A self-crossing ring is still an area someone drew; repair it rather than fail the test.
    return polygon if polygon.is_valid else shapely.make_valid(polygon)


def geodesic_km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Distance between two positions along the ellipsoid, in km."""
    _, _, metres = GEOD.inv(lon1, lat1, lon2, lat2)
    return float(metres) / 1000.0


def distance_km(first: Any, second: Any) -> float:
    """Shortest distance between two lon/lat shapes, in km along the ellipsoid.

    Two points are measured directly; otherwise the nearest pair of positions is found in a
    plane scaled to the shapes' mean latitude and measured on the ellipsoid (shapes that touch
    or overlap are 0 km apart).
    """
    if first.geom_type == "Point" and second.geom_type == "Point":
        return geodesic_km(first.x, first.y, second.x, second.y)
    if first.intersects(second):
        return 0.0
    mean_lat = (first.centroid.y + second.centroid.y) / 2.0
    scale = (KM_PER_DEGREE * math.cos(math.radians(mean_lat)), KM_PER_DEGREE)

    def flat(shape: Any) -> Any:
        return shapely.transform(shape, lambda xy: xy * scale)

    near_first, near_second = nearest_points(flat(first), flat(second))
    return geodesic_km(
        near_first.x / scale[0],
        near_first.y / scale[1],
        near_second.x / scale[0],
        near_second.y / scale[1],
    )


def km_from_place(geometry: Geometry, lon: float, lat: float) -> float:
    """Shortest distance from a geometry to the position ``lon``, ``lat``, in km."""
    return distance_km(shape_of(geometry), shapely.Point(lon, lat))


def destination(lon: float, lat: float, azimuth_deg: float, km: float) -> tuple[float, float]:
    """The position ``km`` from (lon, lat) along ``azimuth_deg`` (clockwise from north)."""
    lon2, lat2, _ = GEOD.fwd(lon, lat, azimuth_deg, km * 1000.0)
    return float(lon2), float(lat2)


@functools.lru_cache(maxsize=64)
def _plane_transformers(lon: int, lat: int) -> tuple[Transformer, Transformer]:
    # Making a transformer costs milliseconds; planes around the same point share theirs.
    crs = f"+proj=aeqd +lat_0={lat} +lon_0={lon} +units=km +ellps=WGS84"
    return (
        Transformer.from_crs("EPSG:4326", crs, always_xy=True),
        Transformer.from_crs(crs, "EPSG:4326", always_xy=True),
    )


class LocalPlane:
    """An azimuthal equidistant plane (km) around one point: where filters do their sums.

    The point is taken to the whole degree: within a few hundred km of it the plane's distances
    are true to a fraction of a per cent, and planes around nearby points are made once."""

    def __init__(self, lon: float, lat: float) -> None:
        self.point = (round(lon), round(lat))
        """The whole-degree point: planes made around the same one are the same plane."""
        self._forward, self._inverse = _plane_transformers(*self.point)

    def to_km(self, lon: float, lat: float) -> tuple[float, float]:
        x, y = self._forward.transform(lon, lat)
        return float(x), float(y)

    def to_lonlat(self, x: float, y: float) -> tuple[float, float]:
        lon, lat = self._inverse.transform(x, y)
        return float(lon), float(lat)

    def to_lonlat_many(self, xs: Any, ys: Any) -> tuple[Any, Any]:
        """Many points of the plane at once (numpy arrays of x and y, km): lon and lat arrays."""
        return self._inverse.transform(xs, ys)

    def to_km_many(self, lons: Any, lats: Any) -> tuple[Any, Any]:
        """Many points into the plane at once (numpy arrays of lon and lat): x and y arrays, km."""
        return self._forward.transform(lons, lats)


__all__ = [
    "GEOD",
    "LocalPlane",
    "destination",
    "distance_km",
    "geodesic_km",
    "shape_of",
]


def right_hand_rings(rings: tuple[tuple[Position, ...], ...]) -> list[list[list[float]]]:
    """A polygon's rings as RFC 7946 wants them: the exterior counterclockwise, holes clockwise
    (the right-hand rule), each ring still closed."""
    out: list[list[list[float]]] = []
    for number, ring in enumerate(rings):
        counterclockwise = _signed_area(ring) > 0
        wanted = number == 0
        ordered = ring if counterclockwise == wanted else tuple(reversed(ring))
        out.append([[lon, lat] for lon, lat in ordered])
    return out


def _signed_area(ring: tuple[Position, ...]) -> float:
    # The shoelace sum: positive for a counterclockwise ring in lon/lat.
    return sum(
        (lon1 * lat2 - lon2 * lat1) for (lon1, lat1), (lon2, lat2) in itertools.pairwise(ring)
    )
