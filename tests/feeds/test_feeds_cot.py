"""Cursor-on-Target: events built by pytak and encoded by takproto become updates of the uid."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections import Counter

import pytak
import pytest
import takproto

from kuroshio.catalogue import class_symbol_code
from kuroshio.feeds.base import MalformedFrame, TrackUpdate
from kuroshio.feeds.cot import CotDecoder, CotFramer, cot_platform

RECEIVED = dt.datetime(2024, 8, 5, 2, 0, tzinfo=dt.UTC).timestamp()


def event(
    uid: str = "PLA-J16-01",
    cot_type: str = "a-h-A-M-F-F",
    *,
    lat: float = 24.1,
    lon: float = 119.9,
    hae: str = "7500",
    ce: str = "150",
    time: str = "2024-08-05T02:00:00.000Z",
    detail: str = '<track speed="240.5" course="95.0"/><contact callsign="BANDIT 1"/>',
) -> bytes:
    """A CoT event as TAK clients write them."""
    return (
        f'<event version="2.0" uid="{uid}" type="{cot_type}" how="h-e" time="{time}" '
        f'start="{time}" stale="2024-08-05T02:05:00.000Z"><point lat="{lat}" lon="{lon}" '
        f'hae="{hae}" ce="{ce}" le="9999999.0"/><detail>{detail}</detail></event>'
    ).encode()


def decode(frame: bytes, skipped: Counter[str] | None = None) -> list[TrackUpdate]:
    return CotDecoder(skipped if skipped is not None else Counter()).decode(frame, RECEIVED)


def test_an_xml_event_is_an_update_of_its_uid_with_class_and_symbol() -> None:
    (update,) = decode(event())
    assert update.track == "cot:PLA-J16-01"
    assert (update.kind, update.lat, update.lon, update.altitude_m) == ("air", 24.1, 119.9, 7500.0)
    assert (update.speed_mps, update.course_deg) == (240.5, 95.0)
    assert update.name == "BANDIT 1"
    assert update.uncertainty_m == 150.0
    assert update.at == dt.datetime(2024, 8, 5, 2, 0, tzinfo=dt.UTC)
    assert update.platform_class == "fighter"
    assert update.sidc == class_symbol_code("fighter", "hostile") == "10060100001101040000"
    assert update.label == "CoT a-h-A-M-F-F"


@pytest.mark.parametrize("header", [takproto.TAKProtoVer.STREAM, takproto.TAKProtoVer.MESH])
def test_a_tak_protocol_message_reads_as_its_xml_does(header: takproto.TAKProtoVer) -> None:
    xml = event(cot_type="a-h-S-C-L-D-D", uid="PLAN-052D-131", hae="0")
    proto = bytes(takproto.xml2proto(xml.decode(), header))
    (from_proto,) = decode(proto)
    (from_xml,) = decode(xml)
    assert from_proto == from_xml
    assert (from_proto.kind, from_proto.platform_class) == ("sea", "destroyer")


@pytest.mark.parametrize(
    ("cot_type", "kind", "platform_class"),
    [
        ("a-h-A-M-F-B", "air", "bomber"),
        ("a-h-A-M-F-R-W", "air", "aew"),
        ("a-h-A-M-F-Q", "air", "uav"),
        ("a-h-A-M-H", "air", "helicopter"),
        ("a-h-A-M-F-T", "air", "other_aircraft"),  # a trainer: a role the catalogue lacks
        ("a-h-A-M-F", "air", None),  # fixed wing, role not said: no guess
        ("a-u-A", "air", None),
        ("a-h-S-C-L-C-V", "sea", "carrier"),
        ("a-h-S-C-L-F-F", "sea", None),  # 2525B's "frigate/corvette" is neither for sure
        ("a-n-S-X-L", "sea", "coast_guard"),
        ("a-h-U-S-N", "sea", "submarine"),
        ("a-h-U-S-U", "sea", None),  # an unmanned underwater vehicle is no submarine
    ],
)
def test_cot_types_name_a_class_only_where_they_name_one(
    cot_type: str, kind: str, platform_class: str | None
) -> None:
    platform = cot_platform(cot_type)
    assert platform is not None
    assert (platform.kind, platform.platform_class) == (kind, platform_class)
    assert len(platform.sidc) == 20


def test_the_affiliation_gives_the_standard_identity_and_an_exercise_context() -> None:
    assert cot_platform("a-f-A-M-F-F").sidc[2:4] == "03"  # type: ignore[union-attr]
    assert cot_platform("a-n-S-X-L").sidc[2:4] == "04"  # type: ignore[union-attr]
    assert cot_platform("a-k-A-M-F-F").sidc[2:4] == "16"  # type: ignore[union-attr]  # faker
    assert cot_platform("a-h-A-M-F").sidc[10:16] == "000000"  # type: ignore[union-attr]


def test_ground_units_tasks_and_pings_are_skipped() -> None:
    skipped: Counter[str] = Counter()
    assert decode(event(cot_type="a-f-G-U-C-I"), skipped) == []
    assert decode(event(cot_type="t-x-c-t", uid="ping"), skipped) == []
    assert decode(b'<event version="2.0" uid="x" type="t-x-d-d" how="m-g"/>', skipped) == []
    assert skipped == Counter(
        {"CoT type a-f-G": 1, "CoT type t-x-c": 1, "CoT event without a point": 1}
    )


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"<event uid='x' type='a-h-A'><point lat='24'", "not well formed"),
        (b"<message/>", "not <event>"),
        (event().replace(b'lat="24.1"', b'lat="north"'), "not a number"),
        (event(lat=95.0), "out of range"),
        (event(time="yesterday"), "not ISO 8601"),
        (b'<!DOCTYPE event [<!ENTITY a "aaaa">]><event/>', "DOCTYPE"),
        (b"\xbf\x05\x01\x02\x03\x04\x05", "cannot be parsed"),
        (b"\xbf\x09\x01", "length does not match"),
    ],
)
def test_a_bad_event_is_malformed_with_the_reason(frame: bytes, reason: str) -> None:
    with pytest.raises(MalformedFrame, match=reason):
        decode(frame)


def test_a_tak_stream_of_xml_and_protobuf_is_cut_into_events_whatever_the_reads() -> None:
    xml = event()
    proto = bytes(takproto.xml2proto(event(uid="B").decode(), takproto.TAKProtoVer.STREAM))
    stream = b'<?xml version="1.0" encoding="UTF-8"?>\n' + xml + proto + b"\n" + xml + proto
    framer = CotFramer()
    frames: list[bytes | MalformedFrame] = []
    for start in range(0, len(stream), 7):
        frames += framer.push(stream[start : start + 7])
    assert frames == [xml, proto, xml, proto]


def test_bytes_between_events_are_given_back_and_the_events_kept() -> None:
    framer = CotFramer()
    frames = framer.push(b"garbage" + event() + b"more" + event(uid="B"))
    assert [type(f) for f in frames] == [MalformedFrame, bytes, MalformedFrame, bytes]
    assert frames[1] == event() and frames[3] == event(uid="B")


def test_pytak_events_decode() -> None:
    built = ET.tostring(
        pytak.gen_cot_xml(lat=24.5, lon=122.0, uid="TAK-1", cot_type="a-f-S-X-L", ce=20, hae=0)
    )
    (update,) = decode(built)
    assert (update.track, update.platform_class, update.uncertainty_m) == (
        "cot:TAK-1", "coast_guard", 20.0
    )  # fmt: skip
