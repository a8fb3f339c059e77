"""The demo's sensors, as the systems a watch centre runs would send them to its node's feeds.

Taiwan's air-defence radar picture comes as ASTERIX CAT062 system tracks over UDP, one track per
aircraft (a formation of four J-16s is four tracks); Taiwan's navy reports the ships it watches
from a TAK client as Cursor-on-Target over TCP; Japan's coast guard sees the ships through AIS
over UDP and its air defence the aircraft as CAT062 too. Each party sends only what its sensors
cover (:data:`~kuroshio.demo.scenario.COVERAGE`). Deterministic for a seed; the bytes are written
by :mod:`kuroshio.feeds.writers`, sent by the demo over real sockets.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import Final, NamedTuple

from kuroshio.demo.scenario import COVERAGE, SORTIES, Plot, Sortie, plots
from kuroshio.feeds.writers import SystemTrack, ais_position, ais_static, cat062_block, cot_event
from kuroshio.geo.shapes import GEOD


class DemoFeed(NamedTuple):
    """A feed of a demo node: its name, kind, transport and what it carries."""

    name: str
    kind: str
    scheme: str
    carries: str


FEEDS: Final[dict[str, tuple[DemoFeed, ...]]] = {
    "TWN": (
        DemoFeed("radar", "asterix", "udp", "air"),
        DemoFeed("navy-tak", "cot", "tcp", "sea"),
    ),
    "JPN": (
        DemoFeed("radar", "asterix", "udp", "air"),
        DemoFeed("coast-ais", "ais", "udp", "sea"),
    ),
}
"""The feeds of each demo party."""
DATA_SOURCE: Final = {"TWN": (25, 100), "JPN": (70, 1)}
"""SAC/SIC of each party's air-defence tracker."""
WINGMAN_SPACING_M: Final = 2_000.0
AIR_ERROR_M: Final = 300.0
SEA_ERROR_M: Final = 100.0
_COT_TYPES: Final = {"carrier": "a-h-S-C-L-C-V", "survey": "a-h-S-N"}
"""What the TAK operator marks each ship as (a survey ship has no class of its own in CoT)."""
_AIS_SHIP_TYPE: Final = 35
"""Military operations."""


class Message(NamedTuple):
    """Bytes a demo sensor sends to one of its node's feeds at one moment of the scenario."""

    at: dt.datetime
    party: str
    feed: str
    data: bytes


def messages(party: str, start: dt.datetime, *, seed: int = 7) -> list[Message]:
    """Everything ``party``'s sensors send during the scenario starting at ``start``, in time
    order."""
    if party not in FEEDS:
        return []
    rng = random.Random(f"{seed}:{party}:feeds")
    seen = [plot for plot in plots(start) if _covered(plot, party)]
    out: list[Message] = []
    radar = [plot for plot in seen if plot.sortie.kind == "air"]
    out += _radar(party, radar, rng)
    ships = [plot for plot in seen if plot.sortie.kind == "sea"]
    out += _tak(party, ships, rng) if party == "TWN" else _ais(party, ships, rng)
    out.sort(key=lambda m: (m.at, m.feed))
    return out


def _covered(plot: Plot, party: str) -> bool:
    min_lon, min_lat, max_lon, max_lat = COVERAGE[party]
    return min_lon <= plot.lon <= max_lon and min_lat <= plot.lat <= max_lat


def _jitter(lon: float, lat: float, error_m: float, rng: random.Random) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(lon, lat, rng.uniform(0, 360), abs(rng.gauss(0, error_m)))
    return lon, lat


def _number(sortie: Sortie) -> int:
    return SORTIES.index(sortie) + 1


def _radar(party: str, radar: Sequence[Plot], rng: random.Random) -> list[Message]:
    sac, sic = DATA_SOURCE[party]
    by_time: dict[dt.datetime, list[SystemTrack]] = {}
    for plot in radar:
        sortie = plot.sortie
        for member in range(sortie.count):
            offset = (member - (sortie.count - 1) / 2) * WINGMAN_SPACING_M
            lon, lat, _ = GEOD.fwd(plot.lon, plot.lat, plot.course_deg + 90.0, offset)
            lon, lat = _jitter(lon, lat, AIR_ERROR_M, rng)
            by_time.setdefault(plot.at, []).append(
                SystemTrack(
                    number=_number(sortie) * 100 + member,
                    at=plot.at,
                    lon=lon,
                    lat=lat,
                    course_deg=plot.course_deg,
                    speed_mps=sortie.speed_mps,
                    altitude_m=sortie.altitude_m,
                    aircraft_type=sortie.type.replace("-", "")[:4],
                )
            )
    return [
        Message(at, party, "radar", cat062_block(sac, sic, tracks))
        for at, tracks in sorted(by_time.items())
    ]


def _tak(party: str, ships: Sequence[Plot], rng: random.Random) -> list[Message]:
    out: list[Message] = []
    for plot in ships:
        sortie = plot.sortie
        lon, lat = _jitter(plot.lon, plot.lat, SEA_ERROR_M, rng)
        event = cot_event(
            f"{party}-NAVY.{sortie.name}",
            _COT_TYPES.get(sortie.platform_class, "a-h-S"),
            plot.at,
            lon,
            lat,
            course_deg=plot.course_deg,
            speed_mps=sortie.speed_mps,
            callsign=sortie.type,
            ce_m=SEA_ERROR_M,
        )
        out.append(Message(plot.at, party, "navy-tak", event))
    return out


def _ais(party: str, ships: Sequence[Plot], rng: random.Random) -> list[Message]:
    out: list[Message] = []
    announced: set[int] = set()
    for plot in ships:
        sortie = plot.sortie
        mmsi = 412_400_000 + _number(sortie)
        lines: list[bytes] = []
        if mmsi not in announced:
            lines += ais_static(mmsi, plot.at, name=sortie.type.upper(), ship_type=_AIS_SHIP_TYPE)
            announced.add(mmsi)
        lon, lat = _jitter(plot.lon, plot.lat, SEA_ERROR_M, rng)
        lines += ais_position(
            mmsi, plot.at, lon, lat, course_deg=plot.course_deg, speed_mps=sortie.speed_mps
        )
        out.append(Message(plot.at, party, "coast-ais", b"".join(lines)))
    return out


__all__ = ["DATA_SOURCE", "FEEDS", "DemoFeed", "Message", "messages"]
