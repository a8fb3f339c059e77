"""Reading the time and area limits people give on the command line and to the API.

Each reader raises :class:`InputError` naming the option and what is wrong with the value; the
command line turns it into one line on stderr, the API into a 422.
"""

from __future__ import annotations

import datetime as dt

from kuroshio.errors import InputError

BBox = tuple[float, float, float, float]


def utc_time(value: str | None, name: str) -> dt.datetime | None:
    """ISO 8601 date or date-time; a date or a time without a zone is taken as UTC."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"{name} {value!r} is not an ISO 8601 date or time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def bbox(value: str | None, name: str) -> BBox | None:
    """``min_lon,min_lat,max_lon,max_lat`` in degrees, within range and min ≤ max."""
    if value is None:
        return None
    try:
        parts = tuple(float(p) for p in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4:
        raise InputError(f"{name} {value!r}: expected min_lon,min_lat,max_lon,max_lat")
    min_lon, min_lat, max_lon, max_lat = parts
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise InputError(f"{name} {value!r}: longitudes/latitudes out of range or min > max")
    return min_lon, min_lat, max_lon, max_lat


__all__ = ["BBox", "InputError", "bbox", "utc_time"]
