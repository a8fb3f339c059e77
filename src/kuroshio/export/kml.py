"""Observations as KML for Google Earth (and any GIS that reads KML), or as KMZ with icons.

One folder per origin; one placemark per observation, named as a watch officer would say it
(``H-6K ×2``), styled with its origin's colour (lines and areas) and, in a KMZ, with the frame
of its standard identity rimmed in that colour; a ``TimeSpan`` (or ``TimeStamp``) for Google
Earth's time slider, and the flat fields of :mod:`kuroshio.export.geojson` as typed
``SchemaData``, so a GIS reads them as columns. Written with fastkml; nothing here reads a
store or writes a file.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any, Final

import pygeoif
from fastkml import (
    KML,
    Document,
    ExtendedData,
    Folder,
    IconStyle,
    LabelStyle,
    LineStyle,
    Placemark,
    PolyStyle,
    Schema,
    SchemaData,
    SimpleData,
    SimpleField,
    Style,
    StyleUrl,
    TimeSpan,
    TimeStamp,
)
from fastkml.enums import DataType
from fastkml.times import KmlDateTime

from kuroshio.export.geojson import flat_properties
from kuroshio.export.icons import frame_png, origin_colours
from kuroshio.export.symbols import standard_identity
from kuroshio.model import LineString, MultiLineString, Observation, Point, Polygon

KML_MEDIA_TYPE: Final = "application/vnd.google-earth.kml+xml"
KMZ_MEDIA_TYPE: Final = "application/vnd.google-earth.kmz"
SCHEMA_ID: Final = "observation"
MAX_KML_ITEMS: Final = 50_000
"""Observations in one KML or KMZ (the file is built whole; GeoJSON streams any number)."""
_FIELD_TYPES: Final[dict[str, DataType]] = {
    "version": DataType.int_, "count": DataType.int_, "hops": DataType.int_,
    "course_deg": DataType.double, "speed_mps": DataType.double, "altitude_m": DataType.double,
    "confidence": DataType.double, "uncertainty_m": DataType.double, "grid_km": DataType.double,
    "rerelease": DataType.bool_, "retracted": DataType.bool_,
}  # fmt: skip


def _abgr(colour: str, alpha: str = "ff") -> str:
    """KML colours are aabbggrr."""
    rgb = colour.lstrip("#")
    return f"{alpha}{rgb[4:6]}{rgb[2:4]}{rgb[0:2]}"


def _style_id(origin: str, identity: str) -> str:
    return f"{origin}-{identity}"


def _icon_file(origin: str, identity: str) -> str:
    return f"files/{origin}-{identity}.png"


def _geometry(observation: Observation) -> Any:
    geometry = observation.geometry
    if isinstance(geometry, Point):
        return pygeoif.Point(*geometry.coordinates)
    if isinstance(geometry, LineString):
        return pygeoif.LineString(geometry.coordinates)
    if isinstance(geometry, MultiLineString):
        return pygeoif.MultiLineString(geometry.coordinates)
    assert isinstance(geometry, Polygon)
    return pygeoif.Polygon(geometry.coordinates[0], geometry.coordinates[1:])


def placemark_id(observation_id: str) -> str:
    """An observation id as an XML ID (an NCName): ``JPN:radar:1`` is ``JPN.radar.1``; the id
    itself is kept in the placemark's data."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", observation_id.replace(":", "."))


def placemark_name(observation: Observation) -> str:
    platform = observation.platform
    what = (platform.type or platform.platform_class or platform.label) if platform else None
    count = platform.count if platform else 1
    return f"{what or observation.kind}{f' ×{count}' if count > 1 else ''}"


def _description(observation: Observation) -> str:
    marking = observation.marking
    lines = [
        f"{observation.origin} · {observation.kind} · {observation.id} v{observation.version}",
        f"TLP:{marking.tlp}"
        + (f" · releasable to {', '.join(marking.releasable_to)}" if marking.releasable_to else ""),
    ]
    lines.extend(observation.provenance.transforms)
    if observation.remarks:
        lines.append(observation.remarks)
    return "\n".join(lines)


