"""ADS-B as track updates: SBS-1 (BaseStation) text lines and Mode-S Beast binary frames.

Both give updates of the track ``icao:<24-bit address>`` when an aircraft's position arrives,
with the latest velocity, altitude and flight identity the same source gave for it. Beast frames
are cut here (escape-framed: ``0x1a``, type, 48-bit timestamp, signal, message) and their Mode S
messages decoded with ``pyModeS`` (``PipeDecoder``: airborne positions from even/odd CPR pairs,
then locally), so an aircraft's first position comes a few messages after it is first heard.
The emitter category names a class only where it names a kind of aircraft the catalogue has
(A7 rotorcraft: ``helicopter``; B6 unmanned: ``uav``); SBS carries none. Both are dated by
reception time: SBS times are the receiving computer's local clock, Beast's a free-running
counter. This module does not open sockets or build observations.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, OrderedDict
from typing import Any, Final

from pyModeS import DecodeError, PipeDecoder

from kuroshio.feeds.base import Decoder, Framer, MalformedFrame, TrackUpdate
from kuroshio.feeds.framing import LineFramer, split_lines

FOOT_M: Final = 0.3048
KNOT_MPS: Final = 1852.0 / 3600.0
VELOCITY_MAX_AGE_S: Final = 10.0
"""An aircraft's last velocity is given with its position for this long."""
MAX_AIRCRAFT: Final = 50_000
"""Aircraft whose identity and velocity are kept, per source; the least recently heard go first."""

_EMITTER_WORDS: Final = {
    "A1": "light", "A2": "small", "A3": "large", "A4": "high-vortex large", "A5": "heavy",
    "A6": "high performance", "A7": "rotorcraft", "B1": "glider", "B2": "lighter than air",
    "B3": "parachutist", "B4": "ultralight", "B6": "unmanned aerial vehicle",
    "B7": "space vehicle", "C1": "surface emergency vehicle", "C2": "surface service vehicle",
    "C3": "point obstacle", "C4": "cluster obstacle", "C5": "line obstacle",
}  # fmt: skip
_EMITTER_CLASS: Final = {"A7": "helicopter", "B6": "uav"}


def emitter_platform(category: str) -> tuple[str | None, str | None]:
    """(catalogue class, label) of an ADS-B emitter category such as ``A7``."""
    words = _EMITTER_WORDS.get(category)
    if words is None:
        return None, None
    return _EMITTER_CLASS.get(category), f"ADS-B emitter category {category} ({words})"


class _Aircraft:
    __slots__ = ("altitude_m", "category", "course", "heard", "name", "speed")

    def __init__(self) -> None:
        self.name: str | None = None
        self.category: str | None = None
        self.altitude_m: float | None = None
        self.speed: float | None = None
        self.course: float | None = None
        self.heard = float("-inf")
        """When the velocity was last heard."""


class _Fleet:
    """What one source said lately about each aircraft it hears."""

    def __init__(self) -> None:
        self._aircraft: OrderedDict[str, _Aircraft] = OrderedDict()

    def get(self, icao: str) -> _Aircraft:
        aircraft = self._aircraft.pop(icao, None) or _Aircraft()
        self._aircraft[icao] = aircraft
        if len(self._aircraft) > MAX_AIRCRAFT:
            self._aircraft.popitem(last=False)
        return aircraft

    def update(
        self, icao: str, aircraft: _Aircraft, at: float, lon: float, lat: float
    ) -> TrackUpdate:
        fresh = at - aircraft.heard <= VELOCITY_MAX_AGE_S
        platform_class, label = emitter_platform(aircraft.category or "")
        return TrackUpdate(
            track=f"icao:{icao}",
            kind="air",
            at=dt.datetime.fromtimestamp(at, dt.UTC),
            lon=lon,
            lat=lat,
            course_deg=aircraft.course if fresh else None,
            speed_mps=aircraft.speed if fresh else None,
            altitude_m=aircraft.altitude_m,
            platform_class=platform_class,
            label=label,
            name=aircraft.name,
        )


