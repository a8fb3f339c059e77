"""ASTERIX: the feed's codec reads the registry's real sample captures as asterix-decoder does."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from pathlib import Path
from typing import Any

import asterix
import pytest

from feed_support import SAMPLE_RADARS
from kuroshio.feeds.asterix import (
    FOOT_M,
    NAUTICAL_MILE_M,
    AsterixDecoder,
    AsterixError,
    BlockFramer,
    RadarSite,
    split_blocks,
    utc_from_time_of_day,
)
from kuroshio.feeds.base import MalformedFrame, TrackUpdate
from kuroshio.feeds.capture import read_capture
from kuroshio.geo.polar import polar_position

# the codec's values are what is checked, through the same projection
SITES = {(r["sac"], r["sic"]): RadarSite(r["lon"], r["lat"], 150.0) for r in SAMPLE_RADARS}


def sample(name: str) -> Path:
    return Path(asterix.get_sample_file(name))


def datagrams(name: str) -> list[tuple[float, bytes]]:
    """(capture time, UDP payload) of a sample pcap, or the whole raw file at time 0."""
    if name.endswith(".pcap"):
        return [(frame.at or 0.0, frame.data) for frame in read_capture(sample(name))]
    return [(1_462_433_756.0, sample(name).read_bytes())]


CAPTURES = {
    "cat062cat065.raw": 2,
    "cat048.raw": 1,
    "cat034.raw": 0,
    "cat_062_065.pcap": 2,
    "cat_034_048.pcap": 126,
}
"""The sample captures asterix-decoder installs, and how many CAT048/CAT062 records with a
position each holds (two CAT048 records of the pcap end a track and have none)."""


def _value(record: dict[str, Any], item: str, field: str) -> Any:
    return record[item][field]["val"]


def expected(record: dict[str, Any], received_at: float) -> dict[str, Any]:
    """What asterix-decoder's reading of one record says the update should hold."""
    if record["category"] == 62:
        vx, vy = _value(record, "I185", "Vx"), _value(record, "I185", "Vy")
        name = None
        if "I380" in record and "ID" in record["I380"]:
            name = record["I380"]["ID"]["ACID"]["val"].strip()
        return {
            "track": f"cat062:{_value(record, 'I010', 'SAC')}/{_value(record, 'I010', 'SIC')}:"
            f"{_value(record, 'I040', 'TrkN')}",
            "lat": _value(record, "I105", "Lat"),
            "lon": _value(record, "I105", "Lon"),
            "at": utc_from_time_of_day(_value(record, "I070", "ToT"), received_at),
            "speed_mps": math.hypot(vx, vy),
            "course_deg": math.degrees(math.atan2(vx, vy)) % 360,
            "altitude_m": _value(record, "I130", "Alt") * FOOT_M,
            "name": name,
        }
    sac, sic = _value(record, "I010", "SAC"), _value(record, "I010", "SIC")
    site = SITES[(sac, sic)]
    altitude = None
    if "I090" in record and not _value(record, "I090", "V"):
        altitude = _value(record, "I090", "FL") * 100 * FOOT_M
    lon, lat = polar_position(
        site.lon,
        site.lat,
        site.height_m,
        _value(record, "I040", "THETA"),
        _value(record, "I040", "RHO") * NAUTICAL_MILE_M,
        altitude,
    )
    return {
        "track": f"cat048:{sac}/{sic}:{_value(record, 'I161', 'Tn')}",
        "lat": lat,
        "lon": lon,
        "at": utc_from_time_of_day(_value(record, "I140", "ToD"), received_at),
        "speed_mps": _value(record, "I200", "CGS") * NAUTICAL_MILE_M / 3600
        if "I200" in record
        else None,
        "course_deg": _value(record, "I200", "CHdg") if "I200" in record else None,
        "altitude_m": altitude,
        "name": record["I240"]["TId"]["val"].strip() if "I240" in record else None,
    }


def _same(update: TrackUpdate, wanted: dict[str, Any]) -> None:
    assert update.track == wanted["track"]
    assert update.lat == pytest.approx(wanted["lat"], abs=1e-9)
    assert update.lon == pytest.approx(wanted["lon"], abs=1e-9)
    assert update.at.timestamp() == pytest.approx(wanted["at"], abs=1e-6)
    for field in ("speed_mps", "course_deg", "altitude_m"):
        if wanted[field] is None:
            assert getattr(update, field) is None, field
        else:
            assert getattr(update, field) == pytest.approx(wanted[field], abs=1e-6), field
    assert update.name == (wanted["name"] or None)


