"""The feed decoder role: what a decoder takes, what it gives, and how it says a frame is bad.

A :class:`Decoder` turns the frames of one source (an ASTERIX data block, an NMEA sentence, a CoT
event …) into :class:`TrackUpdate` records carrying the source's own track identity; a
:class:`Framer` cuts that source's byte stream into frames. Neither opens a socket, reads a clock
or knows about observations, marking or the store.
"""

from __future__ import annotations

import abc
import datetime as dt
import hashlib
import re
from collections import Counter
from typing import Final, Literal

import msgspec

SAMPLE_BYTES: Final = 96
"""How much of a bad frame is kept as its sample."""
MAX_TRACK_ID: Final = 120
"""Longest track identity kept as written; a longer one is shortened to a digest."""
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._:/@-]")


def track_id(scheme: str, identity: str) -> str:
    """``<scheme>:<identity>`` with characters an observation id cannot hold written as ``+HH``
    (UTF-8 bytes in hex), so every identity a source may send gives one stable, valid id."""
    safe = _UNSAFE.sub(lambda m: "".join(f"+{b:02X}" for b in m.group().encode()), identity)
    if len(safe) > MAX_TRACK_ID:
        safe = "sha256+" + hashlib.sha256(identity.encode()).hexdigest()[:32]
    return f"{scheme}:{safe}"


class TrackUpdate(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One report of one source track: where it was, how it moved, what the source says it is."""

    track: str
    """The source's track identity, ``<scheme>:<identity>``: ``cat062:25/100:4980`` (SAC/SIC and
    track number), ``ais:416123456`` (MMSI), ``icao:8991A1`` (24-bit address), ``cot:<uid>``."""
    kind: Literal["air", "sea"]
    at: dt.datetime
    """When the source says the position held (UTC); reception time where it says nothing."""
    lon: float
    lat: float
    course_deg: float | None = None
    speed_mps: float | None = None
    altitude_m: float | None = None
    platform_class: str | None = None
    """A catalogue class, only where the source's own classification names one."""
    platform_type: str | None = None
    """A catalogue code, only where the source names a type the catalogue resolves."""
    label: str | None = None
    """The source's own words for what it is (CoT type, AIS ship type, emitter category)."""
    sidc: str | None = None
    """MIL-STD-2525D symbol code, for sources that classify (CoT)."""
    name: str | None = None
    """Callsign, vessel name or flight identity as the source gives it."""
    uncertainty_m: float | None = None
    """Position uncertainty the source states (1-sigma radius), metres."""
    final: bool = False
    """The source ended the track with this update."""


FeedState = Literal["starting", "up", "down", "stopped"]
"""Where a feed is in its life: shown by its status."""


class MalformedFrame(Exception):
    """A frame that cannot be read: ``reason`` says why, ``sample`` holds its first bytes."""

    def __init__(self, reason: str, frame: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.sample = bytes(frame[:SAMPLE_BYTES])


class Framer(abc.ABC):
    """Cuts one byte stream into frames; keeps the incomplete rest for the next push."""

    @abc.abstractmethod
    def push(self, data: bytes) -> list[bytes | MalformedFrame]:
        """The frames ``data`` completes, in order; bytes that cannot start or make a frame are
        given back as :class:`MalformedFrame` so that the caller counts and samples them."""


class Decoder(abc.ABC):
    """Frames of one source in, track updates out.

    A decoder may keep state between frames (multi-part sentences, CPR pairs, a ship's static
    data), so every source (connection, datagram sender) gets its own. ``skipped`` counts, by
    reason, frames that were read well but carry nothing to keep (a radar service message, a ship
    without a position, a ground unit); it is shared by every decoder of one feed.
    """

    kind: str

    def __init__(self, skipped: Counter[str]) -> None:
        self.skipped = skipped

    @abc.abstractmethod
    def framer(self) -> Framer:
        """A new framer for this source's byte stream (TCP, TLS, a capture file)."""

    def datagram(self, data: bytes) -> list[bytes | MalformedFrame]:
        """The frames in one datagram (UDP, a packet of a capture); one frame by default."""
        return [data]

    @abc.abstractmethod
    def decode(self, frame: bytes, received_at: float) -> list[TrackUpdate]:
        """The updates in one frame. ``received_at`` (POSIX seconds) dates what the frame does
        not date itself. Raises :class:`MalformedFrame` for a frame that cannot be read."""
