"""Observations as RFC 7946 GeoJSON with flat properties, for GIS users to style and filter.

Every property is a string, number, boolean or null (lists joined with ``,``; transforms with
``; ``), named as a column would be (``platform_class``, ``tlp``, ``speed_mps``), so QGIS or
ArcGIS can style by any of them without unpacking objects. Coordinates are WGS84 lon/lat,
polygon rings follow the right-hand rule, no ``crs`` member is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

import msgspec

from kuroshio.geo.shapes import right_hand_rings
from kuroshio.model import Observation, Polygon

MEDIA_TYPE: Final = "application/geo+json"
_json = msgspec.json.Encoder()


def _time(value: Any) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def flat_properties(observation: Observation) -> dict[str, Any]:
    """The observation's fields as one flat table row."""
    platform = observation.platform
    kinematics = observation.kinematics
    source = observation.source
    marking = observation.marking
    provenance = observation.provenance
    return {
        "id": observation.id,
        "version": observation.version,
        "origin": observation.origin,
        "kind": observation.kind,
        "observed_at": _time(observation.observed_at),
        "until": _time(observation.until),
        "track": None if observation.track is msgspec.UNSET else observation.track,
        "platform_type": platform.type if platform else None,
        "platform_class": platform.platform_class if platform else None,
        "count": platform.count if platform else None,
        "nationality": platform.nationality if platform else None,
        "service": platform.service if platform else None,
        "label": platform.label if platform else None,
        "course_deg": kinematics.course_deg if kinematics else None,
        "speed_mps": kinematics.speed_mps if kinematics else None,
        "altitude_m": kinematics.altitude_m if kinematics else None,
        "sensor": source.sensor,
        "confidence": source.confidence,
        "uncertainty_m": source.uncertainty_m,
        "tlp": marking.tlp,
        "releasable_to": ",".join(marking.releasable_to),
        "rerelease": marking.control.rerelease,
        "from_partner": provenance.partner,
        "hops": provenance.hops,
        "grid_km": provenance.released_grid_km,
        "transforms": "; ".join(provenance.transforms),
        "importer": provenance.importer,
        "record": provenance.record,
        "remarks": observation.remarks,
        "retracted": observation.retracted,
    }


def _geometry(observation: Observation) -> dict[str, Any]:
    geometry = observation.geometry
    if isinstance(geometry, Polygon):
        return {"type": "Polygon", "coordinates": right_hand_rings(geometry.coordinates)}
    built: dict[str, Any] = msgspec.to_builtins(geometry)
    return built


def flat_feature(observation: Observation) -> dict[str, Any]:
    """One RFC 7946 Feature, its id the observation's."""
    return {
        "type": "Feature",
        "id": observation.id,
        "geometry": _geometry(observation),
        "properties": flat_properties(observation),
    }


def feature_collection(observations: Iterable[Observation]) -> Iterator[bytes]:
    """A FeatureCollection, written piece by piece (one feature per line) for any number."""
    yield b'{"type":"FeatureCollection","features":['
    for number, observation in enumerate(observations):
        yield (b",\n" if number else b"\n") + _json.encode(flat_feature(observation))
    yield b"\n]}\n"
