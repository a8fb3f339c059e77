"""The node's Cursor-on-Target outputs on real sockets, read by real TAK clients: pytak over TCP
and over TLS with a client certificate (XML), takproto's parser on the TAK protocol stream, and
a TAK Server's port that the node pushes to."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from configparser import ConfigParser
from pathlib import Path
from typing import Any

import msgspec
import pytak
import pytest
import takproto

from feed_support import WAIT_S, in_loop
from kuroshio.export.config import CotOutput
from kuroshio.model import Kinematics, Marking, Observation, Platform, Point, Source
from kuroshio.node import Node, init_node
from kuroshio.tak import CotService


def _output(**table: Any) -> CotOutput:
    return msgspec.convert(table, CotOutput)


def _report(number: int, *, tlp: str = "AMBER", track: str = "cat062:25/1:7") -> Observation:
    return Observation(
        id=f"JPN:tak:{number}",
        origin="JPN",
        kind="air",
        observed_at=dt.datetime.now(dt.UTC),
        geometry=Point(coordinates=(123.0 + number / 100, 24.5)),
        platform=Platform(type="H-6K", platform_class="bomber", count=2, nationality="CHN"),
        kinematics=Kinematics(course_deg=80.0, speed_mps=220.0, altitude_m=8000.0),
        source=Source(sensor="radar", uncertainty_m=500.0),
        marking=Marking(tlp=tlp, releasable_to=("TWN",)),  # type: ignore[arg-type]
        track=track,
    )


@contextlib.asynccontextmanager
async def running(node: Node, outputs: dict[str, CotOutput]) -> AsyncIterator[dict[str, str]]:
    service = CotService(node, outputs)
    task = asyncio.create_task(service.run())
    try:
        yield await asyncio.wait_for(service.ready(), WAIT_S)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _client(url: str, **settings: str) -> Any:
    parser = ConfigParser()
    parser["tak"] = {"COT_URL": url, **settings}
    return parser["tak"]


async def _read_xml(reader: asyncio.StreamReader) -> ET.Element:
    data = await asyncio.wait_for(reader.readuntil(b"</event>"), WAIT_S)
    return ET.fromstring(data.strip())


async def _read_proto(reader: asyncio.StreamReader) -> Any:
    magic = await asyncio.wait_for(reader.readexactly(1), WAIT_S)
    assert magic == b"\xbf"
    length = shift = 0
    while True:
        octet = (await reader.readexactly(1))[0]
        length |= (octet & 0x7F) << shift
        shift += 7
        if not octet & 0x80:
            break
    payload = await reader.readexactly(length)
    return takproto.parse_proto(bytearray(b"\xbf" + _varint(length) + payload))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        octet, value = value & 0x7F, value >> 7
        out.append(octet | (0x80 if value else 0))
        if not value:
            return bytes(out)


@pytest.fixture
def node(tmp_path: Path) -> Node:
    return init_node(tmp_path / "jpn", "JPN")


@in_loop
async def test_pytak_over_tls_gets_the_picture_then_each_update_with_marking(
    node: Node, tak_pki: Path
) -> None:
    await asyncio.to_thread(node.ingest, [_report(0)])  # before the client connects
    tls = {
        "certfile": str(tak_pki / "server.pem"),
        "keyfile": str(tak_pki / "server.key"),
        "cafile": str(tak_pki / "ca.pem"),
    }
    async with running(node, {"tak": _output(listen="tls://127.0.0.1:0", tls=tls)}) as where:
        config = _client(
            where["tak"],
            PYTAK_TLS_CLIENT_CERT=str(tak_pki / "client.pem"),
            PYTAK_TLS_CLIENT_KEY=str(tak_pki / "client.key"),
            PYTAK_TLS_CLIENT_CAFILE=str(tak_pki / "ca.pem"),
        )
        reader, writer = await pytak.protocol_factory(config)
        first = await _read_xml(reader)  # the picture of the last hour
        assert first.get("uid") == "JPN.cat062:25/1:7"
        await asyncio.to_thread(node.ingest, [_report(1), _report(2, tlp="RED")])
        update = await _read_xml(reader)
        assert update.get("uid") == "JPN.cat062:25/1:7"
        assert update.get("type") == "a-h-A-M-F-B"
        assert update.get("how") == "m-g"
        point = update.find("point")
        assert point is not None and float(point.get("lon", "0")) == pytest.approx(123.01)
        assert float(point.get("ce", "0")) == pytest.approx(500.0)
        track = update.find("detail/track")
        assert track is not None and float(track.get("speed", "0")) == 220.0
        marking = update.find("detail/marking")
        assert marking is not None
        assert marking.attrib == {
            "access": "TLP:AMBER",
            "caveat": "REL TO TWN; NO RE-RELEASE",
            "releasableTo": "TWN",
            "origin": "JPN",
            "verification": "own",
        }
        # the TLP:RED report never comes: the next thing on the wire is the next update
        await asyncio.to_thread(node.ingest, [_report(3)])
        after = await _read_xml(reader)
        assert float(after.find("point").get("lon", "0")) == pytest.approx(123.03)  # type: ignore[union-attr]
        writer.close()

        stranger = _client(
            where["tak"],
            PYTAK_TLS_CLIENT_CERT=str(tak_pki / "stranger.pem"),
            PYTAK_TLS_CLIENT_KEY=str(tak_pki / "stranger.key"),
            PYTAK_TLS_CLIENT_CAFILE=str(tak_pki / "ca.pem"),
        )
        with pytest.raises((OSError, asyncio.IncompleteReadError)):
            reader, _ = await pytak.protocol_factory(stranger)
            await asyncio.wait_for(reader.readuntil(b"</event>"), WAIT_S)


@in_loop
async def test_the_tak_protocol_stream_parses_with_takproto_and_a_filter_holds(node: Node) -> None:
    outputs = {
        "proto": _output(listen="tcp://127.0.0.1:0", protocol="proto", history_s=0),
        "south": _output(listen="tcp://127.0.0.1:0", area=(100.0, 0.0, 110.0, 10.0), history_s=0),
    }
    async with running(node, outputs) as where:
        host, port = where["proto"].removeprefix("tcp://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        shost, sport = where["south"].removeprefix("tcp://").rsplit(":", 1)
        south, south_writer = await asyncio.open_connection(shost, int(sport))
        await asyncio.sleep(0.2)  # both clients are taken in
        await asyncio.to_thread(node.ingest, [_report(5)])
        message = await _read_proto(reader)
        event = message.cotEvent
        assert (event.uid, event.type, event.access) == (
            "JPN.cat062:25/1:7",
            "a-h-A-M-F-B",
            "TLP:AMBER",
        )
        assert event.detail.contact.callsign == "H-6K ×2 · JPN"
        assert 'releasableTo="TWN"' in event.detail.xmlDetail
        with pytest.raises(TimeoutError):  # outside the area: nothing for this output
            await asyncio.wait_for(south.read(1), 0.5)
        writer.close()
        south_writer.close()


@in_loop
async def test_the_node_pushes_to_a_tak_server_and_comes_back_after_it_restarts(
    node: Node,
) -> None:
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def tak_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                await received.put(await reader.readuntil(b"</event>"))

    server = await asyncio.start_server(tak_server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    push = _output(connect=f"tcp://127.0.0.1:{port}", history_s=0)
    async with running(node, {"server": push}):
        await asyncio.sleep(0.3)
        await asyncio.to_thread(node.ingest, [_report(6)])
        event = ET.fromstring((await asyncio.wait_for(received.get(), WAIT_S)).strip())
        assert event.get("uid") == "JPN.cat062:25/1:7"
        server.close()
        await server.wait_closed()
        server = await asyncio.start_server(tak_server, "127.0.0.1", port)
        await asyncio.sleep(2.5)  # the node connects again (1 s back-off, jittered)
        await asyncio.to_thread(node.ingest, [_report(7)])
        event = ET.fromstring((await asyncio.wait_for(received.get(), WAIT_S)).strip())
        assert float(event.find("point").get("lon", "0")) == pytest.approx(123.07)  # type: ignore[union-attr]
    server.close()


def test_a_bad_cot_table_is_refused_with_its_field(tmp_path: Path) -> None:
    from kuroshio.errors import ConfigError
    from kuroshio.node import load_config

    directory = tmp_path / "twn"
    init_node(directory, "TWN").close()
    config = directory / "kuroshio.toml"
    config.write_text(config.read_text() + '\n[cot.tak]\nlisten = "udp://0.0.0.0:6969"\n')
    with pytest.raises(ConfigError, match=r"cot\.tak.*tcp:// or tls://"):
        load_config(directory)
