"""Cursor-on-Target from TAK clients, as XML events or TAK protocol (protobuf), as track updates.

An atom event (``a-…``) of the air, sea-surface or subsurface dimension becomes an update of the
track ``cot:<uid>``: its point, ``detail/track`` speed and course, ``detail/contact`` callsign.
The CoT type (MIL-STD-2525 function letters) names a catalogue class only where it names one of
the catalogue's kinds exactly (``a-h-A-M-F-F`` fighter, ``a-h-S-C-L-D-D`` destroyer, …; a
2525B "frigate/corvette" names neither); its affiliation gives the standard identity of the
MIL-STD-2525D code. Ground units, tasks, chats and pings are counted as skipped. TAK protobuf is
read with ``takproto``'s message types, in both its stream (``0xbf``, length) and mesh
(``0xbf 0x01 0xbf``) headers. XML with a DOCTYPE or entity declaration is refused unread. This
module does not open sockets or build observations.
"""

from __future__ import annotations

import datetime as dt
import math
import xml.etree.ElementTree as ET
from typing import Final, NamedTuple

from google.protobuf.message import DecodeError
from takproto.proto import TakMessage

from kuroshio.catalogue import (
    UNSPECIFIED_ENTITY,
    Context,
    StandardIdentity,
    class_symbol_code,
    symbol_code,
)
from kuroshio.feeds.base import Decoder, Framer, MalformedFrame, TrackUpdate, track_id

MAX_EVENT_BYTES: Final = 64 * 1024
"""Largest CoT event accepted; a position report is well under 2 KiB."""
UNKNOWN: Final = 9_999_999.0
"""CoT's "not known" for height and errors."""
PROTO_MAGIC: Final = 0xBF
MESH_HEADER: Final = b"\xbf\x01\xbf"

# MIL-STD-2525 function letters after the dimension, longest match wins. Only kinds the catalogue
# has are named; a role outside it (trainer, patrol, hospital ship …) is "other" of its domain,
# and a bare frame (a-h-A, a-h-A-M-F) names no class at all.
_FUNCTION_CLASS: Final[dict[str, str | None]] = {
    "A-M-F-F": "fighter", "A-M-F-B": "bomber", "A-M-F-R-W": "aew", "A-M-F-R": "recon",
    "A-M-F-J": "ew", "A-M-F-K": "tanker", "A-M-F-C": "transport", "A-M-F-S": "asw",
    "A-M-F-Q": "uav", "A-M-H-Q": "uav", "A-C-F-q": "uav", "A-M-H": "helicopter",
    "A-C-H": "helicopter",
    "A-M-F-A": "other_aircraft", "A-M-F-D": "other_aircraft", "A-M-F-g": "other_aircraft",
    "A-M-F-H": "other_aircraft", "A-M-F-L": "other_aircraft", "A-M-F-M": "other_aircraft",
    "A-M-F-O": "other_aircraft", "A-M-F-P": "other_aircraft", "A-M-F-T": "other_aircraft",
    "A-M-F-U": "other_aircraft", "A-M-F-Y": "other_aircraft", "A-M-L": "other_aircraft",
    "S-C-L-C-V": "carrier", "S-C-L-C-C": "cruiser", "S-C-L-D-D": "destroyer",
    "S-C-A": "amphibious", "S-N-R": "replenishment", "S-N-I": "intelligence",
    "S-X-L": "coast_guard", "U-S": "submarine",
    "S-C-L-B-B": "other_vessel", "S-C-M": "other_vessel", "S-C-P": "other_vessel",
    "S-C-H": "other_vessel", "S-N-F": "other_vessel", "S-N-H": "other_vessel",
    "S-N-M": "other_vessel", "S-N-N": "other_vessel", "S-N-S": "other_vessel",
    "S-S": "other_vessel",
    # under a classed prefix but not of that class: unmanned underwater vehicle, other submersible
    "U-S-U": None, "U-S-O": None,
}  # fmt: skip
_DIMENSIONS: Final = {"A": ("air", "01"), "S": ("sea", "30"), "U": ("sea", "35")}
_AFFILIATION: Final[dict[str, tuple[StandardIdentity, Context]]] = {
    "p": ("pending", "reality"), "u": ("unknown", "reality"), "a": ("assumed_friend", "reality"),
    "f": ("friend", "reality"), "n": ("neutral", "reality"), "s": ("suspect", "reality"),
    "h": ("hostile", "reality"), "j": ("suspect", "exercise"), "k": ("hostile", "exercise"),
}  # fmt: skip


class CotPlatform(NamedTuple):
    """What a CoT type says: the domain, a catalogue class if it names one, the 2525D code."""

    kind: str
    platform_class: str | None
    sidc: str


