"""Where a radar's polar measurement (azimuth, slant range, height) lies on the WGS84 ellipsoid.

:func:`polar_position` turns a plot measured by a radar at a known site into longitude and
latitude: the slant range is brought down to a distance along the ground with the target's height
(spherical earth of the local mean radius), then walked from the site along the azimuth on the
ellipsoid (:func:`kuroshio.geo.shapes.destination`). It does not correct for refraction or the
radar's collimation and tilt; it knows nothing about ASTERIX.
"""

from __future__ import annotations

import math
from typing import Final

from kuroshio.geo.shapes import destination

_A: Final = 6_378_137.0
"""WGS84 semi-major axis, metres."""
_E2: Final = 6.69437999014e-3
"""WGS84 first eccentricity squared."""


def mean_radius_at(latitude: float) -> float:
    """Gaussian mean radius of curvature of the WGS84 ellipsoid at a latitude, in metres."""
    sin2 = math.sin(math.radians(latitude)) ** 2
    meridional = _A * (1 - _E2) / (1 - _E2 * sin2) ** 1.5
    normal = _A / math.sqrt(1 - _E2 * sin2)
    return math.sqrt(meridional * normal)


def ground_range(
    slant_range_m: float, site_height_m: float, target_height_m: float, radius_m: float
) -> float:
    """Distance along the surface from the site to the point below the target, in metres.

    The site, the target and the earth's centre make a triangle whose sides are known (radius
    plus each height, and the slant range); its angle at the centre, times the radius, is the
    ground range. A slant range shorter than the height difference (an inconsistent plot) gives 0.
    """
    site = radius_m + site_height_m
    target = radius_m + target_height_m
    cosine = (site * site + target * target - slant_range_m * slant_range_m) / (2 * site * target)
    return radius_m * math.acos(max(-1.0, min(1.0, cosine)))


def polar_position(
    site_lon: float,
    site_lat: float,
    site_height_m: float,
    azimuth_deg: float,
    slant_range_m: float,
    target_height_m: float | None,
) -> tuple[float, float]:
    """(lon, lat) of a target seen from a site at an azimuth (true north, clockwise) and slant
    range. ``target_height_m`` None (no height measured): the slant range is taken as lying at
    the site's height, which overstates the ground range of a high target at short range."""
    height = site_height_m if target_height_m is None else target_height_m
    distance = ground_range(slant_range_m, site_height_m, height, mean_radius_at(site_lat))
    return destination(site_lon, site_lat, azimuth_deg, distance / 1000.0)
