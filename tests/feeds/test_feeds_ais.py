"""AIS: sentences built with pyais's own encoder become updates of the ship's MMSI track."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pyais
import pytest
from pyais.messages import TagBlock

from kuroshio.feeds.ais import AisDecoder, ship_type_platform
from kuroshio.feeds.base import MalformedFrame, TrackUpdate

RECEIVED = dt.datetime(2024, 8, 5, 2, 0, tzinfo=dt.UTC).timestamp()


def sentences(data: dict[str, object], seq_id: int | None = None) -> list[bytes]:
    return [
        line.encode()
        for line in pyais.encode_dict(data, talker_id="AI", sentence_type="VDM", seq_id=seq_id)
    ]


def decode_all(decoder: AisDecoder, lines: list[bytes]) -> list[TrackUpdate]:
    return [update for line in lines for update in decoder.decode(line, RECEIVED)]


def test_a_position_report_is_an_update_of_the_mmsi_track() -> None:
    decoder = AisDecoder(Counter())
    report = {"type": 1, "mmsi": 412_000_555, "lat": 24.9, "lon": 122.4, "speed": 12.3,
              "course": 45.5, "accuracy": 1}  # fmt: skip
    (update,) = decode_all(decoder, sentences(report))
    assert update.track == "ais:412000555"
    assert (update.kind, update.lon, update.lat) == ("sea", 122.4, 24.9)
    assert update.speed_mps == pytest.approx(12.3 * 1852 / 3600)
    assert update.course_deg == pytest.approx(45.5)
    assert update.uncertainty_m == 10.0
    assert update.at == dt.datetime.fromtimestamp(RECEIVED, dt.UTC)
    assert update.platform_class is None and update.label is None  # nothing said yet


def test_static_data_in_two_parts_names_the_ship_and_its_class_for_later_positions() -> None:
    skipped: Counter[str] = Counter()
    decoder = AisDecoder(skipped)
    static = sentences(
        {"type": 5, "mmsi": 416_000_123, "shipname": "HAI XUN 06", "callsign": "BXYZ",
         "ship_type": 55}, seq_id=3,
    )  # fmt: skip
    assert len(static) == 2
    # the parts arrive out of order, as they may over UDP
    assert decode_all(decoder, [static[1], static[0]]) == []
    (update,) = decode_all(
        decoder, sentences({"type": 18, "mmsi": 416_000_123, "lat": 25.1, "lon": 121.9})
    )
    assert update.name == "HAI XUN 06"
    assert update.platform_class == "coast_guard"
    assert update.label == "AIS ship type 55 (law enforcement)"
    assert skipped == Counter({"AIS static data (kept for the ship's positions)": 1})


def test_a_ship_type_names_a_class_only_where_the_catalogue_has_one() -> None:
    assert ship_type_platform(55) == ("coast_guard", "AIS ship type 55 (law enforcement)")
    assert ship_type_platform(35) == (None, "AIS ship type 35 (military operations)")
    assert ship_type_platform(71) == (None, "AIS ship type 71 (cargo)")
    assert ship_type_platform(0) == (None, None)


def test_class_b_static_data_in_message_24_names_the_ship() -> None:
    decoder = AisDecoder(Counter())
    decode_all(decoder, sentences({"type": 24, "mmsi": 431_000_777, "partno": 0,
                                   "shipname": "SHIKINE"}))  # fmt: skip
    decode_all(decoder, sentences({"type": 24, "mmsi": 431_000_777, "partno": 1,
                                   "ship_type": 55, "callsign": "JGAB"}))  # fmt: skip
    (update,) = decode_all(
        decoder, sentences({"type": 18, "mmsi": 431_000_777, "lat": 24.3, "lon": 123.9})
    )
    assert (update.name, update.platform_class) == ("SHIKINE", "coast_guard")


def test_a_sar_aircraft_is_an_air_track_with_its_altitude() -> None:
    decoder = AisDecoder(Counter())
    (update,) = decode_all(
        decoder,
        sentences({"type": 9, "mmsi": 111_416_001, "lat": 25.0, "lon": 121.0, "alt": 300,
                   "speed": 140, "course": 270}),
    )  # fmt: skip
    assert (update.kind, update.altitude_m, update.label) == ("air", 300.0, "AIS SAR aircraft")
    assert update.speed_mps == pytest.approx(140 * 1852 / 3600)


def test_values_the_source_marks_not_available_are_left_out() -> None:
    decoder = AisDecoder(Counter())
    (update,) = decode_all(
        decoder,
        sentences({"type": 1, "mmsi": 412_000_001, "lat": 24.0, "lon": 122.0, "speed": 102.3,
                   "course": 360}),
    )  # fmt: skip
    assert update.speed_mps is None and update.course_deg is None
    skipped: Counter[str] = Counter()
    assert (
        decode_all(
            AisDecoder(skipped), sentences({"type": 1, "mmsi": 412_000_002, "lat": 91, "lon": 181})
        )
        == []
    )
    assert skipped == Counter({"AIS position not available": 1})


def test_a_tag_block_receiver_time_dates_the_sentence() -> None:
    line = sentences({"type": 1, "mmsi": 412_000_003, "lat": 24.0, "lon": 122.0})[0]
    tag = TagBlock.create(receiver_timestamp="1722823200", source_station="YONAGUNI")
    (update,) = AisDecoder(Counter()).decode(b"\\" + tag + b"\\" + line, RECEIVED - 60)
    assert update.at == dt.datetime(2024, 8, 5, 2, 0, tzinfo=dt.UTC)
    damaged = tag.replace(b"1722823200", b"1722823201")  # its checksum no longer matches
    (update,) = AisDecoder(Counter()).decode(b"\\" + damaged + b"\\" + line, RECEIVED - 60)
    assert update.at == dt.datetime.fromtimestamp(RECEIVED - 60, dt.UTC)


def test_a_sentence_with_a_wrong_checksum_is_malformed() -> None:
    line = sentences({"type": 1, "mmsi": 412_000_004, "lat": 24.0, "lon": 122.0})[0]
    damaged = line[:-2] + (b"00" if line[-2:] != b"00" else b"11")
    with pytest.raises(MalformedFrame, match="checksum"):
        AisDecoder(Counter()).decode(damaged, RECEIVED)
    with pytest.raises(MalformedFrame, match="not an AIS sentence"):
        AisDecoder(Counter()).decode(b"$GPGGA,hello", RECEIVED)


def test_messages_without_a_track_are_counted_as_skipped() -> None:
    skipped: Counter[str] = Counter()
    decoder = AisDecoder(skipped)
    base_station = sentences({"type": 4, "mmsi": 4_161_234, "lat": 25.0, "lon": 121.0})
    assert decode_all(decoder, base_station) == []
    assert skipped == Counter({"AIS message type 4": 1})


def test_a_part_that_never_finds_its_partner_is_given_up() -> None:
    skipped: Counter[str] = Counter()
    decoder = AisDecoder(skipped)
    first, _ = sentences({"type": 5, "mmsi": 416_000_124, "shipname": "X"}, seq_id=4)
    decoder.decode(first, RECEIVED)
    later = sentences({"type": 5, "mmsi": 416_000_125, "shipname": "Y"}, seq_id=5)
    for line in later:
        decoder.decode(line, RECEIVED + 120)  # two minutes later
    assert skipped["AIS multi-part message never completed"] == 1
