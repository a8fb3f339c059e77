"""The public records of kuroshio (observation, marking, event, party) and their canonical bytes.

This module is the contract between nodes: types are the schema, validated once at the door, and
:func:`canonical_bytes` is the one encoding used for hashing and signatures. It does no I/O.
Records are frozen and never refer back to themselves, so the garbage collector does not track
them (``gc=False``): a receiving node decodes tens of thousands a second.

Canonical encoding
------------------
``canonical_bytes(record)`` is UTF-8 JSON produced by msgspec with struct fields and mapping keys
sorted by name, no insignificant white space, every field present (defaults included) except the
optional fields added after the first release (``provenance.grid_km`` of an item never coarsened,
``approaches``, ``crossed_median_line``, ``track``, an event's ``interval``…), which are left
out while unset (``msgspec.UNSET``) so older records keep their bytes, timestamps as RFC 3339
UTC with a ``Z`` suffix, coordinates rounded to 7 decimal places (about 1 cm) and ``-0.0``
written as ``0.0``. Equal records therefore give equal bytes on every platform.
``docs/canonical-vectors.json`` holds records and their exact bytes and SHA-256.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Final, Literal, TypeAlias

import msgspec
import pycountry

# --- bounds on every input -------------------------------------------------------------------

MAX_VERTICES: Final = 10_000
"""Upper bound on the number of positions in one geometry (all rings and parts together)."""
MAX_TEXT: Final = 4_000
MAX_ID: Final = 256
COORDINATE_DECIMALS: Final = 7
EARLIEST: Final = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST: Final = dt.datetime(2200, 1, 1, tzinfo=dt.UTC)

# --- parties ---------------------------------------------------------------------------------

_PARTY_PATTERN: Final = r"^[A-Z]{3}$"
_PARTY_DESCRIPTION: Final = "ISO 3166-1 alpha-3 code of a party, e.g. TWN, JPN, USA"
_PARTY_EXAMPLES: Final = ["TWN", "JPN"]

PartyCode = Annotated[
    str,
    msgspec.Meta(pattern=_PARTY_PATTERN, description=_PARTY_DESCRIPTION, examples=_PARTY_EXAMPLES),
]
CheckedPartyCode = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=3,
        description=_PARTY_DESCRIPTION,
        examples=_PARTY_EXAMPLES,
        extra_json_schema={"pattern": _PARTY_PATTERN},
    ),
]
"""A :data:`PartyCode` in a record whose ``__post_init__`` looks it up in the ISO list (which
holds only codes of three capitals): the pattern is stated in the schema but not run again by
the decoder, where a regular expression per field cost about a microsecond per received item."""


@functools.cache
def _known_parties() -> frozenset[str]:
    codes = {country.alpha_3 for country in pycountry.countries}
    codes.add("EUU")  # the European Union, a party in its own right (ISO 3166 reserved code)
    return frozenset(codes)


def is_party(code: str) -> bool:
    """True when ``code`` is an ISO 3166-1 alpha-3 code (or EUU for the European Union)."""
    return code in _known_parties()


_checked_parties: set[str] = set()
"""Codes already found in :func:`_known_parties`: every received item names a few, checked here
first."""


def _check_party(code: str, field: str) -> None:
    if code in _checked_parties:
        return
    if not is_party(code):
        raise ValueError(f"unknown party code {code!r} in {field} (ISO 3166-1 alpha-3 expected)")
    _checked_parties.add(code)


class Party(msgspec.Struct, frozen=True, gc=False, kw_only=True, forbid_unknown_fields=True):
    """A party to the exchange: one sovereign node."""

    code: CheckedPartyCode
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]

    def __post_init__(self) -> None:
        _check_party(self.code, "code")


# --- geometry (GeoJSON, WGS84, lon/lat) ------------------------------------------------------

Longitude = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
Latitude = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
Position: TypeAlias = tuple[Longitude, Latitude]
PositionList = Annotated[tuple[Position, ...], msgspec.Meta(max_length=MAX_VERTICES)]


_SCALE: Final = 10.0**COORDINATE_DECIMALS


def _clean(value: float) -> float:
    """``round(value, 7) + 0.0``: rounding bounds the precision we claim, and adding 0.0 makes
    -0.0 and 0.0 one value.

    A value already on the grid (every coordinate of a received item) is known by a product
    and a quotient, a third of the cost of ``round``: ``k / 10**7``, correctly rounded, is the
    double nearest the decimal ``k``·10⁻⁷, and when that is ``value`` rounding gives ``value``
    back. Any other value (off the grid, infinite, not a number) is rounded."""
    try:
        if round(value * _SCALE) / _SCALE == value:
            return value + 0.0
    except (OverflowError, ValueError):
        pass
    return round(value, COORDINATE_DECIMALS) + 0.0


def _clean_positions(positions: Iterable[Position]) -> tuple[Position, ...]:
    return tuple((_clean(lon), _clean(lat)) for lon, lat in positions)


class Point(
    msgspec.Struct, frozen=True, gc=False, tag="Point", tag_field="type", forbid_unknown_fields=True
):
    """A GeoJSON Point."""

    coordinates: Position

    def __post_init__(self) -> None:
        lon, lat = self.coordinates
        msgspec.structs.force_setattr(self, "coordinates", (_clean(lon), _clean(lat)))

    def positions(self) -> tuple[Position, ...]:
        return (self.coordinates,)


class LineString(
    msgspec.Struct,
    frozen=True,
    gc=False,
    tag="LineString",
    tag_field="type",
    forbid_unknown_fields=True,
):
    """A GeoJSON LineString: a track, two or more positions."""

    coordinates: Annotated[PositionList, msgspec.Meta(min_length=2)]

    def __post_init__(self) -> None:
        msgspec.structs.force_setattr(self, "coordinates", _clean_positions(self.coordinates))

    @classmethod
    def of_clean(cls, positions: Sequence[Position]) -> LineString:
        """A line through positions already clean (each taken from a :class:`Point`, so rounded
        as a line rounds them): a long track's line, drawn again as it grows, is not rounded
        again position by position."""
        line = cls(coordinates=tuple(positions[:2]))
        msgspec.structs.force_setattr(line, "coordinates", tuple(positions))
        return line

    def positions(self) -> tuple[Position, ...]:
        return self.coordinates


class MultiLineString(
    msgspec.Struct,
    frozen=True,
    gc=False,
    tag="MultiLineString",
    tag_field="type",
    forbid_unknown_fields=True,
):
    """A GeoJSON MultiLineString: a track drawn in several legs."""

    coordinates: Annotated[
        tuple[Annotated[PositionList, msgspec.Meta(min_length=2)], ...],
        msgspec.Meta(min_length=1, max_length=1_000),
    ]

    def __post_init__(self) -> None:
        parts = tuple(_clean_positions(part) for part in self.coordinates)
        msgspec.structs.force_setattr(self, "coordinates", parts)
        _check_vertex_count(sum(len(part) for part in parts))

    def positions(self) -> tuple[Position, ...]:
        return tuple(p for part in self.coordinates for p in part)


class Polygon(
    msgspec.Struct,
    frozen=True,
    gc=False,
    tag="Polygon",
    tag_field="type",
    forbid_unknown_fields=True,
):
    """A GeoJSON Polygon: an area (exercise box, patrol area); closed rings of 4+ positions."""

    coordinates: Annotated[
        tuple[Annotated[PositionList, msgspec.Meta(min_length=4)], ...],
        msgspec.Meta(min_length=1, max_length=1_000),
    ]

    def __post_init__(self) -> None:
        rings = tuple(_clean_positions(ring) for ring in self.coordinates)
        for number, ring in enumerate(rings):
            if ring[0] != ring[-1]:
                raise ValueError(f"polygon ring {number} is not closed (first position != last)")
        msgspec.structs.force_setattr(self, "coordinates", rings)
        _check_vertex_count(sum(len(ring) for ring in rings))

    def positions(self) -> tuple[Position, ...]:
        return tuple(p for ring in self.coordinates for p in ring)


def _check_vertex_count(count: int) -> None:
    if count > MAX_VERTICES:
        raise ValueError(f"geometry has {count} positions, more than the limit of {MAX_VERTICES}")


Geometry: TypeAlias = Point | LineString | MultiLineString | Polygon


def bounding_box(geometry: Geometry) -> tuple[float, float, float, float]:
    """(min lon, min lat, max lon, max lat) of a geometry."""
    if type(geometry) is Point:
        lon, lat = geometry.coordinates
        return lon, lat, lon, lat
    positions = geometry.positions()
    lons = [p[0] for p in positions]
    lats = [p[1] for p in positions]
    return min(lons), min(lats), max(lons), max(lats)


# --- marking ----------------------------------------------------------------------------------

TLP = Literal["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"]
TLP_ORDER: Final[tuple[str, ...]] = ("CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED")


def tlp_rank(level: str) -> int:
    """Position of a TLP level from least (CLEAR=0) to most restrictive (RED=4)."""
    return TLP_ORDER.index(level)


class OriginatorControl(
    msgspec.Struct, frozen=True, gc=False, kw_only=True, forbid_unknown_fields=True
):
    """What the originator allows a recipient to do with an item: re-release, to whom, how far."""

    rerelease: bool = False
    to: tuple[CheckedPartyCode, ...] = ()
    """Parties a recipient may pass the item on to (empty with rerelease=True: any party)."""
    max_hops: Annotated[int, msgspec.Meta(ge=0, le=16)] = 0
    """Further hops allowed beyond the first recipient."""

    def __post_init__(self) -> None:
        for code in self.to:
            _check_party(code, "marking.control.to")
        if len(self.to) > 1 or type(self.to) is not tuple:
            msgspec.structs.force_setattr(self, "to", tuple(sorted(set(self.to))))


class Marking(msgspec.Struct, frozen=True, gc=False, kw_only=True, forbid_unknown_fields=True):
    """Handling marking: TLP 2.0 level, releasable-to parties, originator control."""

    tlp: TLP = "AMBER"
    releasable_to: tuple[CheckedPartyCode, ...] = ()
    control: OriginatorControl = msgspec.field(default_factory=OriginatorControl)

    def __post_init__(self) -> None:
        codes = self.releasable_to
        for code in codes:
            _check_party(code, "marking.releasable_to")
        if len(codes) > 1 or type(codes) is not tuple:
            msgspec.structs.force_setattr(self, "releasable_to", tuple(sorted(set(codes))))


# --- observation ------------------------------------------------------------------------------

Kind = Literal["air", "sea", "area"]
ObservationId = Annotated[
    str,
    msgspec.Meta(
        min_length=5,
        max_length=MAX_ID,
        pattern=r"^[A-Z]{3}:[A-Za-z0-9._:/@+-]+$",
        description="origin-scoped id: '<ORIGIN>:<local id>'",
        examples=["TWN:mnd-tracks:2022-08-05:H-6K:1"],
    ),
]
TrackId = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=200,
        pattern=r"^[a-z0-9]+:[A-Za-z0-9._:/@+-]+$",
        description=(
            "the source's own identity of the track an observation belongs to: "
            "'<scheme>:<identity>' (MMSI, ICAO 24-bit address, ASTERIX SAC/SIC and track "
            "number, CoT uid)"
        ),
        examples=["ais:416123456", "icao:8991A1", "cat062:25/100:4980"],
    ),
]
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]
Timestamp = Annotated[dt.datetime, msgspec.Meta(tz=True)]


class Platform(msgspec.Struct, frozen=True, gc=False, kw_only=True, forbid_unknown_fields=True):
    """What was seen: a catalogue type and class, how many, whose."""

    type: ShortText | None = None
    """Catalogue code, e.g. ``H-6K`` or ``Type 052D``; None when only the class is known."""
    platform_class: ShortText | None = None
    """Class from the catalogue vocabulary, e.g. ``bomber``, ``destroyer``."""
    count: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1
    nationality: CheckedPartyCode | None = None
    service: ShortText | None = None
    label: ShortText | None = None
    """The type as the source wrote it, before catalogue lookup."""
    hull_numbers: tuple[ShortText, ...] = ()
    classes: Annotated[tuple[ShortText, ...], msgspec.Meta(max_length=20)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    """Every class in a group of mixed aircraft, as the source gives them (``fighter``, ``uav``,
    ``helicopter``, ``main_combat``, ``support`` …); left out for a single type or class."""

    def __post_init__(self) -> None:
        if self.nationality is not None:
            _check_party(self.nationality, "platform.nationality")


def _floats(record: msgspec.Struct, names: tuple[str, ...]) -> None:
    """Store whole numbers given to float fields as floats, so that a record built in Python
    encodes to the same canonical bytes as the same record decoded from JSON or MessagePack."""
    for name in names:
        value = getattr(record, name)
        if type(value) is int:
            msgspec.structs.force_setattr(record, name, float(value))


class Kinematics(msgspec.Struct, frozen=True, gc=False, kw_only=True, forbid_unknown_fields=True):
    """Motion at ``observed_at`` where the sensor gives it."""

    course_deg: Annotated[float, msgspec.Meta(ge=0.0, lt=360.0)] | None = None
    speed_mps: Annotated[float, msgspec.Meta(ge=0.0, le=3_000.0)] | None = None
    altitude_m: Annotated[float, msgspec.Meta(ge=-12_000.0, le=100_000.0)] | None = None

    def __post_init__(self) -> None:
        _floats(self, ("course_deg", "speed_mps", "altitude_m"))


SensorClass = Literal[
    "radar",
    "visual",
    "eo_ir",
    "esm",
    "ais",
    "sonar",
    "satellite",
    "report",
    "digitised_map",
    "other",
]


class Source(msgspec.Struct, frozen=True, gc=False, kw_only=True, forbid_unknown_fields=True):
    """How it was seen and how well."""

    sensor: SensorClass = "other"
    confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.5
    uncertainty_m: Annotated[float, msgspec.Meta(ge=0.0, le=5_000_000.0)] = 0.0
    """Position uncertainty (1-sigma radius) in metres."""

    def __post_init__(self) -> None:
        # _floats inlined: every received item passes here.
        if type(self.confidence) is int:
            msgspec.structs.force_setattr(self, "confidence", float(self.confidence))
        if type(self.uncertainty_m) is int:
            msgspec.structs.force_setattr(self, "uncertainty_m", float(self.uncertainty_m))


GridKm = Annotated[float, msgspec.Meta(ge=0.1, le=1_000.0)]
"""A release grid in km (see :mod:`kuroshio.geo.grid`)."""


class Provenance(msgspec.Struct, frozen=True, gc=False, kw_only=True, forbid_unknown_fields=True):
    """Where an item came from: an importer and record, or a partner and batch."""

    importer: ShortText | None = None
    record: Text | None = None
    """Source file and record, e.g. ``20220801-20230915_fixed.geojson#17``."""
    partner: CheckedPartyCode | None = None
    batch: ShortText | None = None
    hops: Annotated[int, msgspec.Meta(ge=0, le=32)] = 0
    transforms: tuple[Text, ...] = ()
    """Release transforms applied on the way here, in words for people (e.g. ``TWN: coarsened
    to 10 km grid``); machines read :attr:`grid_km`."""
    grid_km: GridKm | msgspec.UnsetType = msgspec.UNSET
    """The coarsest position grid any hop released the item on, in km; unset (and then left
    out of the canonical bytes) while the position is as observed."""

    relayed_id: ObservationId | msgspec.UnsetType = msgspec.UNSET
    """Set on an item a relay passed on without its origin's proof checked here: the id the relay
    sent it under (in the origin's space). The item is kept under the relay's own id
    (``<RELAY>:via:<id>``) with the relay as its origin, because it rests on the relay's word
    alone; unset (and left out of the canonical bytes) on every other item."""

    def __post_init__(self) -> None:
        if self.partner is not None:
            _check_party(self.partner, "provenance.partner")
        if type(self.grid_km) is int:
            msgspec.structs.force_setattr(self, "grid_km", float(self.grid_km))

    @property
    def released_grid_km(self) -> float | None:
        """:attr:`grid_km`, or None while the position is as observed."""
        return None if self.grid_km is msgspec.UNSET else self.grid_km

    @property
    def relayed_origin(self) -> str | None:
        """The party a relay named as the origin of an item kept on the relay's word (see
        :attr:`relayed_id`); None for every other item."""
        return None if self.relayed_id is msgspec.UNSET else self.relayed_id[:3]


