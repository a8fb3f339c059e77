"""Feeds over real sockets: UDP (and multicast), TCP, TLS with client certificates, connections
out; pytak as a real TAK client; bad frames counted and sampled; a full queue counted."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asterix
import pyais
import pytak
import pytest

from feed_support import (
    SAMPLE_RADARS,
    Collector,
    cot_event,
    eventually,
    in_loop,
    make_feed,
    send_with_pytak,
    tak_client,
)
from kuroshio.feeds import Feed
from kuroshio.feeds.capture import read_capture
from kuroshio.model import Observation

pytestmark = pytest.mark.filterwarnings(
    "ignore:Disabled TLS:UserWarning",
    "ignore:ssl.OP_NO_SSL:DeprecationWarning",
)
RADARS = SAMPLE_RADARS


@contextlib.asynccontextmanager
async def running(feed: Feed) -> AsyncIterator[tuple[str, int]]:
    """The feed running (receiving and delivering); yields the address it is bound to."""
    task = asyncio.create_task(feed.run())
    try:
        await eventually(lambda: feed.bound is not None or task.done(), "the feed to bind")
        if task.done():
            task.result()
        assert feed.bound is not None
        yield feed.bound
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def send_udp(address: tuple[str, int], datagrams: Sequence[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in datagrams:
            sock.sendto(datagram, address)


def asterix_datagrams() -> list[bytes]:
    """The UDP payloads of the CAT048 sample capture, one multicast line (232.1.x.x) only."""
    capture = Path(asterix.get_sample_file("cat_034_048.pcap"))
    return [frame.data for frame in read_capture(capture) if str(frame.port).startswith("21")]


@in_loop
async def test_asterix_over_udp_becomes_observations_and_bad_datagrams_are_sampled() -> None:
    sink = Collector()
    feed = make_feed(
        sink, "radar", kind="asterix", listen="udp://127.0.0.1:0", radars=RADARS,
        thinning={"interval_s": 0},
    )  # fmt: skip
    datagrams = asterix_datagrams()
    async with running(feed) as address:
        send_udp(address, [*datagrams, b"\x30\x00\x40\x01"])
        observations = await sink.wait_for(63)  # the records with a position on that line
        await eventually(lambda: feed.stats.malformed == 1, "the bad datagram to be counted")
    status = feed.status()
    assert {o.id.split(":")[2] for o in observations} == {"cat048"}
    assert all(o.origin == "TWN" and o.source.sensor == "radar" for o in observations)
    assert status.delivered == 63 and status.dropped == 0
    assert status.samples[0].reason == "data block length 64 does not fit"
    assert status.samples[0].sample == "30004001"
    assert status.samples[0].peer.startswith("127.0.0.1:")
    assert status.skipped["CAT034 not decoded"] > 0


@in_loop
async def test_a_multicast_group_is_joined() -> None:
    sink = Collector()
    group = "239.255.43.21"
    feed = make_feed(sink, kind="ais", listen=f"udp://{group}:0", interface="127.0.0.1")
    lines = pyais.encode_dict({"type": 1, "mmsi": 412_000_001, "lat": 24.0, "lon": 122.0})
    try:
        async with running(feed) as (_, port):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.setsockopt(
                    socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1")
                )
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
                sock.sendto(lines[0].encode(), (group, port))
            (observation,) = await sink.wait_for(1)
    except OSError as error:  # a host without multicast on its loopback interface
        pytest.skip(f"multicast on loopback not available here: {error}")
    assert observation.track == "ais:412000001"


@in_loop
async def test_ais_over_tcp_is_read_across_any_cut_of_the_stream() -> None:
    sink = Collector()
    feed = make_feed(sink, "coast", kind="ais", listen="tcp://127.0.0.1:0")
    lines = pyais.encode_dict(
        {"type": 5, "mmsi": 416_000_123, "shipname": "HAI XUN 06", "ship_type": 55}, seq_id=1
    ) + pyais.encode_dict({"type": 1, "mmsi": 416_000_123, "lat": 25.2, "lon": 121.8})
    stream = "".join(line + "\r\n" for line in lines).encode() + b"!AIVDM,bad\r\n"
    async with running(feed) as address:
        _, writer = await asyncio.open_connection(*address)
        for start in range(0, len(stream), 9):
            writer.write(stream[start : start + 9])
            await writer.drain()
        (observation,) = await sink.wait_for(1)
        await eventually(lambda: feed.stats.malformed == 1, "the bad sentence to be counted")
        writer.close()
    assert observation.track == "ais:416000123"
    assert observation.platform is not None
    assert observation.platform.platform_class == "coast_guard"
    assert observation.remarks == "HAI XUN 06"
    assert observation.source.sensor == "ais"


@in_loop
async def test_a_feed_that_connects_reads_its_source_and_fails_when_it_closes() -> None:
    lines = (
        b"MSG,1,1,1,8991A1,1,,,,,CAL123,,,,,,,,,,,0\r\n"
        b"MSG,3,1,1,8991A1,1,,,,,,31000,,,24.51,122.20,,,0,0,0,0\r\n"
    )

    async def source(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(lines)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(source, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sink = Collector()
    feed = make_feed(sink, "adsb", kind="sbs", connect=f"tcp://127.0.0.1:{port}")
    async with server:
        with pytest.raises(ExceptionGroup) as failure:
            await asyncio.wait_for(feed.run(), 20)
    assert "the source closed the connection" in str(failure.value.exceptions[0])
    (observation,) = sink.observations
    assert (observation.track, observation.remarks) == ("icao:8991A1", "CAL123")


@in_loop
async def test_a_full_queue_drops_and_counts_what_does_not_fit() -> None:
    release = asyncio.Event()
    taken: list[Observation] = []

    async def slow(observations: Sequence[Observation]) -> None:
        taken.extend(observations)
        await release.wait()

    feed = Feed(
        "coast",
        make_feed(Collector(), kind="ais", listen="udp://127.0.0.1:0", queue=2).config,
        origin="TWN",
        sink=slow,
    )
    lines = [
        pyais.encode_dict({"type": 1, "mmsi": 412_000_000 + n, "lat": 24.0, "lon": 122.0})[0]
        for n in range(10)
    ]
    async with running(feed) as address:
        send_udp(address, [line.encode() for line in lines])
        await eventually(lambda: feed.stats.updates == 10, "all ten updates")
        status = feed.status()
        release.set()
    assert status.dropped > 0
    # what was not dropped waits in the queue or in the batch being handed over
    assert status.dropped + status.queued == 10
    assert 0 < len(taken) <= status.queued


@pytest.mark.parametrize("tak_proto", ["0", "1"], ids=["xml", "protobuf"])
@in_loop
async def test_pytak_sends_cot_over_tcp(tak_proto: str) -> None:
    sink = Collector()
    feed = make_feed(sink, "tak", kind="cot", listen="tcp://127.0.0.1:0")
    async with running(feed) as (host, port):
        config = tak_client(f"tcp://{host}:{port}", TAK_PROTO=tak_proto)
        await send_with_pytak(
            config, [pytak.hello_event(), cot_event("J16-1"), cot_event("CCG-2901", "a-h-S-X-L")]
        )
        observations = await sink.wait_for(2)
    assert {(o.track, o.kind) for o in observations} == {
        ("cot:J16-1", "air"),
        ("cot:CCG-2901", "sea"),
    }
    by_track = {o.track: o for o in observations}
    assert by_track["cot:J16-1"].platform.platform_class == "fighter"  # type: ignore[union-attr]
    assert by_track["cot:CCG-2901"].platform.platform_class == "coast_guard"  # type: ignore[union-attr]
    assert all(o.source.sensor == "report" for o in observations)
    assert feed.stats.skipped["CoT type t-x-d"] == 1  # pytak's hello


@in_loop
async def test_pytak_over_tls_with_a_client_certificate_and_a_stranger_refused(
    tak_pki: Path,
) -> None:
    sink = Collector()
    feed = make_feed(
        sink, "tak", kind="cot", listen="tls://127.0.0.1:0",
        tls={"certfile": str(tak_pki / "server.pem"), "keyfile": str(tak_pki / "server.key"),
             "cafile": str(tak_pki / "ca.pem")},
    )  # fmt: skip
    async with running(feed) as (host, port):
        stranger = tak_client(
            f"tls://{host}:{port}",
            PYTAK_TLS_CLIENT_CERT=str(tak_pki / "stranger.pem"),
            PYTAK_TLS_CLIENT_KEY=str(tak_pki / "stranger.key"),
            PYTAK_TLS_CLIENT_CAFILE=str(tak_pki / "ca.pem"),
        )
        with pytest.raises((OSError, ConnectionError, asyncio.IncompleteReadError)):
            reader = await send_with_pytak(stranger, [cot_event("INTRUDER")])
            if not await reader.read(1):  # TLS 1.3: the refusal arrives on the next read
                raise ConnectionError("closed by the feed")
        member = tak_client(
            f"tls://{host}:{port}",
            PYTAK_TLS_CLIENT_CERT=str(tak_pki / "client.pem"),
            PYTAK_TLS_CLIENT_KEY=str(tak_pki / "client.key"),
            PYTAK_TLS_CLIENT_CAFILE=str(tak_pki / "ca.pem"),
            TAK_PROTO="1",
        )
        await send_with_pytak(member, [cot_event("J16-7")])
        (observation,) = await sink.wait_for(1)
    assert observation.track == "cot:J16-7"
    assert feed.stats.delivered == 1


@in_loop
async def test_a_port_in_use_is_reported_with_the_endpoint() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        feed = make_feed(Collector(), kind="cot", listen=f"tcp://127.0.0.1:{port}")
        with pytest.raises(ExceptionGroup) as failure:
            await feed.run()
    assert f"tcp://127.0.0.1:{port}" in str(failure.value.exceptions[0])
