"""Observations as Cursor-on-Target events, written as XML or as TAK protocol (protobuf).

:func:`observation_event` gives the event a TAK client shows for one observation: a uid that
follows the source track (so a TAK map moves one icon along the track), the CoT type derived
from the item's MIL-STD-2525D symbol (``a-h-A-M-F-B`` a hostile bomber, ``a-f-S-X-L`` a
friendly coast guard cutter), ``how``, ``stale``, circular error from the position uncertainty
and any coarsening a release applied, course and speed, and the marking in ``<detail>`` as
``<marking access="TLP:AMBER" caveat=… releasableTo=… origin=… verification=…/>``.
:func:`to_xml` and :func:`to_proto` write one event; the TAK stream frames the protobuf as
``0xbf``, varint length, message. Nothing here decides whether an item may go out
(:mod:`kuroshio.export.release`) or opens a socket (:mod:`kuroshio.tak`).
"""

from __future__ import annotations

import datetime as dt
import math
import xml.etree.ElementTree as ET
from collections.abc import Collection, Sequence
from typing import Final

import msgspec
from takproto.proto import TakMessage

from kuroshio.export.symbols import standard_identity
from kuroshio.model import Marking, Observation, Polygon, latest_time

UNKNOWN: Final = 9_999_999.0
"""CoT's "not known" for height and errors."""
PROTO_MAGIC: Final = 0xBF
MAX_SHAPE_POINTS: Final = 200
"""Vertices sent of an area's outline (a longer ring is thinned evenly)."""
COT_VERSION: Final = "2.0"

# The CoT function letters of each catalogue class (MIL-STD-2525B, as CoT types spell them):
# the dimension letter first (A air, S sea surface, U subsurface).
CLASS_FUNCTION: Final[dict[str, str]] = {
    "fighter": "A-M-F-F", "bomber": "A-M-F-B", "aew": "A-M-F-R-W", "asw": "A-M-F-S",
    "ew": "A-M-F-J", "recon": "A-M-F-R", "uav": "A-M-F-Q", "helicopter": "A-M-H",
    "tanker": "A-M-F-K", "transport": "A-M-F-C", "other_aircraft": "A-M-F",
    "balloon": "A-M-L", "carrier": "S-C-L-C-V", "cruiser": "S-C-L-C-C",
    "destroyer": "S-C-L-D-D", "frigate": "S-C-L-F-F", "corvette": "S-C-L-F-F",
    "amphibious": "S-C-A", "replenishment": "S-N-R", "survey": "S-N", "intelligence": "S-N-I",
    "submarine": "U-S", "coast_guard": "S-X-L", "other_vessel": "S-C",
}  # fmt: skip
_AFFILIATION: Final = {
    "friend": "f", "assumed_friend": "a", "hostile": "h", "suspect": "s", "neutral": "n",
    "unknown": "u", "pending": "p",
}  # fmt: skip
_MACHINE_SENSORS: Final = frozenset({"radar", "ais", "eo_ir", "esm", "sonar", "satellite"})


class CotMarking(msgspec.Struct, frozen=True, kw_only=True):
    """The marking as a TAK client shows it, with where the item came from and whether its
    origin's signature was checked."""

    access: str
    """``TLP:AMBER`` and the like."""
    caveat: str
    releasable_to: tuple[str, ...]
    origin: str
    verification: str


class CotEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One Cursor-on-Target event, ready to write."""

    uid: str
    type: str
    how: str
    time: dt.datetime
    start: dt.datetime
    stale: dt.datetime
    lat: float
    lon: float
    hae: float = UNKNOWN
    ce: float = UNKNOWN
    le: float = UNKNOWN
    callsign: str
    course: float | None = None
    speed: float | None = None
    remarks: str | None = None
    marking: CotMarking
    shape: tuple[tuple[float, float], ...] = ()
    """An area's outline (lon, lat), sent as ``<link point=…/>``."""


def cot_type(kind: str, platform_class: str | None, identity: str) -> str:
    """``a-<affiliation>-<function>`` for an air or sea item, ``u-d-f`` for an area."""
    if kind == "area":
        return "u-d-f"
    affiliation = _AFFILIATION.get(identity, "u")
    function = CLASS_FUNCTION.get(platform_class or "")
    if function is None:
        function = "S" if kind == "sea" else "A"
    return f"a-{affiliation}-{function}"


def caveat(marking: Marking) -> str:
    """The handling words that go with the TLP: releasability and re-release."""
    words = []
    if marking.releasable_to:
        words.append("REL TO " + ", ".join(marking.releasable_to))
    control = marking.control
    if not control.rerelease:
        words.append("NO RE-RELEASE")
    else:
        to = ", ".join(control.to) if control.to else "ANY"
        words.append(f"RE-RELEASE TO {to}, {control.max_hops} HOP(S)")
    return "; ".join(words)


def circular_error(uncertainty_m: float, grid_km: float | None) -> float:
    """1-sigma circular error: the source's uncertainty with a release grid's half diagonal
    added in quadrature (a coarsened position may lie anywhere in its cell)."""
    grid_m = 0.0 if grid_km is None else grid_km * 1000.0 / math.sqrt(2.0)
    error = math.hypot(uncertainty_m, grid_m)
    return error if error > 0 else UNKNOWN


def _how(observation: Observation) -> str:
    if observation.source.sensor in _MACHINE_SENSORS:
        return "m-g"
    return "h-e"


def track_uid(observation: Observation) -> str:
    """The uid a TAK client keeps for this item: one per source track, else per observation."""
    if observation.track is not msgspec.UNSET:
        return f"{observation.origin}.{observation.track}"
    return observation.id