@pytest.mark.parametrize("name", CAPTURES)
def test_every_record_of_the_sample_captures_reads_as_asterix_decoder_reads_it(name: str) -> None:
    skipped: Counter[str] = Counter()
    decoder = AsterixDecoder(skipped, radars=SITES)
    compared = 0
    for received_at, data in datagrams(name):
        references = [
            r
            for r in asterix.parse(data, verbose=False)
            if (r["category"], "I040" in r) == (48, True) or "I105" in r
        ]
        updates = [
            update
            for block in split_blocks(data)
            for update in decoder.decode(block, received_at)  # type: ignore[arg-type]
        ]
        assert len(updates) == len(references)
        for update, reference in zip(updates, references, strict=True):
            _same(update, expected(reference, received_at))
            compared += 1
    assert compared == CAPTURES[name]
    assert set(skipped) <= {
        "CAT034 not decoded",
        "CAT065 not decoded",
        "CAT048 report without a measured position (I040)",
    }


def test_a_system_track_carries_its_identity_type_and_callsign() -> None:
    decoder = AsterixDecoder(Counter())
    updates = decoder.decode(split_blocks(sample("cat062cat065.raw").read_bytes())[0], 1.4e9)  # type: ignore[arg-type]
    assert [u.track for u in updates] == ["cat062:25/100:4980", "cat062:25/100:7977"]
    airliner = updates[1]
    assert (airliner.name, airliner.label, airliner.platform_class) == (
        "SXD4723",
        "ICAO type B738",
        None,  # a type the catalogue does not know names no class
    )
    assert all(u.kind == "air" and not u.final for u in updates)


def test_cat048_plots_of_a_radar_without_a_site_are_skipped_not_placed() -> None:
    skipped: Counter[str] = Counter()
    decoder = AsterixDecoder(skipped, radars={})
    assert decoder.decode(sample("cat048.raw").read_bytes(), 1.4e9) == []
    assert skipped == Counter({"CAT048 radar 25/201 has no site configured": 1})


def test_categories_not_asked_for_are_counted_as_skipped() -> None:
    skipped: Counter[str] = Counter()
    decoder = AsterixDecoder(skipped, categories=frozenset({62}))
    for block in split_blocks(sample("cat062cat065.raw").read_bytes()):
        decoder.decode(block, 1.4e9)  # type: ignore[arg-type]
    decoder.decode(sample("cat048.raw").read_bytes(), 1.4e9)
    assert skipped == Counter({"CAT065 not decoded": 1, "CAT048 not decoded": 1})


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda b: b[:-5], "data block length"),
        (lambda b: b[:1] + (len(b) + 4).to_bytes(2, "big") + b[3:] + b"\x90\0\0\0", "past the end"),
        (lambda b: b[:3] + b"\x40" + b[4:], "FRN 2 is not defined"),  # the spare FRN of CAT062
    ],
)
def test_a_damaged_block_is_refused_with_the_reason(damage: Any, reason: str) -> None:
    block = split_blocks(sample("cat062cat065.raw").read_bytes())[0]
    assert isinstance(block, bytes)
    with pytest.raises(AsterixError, match=reason):
        AsterixDecoder(Counter()).decode(damage(block), 1.4e9)


def test_a_datagram_splits_into_its_blocks_and_gives_back_a_cut_tail() -> None:
    data = sample("cat062cat065.raw").read_bytes()
    frames = split_blocks(data + data + data[:10])
    assert [f[0] for f in frames if isinstance(f, bytes)] == [62, 65, 62, 65]
    assert isinstance(frames[-1], MalformedFrame)


def test_a_stream_of_blocks_is_cut_at_each_length_whatever_the_reads() -> None:
    data = sample("cat062cat065.raw").read_bytes() * 3
    framer = BlockFramer()
    frames: list[bytes | MalformedFrame] = []
    position = 0
    for size in (1, 2, 150, 7, 3, 500):
        frames += framer.push(data[position : position + size])
        position += size
    assert b"".join(f for f in frames if isinstance(f, bytes)) == data
    assert len(frames) == 6


def test_time_of_day_takes_the_day_nearest_the_reception() -> None:
    midnight = dt.datetime(2024, 8, 5, tzinfo=dt.UTC).timestamp()
    # a report stamped 23:59:59 arriving at 00:00:01 belongs to the day before
    assert utc_from_time_of_day(86_399.0, midnight + 1) == midnight - 1
    # one stamped 00:00:01 arriving at 23:59:59 to the day after
    assert utc_from_time_of_day(1.0, midnight - 1) == midnight + 1
    assert utc_from_time_of_day(3_600.0, midnight + 3_500) == midnight + 3_600