def _icao(text: str) -> str | None:
    text = text.strip().upper()
    if len(text) != 6:
        return None
    try:
        int(text, 16)
    except ValueError:
        return None
    return text


# --- SBS-1 -------------------------------------------------------------------------------------

_SBS_FIELDS: Final = 22


class SbsDecoder(Decoder):
    """SBS-1 BaseStation lines (``MSG,3,…``); an update for each airborne or surface position."""

    kind = "sbs"

    def __init__(self, skipped: Counter[str]) -> None:
        super().__init__(skipped)
        self._fleet = _Fleet()

    def framer(self) -> Framer:
        return LineFramer()

    def datagram(self, data: bytes) -> list[bytes | MalformedFrame]:
        return split_lines(data)

    def decode(self, frame: bytes, received_at: float) -> list[TrackUpdate]:
        try:
            fields = frame.decode("ascii").split(",")
        except UnicodeDecodeError:
            raise MalformedFrame("SBS line is not ASCII", frame) from None
        if fields[0] != "MSG":
            if fields[0] in ("SEL", "ID", "AIR", "STA", "CLK"):
                self.skipped[f"SBS {fields[0]} message"] += 1
                return []
            raise MalformedFrame(f"SBS line starts with {fields[0][:8]!r}, not MSG", frame)
        if len(fields) < _SBS_FIELDS:
            raise MalformedFrame(f"SBS line has {len(fields)} fields, not {_SBS_FIELDS}", frame)
        icao = _icao(fields[4])
        if icao is None:
            raise MalformedFrame(f"SBS hex ident {fields[4][:8]!r} is not 24 bits", frame)
        try:
            return self._message(fields, icao, received_at)
        except ValueError as error:
            raise MalformedFrame(f"SBS field cannot be read: {error}", frame) from None

    def _message(self, fields: list[str], icao: str, at: float) -> list[TrackUpdate]:
        aircraft = self._fleet.get(icao)
        callsign = fields[10].strip()
        if callsign:
            aircraft.name = callsign
        if fields[11].strip():
            aircraft.altitude_m = float(fields[11]) * FOOT_M
        if fields[12].strip() and fields[13].strip():
            aircraft.speed = float(fields[12]) * KNOT_MPS
            aircraft.course = float(fields[13]) % 360.0
            aircraft.heard = at
        if not (fields[14].strip() and fields[15].strip()):
            self.skipped[f"SBS MSG,{fields[1]} without a position"] += 1
            return []
        lat, lon = float(fields[14]), float(fields[15])
        if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
            raise ValueError(f"position {lat}, {lon} out of range")
        return [self._fleet.update(icao, aircraft, at, lon, lat)]


# --- Mode-S Beast ----------------------------------------------------------------------------

ESCAPE: Final = 0x1A
_BEAST_LENGTHS: Final = {0x31: 2, 0x32: 7, 0x33: 14}
"""Message bytes after the 6-byte timestamp and the signal byte: Mode A/C, Mode S short, long."""
_BEAST_HEADER: Final = 7


class BeastFramer(Framer):
    """Beast frames: ``0x1a``, type (``1``, ``2``, ``3``), timestamp, signal, message, with
    every ``0x1a`` inside a frame doubled. A frame is given as its type byte and unescaped body."""

    def __init__(self) -> None:
        self._rest = b""

    def push(self, data: bytes) -> list[bytes | MalformedFrame]:
        buffer = self._rest + data
        out: list[bytes | MalformedFrame] = []
        pos = 0
        while True:
            start = buffer.find(ESCAPE, pos)
            if start < 0:
                if pos < len(buffer):
                    out.append(MalformedFrame("bytes outside any Beast frame", buffer[pos:]))
                pos = len(buffer)
                break
            if start > pos:
                out.append(MalformedFrame("bytes outside any Beast frame", buffer[pos:start]))
            if start + 1 >= len(buffer):
                pos = start
                break
            kind = buffer[start + 1]
            length = _BEAST_LENGTHS.get(kind)
            if length is None:
                out.append(MalformedFrame(f"Beast frame type 0x{kind:02x}", buffer[start:]))
                pos = start + 2 if kind == ESCAPE else start + 1
                continue
            body, end = _unescape(buffer, start + 2, _BEAST_HEADER + length)
            if body is None:
                if end < 0:
                    pos = start  # incomplete: wait for more bytes
                    break
                out.append(MalformedFrame("Beast frame cut short", buffer[start:end]))
                pos = end
                continue
            out.append(bytes([kind]) + body)
            pos = end
        self._rest = buffer[pos:]
        return out


