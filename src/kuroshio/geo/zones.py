"""Reference geography owned by kuroshio: ADIZs, sectors, the median line and strait gates.

Loads the curated package data file ``zones.geojson`` into prepared shapely geometries with an
STRtree for candidate search. It describes places only; deriving events is :mod:`.events`' job.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Annotated, Any, Final, Literal, TypeAlias

import msgspec
import numpy as np
import numpy.typing as npt
import shapely

from kuroshio.errors import GeographyError, UnknownZoneError
from kuroshio.geo.raster import AreaRaster, area_raster
from kuroshio.model import LineString, Polygon

ZoneKind = Literal["adiz", "adiz_sector", "median_line", "gate"]
AREA_KINDS: Final[frozenset[str]] = frozenset({"adiz", "adiz_sector"})
LINE_KINDS: Final[frozenset[str]] = frozenset({"median_line", "gate"})
DATA_FILE: Final = "zones.geojson"

FloatArray: TypeAlias = npt.NDArray[np.float64]
IntArray: TypeAlias = npt.NDArray[np.intp]

_SLUG = r"^[a-z0-9]+(-[a-z0-9]+)*$"


# --- the file's schema -----------------------------------------------------------------------

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Side(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One side of a line, named as a watch officer would say where a ship is heading."""

    name: Name
    name_zh: Name
    name_ja: Name


class _Properties(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(pattern=_SLUG, max_length=64)]
    name: Name
    name_zh: Name
    name_ja: Name
    kind: ZoneKind
    source: Annotated[str, msgspec.Meta(min_length=1)]
    confidence: Name
    entry_event: Literal["adiz_entry", "zone_entry"] | None = None
    left_side: Side | None = None
    right_side: Side | None = None


