"""AIS as NMEA 0183 sentences (``!AIVDM``/``!AIVDO``, multi-part reassembled) as track updates.

Sentences are read and their payloads decoded with ``pyais``. Position reports (types 1–3, 18,
19, 27; type 9 from SAR aircraft) become updates of the track ``ais:<MMSI>``; static and voyage
data (types 5, 19, 24) are kept per ship so that its later positions carry its name and the
platform its AIS ship type names. Only ship type 55 (law enforcement) names a catalogue class
(``coast_guard``, MIL-STD-2525D 140300 law enforcement vessel); every other type is given as the
source's label and no class. A TAG block's receiver time (``c:``) dates a sentence; otherwise the
reception time does. This module does not open sockets or build observations.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, OrderedDict
from typing import Any, Final, NamedTuple

from pyais.exceptions import AISBaseException, TagBlockNotInitializedException
from pyais.messages import AISSentence, NMEASentenceFactory

from kuroshio.feeds.base import Decoder, Framer, MalformedFrame, TrackUpdate, track_id
from kuroshio.feeds.framing import LineFramer, split_lines

KNOT_MPS: Final = 1852.0 / 3600.0
HIGH_ACCURACY_M: Final = 10.0
"""Position accuracy flag set: better than 10 m (ITU-R M.1371); unset says only "worse"."""
MAX_PENDING_PARTS: Final = 256
"""Multi-part messages waiting for their other parts, per source; the oldest go first."""
PART_TIMEOUT_S: Final = 60.0
"""A multi-part message not completed within this time is given up."""
MAX_SHIPS: Final = 200_000
"""Ships whose static data is kept, per source; the least recently heard go first."""

_POSITION_TYPES: Final = frozenset({1, 2, 3, 18, 19, 27})
_STATIC_TYPES: Final = frozenset({5, 19, 24})
_SHIP_TYPE_CLASS: Final = {55: "coast_guard"}
_SHIP_TYPE_WORDS: Final = {
    30: "fishing", 31: "towing", 32: "towing, large", 33: "dredging or underwater operations",
    34: "diving operations", 35: "military operations", 36: "sailing", 37: "pleasure craft",
    50: "pilot vessel", 51: "search and rescue vessel", 52: "tug", 53: "port tender",
    54: "anti-pollution equipment", 55: "law enforcement", 58: "medical transport",
    59: "noncombatant ship",
}  # fmt: skip
_SHIP_TYPE_DECADES: Final = {
    2: "wing in ground",
    4: "high-speed craft",
    6: "passenger",
    7: "cargo",
    8: "tanker",
    9: "other",
}


def ship_type_platform(code: int) -> tuple[str | None, str | None]:
    """(catalogue class, label) of an AIS ship type; (None, None) when not available (0)."""
    if not 1 <= code <= 99:
        return None, None
    words = _SHIP_TYPE_WORDS.get(code) or _SHIP_TYPE_DECADES.get(code // 10) or "reserved"
    return _SHIP_TYPE_CLASS.get(code), f"AIS ship type {code} ({words})"


class _Ship(NamedTuple):
    name: str | None
    platform_class: str | None
    label: str | None


class AisDecoder(Decoder):
    """NMEA 0183 AIS sentences of one source (one line each)."""

    kind = "ais"

    def __init__(self, skipped: Counter[str]) -> None:
        super().__init__(skipped)
        self._parts: OrderedDict[tuple[Any, ...], tuple[float, list[AISSentence]]] = OrderedDict()
        self._ships: OrderedDict[int, _Ship] = OrderedDict()

    def framer(self) -> Framer:
        return LineFramer()

    def datagram(self, data: bytes) -> list[bytes | MalformedFrame]:
        return split_lines(data)

    def decode(self, frame: bytes, received_at: float) -> list[TrackUpdate]:
        try:
            sentence = NMEASentenceFactory.produce(frame)
        except (AISBaseException, ValueError, TypeError) as error:
            raise MalformedFrame(f"not an AIS sentence: {error}", frame) from None
        if not isinstance(sentence, AISSentence):
            self.skipped["NMEA sentence other than AIS"] += 1
            return []
        if not sentence.is_valid:
            raise MalformedFrame("NMEA checksum does not match", frame)
        at = _tag_block_time(sentence, received_at)
        if sentence.frag_cnt > 1:
            whole = self._assemble(sentence, received_at)
            if whole is None:
                return []
            sentence = whole
        try:
            message = sentence.decode()
        except (AISBaseException, ValueError, TypeError, KeyError) as error:
            raise MalformedFrame(f"AIS payload cannot be decoded: {error}", frame) from None
        return self._updates(message, at)

    def _assemble(self, part: AISSentence, received_at: float) -> AISSentence | None:
        while self._parts:
            key, (first_at, _) = next(iter(self._parts.items()))
            if len(self._parts) < MAX_PENDING_PARTS and received_at - first_at <= PART_TIMEOUT_S:
                break
            del self._parts[key]
            self.skipped["AIS multi-part message never completed"] += 1
        key = (part.seq_id, part.channel, part.frag_cnt)
        first_at, parts = self._parts.setdefault(key, (received_at, []))
        if any(p.frag_num == part.frag_num for p in parts):
            # a repeated part number starts a new message under the same sequence id
            self.skipped["AIS multi-part message never completed"] += 1
            parts.clear()
        parts.append(part)
        if len(parts) < part.frag_cnt:
            return None
        del self._parts[key]
        parts.sort(key=lambda p: p.frag_num)
        return AISSentence.assemble_from_iterable(parts)

    def _updates(self, message: Any, at: float) -> list[TrackUpdate]:
        kind = message.msg_type
        if kind in _STATIC_TYPES:
            self._remember(message)
        if kind == 9:
            return self._position(message, at, air=True)
        if kind in _POSITION_TYPES:
            return self._position(message, at, air=False)
        if kind in _STATIC_TYPES:
            self.skipped["AIS static data (kept for the ship's positions)"] += 1
        else:
            self.skipped[f"AIS message type {kind}"] += 1
        return []

    def _remember(self, message: Any) -> None:
        mmsi: int = message.mmsi
        known = self._ships.pop(mmsi, None) or _Ship(None, None, None)
        name = _text(getattr(message, "shipname", None)) or known.name
        if name is None:
            name = _text(getattr(message, "callsign", None))
        platform_class, label = known.platform_class, known.label
        code = getattr(message, "ship_type", None)
        if code is not None and int(code):
            platform_class, label = ship_type_platform(int(code))
        self._ships[mmsi] = _Ship(name, platform_class, label)
        if len(self._ships) > MAX_SHIPS:
            self._ships.popitem(last=False)

    def _position(self, message: Any, at: float, *, air: bool) -> list[TrackUpdate]:
        lon, lat = float(message.lon), float(message.lat)
        if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
            self.skipped["AIS position not available"] += 1
            return []
        mmsi: int = message.mmsi
        ship = self._ships.get(mmsi)
        if ship is not None:
            self._ships.move_to_end(mmsi)
        speed, course, altitude = _motion(message)
        accurate = bool(getattr(message, "accuracy", False))
        return [
            TrackUpdate(
                track=track_id("ais", f"{mmsi:09d}"),
                kind="air" if air else "sea",
                at=dt.datetime.fromtimestamp(at, dt.UTC),
                lon=lon,
                lat=lat,
                course_deg=course,
                speed_mps=speed,
                altitude_m=altitude,
                platform_class=None if ship is None or air else ship.platform_class,
                label="AIS SAR aircraft" if air else (None if ship is None else ship.label),
                name=None if ship is None else ship.name,
                uncertainty_m=HIGH_ACCURACY_M if accurate else None,
            )
        ]


def _motion(message: Any) -> tuple[float | None, float | None, float | None]:
    """(speed m/s, course degrees, altitude m) with the "not available" values left out."""
    kind = message.msg_type
    knots = float(message.speed)
    course = float(message.course)
    altitude = None
    if kind == 27:  # whole knots and degrees; 63 and 511 are "not available"
        speed = None if knots >= 63 else knots * KNOT_MPS
        course_ok = course < 360
    elif kind == 9:  # whole knots; 1023 not available; altitude in metres, 4095 not available
        speed = None if knots >= 1023 else knots * KNOT_MPS
        course_ok = course < 360
        altitude = None if message.alt >= 4095 else float(message.alt)
    else:  # tenths of a knot; 102.3 not available
        speed = None if knots >= 102.3 else knots * KNOT_MPS
        course_ok = course < 360
    return speed, (course if course_ok else None), altitude


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.replace("@", " ").strip()
    return text or None


def _tag_block_time(sentence: AISSentence, received_at: float) -> float:
    """The TAG block's receiver time (``c:``, seconds or milliseconds since the epoch)."""
    block = sentence.tag_block
    if block is None:
        return received_at
    try:
        block.init()
        if not block.is_valid:  # a damaged TAG block's time is not to be trusted
            return received_at
        stamp = block.receiver_timestamp
    except (TagBlockNotInitializedException, ValueError):
        return received_at
    if not stamp or not stamp.isdigit():
        return received_at
    value = float(stamp)
    return value / 1000.0 if value > 1e11 else value