class ClosestApproach(
    msgspec.Struct, frozen=True, gc=False, kw_only=True, forbid_unknown_fields=True
):
    """The closest a target came to a place, as the source gives it (``約43浬`` from 基隆)."""

    place: ShortText
    """The place measured from, as the source names it."""
    distance_nmi: Annotated[float, msgspec.Meta(ge=0.0, le=20_000.0)]
    line: LineString | None = None
    """The line the source draws from the place to the target, if it draws one."""

    def __post_init__(self) -> None:
        _floats(self, ("distance_nmi",))


class Observation(msgspec.Struct, frozen=True, gc=False, kw_only=True, forbid_unknown_fields=True):
    """One thing seen by one party at one time (or over one interval).

    ``id`` is origin-scoped and stable across versions; a correction is the same id with a higher
    ``version``; a retraction is a version with ``retracted=True``.
    """

    id: ObservationId
    version: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] = 1
    origin: CheckedPartyCode
    kind: Kind
    observed_at: Timestamp
    until: Timestamp | None = None
    geometry: Geometry
    platform: Platform | None = None
    kinematics: Kinematics | None = None
    source: Source = msgspec.field(default_factory=Source)
    marking: Marking = msgspec.field(default_factory=Marking)
    remarks: Text | None = None
    provenance: Provenance = msgspec.field(default_factory=Provenance)
    retracted: bool = False
    crossed_median_line: Annotated[int, msgspec.Meta(ge=0, le=10_000)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    """How many of the platform's count crossed the Taiwan Strait median line, when the source
    says so without drawing where (MND: ``其中2架次過中線``)."""
    approaches: (
        Annotated[tuple[ClosestApproach, ...], msgspec.Meta(max_length=50)] | msgspec.UnsetType
    ) = msgspec.UNSET
    """Closest approaches to places that the source gives for this observation."""
    track: TrackId | msgspec.UnsetType = msgspec.UNSET
    """The source track this observation is one update of (a live feed's track identity).
    Unset, the field is left out of every encoding, so records without it keep their bytes."""

    def __post_init__(self) -> None:
        _check_party(self.origin, "origin")
        if not self.id.startswith(self.origin + ":"):
            raise ValueError(f"id {self.id!r} is not scoped to its origin {self.origin}")
        observed_at = self.observed_at
        # A time decoded from canonical bytes is already UTC (``Z``): only its range is checked.
        if observed_at.tzinfo is not dt.UTC or not EARLIEST <= observed_at < LATEST:
            observed_at = _utc(observed_at, "observed_at")
            msgspec.structs.force_setattr(self, "observed_at", observed_at)
        if self.until is not None:
            until = _utc(self.until, "until")
            if until < observed_at:
                raise ValueError("until is earlier than observed_at")
            if until is not self.until:
                msgspec.structs.force_setattr(self, "until", until)

    @property
    def key(self) -> tuple[str, int]:
        return (self.id, self.version)


def latest_time(observation: Observation) -> dt.datetime:
    """The latest moment an observation describes: ``until``, else ``observed_at``."""
    return observation.until or observation.observed_at


def _utc(value: dt.datetime, field: str) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError(f"{field} has no time zone")
    if value.tzinfo is not dt.UTC:
        value = value.astimezone(dt.UTC)
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"{field} {value.isoformat()} is outside {EARLIEST.year}–{LATEST.year}")
    return value