def callsign(what: str, count: int, origins: Sequence[str]) -> str:
    return f"{what}{f' ×{count}' if count > 1 else ''} · {'+'.join(origins)}"


def _outline(polygon: Polygon) -> tuple[tuple[float, float], ...]:
    ring = polygon.coordinates[0]
    step = max(1, math.ceil(len(ring) / MAX_SHAPE_POINTS))
    return tuple(ring[::step])


def observation_event(
    observation: Observation,
    *,
    friendly: Collection[str],
    verification: str,
    now: dt.datetime,
    stale_s: float,
) -> CotEvent:
    """The CoT event of one current observation (a retraction's event is stale at once)."""
    platform = observation.platform
    identity = standard_identity(observation, friendly)
    kind = observation.kind
    positions = observation.geometry.positions()
    lon, lat = positions[-1] if kind != "area" else positions[0]
    at = latest_time(observation)
    stale = now if observation.retracted else max(at, now) + dt.timedelta(seconds=stale_s)
    kinematics = observation.kinematics
    what = (platform.type or platform.platform_class) if platform else None
    marking = observation.marking
    hae = UNKNOWN
    if kinematics is not None and kinematics.altitude_m is not None:
        hae = kinematics.altitude_m
    elif kind == "sea":
        hae = 0.0
    return CotEvent(
        uid=track_uid(observation),
        type=cot_type(kind, platform.platform_class if platform else None, identity),
        how=_how(observation),
        time=now,
        start=min(at, now),
        stale=stale,
        lat=lat,
        lon=lon,
        hae=hae,
        ce=circular_error(
            observation.source.uncertainty_m, observation.provenance.released_grid_km
        ),
        callsign=callsign(what or kind, platform.count if platform else 1, (observation.origin,)),
        course=kinematics.course_deg if kinematics else None,
        speed=kinematics.speed_mps if kinematics else None,
        remarks=observation.remarks,
        marking=CotMarking(
            access=f"TLP:{marking.tlp}",
            caveat=caveat(marking),
            releasable_to=marking.releasable_to,
            origin=observation.origin,
            verification=verification,
        ),
        shape=_outline(observation.geometry) if isinstance(observation.geometry, Polygon) else (),
    )


# --- writing -------------------------------------------------------------------------------------


def cot_time(value: dt.datetime) -> str:
    return (
        value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{value.microsecond // 1000:03d}Z"
    )


def _number(value: float) -> str:
    return f"{value:.7f}".rstrip("0").rstrip(".") if value != UNKNOWN else "9999999.0"


def _detail(event: CotEvent, *, with_contact_track: bool) -> ET.Element:
    detail = ET.Element("detail")
    if with_contact_track:
        ET.SubElement(detail, "contact", callsign=event.callsign)
        if event.course is not None or event.speed is not None:
            ET.SubElement(
                detail,
                "track",
                course=_number(event.course or 0.0),
                speed=_number(event.speed or 0.0),
            )
    for lon, lat in event.shape:
        ET.SubElement(detail, "link", point=f"{_number(lat)},{_number(lon)}")
    if event.remarks:
        ET.SubElement(detail, "remarks").text = event.remarks
    marking = event.marking
    ET.SubElement(
        detail,
        "marking",
        access=marking.access,
        caveat=marking.caveat,
        releasableTo=",".join(marking.releasable_to),
        origin=marking.origin,
        verification=marking.verification,
    )
    return detail


def to_xml(event: CotEvent) -> bytes:
    """One ``<event>`` element, UTF-8, without an XML declaration (as TAK streams carry them)."""
    root = ET.Element(
        "event",
        version=COT_VERSION,
        uid=event.uid,
        type=event.type,
        how=event.how,
        time=cot_time(event.time),
        start=cot_time(event.start),
        stale=cot_time(event.stale),
        access=event.marking.access,
    )
    ET.SubElement(
        root,
        "point",
        lat=_number(event.lat),
        lon=_number(event.lon),
        hae=_number(event.hae),
        ce=_number(event.ce),
        le=_number(event.le),
    )
    root.append(_detail(event, with_contact_track=True))
    written: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return written


def _millis(value: dt.datetime) -> int:
    return int(value.timestamp() * 1000)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        octet = value & 0x7F
        value >>= 7
        if value:
            out.append(octet | 0x80)
        else:
            out.append(octet)
            return bytes(out)


def to_proto(event: CotEvent) -> bytes:
    """One TAK protocol (version 1) message in stream framing: ``0xbf``, varint length, message."""
    message = TakMessage()
    cot = message.cotEvent
    cot.type = event.type
    cot.access = event.marking.access
    cot.uid = event.uid
    cot.how = event.how
    cot.sendTime = _millis(event.time)
    cot.startTime = _millis(event.start)
    cot.staleTime = _millis(event.stale)
    cot.lat = event.lat
    cot.lon = event.lon
    cot.hae = event.hae
    cot.ce = event.ce
    cot.le = event.le
    cot.detail.contact.callsign = event.callsign
    if event.course is not None or event.speed is not None:
        cot.detail.track.course = event.course or 0.0
        cot.detail.track.speed = event.speed or 0.0
    rest = _detail(event, with_contact_track=False)
    cot.detail.xmlDetail = "".join(ET.tostring(child, encoding="unicode") for child in rest)
    payload: bytes = message.SerializeToString()
    return bytes([PROTO_MAGIC]) + _varint(len(payload)) + payload