def cot_platform(cot_type: str) -> CotPlatform | None:
    """Read an atom type such as ``a-h-A-M-F-F``; None for anything that is not an air,
    sea-surface or subsurface atom."""
    parts = cot_type.split("-")
    if len(parts) < 3 or parts[0] != "a" or parts[2] not in _DIMENSIONS:
        return None
    kind, symbol_set = _DIMENSIONS[parts[2]]
    identity, context = _AFFILIATION.get(parts[1], ("unknown", "reality"))
    function = parts[2:]
    platform_class = None
    for n in range(len(function), 1, -1):
        key = "-".join(function[:n])
        if key in _FUNCTION_CLASS:
            platform_class = _FUNCTION_CLASS[key]
            break
    if platform_class is None:
        sidc = symbol_code(symbol_set, UNSPECIFIED_ENTITY, identity, context=context)
    else:
        sidc = class_symbol_code(platform_class, identity, context=context)
    return CotPlatform(kind, platform_class, sidc)


# --- framing -----------------------------------------------------------------------------------


def _varint(buffer: bytes, pos: int) -> tuple[int, int] | None:
    """(value, position after it) of a protobuf varint; None when the buffer ends inside it."""
    value = shift = 0
    while pos < len(buffer):
        octet = buffer[pos]
        value |= (octet & 0x7F) << shift
        pos += 1
        if not octet & 0x80:
            return value, pos
        shift += 7
        if shift > 35:
            raise MalformedFrame("TAK protocol length is not a varint", buffer[pos - 5 : pos])
    return None


class CotFramer(Framer):
    """CoT events from a TAK client's stream: XML ``<event>…</event>`` and TAK protocol
    messages (``0xbf``, varint length, protobuf), in any mix."""

    def __init__(self) -> None:
        self._rest = b""

    def push(self, data: bytes) -> list[bytes | MalformedFrame]:
        buffer = self._rest + data
        out: list[bytes | MalformedFrame] = []
        pos = 0
        while pos < len(buffer):
            if buffer[pos] in b" \t\r\n\x00":
                pos += 1
                continue
            if buffer[pos] == PROTO_MAGIC:
                step = self._proto(buffer, pos, out)
            elif buffer.startswith(b"<?xml", pos):
                end = buffer.find(b"?>", pos)
                step = None if end < 0 else end + 2
            elif buffer.startswith(b"<event", pos):
                step = self._xml(buffer, pos, out)
            elif len(buffer) - pos < 6 and b"<event".startswith(buffer[pos:]):
                step = None  # the start of an event tag, cut by the read
            else:
                step = self._garbage(buffer, pos, out)
            if step is None:
                if len(buffer) - pos > MAX_EVENT_BYTES:
                    out.append(MalformedFrame("CoT event longer than 64 KiB", buffer[pos:]))
                    pos = len(buffer)
                break
            pos = step
        self._rest = buffer[pos:]
        return out

    @staticmethod
    def _proto(buffer: bytes, pos: int, out: list[bytes | MalformedFrame]) -> int | None:
        try:
            read = _varint(buffer, pos + 1)
        except MalformedFrame as error:
            out.append(error)
            return pos + 1
        if read is None:
            return None
        length, start = read
        if length > MAX_EVENT_BYTES:
            out.append(MalformedFrame(f"TAK protocol message of {length} bytes", buffer[pos:]))
            return start
        if len(buffer) < start + length:
            return None
        out.append(buffer[pos : start + length])
        return start + length

    @staticmethod
    def _xml(buffer: bytes, pos: int, out: list[bytes | MalformedFrame]) -> int | None:
        close = buffer.find(b">", pos)
        if close < 0:
            return None
        if buffer[close - 1] == ord("/"):
            out.append(buffer[pos : close + 1])
            return close + 1
        end = buffer.find(b"</event>", close)
        if end < 0:
            return None
        out.append(buffer[pos : end + 8])
        return end + 8

    @staticmethod
    def _garbage(buffer: bytes, pos: int, out: list[bytes | MalformedFrame]) -> int:
        starts = [i for i in (buffer.find(b"<", pos + 1), buffer.find(b"\xbf", pos + 1)) if i > 0]
        end = min(starts) if starts else len(buffer)
        out.append(MalformedFrame("bytes that start no CoT event", buffer[pos:end]))
        return end


# --- decoding ------------------------------------------------------------------------------------


class _Event(NamedTuple):
    uid: str
    type: str
    at: float
    lat: float
    lon: float
    hae: float
    ce: float
    speed: float | None
    course: float | None
    callsign: str | None