def _times(observation: Observation) -> TimeSpan | TimeStamp:
    if observation.until is None:
        return TimeStamp(timestamp=KmlDateTime(observation.observed_at))
    return TimeSpan(begin=KmlDateTime(observation.observed_at), end=KmlDateTime(observation.until))


def _schema() -> Schema:
    names = (
        "id", "version", "origin", "kind", "observed_at", "until", "track", "platform_type",
        "platform_class", "count", "nationality", "service", "label", "course_deg", "speed_mps",
        "altitude_m", "sensor", "confidence", "uncertainty_m", "tlp", "releasable_to",
        "rerelease", "from_partner", "hops", "grid_km", "transforms", "importer", "record",
        "remarks", "retracted",
    )  # fmt: skip
    return Schema(
        id=SCHEMA_ID,
        name=SCHEMA_ID,
        fields=[SimpleField(name=n, type_=_FIELD_TYPES.get(n, DataType.string)) for n in names],
    )


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _extended(observation: Observation) -> ExtendedData:
    data = [
        SimpleData(name=name, value=_value(value))
        for name, value in flat_properties(observation).items()
        if value is not None and value != ""
    ]
    return ExtendedData(elements=[SchemaData(schema_url=f"#{SCHEMA_ID}", data=data)])


def _styles(pairs: Iterable[tuple[str, str]], colours: dict[str, str], kmz: bool) -> list[Style]:
    styles = []
    for origin, identity in sorted(pairs):
        colour = colours[origin]
        icon = (
            IconStyle(scale=1.0, icon_href=_icon_file(origin, identity))
            if kmz
            else IconStyle(color=_abgr(colour), scale=1.0)
        )
        styles.append(
            Style(
                id=_style_id(origin, identity),
                styles=[
                    icon,
                    LabelStyle(color=_abgr(colour), scale=0.8),
                    LineStyle(color=_abgr(colour), width=2.5),
                    PolyStyle(color=_abgr(colour, "40")),
                ],
            )
        )
    return styles


def document(
    observations: Sequence[Observation],
    *,
    own_party: str,
    partners: Sequence[str],
    name: str,
    kmz: bool = False,
) -> tuple[str, dict[str, bytes]]:
    """The KML text of ``observations`` and, for a KMZ, the icon files it refers to."""
    friendly = {own_party, *partners}
    colours = origin_colours(own_party, partners, sorted({o.origin for o in observations}))
    folders: dict[str, list[Placemark]] = {}
    used: set[tuple[str, str]] = set()
    for observation in observations:
        identity = standard_identity(observation, friendly)
        used.add((observation.origin, identity))
        folders.setdefault(observation.origin, []).append(
            Placemark(
                id=placemark_id(observation.id),
                name=placemark_name(observation),
                description=_description(observation),
                times=_times(observation),
                style_url=StyleUrl(url=f"#{_style_id(observation.origin, identity)}"),
                extended_data=_extended(observation),
                geometry=_geometry(observation),
            )
        )
    doc = Document(
        name=name,
        styles=_styles(used, colours, kmz),
        schemata=[_schema()],
        features=[
            Folder(name=origin, description=f"{len(items)} observations", features=items)
            for origin, items in sorted(folders.items())
        ],
    )
    text = KML(features=[doc]).to_string(prettyprint=False)
    icons = {}
    if kmz:
        icons = {
            _icon_file(origin, identity): frame_png(identity, colours[origin])
            for origin, identity in used
        }
    return text, icons


def kml_bytes(observations: Sequence[Observation], **context: Any) -> bytes:
    text, _ = document(observations, kmz=False, **context)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + text.encode("utf-8")


def kmz_bytes(observations: Sequence[Observation], **context: Any) -> bytes:
    """A KMZ: ``doc.kml`` first (as Google Earth expects), then its icons."""
    text, icons = document(observations, kmz=True, **context)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("doc.kml", b'<?xml version="1.0" encoding="UTF-8"?>\n' + text.encode())
        for path, png in sorted(icons.items()):
            archive.writestr(path, png)
    return buffer.getvalue()
