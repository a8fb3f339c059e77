"""Cutting a text stream into lines: the framing of NMEA 0183 (AIS) and SBS-1 (ADS-B) feeds.

:class:`LineFramer` gives complete lines without their end-of-line bytes and gives back an
over-long line as malformed instead of letting it grow without bound. It does not read sockets
or parse the lines.
"""

from __future__ import annotations

from typing import Final

from kuroshio.feeds.base import Framer, MalformedFrame

MAX_LINE_BYTES: Final = 8_192
"""Longest line accepted; NMEA sentences are at most 82 characters, SBS lines about 200."""


class LineFramer(Framer):
    """Lines ended by LF (CR LF too); empty lines are dropped."""

    def __init__(self, max_bytes: int = MAX_LINE_BYTES) -> None:
        self._rest = b""
        self._max = max_bytes
        self._discarding = False

    def push(self, data: bytes) -> list[bytes | MalformedFrame]:
        buffer = self._rest + data
        *lines, rest = buffer.split(b"\n")
        out: list[bytes | MalformedFrame] = []
        for line in lines:
            if self._discarding:
                # the tail of a line already given back as too long
                self._discarding = False
                continue
            if len(line) > self._max:
                out.append(MalformedFrame(f"line longer than {self._max} bytes", line))
                continue
            line = line.strip()
            if line:
                out.append(line)
        if len(rest) > self._max:
            if not self._discarding:
                out.append(MalformedFrame(f"line longer than {self._max} bytes", rest))
            self._discarding = True
            rest = b""
        self._rest = rest
        return out


def split_lines(data: bytes) -> list[bytes | MalformedFrame]:
    """The lines of one datagram (a UDP packet may carry several sentences)."""
    return LineFramer().push(data + b"\n")
