"""ADS-B: SBS-1 lines and Beast frames become updates of the aircraft's ICAO address track.

The Mode S messages are the published examples of "The 1090 MHz Riddle" (J. Sun), and
identification messages built here with pyModeS's own parity; pyModeS decodes them all.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pyModeS
import pytest
from pyModeS import util

from kuroshio.feeds.adsb import BeastDecoder, BeastFramer, SbsDecoder, emitter_platform
from kuroshio.feeds.base import MalformedFrame, TrackUpdate

T0 = 1_457_996_400.0
EVEN = "8D40621D58C382D690C8AC2863A7"
ODD = "8D40621D58C386435CC412692AD6"
"""An airborne position pair of 40621D at 38 000 ft: 52.2572° N, 3.9194° E as of the even
frame, 52.2658° N, 3.9389° E as of the odd one."""
VELOCITY = "8D485020994409940838175B284F"
"""485020: 159 kt, track 182.88°."""
_CHARS = "#ABCDEFGHIJKLMNOPQRSTUVWXYZ##### ###############0123456789######"


def identification(icao: str, typecode: int, category: int, callsign: str) -> str:
    """A DF17 identification message (type code 1-4, emitter category), with its parity."""
    value = typecode << 3 | category
    for char in callsign.ljust(8):
        value = value << 6 | _CHARS.index(char)
    body = "8D" + icao + value.to_bytes(7, "big").hex().upper()
    parity = util.crc(body + "000000")
    message = f"{body}{parity:06X}"
    assert pyModeS.decode(message)["crc_valid"]
    return message


def beast(message: str, timestamp: bytes = b"\x00\x01\x1a\x02\x03\x04") -> bytes:
    """A Beast frame of a Mode S message, every 0x1a after the marker doubled."""
    kind = b"3" if len(message) == 28 else b"2"
    body = timestamp + b"\x80" + bytes.fromhex(message)
    return b"\x1a" + kind + body.replace(b"\x1a", b"\x1a\x1a")


def feed_beast(decoder: BeastDecoder, messages: list[tuple[str, float]]) -> list[TrackUpdate]:
    framer = BeastFramer()
    updates: list[TrackUpdate] = []
    for message, at in messages:
        for frame in framer.push(beast(message)):
            assert isinstance(frame, bytes)
            updates += decoder.decode(frame, at)
    return updates


def position_pairs(count: int) -> list[tuple[str, float]]:
    """Even and odd frames of 40621D, alternately, a second apart."""
    return [(EVEN if n % 2 == 0 else ODD, T0 + n) for n in range(count)]


def test_a_beast_feed_gives_the_aircraft_position_once_its_cpr_pairs_agree() -> None:
    decoder = BeastDecoder(Counter())
    hello = identification("40621D", 4, 7, "RESCUE1")
    updates = feed_beast(decoder, [(hello, T0 - 1), *position_pairs(8)])
    assert updates, "no position after eight alternating frames"
    first = updates[0]
    assert first.track == "icao:40621D"
    assert (round(first.lat, 4), round(first.lon, 4)) in {(52.2572, 3.9194), (52.2658, 3.9389)}
    assert first.altitude_m == pytest.approx(38_000 * 0.3048)
    assert (first.name, first.platform_class) == ("RESCUE1", "helicopter")
    assert first.label == "ADS-B emitter category A7 (rotorcraft)"
    assert first.at == dt.datetime.fromtimestamp(first.at.timestamp(), dt.UTC)


def test_velocity_heard_lately_goes_with_the_position() -> None:
    decoder = BeastDecoder(Counter())
    updates = feed_beast(decoder, [(VELOCITY, T0)])
    assert updates == []
    sbs = SbsDecoder(Counter())
    lines = [
        "MSG,4,1,1,485020,1,2016/03/15,00:00:00.000,2016/03/15,00:00:00.000,,,159,182.9,,,-832,,,,,0",
        "MSG,3,1,1,485020,1,2016/03/15,00:00:01.000,2016/03/15,00:00:01.000,,36000,,,52.1,4.5,,,0,0,0,0",
    ]  # fmt: skip
    (update,) = [u for line in lines for u in sbs.decode(line.encode(), T0 + 1)]
    assert update.speed_mps == pytest.approx(159 * 1852 / 3600)
    assert update.course_deg == pytest.approx(182.9)
    # ten seconds later the velocity is too old to be given
    (later,) = sbs.decode(lines[1].encode(), T0 + 30)
    assert later.speed_mps is None and later.altitude_m == pytest.approx(36_000 * 0.3048)


def test_sbs_lines_give_the_callsign_position_and_altitude() -> None:
    skipped: Counter[str] = Counter()
    decoder = SbsDecoder(skipped)
    identity = (
        "MSG,1,1,1,8991A1,1,2024/08/05,10:00:00.000,2024/08/05,10:00:00.000,CAL123,,,,,,,,,,,0"
    )
    position = "MSG,3,1,1,8991A1,1,2024/08/05,10:00:01.000,2024/08/05,10:00:01.000,,31000,,,24.51,122.20,,,0,0,0,0"  # noqa: E501
    assert decoder.decode(identity.encode(), T0) == []
    (update,) = decoder.decode(position.encode(), T0)
    assert (update.track, update.name, update.lat, update.lon) == (
        "icao:8991A1", "CAL123", 24.51, 122.20
    )  # fmt: skip
    assert update.platform_class is None and update.label is None  # SBS says nothing of it
    assert skipped == Counter({"SBS MSG,1 without a position": 1})


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("HELLO,1,2,3", "not MSG"),
        ("MSG,3,1,1,8991A1,1", "fields"),
        ("MSG,3,1,1,ZZZZZZ,1,,,,,,31000,,,24.5,122.2,,,0,0,0,0", "24 bits"),
        ("MSG,3,1,1,8991A1,1,,,,,,high,,,24.5,122.2,,,0,0,0,0", "cannot be read"),
        ("MSG,3,1,1,8991A1,1,,,,,,31000,,,95.0,122.2,,,0,0,0,0", "out of range"),
    ],
)
def test_a_bad_sbs_line_is_malformed(line: str, reason: str) -> None:
    with pytest.raises(MalformedFrame, match=reason):
        SbsDecoder(Counter()).decode(line.encode(), T0)


def test_emitter_categories_name_a_class_only_for_rotorcraft_and_unmanned() -> None:
    assert emitter_platform("A7") == ("helicopter", "ADS-B emitter category A7 (rotorcraft)")
    assert emitter_platform("B6")[0] == "uav"
    assert emitter_platform("A6") == (None, "ADS-B emitter category A6 (high performance)")
    assert emitter_platform("A0") == (None, None)


def test_beast_frames_survive_any_cut_and_their_escapes() -> None:
    messages = [EVEN, ODD, VELOCITY] * 3
    stream = b"".join(beast(m) for m in messages)
    framer = BeastFramer()
    frames: list[bytes | MalformedFrame] = []
    for start in range(0, len(stream), 5):
        frames += framer.push(stream[start : start + 5])
    assert [f[8:].hex().upper() for f in frames if isinstance(f, bytes)] == messages
    assert all(isinstance(f, bytes) for f in frames)


def test_garbage_in_a_beast_stream_is_given_back_and_the_frames_after_it_kept() -> None:
    framer = BeastFramer()
    frames = framer.push(b"noise" + beast(EVEN) + b"\x1a\x39junk" + beast(ODD))
    good = [f[8:].hex().upper() for f in frames if isinstance(f, bytes)]
    bad = [f.reason for f in frames if isinstance(f, MalformedFrame)]
    assert good == [EVEN, ODD]
    assert bad == [
        "bytes outside any Beast frame",
        "Beast frame type 0x39",
        "bytes outside any Beast frame",
    ]


def test_other_downlink_formats_and_mode_ac_are_skipped() -> None:
    skipped: Counter[str] = Counter()
    decoder = BeastDecoder(skipped)
    surveillance = "5D4840D6D1E4C2"  # DF11 all-call reply
    assert feed_beast(decoder, [(surveillance, T0)]) == []
    mode_ac = b"\x1a1" + b"\x00" * 6 + b"\x80" + b"\x12\x34"
    (frame,) = BeastFramer().push(mode_ac)
    assert isinstance(frame, bytes) and decoder.decode(frame, T0) == []
    assert skipped == Counter({"Mode S DF11": 1, "Mode A/C reply": 1})