# --- events -----------------------------------------------------------------------------------

EventKind = Literal[
    "adiz_entry", "median_line_crossing", "strait_transit", "area_active", "zone_entry"
]


class Interval(msgspec.Struct, frozen=True, gc=False, kw_only=True, forbid_unknown_fields=True):
    """A span of time: from ``start`` to ``end`` (inclusive), kept in UTC."""

    start: Timestamp
    end: Timestamp

    def __post_init__(self) -> None:
        start = _utc(self.start, "interval.start")
        end = _utc(self.end, "interval.end")
        if end < start:
            raise ValueError("interval.end is earlier than interval.start")
        msgspec.structs.force_setattr(self, "start", start)
        msgspec.structs.force_setattr(self, "end", end)


class Event(msgspec.Struct, frozen=True, gc=False, kw_only=True, forbid_unknown_fields=True):
    """A fact derived from observations, e.g. an ADIZ entry or a strait transit.

    Derivation is deterministic, so the same observations give the same event ``id``. An event
    of an observation that covers a span of time (a whole day, a time window) is ``estimated``:
    it happened within ``interval``, and ``at`` is only a guess within it.
    """

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID)]
    kind: EventKind
    at: Timestamp
    zone: ShortText
    """Zone, line or gate name, e.g. ``Taiwan ADIZ`` or ``Miyako Strait``."""
    direction: ShortText | None = None
    """For crossings and transits, e.g. ``westbound`` or ``to Pacific``."""
    location: Point | None = None
    observations: tuple[tuple[ObservationId, int], ...] = ()
    """(id, version) of the observations the event rests on."""
    origin: CheckedPartyCode
    platform: Platform | None = None
    remarks: Text | None = None
    interval: Interval | msgspec.UnsetType = msgspec.UNSET
    """When the event happened at the earliest and at the latest, if not known to the moment."""
    estimated: bool | msgspec.UnsetType = msgspec.UNSET
    """True when ``at`` is an estimate within ``interval`` rather than a time observed."""

    def __post_init__(self) -> None:
        _check_party(self.origin, "origin")
        msgspec.structs.force_setattr(self, "at", _utc(self.at, "at"))


# --- canonical encoding -----------------------------------------------------------------------

_canonical_encoder = msgspec.json.Encoder(order="sorted")
PUBLIC_RECORDS: Final = (Observation, Event, Party, Marking)


def canonical_bytes(record: Any) -> bytes:
    """Deterministic bytes of a record; the only encoding used for hashing and signing."""
    return _canonical_encoder.encode(record)


def decode_observation(data: bytes | str) -> Observation:
    """Decode and validate one JSON observation; raises msgspec.ValidationError naming the path."""
    return msgspec.json.decode(data, type=Observation)


def observation_from_builtins(value: Any) -> Observation:
    """Validate an already-parsed JSON value (dicts/lists) as an Observation."""
    return msgspec.convert(value, type=Observation, strict=False)


def json_schema() -> dict[str, Any]:
    """JSON Schema (2020-12) of the public records."""
    _, components = msgspec.json.schema_components(PUBLIC_RECORDS, ref_template="#/$defs/{name}")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "kuroshio public records",
        "$defs": components,
        "oneOf": [{"$ref": f"#/$defs/{t.__name__}"} for t in PUBLIC_RECORDS],
    }
