"""What sources send, written: ASTERIX CAT062 data blocks, AIS sentences, Cursor-on-Target events.

The demo's simulated radar, coast station and TAK client, the feed benchmark and the tests send
these over real sockets to a node's feeds. CAT062 is written by the item formats
:mod:`kuroshio.feeds.asterix` reads (edition 1.18: I010, I070, I105, I185, I040, I080, I136,
I390 type of aircraft); AIS with ``pyais``'s own encoder, dated by a TAG block; CoT as the XML a
TAK client sends. Nothing here opens a socket.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Final, NamedTuple
from xml.sax.saxutils import quoteattr

from pyais import encode_dict
from pyais.messages import TagBlock

from kuroshio.feeds.asterix import FOOT_M

_WGS84_UNITS: Final = 2**25 / 180.0
KNOT_MPS: Final = 1852.0 / 3600.0


class SystemTrack(NamedTuple):
    """One CAT062 system track update, as a tracker would send it."""

    number: int
    """Track number (I040), 0–65535."""
    at: dt.datetime
    lon: float
    lat: float
    course_deg: float | None = None
    speed_mps: float | None = None
    altitude_m: float | None = None
    aircraft_type: str | None = None
    """ICAO type designator (I390 type of aircraft), at most 4 characters."""
    final: bool = False


def cat062_block(sac: int, sic: int, tracks: list[SystemTrack]) -> bytes:
    """One CAT062 data block holding one record per track."""
    body = b"".join(_cat062_record(sac, sic, track) for track in tracks)
    return bytes((62,)) + (3 + len(body)).to_bytes(2, "big") + body


def _cat062_record(sac: int, sic: int, track: SystemTrack) -> bytes:
    fspec = [0x80 | 0x10 | 0x08, 0x08 | 0x04, 0x00]  # I010 I070 I105 | I040 I080
    items = [bytes((sac, sic))]
    seconds = track.at.astimezone(dt.UTC)
    midnight = seconds.replace(hour=0, minute=0, second=0, microsecond=0)
    time_of_day = round((seconds - midnight).total_seconds() * 128) % (86_400 * 128)
    items.append(time_of_day.to_bytes(3, "big"))
    items.append(
        round(track.lat * _WGS84_UNITS).to_bytes(4, "big", signed=True)
        + round(track.lon * _WGS84_UNITS).to_bytes(4, "big", signed=True)
    )
    if track.course_deg is not None and track.speed_mps is not None:
        fspec[0] |= 0x02  # I185
        course = math.radians(track.course_deg)
        east = round(track.speed_mps * math.sin(course) / 0.25)
        north = round(track.speed_mps * math.cos(course) / 0.25)
        items.append(east.to_bytes(2, "big", signed=True) + north.to_bytes(2, "big", signed=True))
    items.append(track.number.to_bytes(2, "big"))
    items.append(b"\x01\x40" if track.final else b"\x00")  # I080: TSE marks the track's end
    if track.altitude_m is not None:
        fspec[2] |= 0x20  # I136 measured flight level, in quarters of a flight level
        items.append(round(track.altitude_m / (25 * FOOT_M)).to_bytes(2, "big", signed=True))
    if track.aircraft_type:
        fspec[2] |= 0x02  # I390 with its type-of-aircraft subfield
        items.append(b"\x08" + track.aircraft_type.encode("ascii")[:4].ljust(4))
    fspec[0] |= 0x01  # FX: the second octet follows, and the third when it announces anything
    if fspec[2]:
        fspec[1] |= 0x01
    else:
        fspec.pop()
    return bytes(fspec) + b"".join(items)


def ais_position(
    mmsi: int,
    at: dt.datetime,
    lon: float,
    lat: float,
    *,
    course_deg: float | None = None,
    speed_mps: float | None = None,
) -> list[bytes]:
    """A class A position report (type 1) as NMEA lines, dated by a TAG block."""
    data: dict[str, str | int | float | bytes | bool] = {
        "type": 1,
        "mmsi": mmsi,
        "lon": lon,
        "lat": lat,
    }
    if course_deg is not None:
        data["course"] = round(course_deg % 360.0, 1)
        data["heading"] = round(course_deg) % 360
    if speed_mps is not None:
        data["speed"] = round(speed_mps / KNOT_MPS, 1)
    return _dated(encode_dict(data, talker_id="AI", sentence_type="VDM"), at)


def ais_static(
    mmsi: int, at: dt.datetime, *, name: str, ship_type: int, callsign: str = ""
) -> list[bytes]:
    """Static and voyage data (type 5, two sentences): name and AIS ship type."""
    data: dict[str, str | int | float | bytes | bool] = {
        "type": 5,
        "mmsi": mmsi,
        "shipname": name,
        "ship_type": ship_type,
        "callsign": callsign,
    }
    return _dated(encode_dict(data, talker_id="AI", sentence_type="VDM", seq_id=1), at)


def _dated(lines: list[str], at: dt.datetime) -> list[bytes]:
    fields: dict[str, object] = {
        "receiver_timestamp": str(int(at.timestamp())),
        "source_station": "DEMO",
    }
    tag = TagBlock.create(**fields)  # type: ignore[arg-type]
    return [b"\\" + tag + b"\\" + line.encode() + b"\r\n" for line in lines]


def cot_event(
    uid: str,
    cot_type: str,
    at: dt.datetime,
    lon: float,
    lat: float,
    *,
    course_deg: float | None = None,
    speed_mps: float | None = None,
    callsign: str | None = None,
    stale_s: float = 300.0,
    ce_m: float = 9_999_999.0,
) -> bytes:
    """A CoT XML event as a TAK client sends it (one position report of ``uid``)."""
    when = at.astimezone(dt.UTC)
    stale = when + dt.timedelta(seconds=stale_s)
    track = ""
    if course_deg is not None or speed_mps is not None:
        track = (
            f'<track course="{(course_deg or 0.0) % 360.0:.1f}" speed="{speed_mps or 0.0:.1f}"/>'
        )
    contact = f"<contact callsign={quoteattr(callsign)}/>" if callsign else ""
    return (
        f'<event version="2.0" uid={quoteattr(uid)} type={quoteattr(cot_type)} how="m-g"'
        f' time="{_cot_time(when)}" start="{_cot_time(when)}" stale="{_cot_time(stale)}">'
        f'<point lat="{lat:.6f}" lon="{lon:.6f}" hae="0" ce="{ce_m:g}" le="9999999"/>'
        f"<detail>{track}{contact}</detail></event>"
    ).encode()


def _cot_time(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


__all__ = ["SystemTrack", "ais_position", "ais_static", "cat062_block", "cot_event"]