def _unescape(buffer: bytes, pos: int, count: int) -> tuple[bytes | None, int]:
    """(``count`` unescaped bytes from ``pos``, where they end); (None, -1) when the buffer ends
    first; (None, where the next frame starts) when a lone ``0x1a`` cuts the frame short."""
    body = bytearray()
    size = len(buffer)
    while len(body) < count:
        if pos >= size:
            return None, -1
        octet = buffer[pos]
        if octet == ESCAPE:
            if pos + 1 >= size:
                return None, -1
            if buffer[pos + 1] != ESCAPE:
                return None, pos
            pos += 1
        body.append(octet)
        pos += 1
    return bytes(body), pos


class BeastDecoder(Decoder):
    """Mode-S Beast binary from one receiver (dump1090, readsb: port 30005)."""

    kind = "beast"

    def __init__(self, skipped: Counter[str]) -> None:
        super().__init__(skipped)
        self._pipe = PipeDecoder()
        self._fleet = _Fleet()

    def framer(self) -> Framer:
        return BeastFramer()

    def datagram(self, data: bytes) -> list[bytes | MalformedFrame]:
        return BeastFramer().push(data)

    def decode(self, frame: bytes, received_at: float) -> list[TrackUpdate]:
        if len(frame) < 1 + _BEAST_HEADER or frame[0] not in _BEAST_LENGTHS:
            raise MalformedFrame("not a Beast frame", frame)
        if frame[0] == 0x31:
            self.skipped["Mode A/C reply"] += 1
            return []
        message = frame[1 + _BEAST_HEADER :].hex().upper()
        try:
            decoded: dict[str, Any] = dict(self._pipe.decode(message, timestamp=received_at))
        except DecodeError as error:
            raise MalformedFrame(f"Mode S message cannot be decoded: {error}", frame) from None
        if "error" in decoded:
            raise MalformedFrame(f"Mode S message cannot be decoded: {decoded['error']}", frame)
        df = decoded.get("df")
        if df not in (17, 18):
            self.skipped[f"Mode S DF{df}"] += 1
            return []
        icao = decoded.get("icao")
        if not decoded.get("crc_valid") or not isinstance(icao, str):
            self.skipped["ADS-B message failing its parity check"] += 1
            return []
        return self._extended_squitter(icao.upper(), decoded, received_at)

    def _extended_squitter(
        self, icao: str, decoded: dict[str, Any], at: float
    ) -> list[TrackUpdate]:
        aircraft = self._fleet.get(icao)
        typecode = decoded.get("typecode")
        if isinstance(typecode, int) and 1 <= typecode <= 4:
            category = decoded.get("category")
            if isinstance(category, int) and category > 0:
                aircraft.category = f"{'DCBA'[typecode - 1]}{category}"
            callsign = decoded.get("callsign")
            if isinstance(callsign, str) and callsign.strip("_ "):
                aircraft.name = callsign.strip("_ ")
        altitude = decoded.get("altitude")
        if isinstance(altitude, int | float):
            aircraft.altitude_m = float(altitude) * FOOT_M
        speed, track = decoded.get("groundspeed"), decoded.get("track")
        if isinstance(speed, int | float) and isinstance(track, int | float):
            aircraft.speed = float(speed) * KNOT_MPS
            aircraft.course = float(track) % 360.0
            aircraft.heard = at
        lat, lon = decoded.get("latitude"), decoded.get("longitude")
        if not isinstance(lat, float | int) or not isinstance(lon, float | int):
            self.skipped[f"ADS-B type code {typecode} without a position"] += 1
            return []
        return [self._fleet.update(icao, aircraft, at, float(lon), float(lat))]