class _Feature(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    type: Literal["Feature"]
    properties: _Properties
    geometry: Polygon | LineString
    id: str | None = None


class _Collection(msgspec.Struct, frozen=True):
    type: Literal["FeatureCollection"]
    features: tuple[_Feature, ...]


# --- the geography ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class Zone:
    """A named area (ADIZ, sector) or line (median line, strait gate) with a prepared geometry.

    For lines, ``left_side`` and ``right_side`` name the water on each hand of someone walking the
    line from its first to its last position, so a crossing can be named "from A to B".
    """

    id: str
    name: str
    name_zh: str
    name_ja: str
    kind: ZoneKind
    source: str
    confidence: str
    geometry: Any
    """A prepared shapely Polygon or LineString (lon/lat degrees)."""
    entry_event: Literal["adiz_entry", "zone_entry"] | None = None
    left_side: Side | None = None
    right_side: Side | None = None

    @property
    def is_area(self) -> bool:
        return self.kind in AREA_KINDS

    @property
    def is_line(self) -> bool:
        return self.kind in LINE_KINDS


@dataclass(frozen=True, slots=True)
class Edges:
    """Every straight edge of every zone (area boundaries, lines and gates) as arrays, with an
    STRtree over them: a track is tested only against the few edges it actually meets."""

    x: FloatArray
    """(n,) longitude of each edge's first position."""
    y: FloatArray
    """(n,) latitude of each edge's first position."""
    dx: FloatArray
    """(n,) longitude change along each edge."""
    dy: FloatArray
    """(n,) latitude change along each edge."""
    length: FloatArray
    """(n,) length of each edge in degrees."""
    zone: IntArray
    """(n,) index into :attr:`Geography.zones` of the zone each edge belongs to."""
    tree: Any
    """shapely STRtree over the edges as two-position LineStrings."""
    rows: list[tuple[float, float, float, float]]
    """(x, y, dx, dy) of each edge as Python floats, for the few edges a track meets."""
    owners: list[int]
    """:attr:`zone` as Python ints."""
    on_line: list[bool]
    """Whether each edge belongs to a line (median line or gate) rather than an area."""

    def touching(self, lines: Any) -> IntArray:
        """(2, n) pairs of (index into ``lines``, edge index) that intersect, for an array of
        shapely geometries, e.g. the steps of a track."""
        pairs: IntArray = self.tree.query(lines, predicate="intersects")
        return pairs


@dataclass(frozen=True, eq=False)
class Geography:
    """The zones and gates, looked up by id or kind, with STRtrees over them and their edges."""

    zones: tuple[Zone, ...]
    _by_id: dict[str, int] = field(init=False, repr=False)
    _tree: Any = field(init=False, repr=False)
    edges: Edges = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_id: dict[str, int] = {}
        for index, zone in enumerate(self.zones):
            if zone.id in by_id:
                raise GeographyError(f"zone {zone.id}", "duplicate id")
            by_id[zone.id] = index
        object.__setattr__(self, "_by_id", by_id)
        object.__setattr__(self, "_tree", shapely.STRtree([z.geometry for z in self.zones]))
        object.__setattr__(self, "edges", _edges(self.zones))

    def __iter__(self) -> Iterator[Zone]:
        return iter(self.zones)

    def __len__(self) -> int:
        return len(self.zones)

    def __contains__(self, zone_id: object) -> bool:
        return zone_id in self._by_id

    def __getitem__(self, zone_id: str) -> Zone:
        return self.zone(zone_id)

    def zone(self, zone_id: str) -> Zone:
        """The zone or gate with this id; raises :class:`UnknownZoneError`."""
        try:
            return self.zones[self._by_id[zone_id]]
        except KeyError:
            raise UnknownZoneError(zone_id, sorted(self._by_id)) from None

    def index(self, zone_id: str) -> int:
        """Position of a zone in :attr:`zones` (the index :attr:`edges` refers to)."""
        self.zone(zone_id)
        return self._by_id[zone_id]

    def of_kind(self, *kinds: ZoneKind) -> tuple[Zone, ...]:
        """Zones of the given kinds, in file order."""
        return tuple(z for z in self.zones if z.kind in kinds)

    @property
    def areas(self) -> tuple[Zone, ...]:
        return tuple(z for z in self.zones if z.is_area)

    @property
    def lines(self) -> tuple[Zone, ...]:
        return tuple(z for z in self.zones if z.is_line)

    @property
    def gates(self) -> tuple[Zone, ...]:
        return self.of_kind("gate")

    @functools.cached_property
    def area_rasters(self) -> tuple[AreaRaster | None, ...]:
        """For each of :attr:`zones`, the raster of an area or None for a line: a position far
        from the area's boundary needs no exact test (built on first use)."""
        return tuple(area_raster(z.geometry) if z.is_area else None for z in self.zones)

    def candidate_indices(self, geometry: Any) -> IntArray:
        """Indices (ascending) of zones whose bounding box meets that of a shapely geometry."""
        found: IntArray = self._tree.query(geometry)
        return np.sort(found)

    def candidates(self, geometry: Any) -> tuple[Zone, ...]:
        """Zones whose bounding box meets that of a shapely geometry (a cheap first filter)."""
        return tuple(self.zones[int(i)] for i in self.candidate_indices(geometry))


def _edges(zones: Sequence[Zone]) -> Edges:
    starts: list[FloatArray] = []
    ends: list[FloatArray] = []
    owners: list[IntArray] = []
    for index, zone in enumerate(zones):
        parts = [zone.geometry]
        if zone.is_area:
            parts = [zone.geometry.exterior, *zone.geometry.interiors]
        for part in parts:
            xy = np.asarray(shapely.get_coordinates(part), dtype=np.float64)
            starts.append(xy[:-1])
            ends.append(xy[1:])
            owners.append(np.full(len(xy) - 1, index, dtype=np.intp))
    start = np.concatenate(starts) if starts else np.empty((0, 2))
    end = np.concatenate(ends) if ends else np.empty((0, 2))
    along = end - start
    segments = shapely.linestrings(np.stack((start, end), axis=1))
    owner = np.concatenate(owners) if owners else np.empty(0, dtype=np.intp)
    rows = np.concatenate((start, along), axis=1).tolist()
    return Edges(
        x=np.ascontiguousarray(start[:, 0]),
        y=np.ascontiguousarray(start[:, 1]),
        dx=np.ascontiguousarray(along[:, 0]),
        dy=np.ascontiguousarray(along[:, 1]),
        length=np.hypot(along[:, 0], along[:, 1]),
        zone=owner,
        tree=shapely.STRtree(segments),
        rows=[(x, y, dx, dy) for x, y, dx, dy in rows],
        owners=owner.tolist(),
        on_line=[zones[index].is_line for index in owner.tolist()],
    )


# --- loading ---------------------------------------------------------------------------------

_decoder = msgspec.json.Decoder(_Collection)


def parse(data: bytes | str, location: str = "<zones>") -> Geography:
    """Build a :class:`Geography` from GeoJSON text in the package data file's schema."""
    try:
        collection = _decoder.decode(data)
    except msgspec.ValidationError as error:
        raise GeographyError(location, _feature_path(str(error))) from None
    except msgspec.DecodeError as error:
        raise GeographyError(location, f"not JSON: {error}") from None
    zones: list[Zone] = []
    for number, feature in enumerate(collection.features):
        zones.append(_zone(feature, f"{location}#features[{number}]"))
    return Geography(tuple(zones))


def _feature_path(message: str) -> str:
    # msgspec names the failing path ("... - at `$.features[3].properties.kind`"); keep it whole
    return re.sub(r"\s+", " ", message)


def _zone(feature: _Feature, location: str) -> Zone:
    props = feature.properties
    geometry = feature.geometry
    where = f"{location} ({props.id})"
    if props.kind in AREA_KINDS:
        if not isinstance(geometry, Polygon):
            raise GeographyError(where, f"a {props.kind} must be a Polygon")
        if props.entry_event is None:
            raise GeographyError(where, "an area needs entry_event (adiz_entry or zone_entry)")
        shape = shapely.Polygon(geometry.coordinates[0], geometry.coordinates[1:])
    else:
        if not isinstance(geometry, LineString):
            raise GeographyError(where, f"a {props.kind} must be a LineString")
        if props.left_side is None or props.right_side is None:
            raise GeographyError(where, "a line needs left_side and right_side names")
        shape = shapely.LineString(geometry.coordinates)
    if not shapely.is_valid(shape):
        raise GeographyError(where, f"invalid geometry: {shapely.is_valid_reason(shape)}")
    shapely.prepare(shape)
    return Zone(
        id=props.id,
        name=props.name,
        name_zh=props.name_zh,
        name_ja=props.name_ja,
        kind=props.kind,
        source=props.source,
        confidence=props.confidence,
        geometry=shape,
        entry_event=props.entry_event,
        left_side=props.left_side,
        right_side=props.right_side,
    )


@functools.cache
def load() -> Geography:
    """The package's reference geography (parsed once, then shared)."""
    resource = resources.files(__package__ or "kuroshio.geo") / DATA_FILE
    return parse(resource.read_bytes(), location=f"kuroshio/geo/{DATA_FILE}")