class CotDecoder(Decoder):
    """CoT events of one TAK client (one connection) or of one datagram sender."""

    kind = "cot"

    def framer(self) -> Framer:
        return CotFramer()

    def datagram(self, data: bytes) -> list[bytes | MalformedFrame]:
        return [data]

    def decode(self, frame: bytes, received_at: float) -> list[TrackUpdate]:
        if frame[:1] == bytes([PROTO_MAGIC]):
            event = _from_proto(frame, received_at)
        else:
            event = _from_xml(frame, received_at)
        if event is None:
            self.skipped["CoT event without a point"] += 1
            return []
        platform = cot_platform(event.type)
        if platform is None:
            self.skipped[f"CoT type {_type_family(event.type)}"] += 1
            return []
        if not (-90.0 <= event.lat <= 90.0 and -180.0 <= event.lon <= 180.0):
            raise MalformedFrame(f"CoT point {event.lat}, {event.lon} out of range", frame)
        return [
            TrackUpdate(
                track=track_id("cot", event.uid),
                kind="air" if platform.kind == "air" else "sea",
                at=dt.datetime.fromtimestamp(event.at, dt.UTC),
                lon=event.lon,
                lat=event.lat,
                course_deg=event.course,
                speed_mps=event.speed,
                altitude_m=None if event.hae >= UNKNOWN else event.hae,
                platform_class=platform.platform_class,
                label=f"CoT {event.type}",
                sidc=platform.sidc,
                name=event.callsign,
                uncertainty_m=None if event.ce >= UNKNOWN or event.ce <= 0 else event.ce,
            )
        ]


def _type_family(cot_type: str) -> str:
    """A type cut to what says which kind of event it is (``a-f-G``, ``t-x-c``), for counting."""
    return "-".join(cot_type.split("-")[:3])[:16] or "(none)"


def _number(text: str | None, name: str, frame: bytes) -> float:
    try:
        value = float(text if text is not None else "nan")
    except ValueError:
        raise MalformedFrame(f"CoT {name} {text!r} is not a number", frame) from None
    if not math.isfinite(value):
        raise MalformedFrame(f"CoT {name} is missing or not finite", frame)
    return value


def _optional(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _from_xml(frame: bytes, received_at: float) -> _Event | None:
    if b"<!DOCTYPE" in frame or b"<!ENTITY" in frame:
        raise MalformedFrame("CoT XML with a DOCTYPE or entity declaration", frame)
    try:
        event = ET.fromstring(frame)
    except ET.ParseError as error:
        raise MalformedFrame(f"CoT XML is not well formed: {error}", frame) from None
    if event.tag != "event":
        raise MalformedFrame(f"CoT root element is <{event.tag}>, not <event>", frame)
    uid, cot_type = event.get("uid"), event.get("type")
    if not uid or not cot_type:
        raise MalformedFrame("CoT event without uid or type", frame)
    point = event.find("point")
    if point is None:
        return None
    track = event.find("detail/track")
    contact = event.find("detail/contact")
    callsign = None if contact is None else contact.get("callsign")
    return _Event(
        uid=uid,
        type=cot_type,
        at=_xml_time(event.get("time"), received_at, frame),
        lat=_number(point.get("lat"), "lat", frame),
        lon=_number(point.get("lon"), "lon", frame),
        hae=_height(point.get("hae")),
        ce=_optional(point.get("ce")) or UNKNOWN,
        speed=None if track is None else _optional(track.get("speed")),
        course=None if track is None else _course(_optional(track.get("course"))),
        callsign=callsign.strip() or None if callsign else None,
    )


def _height(text: str | None) -> float:
    """Height above the ellipsoid (may be negative); :data:`UNKNOWN` when not given."""
    try:
        value = float(text) if text is not None else UNKNOWN
    except ValueError:
        return UNKNOWN
    return value if math.isfinite(value) else UNKNOWN


def _course(value: float | None) -> float | None:
    return None if value is None else value % 360.0


def _xml_time(text: str | None, received_at: float, frame: bytes) -> float:
    if not text:
        return received_at
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise MalformedFrame(f"CoT time {text[:40]!r} is not ISO 8601", frame) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)  # CoT times are UTC
    return value.timestamp()


def _from_proto(frame: bytes, received_at: float) -> _Event | None:
    if frame.startswith(MESH_HEADER):
        payload = frame[3:]
    else:
        read = _varint(frame, 1)
        if read is None or read[1] + read[0] != len(frame):
            raise MalformedFrame("TAK protocol length does not match the message", frame)
        payload = frame[read[1] :]
    message = TakMessage()
    try:
        message.ParseFromString(payload)
    except DecodeError as error:
        raise MalformedFrame(f"TAK protocol message cannot be parsed: {error}", frame) from None
    if not message.HasField("cotEvent"):
        return None
    event = message.cotEvent
    if not event.uid or not event.type:
        raise MalformedFrame("TAK protocol event without uid or type", frame)
    detail = event.detail
    has_track = detail.HasField("track")
    return _Event(
        uid=event.uid,
        type=event.type,
        at=event.sendTime / 1000.0 if event.sendTime else received_at,
        lat=event.lat,
        lon=event.lon,
        hae=event.hae,
        ce=event.ce if event.ce > 0 else UNKNOWN,
        speed=detail.track.speed if has_track and detail.track.speed >= 0 else None,
        course=_course(detail.track.course) if has_track else None,
        callsign=detail.contact.callsign.strip() or None if detail.HasField("contact") else None,
    )
