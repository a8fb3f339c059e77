"""A partner's released track reaches TAK clients of the receiving node: two ``kuroshio serve``
processes exchange over mutual TLS, and pytak (XML over TLS with a client certificate) and a
takproto reader (TAK protocol over TCP) on JPN's Cursor-on-Target outputs get TWN's track once
TWN stores it, marked as TWN marked it; a screen shared with a party the marking does not name
gets nothing of it. How soon it arrives is measured by ``benchmarks/bench_cot.py`` and
``benchmarks/bench_feed_exchange.py``, not here."""

from __future__ import annotations

import asyncio
import datetime as dt
import xml.etree.ElementTree as ET
from configparser import ConfigParser
from pathlib import Path

import httpx
import msgspec
import pytak
import pytest
import takproto
from federation_nodes import ServedNode, agree

from agreements import agreement_text
from kuroshio.model import Kinematics, Marking, Observation, Platform, Point, Source

pytestmark = pytest.mark.e2e
ARRIVAL_S = 30.0
"""How long a client waits for the track before the test fails: a bound on a hung exchange."""


def _cot_tables(tak_pki: Path) -> str:
    files = (
        f'certfile = "{tak_pki / "server.pem"}", keyfile = "{tak_pki / "server.key"}", '
        f'cafile = "{tak_pki / "ca.pem"}"'
    )
    return f"""
[cot.tak]
listen = "tls://127.0.0.1:0"
tls = {{ {files} }}

[cot.proto]
listen = "tcp://127.0.0.1:0"
protocol = "proto"

[cot.coalition]
listen = "tcp://127.0.0.1:0"
audience = ["JPN", "USA"]
"""


def _track(now: dt.datetime) -> Observation:
    return Observation(
        id="TWN:radar:cat062:25/100:4980@1",
        origin="TWN",
        kind="air",
        observed_at=now,
        geometry=Point(coordinates=(121.9, 21.6)),
        platform=Platform(type="Y-8", platform_class="asw", count=1, nationality="CHN"),
        kinematics=Kinematics(course_deg=130.0, speed_mps=140.0, altitude_m=3000.0),
        source=Source(sensor="radar", uncertainty_m=300.0),
        marking=Marking(tlp="AMBER", releasable_to=("JPN",)),
        track="cat062:25/100:4980",
    )


async def _read_proto(reader: asyncio.StreamReader) -> object:
    head = await reader.readexactly(1)
    length_bytes = b""
    while True:
        octet = await reader.readexactly(1)
        length_bytes += octet
        if not octet[0] & 0x80:
            break
    length = 0
    for shift, octet in enumerate(length_bytes):
        length |= (octet & 0x7F) << (7 * shift)
    payload = await reader.readexactly(length)
    return takproto.parse_proto(bytearray(head + length_bytes + payload))


async def _watch(twn: ServedNode, where: dict[str, str], tak_pki: Path) -> None:
    parser = ConfigParser()
    parser["tak"] = {
        "COT_URL": where["tak"],
        "PYTAK_TLS_CLIENT_CERT": str(tak_pki / "client.pem"),
        "PYTAK_TLS_CLIENT_KEY": str(tak_pki / "client.key"),
        "PYTAK_TLS_CLIENT_CAFILE": str(tak_pki / "ca.pem"),
    }
    xml_reader, xml_writer = await pytak.protocol_factory(parser["tak"])
    host, port = where["proto"].removeprefix("tcp://").rsplit(":", 1)
    proto_reader, proto_writer = await asyncio.open_connection(host, int(port))
    host, port = where["coalition"].removeprefix("tcp://").rsplit(":", 1)
    coalition, coalition_writer = await asyncio.open_connection(host, int(port))
    await asyncio.sleep(0.5)  # every client taken in before the track is stored

    track = _track(dt.datetime.now(dt.UTC))
    async with httpx.AsyncClient(timeout=30, headers=twn.headers) as http:
        posted = await http.post(
            f"{twn.api_url}/api/observations", content=msgspec.json.encode(track)
        )
    assert posted.json()["inserted"] == 1

    data = await asyncio.wait_for(xml_reader.readuntil(b"</event>"), ARRIVAL_S)
    message = await asyncio.wait_for(_read_proto(proto_reader), ARRIVAL_S)

    event = ET.fromstring(data.strip())
    assert event.get("uid") == "TWN.cat062:25/100:4980"
    assert event.get("type") == "a-h-A-M-F-S"  # a hostile anti-submarine aircraft
    marking = event.find("detail/marking")
    assert marking is not None
    assert marking.get("access") == "TLP:AMBER"
    assert marking.get("releasableTo") == "JPN"
    assert marking.get("origin") == "TWN"
    assert marking.get("verification") == "verified"  # TWN's batch signature checked at JPN
    cot = message.cotEvent  # type: ignore[attr-defined]
    assert (cot.uid, cot.access) == ("TWN.cat062:25/100:4980", "TLP:AMBER")
    assert (
        'origin="TWN"' in cot.detail.xmlDetail and 'verification="verified"' in cot.detail.xmlDetail
    )
    # marked releasable to JPN only: the screen JPN shares with USA never sees it
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(coalition.read(1), 2.0)
    for writer in (xml_writer, proto_writer, coalition_writer):
        writer.close()


def test_a_partners_released_track_reaches_tak_clients_marked_as_its_origin_marked_it(
    tmp_path: Path, tak_pki: Path
) -> None:
    twn, jpn = ServedNode(tmp_path, "TWN"), ServedNode(tmp_path, "JPN")
    twn.pin(jpn)
    jpn.pin(twn)
    agree([twn, jpn], agreement_text(["TWN", "JPN"]))
    config = jpn.directory / "kuroshio.toml"
    config.write_text(config.read_text() + _cot_tables(tak_pki))
    twn.start()
    try:
        ready = jpn.start()
        assert set(ready["cot"]) == {"tak", "proto", "coalition"}
        asyncio.run(_watch(twn, ready["cot"], tak_pki))
    finally:
        assert [twn.stop(), jpn.stop()] == [0, 0]
