"""Replaying a capture file through a feed, at its own pace or faster, for tests and exercises.

A capture is either a libpcap file (``tcpdump -w``; Ethernet, Linux cooked, raw IP or BSD
loopback; IPv4 or IPv6): each UDP payload is a datagram with its packet's time, or any other
file: the recorded byte stream of a TCP feed (NMEA or SBS lines, Beast, CoT, ASTERIX blocks),
without times. :func:`replay` runs the frames through the feed's decoder, thinning, mapping and
sink as if they arrived live, dated by the capture where it has times (so replaying the same
capture twice stores nothing new), paced by those times divided by ``speed``. Where the queue is
full it waits instead of dropping. It does not read pcapng files or reassemble TCP from a pcap.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Final, NamedTuple

from kuroshio.errors import CaptureError
from kuroshio.feeds.feed import Feed

CHUNK_BYTES: Final = 65_536
_PCAP_MAGIC: Final = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_MAGIC: Final = b"\x0a\x0d\x0d\x0a"
_ETHERNET, _RAW, _LINUX_SLL, _NULL, _RAW_IPV4, _RAW_IPV6 = 1, 101, 113, 0, 228, 229
_UDP: Final = 17


class CapturedFrame(NamedTuple):
    """A datagram (with its capture time and destination port) or a chunk of a stream."""

    data: bytes
    at: float | None
    datagram: bool
    port: int | None = None


def read_capture(path: Path) -> Iterator[CapturedFrame]:
    """The frames of a capture file (see the module docstring)."""
    with path.open("rb") as stream:
        head = stream.read(4)
        if head == _PCAPNG_MAGIC:
            raise CaptureError(f"{path}: pcapng; convert it with 'editcap -F pcap' first")
        if head in _PCAP_MAGIC:
            yield from _pcap(path, stream, *_PCAP_MAGIC[head])
            return
        data = head
        while True:
            more = stream.read(CHUNK_BYTES)
            if data or more:
                yield CapturedFrame(data + more, None, False)
            data = b""
            if not more:
                return


def _pcap(path: Path, stream: BinaryIO, order: str, unit: float) -> Iterator[CapturedFrame]:
    header = stream.read(20)
    if len(header) < 20:
        raise CaptureError(f"{path}: pcap header cut short")
    link = struct.unpack(order + "HHiIII", header)[5] & 0xFFFF
    number = 0
    while True:
        record = stream.read(16)
        if not record:
            return
        number += 1
        if len(record) < 16:
            raise CaptureError(f"{path}: packet {number}: record header cut short")
        seconds, fraction, length, _ = struct.unpack(order + "IIII", record)
        packet = stream.read(length)
        if len(packet) < length:
            raise CaptureError(f"{path}: packet {number}: cut short")
        found = _udp_payload(link, packet)
        if found is not None:
            port, payload = found
            yield CapturedFrame(payload, seconds + fraction * unit, True, port)


def _udp_payload(link: int, packet: bytes) -> tuple[int, bytes] | None:
    """(destination port, payload) of a UDP packet; None for anything else."""
    if link == _ETHERNET:
        offset, ethertype = 14, int.from_bytes(packet[12:14], "big")
        while ethertype in (0x8100, 0x88A8) and len(packet) >= offset + 4:  # VLAN tags
            ethertype = int.from_bytes(packet[offset + 2 : offset + 4], "big")
            offset += 4
        if ethertype not in (0x0800, 0x86DD):
            return None
    elif link == _LINUX_SLL:
        offset = 16
    elif link == _NULL:
        offset = 4
    elif link in (_RAW, _RAW_IPV4, _RAW_IPV6):
        offset = 0
    else:
        return None
    if len(packet) <= offset:
        return None
    version = packet[offset] >> 4
    if version == 4:
        header = (packet[offset] & 0x0F) * 4
        fragment = int.from_bytes(packet[offset + 6 : offset + 8], "big")
        if packet[offset + 9] != _UDP or fragment & 0x3FFF:  # not UDP, or a fragment
            return None
        udp = offset + header
    elif version == 6:
        if packet[offset + 6] != _UDP:
            return None
        udp = offset + 40
    else:
        return None
    if len(packet) < udp + 8:
        return None
    port = int.from_bytes(packet[udp + 2 : udp + 4], "big")
    length = int.from_bytes(packet[udp + 4 : udp + 6], "big")
    return port, packet[udp + 8 : udp + max(8, length)]


class ReplaySummary(NamedTuple):
    frames: int
    """Datagrams or stream chunks read from the capture (after the port filter)."""
    observations: int
    """Observations handed to the feed's sink."""


async def replay(
    feed: Feed,
    path: Path,
    *,
    speed: float | None = None,
    port: int | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> ReplaySummary:
    """Run a capture through ``feed`` and hand everything to its sink before returning.

    ``speed``: 1 keeps the capture's pace, 10 is ten times faster, None does not wait at all.
    ``port``: only UDP datagrams to this port (a pcap often holds several feeds). What is kept
    is handed to the sink in the feed's batches, and before every wait, so that a paced replay
    reaches the store as it goes.
    """
    if speed is not None and speed <= 0:
        raise ValueError(f"speed must be more than 0, not {speed}")
    delivered_before = feed.stats.delivered
    source = feed.source(f"capture {path.name}")
    batch = feed.config.batch_items
    feed.stats.enter("up")
    frames = 0
    first: tuple[float, float] | None = None
    try:
        for frame in read_capture(path):
            if frame.datagram and port is not None and frame.port != port:
                continue
            frames += 1
            if speed is not None and frame.at is not None:
                if first is None:
                    first = (frame.at, monotonic())
                wait = first[1] + (frame.at - first[0]) / speed - monotonic()
                if wait > 0:
                    await feed.flush()
                    await sleep(wait)
            received_at = frame.at if frame.at is not None else feed.clock()
            if frame.datagram:
                kept = source.datagram(frame.data, received_at)
            else:
                kept = source.push(frame.data, received_at)
            for observation in kept:
                if feed.queue.full():
                    await feed.flush()
                feed.queue.put_nowait(observation)
            if feed.queue.qsize() >= batch:
                await feed.flush()
        await feed.flush()
    finally:
        feed.stats.enter("stopped")
    return ReplaySummary(frames, feed.stats.delivered - delivered_before)
